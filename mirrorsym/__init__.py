"""mirrorsym: the implicit bias of gradient descent under a reparametrization, derived and verified.

Given w = G(x), mirrorsym decides whether gradient flow on x is a mirror flow on w (Li, Wang, Lee,
Arora, NeurIPS 2022) and derives the mirror potential R in closed form (or implicitly), proving it
in mpmath. Conventions: ../shared/MATH.md, summarised in docs/ARCHITECTURE.md.

>>> import mirrorsym
>>> d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe("egu")))
>>> d.R
c**2/4 + w1*log(4*w1/c**2) - w1
"""

from ._brackets import BracketPair, BracketResult, brackets, lie_bracket
from ._budget import Budget
from ._derivation import Derivation, DomainPart, Status, derive
from ._errors import (
    BudgetExceeded,
    DegenerateError,
    DomainError,
    MirrorsymError,
    RecipeError,
    Unsupported,
    VerificationFailed,
)
from ._flows import Flow, FlowsResult, FlowUnavailable, flows
from ._jacobian import JacobianResult, jacobian
from ._json import dumps as to_json_text
from ._json import to_json
from ._latex import latex_document, latex_fragment
from ._legendre import LegendreResult, NumericPotential, ScalarPiece, legendre
from ._numpy_export import numpy_module
from ._parametrization import Parametrization
from ._parse import parse_expression
from ._potential import PotentialResult, potential_Q
from ._psi import PsiResult, psi
from ._realize import Realization, load_potential, potential_from_text, realize
from ._recipe import find_recipe, load_recipe, recipe_from_dict, recipe_from_text, shipped_recipes
from ._verify import Check, VerificationResult, verify
from ._version import __version__

__all__ = [
    "BracketPair",
    "BracketResult",
    "Budget",
    "BudgetExceeded",
    "Check",
    "DegenerateError",
    "Derivation",
    "DomainError",
    "DomainPart",
    "Flow",
    "FlowUnavailable",
    "FlowsResult",
    "JacobianResult",
    "LegendreResult",
    "MirrorsymError",
    "NumericPotential",
    "Parametrization",
    "PotentialResult",
    "PsiResult",
    "Realization",
    "RecipeError",
    "ScalarPiece",
    "Status",
    "Unsupported",
    "VerificationFailed",
    "VerificationResult",
    "__version__",
    "brackets",
    "derive",
    "find_recipe",
    "flows",
    "jacobian",
    "latex_document",
    "latex_fragment",
    "legendre",
    "lie_bracket",
    "load_potential",
    "load_recipe",
    "numpy_module",
    "parse_expression",
    "potential_Q",
    "potential_from_text",
    "psi",
    "realize",
    "recipe_from_dict",
    "recipe_from_text",
    "shipped_recipes",
    "to_json",
    "to_json_text",
    "verify",
]
