"""``python -m mirrorsym`` is the ``mirrorsym`` command."""

import sys

from ._cli import main

sys.exit(main())
