"""Flows of a monomial component along its orbit: G = c·Π_k x_k^{n_k} (MATH.md §3), the flow of
+∇G has no closed form in t (for w = u1·u2·u3 with a general x0 it is an elliptic integral), but
its orbit has one.

Along the flow x_k ∂_k G = n_k G, so d(x_k²/n_k)/dt = 2G is the same for every k: the differences
x_k²/n_k − x_j²/n_j are conserved. Taking σ = x_m as the curve parameter, m the coordinate of least
x_k²/n_k at the start (the first to reach 0 when the flow runs backwards),

    x_k(σ) = sign(x_k) √(b_k + r_k σ²),   r_k = n_k/n_m,   b_k = x_k² − r_k x_m² ≥ 0,

and the time to reach σ is the quadrature t = T(σ) = ∫_{x_m}^{σ} dτ / ∂_m G(x(τ)). On ψ's orbit
(x = x0) the potential is then explicit in σ: dQ/dµ = G and d(σ²)/dµ = 2 σ ∂_m G = 2 n_m G, so

    Q = (σ² − x_m0²) / (2 n_m),   ∇Q = G(x(σ)),   ∇²Q = |∇G(x(σ))|²,   µ = T(σ).

If n_m = 1 and the least x_k²/n_k is unique, ∂_m G ≠ 0 along the whole orbit: σ crosses 0 (so
does w) and runs over R (the orbit *crosses*). Otherwise ∂_m G → 0 as σ → 0, T diverges there and
σ keeps the sign of x_m. With K = Σ n_k ≥ 3, T converges at |σ| → ∞: U is bounded on that side.

Three functions of one argument carry this into the later stages as sympy functions, evaluated in
mpmath (quadrature by tanh-sinh, inverses by a bracketed Newton) and printed into generated code:

* :class:`OrbitTime` T(σ) — the dual time at curve parameter σ;
* :class:`OrbitPoint` σ(t) = T⁻¹(t) — the curve parameter at dual time t, so ψ(µ) = x(σ(µ));
* :class:`OrbitOutput` σ_w(w) — the curve parameter at output w = G(x(σ)), so ∇R(w) = T(σ_w(w)).

Their arguments are (argument, c, x_1, …, x_D): the coefficient and the start of the orbit.

>>> import sympy as sp
>>> u1, u2, u3 = sp.symbols("u1 u2 u3", real=True)
>>> orb = monomial_orbit(u1 * u2 * u3, (u1, u2, u3), {u1: 1, u2: 2, u3: 3}, index=1)
>>> orb.exponents, orb.m, orb.crossing
((1, 1, 1), 0, True)
>>> t = orb.time(sp.Integer(2), (1, 2, 3))  # T(2) = ∫_1^2 dτ / √((3 + τ²)(8 + τ²))
>>> import mpmath as mp  # an elliptic integral: R_F(x0²) − R_F(x(2)²) in Carlson's form
>>> abs(sp.N(t, 30) - (mp.elliprf(1, 4, 9) - mp.elliprf(4, 7, 12))) < 1e-14
True
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import mpmath as mp
import sympy as sp

from ._errors import DomainError

__all__ = ["NUMPY_ORBIT_SOURCE", "Orbit", "OrbitOutput", "OrbitPoint", "OrbitTime", "framework_orbit_source",
           "has_orbit_function", "monomial_orbit"]


# --- mpmath numerics --------------------------------------------------------------------------------

def _constants(x, n, m):
    xm = x[m]
    r = [mp.mpf(nk) / n[m] for nk in n]
    b = [mp.mpf(0) if k == m else x[k] ** 2 - r[k] * xm**2 for k in range(len(n))]
    if any(v < 0 for v in b):
        raise DomainError(f"the orbit through x = {[mp.nstr(v, 8) for v in x]} does not reach x{m + 1} = 0 first: "
                          "the curve parameter chosen for x0 does not apply here")
    return xm, r, b


def _rate(sig, c, x, n, m, r, b):
    """∂_m G at x(σ): the speed dσ/dt of the curve parameter."""
    out = c * n[m] * sig ** (n[m] - 1)
    s2 = sig * sig
    for k in range(len(n)):
        if k != m:
            f = mp.sqrt(b[k] + r[k] * s2)
            out *= (f if n[k] == 1 else f ** n[k]) if x[k] > 0 else (-f) ** n[k]
    return out


def _segment(h, a, b):
    """∫_a^b h for a, b on one side of 0 (either may be 0 or infinite): in z = log|τ| when both are
    nonzero, which keeps both the near-0 and the infinite ends smooth for tanh-sinh."""
    if a == b:
        return mp.mpf(0)
    if a == 0 or b == 0:
        other = b if a == 0 else a
        pts = [mp.mpf(0), other] if mp.isfinite(other) else [mp.mpf(0), mp.sign(other), other]
        val = mp.quad(h, pts)
        return val if a == 0 else -val
    sgn = mp.sign(a)
    za, zb = mp.log(abs(a)), mp.log(abs(b))

    def g(z):
        tau = sgn * mp.exp(z)
        return h(tau) * tau

    if mp.isfinite(zb):
        n = max(1, min(400, int(abs(zb - za)) + 1))
        pts = [za + (zb - za) * k / n for k in range(n + 1)]
    else:
        n = max(1, min(400, int(abs(za)) + 1))
        pts = [za + k for k in range(n)] + [zb]
    return mp.quad(g, pts)


def _time_mp(sig, c, x, n, m, crossing):
    xm, r, b = _constants(x, n, m)

    def h(tau):
        return 1 / _rate(tau, c, x, n, m, r, b)

    if sig == xm:
        return mp.mpf(0)
    if sig * xm <= 0:
        if not crossing:
            if sig == 0:
                return -mp.sign(h(xm) * xm) * mp.inf
            raise DomainError(f"σ = {mp.nstr(sig, 8)} is not on the orbit: the flow never moves x{m + 1} across 0")
        return _segment(h, xm, 0) + _segment(h, 0, sig)
    return _segment(h, xm, sig)


def _between(h, a, b):
    """∫_a^b h along the orbit (through 0 when a and b lie on opposite sides)."""
    if a * b < 0:
        return _segment(h, a, 0) + _segment(h, 0, b)
    return _segment(h, a, b)


@functools.lru_cache(maxsize=256)
def _time_range_at(c, x, n, m, crossing, dps):
    with mp.workdps(dps):
        xm = x[m]
        ends = [_time_mp(e, c, list(x), n, m, crossing) for e in ((-mp.inf, mp.inf) if crossing else
                                                                    (mp.mpf(0), mp.sign(xm) * mp.inf))]
    return min(ends), max(ends)


def _time_range(c, x, n, m, crossing):
    """U = T(σ-range) (cached: the inverse σ(t) checks it on every call)."""
    return _time_range_at(c, x, n, m, crossing, mp.mp.dps)


_last_point: dict = {}


def _point_mp(t, c, x, n, m, crossing):
    """σ(t): Newton on T in u (σ = x_m + u when the orbit crosses 0, x_m e^u otherwise), each step
    adding the quadrature from the last iterate (short intervals: cheap); a step that leaves the
    bracket, which starts unbounded, bisects it or doubles towards its open side."""
    xm, r, b = _constants(x, n, m)
    if t == 0:
        return xm

    def h(tau):
        return 1 / _rate(tau, c, x, n, m, r, b)

    def at(u):
        return xm + u if crossing else xm * mp.exp(u)

    lo_t, hi_t = _time_range(c, tuple(x), tuple(n), m, crossing)
    if not lo_t < t < hi_t:
        raise DomainError(f"µ = {mp.nstr(t, 17)} is outside U = ({mp.nstr(lo_t, 10)}, {mp.nstr(hi_t, 10)})")
    eps = mp.sign(h(xm))
    target = eps * t
    u, Tu = mp.mpf(0), mp.mpf(0)
    key = (c, tuple(x), tuple(n), m, crossing)
    last = _last_point.get(key)
    if last is not None and last[2] >= mp.mp.prec and abs(last[0] - t) < abs(t):
        # warm start from the last solution on this orbit (a solve over µ asks for nearby t in turn)
        u, Tu = (last[1] - xm if crossing else mp.log(last[1] / xm)), eps * last[0]
    lo, hi = -mp.inf, mp.inf
    tol = mp.mpf(10) ** (3 - mp.mp.dps)
    for _ in range(400):
        sig = at(u)
        f = Tu - target
        if f == 0:
            return sig
        if f < 0:
            lo = u
        else:
            hi = u
        slope = eps * h(sig) * (1 if crossing else sig)
        new = u - f / slope
        if not lo < new < hi:
            room = max(1, abs(xm)) if crossing else 1
            new = (lo + max(room, abs(lo)) if hi == mp.inf else hi - max(room, abs(hi)) if lo == -mp.inf
                   else (lo + hi) / 2)
        if abs(new - u) <= tol * max(abs(new), 1 if crossing else abs(new)) + mp.mpf(10) ** (-2 * mp.mp.dps):
            _last_point[key] = (t, at(new), mp.mp.prec)
            return at(new)
        Tu += eps * _between(h, sig, at(new))
        u = new
    raise ArithmeticError(f"σ(t) for t = {mp.nstr(t, 10)} did not converge")


def _log_output(z, x, n, m, r, b):
    """log(w(x_m e^z) / w0): n_m z + Σ_k (n_k/2) log((b_k + r_k x_m² e^{2z}) / x_k²), cancellation-free."""
    xm = x[m]
    out = n[m] * z
    for k in range(len(n)):
        if k != m:  # b_k = 0 (a tie with x_m): the factor is r_k σ², exactly 2z
            out += n[k] * z if b[k] == 0 else mp.mpf(n[k]) / 2 * mp.log1p(r[k] * xm**2 * mp.expm1(2 * z) / x[k] ** 2)
    return out


def _log_output_slope(z, x, n, m, r, b):
    xm = x[m]
    out = mp.mpf(n[m])
    for k in range(len(n)):
        if k != m:
            e = r[k] * xm**2 * mp.exp(2 * z)
            out += n[k] * e / (b[k] + e)
    return out


def _base(x, n, m, r, b):
    """The reference point of σ_w: x_m itself, or (x_m = 0, an orbit through w = 0) the smallest scale
    √(b_k/r_k), on the positive side; with x at it."""
    base = x[m] if x[m] != 0 else min(mp.sqrt(b[k] / r[k]) for k in range(len(n)) if k != m)
    xb = [base if k == m else mp.sign(x[k]) * mp.sqrt(b[k] + r[k] * base**2) for k in range(len(n))]
    return base, xb


def _output_mp(s, c, x, n, m, crossing):
    _, r, b = _constants(x, n, m)
    _, x = _base(x, n, m, r, b)
    w0 = c
    for k in range(len(n)):
        w0 *= x[k] ** n[k]
    if s == 0 and crossing:
        return mp.mpf(0)
    if s * w0 <= 0:
        if not crossing:
            raise DomainError(f"w = {mp.nstr(s, 17)} is outside dom R: w keeps the sign of w0 = {mp.nstr(w0, 8)}")
        return -_output_mp_at(-s, c, x, n, m, r, b, w0)  # w is odd in σ on an orbit through 0
    return _output_mp_at(s, c, x, n, m, r, b, w0)


def _output_mp_at(s, c, x, n, m, r, b, w0):
    """σ on the side of x[m] with w(σ) = s (same sign as w0 = w(x[m]))."""
    xm = x[m]
    target = mp.log(s / w0)
    # log w(x_m e^z)/w0 is convex and increasing in z with slope in [n_m, K]: Newton from the
    # right of the root (z = target/n_m or target/K) decreases monotonically to it
    K = sum(n)
    z = target / n[m] if target > 0 else target / K
    tol = mp.mpf(10) ** (3 - mp.mp.dps)
    for _ in range(200):
        step = (_log_output(z, x, n, m, r, b) - target) / _log_output_slope(z, x, n, m, r, b)
        z -= step
        if abs(step) <= tol * max(1, abs(z)):
            break
    return xm * mp.exp(z)


# --- sympy functions --------------------------------------------------------------------------------

class _OrbitFunction(sp.Function):
    """Base of the three orbit functions; subclasses fix the exponents n, the parameter index m and
    whether the orbit crosses 0 (class attributes, one subclass per block: see :meth:`Orbit.function`)."""

    n: tuple[int, ...] = ()
    m: int = 0
    crossing: bool = False
    index: int = 1

    @classmethod
    def eval(cls, *args):
        return None  # never simplified symbolically

    def _eval_is_real(self):
        return True

    @classmethod
    def _imp_(cls, arg, c, *x):
        """The mpmath value (lambdify calls this with mpf arguments)."""
        return cls._evaluate(mp.mpmathify(arg), mp.mpmathify(c), [mp.mpmathify(v) for v in x])

    @classmethod
    def _evaluate(cls, arg, c, x):
        # memoised: R, ∇R and ∇²R of one point all need σ_w(w), and a trajectory re-asks T(σ)
        return _cached(cls, arg, c, tuple(x), mp.mp.prec)

    def _eval_evalf(self, prec):
        vals = [a.evalf(prec + 20) for a in self.args]
        if any(not v.is_number for v in vals):
            return None
        with mp.workprec(prec + 20):
            args = [mp.inf if v == sp.oo else -mp.inf if v == -sp.oo else mp.make_mpf(sp.Float(v, prec + 20)._mpf_)
                    for v in vals]
            out = self._evaluate(args[0], args[1], args[2:])
        if mp.isinf(out):
            return sp.oo if out > 0 else -sp.oo
        return sp.Float(out, precision=prec)

    def array_code(self, printer, helper: str | None = None) -> str:
        """This application as a call of the helpers of :data:`NUMPY_ORBIT_SOURCE` (numpy) or of
        :func:`framework_orbit_source` (JAX, PyTorch: same names with ``_fw``); ``helper`` names
        another helper with the same arguments (``_orbit_gradient``: σ_w and T(σ_w) together)."""
        arg, c, *x = (printer._p(a) for a in self.args)
        name = helper or self.numpy_name
        name = name if printer.backend.ns == "np" else name.replace("_orbit_", "_orbit_fw_")
        return f"{name}({arg}, {c}, ({', '.join(x)},), {self.n}, {self.m}, {self.crossing})"

    def _latex(self, printer, exp=None):
        name = self.latex_name
        arg = printer._print(self.args[0])
        tex = rf"{name}_{{{self.index}}}\left({arg}\right)"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


@functools.lru_cache(maxsize=4096)
def _cached(cls, arg, c, x, prec):
    with mp.workprec(prec):
        with mp.workdps(mp.mp.dps + 10):
            out = cls._compute(arg, c, list(x))
        return +out


def curve_point(sig, x: Sequence[sp.Expr], n: Sequence[int], m: int) -> list[sp.Expr]:
    """x_k(σ) = sign(x_k) √(x_k² + r_k (σ² − x_m²)), x_m(σ) = σ."""
    out = []
    for k in range(len(n)):
        if k == m:
            out.append(sig)
        else:
            rk = sp.Rational(n[k], n[m])
            out.append(sp.sign(x[k]) * sp.sqrt((x[k] ** 2 - rk * x[m] ** 2) + rk * sig**2))  # b_k first: exact
    return out


def _monomial(c, xs, n):
    out = c
    for v, k in zip(xs, n):
        out *= v**k
    return out


def _rate_expr(sig, c, x, n, m) -> sp.Expr:
    """∂_m G at x(σ) as a sympy expression: dσ/dt, the integrand 1/T'(σ) of the orbit time."""
    ys = sp.symbols(f"_y0:{len(n)}")
    return sp.diff(_monomial(c, ys, n), ys[m]).xreplace(dict(zip(ys, curve_point(sig, x, n, m))))


