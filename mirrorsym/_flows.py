"""Stage 3: the flows φ^t_i of +∇G_i (MATH.md §3: dφ/dt = +∇G_i(φ), φ^0 = x).

Strategies, in order, per block of :mod:`._structure`:

1. *quadratic family* — G_i = ½ xᵀA_i x with commuting constant A_i: a joint eigenbasis
   A_i = Σ_k λ_{ik} P_k (P_k orthogonal projectors) gives φ^t_i(x) = Σ_k e^{λ_{ik} t} P_k x;
2. *decoupled scalar ODEs* — when ∂_k G_i depends on x_k alone, each coordinate solves
   dφ/dt = f(φ) by separation of variables, t = ∫_x^φ ds/f(s), inverted by peeling on the real
   branch through x0 (so φ^0 = x);
3. *monomial orbit* — a one-component block G = c·Π x_k^{n_k} that couples its coordinates: the
   orbit is explicit in the curve parameter σ = x_m and the time is the quadrature t = T(σ)
   (:mod:`._orbit`); φ^t(x) = x(σ(t)) with σ = T⁻¹ an :class:`~._orbit.OrbitPoint`;
4. otherwise the flow has no strategy here and the stage says so (:class:`FlowUnavailable`).

Every flow is checked against its ODE in mpmath at points near x0 before it is returned (an orbit
flow against an independent Taylor-series integration of the ODE from x0, :func:`mpmath.odefun`).

>>> from mirrorsym._parametrization import Parametrization
>>> p = Parametrization.create(["u**3"], ["u"], {"u": "alpha"}, parameters={"alpha": 0.8},
...                            assumptions={"alpha": ["positive"]})
>>> flows(p).flows[0].phi
(1/(-3*t + 1/u),)
"""

from __future__ import annotations

import dataclasses
import random
import time

import mpmath as mp
import sympy as sp

from ._budget import Budget, attempt
from ._errors import Unsupported
from ._inverse import peel_inverse
from ._numeric import BlockCache
from ._orbit import Orbit, monomial_orbit
from ._parametrization import Parametrization
from ._structure import Block, blocks, quadratic_matrices

__all__ = ["Flow", "FlowUnavailable", "FlowsResult", "QuadraticFamily", "T", "flows", "joint_eigenbasis"]

#: the flow time, a real symbol
T = sp.Symbol("t", real=True)


class FlowUnavailable(Unsupported):
    """No strategy produced a closed-form flow (the message names the component and why)."""


@dataclasses.dataclass(frozen=True)
class Flow:
    """φ^t_i(x) for one component G_i, as expressions in the variables x and the time ``T``."""

    index: int
    phi: tuple[sp.Expr, ...]
    method: str
    residual: float  # max |dφ/dt − ∇G_i(φ)| / scale at the probe points (mpmath)


@dataclasses.dataclass(frozen=True)
class QuadraticFamily:
    """A block with G_i = ½ xᵀA_i x: projectors P_k onto joint eigenspaces and λ_k = (λ_{ik})_i."""

    block: Block
    projectors: tuple[sp.Matrix, ...]
    lambdas: tuple[tuple[sp.Expr, ...], ...]


@dataclasses.dataclass(frozen=True)
class FlowsResult:
    flows: tuple[Flow, ...]
    blocks: tuple[Block, ...]
    quadratic: tuple[QuadraticFamily | None, ...]  # one entry per block
    seconds: float
    orbits: tuple[Orbit | None, ...] = ()  # one entry per block (empty: none)
    #: per block, the orbits of a sum of monomials in disjoint variable groups (None: not such a block)
    orbit_groups: tuple[tuple[Orbit, ...] | None, ...] = ()


