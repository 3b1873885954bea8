"""Stage 5: the potential Q with ∇Q(µ) = G(ψ(x0; µ)), Q(0) = 0, and its dual domain U (MATH.md §4).

* Quadratic family: Q(µ) = ¼ Σ_k c_k² (exp(2⟨λ_k, µ⟩) − 1) with c_k² = x0ᵀ P_k x0 (MATH.md §6);
  U = R^d.
* Monomial orbit (:mod:`._orbit`): Q = (σ(µ)² − x_m0²)/(2 n_m) exactly, σ(µ) the curve parameter at
  dual time µ; U = (T(σ_lo), T(σ_hi)) over the σ-range of the orbit (±∞ where T diverges).
* Otherwise Q is integrated along the coordinate path 0 → µ_1 e_1 → … → µ, each 1-D antiderivative
  under a budget, and U is the box of µ around 0 bounded by the nearest real zeros of the bases of
  ψ's negative and fractional powers (where a flow blows up in finite time, e.g. µ < α^{2−L}/(L(L−2))
  for u^L).

>>> from mirrorsym._parametrization import Parametrization
>>> from mirrorsym._flows import flows
>>> from mirrorsym._psi import psi
>>> p = Parametrization.create(["u**3"], ["u"], {"u": "alpha"}, parameters={"alpha": 0.8},
...                            assumptions={"alpha": ["positive"]})
>>> fl = flows(p); Q = potential_Q(p, fl, psi(p, fl))
>>> Q.blocks[0].U
((-oo, 1/(3*alpha)),)
"""

from __future__ import annotations

import dataclasses
import time

import mpmath as mp
import sympy as sp

from ._budget import Budget, attempt
from ._flows import FlowsResult, FlowUnavailable
from ._numeric import BlockCache, mp_function, realify
from ._orbit import Orbit
from ._parametrization import Parametrization
from ._psi import PsiResult
from ._structure import Block

__all__ = ["BlockPotential", "PotentialResult", "antiderivative", "potential_Q"]


@dataclasses.dataclass(frozen=True)
class BlockPotential:
    """Q_b on one block. ``grad`` is ∇Q_b = (G_i∘ψ)_{i in block}; ``U`` gives (lo, hi) per µ_i of the
    block (a box); ``terms`` holds (c_k², λ_k) for a quadratic family (Q_b = ¼ Σ c_k² (e^{2⟨λ_k,µ⟩} − 1))."""

    block: Block
    Q: sp.Expr
    grad: tuple[sp.Expr, ...]
    U: tuple[tuple[sp.Expr, sp.Expr], ...]
    terms: tuple[tuple[sp.Expr, tuple[sp.Expr, ...]], ...] | None
    method: str
    orbit: Orbit | None = None


@dataclasses.dataclass(frozen=True)
class PotentialResult:
    blocks: tuple[BlockPotential, ...]
    seconds: float

    @property
    def Q(self) -> sp.Expr:
        return sp.Add(*(b.Q for b in self.blocks))

    def grad_Q(self, d: int) -> tuple[sp.Expr, ...]:
        out = [sp.S.Zero] * d
        for b in self.blocks:
            for i, g in zip(b.block.g_indices, b.grad):
                out[i] = g
        return tuple(out)


def _at_defaults(expr: sp.Expr, p: Parametrization) -> float | None:
    try:
        v = complex(sp.N(expr.xreplace(dict(p.defaults)), 30))
    except (TypeError, ValueError):
        return None
    return v.real if abs(v.imag) < 1e-25 else None


def _solve_zero(b: sp.Expr, m: sp.Symbol) -> list | None:
    try:
        return sp.solve(b, m)
    except NotImplementedError:
        return None