def has_orbit_function(*exprs) -> bool:
    """Whether any of ``exprs`` applies an orbit function (T, σ, σ_w): such formulas are opaque to
    the symbolic strategies and rewrites and need the orbit helpers in generated code."""
    return any(isinstance(a, _OrbitFunction) for e in exprs for a in sp.preorder_traversal(sp.sympify(e)))


class OrbitTime(_OrbitFunction):
    """T(σ) = ∫_{x_m}^{σ} dτ / ∂_m G(x(τ)): the time the flow of +∇G takes from x to x(σ)."""

    latex_name = "T"
    numpy_name = "_orbit_time"

    @classmethod
    def _compute(cls, arg, c, x):
        return _time_mp(arg, c, x, cls.n, cls.m, cls.crossing)

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return 1 / _rate_expr(self.args[0], self.args[1], self.args[2:], self.n, self.m)


class OrbitPoint(_OrbitFunction):
    """σ(t) = T⁻¹(t): the curve parameter after the flow has run for time t from x."""

    latex_name = r"\sigma"
    numpy_name = "_orbit_point"

    @classmethod
    def _compute(cls, arg, c, x):
        return _point_mp(arg, c, x, cls.n, cls.m, cls.crossing)

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return _rate_expr(self, self.args[1], self.args[2:], self.n, self.m)


