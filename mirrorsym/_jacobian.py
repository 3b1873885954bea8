"""Stage 1: the Jacobian J = ∂G (d × D), the metric H = J Jᵀ and the rank of J at x0.

The rank is decided exactly (sympy rational arithmetic at x0 with the parameters' default values):
an x0 that is an eigenvector of a quadratic family can make J rank-deficient along the whole orbit
even though a random point has full rank (MATH.md §1).

>>> from mirrorsym._parametrization import Parametrization
>>> p = Parametrization.create(["u**2 - v**2"], ["u", "v"], {"u": "alpha", "v": "alpha"},
...                            parameters={"alpha": 0.5}, assumptions={"alpha": ["positive"]})
>>> r = jacobian(p)
>>> r.J, r.rank_at_x0
(Matrix([[2*u, -2*v]]), 1)
"""

from __future__ import annotations

import dataclasses
import time

import sympy as sp

from ._errors import DegenerateError
from ._parametrization import Parametrization

__all__ = ["NONSMOOTH", "JacobianResult", "jacobian"]

#: functions whose derivatives are distributions: the theory needs G smooth (C² at least)
NONSMOOTH = (sp.Abs, sp.sign, sp.Heaviside, sp.Max, sp.Min, sp.Piecewise, sp.floor, sp.ceiling)


@dataclasses.dataclass(frozen=True)
class JacobianResult:
    """J = ∂G with rows ∇G_iᵀ, H = J Jᵀ, and the exact rank of J at x0."""

    J: sp.Matrix
    H: sp.Matrix
    rank_at_x0: int
    method: str
    seconds: float

    @property
    def gradients(self) -> tuple[sp.Matrix, ...]:
        return tuple(self.J[i, :].T for i in range(self.J.rows))


def jacobian(p: Parametrization) -> JacobianResult:
    """Compute J, H and the rank of J at x0; raise DegenerateError when rank J(x0) < d."""
    t0 = time.perf_counter()
    p.require_shape()
    for i, g in enumerate(p.G):
        bad = sorted({type(f).__name__ for f in g.atoms(*NONSMOOTH)})
        if bad:
            raise DegenerateError(
                f"parametrization[{i}]: {', '.join(bad)} is not smooth; the mirror-flow theory needs G twice "
                f"differentiable (write the branch you mean, e.g. u instead of Abs(u) with u positive)"
            )
        if g.free_symbols.isdisjoint(p.variables):
            raise DegenerateError(f"parametrization[{i}]: G_{i + 1} = {g} is constant in x, so J has a zero row")
    J = sp.Matrix([[sp.diff(g, x) for x in p.variables] for g in p.G])
    at_x0 = dict(zip(p.variables, p.x0))
    for i, g in enumerate(p.G):
        value = sp.N(g.xreplace(at_x0).xreplace(dict(p.defaults)), 30)
        if value.has(sp.zoo, sp.oo, -sp.oo, sp.nan) or not value.is_real:
            raise DegenerateError(
                f"parametrization[{i}]: G_{i + 1}(x0) = {g.xreplace(at_x0)} = {sp.N(value, 6)} is not a finite real "
                f"number: x0 = {tuple(p.x0)} lies outside the real domain of G (check the signs of the initialisation "
                f"and the variables' assumptions)")
    J0 = J.xreplace(at_x0).xreplace(dict(p.defaults))
    if any(e.has(sp.zoo, sp.oo, -sp.oo, sp.nan) for e in J0):
        raise DegenerateError(f"J is not finite at x0 = {tuple(p.x0)}: x0 lies on a singular locus of G")
    rank = J0.rank(simplify=True)
    if rank < p.d:
        raise DegenerateError(
            f"J has rank {rank} < d = {p.d} at x0 = {tuple(p.x0)} (J(x0) = {J0.tolist()}): "
            f"G is not regular there, so gradient flow from x0 is not a mirror flow on all of w-space"
            + (" (repeated or dependent components?)" if len(set(p.G)) < p.d else "")
        )
    return JacobianResult(J=J, H=J * J.T, rank_at_x0=rank, method="exact rank at x0", seconds=time.perf_counter() - t0)
