"""The reverse direction (MATH.md §8): from a mirror potential R to a parametrization w = G(u) realising it.

Gradient flow on u with w = G(u) (d = D) is mirror flow on w with potential R exactly when
∇²R(G(u)) = (J Jᵀ)⁻¹, J = ∂G/∂u. For a separable R = Σ φ_i(w_i) the map is coordinatewise,
w_i = q_i(u_i) with q_i'(u)² φ_i''(q_i(u)) = 1::

    u = F_i(w) = ∫ √φ_i''(w) dw   (increasing on the domain of w_i),    q_i = F_i⁻¹,

and the initialisation u0 = F(w0) puts the flow at q(u0) = w0, where ``mirrorsym derive`` normalises
∇R(w0) = 0: derive(realize(R)) gives back R up to an affine term. A linear change of variables
R(w) = Σ_k φ_k(⟨a_k, w⟩) with independent a_k (the rows of A) carries over: z = A w, z_k = q_k(u_k),
w = A⁻¹ q(u), for then (J Jᵀ)⁻¹ = Aᵀ diag(φ_k''(z_k)) A = ∇²R.

A D = d realisation is an isometry from Euclidean u-space onto the Hessian metric g = ∇²R, so it
exists only if g is flat. With T = ∂³R, the Riemann tensor of a Hessian metric is

    R_ijkl = ¼ g^{pq} (T_ilp T_jkq − T_ikp T_jlq),

and a nonzero value at one point certifies that every realisation needs D > d (a Nash embedding).
The negative entropy of the simplex, for example, has Gaussian curvature K = 1/4: its Hessian metric
is the Fisher metric, a sphere of radius 2 (w_i = u_i²/4 with Σ u_i² = 4, in D = d + 1).

The stage: Hessian (simplified under a budget) → curvature at w0 and nearby points → structure (A = I
when ∇²R is diagonal with H_ii a function of w_i; else the generalised eigenvectors of H(p)⁻¹H(p') at
two points, rationalised and checked; a constant H by LDLᵀ) → per piece √φ'' on the real branch
through z0, ∫ by sympy under a budget, the inverse by peeling or ``solve`` on the branch through z0 →
G and u0 → mpmath checks → :class:`Realization`. When ∫√φ'' or its inverse is not elementary in the
recipe grammar the piece is *implicit*: F by quadrature from z0 (so u0 = 0) and q by a safeguarded
Newton; ``mirrorsym derive`` cannot take it, the numpy export (:meth:`Realization.numpy_module`) and
:meth:`Realization.numeric` evaluate it.

POTENTIAL.toml, the input (every expression goes through the safe parser of :mod:`mirrorsym._parse`)::

    name = "entropy"                     # required: letters, digits, '_', '.', '-'
    title = "Unnormalised negative entropy"   # optional, as are description and reference
    variables = ["w"]                    # required: the coordinates of w (w1, w2, ... allowed)
    potential = "w*log(w) - w"           # R(w); or hessian = [["1/w"]], a d × d table of ∇²R
    domain = { w = "positive" }          # per variable: "positive", "negative", "real" (default)
                                         # or [lo, hi] with numbers, expressions or "-oo"/"oo"
    constraints = []                     # optional: expressions that are > 0 on the domain
    w0 = { w = 1 }                       # required: the initial point (numbers or expressions)

    [assumptions]                        # parameters' sympy assumptions, as in a recipe
    [parameters]                         # every parameter's numeric value (exact: 0.5 means 1/2)

Linear constraints parallel to some a_k bound the domain of z_k = ⟨a_k, w⟩ (``constraints = ["w1 + w2"]``
gives z > 0); all constraints restrict the sample points of the numerical checks.

>>> r = realize(potential_from_text('''
... name = "entropy"
... variables = ["w"]
... potential = "w*log(w) - w"
... domain = { w = "positive" }
... w0 = { w = 1 }
... '''))
>>> r.status.value, r.G, r.u0
('realised in closed form', (u**2/4,), (2,))
>>> print(r.recipe_text.splitlines()[6])
parametrization = ["u**2/4"]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import enum
import itertools
import json
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import mpmath as mp
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ._budget import Budget, attempt
from ._errors import BudgetExceeded, DomainError, RecipeError, VerificationFailed
from ._inverse import peel_inverse
from ._io import param_argument, read_text, toml_table, write_atomically
from ._numeric import mp_function, to_mpf
from ._parametrization import _check_name, _check_value, _symbol, exact_number
from ._parse import FUNCTIONS, parse_expression
from ._recipe import check_keys
from ._recipe import show_value as _show
from ._verify import Check
from ._version import __version__

__all__ = [
    "Curvature", "Outcome", "Piece", "PotentialSpec", "Realization", "add_realize_arguments", "find_potential",
    "load_potential", "potential_from_dict", "potential_from_text", "realize", "run_realize", "shipped_potentials",
]

KEYS = ("name", "title", "description", "reference", "variables", "potential", "hessian", "domain",
        "constraints", "w0", "assumptions", "parameters")
REQUIRED = ("name", "variables", "w0")
DOMAINS = {"positive": (sp.S.Zero, sp.oo), "negative": (-sp.oo, sp.S.Zero), "real": (-sp.oo, sp.oo)}
POTENTIALS_DIR = Path(__file__).resolve().parent.parent / "potentials"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: the sympy function classes of the recipe grammar (sqrt and cbrt build powers, not functions)
_GRAMMAR = tuple(dict.fromkeys(f for f, _, _ in FUNCTIONS.values() if isinstance(f, type)))
#: budgets (seconds) of the symbolic steps that can run long
_SIMPLIFY, _INTEGRATE, _SOLVE, _LIMIT = 3.0, 5.0, 5.0, 2.0
#: sample points near w0 for the structure tests and checks
_POINTS = 6


# -- the input ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PotentialSpec:
    """A potential R(w) (or only its Hessian) with its domain, initial point and parameters.

    Every variable is a real Symbol whose assumptions follow its domain interval (positive for
    (0, ∞), ...); ``defaults`` maps each parameter to an exact Rational used by the numerics.
    """

    name: str
    variables: tuple[sp.Symbol, ...]
    hessian: sp.ImmutableMatrix
    domain: tuple[tuple[sp.Expr, sp.Expr], ...]
    w0: tuple[sp.Expr, ...]
    potential: sp.Expr | None = None
    constraints: tuple[sp.Expr, ...] = ()
    parameters: tuple[sp.Symbol, ...] = ()
    defaults: Mapping[sp.Symbol, sp.Rational] = dataclasses.field(default_factory=dict)
    title: str = ""
    source: Mapping[str, object] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def d(self) -> int:
        return len(self.variables)

    @property
    def values(self) -> dict[sp.Symbol, sp.Rational]:
        """The parameter substitution of the numerics."""
        return dict(self.defaults)

    def with_values(self, values: Mapping[str, object]) -> PotentialSpec:
        """A copy with some parameter values replaced (``--param NAME=VALUE``), checked again."""
        by_name = {p.name: p for p in self.parameters}
        new = dict(self.defaults)
        for k, v in values.items():
            if k not in by_name:
                raise RecipeError(f"--param: {k!r} is not a parameter of this potential "
                                  f"(parameters: {', '.join(by_name) or 'none'})")
            new[by_name[k]] = exact_number(v, f"--param {k}")
            _check_value(by_name[k], new[by_name[k]], f"--param {k}")
        spec = dataclasses.replace(self, defaults=new)
        _validate(spec)
        return spec


def load_potential(path: str | Path) -> PotentialSpec:
    """The potential of the POTENTIAL.toml file ``path`` (format: module docstring)."""
    spec = potential_from_text(read_text(path, "potential"), source=str(path))
    return dataclasses.replace(spec, source={**spec.source, "file": str(path)})


def potential_from_text(text: str, source: str = "<potential>") -> PotentialSpec:
    """The potential of the TOML ``text``; ``source`` names it in error messages."""
    return potential_from_dict(toml_table(text, source, "potential"), source)


def potential_from_dict(data: Mapping, source: str = "<potential>") -> PotentialSpec:
    """The potential of already-parsed TOML tables; every error names ``source`` and the key."""

    def fail(message: str) -> RecipeError:
        return RecipeError(f"{source}: {message}")

    check_keys(data, KEYS, REQUIRED, fail, "potential")
    if ("potential" in data) == ("hessian" in data):
        raise fail("give exactly one of 'potential' (R(w)) and 'hessian' (∇²R(w))")
    name = data["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail(f"name: {_show(name)} is not a valid name (letters, digits, '_', '.' and '-', "
                   "starting with a letter or digit)")
    for key in ("title", "description", "reference"):
        if not isinstance(data.get(key, ""), str):
            raise fail(f"{key}: expected a string, got {_show(data[key])}")
    try:
        spec = _build(data, name)
    except RecipeError as exc:
        raise fail(str(exc)) from None
    spec = dataclasses.replace(spec, source=copy.deepcopy(dict(data)))
    try:
        _validate(spec)
    except RecipeError as exc:
        raise fail(str(exc)) from None
    return spec


def _table(data: Mapping, key: str) -> dict:
    table = data.get(key, {})
    if not isinstance(table, Mapping):
        raise RecipeError(f"{key}: expected a table, got {_show(table)}")
    return dict(table)


def _variable_name(name, where: str) -> str:
    # w1, w2, ... are the natural names of a potential's variables (a recipe reserves them for derive)
    if isinstance(name, str) and re.fullmatch(r"w[0-9]+", name):
        return name
    return _check_name(name, where)


def _build(data: Mapping, name: str) -> PotentialSpec:
    """Names, symbols and expressions of the potential tables (shapes checked, values not yet)."""
    variables = data["variables"]
    if not isinstance(variables, list) or not variables:
        raise RecipeError(f"variables: expected a non-empty list of names, got {_show(variables)}")
    var_names = [_variable_name(v, f"variables[{i}]") for i, v in enumerate(variables)]
    for n in var_names:
        if var_names.count(n) > 1:
            raise RecipeError(f"variables: {n!r} is listed twice")
    assumptions = _table(data, "assumptions")
    parameters = _table(data, "parameters")
    for k, v in list(assumptions.items()):
        if isinstance(v, str):
            assumptions[k] = v = [v]
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise RecipeError(f"assumptions.{k}: expected a list of assumption names, got {_show(v)}")
        if k in var_names:
            raise RecipeError(f"assumptions.{k}: a variable's assumptions come from its domain (use domain.{k})")
        if k not in parameters:
            raise RecipeError(f"parameters.{k}: no value (realize checks its result numerically; "
                              "give every parameter a value)")
    par_names = [_check_name(p, f"parameters.{p}") for p in parameters]
    for n in par_names:
        if n in var_names:
            raise RecipeError(f"parameters.{n}: {n!r} is also a variable")
    pars = {n: _symbol(n, assumptions.get(n, ()), f"assumptions.{n}") for n in par_names}
    defaults = {}
    for n, v in parameters.items():
        defaults[pars[n]] = exact_number(v, f"parameters.{n}")
        _check_value(pars[n], defaults[pars[n]], f"parameters.{n}")

    domain_table = _table(data, "domain")
    for k in domain_table:
        if k not in var_names:
            raise RecipeError(f"domain.{k}: {k!r} is not a variable (variables: {', '.join(var_names)})")
    domain = [_interval(domain_table.get(n, "real"), pars, f"domain.{n}") for n in var_names]
    symbols = [_domain_symbol(n, lo, hi) for n, (lo, hi) in zip(var_names, domain)]
    names = {**pars, **dict(zip(var_names, symbols))}

    if "potential" in data:
        potential = parse_expression(data["potential"], names, where="potential")
        hessian = sp.hessian(potential, symbols)
    else:
        potential = None
        rows = data["hessian"]
        d = len(symbols)
        if not isinstance(rows, list) or len(rows) != d or not all(isinstance(r, list) and len(r) == d for r in rows):
            raise RecipeError(f"hessian: expected a {d} × {d} table (a list of {d} lists of {d} expressions), "
                              f"got {_show(rows)}")
        hessian = sp.Matrix(d, d, lambda i, j: _expression(rows[i][j], names, f"hessian[{i}][{j}]"))
    constraints = data.get("constraints", [])
    if not isinstance(constraints, list):
        raise RecipeError(f"constraints: expected a list of expressions, got {_show(constraints)}")
    constraints = [_expression(c, names, f"constraints[{i}]") for i, c in enumerate(constraints)]
    w0 = data["w0"]
    if not isinstance(w0, Mapping):
        raise RecipeError(f"w0: expected a table 'variable = value', got {_show(w0)}")
    extra = [k for k in w0 if k not in var_names]
    if extra:
        raise RecipeError(f"w0: {', '.join(map(str, extra))} not a variable (variables: {', '.join(var_names)})")
    absent = [n for n in var_names if n not in w0]
    if absent:
        raise RecipeError(f"w0: no initial value for {', '.join(absent)}")
    point = tuple(_expression(w0[n], pars, f"w0.{n}") for n in var_names)
    return PotentialSpec(name=name, title=data.get("title", ""), variables=tuple(symbols),
                         hessian=sp.ImmutableMatrix(hessian), domain=tuple(domain), w0=point, potential=potential,
                         constraints=tuple(constraints), parameters=tuple(pars.values()), defaults=defaults)


def _expression(value, names: Mapping[str, sp.Symbol], where: str) -> sp.Expr:
    if isinstance(value, str):
        return parse_expression(value, names, where=where)
    return exact_number(value, where)


def _interval(value, pars: Mapping[str, sp.Symbol], where: str) -> tuple[sp.Expr, sp.Expr]:
    if isinstance(value, str):
        if value not in DOMAINS:
            raise RecipeError(f"{where}: unknown domain {value!r} (use {', '.join(DOMAINS)} or [lo, hi])")
        return DOMAINS[value]
    if not isinstance(value, list) or len(value) != 2:
        raise RecipeError(f"{where}: expected 'positive', 'negative', 'real' or [lo, hi], got {_show(value)}")
    ends = []
    for end, v, inf in zip(("lo", "hi"), value, (-sp.oo, sp.oo)):
        if v in ("-oo", "oo"):
            if v != str(inf):
                raise RecipeError(f"{where}: {end} = {v!r} (the domain is the open interval (lo, hi))")
            ends.append(inf)
        else:
            ends.append(_expression(v, pars, f"{where}.{end}"))
    return ends[0], ends[1]


def _domain_symbol(name: str, lo: sp.Expr, hi: sp.Expr) -> sp.Symbol:
    if lo.is_nonnegative:
        return sp.Symbol(name, positive=True)
    if hi.is_nonpositive:
        return sp.Symbol(name, negative=True)
    return sp.Symbol(name, real=True)


def _validate(spec: PotentialSpec) -> None:
    """w0 inside the domain, ∇²R(w0) ≻ 0, and a table given as ``hessian`` really is a Hessian."""
    values = spec.values
    with mp.workdps(30):
        for x, v, (lo, hi) in zip(spec.variables, spec.w0, spec.domain):
            if not (to_mpf(lo, values) < to_mpf(v, values) < to_mpf(hi, values)):
                raise RecipeError(f"w0.{x.name}: {v} is not inside the domain ({lo}, {hi})")
        point = dict(zip(spec.variables, (to_mpf(v, values) for v in spec.w0)))
        for i, c in enumerate(spec.constraints):
            value = mp_function(spec.variables, c, values)(*point.values())
            if not (isinstance(value, mp.mpf) and value > 0):
                raise RecipeError(f"constraints[{i}]: {c} is not positive at w0 (value {mp.nstr(value, 8)})")
        if not _positive_definite(_hessian_fn(spec)(*point.values())):
            raise RecipeError(f"{'potential' if spec.potential is not None else 'hessian'}: ∇²R(w0) is not positive "
                              f"definite at w0 = ({', '.join(map(str, spec.w0))}), so R is not strictly convex there")
        if spec.potential is None:
            _check_hessian_table(spec, values)


def _check_hessian_table(spec: PotentialSpec, values: Mapping) -> None:
    """A table H is ∇²R of some R (locally) iff it is symmetric and ∂_k H_ij is symmetric in i, j, k."""
    W, H = spec.variables, spec.hessian
    pairs = [(f"hessian[{i}][{j}] = hessian[{j}][{i}]", H[i, j], H[j, i]) for i in range(spec.d) for j in range(i)]
    pairs += [(f"∂hessian[{i}][{j}]/∂{W[k].name} = ∂hessian[{i}][{k}]/∂{W[j].name}",
               sp.diff(H[i, j], W[k]), sp.diff(H[i, k], W[j]))
              for i in range(spec.d) for j in range(spec.d) for k in range(j)]
    if not pairs:
        return
    fn = mp_function(W, [a - b for _, a, b in pairs] + [a for _, a, _ in pairs], values)
    for p in _sample_points(spec, _POINTS, 0):
        out = fn(*p)
        n = len(pairs)
        for (what, _, _), diff, size in zip(pairs, out[:n], out[n:]):
            if abs(diff) > _tolerance() * (1 + abs(size)):
                at = ", ".join(f"{x.name} = {mp.nstr(v, 10)}" for x, v in zip(W, p))
                raise RecipeError(f"hessian: not the Hessian of any potential: {what} fails at {at} "
                                  f"(difference {mp.nstr(diff, 8)})")


def _hessian_fn(spec: PotentialSpec):
    """w ↦ ∇²R(w) as an mpmath matrix, from the user's formula."""
    fn = mp_function(spec.variables, list(spec.hessian), spec.values)
    return lambda *w: _square(fn(*w))