class OrbitOutput(_OrbitFunction):
    """σ_w(w): the curve parameter where G(x(σ)) = w."""

    latex_name = r"\sigma^{w}"
    numpy_name = "_orbit_output"

    @classmethod
    def _compute(cls, arg, c, x):
        return _output_mp(arg, c, x, cls.n, cls.m, cls.crossing)

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        t = sp.Dummy("t", real=True)
        wsig = _monomial(self.args[1], curve_point(t, self.args[2:], self.n, self.m), self.n)
        return 1 / sp.diff(wsig, t).xreplace({t: self})


@functools.cache
def _function_class(base: type, n: tuple[int, ...], m: int, crossing: bool, index: int) -> type:
    # one class per (role, orbit shape): sympy compares function applications by class and args
    return type(f"{base.__name__}{index}", (base,), {"n": n, "m": m, "crossing": crossing, "index": index,
                                                     "__module__": __name__})


@dataclasses.dataclass(frozen=True)
class Orbit:
    """A block G = c·Π_k x_k^{n_k} (one component, its ``variables``), parametrised by σ = x_m."""

    coefficient: sp.Expr
    variables: tuple[sp.Symbol, ...]
    exponents: tuple[int, ...]
    m: int
    crossing: bool
    index: int

    def function(self, base: type) -> type:
        return _function_class(base, self.exponents, self.m, self.crossing, self.index)

    def time(self, sig, x: Sequence[sp.Expr]) -> sp.Expr:
        return self.function(OrbitTime)(sig, self.coefficient, *x)

    def point(self, t, x: Sequence[sp.Expr]) -> sp.Expr:
        return self.function(OrbitPoint)(t, self.coefficient, *x)

    def output(self, w, x: Sequence[sp.Expr]) -> sp.Expr:
        return self.function(OrbitOutput)(w, self.coefficient, *x)

    def curve(self, sig, x: Sequence[sp.Expr]) -> list[sp.Expr]:
        return curve_point(sig, x, self.exponents, self.m)

    def G(self, xs: Sequence[sp.Expr]) -> sp.Expr:
        return _monomial(self.coefficient, xs, self.exponents)

    def rate(self, sig, x: Sequence[sp.Expr]) -> sp.Expr:
        """∂_m G at x(σ) = dσ/dt."""
        return _rate_expr(sig, self.coefficient, x, self.exponents, self.m)

    def speed2(self, sig, x: Sequence[sp.Expr]) -> sp.Expr:
        """|∇G|² at x(σ) = ∇²Q on the orbit."""
        ys = sp.symbols(f"_y0:{len(self.exponents)}")
        g = self.G(ys)
        pt = dict(zip(ys, self.curve(sig, x)))
        return sp.Add(*(sp.diff(g, y).xreplace(pt) ** 2 for y in ys))

    def time_integral(self, sig, x: Sequence[sp.Expr]) -> sp.Integral:
        """T(σ) as the unevaluated integral it is (for display: LaTeX, JSON)."""
        tau = sp.Symbol("tau", real=True)
        return sp.Integral(1 / self.rate(tau, x), (tau, x[self.m], sig))

    def carlson(self, sig, x: Sequence[sp.Expr]) -> sp.Expr | None:
        """T(σ) = (R_F(x0²) − R_F(x(σ)²))/c for three linear factors and σ of the sign of x_m0 (Carlson's
        symmetric elliptic integral R_F(a, b, c) = ½∫_0^∞ dt/√((t+a)(t+b)(t+c))), else None."""
        if self.exponents != (1, 1, 1):
            return None
        rf = sp.Function("R_F")
        return (rf(*[v**2 for v in x]) - rf(*[v**2 for v in self.curve(sig, x)])) / self.coefficient

    def sigma_range(self, x: Sequence[sp.Expr], values: Mapping) -> tuple[sp.Expr, sp.Expr]:
        if self.crossing:
            return (-sp.oo, sp.oo)
        positive = sp.N(x[self.m].xreplace(dict(values)), 30) > 0
        return (sp.S.Zero, sp.oo) if positive else (-sp.oo, sp.S.Zero)