def joint_eigenbasis(mats: list[sp.Matrix], seed: int = 0):
    """Projectors P_k and joint eigenvalues λ_k of commuting symmetric matrices A_i.

    The eigenspaces of a random rational combination Σ r_i A_i are the joint eigenspaces unless the
    combination is accidentally degenerate; that is checked (A_i P_k = λ_{ik} P_k) and retried.
    """
    rnd = random.Random(seed)
    n = mats[0].rows
    for _ in range(4):
        A = sum((sp.Rational(rnd.randint(2, 97), rnd.randint(2, 97)) * M for M in mats), sp.zeros(n, n))
        projectors, lambdas, ok = [], [], True
        for _value, _mult, vecs in A.eigenvects():
            V = sp.Matrix.hstack(*vecs)
            P = (V * (V.T * V).inv() * V.T).applyfunc(sp.radsimp)
            rank = len(vecs)
            lam = tuple(sp.radsimp((M * P).trace() / rank) for M in mats)
            if any((M * P - l * P).applyfunc(sp.radsimp) != sp.zeros(n, n) for M, l in zip(mats, lam)):
                ok = False
                break
            projectors.append(P)
            lambdas.append(lam)
        if ok:
            return projectors, lambdas
    raise FlowUnavailable("no joint eigenbasis found for the quadratic family (are the A_i symmetric and commuting?)")


def _scalar_flow(f: sp.Expr, x: sp.Symbol, x0_value: sp.Expr, p: Parametrization, budget: Budget) -> tuple[sp.Expr, str]:
    """φ(t) with dφ/dt = f(φ), φ(0) = x, on the branch through x = x0."""
    s = sp.Dummy("s", real=True)
    fs = f.xreplace({x: s})
    if fs == 0:
        return x, "constant"
    if not fs.has(s):
        return x + fs * T, "linear in t"
    poly = sp.Poly(fs, s) if fs.is_polynomial(s) else None
    if poly is not None and poly.degree() == 1:
        a, b = poly.all_coeffs()
        return sp.exp(a * T) * (x + b / a) - b / a, "linear ODE"
    F, why = attempt(budget, f"antiderivative of 1/({fs}) for the flow", 10.0, sp.integrate, 1 / fs, s)
    if F is None or F.has(sp.Integral, sp.Piecewise):
        raise FlowUnavailable(f"no usable antiderivative of 1/f for dφ/dt = {f}: "
                              f"{why or 'sympy returned an integral or a case split'}")
    ref = dict(p.defaults)
    ref[s] = x0_value.xreplace(ref)
    phi = peel_inverse(F, s, F.xreplace({s: x}) + T, ref)
    if phi is None:
        raise FlowUnavailable(f"the separated flow t = F(φ) − F(x) with F = {F} does not invert by peeling")
    return phi, "separation of variables"


def _check_flow(flow: tuple[sp.Expr, ...], grad: list[sp.Expr], p: Parametrization, seed: int) -> float:
    """max relative |dφ/dt − ∇G_i(φ)| (and |φ^0 − x|) at points near x0, in mpmath at 30 digits."""
    rnd = random.Random(seed)
    sub = p.numeric()
    x0 = [v.xreplace(sub) for v in p.x0]
    flow = [c.xreplace(sub) for c in flow]
    fn = sp.lambdify([T, *p.variables], [*flow, *(sp.diff(c, T) for c in flow)], modules="mpmath")
    gfn = sp.lambdify(p.variables, [g.xreplace(sub) for g in grad], modules="mpmath")
    worst, good = 0.0, 0
    with mp.workdps(30):
        for k in range(8):
            # near x0, same signs: the branch of a separated flow is the one through x0
            x = [mp.mpf(sp.N(v, 40)) * (1 + mp.mpf(rnd.uniform(-0.1, 0.1))) for v in x0]
            t = mp.mpf(0) if k == 0 else mp.mpf(rnd.uniform(-0.05, 0.05))
            try:
                vals = [mp.mpmathify(v) for v in fn(t, *x)]
                phi, dphi = vals[: len(flow)], vals[len(flow):]
                g = [mp.mpmathify(v) for v in gfn(*phi)]
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                continue  # outside the flow's interval of existence
            if any(isinstance(v, mp.mpc) and v.imag != 0 for v in phi + dphi):
                continue
            res = max(abs(a - b) for a, b in zip(dphi, g)) / (1 + max(abs(v) for v in g))
            if k == 0:
                res = max(res, max(abs(a - b) for a, b in zip(phi, x)) / (1 + max(abs(v) for v in x)))
            worst = max(worst, float(res))
            good += 1
    return worst if good >= 4 else float("inf")


