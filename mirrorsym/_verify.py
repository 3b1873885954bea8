"""Stage 7: the numerical proof, in mpmath at ``dps`` digits (30 by default), seeds fixed and reported.

At sample points µ inside U (MATH.md §9: x = ψ(x0; µ), not random x), with w = G(ψ(µ)):

* ``grad_Q``   ∇Q(µ) = G(ψ(x0; µ))                  (the potential really integrates G∘ψ)
* ``metric``   H(ψ(µ)) = J Jᵀ is positive definite    (regular along the reachable set)
* ``grad_R``   ∇R(w) = µ                              (the Legendre inverse, on the right branch)
* ``hess_R``   ∇²R(w) = (J Jᵀ)⁻¹ at ψ(µ)              (the theorem's Hessian identity)
* ``fenchel``  R(∇Q(µ)) + Q(µ) = ⟨µ, ∇Q(µ)⟩
* ``normalisation``  ∇R(w0) = 0 and R(w0) = 0 with w0 = G(x0)

plus the flows' own ODE residuals from stage 3. Errors are relative to the size of the compared
values; a check passes when its error is below 10^(8 − dps).

>>> # VerificationResult.table() prints one line per check: name, max error, tolerance, points
"""

from __future__ import annotations

import dataclasses
import random
import time

import mpmath as mp

from ._errors import DomainError
from ._flows import FlowsResult
from ._jacobian import JacobianResult
from ._legendre import LegendreResult, NumericPotential
from ._numeric import mp_function, sample_interval, to_mpf
from ._parametrization import Parametrization
from ._potential import PotentialResult
from ._psi import PsiResult

__all__ = ["Check", "VerificationResult", "sample_mu", "verify"]


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    statement: str
    max_error: float
    tolerance: float
    points: int
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.points > 0 and self.max_error <= self.tolerance


@dataclasses.dataclass(frozen=True)
class VerificationResult:
    checks: tuple[Check, ...]
    dps: int
    seed: int
    seconds: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def table(self) -> list[str]:
        return [f"{'ok  ' if c.passed else 'FAIL'} {c.name:14s} max error {c.max_error:.1e} (tol {c.tolerance:.0e}, "
                f"{c.points} points){'  ' + c.detail if c.detail else ''}" for c in self.checks]


def sample_mu(p: Parametrization, leg: LegendreResult, n: int, seed: int) -> list[list]:
    """n points of U: per piece along its interval (both sides of 0), mapped back by µ_b = L⁻¹ν."""
    values = p.numeric()
    rnd = random.Random(seed)
    cols = [[mp.mpf(0)] * p.d for _ in range(n)]
    for b in leg.blocks:
        idx = b.block.g_indices
        if b.pieces is not None:
            Li = mp.matrix([[to_mpf(x, values) for x in row] for row in b.L.inv().tolist()])
            per_piece = []
            for pc in b.pieces:
                pts = sample_interval(pc.U[0], pc.U[1], values, n)
                rnd.shuffle(pts)
                per_piece.append(pts)
            for k in range(n):
                mub = Li * mp.matrix([pts[k] for pts in per_piece])
                for a, i in enumerate(idx):
                    cols[k][i] = mub[a]
        else:
            boxes = [sample_interval(lo, hi, values, n) for lo, hi in b.potential.U]
            for pts in boxes:
                rnd.shuffle(pts)
            for k in range(n):
                for a, i in enumerate(idx):
                    cols[k][i] = boxes[a][k] / 2  # a joint block: stay well inside U
    return cols


def _rel(a, b) -> mp.mpf:
    return abs(a - b) / (1 + abs(b))


def verify(p: Parametrization, jac: JacobianResult, fl: FlowsResult, ps: PsiResult, pot: PotentialResult,
           leg: LegendreResult, dps: int = 30, seed: int = 0, n: int = 6) -> VerificationResult:
    t0 = time.perf_counter()
    values = p.numeric()
    tol = 10.0 ** (8 - dps)
    checks = [Check("flows", "dφ/dt = +∇G_i(φ), φ^0 = x", max(f.residual for f in fl.flows), tol, 8 * p.d,
                    "near x0 (stage 3)")]
    with mp.workdps(dps):
        num = NumericPotential(leg, p)
        psi_f = mp_function(p.mu, list(ps.psi), values)
        G_f = mp_function(p.variables, list(p.G), values)
        J_f = mp_function(p.variables, list(jac.J), values)
        errs = {k: mp.mpf(0) for k in ("grad_Q", "metric", "grad_R", "hess_R", "fenchel")}
        count = 0
        problems = []
        for mu in sample_mu(p, leg, n, seed):
            x = psi_f(*mu)
            w = G_f(*x)
            Jv = J_f(*x)
            J = mp.matrix([[Jv[i * p.D + k] for k in range(p.D)] for i in range(p.d)])
            H = J * J.T
            gQ = num.grad_Q(mu)
            errs["grad_Q"] = max(errs["grad_Q"], max(_rel(a, b) for a, b in zip(gQ, w)))
            eig = mp.eigsy(H, eigvals_only=True)
            lam_min = min(eig)
            errs["metric"] = max(errs["metric"], mp.mpf(0) if lam_min > 0 else 1 + abs(lam_min))
            try:
                R, g, HR = num.evaluate(w)
            except DomainError as exc:
                problems.append(str(exc))
                errs["grad_R"] = errs["hess_R"] = errs["fenchel"] = mp.inf
                continue
            errs["grad_R"] = max(errs["grad_R"], max(_rel(a, b) for a, b in zip(g, mu)))
            Hinv = H ** -1
            scale = max(abs(Hinv[i, i]) for i in range(p.d))
            errs["hess_R"] = max(errs["hess_R"], max(abs(HR[i, j] - Hinv[i, j]) / scale
                                                     for i in range(p.d) for j in range(p.d)))
            inner = mp.fsum(a * b for a, b in zip(mu, gQ))
            errs["fenchel"] = max(errs["fenchel"], abs(R + num.Q(mu) - inner) / (1 + abs(inner)))
            count += 1
        w0 = G_f(*[to_mpf(v, values) for v in p.x0])
        try:
            R0, g0, _ = num.evaluate(w0)
            norm_err = max([abs(R0)] + [abs(v) for v in g0])
        except DomainError as exc:
            problems.append(str(exc))
            norm_err = mp.inf
    statements = {
        "grad_Q": "∇Q(µ) = G(ψ(x0; µ))",
        "metric": "J Jᵀ ≻ 0 at ψ(x0; µ)",
        "grad_R": "∇R(G(ψ(x0; µ))) = µ",
        "hess_R": "∇²R(G(ψ(x0; µ))) = (J Jᵀ)⁻¹",
        "fenchel": "R(∇Q(µ)) + Q(µ) = ⟨µ, ∇Q(µ)⟩",
    }
    detail = "; ".join(sorted(set(problems)))[:300]
    for k, st in statements.items():
        checks.append(Check(k, st, float(errs[k]), tol, count if k != "grad_Q" else n, detail if errs[k] == mp.inf else ""))
    checks.append(Check("normalisation", "∇R(w0) = 0, R(w0) = 0", float(norm_err), tol, 1))
    return VerificationResult(tuple(checks), dps, seed, time.perf_counter() - t0)