def _numeric_zero(b: sp.Expr, m: sp.Symbol, p: Parametrization, side: int) -> sp.Float | None:
    """The zero of b(µ) nearest to 0 on one side (a sign change, or where b stops being real),
    by a geometric scan out to |µ| = 1e16 and bisection; None when there is none."""
    f = mp_function([m], b, p.numeric())

    def value(x):
        try:
            v = f(x)
        except (ValueError, ZeroDivisionError, OverflowError):
            return None
        return v if isinstance(v, mp.mpf) and mp.isfinite(v) else None

    with mp.workdps(40):
        f0 = value(mp.mpf(0))
        inner = mp.mpf(0)
        for k in range(62):
            outer = side * mp.mpf("0.01") * mp.mpf(2) ** k
            v = value(outer)
            if v is None or v * f0 <= 0:
                break
            inner = outer
        else:
            return None
        for _ in range(120):  # keep inner on the side of 0
            mid = (inner + outer) / 2
            v = value(mid)
            if v is not None and v * f0 > 0:
                inner = mid
            else:
                outer = mid
    return sp.Float(mp.nstr(inner, 30), 30)


def _dual_interval(exprs, m: sp.Symbol, others, p: Parametrization, budget: Budget) -> tuple[sp.Expr, sp.Expr]:
    """The interval of µ_i around 0 where ψ stays finite and real, from the zeros of singular bases."""
    bases = set()
    for e in exprs:
        for pw in e.atoms(sp.Pow):
            if pw.base.has(m) and not (pw.exp.is_integer and pw.exp.is_nonnegative):
                bases.add(pw.base)
        for lg in e.atoms(sp.log):
            if lg.args[0].has(m):
                bases.add(lg.args[0])
    for b in bases:
        if b.has(*others):
            raise FlowUnavailable(f"the dual domain U is not a box: ψ is singular where {b} = 0, which couples several µ_i")
    lo, hi = (-sp.oo, None), (sp.oo, None)
    for b in sorted(bases, key=sp.default_sort_key):
        roots, _ = attempt(budget, f"dual domain: zeros of {b}", 5.0, _solve_zero, b, m)
        if roots is None or (not roots and not b.is_polynomial(m)):
            # sympy could not (or, for a transcendental base, may silently not) find the zeros:
            # locate the nearest sign change on each side numerically, to 30 digits
            roots = [r for r in (_numeric_zero(b, m, p, side) for side in (-1, 1)) if r is not None]
        for r in roots:
            v = _at_defaults(r, p)
            if v is None:
                continue
            if v > 0 and (hi[1] is None or v < hi[1]):
                hi = (r, v)
            elif v < 0 and (lo[1] is None or v > lo[1]):
                lo = (r, v)
            elif v == 0:
                raise FlowUnavailable(f"ψ is singular at µ = 0 (the base {b} vanishes at x0)")
    return lo[0], hi[0]


def antiderivative(f: sp.Expr, s: sp.Symbol, budget: Budget, ref: dict) -> sp.Expr | None:
    """∫ f ds along a path from s = 0, termwise: c·(a + b s)^n and c·e^{a + b s} by rule (keeps Q in
    the form ψ gives it, e.g. ((1/α − 3µ)^{-2} − α²)/6 rather than an expanded rational function, and
    c/(a + b s) as the real logarithm of ±(a + b s), signed as at ``ref``), the rest by sympy under a
    budget. None when sympy cannot finish or returns an unevaluated integral."""
    total = sp.S.Zero
    for term in sp.Add.make_args(f):
        c, dep = term.as_independent(s, as_Add=False)
        base, n = dep.as_base_exp() if not isinstance(dep, sp.exp) else (None, None)
        if base is not None and not n.has(s) and base.is_polynomial(s) and sp.degree(base, s) == 1:
            b = sp.diff(base, s)
            if n == -1:
                sign = -1 if sp.N(base.xreplace(ref), 30) < 0 else 1
                total += c * sp.log(sp.expand(sign * base)) / b
            else:
                total += c * base ** (n + 1) / (b * (n + 1))
            continue
        if isinstance(dep, sp.exp) and dep.args[0].is_polynomial(s) and sp.degree(dep.args[0], s) == 1:
            total += c * dep / sp.diff(dep.args[0], s)
            continue
        F, _ = attempt(budget, "Q: antiderivative", 10.0, sp.integrate, term, s)
        if F is None or F.has(sp.Integral, sp.Piecewise):  # a case split is not one formula on U
            return None
        total += F
    return total