def _square(entries: Sequence) -> mp.matrix:
    """The d × d mpmath matrix of d² entries in row-major order."""
    d = round(len(entries) ** 0.5)
    return mp.matrix([list(entries[i * d:(i + 1) * d]) for i in range(d)])


def _positive_definite(M: mp.matrix) -> bool:
    if not all(isinstance(v, mp.mpf) and mp.isfinite(v) for v in M):
        return False
    try:
        return min(mp.eigsy(M, eigvals_only=True)) > 0
    except (ZeroDivisionError, ValueError):
        return False


def _tolerance() -> mp.mpf:
    """The relative tolerance of a numerical zero: 10^(8 − dps), as in the verification of derive."""
    return mp.mpf(10) ** (8 - mp.mp.dps)


def _sample_points(spec: PotentialSpec, n: int, seed: int) -> list[tuple[mp.mpf, ...]]:
    """``n`` points near w0 (w0 first) inside the domain and the constraints, where ∇²R ≻ 0.

    Each coordinate moves by up to 90 % of the way to a finite end of its domain, and by at most
    1 + |w0_i|; after a point that fails a condition the next is drawn closer to w0.
    """
    rng = random.Random(seed)
    values = spec.values
    w0 = [to_mpf(v, values) for v in spec.w0]
    bounds = [(to_mpf(lo, values), to_mpf(hi, values)) for lo, hi in spec.domain]
    reach = [(min(mp.mpf("0.9") * (c - lo), 1 + abs(c)), min(mp.mpf("0.9") * (hi - c), 1 + abs(c)))
             for c, (lo, hi) in zip(w0, bounds)]
    constraints = mp_function(spec.variables, list(spec.constraints), values) if spec.constraints else None
    hessian = _hessian_fn(spec)
    points = [tuple(w0)]
    scale = mp.mpf(1)
    for _ in range(50 * n):
        if len(points) >= n:
            break
        # an irrational jitter keeps the points off special values
        t = [mp.mpf(rng.randint(-96, 96)) / 97 + mp.sqrt(2) / 1000 for _ in w0]
        p = tuple(c + scale * ti * (r[1] if ti > 0 else r[0]) for c, ti, r in zip(w0, t, reach))
        ok = all(lo < x < hi for x, (lo, hi) in zip(p, bounds))
        ok = ok and (constraints is None or all(isinstance(v, mp.mpf) and v > 0 for v in constraints(*p)))
        if ok and _positive_definite(hessian(*p)):
            points.append(p)
        else:
            scale /= 2
    if len(points) < 2:
        raise RecipeError(f"domain: found no sample point near w0 inside the domain where ∇²R is positive definite "
                          f"({spec.name})")
    return points


