"""Stage 6: R = Q*, the Legendre transform, with its real branch and dom R (MATH.md §4).

Q is first split into 1-D convex pieces, Q(µ) = Σ_j q_j(⟨ℓ_j, µ⟩) with independent rows ℓ_j of a
matrix L (ν = Lµ). Then with s = L⁻ᵀ w,

    R(w) = Σ_j r_j(s_j),   r_j = q_j*,   ∇R(w) = L⁻¹ (r_j'(s_j))_j,   ∇²R(w) = L⁻¹ diag(r_j''(s_j)) L⁻ᵀ,

and r_j'' = 1/q_j''(r_j'), never a derivative of a closed-form R. A separable block has L = 1; a
quadratic family splits when its λ_k fall on d independent lines (MATH.md §6). Each q_j' = s is
inverted by the first strategy that gives a small formula passing the round trip r_j'(q_j'(ν)) = ν
at sample ν on both sides of 0 (``methods``):

1. sums of exponentials: a e^{βν} (log), a e^{βν} + c e^{−βν} (asinh), or a quadratic in e^{γν};
2. inverse-function peeling (:mod:`._inverse`);
3. sympy ``solve`` under a budget, spurious roots rejected by the round trip, size-limited.

A piece none of these inverts — and a block that does not split — is *implicit*: R is then the
parametric pair w = ∇Q(µ), R = ⟨µ, ∇Q(µ)⟩ − Q(µ), evaluated by a numerical solve.

A monomial-orbit block (:mod:`._orbit`) is parametric in the curve parameter σ instead, and needs no
solve in µ: with σ_w(w) the σ where G(x(σ)) = w (a monotone scalar root),

    ∇R(w) = T(σ_w(w)),   R(w) = w T(σ_w(w)) − Q(σ_w(w)),   ∇²R(w) = 1/|∇G(x(σ_w(w)))|²;

it is implicit too (T is a quadrature), with these formulas (``orbit`` set, ``r`` not None).

>>> import sympy as sp
>>> nu, s = sp.symbols("mu1 w1", real=True)
>>> a = sp.Symbol("alpha", positive=True)
>>> q = a**2 / 4 * (sp.exp(4 * nu) + sp.exp(-4 * nu) - 2)
>>> piece = invert_piece(q, nu, s, (-sp.oo, sp.oo), {a: sp.Rational(1, 2)})
>>> piece.dr, piece.method
(asinh(w1/(2*alpha**2))/4, 'a·sinh(βν + φ) template')
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import mpmath as mp
import sympy as sp

from ._budget import Budget, attempt
from ._errors import DomainError
from ._inverse import peel_inverse
from ._numeric import BlockCache, mp_function, realify, sample_interval, to_mpf
from ._orbit import Orbit, has_orbit_function
from ._parametrization import Parametrization
from ._potential import BlockPotential, PotentialResult
from ._structure import Block

__all__ = ["MAX_OPS", "LegendreBlock", "LegendreResult", "NumericPotential", "ScalarPiece", "invert_piece", "legendre"]

#: a closed form larger than this (sympy count_ops) is not a useful closed form: R becomes implicit
MAX_OPS = 400


@dataclasses.dataclass(frozen=True)
class ScalarPiece:
    """q(ν) on U = (lo, hi) and its conjugate r(s) on dom = (a, b); r, dr, ddr are None when implicit."""

    nu: sp.Symbol
    s: sp.Symbol
    q: sp.Expr
    dq: sp.Expr
    ddq: sp.Expr
    U: tuple[sp.Expr, sp.Expr]
    dom: tuple[sp.Expr, sp.Expr]
    r: sp.Expr | None
    dr: sp.Expr | None
    ddr: sp.Expr | None
    method: str
    assumptions: tuple[str, ...] = ()
    attempts: tuple[str, ...] = ()
    orbit: Orbit | None = None

    @property
    def closed(self) -> bool:
        """r is a closed form (an orbit piece's formulas contain a quadrature and a root: not closed)."""
        return self.r is not None and self.orbit is None

    @property
    def has_formulas(self) -> bool:
        """r, r', r'' are formulas to evaluate (closed, or an orbit piece's)."""
        return self.r is not None


@dataclasses.dataclass(frozen=True)
class LegendreBlock:
    """One block: ν = L µ_b split into scalar pieces, or (``pieces`` None) a joint implicit Q_b."""

    block: Block
    potential: BlockPotential
    L: sp.Matrix | None
    pieces: tuple[ScalarPiece, ...] | None

    @property
    def closed(self) -> bool:
        return self.pieces is not None and all(pc.closed for pc in self.pieces)

    @property
    def s_of_w(self) -> tuple[sp.Expr, ...]:
        """s = L⁻ᵀ w_b, the arguments of the pieces, in the global w symbols."""
        w = sp.Matrix([sp.Symbol(f"w{i + 1}", real=True) for i in self.block.g_indices])
        return tuple(self.L.inv().T * w)


@dataclasses.dataclass(frozen=True)
class LegendreResult:
    blocks: tuple[LegendreBlock, ...]
    seconds: float

    @property
    def closed_form(self) -> bool:
        return all(b.closed for b in self.blocks)

    def R(self) -> sp.Expr | None:
        """R(w) as one expression in w_1..w_d, or None unless every block is closed."""
        if not self.closed_form:
            return None
        total = sp.S.Zero
        for b in self.blocks:
            for pc, sw in zip(b.pieces, b.s_of_w):
                total += pc.r.xreplace({pc.s: sw})
        return total

    def grad_R(self, d: int) -> tuple[sp.Expr, ...] | None:
        if not self.closed_form:
            return None
        out = [sp.S.Zero] * d
        for b in self.blocks:
            nu = sp.Matrix([pc.dr.xreplace({pc.s: sw}) for pc, sw in zip(b.pieces, b.s_of_w)])
            for i, v in zip(b.block.g_indices, b.L.inv() * nu):
                out[i] = v
        return tuple(out)

    def hess_R(self, d: int) -> sp.Matrix | None:
        if not self.closed_form:
            return None
        H = sp.zeros(d, d)
        for b in self.blocks:
            Li = b.L.inv()
            D = sp.diag(*[pc.ddr.xreplace({pc.s: sw}) for pc, sw in zip(b.pieces, b.s_of_w)])
            Hb = Li * D * Li.T
            for a, i in enumerate(b.block.g_indices):
                for c, j in enumerate(b.block.g_indices):
                    H[i, j] = Hb[a, c]
        return H


# --- inversion strategies for one piece ------------------------------------------------------------

def _sign(expr: sp.Expr, values: Mapping) -> tuple[int, str | None]:
    """The sign of a coefficient: sympy's if known, else its sign at the default parameters (stated)."""
    if expr.is_positive:
        return 1, None
    if expr.is_negative:
        return -1, None
    v = to_mpf(expr, values)
    if v == 0:
        return 0, None
    return (1 if v > 0 else -1), f"{expr} {'>' if v > 0 else '<'} 0"


def _exp_terms(dq: sp.Expr, nu: sp.Symbol) -> dict | None:
    """dq = Σ a_β e^{βν} as {β: a_β}, or None when dq is not such a sum."""
    terms: dict = {}
    for t in sp.Add.make_args(sp.expand(dq)):
        coef, dep = t.as_independent(nu, as_Add=False)
        if dep == 1:
            beta = sp.S.Zero
        else:
            dep = sp.powsimp(dep)
            if not isinstance(dep, sp.exp):
                return None
            beta = sp.cancel(dep.args[0] / nu)
            if beta.has(nu):
                return None
        terms[beta] = terms.get(beta, 0) + coef
    return {b: a for b, a in terms.items() if a != 0}


def _template(terms: dict | None, s, values):
    """Closed forms for sums of exponentials q' = Σ a_β e^{βν} (``terms``, from :func:`_exp_terms`);
    returns (r, dr, ddr, dom, method, assumptions) or None."""
    if not terms or sp.S.Zero in terms:
        return None
    notes = []
    if len(terms) == 1:
        (beta, a), = terms.items()
        sa, note = _sign(a, values)
        sb, note_b = _sign(beta, values)
        notes += [n for n in (note, note_b) if n]
        if sa * sb <= 0:
            return None  # q'' = a β e^{βν} must be > 0
        # q = (a/β)(e^{βν} − 1), ν(s) = log(s/a)/β, r(s) = (s log(s/a) − s + a)/β
        dr = sp.log(s / a) / beta
        r = (s * sp.log(s / a) - s + a) / beta
        ddr = 1 / (beta * s)
        dom = (sp.S.Zero, sp.oo) if sa > 0 else (-sp.oo, sp.S.Zero)
        return r, dr, ddr, dom, "a·e^{βν} template", tuple(notes)
    if len(terms) == 2:
        (b1, a1), (b2, a2) = sorted(terms.items(), key=lambda kv: -to_mpf(kv[0], values))
        if sp.simplify(b1 + b2) != 0:
            return None
        beta, a, c = b1, a1, a2
        sb, nb = _sign(beta, values)
        sa, na = _sign(a, values)
        sc, nc = _sign(c, values)
        notes += [n for n in (nb, na, nc) if n]
        if not (sb > 0 and sa > 0 and sc < 0):
            return None
        # a e^{βν} + c e^{−βν} = A sinh(βν + φ) with A = 2√(−ac), e^φ = √(−a/c)
        A = 2 * sp.sqrt(-a * c)
        phi = sp.log(-a / c) / 2
        phi = sp.S.Zero if sp.simplify(a + c) == 0 else phi
        dr = (sp.asinh(s / A) - phi) / beta
        r = (s * (sp.asinh(s / A) - phi) - sp.sqrt(A**2 + s**2) + (a - c)) / beta
        ddr = 1 / (beta * sp.sqrt(A**2 + s**2))
        return r, dr, ddr, (-sp.oo, sp.oo), "a·sinh(βν + φ) template", tuple(notes)
    return None


def _exp_polynomial_roots(terms: dict, nu: sp.Symbol, s: sp.Symbol) -> tuple[list, str | None]:
    """Σ_β a_β e^{βν} = s as a polynomial in z = e^{γν} (γ the common measure of the rates β): the
    candidate branches ν = log(z)/γ when its degree is at most 2, else a reason why not."""
    betas = sorted(terms, key=sp.default_sort_key)
    ratios = [sp.nsimplify(sp.cancel(b / betas[0])) for b in betas]
    if not all(r.is_Rational for r in ratios):
        return [], "the rates of the exponentials in ∇Q are incommensurable: no polynomial form"
    den = sp.ilcm(*[r.q for r in ratios]) if len(ratios) > 1 else ratios[0].q
    num = sp.igcd(*[(r * den).p for r in ratios]) if len(ratios) > 1 else (ratios[0] * den).p
    gamma = betas[0] * sp.Rational(num, den)
    powers = [int(r * den / num) for r in ratios]
    low = min(min(powers), 0)
    z = sp.Dummy("z", positive=True)
    poly = sp.Add(*(terms[b] * z ** (k - low) for b, k in zip(betas, powers))) - s * z ** (-low)
    degree = max(max(powers), 0) - low
    if degree > 2:
        return [], f"∇Q(µ) = w is a polynomial equation of degree {degree} in exp({gamma}·µ): no usable closed form"
    roots = sp.roots(sp.Poly(poly, z))
    return [(f"quadratic in exp({gamma}·µ)", sp.log(root) / gamma) for root in roots], None


def _solve(dq: sp.Expr, s: sp.Symbol, nu: sp.Symbol) -> list:
    """sympy's solve of q'(ν) = s; an equation it has no algorithm for is an empty answer, not an error."""
    try:
        return sp.solve(sp.Eq(dq, s), nu)
    except NotImplementedError:
        return []


def _polynomial_degree(dq: sp.Expr, nu: sp.Symbol) -> int | None:
    """Degree in ν of the numerator of q'(ν) − s when q' is rational in ν (the equation sympy would
    solve); None otherwise. Degree > 2 means radicals of Cardano/Ferrari size or CRootOf at best."""
    if not dq.is_rational_function(nu):
        return None
    num, den = sp.fraction(sp.together(dq))
    return max(sp.degree(num, nu), sp.degree(den, nu))


def _generic_conjugate(q, ddq, nu, s, nu_of_s):
    r = s * nu_of_s - q.xreplace({nu: nu_of_s})
    ddr = 1 / ddq.xreplace({nu: nu_of_s})
    return r, nu_of_s, ddr


def _round_trip_ok(dq, dr, nu, s, U, values, dps=30) -> bool:
    """r'(q'(ν)) = ν at sample ν on both sides of 0 (the branch check of MATH.md §4)."""
    with mp.workdps(dps):
        g = mp_function([nu], dq, values)
        h = mp_function([s], dr, values)
        for v in sample_interval(U[0], U[1], values, 8):
            try:
                back = h(g(v))
            except (ValueError, ZeroDivisionError, TypeError, OverflowError):
                return False
            if not isinstance(back, mp.mpf) or abs(back - v) > mp.mpf(10) ** (-dps + 8) * (1 + abs(v)):
                return False
    return True


def _image(dq, nu, U, values, budget) -> tuple[sp.Expr, sp.Expr] | None:
    """dom = q'(U) = (lim at lo, lim at hi), q' being increasing; sympy limits under a budget (None
    when one does not finish: the caller then approaches the ends numerically)."""
    ends = []
    for end, direction in ((U[0], "+"), (U[1], "-")):
        lim, _ = attempt(budget, "dom R: limit of ∇Q at an end of U", 3.0, sp.limit, dq, nu, end, direction)
        if lim is None or lim.has(sp.Limit) or lim.has(sp.AccumBounds) or lim == sp.zoo:
            return None
        ends.append(lim)
    return tuple(ends)


def invert_piece(q: sp.Expr, nu: sp.Symbol, s: sp.Symbol, U, values: Mapping, budget: Budget | None = None,
                 dq: sp.Expr | None = None) -> ScalarPiece:
    """Invert q'(ν) = s for one convex piece q on U (see the module docstring for the strategies)."""
    budget = budget or Budget(30)
    dq = sp.diff(q, nu) if dq is None else dq
    ddq = sp.diff(dq, nu)
    tried = []
    terms = _exp_terms(dq, nu)
    tpl = _template(terms, s, values)
    if tpl is not None:
        r, dr, ddr, dom, method, notes = tpl
        if _round_trip_ok(dq, dr, nu, s, U, values):
            return ScalarPiece(nu, s, q, dq, ddq, tuple(U), dom, r, dr, ddr, method, notes, tuple(tried))
        tried.append(f"{method}: failed its round trip")
    dom = _image(dq, nu, U, values, budget)
    # a positive (negative) dom lets sympy pick real roots and simplify powers of s
    s_pos = sp.Dummy(s.name, positive=True) if dom and dom[0] == 0 and dom[1] == sp.oo else None
    ss = s_pos or s
    ref = dict(values)
    ref[nu] = sp.S.Zero
    candidates = []
    nu_of_s = peel_inverse(dq, nu, ss, ref)
    if nu_of_s is not None:
        candidates.append(("inverse-function peeling", nu_of_s))
    elif terms:
        # a sum of exponentials is a polynomial in z = e^{γν}: decided here, never handed to solve
        tried.append("inverse-function peeling: q' does not peel")
        found, why = _exp_polynomial_roots(terms, nu, ss)
        candidates += found
        if why:
            tried.append(why)
    else:
        tried.append("inverse-function peeling: q' does not peel")
        degree = _polynomial_degree(dq, nu)
        if degree is not None and degree > 2:
            tried.append(f"∇Q(µ) = w is a polynomial equation of degree {degree} in µ: no usable closed form")
        else:
            sols, why = attempt(budget, "R: sympy solve of ∇Q(µ) = w", 3.0, _solve, dq, ss, nu)
            if sols is None:
                tried.append(f"sympy solve: {why}")
            elif not sols:
                tried.append("sympy solve: no solution")
            else:
                candidates += [("sympy solve", c) for c in sols if sp.count_ops(c) <= MAX_OPS and not c.has(sp.CRootOf)]
                if not candidates:
                    tried.append(f"sympy solve: {len(sols)} root(s), all CRootOf or larger than {MAX_OPS} operations")
    for method, nu_s in candidates:
        r, dr, ddr = _generic_conjugate(q, ddq, nu, ss, nu_s)
        if sp.count_ops(r) > MAX_OPS:
            tried.append(f"{method}: R has more than {MAX_OPS} operations")
            continue
        back = {ss: s}
        r, dr, ddr = (e.xreplace(back) for e in (r, dr, ddr))
        if r.has(sp.I) or dr.has(sp.I):
            ref = {**values, s: dq.xreplace({nu: 0}).xreplace(values)}
            r, dr = realify(r, ref), realify(dr, ref)
            if r is None or dr is None:
                tried.append(f"{method}: the formula is not real on dom R")
                continue
        expanded = sp.expand(r)  # cheap, and it collects the s^(k/L) terms peeling leaves apart
        r = expanded if sp.count_ops(expanded) < sp.count_ops(r) else r
        if _round_trip_ok(dq, dr, nu, s, U, values):
            return ScalarPiece(nu, s, q, dq, ddq, tuple(U), dom or _numeric_image(dq, nu, U, values), r, dr, ddr,
                               method, (), tuple(tried))
        tried.append(f"{method}: wrong branch (round trip fails)")
    return ScalarPiece(nu, s, q, dq, ddq, tuple(U), dom or _numeric_image(dq, nu, U, values), None, None, None,
                       "implicit (no usable closed-form inverse of ∇Q)", (), tuple(tried))


def _numeric_image(dq, nu, U, values):
    """Numerical ends of q'(U): a limit sympy could not take is approached along U (mpmath)."""
    g = mp_function([nu], dq, values)
    ends = []
    with mp.workdps(30):
        for end, sgn in ((U[0], -1), (U[1], 1)):
            e = to_mpf(end, values)
            last = None
            for k in range(1, 60):
                v = sgn * mp.mpf(2) ** k if not mp.isfinite(e) else e * (1 - mp.mpf(2) ** -k)
                try:
                    val = g(v)
                except (ValueError, ZeroDivisionError, OverflowError):
                    break
                if not isinstance(val, mp.mpf) or not mp.isfinite(val):
                    break
                last = val
                if abs(val) > mp.mpf(10) ** 40:
                    last = sgn * mp.inf
                    break
            ends.append(sp.oo if last == mp.inf else -sp.oo if last == -mp.inf else sp.Float(last, 15))
    return tuple(ends)


# --- splitting Q into pieces -----------------------------------------------------------------------

def _quadratic_split(bp: BlockPotential):
    """Group the λ_k of a quadratic family by line; L = one direction per line when there are d_b
    independent lines. Returns (L, [q_j(ν_j)]) or None."""
    k = len(bp.block.g_indices)
    lines: list[tuple[sp.Matrix, list]] = []
    for c2, lam in bp.terms:
        v = sp.Matrix(lam)
        lead = next(x for x in v if x != 0)
        direction = (v / lead).applyfunc(sp.radsimp)
        for dvec, members in lines:
            if dvec == direction:
                members.append((c2, lead))
                break
        else:
            lines.append((direction, [(c2, lead)]))
    if len(lines) != k:
        return None
    L = sp.Matrix.vstack(*[dvec.T for dvec, _ in lines])
    if L.rank() < k:
        return None
    qs = []
    for _dvec, members in lines:
        qs.append(lambda nu, members=members: sp.Add(*(c2 / 4 * (sp.exp(2 * t * nu) - 1) for c2, t in members)))
    return L, qs


def _separable(Q: sp.Expr, mus) -> bool:
    return all(sp.diff(Q, a, b) == 0 for i, a in enumerate(mus) for b in mus[i + 1:])


def legendre(p: Parametrization, pot: PotentialResult, budget: Budget | None = None) -> LegendreResult:
    budget = budget or Budget(60)
    t0 = time.perf_counter()
    values = p.numeric()
    mu, w = p.mu, p.w
    cache = BlockCache()  # identical blocks (up to names) are inverted once
    out = []
    for bp in pot.blocks:
        idx = bp.block.g_indices
        k = len(idx)
        split = _quadratic_split(bp) if bp.terms is not None else None
        if bp.orbit is not None:
            out.append(LegendreBlock(bp.block, bp, sp.eye(1), (_orbit_piece(p, bp, values),)))
        elif k == 1 and has_orbit_function(bp.Q):
            # a sum over the orbits of variable groups: no formula to invert, the solve is numerical
            (i,) = idx
            dq = bp.grad[0]
            ddq = sp.diff(dq, mu[i])
            U = tuple(bp.U[0])
            # q' is increasing and blows up at a finite end of U (an orbit reaches ∞ in finite time)
            dom = [-sp.oo if U[0] != -sp.oo else None, sp.oo if U[1] != sp.oo else None]
            if None in dom:
                approached = _numeric_image(dq, mu[i], U, values)
                dom = [approached[j] if dom[j] is None else dom[j] for j in range(2)]
            pc = ScalarPiece(mu[i], w[i], bp.Q, dq, ddq, U, tuple(dom), None, None, None,
                             "implicit (∇Q sums the groups' orbits: solved numerically)", (),
                             ("closed forms: each group's time T_j(σ_j) is a quadrature",))
            out.append(LegendreBlock(bp.block, bp, sp.eye(1), (pc,)))
        elif split is not None:
            L, qs = split
            identity = L == sp.eye(k)
            pieces = []
            for pos, i in enumerate(idx):
                nu = mu[i] if identity else sp.Symbol(f"nu{i + 1}", real=True)
                s = w[i] if identity else sp.Symbol(f"s{i + 1}", real=True)
                pieces.append(cache.get("invert_piece", (nu, s), (qs[pos](nu), "R"), lambda n, t, q=qs[pos]: invert_piece(
                    q(n), n, t, (-sp.oo, sp.oo), values, budget)))
            out.append(LegendreBlock(bp.block, bp, L, tuple(pieces)))
        elif bp.terms is None and (k == 1 or _separable(bp.Q, [mu[i] for i in idx])):
            pieces = []
            for pos, i in enumerate(idx):
                others = {mu[j]: 0 for j in idx if j != i}
                q = bp.Q.xreplace(others) if k > 1 else bp.Q
                dq = bp.grad[pos].xreplace(others)
                pieces.append(cache.get("invert_piece", (mu[i], w[i]), (q, dq, *bp.U[pos]),
                                        lambda n, t, q=q, dq=dq, U=bp.U[pos], m=mu[i]: invert_piece(
                                            q.xreplace({m: n}), n, t, U, values, budget, dq=dq.xreplace({m: n}))))
            out.append(LegendreBlock(bp.block, bp, sp.eye(k), tuple(pieces)))
        else:
            out.append(LegendreBlock(bp.block, bp, None, None))
    return LegendreResult(tuple(out), time.perf_counter() - t0)


def _orbit_piece(p: Parametrization, bp: BlockPotential, values: Mapping) -> ScalarPiece:
    """The parametric piece of a monomial-orbit block (module docstring), round-trip checked."""
    orbit = bp.orbit
    (i,) = bp.block.g_indices
    nu, s = p.mu[i], p.w[i]
    x0 = [p.x0[k] for k in bp.block.x_indices]
    sig_w = orbit.output(s, x0)
    dr = orbit.time(sig_w, x0)
    n_m = orbit.exponents[orbit.m]
    r = s * dr - (sig_w - x0[orbit.m]) * (sig_w + x0[orbit.m]) / (2 * n_m)
    ddr = 1 / orbit.speed2(sig_w, x0)
    ddq = orbit.speed2(orbit.point(nu, x0), x0)
    if orbit.crossing:
        dom = (-sp.oo, sp.oo)
    else:
        w0 = sp.N(orbit.G(x0).xreplace(dict(values)), 30)
        dom = (sp.S.Zero, sp.oo) if w0 > 0 else (-sp.oo, sp.S.Zero)
    method = (f"orbit parametrization: σ = {orbit.variables[orbit.m]}, ∇R(w) = T(σ_w(w)) with T a quadrature "
              "and σ_w a monotone root")
    pc = ScalarPiece(nu, s, bp.Q, bp.grad[0], ddq, tuple(bp.U[0]), dom, r, dr, ddr, method, (), (
        "closed forms: T(σ) is an elliptic (or hyperelliptic) integral, not elementary",), orbit)
    if not _round_trip_ok(pc.dq, pc.dr, nu, s, pc.U, values, dps=30):
        raise ArithmeticError(f"{p.name}: the orbit piece of w{i + 1} fails its round trip ∇R(∇Q(µ)) = µ")
    return pc


# --- numerical evaluation (mpmath), closed or implicit ---------------------------------------------

class NumericPotential:
    """R, ∇R, ∇²R and Q, ∇Q, ∇²Q in mpmath at the current precision, parameters fixed to ``values``.

    Closed pieces are evaluated from their formulas; implicit ones solve q'(ν) = s (bracketed, on U)
    or, for a joint block, minimise Q_b(µ) − ⟨µ, w_b⟩ by damped Newton (:mod:`._solvers`).

    Every method returns mpf / mp.matrix values; see tests/test_pipeline.py.
    """

    def __init__(self, leg: LegendreResult, p: Parametrization, values: Mapping | None = None):
        self.leg, self.p = leg, p
        self.values = p.numeric(values)
        self.d = p.d
        mu = p.mu
        self._blocks = []
        for b in leg.blocks:
            idx = b.block.g_indices
            mus = [mu[i] for i in idx]
            entry = {"idx": idx}
            bp = b.potential
            entry["Q"] = mp_function(mus, bp.Q, self.values)
            entry["grad"] = mp_function(mus, list(bp.grad), self.values)
            entry["hess"] = mp_function(mus, [sp.diff(g, m) for g in bp.grad for m in mus], self.values)
            if b.pieces is not None:
                entry["L"] = mp.matrix([[to_mpf(x, self.values) for x in row] for row in b.L.tolist()])
                pieces = []
                for pc in b.pieces:
                    f = {"pc": pc, "U": (to_mpf(pc.U[0], self.values), to_mpf(pc.U[1], self.values)),
                         "dom": (to_mpf(pc.dom[0], self.values), to_mpf(pc.dom[1], self.values))}
                    f["q"] = mp_function([pc.nu], pc.q, self.values)
                    f["dq"] = mp_function([pc.nu], pc.dq, self.values)
                    f["ddq"] = mp_function([pc.nu], pc.ddq, self.values)
                    if pc.has_formulas:
                        f["r"] = mp_function([pc.s], pc.r, self.values)
                        f["dr"] = mp_function([pc.s], pc.dr, self.values)
                        f["ddr"] = mp_function([pc.s], pc.ddr, self.values)
                    pieces.append(f)
                entry["pieces"] = pieces
            self._blocks.append(entry)

    # dual side
    def Q(self, mu) -> mp.mpf:
        return mp.fsum(e["Q"](*[mu[i] for i in e["idx"]]) for e in self._blocks)

    def grad_Q(self, mu) -> list:
        out = [mp.mpf(0)] * self.d
        for e in self._blocks:
            for i, v in zip(e["idx"], e["grad"](*[mu[i] for i in e["idx"]])):
                out[i] = v
        return out

    def hess_Q(self, mu) -> mp.matrix:
        H = mp.zeros(self.d, self.d)
        for e in self._blocks:
            k = len(e["idx"])
            vals = e["hess"](*[mu[i] for i in e["idx"]])
            for a, i in enumerate(e["idx"]):
                for c, j in enumerate(e["idx"]):
                    H[i, j] = vals[a * k + c]
        return H

    # primal side
    def _piece_values(self, f, s):
        """(ν, r(s), r''(s)) for one piece at s."""
        pc = f["pc"]
        if pc.has_formulas:
            lo, hi = f["dom"]
            if not lo < s < hi:
                raise DomainError(f"{pc.s} = {mp.nstr(s, 8)} is outside dom R, which needs {pc.dom[0]} < {pc.s} < {pc.dom[1]}")
            return f["dr"](s), f["r"](s), f["ddr"](s)
        from ._solvers import scalar_inverse_mp

        # Extra digits where working precision is not enough: q'(ν) − q'(0) cancels like |s| near
        # the minimum of R, and next to a finite end of U the distance to it (which q'' depends on
        # like a power) keeps only the digits of ν beyond those it shares with the end.
        # (R = sν − q(ν) ~ s² cancels twice as many)
        extra = 0 if s == 0 else 2 * max(0, int(-mp.log10(abs(s) / (1 + abs(f["dq"](mp.mpf(0)))))))
        for _ in range(2):
            with mp.workdps(mp.mp.dps + min(extra, 800) + 5):
                nu = scalar_inverse_mp(f["dq"], f["ddq"], mp.mpf(s), *f["U"])
                out = nu, s * nu - f["q"](nu), 1 / f["ddq"](nu)
                ends = [e for e in f["U"] if mp.isfinite(e)]
                gap = min([abs(e - nu) / abs(e) for e in ends], default=mp.mpf(1))
            more = int(-mp.log10(gap)) if gap > 0 else 400
            if more <= 2:
                break
            extra += more
        return tuple(+v for v in out)  # rounded back to the working precision

    def evaluate(self, w) -> tuple[mp.mpf, list, mp.matrix]:
        """(R(w), ∇R(w), ∇²R(w)); raises DomainError for w outside dom R."""
        R = mp.mpf(0)
        grad = [mp.mpf(0)] * self.d
        H = mp.zeros(self.d, self.d)
        for e in self._blocks:
            idx = e["idx"]
            wb = mp.matrix([w[i] for i in idx])
            if "pieces" in e:
                Li = e["L"] ** -1
                s = Li.T * wb
                nus, D = [], mp.zeros(len(idx), len(idx))
                for j, f in enumerate(e["pieces"]):
                    nu, r, ddr = self._piece_values(f, s[j])
                    nus.append(nu)
                    R += r
                    D[j, j] = ddr
                mub = Li * mp.matrix(nus)
                Hb = Li * D * Li.T
            else:
                mub = self._joint_mu(e, [w[i] for i in idx])
                R += mp.fsum(mub[k] * wb[k] for k in range(len(idx))) - e["Q"](*mub)
                Hb = self._block_hess(e, list(mub)) ** -1
            for a, i in enumerate(idx):
                grad[i] = mub[a]
                for c, j in enumerate(idx):
                    H[i, j] = Hb[a, c]
        return R, grad, H

    def _joint_mu(self, e, wb) -> mp.matrix:
        """µ_b minimising Q_b(µ) − ⟨µ, w_b⟩ (damped Newton; U_b = R^k for the joint blocks here).

        Newton starts from the previous solution of this block: along a trajectory consecutive w are
        close, which saves most iterations; the minimiser does not depend on the start."""
        from ._solvers import convex_newton_mp

        mu = convex_newton_mp(lambda v: e["Q"](*v), lambda v: e["grad"](*v), lambda v: self._block_hess(e, list(v)), wb,
                              mu0=e.get("last"))
        e["last"] = list(mu)
        return mp.matrix(list(mu))

    @staticmethod
    def _block_hess(e, mus) -> mp.matrix:
        k = len(mus)
        vals = e["hess"](*mus)
        return mp.matrix([[vals[a * k + c] for c in range(k)] for a in range(k)])

    def grad_R(self, w) -> list:
        return self.evaluate(w)[1]

    def R(self, w) -> mp.mpf:
        return self.evaluate(w)[0]

    def hess_R(self, w) -> mp.matrix:
        return self.evaluate(w)[2]
