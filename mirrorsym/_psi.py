"""Stage 4: ψ(x0; µ) = φ^{µ_1}_1 ∘ … ∘ φ^{µ_d}_d (x0) (MATH.md §3).

For a quadratic family ψ = exp(Σ_i µ_i A_i) x0 = Σ_k e^{⟨λ_k, µ⟩} P_k x0 directly; otherwise the
flows are composed by substitution, innermost (φ_d) first. For commuting G the order is irrelevant.

>>> from mirrorsym._parametrization import Parametrization
>>> from mirrorsym._flows import flows
>>> p = Parametrization.create(["u**2 - v**2"], ["u", "v"], {"u": "alpha", "v": "alpha"},
...                            parameters={"alpha": 0.5}, assumptions={"alpha": ["positive"]})
>>> psi(p, flows(p)).psi
(alpha*exp(2*mu1), alpha*exp(-2*mu1))
"""

from __future__ import annotations

import dataclasses
import time

import sympy as sp

from ._flows import FlowsResult, T
from ._parametrization import Parametrization

__all__ = ["PsiResult", "psi"]


@dataclasses.dataclass(frozen=True)
class PsiResult:
    """ψ(x0; µ) as expressions in µ_1..µ_d and the parameters."""

    psi: tuple[sp.Expr, ...]
    method: str
    seconds: float


def psi(p: Parametrization, fl: FlowsResult) -> PsiResult:
    t0 = time.perf_counter()
    mu = p.mu
    out = list(p.x0)
    methods = []
    for blk, fam in zip(fl.blocks, fl.quadratic):
        x0b = sp.Matrix([p.x0[k] for k in blk.x_indices])
        if fam is not None:
            vec = sp.zeros(len(blk.x_indices), 1)
            for P, lam in zip(fam.projectors, fam.lambdas):
                rate = sum((l * mu[i] for l, i in zip(lam, blk.g_indices)), sp.S.Zero)
                vec += sp.exp(rate) * (P * x0b)
            for k, v in zip(blk.x_indices, vec):
                out[k] = sp.expand(v)
            methods.append("exp(Σ µ_i A_i) x0")
            continue
        cur = {p.variables[k]: p.x0[k] for k in blk.x_indices}
        for i in reversed(blk.g_indices):
            phi = fl.flows[i].phi
            new = {p.variables[k]: phi[k].xreplace({T: mu[i]}).xreplace(cur) for k in blk.x_indices}
            cur = new
        for k in blk.x_indices:
            out[k] = cur[p.variables[k]]
        methods.append("composition of flows")
    return PsiResult(tuple(out), "; ".join(sorted(set(methods))), time.perf_counter() - t0)
