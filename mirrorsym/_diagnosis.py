"""Stage 2b: when G is not commuting, a diagnosis a referee would accept (MATH.md §7).

A nonzero bracket says that G is not commuting, not what goes wrong. :func:`diagnose` adds
independent certificates, each a :class:`Certificate` whose ``verdict`` is True when it holds, False
when it was checked and does not hold, and None when it does not apply or could not be decided:

``witness``
    The exact bracket [∇G_i, ∇G_j] and its exact value at a rational point (from :func:`brackets`).
``loop`` (obstruction)
    GF on the linear losses ⟨+e_i, w⟩, ⟨+e_j, w⟩, ⟨−e_i, w⟩, ⟨−e_j, w⟩, each for time ε. The total
    impulse ∫∇L dt is zero, so every mirror flow d∇R(w)/dt = −∇L returns to its start; GF moves w by
    ε² J[∇G_i, ∇G_j] + O(ε³).
``metric`` (obstruction)
    When H = J Jᵀ is a function of w on the leaf of x0, a potential needs (H⁻¹)(w) = ∇²R(w), whose
    derivative ∂_k (H⁻¹)_{ij} is symmetric in (i, j, k); a nonzero integrability defect
    T_{ijk} = ∂_k (H⁻¹)_{ij} − ∂_j (H⁻¹)_{ik} rules it out.
``path_dependence`` (obstruction)
    Quadratic losses with one common minimiser w*: along a mirror flow ∇R(w(t)) = −∫₀ᵗ ∇L ds, so every
    loss accumulates the same impulse −∇R(w*). Different impulses rule a potential out.
``reachable_commuting`` (partial result)
    The brackets vanish at x0 and along gradient flows from x0: the obstruction lives off the set GF
    explores, and GF from x0 behaves like a commuting parametrization (numerical evidence).
``time_warp`` (partial result)
    For w = a·b (one scalar variable times distinct variables): the time-warped mirror flow of
    literature.md N1, d∇P(w)/dt = −a ∇L(w).

Exact quantities are sympy objects, numeric ones mpmath numbers at ``dps`` digits (path dependence
runs in float64: its verdict needs a relative accuracy of 1e-6, not 30 digits).

>>> import sympy as sp
>>> from mirrorsym._brackets import brackets
>>> from mirrorsym._jacobian import jacobian
>>> from mirrorsym._parametrization import Parametrization
>>> a, b1, b2 = sp.symbols("a b1 b2", real=True)
>>> p = Parametrization.create([a * b1, a * b2], [a, b1, b2], [sp.S(1) / 2, sp.S(3) / 10, -sp.S(1) / 5])
>>> dg = diagnose(p, jacobian(p), brackets(p))
>>> dg.no_mirror_potential, dg.certificate("time_warp").verdict
(True, True)
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping, Sequence

import mpmath as mp
import numpy as np
import sympy as sp

from ._brackets import BracketResult, _exact_nonzero
from ._budget import Budget, attempt
from ._jacobian import JacobianResult
from ._numeric import mp_function, to_mpf
from ._parametrization import Parametrization

__all__ = ["Certificate", "Diagnosis", "ab_shape", "conserved_quadratics", "diagnose"]

#: human-readable names, in the order the certificates are reported
TITLES = {
    "witness": "not commuting",
    "loop": "loop certificate",
    "metric": "metric certificate",
    "path_dependence": "path dependence",
    "reachable_commuting": "commuting on the reachable set",
    "time_warp": "time-warped mirror flow",
}
#: certificates whose verdict True proves that no mirror potential exists for all losses
OBSTRUCTIONS = frozenset({"loop", "metric", "path_dependence"})

#: loop sizes: halving ε divides an ε² displacement by 4; RK4 steps per leg put its error near ε⁵/20⁴
LOOP_EPS = ("0.01", "0.005")
LOOP_STEPS = 20
#: the common minimiser is w* = G(x*), x* at this arc length (relative to max(1, |x0|)) along a GF path
PATH_RADIUS = 0.5
#: relative tolerance of the adaptive integrator
PATH_RTOL = 1e-10
#: a run has converged when |w − w*| ≤ PATH_CONVERGED (1 + |w*|): the neglected impulse tail is about
#: that size (rates ~1), and float64 with PATH_RTOL cannot get much closer
PATH_CONVERGED = 1e-9
#: impulses agreeing to this relative accuracy count as equal (integration error is about PATH_RTOL)
PATH_TOL = 1e-6
#: a bracket below this (relative to 1 + |J|²) at a float64 point of a flow counts as zero
FLOAT_ZERO = 1e-9


@dataclasses.dataclass(frozen=True)
class Certificate:
    """One piece of the diagnosis.

    ``verdict`` is True when the certificate holds (for an :attr:`obstruction`: no mirror potential
    exists), False when it was checked and fails, None when it does not apply or was not decided
    (``method`` says why). ``numbers`` holds exact values as sympy objects and numeric ones as mpf or
    float; ``text`` is one line for the command line and ``tex`` one LaTeX sentence (empty when the
    certificate has nothing to say).
    """

    name: str
    verdict: bool | None
    numbers: Mapping[str, object]
    method: str
    seconds: float
    text: str
    tex: str = ""

    @property
    def obstruction(self) -> bool:
        return self.name in OBSTRUCTIONS

    def to_json(self) -> dict:
        return {"name": self.name, "verdict": self.verdict, "obstruction": self.obstruction,
                "method": self.method, "seconds": round(self.seconds, 4), "text": self.text,
                "numbers": _jsonable(self.numbers)}


@dataclasses.dataclass(frozen=True)
class Diagnosis:
    """All certificates for one parametrization; :meth:`summary` and :meth:`latex` present them."""

    parametrization: Parametrization
    commuting: bool
    certificates: tuple[Certificate, ...]
    seed: int
    dps: int
    seconds: float

    def certificate(self, name: str) -> Certificate:
        for c in self.certificates:
            if c.name == name:
                return c
        raise KeyError(f"no certificate {name!r} (have: {', '.join(c.name for c in self.certificates)})")

    @property
    def no_mirror_potential(self) -> bool:
        """Some obstruction holds: GF on x is not a mirror flow on w for all losses."""
        return any(c.verdict is True for c in self.certificates if c.obstruction)

    def to_json(self) -> dict:
        return {"commuting": self.commuting, "no_mirror_potential": self.no_mirror_potential,
                "seed": self.seed, "dps": self.dps, "seconds": round(self.seconds, 4),
                "certificates": [c.to_json() for c in self.certificates]}

    def summary(self) -> list[str]:
        """One line per certificate, the verdict on non-commutation first."""
        return [c.text for c in self.certificates if c.text]

    def latex(self) -> str:
        """A proposition (amsthm ``proposition`` environment, amsmath/amssymb only) with the certificates."""
        p = self.parametrization
        xs = ", ".join(sp.latex(x) for x in p.variables)
        head = (f"Let $G({xs}) = {_tex_vec(p.G, transpose=False)}$ and "
                f"$x_0 = {_tex_vec(p.x0, transpose=False)}$.")
        lines = [f"\\begin{{proposition}}[{_tex_escape(p.title or p.name)}]", head, self.certificates[0].tex]
        items = [c.tex for c in self.certificates[1:] if c.tex]
        if items:
            lines.append(f"Moreover (numerically, mpmath at {self.dps} digits, seed {self.seed}):")
            lines.append("\\begin{enumerate}")
            lines += [f"\\item {t}" for t in items]
            lines.append("\\end{enumerate}")
        lines.append("\\end{proposition}")
        return "\n".join(lines)


def diagnose(p: Parametrization, jac: JacobianResult, br: BracketResult, budget: Budget | None = None,
             seed: int = 0, dps: int = 30) -> Diagnosis:
    """Certificates for (non-)commutation of G, see the module docstring; every step is budgeted.

    Certificates that need numbers use the parameters' default values; without them they are
    reported as not decided. A certificate that runs out of its time share is not decided either;
    only the exhaustion of ``budget`` itself raises :class:`BudgetExceeded`.
    """
    budget = budget or Budget(60)
    t0 = time.perf_counter()
    certs = [_witness(p, br)]
    with mp.workdps(dps):
        num, why = _guarded(budget, "numerics", 5.0, _Numerics, p, jac, br)
        if num is None:
            certs += [_undecided(name, why, 0.0) for name in list(TITLES)[1:]]
        else:
            reached: list[np.ndarray] = []  # points on gradient flows from x0, collected by path dependence
            path = _run(budget, "path_dependence", 5.0, _path_dependence, num, seed, reached)
            certs += [_run(budget, "loop", 3.0, _loop, num, reached),
                      _run(budget, "metric", 4.0, _metric, num),
                      path,
                      _run(budget, "reachable_commuting", 2.0, _reachable_commuting, num, br, reached),
                      _run(budget, "time_warp", 3.0, _time_warp, num, seed)]
    return Diagnosis(p, br.commuting, tuple(certs), seed, dps, time.perf_counter() - t0)


# --- running certificates under the budget -------------------------------------------------------

def _guarded(budget: Budget, name: str, seconds: float, fn: Callable, *args):
    """(value, None), or (None, reason) on a timeout or a failed numerical method."""
    try:
        return attempt(budget, f"diagnosis: {name}", seconds, fn, *args)
    except (ArithmeticError, ValueError) as exc:  # findroot/LinAlgError/overflow, or a parameter without value
        return None, f"{type(exc).__name__}: {exc}"


def _run(budget: Budget, name: str, seconds: float, fn: Callable, *args) -> Certificate:
    t = time.perf_counter()
    cert, why = _guarded(budget, name, seconds, fn, *args)
    if cert is None:
        return _undecided(name, why, time.perf_counter() - t)
    return dataclasses.replace(cert, seconds=time.perf_counter() - t)


def _undecided(name: str, why: str, seconds: float) -> Certificate:
    return Certificate(name, None, {}, why, seconds, f"{TITLES[name]}: not decided ({why})")


def _cert(name: str, verdict: bool | None, numbers: dict, method: str, text: str, tex: str = "") -> Certificate:
    """A certificate with its time filled in by :func:`_run`."""
    return Certificate(name, verdict, numbers, method, 0.0, f"{TITLES[name]}: {text}" if text else "", tex)


class _Numerics:
    """G, its gradients and brackets at the parameters' default values, for mpmath and for numpy."""

    def __init__(self, p: Parametrization, jac: JacobianResult, br: BracketResult):
        self.p = p
        sub = p.numeric()  # RecipeError (a ValueError) when a parameter has no value
        xs = p.variables
        self.G = tuple(sp.sympify(g).xreplace(sub) for g in p.G)
        self.J = jac.J.xreplace(sub)
        self.x0_exact = tuple(sp.sympify(v).xreplace(sub) for v in p.x0)
        self.brackets = {(b.i, b.j): sp.Matrix(b.vector).xreplace(sub) for b in br.pairs}
        self.nonzero = tuple((b.i, b.j) for b in br.nonzero)
        self.G_mp = mp_function(xs, self.G, {})
        self.grad_mp = tuple(mp_function(xs, self.J.row(i), {}) for i in range(p.d))
        self.bracket_mp = {ij: mp_function(xs, v, {}) for ij, v in self.brackets.items()}
        self._G_np = sp.lambdify(xs, list(self.G), "numpy")
        self._J_np = sp.lambdify(xs, self.J.tolist(), "numpy")
        self._br_np = {ij: sp.lambdify(xs, list(v), "numpy") for ij, v in self.brackets.items()}

    def x0(self) -> list:
        return [to_mpf(v, {}) for v in self.x0_exact]

    def J_mp(self, x) -> mp.matrix:
        return mp.matrix([g(*x) for g in self.grad_mp])

    def G_np(self, x) -> np.ndarray:
        return np.array(self._G_np(*x), dtype=float)

    def J_np(self, x) -> np.ndarray:
        return np.array(self._J_np(*x), dtype=float).reshape(self.p.d, self.p.D)

    def bracket_np(self, ij, x) -> np.ndarray:
        return np.array(self._br_np[ij](*x), dtype=float)

    def at_x0(self, expr):
        return expr.xreplace(dict(zip(self.p.variables, self.x0_exact)))


