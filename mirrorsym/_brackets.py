"""Stage 2: Lie brackets [∇G_i, ∇G_j] = ∇²G_j ∇G_i − ∇²G_i ∇G_j and the commuting verdict.

The zero test (MATH.md §2) is, in order: ``expand`` then ``cancel`` under a time budget (exact, says
"symbolic"); otherwise exact evaluation at random rational points of M, which either finds a nonzero
value there — a *witness*, a certificate that G is not commuting — or, if every probe is zero to 60
digits, calls the bracket zero and says "numeric".

>>> import sympy as sp
>>> u, v = sp.symbols("u v", real=True)
>>> lie_bracket(u * v, u**2, [u, v]).T
Matrix([[2*v, -2*u]])
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Sequence

import mpmath as mp
import sympy as sp

from ._budget import Budget, attempt
from ._parametrization import Parametrization

__all__ = ["BracketPair", "BracketResult", "brackets", "lie_bracket", "random_point"]


def lie_bracket(Gi: sp.Expr, Gj: sp.Expr, variables: Sequence[sp.Symbol]) -> sp.Matrix:
    """[∇G_i, ∇G_j](x) = ∇²G_j(x) ∇G_i(x) − ∇²G_i(x) ∇G_j(x), a column vector."""
    gi = sp.Matrix([sp.diff(Gi, x) for x in variables])
    gj = sp.Matrix([sp.diff(Gj, x) for x in variables])
    return sp.hessian(Gj, variables) * gi - sp.hessian(Gi, variables) * gj


@dataclasses.dataclass(frozen=True)
class BracketPair:
    """One bracket with its verdict: ``decided_by`` is "symbolic", "numeric" or "exact witness"."""

    i: int
    j: int
    vector: tuple[sp.Expr, ...]
    is_zero: bool
    decided_by: str
    witness: dict | None = None          # exact point of M (variables and parameters) where it is ≠ 0
    value_at_witness: tuple[sp.Expr, ...] | None = None


@dataclasses.dataclass(frozen=True)
class BracketResult:
    pairs: tuple[BracketPair, ...]
    seconds: float

    @property
    def commuting(self) -> bool:
        return all(b.is_zero for b in self.pairs)

    @property
    def nonzero(self) -> tuple[BracketPair, ...]:
        return tuple(b for b in self.pairs if not b.is_zero)


def random_point(p: Parametrization, rnd: random.Random) -> dict:
    """A random rational point of M (respecting sign assumptions); parameters at their defaults, if any."""
    pt = {}
    for x in p.variables + tuple(q for q in p.parameters if q not in p.defaults):
        mag = sp.Rational(rnd.randint(1, 40), rnd.randint(7, 23))
        if x.is_positive or x.is_nonnegative:
            pt[x] = mag
        elif x.is_negative or x.is_nonpositive:
            pt[x] = -mag
        else:
            pt[x] = mag if rnd.random() < 0.5 else -mag
    pt.update(p.defaults)
    return pt


def _exact_nonzero(value: sp.Expr) -> bool | None:
    """True/False when an exact value is certainly nonzero/zero; None when it is not a real number."""
    if value.is_Rational:
        return value != 0
    if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan, sp.I):
        return None
    z = value.is_zero
    if z is not None:
        return not z
    approx = value.evalf(60)
    if not approx.is_real:
        return None
    return abs(approx) > sp.Float(10) ** -50


def _zero_test(vec: sp.Matrix, p: Parametrization, budget: Budget, seed: int):
    def symbolic():
        return all(sp.cancel(sp.expand(e)) == 0 for e in vec)

    zero, _ = attempt(budget, "bracket zero test (expand, cancel)", 5.0, symbolic)
    if zero:
        return True, "symbolic", None, None
    rnd = random.Random(seed)
    with mp.workdps(60):
        for _ in range(12):
            pt = random_point(p, rnd)
            vals = tuple(e.xreplace(pt) for e in vec)
            verdicts = [_exact_nonzero(v) for v in vals]
            if any(verdicts):
                return False, "exact witness", {k.name: v for k, v in pt.items()}, vals
    return True, "numeric (zero at 12 random points to 50 digits)", None, None


def brackets(p: Parametrization, budget: Budget | None = None, seed: int = 0) -> BracketResult:
    """All brackets [∇G_i, ∇G_j], i < j, each with a zero verdict and, when nonzero, a witness."""
    budget = budget or Budget(60)
    t0 = time.perf_counter()
    pairs = []
    for i in range(p.d):
        for j in range(i + 1, p.d):
            if set(p.G[i].free_symbols).isdisjoint(p.G[j].free_symbols & set(p.variables)):
                # no shared variable: the fields act on disjoint coordinates, the bracket is 0 exactly
                pairs.append(BracketPair(i, j, (sp.S.Zero,) * p.D, True, "symbolic (disjoint variables)"))
                continue
            vec = lie_bracket(p.G[i], p.G[j], p.variables)
            zero, how, wit, val = _zero_test(vec, p, budget, seed + 31 * i + j)
            pairs.append(BracketPair(i, j, tuple(sp.expand(e) for e in vec), zero, how, wit, val))
    return BracketResult(pairs=tuple(pairs), seconds=time.perf_counter() - t0)