# -- the result objects --------------------------------------------------------------------------------


class Outcome(enum.Enum):
    """What ``realize`` found; each value is the message shown to the user."""

    REALISED = "realised in closed form"
    IMPLICIT = "realised implicitly (an integral or its inverse is not elementary): derive cannot take it"
    CURVED = "no D = d realisation: the Hessian metric of R is curved"
    NO_CONSTRUCTION = "the Hessian metric is flat, but no D = d construction was found"


EXIT_STATUS = {Outcome.REALISED: 0, Outcome.IMPLICIT: 0, Outcome.CURVED: 3, Outcome.NO_CONSTRUCTION: 5}


@dataclasses.dataclass(frozen=True)
class Curvature:
    """The Riemann tensor of g = ∇²R at w0 (and a flatness probe at points near it).

    ``component`` is the (i, j, k, l) (1-based) of the largest |R_ijkl| at w0 with ``value`` its
    mpmath value and ``exact`` its exact value when sympy found one; ``gaussian`` is K = R_1212 / det g
    for d = 2. ``flat`` is decided at ``points`` points to ``dps`` digits (``decided_by`` says how).
    """

    flat: bool
    point: tuple[sp.Expr, ...]
    decided_by: str
    component: tuple[int, int, int, int] | None = None
    value: str | None = None
    exact: sp.Expr | None = None
    gaussian: str | None = None
    gaussian_exact: sp.Expr | None = None
    points: int = 0

    def summary(self) -> str:
        if self.component is None:
            return f"flat ({self.decided_by})"
        if self.flat:
            return f"flat, R_ijkl = 0 ({self.decided_by})"
        ijkl = "".join(map(str, self.component))
        text = f"R_{ijkl}(w0) = {self.exact if self.exact is not None else self.value} ≠ 0"
        if self.gaussian is not None:
            k = self.gaussian_exact if self.gaussian_exact is not None else self.gaussian
            text = f"Gaussian curvature K(w0) = {k}, {text}"
        return f"curved: {text} at w0 = ({', '.join(map(sp.sstr, self.point))}) ({self.decided_by})"


@dataclasses.dataclass(frozen=True)
class Piece:
    """One 1-D factor: z = ⟨a, w⟩ ∈ ``interval`` with φ''(z) = ``phi2`` realised by z = q(u).

    ``F`` is u = ∫ √φ''(z) dz in closed form (None: quadrature from z0, so u0 = 0) and ``q`` its inverse
    (None: implicit, solved numerically); ``method`` says how each was found.
    """

    z: sp.Symbol
    direction: tuple[sp.Expr, ...]
    argument: sp.Expr
    interval: tuple[sp.Expr, sp.Expr]
    phi2: sp.Expr
    sqrt_phi2: sp.Expr
    z0: sp.Expr
    u: sp.Symbol
    u0: sp.Expr
    F: sp.Expr | None
    q: sp.Expr | None
    u_interval: tuple[sp.Expr, sp.Expr] | None
    method: str

    @property
    def closed_form(self) -> bool:
        return self.q is not None


@dataclasses.dataclass(frozen=True)
class Realization:
    """The result of :func:`realize`: a parametrization w = G(u) with ∇²R(G(u)) = (J Jᵀ)⁻¹, or why none.

    ``A`` has the directions a_k as rows (z = A w); ``G`` and ``recipe_text`` (a recipe ``mirrorsym
    derive`` accepts) are None unless every piece is closed form (status REALISED).
    """

    spec: PotentialSpec
    status: Outcome
    method: str
    hessian: sp.ImmutableMatrix
    curvature: Curvature
    A: sp.ImmutableMatrix | None = None
    pieces: tuple[Piece, ...] = ()
    u: tuple[sp.Symbol, ...] = ()
    G: tuple[sp.Expr, ...] | None = None
    u0: tuple[sp.Expr, ...] = ()
    checks: tuple[Check, ...] = ()
    notes: tuple[str, ...] = ()
    recipe_text: str | None = None
    dps: int = 30
    seconds: float = 0.0

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.status]

    @property
    def realised(self) -> bool:
        return bool(self.pieces)

    def numeric(self) -> NumericRealization:
        """w = G(u), u(w) and J(u) in mpmath, implicit pieces solved numerically."""
        if not self.realised:
            raise ValueError(f"{self.spec.name}: {self.status.value}")
        return NumericRealization(self)

    def summary(self) -> list[str]:
        """The lines ``mirrorsym realize`` prints."""
        return _summary(self)

    def to_json(self) -> dict:
        """Every formula as a sympy-parsable string; deterministic (no timings)."""
        return _to_json(self)

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def latex(self) -> str:
        """An amsmath fragment: ∇²R, the curvature, each piece's F and q, G and u0."""
        return _latex(self)

    def numpy_module(self) -> str:
        """Source of a standalone numpy module: G(u), jacobian(u), u_of_w(w), init(), gradient_step(...)."""
        if not self.realised:
            raise ValueError(f"{self.spec.name}: {self.status.value}")
        return _numpy_module(self)


# -- the stage -------------------------------------------------------------------------------------


def realize(spec: PotentialSpec, *, budget: float | Budget | None = 60.0, dps: int = 30, seed: int = 0) -> Realization:
    """Realise the potential ``spec``: a parametrization w = G(u), D = d, whose gradient flow is its mirror flow.

    Curved metrics (status CURVED, with the certificate in ``curvature``) and flat ones without a
    construction (NO_CONSTRUCTION) are results, not errors. Raises :class:`BudgetExceeded` when the
    overall budget runs out and :class:`VerificationFailed` if the result fails its mpmath checks.
    """
    t0 = time.perf_counter()
    bud = budget if isinstance(budget, Budget) else Budget(budget)
    values = spec.values
    with mp.workdps(dps):
        H = sp.ImmutableMatrix(spec.d, spec.d, lambda i, j: _simplified(spec.hessian[i, j], bud, "simplify ∇²R"))
        points = _sample_points(spec, _POINTS, seed)
        curv = _curvature(spec, H, points, bud)
        base = {"spec": spec, "hessian": H, "curvature": curv, "dps": dps}
        if not curv.flat:
            return Realization(**base, status=Outcome.CURVED, method="curvature certificate",
                               notes=("a realisation needs D > d parameters (Nash embedding, MATH.md §8)",),
                               seconds=time.perf_counter() - t0)
        found = _structure(spec, H, points, bud)
        if found is None:
            return Realization(**base, status=Outcome.NO_CONSTRUCTION, method="flat, no structure found",
                               notes=("∇²R is not separable after a linear change of variables with rational "
                                      "directions (nor constant); a D = d realisation exists locally, but "
                                      "mirrorsym has no construction for it",),
                               seconds=time.perf_counter() - t0)
        A, zs, hs, method = found
        us = _u_symbols(spec)
        pieces = []
        for k in range(spec.d):
            a = tuple(A.row(k))
            a_mp = [to_mpf(x, values) for x in a]
            zpoints = [mp.fsum(x * y for x, y in zip(a_mp, p)) for p in points]
            pieces.append(_piece(zs[k], a, _dot(a, spec.variables), _interval_of(a, spec), hs[k], _dot(a, spec.w0),
                                 us[k], values, zpoints, bud))
        realisation = _assemble(spec, H, curv, A, tuple(pieces), us, method, points)
    return dataclasses.replace(realisation, seconds=time.perf_counter() - t0)


def _dot(a: Sequence[sp.Expr], b: Sequence[sp.Expr]) -> sp.Expr:
    return sp.Add(*(x * y for x, y in zip(a, b)))


def _try(budget: Budget, step: str, seconds: float, fn: Callable, *args):
    """``fn(*args)`` under a sub-budget; None when it runs out of time or sympy gives up with an error."""
    try:
        return attempt(budget, step, seconds, fn, *args)[0]
    except BudgetExceeded:
        raise
    except Exception:  # noqa: BLE001 -- sympy's failures (NotImplementedError, PolynomialError, ...) are no fixed set
        return None


def _simplified(e: sp.Expr, budget: Budget, step: str) -> sp.Expr:
    """sympy's ``simplify`` when it finishes within its budget and does not grow ``e``, else ``e``."""
    out = _try(budget, step, _SIMPLIFY, sp.simplify, e)
    return out if out is not None and sp.count_ops(out) <= sp.count_ops(e) else e