# --- 1. the exact witness ---------------------------------------------------------------------

def _witness(p: Parametrization, br: BracketResult) -> Certificate:
    nz = br.nonzero
    if not nz:
        how = sorted({b.decided_by for b in br.pairs}) or ["d = 1: no pairs"]
        return Certificate("witness", False, {}, "; ".join(how), br.seconds,
                           f"commuting: every bracket [∇G_i, ∇G_j] vanishes ({'; '.join(how)})",
                           "Every bracket $[\\nabla G_i, \\nabla G_j]$ vanishes, so $G$ is commuting.")
    b = nz[0]
    names = [x.name for x in p.variables]
    point = [b.witness[n] for n in names]
    extra = {k: v for k, v in b.witness.items() if k not in names}
    at = f"({', '.join(names)}) = {_vec(point)}" + "".join(f", {k} = {v}" for k, v in extra.items())
    more = f" (and {len(nz) - 1} more nonzero bracket{'s' * (len(nz) > 2)})" if len(nz) > 1 else ""
    text = (f"not commuting: [∇G_{b.i + 1}, ∇G_{b.j + 1}] = {_vec(b.vector)} ≠ 0 at {at}, "
            f"where it is {_vec(b.value_at_witness)}{more}")
    bracket = f"[\\nabla G_{{{b.i + 1}}}, \\nabla G_{{{b.j + 1}}}]"
    tex_at = ", ".join(sp.latex(x) for x in p.variables)
    tex = (f"Then ${bracket} = {_tex_vec(b.vector)}$, which at the rational point $({tex_at}) = "
           f"{_tex_vec(point, transpose=False)}$" + "".join(f" (with ${sp.latex(sp.Symbol(k))} = {sp.latex(v)}$)"
                                                           for k, v in extra.items())
           + f" equals ${_tex_vec(b.value_at_witness)} \\neq 0$; hence $G$ is not commuting.")
    numbers = {"pairs": [{"i": q.i + 1, "j": q.j + 1, "bracket": list(q.vector), "point": dict(q.witness),
                          "value": list(q.value_at_witness), "decided_by": q.decided_by} for q in nz]}
    return Certificate("witness", True, numbers, b.decided_by, br.seconds, text, tex)