def potential_Q(p: Parametrization, fl: FlowsResult, ps: PsiResult, budget: Budget | None = None) -> PotentialResult:
    budget = budget or Budget(60)
    t0 = time.perf_counter()
    mu = p.mu
    cache = BlockCache()  # identical blocks (up to names) are integrated once
    out = []
    orbits = fl.orbits or (None,) * len(fl.blocks)
    groups_of = fl.orbit_groups or (None,) * len(fl.blocks)
    for blk, fam, orbit, groups in zip(fl.blocks, fl.quadratic, orbits, groups_of):
        if orbit is not None:
            out.append(_orbit_potential(p, blk, orbit))
            continue
        if groups:
            out.append(_groups_potential(p, blk, groups, ps, budget))
            continue
        if fam is not None:
            x0b = sp.Matrix([p.x0[k] for k in blk.x_indices])
            terms = []
            for P, lam in zip(fam.projectors, fam.lambdas):
                c2 = sp.factor((x0b.T * P * x0b)[0, 0])
                if c2 != 0 and any(l != 0 for l in lam):  # a λ_k = 0 eigenspace does not move: no term
                    terms.append((c2, lam))
            Q = sp.Add(*(c2 / 4 * (sp.exp(2 * sum((l * mu[i] for l, i in zip(lam, blk.g_indices)), sp.S.Zero)) - 1)
                         for c2, lam in terms))
            grad = tuple(sp.expand(sp.diff(Q, mu[i])) for i in blk.g_indices)
            U = tuple((-sp.oo, sp.oo) for _ in blk.g_indices)
            out.append(BlockPotential(blk, Q, grad, U, tuple(terms), "¼ Σ_k c_k² (e^{2⟨λ_k, µ⟩} − 1)"))
            continue
        grad = tuple(p.G[i].xreplace(dict(zip(p.variables, ps.psi))) for i in blk.g_indices)
        grad = tuple(sp.expand(g) if g.is_polynomial() else g for g in grad)
        Q = sp.S.Zero
        s = sp.Dummy("s", real=True)
        for pos, i in enumerate(blk.g_indices):
            # leg i of the path 0 → µ_1 e_1 → …: only µ_i moves, the later µ_j are still 0
            integrand = grad[pos].xreplace({mu[j]: 0 for j in blk.g_indices[pos + 1:]}).xreplace({mu[i]: s})
            ref = {**p.defaults, **dict.fromkeys(mu, 0), s: 0}
            F = cache.get("antiderivative", (s,), (integrand,), lambda c, f=integrand, s=s, ref=ref: antiderivative(
                f.xreplace({s: c}), c, budget, {**ref, c: 0}))
            if F is None:
                raise FlowUnavailable(f"no closed-form antiderivative of ∂Q/∂µ{i + 1} = {integrand} (sympy did not finish or returned an integral)")
            F0 = F.xreplace({s: 0})
            if F0.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
                F0 = sp.limit(F, s, 0)
            Q += F.xreplace({s: mu[i]}) - F0
        if Q.has(sp.I):
            real = realify(Q, {**p.defaults, **dict.fromkeys(mu, 0)})
            if real is None:
                raise FlowUnavailable(f"Q = {sp.sstr(Q)[:200]} is not real on U (sympy's antiderivative took a complex branch)")
            Q = real
        U = tuple(_dual_interval(grad + ps.psi, mu[i], [mu[j] for j in blk.g_indices if j != i], p, budget)
                  for i in blk.g_indices)
        out.append(BlockPotential(blk, Q, grad, U, None, "integrated along coordinate paths"))
    return PotentialResult(tuple(out), time.perf_counter() - t0)