def monomial_orbit(g: sp.Expr, variables: Sequence[sp.Symbol], x0: Mapping, index: int) -> Orbit | None:
    """The :class:`Orbit` of a monomial c·Π x_k^{n_k} (integers n_k ≥ 1, at least two variables, total
    degree ≥ 3) at the start point ``x0`` (numbers; at most one factor, of exponent 1, may start at 0:
    the orbit then starts at w = 0), or None when g is not such a monomial."""
    variables = tuple(variables)
    if len(variables) < 2:
        return None
    c, dep = sp.factor_terms(g).as_independent(*variables, as_Add=False)
    exps = []
    for v in variables:
        e = sp.Poly(dep, v).degree() if dep.is_polynomial(v) else None
        if not e:
            return None
        exps.append(int(e))
    if sp.expand(_monomial(c, variables, exps) - g) != 0 or sum(exps) < 3 or c.has(*variables):
        return None
    vals = [mp.mpf(sp.N(x0[v], 30)) for v in variables]
    zeros = [k for k, v in enumerate(vals) if v == 0]
    if len(zeros) > 1 or any(exps[k] != 1 for k in zeros):
        return None  # ∇G(x0) = 0: not a regular point (stage 1 refuses it anyway)
    key = [vals[k] ** 2 / exps[k] for k in range(len(exps))]
    m = min(range(len(exps)), key=lambda k: key[k])
    ties = sum(1 for k in range(len(exps)) if abs(key[k] - key[m]) <= mp.mpf(10) ** -25 * key[m])
    return Orbit(c, variables, tuple(exps), m, exps[m] == 1 and ties == 1, index)


