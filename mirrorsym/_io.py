"""Files and arguments at the edge of the program: bounded reads of TOML inputs, atomic writes of
outputs (a failed or interrupted run never leaves a partial file), ``--param NAME=VALUE``."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from ._errors import RecipeError

__all__ = ["MAX_BYTES", "param_argument", "read_text", "toml_table", "write_atomically"]

#: inputs are small text files; a larger one is refused before it is read (hostile or mistaken)
MAX_BYTES = 1_000_000


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of an input file (``what``: "recipe", "potential"), at most MAX_BYTES."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)  # never read more than the limit, whatever the file is
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(raw) > MAX_BYTES:
        raise RecipeError(f"{path}: {what} file larger than {MAX_BYTES // 1_000_000} MB")
    try:
        return raw.decode("utf-8-sig")  # tolerate the byte-order mark some editors write
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def toml_table(text: str, source: str, what: str) -> dict:
    """The TOML tables of ``text``; every error names ``source``."""
    if not isinstance(text, str):
        raise RecipeError(f"{source}: expected the {what} as text, got {type(text).__name__}")
    if len(text) > MAX_BYTES:
        raise RecipeError(f"{source}: {what} larger than {MAX_BYTES // 1_000_000} MB")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
        raise RecipeError(f"{source}: invalid TOML: {exc}") from None
    except RecursionError:
        raise RecipeError(f"{source}: invalid TOML: arrays or tables nested too deeply") from None


def write_atomically(path: str | os.PathLike, text: str) -> None:
    """Write via a temporary file in the same directory and rename it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".mirrorsym-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def param_argument(text: str) -> tuple[str, float]:
    """argparse type of ``--param NAME=VALUE``."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"--param expects NAME=VALUE, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--param {name}: {value!r} is not a number") from None