def _orbit_Q_and_U(p: Parametrization, orbit: Orbit, mu: sp.Symbol, x0) -> tuple[sp.Expr, list]:
    """(σ(µ)² − x_m0²)/(2n_m) and the ends of U = T(σ-range) of one orbit (sorted)."""
    n_m = orbit.exponents[orbit.m]
    sig = orbit.point(mu, x0)
    Q = (sig - x0[orbit.m]) * (sig + x0[orbit.m]) / (2 * n_m)  # factored: no cancellation near µ = 0
    ends = []
    values = dict(p.defaults)
    lo, hi = orbit.sigma_range(x0, values)
    for end in (lo, hi):
        if end == 0:  # T diverges where ∂_m G vanishes: µ → ∓∞
            rate = sp.N(orbit.rate(x0[orbit.m], x0).xreplace(values) * x0[orbit.m].xreplace(values), 30)
            ends.append(-sp.oo if rate > 0 else sp.oo)
        else:
            ends.append(orbit.time(end, x0))
    ends.sort(key=lambda e: float(sp.N(e.xreplace(values), 20)))
    return Q, ends


def _groups_potential(p: Parametrization, blk: Block, groups, ps: PsiResult, budget: Budget) -> BlockPotential:
    """Q_b = Σ_j Q_j over the variable groups of G = Σ_j g_j: an orbit group's Q_j along its orbit, a
    one-variable group's by antiderivative; U is the intersection of the groups' intervals."""
    (i,) = blk.g_indices
    mu = p.mu[i]
    grad = (p.G[i].xreplace(dict(zip(p.variables, ps.psi))),)
    values = dict(p.defaults)
    Q, lows, highs = sp.S.Zero, [], []
    grouped = set()
    for orb in groups:
        x0 = [p.x0[p.variables.index(v)] for v in orb.variables]
        Qj, (lo, hi) = _orbit_Q_and_U(p, orb, mu, x0)
        Q += Qj
        lows.append(lo)
        highs.append(hi)
        grouped |= set(orb.variables)
    rest = [k for k in blk.x_indices if p.variables[k] not in grouped]
    if rest:
        gs = sp.expand(p.G[i])
        term = sp.Add(*(t for t in sp.Add.make_args(gs) if not (t.free_symbols & grouped)))
        f = term.xreplace({p.variables[k]: ps.psi[k] for k in rest})
        s = sp.Dummy("s", real=True)
        F = antiderivative(f.xreplace({mu: s}), s, budget, {**values, s: 0})
        if F is None:
            raise FlowUnavailable(f"no closed-form antiderivative of the one-variable terms {term} along ψ")
        F0 = F.xreplace({s: 0})
        Q += F.xreplace({s: mu}) - (F0 if not F0.has(sp.zoo, sp.nan, sp.oo, -sp.oo) else sp.limit(F, s, 0))
        lo, hi = _dual_interval([f] + [ps.psi[k] for k in rest], mu, [], p, budget)
        lows.append(lo)
        highs.append(hi)
    key = lambda e: float(sp.N(e.xreplace(values), 20)) if e not in (sp.oo, -sp.oo) else float(e)  # noqa: E731
    U = (max(lows, key=key), min(highs, key=key))
    return BlockPotential(blk, Q, grad, (U,), None, "along the orbits of the variable groups: Q = Σ_j Q_j, "
                          "µ = T_j(σ_j) for every group")


def _orbit_potential(p: Parametrization, blk: Block, orbit: Orbit) -> BlockPotential:
    """Q, ∇Q and U of a monomial-orbit block, explicit in σ(µ) (see :mod:`._orbit`)."""
    (i,) = blk.g_indices
    mu = p.mu[i]
    x0 = [p.x0[k] for k in blk.x_indices]
    n_m = orbit.exponents[orbit.m]
    Q, ends = _orbit_Q_and_U(p, orbit, mu, x0)
    sig = orbit.point(mu, x0)
    grad = (orbit.G(orbit.curve(sig, x0)),)
    return BlockPotential(blk, Q, grad, (tuple(ends),), None,
                          f"along the orbit: Q = (σ² − {sp.sstr(x0[orbit.m])}²)/{2 * n_m}, µ = T(σ)", orbit)