# --- numpy source for generated modules --------------------------------------------------------------

#: Vectorised float64 versions of T, σ and σ_w, pasted into generated modules (needs only numpy and
#: the solver source of :mod:`._solvers`). Gauss–Legendre panels of width ≤ 1 in z = log|τ|, where
#: the integrand is analytic in the strip |Im z| < π/2 whatever the b_k, so 16 nodes per panel give
#: full double precision; the tail beyond every scale goes through τ = a/v, v ∈ (0, 1].
NUMPY_ORBIT_SOURCE = '''
_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


class _Orbit:
    """The orbit of G = c·prod x_k**n_k through x, parametrised by sigma = x_m (mirrorsym._orbit)."""

    def __init__(self, c, x, n, m, crossing):
        self.c, self.x, self.n, self.m, self.crossing = float(c), [float(v) for v in x], n, m, crossing
        xm = self.xm = self.x[m]
        self.r = [nk / n[m] for nk in n]
        self.b = [0.0 if k == m else (self.x[k] - np.sqrt(self.r[k]) * xm) * (self.x[k] + np.sqrt(self.r[k]) * xm)
                  for k in range(len(n))]
        if any(v < 0 for v in self.b):
            raise ValueError(f"with these parameter values x{m + 1} is not the first coordinate to reach 0 along "
                             "the orbit: re-derive the potential for them")
        scales = [np.sqrt(self.b[k] / self.r[k]) for k in range(len(n)) if k != m and self.b[k] > 0]
        self.beta = min(scales, default=abs(xm))
        self.far = 4 * max(scales + [abs(xm)])      # beyond every scale: the tail substitution
        # the reference point of the log paths and of sigma_w: x_m, or the smallest scale when the
        # orbit starts at w = 0 (x_m = 0), where T(base) comes from the linear panel through 0
        s = self.side = np.sign(xm) if xm != 0 else 1.0
        self.base = xm if xm != 0 else self.beta
        self.near = min(abs(self.base), self.beta) / 2     # crossing orbits: linear panel through 0
        self.x_base = [self.base if k == m else np.sign(self.x[k]) * np.sqrt(self.b[k] + self.r[k] * self.base ** 2)
                       for k in range(len(n))]
        self.w0 = self.c * np.prod([v ** k for v, k in zip(self.x_base, n)])  # w at the base
        with np.errstate(all="ignore"):
            self.T_base = 0.0 if xm != 0 else float(self._linear(np.array(self.base)))
            self.T_far = self.T_base + self._log_path(np.array(self.base), np.array(s * self.far))
            self.tail_far = self._tail(np.array(s * self.far))
            self.T_zero = (0.0 if xm == 0 else -(self._linear(np.array(s * self.near))
                                                 + self._log_path(np.array(s * self.near), np.array(xm)))) \\
                if crossing else None

    def rate(self, tau):
        n, m = self.n, self.m
        out = self.c * n[m] * tau ** (n[m] - 1)
        for k in range(len(n)):
            if k != m:
                out = out * (np.sign(self.x[k]) * np.sqrt(self.b[k] + self.r[k] * tau * tau)) ** n[k]
        return out

    def _gauss(self, f, a, b):
        mid, half = (a + b) / 2, (b - a) / 2
        t = mid[..., None] + half[..., None] * _GL_X
        return half * np.sum(_GL_W * f(t), axis=-1)

    def _linear(self, b):
        return self._gauss(lambda t: 1 / self.rate(t), np.zeros_like(b), b)

    def _log_path(self, a, b):
        """integral of 1/rate from a to b (same sign, nonzero) in panels of width <= 1 in log|tau|."""
        s = np.sign(a)
        za, zb = np.log(np.abs(a)), np.log(np.abs(b))
        panels = int(min(1000, max(1, np.ceil(np.max(np.abs(zb - za), initial=0.0)))))
        total = np.zeros(np.shape(za))
        step = (zb - za) / panels
        for j in range(panels):
            lo = za + j * step
            total = total + self._gauss(lambda z: 1 / self.rate(s[..., None] * np.exp(z)) * s[..., None] * np.exp(z),
                                        lo, lo + step)
        return total

    def _z_path(self, dz):
        """integral of 1/rate from x_m to x_m e^dz, in u = log(tau/x_m): relative accuracy for small dz."""
        xm = self.base
        panels = int(min(1000, max(1, np.ceil(np.max(np.abs(dz), initial=0.0)))))
        total = np.zeros(np.shape(dz))
        step = dz / panels
        for j in range(panels):
            lo = j * step
            total = total + self._gauss(lambda u: xm * np.exp(u) / self.rate(xm * np.exp(u)), lo, lo + step)
        return total

    def _tail(self, a):
        """integral of 1/rate from a to sign(a)*inf, through tau = a/v."""
        return self._gauss(lambda v: 1 / self.rate(a[..., None] / v) * a[..., None] / (v * v),
                           np.zeros_like(a), np.ones_like(a))

    def time(self, sigma):
        """T(sigma), elementwise; +-inf at a divergent end, nan off the orbit."""
        sigma = np.asarray(sigma, dtype=float)
        shape, sig = sigma.shape, sigma.ravel()
        s = self.side
        flip = (sig * s < 0) if self.crossing else np.zeros(sig.shape, bool)
        off = np.zeros(sig.shape, bool) if self.crossing else ~(sig * s > 0)
        a = np.where(flip, -sig, sig)
        mag = np.abs(a)
        near = (mag < self.near) & ~off if self.crossing else np.zeros(a.shape, bool)
        far = (mag >= self.far) & ~off
        mid = ~(near | far | off)
        out = np.full(a.shape, np.nan)
        with np.errstate(all="ignore"):
            i = np.flatnonzero(mid)  # each regime on its own points only
            if i.size:
                out[i] = self.T_base + self._log_path(np.full(i.size, self.base), a[i])
            i = np.flatnonzero(far)
            if i.size:
                big = a[i]
                tail = np.zeros(i.size)
                finite = np.isfinite(big)
                if np.any(finite):
                    tail[finite] = self._tail(big[finite])
                out[i] = self.T_far + self.tail_far - tail
            i = np.flatnonzero(near)
            if i.size:
                out[i] = self.T_zero + self._linear(a[i])
        if self.crossing:
            out = np.where(flip, 2 * self.T_zero - out, out)
        else:
            lo, hi = self.time_range()
            out = np.where(off & (sig == 0), lo if self.increasing else hi, out)
        return out.reshape(shape)

    @property
    def increasing(self):
        return bool(1 / self.rate(np.array(self.xm)) > 0)

    def time_range(self):
        s = self.side
        end = self.T_far + self.tail_far
        other = 2 * self.T_zero - end if self.crossing else -np.sign(s / self.rate(np.array(self.xm))) * np.inf
        return (min(end, other), max(end, other))

    def point(self, t):
        """sigma(t) with T(sigma) = t: Newton on T in z (sigma = x_m e^z; sigma = x_m + z for a crossing
        orbit), kept inside a bracket that starts unbounded and grows by doubling; a step leaving the
        bracket is a bisection (or a doubling towards its open side). T is monotone in z."""
        t = np.asarray(t, dtype=float)
        lo, hi = self.time_range()
        # at or beyond an end of U the orbit has run off (sigma = +-inf) or into its fixed point
        # (sigma = 0): those values, so that solvers probing up to the ends see w blow up; the
        # generated grad_Q and Q check U themselves
        beyond_hi, beyond_lo = ~(t < hi), ~(t > lo)
        t_in = np.where(beyond_hi | beyond_lo | np.isnan(t), 0.0, t)
        sigma = self._point(t_in)
        ends = [self._end_sigma(lo), self._end_sigma(hi)]
        sigma = np.where(beyond_hi, ends[1], np.where(beyond_lo, ends[0], sigma))
        return np.where(np.isnan(t), np.nan, sigma)

    def _end_sigma(self, end):
        """sigma at an end of U: the end of the sigma-range that T maps there."""
        s = self.side
        up = (self.T_far + self.tail_far)  # T at sigma = s*inf
        if end == up:
            return s * np.inf
        return -s * np.inf if self.crossing else 0.0

    def _point(self, t):
        xm = self.xm
        eps = 1.0 if self.increasing else -1.0
        if self.crossing:
            at, slope = (lambda z: xm + z), (lambda z: np.ones_like(z))
        else:
            eps *= np.sign(xm)
            at, slope = (lambda z: xm * np.exp(z)), (lambda z: np.abs(xm) * np.exp(z))
        z = np.zeros(t.shape)
        a, b = np.full(t.shape, -np.inf), np.full(t.shape, np.inf)
        with np.errstate(all="ignore"):
            for _ in range(400):
                sig = at(z)
                f = eps * (self.time(sig) - t)
                a, b = np.where(f < 0, z, a), np.where(f > 0, z, b)
                d = f / (eps * slope(z) / self.rate(sig) * (1.0 if self.crossing else np.sign(xm)))
                new = z - d
                room = max(1.0, abs(xm)) if self.crossing else 1.0
                grow_up, grow_down = a + np.maximum(room, np.abs(a)), b - np.maximum(room, np.abs(b))
                fallback = np.where(np.isinf(b), grow_up, np.where(np.isinf(a), grow_down, a + (b - a) / 2))
                new = np.where(np.isfinite(new) & (new > a) & (new < b), new, fallback)
                done = (f == 0) | (np.abs(new - z) <= 4e-16 * np.maximum(np.abs(z), 1.0 if self.crossing else 0.0) + 1e-300)
                z = np.where(f == 0, z, new)
                if np.all(done):
                    break
        return at(z)

    def _log_output(self, z):
        """log(w(x_m e^z) / w0) and its z-derivative, without cancellation or overflow."""
        out = self.n[self.m] * z
        slope = np.full(np.shape(z), float(self.n[self.m]))
        xm2 = self.base * self.base
        low = np.minimum(2 * z, 1.0)
        high = np.maximum(2 * z, 1.0)
        small = 2 * z < 1
        for k in range(len(self.n)):
            if k == self.m:
                continue
            nk = self.n[k]
            if self.b[k] == 0:  # a tie with x_m: the factor is r_k sigma**2
                out, slope = out + nk * z, slope + nk
                continue
            a = self.r[k] * xm2 / (self.x_base[k] * self.x_base[k])  # in (0, 1)
            rest = self.b[k] / (self.r[k] * xm2)           # (1 - a)/a
            em = np.expm1(low)
            out = out + nk / 2 * np.where(small, np.log1p(a * em), 2 * z + np.log(a) + np.log1p(rest * np.exp(-high)))
            slope = slope + nk * np.where(small, a * (em + 1) / (1 + a * em), 1 / (1 + rest * np.exp(-high)))
        return out, slope

    def _solve_z(self, w):
        """z = log(sigma/x_m) on the side of x_m where |G(x(sigma))| = |w|, and which points flip side.

        log(|w|/|w0|) is convex and increasing in z with slope in [n_m, K]: Newton from the right of
        the root decreases to it monotonically. The target is log1p((v - w0)/w0) next to w0, where it is exact."""
        w = np.asarray(w, dtype=float)
        flip = (w * self.w0 < 0) if self.crossing else np.zeros(w.shape, bool)
        zero = (w == 0) & self.crossing
        v = np.where(flip, -w, w)
        v = np.where(zero, self.w0, v)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = v / self.w0
            target = np.where(np.abs(q - 1) < 0.5, np.log1p((v - self.w0) / self.w0), np.log(q))
        K = sum(self.n)
        z = np.where(target > 0, target / self.n[self.m], target / K).ravel()
        flat = target.ravel()
        active = np.isfinite(flat)
        for _ in range(100):
            ia = np.flatnonzero(active)
            if not ia.size:
                break
            g, dg = self._log_output(z[ia])
            step = (g - flat[ia]) / dg
            # monotone from the right: a step that is not positive is the rounding floor
            z[ia] = z[ia] - np.where(step > 0, step, 0.0)
            active[ia] = step > 8.9e-16 * np.abs(z[ia]) + 1e-300
        z = z.reshape(target.shape)
        # z has an absolute error ~eps|z|, i.e. sigma a relative one when |z| is large: one more
        # Newton step on the ratio w(sigma)/w, formed in linear space, removes it where representable
        with np.errstate(all="ignore"):
            sigma = self.base * np.exp(z)
            ratio = self.c * sigma ** self.n[self.m] / v
            for k in range(len(self.n)):
                if k != self.m:
                    ratio = ratio * (np.sign(self.x[k]) * np.sqrt(self.b[k] + self.r[k] * sigma * sigma)) ** self.n[k]
            polished = z - np.log(ratio) / self._log_output(z)[1]
        z = np.where(np.isfinite(polished) & (np.abs(z) > 1), polished, z)
        return z, flip, zero

    def output(self, w):
        """sigma_w(w): G(x(sigma)) = w."""
        z, flip, zero = self._solve_z(w)
        sigma = self.base * np.exp(z)
        return np.where(zero, 0.0, np.where(flip, -sigma, sigma))

    def gradient(self, w):
        """(sigma_w(w), T(sigma_w(w))) = (sigma, grad R(w)); T near x_m is integrated in z itself, so
        grad R keeps its relative accuracy as w -> w0 (sigma - x_m would cancel)."""
        z, flip, zero = self._solve_z(w)
        sigma = np.where(zero, 0.0, np.where(flip, -1.0, 1.0) * self.base * np.exp(z))
        t = self.time(sigma)
        close = ~flip & ~zero & (np.abs(z) < 1) & (self.xm != 0)
        if np.any(close):
            with np.errstate(all="ignore"):
                t = np.where(close, self._z_path(np.where(close, z, 0.0)), t)
        return sigma, t


def _orbit_time(sigma, c, x, n, m, crossing):
    return _Orbit(c, x, n, m, crossing).time(sigma)


def _orbit_point(t, c, x, n, m, crossing):
    return _Orbit(c, x, n, m, crossing).point(t)


def _orbit_output(w, c, x, n, m, crossing):
    return _Orbit(c, x, n, m, crossing).output(w)


def _orbit_gradient(w, c, x, n, m, crossing):
    return _Orbit(c, x, n, m, crossing).gradient(w)
'''