def _u_symbols(spec: PotentialSpec) -> tuple[sp.Symbol, ...]:
    """u (d = 1) or u1..ud, else x.. or v..: a prefix clashing with no parameter name."""
    taken = {p.name for p in spec.parameters + spec.variables}
    for prefix in ("u", "x", "v", "y", "q"):
        names = [prefix] if spec.d == 1 else [f"{prefix}{i + 1}" for i in range(spec.d)]
        if not taken & set(names):
            return tuple(sp.Symbol(n, real=True) for n in names)
    raise RecipeError("variables: the names u, x, v, y, q (and their numbered forms) are all taken by variables or "
                      "parameters; rename one")


# -- curvature -------------------------------------------------------------------------------------------


def _curvature(spec: PotentialSpec, H: sp.Matrix, points, budget: Budget) -> Curvature:
    """R_ijkl = ¼ g^{pq} (T_ilp T_jkq − T_ikp T_jlq) at w0 and the other sample points (module docstring).

    A component counts as zero when it is below 10^(8 − dps) relative to the terms that cancel in it.
    """
    d, W = spec.d, spec.variables
    if d == 1:
        return Curvature(True, spec.w0, "every 1-D metric is flat", value="0")
    T = [sp.diff(H[i, j], W[k]) for i, j, k in itertools.product(range(d), repeat=3)]
    fn = mp_function(W, list(H) + T, spec.values)
    # one component per pair of pairs i < j, k < l: the others follow by the symmetries of R_ijkl
    indices = list(itertools.combinations_with_replacement(itertools.combinations(range(d), 2), 2))

    def riemann(p):
        out = fn(*p)
        g = _square(out[: d * d])
        gi = g**-1
        t = dict(zip(itertools.product(range(d), repeat=3), out[d * d:]))
        comps = []
        for (i, j), (k, l) in indices:
            plus = [gi[a, b] * t[i, l, a] * t[j, k, b] for a in range(d) for b in range(d)]
            minus = [gi[a, b] * t[i, k, a] * t[j, l, b] for a in range(d) for b in range(d)]
            scale = mp.fsum(abs(x) for x in plus + minus) / 4
            comps.append(((mp.fsum(plus) - mp.fsum(minus)) / 4, scale))
        return g, comps

    flat = True
    for n, p in enumerate(points):
        g, comps = riemann(p)
        flat = flat and all(abs(v) <= _tolerance() * max(scale, mp.mpf(10) ** -10) for v, scale in comps)
        if n == 0:
            g0, (at, (value, _)) = g, max(enumerate(comps), key=lambda c: abs(c[1][0]))
    (i, j), (k, l) = indices[at]
    component = (i + 1, j + 1, k + 1, l + 1)
    if flat:
        return Curvature(True, spec.w0, f"|R_ijkl| < 10^({8 - mp.mp.dps}) relative at {len(points)} points near w0, "
                         f"{mp.mp.dps} digits", component, mp.nstr(value, 5), points=len(points))
    exact, gauss_exact = _exact_curvature(spec, H, T, (i, j, k, l), budget)
    gauss = mp.nstr(value / mp.det(g0), 20) if d == 2 else None
    return Curvature(False, spec.w0, f"nonzero at w0 to {mp.mp.dps} digits", component, mp.nstr(value, 20), exact,
                     gauss, gauss_exact, len(points))


def _exact_curvature(spec, H, T, ijkl, budget):
    """The exact R_ijkl(w0) (and K(w0) = R_1212/det g for d = 2), when sympy simplifies them in time."""
    d = spec.d
    at = {**dict(zip(spec.variables, spec.w0)), **spec.values}
    i, j, k, l = ijkl

    def compute():
        g = H.xreplace(at)
        gi = g.inv()
        t = {ijk: e.xreplace(at) for ijk, e in zip(itertools.product(range(d), repeat=3), T)}
        value = sp.simplify(sum(gi[a, b] * (t[i, l, a] * t[j, k, b] - t[i, k, a] * t[j, l, b])
                                for a in range(d) for b in range(d)) / 4)
        return value, (sp.simplify(value / g.det()) if d == 2 else None)

    return _try(budget, "exact curvature", _SIMPLIFY, compute) or (None, None)


# -- structure -----------------------------------------------------------------------------------------


def _structure(spec: PotentialSpec, H: sp.Matrix, points, budget: Budget):
    """(A, z symbols, φ_k''(z_k), method) with ∇²R = Aᵀ diag(φ_k''(⟨a_k, w⟩)) A, or None."""
    d, W = spec.d, spec.variables
    if all(H[i, j] == 0 for i in range(d) for j in range(d) if i != j) and \
            all(not (H[i, i].free_symbols & (set(W) - {W[i]})) for i in range(d)):
        return sp.ImmutableMatrix(sp.eye(d)), W, [H[i, i] for i in range(d)], "separable"
    if not (H.free_symbols & set(W)):
        L, _ = sp.Matrix(H).LDLdecomposition()
        return _linear(spec, H, sp.ImmutableMatrix(L.T), points, budget, "constant ∇²R (quadratic R), by LDLᵀ")
    A = _directions(spec, points)
    if A is None:
        return None
    return _linear(spec, H, A, points, budget, "separable after the linear change of variables z = A w")


def _directions(spec: PotentialSpec, points) -> sp.ImmutableMatrix | None:
    """The rows a_k, from the generalised eigenvectors of two Hessians, rationalised; None if none fit.

    With H = Aᵀ D(w) A, H(p)⁻¹ H(p') = A⁻¹ D(p)⁻¹ D(p') A: its eigenvectors are the columns of A⁻¹,
    determined when the eigenvalues are distinct. Each row is scaled to have largest entry 1.
    """
    hessian = _hessian_fn(spec)
    d = spec.d
    for p1, p2 in itertools.combinations(points, 2):
        E, ER = mp.eig(hessian(*p1) ** -1 * hessian(*p2))
        if any(abs(mp.im(e)) > _tolerance() * abs(e) for e in E):
            return None
        E = [mp.re(e) for e in E]
        if min(abs(a - b) for a, b in itertools.combinations(E, 2)) < mp.mpf(10) ** -6 * max(map(abs, E)):
            continue  # degenerate at this pair: the eigenvectors are not determined
        inv = ER.apply(mp.re) ** -1
        rows = []
        for k in range(d):
            row = [inv[k, c] for c in range(d)]
            big = max(row, key=abs)
            row = [x / big for x in row]
            exact = [Fraction(mp.nstr(x, mp.mp.dps)).limit_denominator(1000) for x in row]
            if any(abs(x - mp.mpf(e.numerator) / e.denominator) > _tolerance() for x, e in zip(row, exact)):
                return None  # an irrational direction: no exact construction
            rows.append([sp.Rational(e.numerator, e.denominator) for e in exact])
        # a canonical order: by the position of the leading nonzero entry, then lexicographically downward
        rows.sort(key=lambda r: (next(i for i, x in enumerate(r) if x != 0), [-x for x in r]))
        A = sp.ImmutableMatrix(rows)
        return A if A.det() != 0 else None
    return None


def _linear(spec, H, A, points, budget, method):
    """(A, z, h, method) with ∇²R = Aᵀ diag(h_k(z_k)) A checked at the points, h_k in fresh z_k; or None."""
    d, W = spec.d, spec.variables
    Ainv = A.inv()
    taken = {p.name for p in spec.parameters} | {x.name for x in W}
    prefix = next(c for c in ("z", "y", "s", "r") if not taken & {f"{c}{k + 1}" for k in range(d)})
    zs = tuple(_domain_symbol(f"{prefix}{k + 1}", *_interval_of(tuple(A.row(k)), spec)) for k in range(d))
    z0 = A * sp.Matrix(spec.w0)
    Hz = Ainv.T * H.xreplace(dict(zip(W, Ainv * sp.Matrix(zs)))) * Ainv
    # h_k may still mention the other z_j symbolically; the check below proves it does not depend on them
    hs = [_simplified(Hz[k, k].xreplace({zs[j]: z0[j] for j in range(d) if j != k}), budget, "simplify φ''")
          for k in range(d)]
    rebuilt = A.T * sp.diag(*[h.xreplace({zs[k]: _dot(A.row(k), W)}) for k, h in enumerate(hs)]) * A
    fn = mp_function(W, list(H) + list(rebuilt), spec.values)
    for p in points:
        out = fn(*p)
        if not all(_close(a, b) for a, b in zip(out[: d * d], out[d * d:])):
            return None
    return A, zs, hs, method


def _interval_of(a: Sequence[sp.Expr], spec: PotentialSpec) -> tuple[sp.Expr, sp.Expr]:
    """The interval of z = ⟨a, w⟩: the image of the domain box, cut by linear constraints parallel to a."""
    values = spec.values

    def positive(e):
        return to_mpf(e, values) > 0

    lo, hi = sp.S.Zero, sp.S.Zero
    for c, (l, h) in zip(a, spec.domain):
        if c != 0:
            lo, hi = lo + (c * l if positive(c) else c * h), hi + (c * h if positive(c) else c * l)
    j = next(i for i, x in enumerate(a) if x != 0)
    for cons in spec.constraints:
        if not cons.is_polynomial(*spec.variables):
            continue
        poly = sp.Poly(cons, *spec.variables)
        b = [poly.coeff_monomial(x) for x in spec.variables]
        lam = b[j] / a[j]
        if poly.total_degree() != 1 or any(sp.simplify(bi - lam * ai) != 0 for bi, ai in zip(b, a)):
            continue
        # cons = λ z + c0 > 0
        bound = -poly.coeff_monomial(1) / lam
        if positive(lam):
            lo = bound if lo == -sp.oo or positive(bound - lo) else lo
        else:
            hi = bound if hi == sp.oo or positive(hi - bound) else hi
    return lo, hi