# --- 2. the loop certificate ------------------------------------------------------------------

def _rk4(field: Callable, x: list, t, steps: int) -> list:
    """Classical RK4 for x' = field(x) over time t in fixed steps (mpf or float lists alike)."""
    h = t / steps
    for _ in range(steps):
        k1 = field(x)
        k2 = field([a + h / 2 * b for a, b in zip(x, k1)])
        k3 = field([a + h / 2 * b for a, b in zip(x, k2)])
        k4 = field([a + h * b for a, b in zip(x, k3)])
        x = [a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4) for a, b1, b2, b3, b4 in zip(x, k1, k2, k3, k4)]
    return x


def _loop_displacement(num: _Numerics, x: list, i: int, j: int, eps: mp.mpf, steps: int = LOOP_STEPS) -> list:
    """w(end) − w(start) for GF on ⟨+e_i,w⟩, ⟨+e_j,w⟩, ⟨−e_i,w⟩, ⟨−e_j,w⟩, each for time eps.

    GF on ⟨±e_i, w⟩ is dx/dt = ∓∇G_i(x). For fields X, Y the loop X, Y, −X, −Y (time ε each) ends at
    x + ε² [X, Y](x) + O(ε³) with [X, Y] = ∂Y X − ∂X Y (expand each leg to second order); here
    X = −∇G_i, Y = −∇G_j, and [X, Y] = [∇G_i, ∇G_j], so Δw = ε² J [∇G_i, ∇G_j] + O(ε³).
    """
    y = list(x)
    for k, sign in ((i, -1), (j, -1), (i, 1), (j, 1)):
        y = _rk4(lambda z, g=num.grad_mp[k], s=sign: [s * c for c in g(*z)], y, eps, steps)
    return [a - b for a, b in zip(num.G_mp(*y), num.G_mp(*x))]