def _check_orbit_flow(flow: tuple[sp.Expr, ...], grad: list[sp.Expr], p: Parametrization, seed: int) -> float:
    """max relative |φ^t(x0) − x(t)| with x(t) from mpmath's Taylor-series ODE solver (independent of
    the orbit's quadrature), at a few t of both signs, in mpmath at 30 digits."""
    rnd = random.Random(seed)
    sub = p.numeric()
    x0 = [v.xreplace(sub) for v in p.x0]
    fn = sp.lambdify([T], [c.xreplace(sub).xreplace(dict(zip(p.variables, x0))) for c in flow], modules="mpmath")
    gfn = sp.lambdify(p.variables, [g.xreplace(sub) for g in grad], modules="mpmath")
    worst = 0.0
    with mp.workdps(30):
        start = [mp.mpf(sp.N(v, 40)) for v in x0]
        for sign in (1, -1):
            ode = mp.odefun(lambda t, y, s=sign: [s * v for v in gfn(*y)], 0, start)
            for _ in range(2):
                t = mp.mpf(rnd.uniform(0.005, 0.03))
                ref = ode(t)
                got = [mp.mpmathify(v) for v in fn(sign * t)]
                worst = max(worst, float(max(abs(a - b) for a, b in zip(got, ref)) / (1 + max(abs(v) for v in ref))))
    return worst


def flows(p: Parametrization, budget: Budget | None = None, seed: int = 0) -> FlowsResult:
    """The flow φ^t_i of every component, by the first strategy that applies to its block."""
    budget = budget or Budget(60)
    t0 = time.perf_counter()
    blks = blocks(p.G, p.variables)
    result: list[Flow | None] = [None] * p.d
    families: list[QuadraticFamily | None] = []
    orbits: list[Orbit | None] = []
    groups_of: list[tuple[Orbit, ...] | None] = []
    cache = BlockCache()  # identical coordinates (up to names) are solved once
    for blk in blks:
        xs = [p.variables[k] for k in blk.x_indices]
        mats = quadratic_matrices([p.G[i] for i in blk.g_indices], xs)
        if mats is not None:
            projs, lams = joint_eigenbasis(mats, seed)
            fam = QuadraticFamily(blk, tuple(projs), tuple(lams))
            families.append(fam)
            orbits.append(None)
            groups_of.append(None)
            xb = sp.Matrix(xs)
            for pos, i in enumerate(blk.g_indices):
                moved = sum((sp.exp(lam[pos] * T) * (P * xb) for P, lam in zip(projs, lams)), sp.zeros(len(xs), 1))
                phi = list(p.variables)
                for k, v in zip(blk.x_indices, moved):
                    phi[k] = sp.expand(v)
                result[i] = Flow(i, tuple(phi), "quadratic family (joint eigenbasis)", 0.0)
            continue
        families.append(None)
        count = sum(o is not None for o in orbits) + sum(len(g) for g in groups_of if g)
        orbit = _orbit_of(p, blk, count + 1)
        orbits.append(orbit)
        groups = None if orbit is not None else _orbit_groups(p, blk, count + 1)
        groups_of.append(groups)
        if groups:
            (i,) = blk.g_indices
            phi, grouped = list(p.variables), set()
            for orb in groups:
                ks = [p.variables.index(v) for v in orb.variables]
                for k, v in zip(ks, orb.curve(orb.point(T, orb.variables), orb.variables)):
                    phi[k] = v
                grouped |= set(ks)
            for k in blk.x_indices:
                if k not in grouped:  # a one-variable term: its own scalar ODE
                    xk = p.variables[k]
                    phi[k], _how = _scalar_flow(sp.diff(p.G[i], xk), xk, p.x0[k], p, budget)
            names = "; ".join(f"σ{o.index} = {o.variables[o.m]}" for o in groups)
            result[i] = Flow(i, tuple(phi), f"monomial orbits per variable group ({names}, t = T(σ) by quadrature)", 0.0)
            continue
        if orbit is not None:
            (i,) = blk.g_indices
            xs_b = [p.variables[k] for k in blk.x_indices]
            sig = orbit.point(T, xs_b)
            phi = list(p.variables)
            for k, v in zip(blk.x_indices, orbit.curve(sig, xs_b)):
                phi[k] = v
            result[i] = Flow(i, tuple(phi), f"monomial orbit (σ = {xs_b[orbit.m]}, t = T(σ) by quadrature)", 0.0)
            continue
        for i in blk.g_indices:
            phi, methods = list(p.variables), set()
            for k in blk.x_indices:
                xk = p.variables[k]
                f = sp.diff(p.G[i], xk)
                others = f.free_symbols & (set(p.variables) - {xk})
                if others:
                    raise FlowUnavailable(
                        f"the flow of ∇G_{i + 1} couples {xk} with {', '.join(sorted(s.name for s in others))} "
                        f"non-linearly (∂G_{i + 1}/∂{xk} = {f}); the flows here are those of quadratic families, "
                        f"decoupled coordinates and single monomials c·Π x_k^n_k (a sum of such terms that share no "
                        f"variable, such as u1*u2*u3 - v1*v2*v3, is not handled yet)"
                    )
                phi[k], how = cache.get("scalar flow", (xk,), (f, p.x0[k]),
                                        lambda c, f=f, xk=xk, k=k: _scalar_flow(f.xreplace({xk: c}), c, p.x0[k], p, budget))
                methods.add(how)
            result[i] = Flow(i, tuple(phi), "decoupled scalar ODEs (" + ", ".join(sorted(methods)) + ")", 0.0)
    checked = []
    for fl in result:
        grad = [sp.diff(p.G[fl.index], v) for v in p.variables]
        check = _check_orbit_flow if fl.method.startswith("monomial orbit") else _check_flow
        res = check(fl.phi, grad, p, seed + fl.index)
        if not res < 1e-20:
            raise FlowUnavailable(f"the flow of ∇G_{fl.index + 1} ({fl.method}) fails its ODE check: residual {res:.3g}")
        checked.append(dataclasses.replace(fl, residual=res))
    return FlowsResult(tuple(checked), blks, tuple(families), time.perf_counter() - t0, tuple(orbits), tuple(groups_of))