# -- one piece: √φ'', ∫, inverse ----------------------------------------------------------------------


def _piece(z, a, argument, interval, h, z0, u, values, zpoints, budget) -> Piece:
    """Realise φ''(z) = h on ``interval``: u = F(z) = ∫ √h, z = q(u), u0 = F(z0) (or 0 when F is numerical)."""
    ref = {**values, z: z0.xreplace(values)}
    f = _positive_root(h, z, ref, budget)
    fn_h, fn_f = mp_function([z], h, values), mp_function([z], f, values)
    if not all(_close(fn_f(x) ** 2, fn_h(x)) and fn_f(x) > 0 for x in zpoints):
        f = sp.sqrt(h)  # a factor changed sign on the domain after all: keep the principal root
    F, how = _antiderivative(f, z, interval, ref, zpoints, values, budget)
    if F is None:
        return Piece(z, a, argument, interval, h, f, z0, u, sp.S.Zero, None, None, None,
                     f"implicit: ∫√φ'' {how}; u = ∫_z0^z √φ'' by quadrature, z = q(u) by a safeguarded Newton")
    q, qhow = _inverse(F, z, u, ref, zpoints, values, budget)
    u0 = _simplified(F.xreplace({z: z0}), budget, "simplify u0")
    method = f"u = F(z) {how}; " + (f"z = q(u) {qhow}" if q is not None else
                                     f"implicit inverse ({qhow}): z = q(u) by a safeguarded Newton")
    return Piece(z, a, argument, interval, h, f, z0, u, u0, F, q, _limits(F, z, interval, budget), method)


def _close(a, b) -> bool:
    return isinstance(a, mp.mpf) and isinstance(b, mp.mpf) and abs(a - b) <= _tolerance() * (abs(a) + abs(b) + 1)


def _positive_root(h: sp.Expr, z: sp.Symbol, ref: Mapping, budget: Budget) -> sp.Expr:
    """√h on the real branch through the reference point, factor by factor.

    h = c Π b_j^{e_j}: each base keeps the sign σ_j it has at z0, so √h = √(c Π σ_j^{e_j}) Π (σ_j b_j)^{e_j/2}
    -- e.g. 1/(z(1 − z)) = −1/(z(z − 1)) on (0, 1) gives 1/(√z √(1 − z)), which sympy can integrate.
    """
    factored = _try(budget, "factor φ''", _SIMPLIFY, sp.factor, h)
    coefficient, factors = (h if factored is None else factored).as_coeff_mul()
    root, sign = sp.S.One, sp.S.One
    for factor in factors:
        base, e = factor.as_base_exp()
        s = 1 if base.is_positive else -1 if base.is_negative else _sign(base, ref)
        if s is None or (s < 0 and not e.is_integer):
            return sp.sqrt(h)
        sign *= sp.Integer(s) ** e
        root *= (s * base) ** (e / 2)
    c = coefficient * sign
    return sp.sqrt(c) * root if c.is_positive else sp.sqrt(h)


def _sign(e: sp.Expr, ref: Mapping) -> int | None:
    v = complex(sp.N(e.xreplace(dict(ref)), 30))
    if v.imag != 0 or v.real == 0:
        return None
    return 1 if v.real > 0 else -1


def _antiderivative(f, z, interval, ref, zpoints, values, budget):
    """(F, how) with F' = f in closed form in the recipe grammar, or (None, why not).

    sympy integrates in a positive variable s measured from a finite end of the interval (z = lo + s,
    or z = hi − s), so that it knows which branch it is on; Piecewise results are resolved at z0.
    """
    lo, hi = interval
    s = sp.Dummy("s", positive=True)
    if lo.is_finite:
        integrand, back = f.xreplace({z: lo + s}), z - lo
    elif hi.is_finite:
        integrand, back = -f.xreplace({z: hi - s}), hi - z  # then F(z) = G(hi − z) has F' = f
    else:
        integrand, back, s = f, z, z
    G = _try(budget, "integrate √φ''", _INTEGRATE, sp.integrate, integrand, s)
    if G is None:
        return None, f"did not finish in {_INTEGRATE:g} s"
    if G.has(sp.Integral):
        return None, "has no antiderivative sympy can find"
    resolved = _resolve_piecewise(G, {**ref, s: back.xreplace(ref)})
    if resolved is None or not _in_grammar(resolved):
        return None, f"is not elementary in the recipe grammar ({_clip(sp.sstr(G.xreplace({s: back})))})"
    F = resolved.xreplace({s: back})
    dF, fn = mp_function([z], sp.diff(F, z), values), mp_function([z], f, values)
    if not all(_close(dF(x), fn(x)) for x in zpoints):
        return None, f"has an antiderivative {_clip(sp.sstr(F))} from sympy that fails F' = √φ'' on the domain"
    return F, "by sympy's integrate"


def _resolve_piecewise(e: sp.Expr, ref: Mapping) -> sp.Expr | None:
    """Each Piecewise replaced by its branch that holds at the reference point (None if none decides)."""
    for pw in e.atoms(sp.Piecewise):
        for value, cond in pw.args:
            truth = cond.xreplace(dict(ref))
            if truth not in (sp.true, sp.false):
                return None
            if truth:
                e = e.xreplace({pw: value})
                break
        else:
            return None
    return e


def _inverse(F, z, u, ref, zpoints, values, budget):
    """(q, how) with q(F(z)) = z on the domain, in the recipe grammar; (None, why not) otherwise.

    Peeling first (it follows the branch through z0), then ``solve``, whose roots are kept only if
    they invert F at every sample point.
    """
    Fn = mp_function([z], F, values)
    rejected = []

    def candidates():
        q = peel_inverse(F, z, u, ref)
        if q is not None:
            yield q, "by peeling the inverse function layer by layer"
        for q in _try(budget, "solve F(z) = u", _SOLVE, sp.solve, sp.Eq(F, u), z) or []:
            yield q, "by sympy's solve, on the branch through z0"

    for q, how in candidates():
        if _in_grammar(q):
            qn = mp_function([u], q, values)
            if all(_close(qn(Fn(x)), x) for x in zpoints):
                return q, how
        rejected.append(_clip(sp.sstr(q)))
    if rejected:
        return None, f"no inverse in the recipe grammar; sympy offered {', '.join(rejected)}"
    return None, "sympy found no inverse"


def _in_grammar(e: sp.Expr) -> bool:
    """Whether ``e`` is written in the recipe grammar alone (so it prints in it: no floats, no I)."""
    for node in sp.preorder_traversal(e):
        if isinstance(node, (sp.Symbol, sp.Rational, sp.Add, sp.Mul, sp.Pow)) or node in (sp.pi, sp.E):
            continue
        if not isinstance(node, _GRAMMAR):
            return False
    return True


def _limits(F, z, interval, budget) -> tuple[sp.Expr, sp.Expr] | None:
    """(F(lo+), F(hi−)), the interval of u, or None when sympy does not find both limits in time."""
    ends = []
    for end, direction in zip(interval, ("+", "-")):
        value = _try(budget, "limit of F", _LIMIT, sp.limit, F, z, end, direction)
        if value is None or value.has(sp.Limit, sp.nan, sp.zoo, sp.AccumBounds) or not value.is_extended_real:
            return None
        ends.append(value)
    return ends[0], ends[1]


def _clip(text: str) -> str:
    return text if len(text) <= 100 else text[:97] + "..."


# -- assembly and checks -----------------------------------------------------------------------------------


def _assemble(spec, H, curv, A, pieces, us, method, points) -> Realization:
    """G = A⁻¹ q(u) and u0; the checks (a failure raises VerificationFailed); the recipe when G is closed."""
    Ainv = A.inv()
    closed = all(pc.closed_form for pc in pieces)
    G = tuple(_dot(Ainv.row(i), [pc.q for pc in pieces]) for i in range(spec.d)) if closed else None
    r = Realization(spec=spec, status=Outcome.REALISED if closed else Outcome.IMPLICIT, method=method, hessian=H,
                    curvature=curv, A=sp.ImmutableMatrix(A), pieces=pieces, u=us, G=G,
                    u0=tuple(pc.u0 for pc in pieces), dps=mp.mp.dps)
    checks = _checks(r, points)
    failed = [c.name for c in checks if not c.passed]
    if failed:
        raise VerificationFailed(f"{spec.name}: the realisation failed its checks: {', '.join(failed)}")
    if closed:
        return dataclasses.replace(r, checks=checks, recipe_text=_recipe_text(r))
    notes = ("implicit: mirrorsym derive cannot take it (a recipe's G must be an explicit expression); "
             "the numpy export (--numpy) and Realization.numeric() evaluate q(u) numerically",)
    return dataclasses.replace(r, checks=checks, notes=notes)