def _loop(num: _Numerics, reached: Sequence[np.ndarray]) -> Certificate:
    p = num.p
    if p.d < 2:
        return _cert("loop", None, {}, "d = 1", "not applicable (d = 1: a loop of linear losses needs two directions)")
    # the pair with the largest J[∇G_i, ∇G_j] at x0, exactly; at a point of a flow when all vanish at x0
    J0 = num.at_x0(num.J)
    exact = {ij: (J0 * num.at_x0(v)).applyfunc(sp.expand) for ij, v in num.brackets.items()}
    size = {ij: max(abs(float(sp.N(e))) for e in c) for ij, c in exact.items()
            if any(_exact_nonzero(e) for e in c)}
    if size:
        ij = max(size, key=size.get)
        x, where, predicted = num.x0(), "x0", [to_mpf(e, {}) for e in exact[ij]]
        numbers = {"predicted_coefficient_exact": list(exact[ij])}
    else:
        def strength(ij, y):
            J = num.J_np(y)
            return np.linalg.norm(J @ num.bracket_np(ij, y)) / (1 + np.sum(J * J))
        cands = [(strength(ij, y), ij, y) for y in reached for ij in num.brackets]
        best = max(cands, key=lambda c: c[0], default=None)
        if best is not None and best[0] > FLOAT_ZERO:
            ij, x, where = best[1], [mp.mpf(float(v)) for v in best[2]], "a point of a gradient flow from x0"
        else:
            ij, x, where = min(num.brackets), num.x0(), "x0"
        predicted = list(num.J_mp(x) * mp.matrix(num.bracket_mp[ij](*x)))
        numbers = {}
    i, j = ij
    eps = [mp.mpf(e) for e in LOOP_EPS]
    disp = [_loop_displacement(num, x, i, j, e) for e in eps]
    norms = [mp.norm(mp.matrix(dw)) for dw in disp]
    ratio = norms[0] / norms[1] if norms[1] else mp.inf
    # Δ(ε)/ε² = c + ε c3 + O(ε²): Richardson with ε and ε/2 removes the O(ε) term
    richardson = [2 * d2 / eps[1] ** 2 - d1 / eps[0] ** 2 for d1, d2 in zip(*disp)]
    c_norm = mp.norm(mp.matrix(predicted))
    rel = mp.norm(mp.matrix(richardson) - mp.matrix(predicted)) / c_norm if c_norm else mp.inf
    scale = 1 + mp.mnorm(num.J_mp(x), "F") ** 2
    measured = norms[1] / eps[1] ** 2
    numbers.update(pair=[i + 1, j + 1], point=where, x=x, eps=eps, displacement=disp, norms=norms, ratio=ratio,
                   predicted_coefficient=predicted, extrapolated_coefficient=richardson,
                   relative_error=rel, steps_per_leg=LOOP_STEPS)
    legs = f"+e_{i + 1}, +e_{j + 1}, −e_{i + 1}, −e_{j + 1}"
    bracket = f"J[∇G_{i + 1}, ∇G_{j + 1}]"
    method = f"RK4 in mpmath, {LOOP_STEPS} steps per leg, ε = {', '.join(LOOP_EPS)}, at {where}"
    if c_norm > 1e-10 * scale and abs(ratio - 4) < mp.mpf("0.5") and rel < mp.mpf("0.05"):
        at = f"({where})" if where == "x0" else f" at {where}"
        text = (f"GF on the zero-impulse loop {legs} moves w by {_f(norms[1])} (ε = {LOOP_EPS[1]}; ×{_f(ratio, 3)} "
                f"at 2ε), as ε² {bracket}{at} = ε² {_vec(numbers.get('predicted_coefficient_exact', predicted))} "
                f"predicts (to {_f(rel, 1)}): no mirror potential")
        tex = (f"\\emph{{Loop.}} Gradient flow on the linear losses $\\langle e_{{{i + 1}}}, w\\rangle$, "
               f"$\\langle e_{{{j + 1}}}, w\\rangle$, $-\\langle e_{{{i + 1}}}, w\\rangle$, "
               f"$-\\langle e_{{{j + 1}}}, w\\rangle$, each for time $\\varepsilon$, has zero total impulse, so "
               f"every mirror flow returns to its start; started at {'$x_0$' if where == 'x0' else where}, it moves "
               f"$w$ by ${_tex_num(norms[1])}$ at $\\varepsilon = {LOOP_EPS[1]}$ and by ${_tex_num(ratio, 3)}$ "
               f"times as much at $\\varepsilon = {LOOP_EPS[0]}$, in agreement with $\\varepsilon^2 J "
               f"[\\nabla G_{{{i + 1}}}, \\nabla G_{{{j + 1}}}] = \\varepsilon^2 "
               f"{_tex_vec(numbers.get('predicted_coefficient_exact', predicted))}$ to a relative "
               f"${_tex_num(rel, 1)}$. Hence no mirror potential exists.")
        return _cert("loop", True, numbers, method, text, tex)
    if measured < 1e-10 * scale:
        text = (f"the zero-impulse loop {legs} moves w by only {_f(norms[1])} at ε = {LOOP_EPS[1]} "
                f"(|Δw|/ε² = {_f(measured)}): no second-order displacement, consistent with a mirror flow")
        tex = (f"\\emph{{Loop.}} The zero-impulse loop of linear losses in directions $e_{{{i + 1}}}, "
               f"e_{{{j + 1}}}$ returns $w$ to its start up to ${_tex_num(norms[1])}$ at "
               f"$\\varepsilon = {LOOP_EPS[1]}$: no obstruction at second order.")
        return _cert("loop", False, numbers, method, text, tex)
    return _cert("loop", None, numbers, method,
                 f"inconclusive: |Δw| = {_f(norms[1])} at ε = {LOOP_EPS[1]}, ratio {_f(ratio, 3)} (4 for ε² scaling), "
                 f"prediction error {_f(rel, 2)}")


# --- 3. the metric certificate ----------------------------------------------------------------

def _rank(rows: Sequence[Sequence], rtol) -> int:
    if not rows:
        return 0
    s = mp.svd_r(mp.matrix([list(r) for r in rows]), compute_uv=False)
    top = max(abs(v) for v in s)
    return sum(1 for v in s if top and abs(v) > rtol * top)


def conserved_quadratics(G: Sequence[sp.Expr], xs: Sequence[sp.Symbol]) -> list[sp.Expr] | None:
    """A basis of the polynomials q = cᵀx + xᵀSx with ∇q · ∇G_i ≡ 0 for every i, or None unless G is polynomial.

    Each such q is conserved by every gradient flow dx/dt = −Jᵀ∇L (dq/dt = −∇qᵀJᵀ∇L = 0).

    >>> a, b1, b2 = sp.symbols("a b1 b2", real=True)
    >>> conserved_quadratics([a * b1, a * b2], [a, b1, b2])
    [a**2 - b1**2 - b2**2]
    """
    if not all(sp.sympify(g).is_polynomial(*xs) for g in G):
        return None
    monomials = list(xs) + [xs[k] * xs[l] for k in range(len(xs)) for l in range(k, len(xs))]
    c = sp.symbols(f"c0:{len(monomials)}")
    q = sum(ci * m for ci, m in zip(c, monomials))
    eqs = []
    for g in G:
        flux = sp.expand(sum(sp.diff(q, x) * sp.diff(g, x) for x in xs))
        eqs += sp.Poly(flux, *xs).coeffs()
    M, _ = sp.linear_eq_to_matrix(eqs, c)
    out = []
    for v in M.nullspace():
        poly = sp.Poly(sum(vi * m for vi, m in zip(v, monomials)), *xs).primitive()[1]
        out.append((-poly if poly.LC() < 0 else poly).as_expr())
    return out