def _orbit_groups(p: Parametrization, blk: Block, index: int) -> tuple[Orbit, ...] | None:
    """For one component G = Σ_j g_j whose terms fall into groups sharing no variable (u1u2u3 − v1v2v3):
    the orbits of the groups of several variables, each a monomial, when there is at least one and
    every other group has a single variable (a decoupled scalar flow). Else None."""
    if len(blk.g_indices) != 1:
        return None
    g = sp.expand(p.G[blk.g_indices[0]])
    xs = [p.variables[k] for k in blk.x_indices]
    groups: list[tuple[set, list]] = []
    for term in sp.Add.make_args(g):
        vs = term.free_symbols & set(xs)
        merged = [grp for grp in groups if grp[0] & vs]
        for grp in merged:
            groups.remove(grp)
        groups.append((vs.union(*(grp[0] for grp in merged)), [term, *(t for grp in merged for t in grp[1])]))
    if len(groups) < 2:
        return None
    out = []
    for vs, terms in sorted(groups, key=lambda grp: min(xs.index(v) for v in grp[0])):
        if len(vs) == 1:
            continue
        if len(terms) != 1:
            return None
        gvars = [v for v in xs if v in vs]
        x0 = {v: p.x0[p.variables.index(v)].xreplace(dict(p.defaults)) for v in gvars}
        orb = monomial_orbit(terms[0], gvars, x0, index + len(out))
        if orb is None:
            return None
        out.append(orb)
    return tuple(out) or None


def _orbit_of(p: Parametrization, blk: Block, index: int) -> Orbit | None:
    """The monomial orbit of a one-component block whose flow couples its coordinates, else None."""
    if len(blk.g_indices) != 1 or len(blk.x_indices) < 2:
        return None
    xs = [p.variables[k] for k in blk.x_indices]
    g = p.G[blk.g_indices[0]]
    if all(not (sp.diff(g, x).free_symbols & (set(xs) - {x})) for x in xs):
        return None  # decoupled: the scalar strategy gives closed forms
    x0 = {x: p.x0[k].xreplace(dict(p.defaults)) for x, k in zip(xs, blk.x_indices)}
    return monomial_orbit(g, xs, x0, index)