def _checks(r: Realization, points) -> tuple[Check, ...]:
    """At the sample points w near w0, in mpmath: G(u0) = w0, G(u(w)) = w and ∇²R(w) J Jᵀ = I.

    ∇²R is the user's (not the simplified one), so the check also covers the simplification.
    """
    num = NumericRealization(r)
    spec = r.spec
    values = spec.values
    hessian = _hessian_fn(spec)
    w0 = [to_mpf(v, values) for v in spec.w0]
    errors = {"init": _relative(num.w([to_mpf(v, values) for v in r.u0]), w0), "inverse": mp.mpf(0),
              "metric": mp.mpf(0)}
    for p in points:
        u = num.u(p)
        errors["inverse"] = max(errors["inverse"], _relative(num.w(u), p))
        J = num.jacobian(u)
        errors["metric"] = max(errors["metric"], _relative(hessian(*p) * (J * J.T), mp.eye(spec.d)))
    how = "closed form" if r.G is not None else "numerically: quadrature and root finding"
    statements = {"init": "G(u0) = w0: derive's normalisation ∇R(w0) = 0 falls on the user's w0",
                  "inverse": f"G(u(w)) = w on the domain ({how})",
                  "metric": "∇²R(w) J Jᵀ = I at u = u(w): gradient flow on u is mirror flow with potential R"}
    # quadrature and Newton lose a few digits more than closed-form evaluation
    tol = _tolerance() * (1 if r.G is not None else 10**4)
    return tuple(Check(k, statements[k], float(v), float(tol), 1 if k == "init" else len(points))
                 for k, v in errors.items())


def _relative(a, b) -> mp.mpf:
    return max(abs(x - y) / (1 + abs(y)) for x, y in zip(a, b))


class NumericRealization:
    """w = G(u), its inverse u(w) and J(u) = ∂G/∂u in mpmath, at the potential's parameter values.

    Closed pieces are evaluated from their formulas; an implicit one uses F(z) = ∫_{z0}^z √φ'' by
    mpmath's quadrature (when F has no closed form) and q = F⁻¹ by a Newton iteration kept in a bracket.
    """

    def __init__(self, r: Realization):
        self.r = r
        values = r.spec.values
        self._pieces = [self._piece(pc, values) for pc in r.pieces]
        self._A = mp.matrix([[to_mpf(x, values) for x in row] for row in r.A.tolist()])
        self._Ainv = self._A**-1

    @staticmethod
    def _piece(pc: Piece, values):
        f = mp_function([pc.z], pc.sqrt_phi2, values)
        lo, hi, z0 = (to_mpf(e, values) for e in (*pc.interval, pc.z0))
        # split at 0, where an integrand's singularities off the real axis usually sit
        F = mp_function([pc.z], pc.F, values) if pc.F is not None else \
            (lambda z: mp.quad(f, [z0, 0, z] if min(z0, z) < 0 < max(z0, z) else [z0, z]))
        if pc.q is not None:
            q = mp_function([pc.u], pc.q, values)
        else:
            def q(u):
                return _increasing_inverse(F, f, u, lo, hi, z0, pc.u.name)
        return f, F, q, lo, hi

    def w(self, u: Sequence) -> list[mp.mpf]:
        """w = A⁻¹ q(u)."""
        return list(self._Ainv * mp.matrix([q(mp.mpf(x)) for (_, _, q, _, _), x in zip(self._pieces, u)]))

    def u(self, w: Sequence) -> list[mp.mpf]:
        """u_k = F_k(⟨a_k, w⟩); a w outside the domain raises DomainError."""
        z = self._A * mp.matrix([mp.mpf(x) for x in w])
        out = []
        for (_, F, _, lo, hi), zk, pc in zip(self._pieces, z, self.r.pieces):
            if not lo < zk < hi:
                raise DomainError(f"{pc.z} = {pc.argument} = {mp.nstr(zk, 10)} is outside its domain "
                                  f"({pc.interval[0]}, {pc.interval[1]})")
            out.append(F(zk))
        return out

    def jacobian(self, u: Sequence) -> mp.matrix:
        """J = ∂G/∂u = A⁻¹ diag(q_k'(u_k)), q_k' = 1/√φ_k''(q_k)."""
        dq = [1 / f(q(mp.mpf(x))) for (f, _, q, _, _), x in zip(self._pieces, u)]
        d = len(dq)
        return _square([self._Ainv[i, k] * dq[k] for i in range(d) for k in range(d)])


def _increasing_inverse(F, f, u, lo, hi, start, name: str) -> mp.mpf:
    """The z in (lo, hi) with F(z) = u, F increasing with F' = f > 0: Newton kept inside a bracket.

    A Newton step leaving the bracket is replaced by the midpoint towards a finite end, or by a
    doubling step towards an infinite one; a u outside F((lo, hi)) raises DomainError.
    """
    a, b, z = lo, hi, start
    for _ in range(400):
        r = F(z) - u
        if r == 0:
            return z
        a, b = (a, z) if r > 0 else (z, b)
        step = z - r / f(z)
        if not a < step < b:
            end = a if r > 0 else b
            step = (z + end) / 2 if mp.isfinite(end) else z + (2 + 2 * abs(z)) * (-1 if r > 0 else 1)
        if abs(step - z) <= _tolerance() * (1 + abs(z)):
            if abs(F(step) - u) <= _tolerance() * 10**4 * (1 + abs(u)):
                return step
            break  # the bracket closed on an end of the domain: u is outside the range of F
        z = step
    raise DomainError(f"{name} = {mp.nstr(u, 12)} is outside the range of the realisation "
                      f"(no z in ({mp.nstr(lo, 8)}, {mp.nstr(hi, 8)}) with F(z) = {name})")


# -- outputs -------------------------------------------------------------------------------------------------


def _number_text(value: sp.Rational) -> str:
    """A TOML number equal to ``value`` when it is a finite decimal (it is, when it came from TOML)."""
    if value.q == 1:
        return str(value.p)
    q, digits = value.q, 0
    while q % 10 == 0 or q % 2 == 0 or q % 5 == 0:
        q //= 10 if q % 10 == 0 else 2 if q % 2 == 0 else 5
    if q != 1:
        return repr(float(value))
    while (value * 10**digits).q != 1:
        digits += 1
    n = abs(value.p) * 10**digits // value.q
    return f"{'-' if value < 0 else ''}{n // 10**digits}.{n % 10**digits:0{digits}d}"


def _recipe_text(r: Realization) -> str:
    """The recipe ``mirrorsym derive`` reads; every expression is parsed back to check that it reads as itself."""
    spec = r.spec
    names = {**{p.name: p for p in spec.parameters}, **{u.name: u for u in r.u}}
    for where, e in [(f"parametrization[{i}]", g) for i, g in enumerate(r.G)] + \
            [(f"init.{u.name}", v) for u, v in zip(r.u, r.u0)]:
        try:
            same = parse_expression(sp.sstr(e), names, where=where) == e
        except RecipeError:
            same = False
        if not same:
            raise VerificationFailed(f"{where}: {sp.sstr(e)} is not written in the recipe grammar")
    title = spec.title or spec.name
    lines = [f"# Generated by mirrorsym {__version__} realize from the potential {spec.name!r}: gradient flow on",
             "# the variables below is mirror flow on w with that potential (derive gives it back up to an affine term).",
             f"name = {json.dumps(spec.name + '-realised')}",
             f"title = {json.dumps('Realisation of ' + title, ensure_ascii=False)}",
             f"description = {json.dumps(_description(r), ensure_ascii=False)}",
             f"variables = [{', '.join(json.dumps(u.name) for u in r.u)}]",
             f"parametrization = [{', '.join(json.dumps(sp.sstr(g)) for g in r.G)}]",
             "init = { " + ", ".join(f"{u.name} = {json.dumps(sp.sstr(v))}" for u, v in zip(r.u, r.u0)) + " }"]
    assumed = {p.name: _assumptions(p) for p in spec.parameters}
    if any(assumed.values()):
        lines += ["", "[assumptions]"] + [f"{k} = {json.dumps(v)}" for k, v in assumed.items() if v]
    if spec.parameters:
        lines += ["", "[parameters]"] + [f"{p.name} = {_number_text(spec.defaults[p])}" for p in spec.parameters]
    return "\n".join(lines) + "\n"


def _assumptions(symbol: sp.Symbol) -> list[str]:
    """The fewest assumption names that give ``symbol`` its sympy assumptions (positive implies nonzero, ...)."""
    for strong in ("positive", "negative"):
        if getattr(symbol, f"is_{strong}"):
            return [strong]
    return [a for a in ("nonnegative", "nonpositive", "nonzero") if getattr(symbol, f"is_{a}")]


def _description(r: Realization) -> str:
    what = f"R(w) = {sp.sstr(r.spec.potential)}" if r.spec.potential is not None else \
        f"∇²R(w) = {sp.sstr(r.hessian.tolist())}"
    return f"w = G(u) realising {what}, {r.method}"


def _s(e) -> str | None:
    return None if e is None else sp.sstr(e)


def _to_json(r: Realization) -> dict:
    spec, c = r.spec, r.curvature
    return {
        "schema": "mirrorsym-realization",
        "schema_version": 1,
        "mirrorsym_version": __version__,
        "name": spec.name,
        "title": spec.title,
        "status": r.status.value,
        "realised": r.realised,
        "closed_form": r.status is Outcome.REALISED,
        "derive_accepts": r.recipe_text is not None,
        "method": r.method,
        "variables": [x.name for x in spec.variables],
        "potential": _s(spec.potential),
        "hessian": [[_s(e) for e in row] for row in r.hessian.tolist()],
        "domain": {x.name: [_s(lo), _s(hi)] for x, (lo, hi) in zip(spec.variables, spec.domain)},
        "constraints": [_s(e) for e in spec.constraints],
        "w0": {x.name: _s(v) for x, v in zip(spec.variables, spec.w0)},
        "parameters": {p.name: _s(spec.defaults[p]) for p in spec.parameters},
        "curvature": {"flat": c.flat, "point": [_s(v) for v in c.point], "decided_by": c.decided_by,
                      "component": None if c.component is None else list(c.component), "value": c.value,
                      "exact": _s(c.exact), "gaussian": c.gaussian, "gaussian_exact": _s(c.gaussian_exact),
                      "points": c.points},
        "A": None if r.A is None else [[_s(e) for e in row] for row in r.A.tolist()],
        "pieces": [{"coordinate": pc.z.name, "argument": _s(pc.argument), "interval": [_s(e) for e in pc.interval],
                    "phi2": _s(pc.phi2), "sqrt_phi2": _s(pc.sqrt_phi2), "z0": _s(pc.z0), "u": pc.u.name,
                    "u0": _s(pc.u0), "F": _s(pc.F), "q": _s(pc.q), "closed_form": pc.closed_form,
                    "u_interval": None if pc.u_interval is None else [_s(e) for e in pc.u_interval],
                    "method": pc.method} for pc in r.pieces],
        "realisation": None if not r.realised else {
            "variables": [u.name for u in r.u], "G": None if r.G is None else [_s(g) for g in r.G],
            "init": {u.name: _s(v) for u, v in zip(r.u, r.u0)}},
        "verification": [{"name": k.name, "statement": k.statement, "max_error": k.max_error,
                          "tolerance": k.tolerance, "points": k.points, "passed": k.passed} for k in r.checks],
        "dps": r.dps,
        "notes": list(r.notes),
        "recipe": r.recipe_text,
    }