def _metric(num: _Numerics) -> Certificate:
    p = num.p
    d, D, xs = p.d, p.D, p.variables
    x0 = num.x0()
    rtol = mp.mpf(10) ** (-mp.mp.dps // 2)
    # the leaf of x0 (its orbit under all flows) has dimension at least the rank of ∇G_i and the brackets
    lower = _rank([g(*x0) for g in num.grad_mp] + [f(*x0) for f in num.bracket_mp.values()], rtol)
    if lower > d:
        return _cert("metric", None, {"leaf_dimension_at_least": lower}, "rank of ∇G_i and brackets at x0",
                     f"not applicable: the brackets leave span ∇G_i, the leaf of x0 has dimension ≥ {lower} > d = {d}, "
                     f"so H = JJᵀ is not a function of w there")
    invariants = [] if D == d else conserved_quadratics(num.G, xs)
    if invariants is None:
        return _cert("metric", None, {}, "G is not polynomial",
                     "not decided: G is not polynomial, no conserved quantities were searched")
    chosen, grads = [], []
    for q in invariants:  # a maximal set independent at x0
        g = mp_function(xs, [sp.diff(q, x) for x in xs], {})(*x0)
        if _rank(grads + [g], rtol) > len(grads):
            chosen.append(q)
            grads.append(g)
    if D - len(chosen) > d:
        return _cert("metric", None, {"leaf_dimension_at_least": lower, "invariants": chosen},
                     "polynomial invariants of degree ≤ 2",
                     f"not decided: {len(chosen)} conserved quantities of degree ≤ 2 leave a leaf of dimension up to "
                     f"{D - len(chosen)} > d = {d}")
    levels = [q.xreplace(dict(zip(xs, num.x0_exact))) for q in chosen]
    leaf = ", ".join(f"{q} = {lv}" for q, lv in zip(chosen, levels))
    if d == 1:
        return _cert("metric", False, {"invariants": chosen, "levels": levels}, "d = 1",
                     "no obstruction: d = 1, and every positive metric on an interval is a Hessian")
    defect, w0, tol = _integrability_defect(num, chosen, x0)
    worst = max(abs(v) for v in defect.values())
    numbers = {"invariants": chosen, "levels": levels, "w": w0, "defect": {f"T_{i}{j}{k}": v for (i, j, k), v in
                                                                         defect.items()},
               "max_abs_defect": worst, "tolerance": tol}
    shown = defect if len(defect) <= 3 else dict([max(defect.items(), key=lambda kv: abs(kv[1]))])
    comps = ", ".join(f"T_{i}{j}{k} = {_f(v, 3)}" for (i, j, k), v in shown.items())
    method = "x(w) on the leaf by mp.findroot, ∂_k (H⁻¹)_ij by mp.diff"
    is_function = f"on the leaf {{{leaf}}}, H = JJᵀ is a function of w" if chosen else "H = JJᵀ is a function of w (D = d)"
    tex_comps = ", ".join(f"T_{{{i}{j}{k}}} = {_tex_num(v, 3)}" for (i, j, k), v in defect.items())
    if worst > tol:
        text = (f"{is_function}, but H⁻¹ is not a Hessian: {comps} at w = G(x0) "
                f"(T_ijk = ∂_k(H⁻¹)_ij − ∂_j(H⁻¹)_ik): no mirror potential")
        conserved = ", ".join(f"{sp.latex(q)} = {sp.latex(lv)}" for q, lv in zip(chosen, levels))
        tex = ("\\emph{Metric.} On the leaf of $x_0$ " + (f"(where ${conserved}$) " if chosen else "")
               + f"the metric $H = JJ^\\top$ is a function of $w$, and a mirror potential would need "
               f"$H^{{-1}} = \\nabla^2 R$; but at $w = G(x_0)$ the integrability defect "
               f"$T_{{ijk}} = \\partial_k (H^{{-1}})_{{ij}} - \\partial_j (H^{{-1}})_{{ik}}$ has ${tex_comps}$, "
               f"not all zero. Hence no mirror potential exists.")
        return _cert("metric", True, numbers, method, text, tex)
    return _cert("metric", False, numbers, method,
                 f"{is_function}, and H⁻¹ passes the integrability test at w = G(x0) "
                 f"(max |T_ijk| = {_f(worst)} ≤ {_f(tol)})",
                 f"\\emph{{Metric.}} On the leaf of $x_0$, $H^{{-1}}$ satisfies the integrability condition of a "
                 f"Hessian at $w = G(x_0)$ ($\\max |T_{{ijk}}| = {_tex_num(worst)}$).")


def _integrability_defect(num: _Numerics, invariants: Sequence[sp.Expr], x0: list):
    """T_ijk = ∂_k (H⁻¹)_ij − ∂_j (H⁻¹)_ik (1-based, j < k) at w0 = G(x0), with its tolerance.

    H⁻¹ as a function of w: x(w) solves G(x) = w, q(x) = q(x0) for the invariants q (a square system
    whose Jacobian [J; ∇q] is invertible: ∇q ⊥ every ∇G_i), by Newton from x0.
    """
    xs, d = num.p.variables, num.p.d
    q_mp = mp_function(xs, list(invariants), {})
    dq_mp = [mp_function(xs, [sp.diff(q, x) for x in xs], {}) for q in invariants]
    levels = q_mp(*x0)
    memo: dict[tuple, mp.matrix] = {}

    def h_inv(w):
        if w not in memo:
            def f(*x):
                return [g - wi for g, wi in zip(num.G_mp(*x), w)] + [q - lv for q, lv in zip(q_mp(*x), levels)]

            def jac(*x):
                return mp.matrix([g(*x) for g in num.grad_mp] + [dq(*x) for dq in dq_mp])

            x = mp.findroot(f, x0, J=jac)
            J = num.J_mp(list(x))
            memo[w] = mp.inverse(J * J.T)
        return memo[w]

    w0 = num.G_mp(*x0)

    def shifted(k, t):
        return tuple(wi + (t if l == k else 0) for l, wi in enumerate(w0))

    dH = {(i, j, k): mp.diff(lambda t, i=i, j=j, k=k: h_inv(shifted(k, t))[i, j], 0)
          for k in range(d) for i in range(d) for j in range(d)}
    defect = {(i + 1, j + 1, k + 1): dH[i, j, k] - dH[i, k, j]
              for i in range(d) for j in range(d) for k in range(j + 1, d)}
    tol = mp.mpf(10) ** (-mp.mp.dps // 2) * (1 + max(abs(v) for v in dH.values()))
    return defect, w0, tol


# --- 4. path dependence -----------------------------------------------------------------------

# Dormand–Prince 5(4): nodes' weights a_ij, the 5th-order weights b and the error weights b − b*
_DP_A = ((), (1 / 5,), (3 / 40, 9 / 40), (44 / 45, -56 / 15, 32 / 9),
         (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
         (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656))
_DP_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0])
_DP_E = _DP_B - np.array([5179 / 57600, 0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40])


def _dopri(f: Callable, y: np.ndarray, done: Callable, t_max: float = 500.0, max_steps: int = 20000):
    """Integrate y' = f(y) adaptively until ``done(y)``; return (y, converged, accepted states)."""
    t, h, states = 0.0, 0.05, [y]
    k1 = f(y)
    with np.errstate(all="ignore"):  # an overflowing trial step is rejected, not an error
        for _ in range(max_steps):
            ks = [k1]
            for row in _DP_A[1:]:
                ks.append(f(y + h * sum(a * k for a, k in zip(row, ks))))
            y_new = y + h * sum(b * k for b, k in zip(_DP_B[:6], ks))
            ks.append(f(y_new))
            scale = 1e-12 + PATH_RTOL * np.maximum(np.abs(y), np.abs(y_new))
            err = np.sqrt(np.mean((h * sum(e * k for e, k in zip(_DP_E, ks)) / scale) ** 2))
            if np.isfinite(err) and err <= 1:
                t, y, k1 = t + h, y_new, ks[-1]
                states.append(y)
                if done(y):
                    return y, True, states
                if t >= t_max:
                    break
            if not np.isfinite(err):
                h *= 0.2
            else:
                h *= min(5.0, max(0.2, 0.9 * err ** -0.2)) if err > 0 else 5.0
            if h < 1e-12:
                break
    return y, False, states


def _reach(num: _Numerics, x0: np.ndarray, g: np.ndarray, steps: int = 50) -> np.ndarray:
    """A point of the GF path of the linear loss ⟨g, w⟩ from x0, at arc length PATH_RADIUS max(1, |x0|).

    A minimiser outside the reachable image would stop GF at its boundary, hence a reachable w*. By arc
    length because GF itself can blow up in finite time (u^L, L ≥ 3); the path stops early where the
    smallest singular value of J has halved, before the reachable set's singular boundary.
    """
    def unit_descent(y):
        v = -num.J_np(y).T @ g
        return list(v / np.linalg.norm(v))

    sigma0 = np.linalg.svd(num.J_np(x0), compute_uv=False)[-1]
    h = PATH_RADIUS * max(1.0, float(np.linalg.norm(x0))) / steps
    x = x0
    for _ in range(steps):
        y = np.array(_rk4(unit_descent, list(x), h, 1))
        if np.linalg.svd(num.J_np(y), compute_uv=False)[-1] < sigma0 / 2:
            break
        x = y
    return x


def _spd_family(d: int, rng: np.random.Generator) -> list[np.ndarray]:
    """I and two random SPD matrices with eigenvalues in [1/2, 2]."""
    out = [np.eye(d)]
    for _ in range(2):
        Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        out.append(Q @ np.diag(rng.uniform(0.5, 2.0, d)) @ Q.T)
    return out


def _path_dependence(num: _Numerics, seed: int, reached: list) -> Certificate:
    p = num.p
    d, D = p.d, p.D
    rng = np.random.default_rng(seed)
    x0 = np.array([float(v) for v in num.x0()])
    J0 = num.J_np(x0)
    lam, V = np.linalg.eigh(J0 @ J0.T)
    inv_root = V @ np.diag(lam ** -0.5) @ V.T
    u = rng.standard_normal(d)
    w_star = num.G_np(_reach(num, x0, inv_root @ (u / np.linalg.norm(u))))
    # A_k = H(x0)^(-1/2) M_k H(x0)^(-1/2): near x0, w converges at the rates of M_k, in [1/2, 2]
    losses = [inv_root @ M @ inv_root for M in _spd_family(d, rng)]
    impulses, finals, all_converged = [], [], True
    for A in losses:

        def f(y, A=A):
            g = A @ (num.G_np(y[:D]) - w_star)
            return np.concatenate([-num.J_np(y[:D]).T @ g, g])

        def done(y):
            return np.linalg.norm(num.G_np(y[:D]) - w_star) <= PATH_CONVERGED * (1 + np.linalg.norm(w_star))

        y, converged, states = _dopri(f, np.concatenate([x0, np.zeros(d)]), done)
        all_converged &= converged
        impulses.append(y[D:])
        finals.append(num.G_np(y[:D]))
        reached += [s[:D] for s in states[:: max(1, len(states) // 20)]]
    spread = max(float(np.linalg.norm(a - b)) for a in impulses for b in impulses)
    tol = PATH_TOL * (1 + max(float(np.linalg.norm(a)) for a in impulses))
    numbers = {"w_star": w_star.tolist(), "A": [A.tolist() for A in losses],
               "impulses": [v.tolist() for v in impulses], "max_difference": spread, "tolerance": tol,
               "converged": all_converged,
               "final_distance": max(float(np.linalg.norm(w - w_star)) for w in finals)}
    method = f"Dormand–Prince 5(4) in float64, rtol {PATH_RTOL:g}, until |w − w*| ≤ {PATH_CONVERGED:g} (1 + |w*|)"
    if not all_converged:
        return _cert("path_dependence", None, numbers, method,
                     f"not decided: gradient flow towards w* = {_vec(w_star, 4)} did not converge")
    family = f"three quadratic losses with the common minimiser w* = {_vec(w_star, 4)}"
    if spread > tol:
        return _cert("path_dependence", True, numbers, method,
                     f"{family} accumulate impulses ∫∇L dt that differ by {_f(spread)} (tolerance {_f(tol)}): "
                     f"no mirror potential",
                     f"\\emph{{Path dependence.}} Three quadratic losses "
                     f"$\\tfrac12 (w - w^*)^\\top A_k (w - w^*)$ with the common minimiser $w^* = "
                     f"{_tex_vec(w_star, transpose=False, digits=4)}$ and different positive definite $A_k$ "
                     f"accumulate impulses $\\int_0^\\infty \\nabla L_k\\,dt$ that differ by "
                     f"${_tex_num(spread)}$, whereas every mirror flow gives $-\\nabla R(w^*)$ for all three. Hence no mirror potential "
                     f"exists.")
    return _cert("path_dependence", False, numbers, method,
                 f"{family} accumulate the same impulse ∫∇L dt, to {_f(spread)} (tolerance {_f(tol)})",
                 f"\\emph{{Path dependence.}} Three quadratic losses with a common minimiser accumulate the same "
                 f"impulse $\\int_0^\\infty \\nabla L_k\\,dt$ (to ${_tex_num(spread)}$).")


# --- 5. partial results -----------------------------------------------------------------------

def _reachable_commuting(num: _Numerics, br: BracketResult, reached: Sequence[np.ndarray]) -> Certificate:
    if not num.nonzero:
        return _cert("reachable_commuting", True, {}, br.pairs[0].decided_by if br.pairs else "d = 1", "")
    for ij in num.nonzero:
        v = num.at_x0(num.brackets[ij]).applyfunc(sp.expand)
        if any(_exact_nonzero(e) for e in v):
            return _cert("reachable_commuting", False, {"pair": [ij[0] + 1, ij[1] + 1], "value_at_x0": list(v)},
                         "exact value at x0",
                         f"no, [∇G_{ij[0] + 1}, ∇G_{ij[1] + 1}](x0) = {_vec(v)} ≠ 0")
    if not reached:
        return _cert("reachable_commuting", None, {}, "exact value at x0",
                     "the brackets vanish at x0, but no flow from x0 was sampled")
    worst = max(np.linalg.norm(num.bracket_np(ij, y)) / (1 + np.sum(num.J_np(y) ** 2))
                for y in reached for ij in num.nonzero)
    numbers = {"points": len(reached), "max_relative_bracket": float(worst), "tolerance": FLOAT_ZERO}
    method = "exact at x0, float64 along the path-dependence flows"
    if worst <= FLOAT_ZERO:
        return _cert("reachable_commuting", True, numbers, method,
                     f"every bracket vanishes at x0 (exactly) and at {len(reached)} points of gradient flows from x0 "
                     f"(max {_f(worst)}): GF from x0 sees a commuting parametrization",
                     f"\\emph{{Partial result.}} Every bracket vanishes at $x_0$ and, numerically, at {len(reached)} "
                     f"points of gradient flows from $x_0$: on the set gradient flow reaches from $x_0$, $G$ "
                     f"behaves as a commuting parametrization.")
    return _cert("reachable_commuting", False, numbers, method,
                 f"no: the brackets vanish at x0 but reach {_f(worst)} along gradient flows from x0")


def ab_shape(G: Sequence[sp.Expr], xs: Sequence[sp.Symbol]) -> tuple[sp.Symbol, tuple[sp.Symbol, ...]] | None:
    """(a, (b_1, ..., b_d)) when G_i = a·b_i with distinct variables a, b_1, ..., b_d; else None.

    >>> a, b1, b2 = sp.symbols("a b1 b2", real=True)
    >>> ab_shape([a * b1, a * b2], [a, b1, b2])
    (a, (b1, b2))
    """
    common = None
    for g in G:
        f = sp.sympify(g).as_ordered_factors()
        if len(f) != 2 or not all(v in xs for v in f):
            return None
        common = set(f) if common is None else common & set(f)
    if not common:
        return None
    a = next(x for x in xs if x in common)
    bs = tuple(next(v for v in sp.sympify(g).as_ordered_factors() if v != a) for g in G)
    return (a, bs) if a not in bs and len(set(bs)) == len(bs) else None


def _time_warp(num: _Numerics, seed: int) -> Certificate:
    """P(w) = ±(√2/6) √(δ + t) (t − 2δ), t = √(δ² + 4|w|²): ∇P = b and ∇²P · JJᵀ = a I on the leaf.

    δ = a² − |b|² is conserved (literature.md N1) and a² = (δ + t)/2 on the leaf; the sign is that of
    a(0), the leaf's half where GF stays (J loses rank at a = 0). Then d∇P(w)/dt = −a ∇L(w): a mirror
    flow of P after the time change dτ = a dt. Checked at random points of the leaf near x0.
    """
    p = num.p
    shape = ab_shape(num.G, p.variables)
    if shape is None:
        return _cert("time_warp", None, {}, "G is not of the shape w = a·b", "")
    a, bs = shape
    pos = {x: k for k, x in enumerate(p.variables)}
    a0, b0 = num.x0_exact[pos[a]], [num.x0_exact[pos[b]] for b in bs]
    if a0 == 0:
        return _cert("time_warp", None, {}, "a(0) = 0", "not applicable: a(0) = 0")
    sign = 1 if sp.N(a0) > 0 else -1
    delta = sp.expand(a0 ** 2 - sum(b ** 2 for b in b0))
    w = p.w
    t = sp.sqrt(delta ** 2 + 4 * sum(wi ** 2 for wi in w))
    P = sign * sp.sqrt(2) / 6 * sp.sqrt(delta + t) * (t - 2 * delta)
    grad = [sp.diff(P, wi) for wi in w]
    grad_mp = mp_function(w, grad, {})
    hess_mp = mp_function(w, [sp.diff(g, wj) for g in grad for wj in w], {})
    rnd = random.Random(seed)
    x = num.x0()
    err_grad = err_hess = mp.mpf(0)
    points = 0
    while points < 4:
        bv = [to_mpf(b, {}) + mp.mpf(rnd.uniform(-0.3, 0.3)) for b in b0]
        a2 = to_mpf(delta, {}) + sum(b ** 2 for b in bv)
        if a2 <= 0:
            continue
        av = sign * mp.sqrt(a2)
        x[pos[a]] = av
        for b, v in zip(bs, bv):
            x[pos[b]] = v
        wv = num.G_mp(*x)
        J = num.J_mp(x)
        flat = hess_mp(*wv)
        hess = mp.matrix([flat[k * p.d:(k + 1) * p.d] for k in range(p.d)])
        err_grad = max(err_grad, max(abs(g - v) for g, v in zip(grad_mp(*wv), bv)))
        err_hess = max(err_hess, mp.mnorm(hess * J * J.T - av * mp.eye(p.d), 1))
        points += 1
    tol = mp.mpf(10) ** (-2 * mp.mp.dps // 3)
    verdict = err_grad <= tol and err_hess <= tol
    b_name = f"({', '.join(b.name for b in bs)})"
    minus = "" if sign > 0 else "−"
    numbers = {"a": a.name, "b": [b.name for b in bs], "delta": delta, "P": P, "points": points,
               "max_error_grad": err_grad, "max_error_hess": err_hess, "tolerance": tol}
    method = f"∇P, ∇²P by sympy.diff, checked in mpmath at {points} random points of the leaf"
    lhs = (f"P(w) = {minus}(√2/6)√(δ + t)(t − 2δ), t = √(δ² + 4|w|²), δ = {a.name}² − |b|² = {delta} (conserved)")
    if not verdict:
        return _cert("time_warp", False, numbers, method,
                     f"{lhs} fails ∇P = b or ∇²P·JJᵀ = {a.name}·I (errors {_f(err_grad)}, {_f(err_hess)})")
    return _cert("time_warp", True, numbers, method,
                 f"{lhs} has ∇P(w) = {b_name} and ∇²P(w)·JJᵀ = {a.name}·I on the leaf ({points} points, error "
                 f"{_f(max(err_grad, err_hess))}): d∇P(w)/dt = −{a.name}·∇L(w), a mirror flow in τ with dτ = {a.name} dt",
                 f"\\emph{{Time-warped mirror flow.}} With $\\delta = {sp.latex(a)}^2 - \\|b\\|^2 = {sp.latex(delta)}$ "
                 f"(conserved), $t = \\sqrt{{\\delta^2 + 4\\|w\\|^2}}$ and "
                 f"$P(w) = {minus}\\tfrac{{\\sqrt{{2}}}}{{6}} \\sqrt{{\\delta + t}}\\,(t - 2\\delta)$, one has "
                 f"$\\nabla P(w) = b$ and "
                 f"$\\nabla^2 P(w)\\, J J^\\top = {sp.latex(a)}\\, I$ on the leaf (checked at {points} points to "
                 f"${_tex_num(max(err_grad, err_hess))}$), so $\\frac{{d}}{{dt}} \\nabla P(w) = -{sp.latex(a)}\\, "
                 f"\\nabla L(w)$: gradient flow is a mirror flow of $P$ after the time change "
                 f"$d\\tau = {sp.latex(a)}\\,dt$.")


# --- formatting -------------------------------------------------------------------------------

def _f(v, digits: int = 2) -> str:
    """A number for a text line: ``1.2e-05`` style, or fixed point for moderate sizes."""
    v = float(v)
    return f"{v:.{digits}e}" if v != 0 and not 1e-3 <= abs(v) < 1e4 else f"{v:.{digits + 1}g}"


def _vec(values, digits: int | None = None) -> str:
    if digits is None and all(isinstance(v, sp.Basic) for v in values):
        return "(" + ", ".join(str(v) for v in values) + ")"
    return "(" + ", ".join(_f(v, digits or 3) for v in values) + ")"


def _tex_num(v, digits: int = 2) -> str:
    text = _f(v, digits)
    mant, e, exp = text.partition("e")
    return f"{mant} \\times 10^{{{int(exp)}}}" if e else text


def _tex_vec(values, transpose: bool = True, digits: int | None = None) -> str:
    items = [sp.latex(v) if isinstance(v, sp.Basic) else _tex_num(v, digits or 3) for v in values]
    # \bigl( … \bigr), not \left … \right: TeX may break an inline formula between them
    return "\\bigl(" + ", ".join(items) + "\\bigr)" + ("^\\top" if transpose else "")


def _tex_escape(text: str) -> str:
    """Plain text for LaTeX (titles like "w = U U^T, 2x2")."""
    special = {"^": r"\textasciicircum{}", "~": r"\textasciitilde{}", "\\": r"\textbackslash{}"}
    return "".join(special.get(ch, "\\" + ch if ch in "&%$#_{}" else ch) for ch in text)


def _jsonable(v):
    """Exact numbers as strings ("25/13"), mpmath and numpy numbers as floats, containers recursively.

    A non-finite float (the ratio of two zero displacements) becomes null: strict JSON has no inf.
    """
    if isinstance(v, (mp.mpf, np.floating, float)):
        return float(v) if mp.isfinite(v) else None
    if isinstance(v, (bool, int, str)) or v is None:
        return v
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, mp.matrix)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.integer):
        return int(v)
    return str(v)