#: JAX / PyTorch versions of the orbit functions (appended to :data:`NUMPY_ORBIT_SOURCE` in the
#: framework modules). The value of each comes from the numpy helper on detached inputs
#: (``_detached``, defined per framework); its derivatives from a second-order expansion about the
#: detached point in framework ops, f(a0) + f'(a0)(a − a0) + f''(a0)(a − a0)²/2 with a0 = a detached:
#: the value is exactly the numpy one, first and second derivatives are exact (so autodiff of R gives
#: ∇R and of ∇R gives ∇²R). σ_w takes two framework Newton steps on w(σ) = s instead. Derivatives
#: with respect to the recipe's parameters are not propagated through the orbit functions.
_FRAMEWORK_ORBIT_SOURCE = '''

def _orbit_fw_parts(c, x, n, m):
    """Framework-side constants: coefficient, r_k, b_k and the signs of the x_k."""
    xm = x[m]
    r = [nk / n[m] for nk in n]
    b = [0.0 if k == m else x[k] * x[k] - r[k] * xm * xm for k in range(len(n))]
    sgn = [1.0 if float(_plain(v)) > 0 else -1.0 for v in x]
    return c, r, b, sgn


def _orbit_fw_rate(sig, c, x, n, m):
    """d sigma/dt = dG/dx_m at x(sigma), and its logarithmic derivative."""
    c, r, b, sgn = _orbit_fw_parts(c, x, n, m)
    out = c * n[m] * sig ** (n[m] - 1)
    dlog = 0 * sig + ((n[m] - 1) / sig if n[m] > 1 else 0.0)
    for k in range(len(n)):
        if k != m:
            q = b[k] + r[k] * sig * sig
            out = out * (sgn[k] * q ** 0.5) ** n[k]
            dlog = dlog + n[k] * r[k] * sig / q
    return out, dlog


def _orbit_fw_w(sig, c, x, n, m):
    """w(sigma) = G(x(sigma)) and dw/dsigma = |grad G|^2 / dG/dx_m."""
    cc, r, b, sgn = _orbit_fw_parts(c, x, n, m)
    rate, _ = _orbit_fw_rate(sig, c, x, n, m)
    w = cc * sig ** n[m]
    g2 = rate * rate
    for k in range(len(n)):
        if k != m:
            w = w * (sgn[k] * (b[k] + r[k] * sig * sig) ** 0.5) ** n[k]
    for k in range(len(n)):
        if k != m:
            xk = sgn[k] * (b[k] + r[k] * sig * sig) ** 0.5
            g2 = g2 + (n[k] * w / xk) ** 2
    return w, g2 / rate


def _orbit_fw_time(sigma, c, x, n, m, crossing):
    s0 = _stop(sigma)
    t0 = _detached(lambda v, *p: _Orbit(p[0], p[1:], n, m, crossing).time(v), sigma, c, *x)
    rate, dlog = _orbit_fw_rate(s0, c, x, n, m)
    d = sigma - s0
    return t0 + d / rate - d * d * dlog / (2 * rate)


def _orbit_fw_point(t, c, x, n, m, crossing):
    s0 = _detached(lambda v, *p: _Orbit(p[0], p[1:], n, m, crossing).point(v), t, c, *x)
    rate, dlog = _orbit_fw_rate(s0, c, x, n, m)
    d = t - _stop(t)
    return s0 + d * rate + d * d * rate * rate * dlog / 2


def _orbit_fw_output(w, c, x, n, m, crossing):
    s0 = _detached(lambda v, *p: _Orbit(p[0], p[1:], n, m, crossing).output(v), w, c, *x)
    sig = s0
    for _ in range(2):  # exact first and second derivatives; the value stays the numpy one
        val, slope = _orbit_fw_w(sig, c, x, n, m)
        sig = sig - (val - w) / slope
    return s0 + (sig - _stop(sig))


def _orbit_fw_gradient(w, c, x, n, m, crossing):
    sig = _orbit_fw_output(w, c, x, n, m, crossing)
    nu0 = _detached(lambda v, *p: _Orbit(p[0], p[1:], n, m, crossing).gradient(v)[1], w, c, *x)
    nu = _orbit_fw_time(sig, c, x, n, m, crossing)
    return sig, nu0 + (nu - _stop(nu))
'''