def _tex(e) -> str:
    out = sp.latex(e)
    for a, b in ((r"\operatorname{asinh}", r"\operatorname{arsinh}"), (r"\operatorname{acosh}", r"\operatorname{arcosh}"),
                 (r"\operatorname{atanh}", r"\operatorname{artanh}")):
        out = out.replace(a, b)
    return out


def _latex(r: Realization) -> str:
    """The realisation as an amsmath fragment: ∇²R, the curvature, each piece's F and q, G and u0."""
    spec, c = r.spec, r.curvature
    rows = []
    if spec.potential is not None:
        rows.append(("R(w)", _tex(spec.potential)))
    rows.append((r"\nabla^2 R(w)", _tex(r.hessian if spec.d > 1 else r.hessian[0, 0])))
    if c.component is not None:
        ijkl = "".join(map(str, c.component))
        value = _tex(c.exact) if c.exact is not None else c.value
        rows.append((rf"R_{{{ijkl}}}(w_0)", value + (r" \neq 0" if not c.flat else r" \approx 0")))
        if c.gaussian is not None:
            rows.append((r"K(w_0)", _tex(c.gaussian_exact) if c.gaussian_exact is not None else c.gaussian))
    for pc in r.pieces:
        z, u = _tex(pc.z), _tex(pc.u)
        if pc.z not in spec.variables:
            rows.append((z, _tex(pc.argument)))
        rows.append((rf"\varphi''({z})", _tex(pc.phi2)))
        if pc.F is not None:
            rows.append((u, rf"\int \sqrt{{\varphi''({z})}}\,\mathrm{{d}}{z} = {_tex(pc.F)}"))
        else:
            s = sp.Symbol("s")
            rows.append((u, rf"\int_{{{_tex(pc.z0)}}}^{{{z}}} {_tex(pc.sqrt_phi2.xreplace({pc.z: s}))}\,\mathrm{{d}}s"
                            r" \quad\text{(not elementary: quadrature)}"))
        rows.append((rf"{z} = q({u})", _tex(pc.q) if pc.q is not None else rf"F^{{-1}}({u}) \quad\text{{(numerical)}}"))
    if r.G is not None:
        rows.append(("G(u)", _tex(r.G[0] if spec.d == 1 else sp.Matrix(r.G))))
    if r.realised:
        rows.append(("u_0", _tex(r.u0[0] if spec.d == 1 else sp.Matrix(r.u0))))
    body = " \\\\\n".join(f"  {lhs} &= {rhs}" for lhs, rhs in rows)
    return f"% mirrorsym {__version__} realize: {spec.name}: {r.status.value}\n\\begin{{align*}}\n{body}\n\\end{{align*}}\n"


class _Printer(NumPyPrinter):
    def _print_Infinity(self, expr):
        return "np.inf"

    def _print_NegativeInfinity(self, expr):
        return "-np.inf"


def _code(e: sp.Expr) -> str:
    return _Printer({"fully_qualified_modules": True}).doprint(e).replace("numpy.", "np.")


_NUMPY_HELPERS = '''

def _params(overrides):
    unknown = sorted(set(overrides) - set(PARAMETERS))
    if unknown:
        raise TypeError(f"unknown parameter(s) {', '.join(unknown)} (parameters: {', '.join(PARAMETERS) or 'none'})")
    return {**PARAMETERS, **overrides}


def _points(a, name):
    a = np.asarray(a, dtype=float)
    if a.ndim == 0 or a.shape[-1] != DIM:
        raise ValueError(f"{name} must have last axis of length {DIM}, got shape {a.shape}")
    return a


# composite Gauss-Legendre rule on (0, 1): 16-point panels graded geometrically (ratio 3, down to 3e-8)
# towards both ends, where an integrand's singularities are resolved panel by panel
_X, _WX = np.polynomial.legendre.leggauss(16)
_HALF = np.concatenate([[0.0], 0.5 * 3.0 ** -np.arange(16)[::-1]])
_EDGES = np.concatenate([_HALF, 1 - _HALF[-2::-1]])
_NODES = (_EDGES[:-1, None] + np.diff(_EDGES)[:, None] * (_X[None, :] + 1) / 2).ravel()
_WEIGHTS = (np.diff(_EDGES)[:, None] * _WX[None, :] / 2).ravel()


def _integral(f, a, b, p):
    """The integral of f(s) from a to each b, split at 0 (where singularities off the real axis usually sit)."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    c = np.clip(0.0, np.minimum(a, b), np.maximum(a, b))
    total = np.zeros(b.shape)
    for lo, hi in ((a, c), (c, b)):
        total += (hi - lo) * np.sum(_WEIGHTS * f(lo[..., None] + (hi - lo)[..., None] * _NODES, p), axis=-1)
    return total


def _increasing_inverse(F, f, u, lo, hi, z0, p, name):
    """The z in (lo, hi) with F(z) = u, F increasing with F' = f: Newton kept inside a bracket, vectorised."""
    u = np.asarray(u, dtype=float)
    a, b, z = np.full(u.shape, lo), np.full(u.shape, hi), np.full(u.shape, z0)
    with np.errstate(all="ignore"):
        for _ in range(200):
            r = F(z, p) - u
            a, b = np.where(r < 0, z, a), np.where(r > 0, z, b)
            step = z - r / f(z, p)
            # a step leaving the bracket: halfway to a finite end, or a doubling step towards an infinite one
            end = np.where(r > 0, a, b)
            away = z + np.where(r > 0, -1.0, 1.0) * (2 + 2 * np.abs(z))
            step = np.where((step > a) & (step < b), step, np.where(np.isfinite(end), (z + end) / 2, away))
            step = np.where(r == 0, z, step)
            done = np.abs(step - z) <= 1e-15 * (1 + np.abs(z))
            z = step
            if np.all(done):
                break
        bad = ~(np.abs(F(z, p) - u) <= 1e-9 * (1 + np.abs(u)))
    if np.any(bad):
        raise ValueError(f"{name} = {u[bad].flat[0]!r} is outside the range of the realisation")
    return z
'''


def _numpy_module(r: Realization) -> str:
    """A standalone module (numpy only): G(u), jacobian(u), u_of_w(w), init(), gradient_step(...)."""
    spec = r.spec
    values = spec.values
    zz, uu = sp.Symbol("_z"), sp.Symbol("_u")

    def function(name: str, args: str, e: sp.Expr, doc: str) -> list[str]:
        unpack = [f"    {p.name} = p[{p.name!r}]" for p in spec.parameters if p in e.free_symbols]
        arg = args.split(",")[0]
        # a constant keeps the shape of its array argument
        code = _code(e) if e.has(zz, uu) or arg == "p" else f"{_code(e)} + 0 * {arg}"
        return [f"def {name}({args}):", f'    """{doc}"""', *unpack, f"    return {code}", "", ""]

    body = []
    for k, pc in enumerate(r.pieces):
        sub = {pc.z: zz, pc.u: uu}
        body += [f"# piece {k + 1}: {pc.z} = {sp.sstr(pc.argument)} in ({pc.interval[0]}, {pc.interval[1]}), "
                 f"phi''({pc.z}) = {sp.sstr(pc.phi2)}", ""]
        body += function(f"_f{k}", "_z, p", pc.sqrt_phi2.xreplace(sub), "sqrt(phi''(z)) = dF/dz.")
        body += function(f"_z0_{k}", "p", pc.z0, "z0 = <a, w0>.")
        body += function(f"_lo{k}", "p", pc.interval[0], "The lower end of the domain of z.")
        body += function(f"_hi{k}", "p", pc.interval[1], "The upper end of the domain of z.")
        if pc.F is not None:
            body += function(f"_F{k}", "_z, p", pc.F.xreplace(sub), f"u = F(z) = {sp.sstr(pc.F)}.")
        else:
            body += [f"def _F{k}(_z, p):", '    """u = F(z), the integral of sqrt(phi\'\') from z0 to z (not elementary)."""',
                     f"    return _integral(_f{k}, _z0_{k}(p), _z, p)", "", ""]
        if pc.q is not None:
            body += function(f"_q{k}", "_u, p", pc.q.xreplace(sub), f"z = q(u) = {sp.sstr(pc.q)}.")
        else:
            body += [f"def _q{k}(_u, p):", '    """z = q(u), the inverse of F, solved numerically."""',
                     f"    return _increasing_inverse(_F{k}, _f{k}, _u, _lo{k}(p), _hi{k}(p), _z0_{k}(p), p, "
                     f"{pc.u.name!r})", "", ""]
    params = "{" + ", ".join(f"{p.name!r}: {float(values[p])!r}" for p in spec.parameters) + "}"
    A = [[float(x) for x in row] for row in r.A.tolist()]
    Ainv = [[float(x) for x in row] for row in r.A.inv().tolist()]
    G = ", ".join(sp.sstr(g) for g in r.G) if r.G is not None else "A⁻¹ q(u), implicit (numerical inverse)"
    head = [f'"""Realisation of the potential {spec.name!r}: generated by mirrorsym {__version__} realize.', "",
            f"w = G(u) = ({G}), u = ({', '.join(u.name for u in r.u)}): z = A w with z_k = q_k(u_k) and",
            "u_k = F_k(z_k), the integral of sqrt(phi_k''). Gradient descent on u with w = G(u) is mirror descent on w",
            "with the potential's R (∇²R = (J Jᵀ)⁻¹) to first order in the step. Arrays have last axis of length DIM",
            "(batches allowed); parameters are keyword arguments. Implicit pieces use a graded composite Gauss-Legendre",
            "rule and a bracketed Newton (relative accuracy about 1e-12).", '"""', "",
            "import numpy as np", "", f"DIM = {spec.d}", f"PARAMETERS = {params}",
            f"VARIABLES = {tuple(u.name for u in r.u)!r}", f"A = np.array({A!r})  # rows a_k: z = A w",
            f"A_INV = np.array({Ainv!r})", _NUMPY_HELPERS, ""]
    pieces = ", ".join(f"(_f{k}, _F{k}, _q{k}, _lo{k}, _hi{k})" for k in range(spec.d))
    w0 = sp.Matrix(spec.w0)
    tail = [f"_PIECES = ({pieces},)", "", "",
            "def G(u, **params):", '    """w = G(u) = A⁻¹ q(u)."""',
            "    p, u = _params(params), _points(u, 'u')",
            "    z = np.stack([q(u[..., k], p) for k, (_, _, q, _, _) in enumerate(_PIECES)], axis=-1)",
            "    return z @ A_INV.T", "", "",
            "def jacobian(u, **params):",
            '    """J = ∂G/∂u = A⁻¹ diag(q_k\'(u_k)) with q\' = 1/sqrt(phi\'\'(q)); shape (..., DIM, DIM)."""',
            "    p, u = _params(params), _points(u, 'u')",
            "    dq = np.stack([1 / f(q(u[..., k], p), p) for k, (f, _, q, _, _) in enumerate(_PIECES)], axis=-1)",
            "    return A_INV * dq[..., None, :]", "", "",
            "def u_of_w(w, **params):", '    """u = F(A w), the inverse of G; a w outside the domain raises ValueError."""',
            "    p, w = _params(params), _points(w, 'w')",
            "    z = w @ A.T",
            "    out = np.empty(z.shape)",
            "    for k, (_, F, _, lo, hi) in enumerate(_PIECES):",
            "        zk = z[..., k]",
            "        bad = ~((zk > lo(p)) & (zk < hi(p)))",
            "        if np.any(bad):",
            "            raise ValueError(f\"z{k + 1} = {zk[bad].flat[0]!r} is outside its domain ({lo(p)}, {hi(p)})\")",
            "        out[..., k] = F(zk, p)",
            "    return out", "", "",
            "def init(**params):", '    """u0 = u_of_w(w0): G(u0) = w0, where derive normalises ∇R(w0) = 0."""',
            "    p = _params(params)",
            *[f"    {q.name} = p[{q.name!r}]" for q in spec.parameters if w0.has(q)],
            f"    return u_of_w(np.array([{', '.join(_code(v) for v in w0)}], dtype=float), **p)", "", "",
            "def gradient_step(u, grad_L_at_w, lr, **params):",
            '    """One gradient-descent step on u for a loss of w: u ← u − lr Jᵀ ∇L(G(u))."""',
            "    g = np.asarray(grad_L_at_w, dtype=float)",
            "    return np.asarray(u, dtype=float) - lr * np.einsum('...ij,...i->...j', jacobian(u, **params), g)", ""]
    return "\n".join(head + body + tail)


# -- command line ----------------------------------------------------------------------------------------


def shipped_potentials() -> list[Path]:
    """The POTENTIAL.toml files shipped in the project's ``potentials/`` directory, sorted by name."""
    return sorted(POTENTIALS_DIR.glob("*.toml"), key=lambda p: p.name) if POTENTIALS_DIR.is_dir() else []


def find_potential(name_or_path: str | Path) -> Path:
    """``name_or_path`` if it is a file, else the shipped potential of that name (``.toml`` optional)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = {p.stem: p for p in shipped_potentials()}
    close = []
    if path.parent == Path("."):
        stem = path.name.removesuffix(".toml")
        if stem in shipped:
            return shipped[stem]
        close = difflib.get_close_matches(stem, shipped, 1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise RecipeError(f"{name_or_path}: no such potential file, and no shipped potential of that name{hint} "
                      f"(shipped: {', '.join(shipped) or 'none'})")


def add_realize_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``mirrorsym realize POTENTIAL``."""
    parser.add_argument("potential", help="a POTENTIAL.toml file, or the name of a shipped potential (potentials/)")
    parser.add_argument("--recipe", metavar="PATH", help="write the realisation as a recipe for mirrorsym derive")
    parser.add_argument("--json", metavar="PATH", help="write the realisation as JSON")
    parser.add_argument("--latex", metavar="PATH", help="write the realisation as a LaTeX fragment")
    parser.add_argument("--numpy", metavar="PATH",
                        help="write a standalone numpy module: G(u), jacobian(u), u_of_w(w), init() "
                             "(implicit pieces solved numerically)")
    parser.add_argument("--param", metavar="NAME=VALUE", action="append", type=param_argument, default=[],
                        help="override a parameter's value (repeatable)")
    parser.add_argument("--budget", metavar="S", type=float, default=60.0, help="overall time budget in seconds (default 60)")
    parser.add_argument("--dps", type=int, default=30, help="digits of the mpmath checks (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample points (default 0)")


def run_realize(args: argparse.Namespace) -> int:
    """Run ``mirrorsym realize``: 0 realised (closed or implicit), 3 curved, 5 flat without construction.

    Bad input raises :class:`RecipeError` (exit 2). Every output is computed before any is written,
    and each is written atomically.
    """
    spec = load_potential(find_potential(args.potential))
    if args.param:
        spec = spec.with_values(dict(args.param))
    r = realize(spec, budget=args.budget, dps=args.dps, seed=args.seed)
    outputs, skipped = {}, []
    if args.json:
        outputs[args.json] = r.json_text()
    if args.latex:
        outputs[args.latex] = r.latex()
    if args.recipe:
        if r.recipe_text is not None:
            outputs[args.recipe] = r.recipe_text
        else:
            skipped.append(f"  (no recipe written to {args.recipe}: "
                           f"{'derive cannot take an implicit realisation; use --numpy' if r.realised else r.status.value})")
    if args.numpy:
        if r.realised:
            outputs[args.numpy] = r.numpy_module()
        else:
            skipped.append(f"  (no numpy module written to {args.numpy}: {r.status.value})")
    for path, text in outputs.items():
        write_atomically(path, text)
    lines = r.summary() + skipped
    if args.recipe and r.recipe_text is not None:
        lines.append(f"  next: mirrorsym derive {args.recipe}")
    print("\n".join(lines))
    return r.exit_status


def _summary(r: Realization) -> list[str]:
    spec = r.spec
    w = ", ".join(x.name for x in spec.variables)
    w0 = ", ".join(sp.sstr(v) for v in spec.w0)
    lines = [f"{spec.name}: {r.status.value}"]
    if spec.potential is not None:
        lines.append(f"  R(w)    = {sp.sstr(spec.potential)}  with w = ({w}), w0 = ({w0})")
    else:
        lines.append(f"  w = ({w}), w0 = ({w0})")
    lines.append(f"  ∇²R(w)  = {sp.sstr(r.hessian[0, 0] if spec.d == 1 else r.hessian.tolist())}")
    lines.append(f"  curvature: {r.curvature.summary()}")
    for k, pc in enumerate(r.pieces):
        where = pc.z.name if pc.z in spec.variables else f"{pc.z} = {sp.sstr(pc.argument)}"
        lines.append(f"  piece {k + 1}: {where} ∈ ({pc.interval[0]}, {pc.interval[1]}), φ''({pc.z}) = {sp.sstr(pc.phi2)}")
        F = sp.sstr(pc.F) if pc.F is not None else f"∫_{sp.sstr(pc.z0)}^{pc.z} {sp.sstr(pc.sqrt_phi2)} d{pc.z} (quadrature)"
        q = sp.sstr(pc.q) if pc.q is not None else "F⁻¹(" + pc.u.name + ") (numerical)"
        lines.append(f"      {pc.u.name} = {F},  {pc.z} = q({pc.u.name}) = {q}")
    if r.G is not None:
        lines.append(f"  G(u)    = ({', '.join(sp.sstr(g) for g in r.G)})  with u = ({', '.join(u.name for u in r.u)}), "
                     f"u0 = ({', '.join(sp.sstr(v) for v in r.u0)})")
    elif r.realised:
        lines.append(f"  u0      = ({', '.join(sp.sstr(v) for v in r.u0)})")
    if r.checks:
        lines.append(f"  checks: {sum(c.passed for c in r.checks)}/{len(r.checks)} passed at {r.dps} digits")
    lines += [f"  note: {n}" for n in r.notes]
    return lines