_TORCH_DETACHED = '''

def _plain(v):
    return v.detach() if torch.is_tensor(v) else v


def _stop(a):
    return a.detach()


def _detached(f, a, *params):
    out = f(a.detach().cpu().numpy(), *[float(_plain(q)) for q in params])
    return torch.as_tensor(np.asarray(out, dtype=float), dtype=a.dtype)
'''

_JAX_DETACHED = '''

def _plain(v):
    return v


def _stop(a):
    return jax.lax.stop_gradient(a)


def _detached(f, a, *params):
    shape = jax.ShapeDtypeStruct(a.shape, a.dtype)
    return jax.pure_callback(lambda v, *p: np.asarray(f(v, *[float(q) for q in p]), dtype=v.dtype), shape,
                             jax.lax.stop_gradient(a), *[jax.lax.stop_gradient(jnp.asarray(q, a.dtype)) for q in params],
                             vmap_method="sequential")
'''


def framework_orbit_source(library: str) -> str:
    """The orbit helpers for a JAX (``"jax"``) or PyTorch (``"torch"``) module, numpy ones included."""
    detached = {"torch": _TORCH_DETACHED, "jax": _JAX_DETACHED}[library]
    return NUMPY_ORBIT_SOURCE + detached + _FRAMEWORK_ORBIT_SOURCE
