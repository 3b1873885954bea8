r"""Stage 8: gradient flow = mirror flow along whole trajectories, and the implicit-bias limit.

Stage 7 proves ∇R(G(ψ(µ))) = µ and ∇²R = (J Jᵀ)⁻¹ at sample points. This stage checks what those
identities are for (MATH.md §5), on actual flows, in mpmath at ``dps`` digits:

``trajectory``
    A random time-dependent loss L_t(w) = ½‖Z(t)(w − w*)‖², Z(t) = Z0 + sin(ωt) Z1 with (d+1) × d
    matrices of N(0, 1)/√d entries, ω three times the flow's initial rate (so that the loss changes
    on the flow's own time scale) and a target w* = G(ψ(x0; µ*)) reachable from x0. Gradient flow
    dx/dt = −J(x)ᵀ∇L_t(G(x)) is integrated together with the impulse I(t) = ∫₀ᵗ ∇L_s(G(x(s))) ds, and
    at 12 times along the path (a check needs at least 10)

        ∇R(G(x(t))) + I(t) = 0                 (no inverse of anything is involved)

    must hold; the mirror flow dw/dt = −∇²R(w)⁻¹∇L_t(w), integrated on its own from w0 = G(x0), must
    stay on G(x(t)). The path must move w by at least 0.1 (1 + ‖w0‖): a check along a path that
    stays at w0 proves nothing. Along the mirror flow d/dt D_R(w*, w(t)) = −‖Z(t)(w − w*)‖² ≤ 0, so
    the path stays in a compact part of dom R: no finite-time blow-up even when U is bounded, and T
    needs no tuning against the domain (should gradient flow stop anyway, T shrinks to 0.9 times
    the time it reached).

``bias``
    Underdetermined regression L(w) = ½‖Zw − y‖² with m < d random rows and y = Z w* (w* reachable):
    gradient flow from x0 runs until r = Zw − y has ‖r‖ ≤ 10^(−dps/2) (1 + ‖y‖). From there r decays
    exponentially, ṙ = −A r with A = Z H Zᵀ, so the rest of the path adds −H Zᵀ A⁻¹ r + O(‖r‖²) to w:
    the limit is known to working precision at half the integration time. It must be
    argmin {R(w) : Zw = y}, computed independently from the KKT system ∇R(w) = Zᵀλ, Zw = y by damped
    Newton from (w0, 0). For d = 1 regression with fewer rows than unknowns does not exist, so two
    copies of the parametrization are stacked, w = (G(x), G(x')), with R(w) = R(w1) + R(w2) (separable
    blocks factorise, MATH.md §6).

The targets w* come from gradient flow itself, on the linear loss ⟨g, w⟩ for a random unit g: its
solution is x(τ) = ψ(x0; −τg), so w* is reachable by construction and independent of the potential
under test. The potential is any object with ``evaluate(w) -> (R, ∇R, ∇²R)`` that raises
DomainError outside dom R or returns non-real values there (a :class:`NumericPotential`, or a
candidate to be refuted).

Integration is Gragg–Bulirsch–Stoer extrapolation of the modified midpoint rule (the scheme of
ODEX, Hairer, Nørsett & Wanner, *Solving ODEs I*, §II.9). Column j of the extrapolation tableau has
order 2j + 2, so tolerances of 10^(5 − dps) are met with steps of the size of the flow's own time
scale; a fifth-order Runge–Kutta pair would need ~10⁴ steps per unit time at 30 digits. Step size
and column follow ODEX's least-work-per-unit-time rule; a step whose field cannot be evaluated (the
state left a domain) is retried at a quarter of its size.

Tolerances: integration 10^(5 − dps) per step (mixed absolute/relative), checks 10^(8 − dps) like
stage 7, relative to 1 + the size of the compared values. Seeds are fixed and reported.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Sequence

import mpmath as mp

from ._errors import DomainError, MirrorsymError
from ._jacobian import JacobianResult
from ._numeric import mp_function, to_mpf
from ._parametrization import Parametrization
from ._verify import Check

__all__ = ["CHECKS", "MissingDependency", "bias_check", "plot", "run_checks", "trajectory_check"]

STATEMENTS = {
    "trajectory": "GF = MF for a time-dependent loss: ∇R(G(x(t))) + ∫₀ᵗ∇L = 0, MF w(t) = G(x(t))",
    "bias": "GF limit of underdetermined regression = argmin {R(w) : Zw = y}",
}
CHECKS = tuple(STATEMENTS)

#: checkpoints along the trajectory, and the fewest that make a check
_TIMES, _MIN_TIMES = 12, 10
#: the adaptive final time is at most this over the initial rate of the flow
_MAX_TIME = 3
#: the path must move w by this factor times (1 + ‖w0‖); targets lie 5 times as far
_MIN_MOVE = 0.1
_TARGET_DISTANCE = 0.5


class MissingDependency(MirrorsymError, ImportError):
    """An optional package (matplotlib for :func:`plot`) is not installed."""


# --- the integrator ---------------------------------------------------------------------------------

_COLUMNS = 12
#: substeps of the modified midpoint rule in column j (the harmonic sequence 2, 4, 6, …)
_SEQ = tuple(2 * (j + 1) for j in range(_COLUMNS))
#: field evaluations needed to reach column j
_WORK = tuple(1 + sum(n - 1 for n in _SEQ[: j + 1]) for j in range(_COLUMNS))
#: a state this large is a blow-up: the flows checked here stay bounded (module docstring)
_BLOW_UP = mp.mpf(10) ** 10


class _IntegrationError(Exception):
    def __init__(self, t, why: str):
        self.t = t
        super().__init__(f"at t = {mp.nstr(t, 6)}: {why}")


def _field(f: Callable, t, y) -> tuple[list | None, str]:
    """f(t, y) as finite mpf values, or (None, why) where the field is undefined (outside a domain)."""
    try:
        v = f(t, y)
    except (ArithmeticError, ValueError) as exc:  # DomainError is a ValueError
        return None, str(exc) or type(exc).__name__
    if all(isinstance(c, mp.mpf) and mp.isfinite(c) for c in v):
        return v, ""
    return None, "the vector field is not finite and real"


def _gbs_step(f: Callable, t, y: list, f0: list, H, tol) -> tuple[list | None, list[float], str]:
    """One extrapolated step: (y(t + H), the error estimates of columns ≥ 1, "").

    (None, errs, "") when no column reaches the tolerance, (None, errs, why) when the field fails.
    """
    errs: list[float] = []
    prev = None
    for j, n in enumerate(_SEQ):
        h = H / n
        z0, z1 = y, [a + h * b for a, b in zip(y, f0)]
        for i in range(1, n):
            fz, why = _field(f, t + i * h, z1)
            if fz is None:
                return None, errs, why
            z0, z1 = z1, [a + 2 * h * b for a, b in zip(z0, fz)]
        # Aitken–Neville in h²: T[j][l] = T[j][l-1] + (T[j][l-1] - T[j-1][l-1]) / ((n_j / n_{j-l})² - 1)
        row = [z1]
        for k in range(1, j + 1):
            c = mp.mpf(n * n) / (_SEQ[j - k] ** 2) - 1
            row.append([a + (a - b) / c for a, b in zip(row[k - 1], prev[k - 1])])
        if j:
            errs.append(float(max(abs(a - b) / (1 + abs(a)) for a, b in zip(row[j], row[j - 1])) / tol))
            if errs[-1] <= 1:
                return row[j], errs, ""
            # stop early when the errors, decreasing geometrically, would miss the tolerance at the last column
            if j >= 3 and errs[-1] * (errs[-1] / errs[-2]) ** (_COLUMNS - 1 - j) > 4:
                break
        prev = row
    return None, errs, ""


def _step_factor(err: float, j: int) -> float:
    """Column j's error scales like H^(2j+1): the factor aiming at 0.65 of the tolerance, with safety 0.94."""
    return min(4.0, max(0.02, 0.94 * (0.65 / max(err, 1e-300)) ** (1 / (2 * j + 1))))


def _next_step(H, errs: list[float]):
    """ODEX's rule: the column with least work per unit time; one column more if that is the last."""
    best = min(range(1, len(errs) + 1), key=lambda j: _WORK[j] / _step_factor(errs[j - 1], j))
    H_new = H * _step_factor(errs[best - 1], best)
    if best == len(errs) and best + 1 < _COLUMNS:
        H_new *= _WORK[best + 1] / _WORK[best]
    return H_new


def _integrate(f: Callable, t, y: list, t_end, tol, h, *, stop: Callable | None = None, h_max=None,
               max_steps: int = 5000) -> tuple:
    """y' = f(t, y) from t to t_end, or until stop(t, y) after an accepted step: (t, y, next h, steps).

    Raises _IntegrationError when the step size collapses (the state leaves the field's domain), the
    state exceeds 10¹⁰ in size (a blow-up), or after ``max_steps`` accepted steps.
    """
    f0, why = _field(f, t, y)
    if f0 is None:
        raise _IntegrationError(t, why)
    steps = 0
    while t < t_end:
        if h_max is not None:
            h = min(h, h_max)
        # land on t_end in equal steps rather than with a sliver of a last step
        pieces = max(1, math.ceil(float((t_end - t) / h) - 1e-6))
        H = (t_end - t) / pieces if pieces <= 3 else h
        y_new, errs, why = _gbs_step(f, t, y, f0, H, tol)
        f_new = None
        if y_new is not None:
            t_new = t_end if pieces == 1 else t + H
            f_new, why = _field(f, t_new, y_new)
        if f_new is None:
            # outside the field's domain: a quarter of the step; not converged: as the last column says
            h = H / 4 if why else min(H / 2, H * _step_factor(errs[-1], len(errs)))
            if h <= abs(t_end) * mp.mpf(10) ** (-(mp.mp.dps // 2)) + mp.mpf(10) ** -mp.mp.dps:
                raise _IntegrationError(t, f"the step size collapsed ({why or 'no extrapolation column converges'})")
            continue
        if max(abs(v) for v in y_new) > _BLOW_UP:
            raise _IntegrationError(t_new, "the solution blows up")
        t, y, f0 = t_new, y_new, f_new
        h = _next_step(H, errs)
        steps += 1
        if stop is not None and stop(t, y):
            break
        if steps >= max_steps:
            raise _IntegrationError(t, f"more than {max_steps} steps")
    return t, y, h, steps


# --- the model and the losses -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Model:
    """w = G(x) and J(x) (a flat row-major list) as mpmath functions, with x0 and w0."""

    G: Callable
    J: Callable
    x0: list
    d: int
    D: int
    copies: int = 1

    @classmethod
    def of(cls, p: Parametrization, jac: JacobianResult) -> _Model:
        values = p.numeric()
        G_f = mp_function(p.variables, list(p.G), values)
        J_f = mp_function(p.variables, list(jac.J), values)
        x0 = [to_mpf(v, values) for v in p.x0]
        return cls(lambda x: G_f(*x), lambda x: J_f(*x), x0, p.d, p.D)

    @property
    def w0(self) -> list:
        return self.G(self.x0)

    def velocity(self, x: list, g: list) -> list:
        """−J(x)ᵀ g: gradient flow for a loss with gradient g at w = G(x)."""
        J, D = self.J(x), self.D
        return [-mp.fsum(J[i * D + k] * g[i] for i in range(self.d)) for k in range(D)]

    def stacked(self, k: int) -> _Model:
        """k independent copies: w = (G(x¹), …, G(xᵏ)), J block diagonal."""
        d, D = self.d, self.D

        def G(x):
            return [v for c in range(k) for v in self.G(x[c * D:(c + 1) * D])]

        def J(x):
            out = [mp.mpf(0)] * (k * d * k * D)
            for c in range(k):
                Jc = self.J(x[c * D:(c + 1) * D])
                for i in range(d):
                    for j in range(D):
                        out[(c * d + i) * k * D + c * D + j] = Jc[i * D + j]
            return out

        return _Model(G, J, self.x0 * k, k * d, k * D, k * self.copies)


class _StackedPotential:
    """R(w) = Σ_c R(w^c) over copies of a d-dimensional potential."""

    def __init__(self, potential, d: int, k: int):
        self.potential, self.d, self.k = potential, d, k

    def evaluate(self, w):
        d = self.d
        R, grad, H = mp.mpf(0), [], mp.zeros(d * self.k, d * self.k)
        for c in range(self.k):
            Rc, gc, Hc = self.potential.evaluate(list(w[c * d:(c + 1) * d]))
            R += Rc
            grad += list(gc)
            for i in range(d):
                for j in range(d):
                    H[c * d + i, c * d + j] = Hc[i, j]
        return R, grad, H


def _evaluate(potential, w) -> tuple:
    """potential.evaluate(w), with a complex or infinite value (a closed form evaluated outside its
    domain, e.g. log of a negative number) reported as the DomainError it is."""
    R, g, H = potential.evaluate(w)
    values = [R, *g, *(H[i, j] for i in range(H.rows) for j in range(H.cols))]
    if not all(isinstance(v, mp.mpf) and mp.isfinite(v) for v in values):
        raise DomainError(f"w = [{', '.join(mp.nstr(v, 8) for v in w)}] is outside dom R (R is not real there)")
    return R, g, H


def _gaussian_matrix(rnd: random.Random, rows: int, cols: int) -> list[list]:
    scale = 1 / math.sqrt(cols)
    return [[mp.mpf(rnd.gauss(0, 1) * scale) for _ in range(cols)] for _ in range(rows)]


def _matvec(Z, v) -> list:
    return [mp.fsum(z * x for z, x in zip(row, v)) for row in Z]


def _tmatvec(Z, r) -> list:
    return [mp.fsum(Z[k][i] * r[k] for k in range(len(Z))) for i in range(len(Z[0]))]


def _norm(v) -> mp.mpf:
    return mp.sqrt(mp.fsum(x * x for x in v))


def _metric_rate(model: _Model, Z) -> mp.mpf:
    """trace(Z H(x0) Zᵀ) / d: the rate at which gradient flow on ½‖Zw − y‖² starts to move w."""
    J, d, D = model.J(model.x0), model.d, model.D
    ZJ = [[mp.fsum(row[i] * J[i * D + k] for i in range(d)) for k in range(D)] for row in Z]
    return mp.fsum(v * v for row in ZJ for v in row) / d


def _jjt_times(model: _Model, x: list, g: list) -> list:
    """J(x) J(x)ᵀ g, the velocity of w under the loss gradient −g."""
    J, D = model.J(x), model.D
    v = model.velocity(x, g)
    return [-mp.fsum(J[i * D + k] * v[k] for k in range(D)) for i in range(model.d)]


def _reachable_target(model: _Model, rnd: random.Random, tol) -> list:
    """w* = G(ψ(x0; −τg)) for a random unit g, by gradient flow on the linear loss ⟨g, w⟩, at distance
    0.5 (1 + ‖w0‖) from w0; when dom R ends nearer on that side, τ stops at twice the time the
    initial speed needs (w* then lies between w0 and the edge of dom R)."""
    w0 = model.w0
    g = [mp.mpf(rnd.gauss(0, 1)) for _ in range(model.d)]
    g = [v / _norm(g) for v in g]
    dist = _TARGET_DISTANCE * (1 + _norm(w0))
    tau = 2 * dist / _norm(_jjt_times(model, model.x0, g))

    def far(t, x):
        return _norm([a - b for a, b in zip(model.G(x), w0)]) >= dist

    for attempt in range(4):  # should ψ(x0; −τg) leave U first, aim at half the time it reached
        try:
            _, x, _, _ = _integrate(lambda t, x: model.velocity(x, g), mp.mpf(0), list(model.x0), tau, tol,
                                    tau / 20, stop=far, h_max=tau / 20)
            return model.G(x)
        except _IntegrationError as exc:
            if attempt == 3:
                raise
            tau = exc.t / 2


def _check_tolerance(dps: int) -> float:
    return 10.0 ** (8 - dps)


def _fmt(v) -> str:
    return "inf" if not mp.isfinite(v) else f"{float(v):.2g}"


def _no_target(name: str, tol: float, exc: Exception) -> Check:
    return Check(name, STATEMENTS[name], float("inf"), tol, 0,
                 f"could not run: gradient flow on a linear loss, for a target, stopped {exc}")


# --- trajectory ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Trajectory:
    """Both flows at the check times. An error is inf where ∇R or the mirror flow is undefined;
    ``problems`` says why, per flow ("gf", "impulse", "mf")."""

    times: list
    w_gf: list
    w_mf: list
    impulse_error: list
    mf_error: list
    moved: mp.mpf
    required: mp.mpf
    problems: dict
    steps: int


def _trajectory(model: _Model, potential, dps: int, seed: int, T=None, n_times: int = _TIMES) -> _Trajectory:
    tol = mp.mpf(10) ** (5 - dps)
    rnd = random.Random(f"trajectory-{seed}")
    d, D = model.d, model.D
    Z0, Z1 = _gaussian_matrix(rnd, d + 1, d), _gaussian_matrix(rnd, d + 1, d)
    w_star = _reachable_target(model, rnd, tol)
    rate = _metric_rate(model, Z0)
    omega = 3 * rate  # the loss changes on the flow's own time scale

    def grad_L(t, w):
        s = mp.sin(omega * t)
        Z = [[a + s * b for a, b in zip(r0, r1)] for r0, r1 in zip(Z0, Z1)]
        return _tmatvec(Z, _matvec(Z, [a - b for a, b in zip(w, w_star)]))

    def gf(t, y):  # (x, I)' = (−J(x)ᵀ∇L_t(G(x)), ∇L_t(G(x)))
        g = grad_L(t, model.G(y[:D]))
        return model.velocity(y[:D], g) + g

    def mf(t, w):
        return [-v for v in mp.lu_solve(_evaluate(potential, w)[2], mp.matrix(grad_L(t, w)))]

    w0 = model.w0
    required = _MIN_MOVE * (1 + _norm(w0))
    times, states, problems, steps = [], [], {}, 0
    y0 = list(model.x0) + [mp.mpf(0)] * d
    if T is None:  # gradient flow alone (cheap) until w has moved twice the required distance
        def far(t, y):
            return _norm([a - b for a, b in zip(model.G(y[:D]), w0)]) >= 2 * required

        try:
            T, _, _, steps = _integrate(gf, mp.mpf(0), y0, _MAX_TIME / rate, tol, mp.mpf("0.05") / rate, stop=far)
        except _IntegrationError as exc:
            T = exc.t * mp.mpf("0.9")
    t, y, h = mp.mpf(0), y0, mp.mpf(T) / n_times
    for k in range(1, n_times + 1):
        try:
            t, y, h, n = _integrate(gf, t, y, mp.mpf(T) * k / n_times, tol, h)
        except _IntegrationError as exc:
            problems["gf"] = f"gradient flow stopped {exc}"
            break
        steps += n
        times.append(t)
        states.append(y)
    w_gf = [model.G(s[:D]) for s in states]
    impulse_error = []
    for tk, w, s in zip(times, w_gf, states):
        try:
            g = _evaluate(potential, w)[1]
        except (ArithmeticError, ValueError) as exc:  # DomainError, or a candidate failing in its own way
            impulse_error.append(mp.inf)
            problems.setdefault("impulse", f"∇R is undefined at G(x(t)), t = {_fmt(tk)}: {exc}")
            continue
        I = s[D:]
        impulse_error.append(max(abs(a + b) for a, b in zip(g, I)) / (1 + max(abs(b) for b in I)))
    w_mf, mf_error = [], []
    t, w, h = mp.mpf(0), list(w0), mp.mpf(T) / n_times
    for tk, wk in zip(times, w_gf):
        try:
            t, w, h, n = _integrate(mf, t, w, tk, tol, h)
        except _IntegrationError as exc:
            problems["mf"] = f"the mirror flow stopped {exc}"
            break
        steps += n
        w_mf.append(w)
        mf_error.append(max(abs(a - b) for a, b in zip(w, wk)) / (1 + max(abs(b) for b in wk)))
    mf_error += [mp.inf] * (len(times) - len(mf_error))
    moved = _norm([a - b for a, b in zip(w_gf[-1], w0)]) if w_gf else mp.mpf(0)
    return _Trajectory(times, w_gf, w_mf, impulse_error, mf_error, moved, required, problems, steps)


def trajectory_check(p: Parametrization, jac: JacobianResult, potential, *, dps: int = 30, seed: int = 0,
                     T=None) -> Check:
    """GF = MF along a trajectory of a random time-dependent loss (module docstring, ``trajectory``).

    ``potential`` needs only ``evaluate(w) -> (R, ∇R, ∇²R)``. The flows are compared at 12 equally
    spaced times up to ``T``; by default T is when gradient flow has moved w twice the required
    distance, at most 3 / rate (rate = trace(Z0 J Jᵀ Z0ᵀ) / d at x0, the flow's initial time scale).
    The detail leads with what failed.
    """
    tol = _check_tolerance(dps)
    with mp.workdps(dps):
        try:
            run = _trajectory(_Model.of(p, jac), potential, dps, seed, T)
        except _IntegrationError as exc:
            return _no_target("trajectory", tol, exc)
        e_imp = max(run.impulse_error, default=mp.inf)
        e_mf = max(run.mf_error, default=mp.inf)
        reasons = [run.problems["gf"]] if "gf" in run.problems else []
        for key, claim, errors, e in (("impulse", "∇R(w(t)) + ∫∇L ≠ 0", run.impulse_error, e_imp),
                                      ("mf", "mirror flow ≠ G(x(t))", run.mf_error, e_mf)):
            if e > tol and run.times:
                at = run.times[errors.index(e)]
                reasons.append(f"{claim}: " + run.problems.get(key, f"max error {_fmt(e)} at t = {_fmt(at)}"))
        if run.moved < run.required:
            reasons.append(f"w moved only {_fmt(run.moved)} < {_fmt(run.required)}: the path proves nothing")
        if len(run.times) < _MIN_TIMES:
            reasons.append(f"only {len(run.times)} check times")
        T_end = run.times[-1] if run.times else mp.mpf(0)
        summary = (f"{len(run.times)} times up to T = {_fmt(T_end)}, w moved {_fmt(run.moved)} "
                   f"(≥ {_fmt(run.required)} required); max |∇R + ∫∇L| {_fmt(e_imp)}, max |w_MF − G(x)| "
                   f"{_fmt(e_mf)}; {run.steps} steps, seed {seed}")
        error = max(e_imp, e_mf) if run.moved >= run.required and len(run.times) >= _MIN_TIMES else mp.inf
    detail = "; ".join(reasons + [summary])
    return Check("trajectory", STATEMENTS["trajectory"], float(error), tol, len(run.times), detail)


# --- implicit bias ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Bias:
    Z: list
    y: list
    path: list
    t: mp.mpf
    residual: mp.mpf
    tail: mp.mpf
    limit: list | None
    kkt: list | None
    newton_steps: int
    problems: list
    copies: int


def _kkt(potential, Z, y, w0, dps: int) -> tuple[list, int]:
    """argmin {R(w) : Zw = y}: damped Newton on F(w, λ) = (∇R(w) − Zᵀλ, Zw − y) from (w0, 0).

    The Newton direction descends ‖F‖² wherever the KKT matrix [[∇²R, −Zᵀ], [Z, 0]] is regular, so
    backtracking (also away from points outside dom R) converges; a full step below 10^(−dps/2)
    leaves an error of its square and ends the iteration.
    """
    d, m = len(w0), len(Z)

    def F(z):
        _, g, H = _evaluate(potential, z[:d])
        top = [a - b for a, b in zip(g, _tmatvec(Z, z[d:]))]
        return top + [a - b for a, b in zip(_matvec(Z, z[:d]), y)], H

    z = list(w0) + [mp.mpf(0)] * m
    Fz, H = F(z)
    small = mp.mpf(10) ** (-(dps // 2))
    for it in range(1, 81):
        K = mp.zeros(d + m, d + m)
        for i in range(d):
            for j in range(d):
                K[i, j] = H[i, j]
            for r in range(m):
                K[i, d + r], K[d + r, i] = -Z[r][i], Z[r][i]
        step = mp.lu_solve(K, mp.matrix([-v for v in Fz]))
        size = max(abs(v) for v in step) / (1 + max(abs(v) for v in z))
        t = mp.mpf(1)
        while True:
            trial = [a + t * b for a, b in zip(z, step)]
            try:
                Ft, Ht = F(trial)
                if size * t <= small or _norm(Ft) <= (1 - t / 4) * _norm(Fz):
                    break
            except (ArithmeticError, ValueError):  # outside dom R
                pass
            t /= 2
            if t < mp.mpf(2) ** -60:
                raise DomainError(f"KKT Newton: no descent from w = [{', '.join(_fmt(v) for v in z[:d])}]")
        z, Fz, H = trial, Ft, Ht
        if t == 1 and size <= small:
            return z[:d], it
    raise DomainError("KKT Newton did not converge in 80 steps")


def _bias(model: _Model, potential, dps: int, seed: int, dense: bool = False) -> _Bias:
    """The regression run; ``dense`` records the GF path at steps of at most 0.3 / rate (for plots)."""
    tol = mp.mpf(10) ** (5 - dps)
    if model.d == 1:  # regression on one coordinate is never underdetermined: stack two copies
        model, potential = model.stacked(2), _StackedPotential(potential, 1, 2)
    rnd = random.Random(f"bias-{seed}")
    d = model.d
    Z = _gaussian_matrix(rnd, max(1, d // 2), d)
    w_star = _reachable_target(model, rnd, tol)
    y = _matvec(Z, w_star)
    target = mp.mpf(10) ** (-(dps // 2)) * (1 + _norm(y))
    rate = _metric_rate(model, Z)
    path, last = [model.w0], [list(model.x0)]
    problems = []

    def field(t, x):
        return model.velocity(x, _tmatvec(Z, [a - b for a, b in zip(_matvec(Z, model.G(x)), y)]))

    def converged(t, x):
        path.append(model.G(x))
        last[0] = x
        return _norm([a - b for a, b in zip(_matvec(Z, path[-1]), y)]) <= target

    # the residual decays like exp(−rate·t), so 1.2·dps / rate is the expected time; 100 times that a limit
    t = mp.mpf(0)
    try:
        t, _, _, _ = _integrate(field, t, last[0], 120 * dps / rate, tol, 1 / rate, stop=converged,
                                h_max=mp.mpf("0.3") / rate if dense else None)
    except _IntegrationError as exc:
        t = exc.t
        problems.append(f"gradient flow stopped {exc}")
    r = [a - b for a, b in zip(_matvec(Z, path[-1]), y)]
    limit, tail = None, mp.inf
    if _norm(r) <= target:
        # the rest of the path: ṙ = −A r with A = Z H Zᵀ, H = J Jᵀ at x, up to O(‖r‖) changes of H;
        # so w(∞) − w = −H Zᵀ ∫r = −H Zᵀ A⁻¹ r + O(‖r‖²)
        HZ = [_jjt_times(model, last[0], row) for row in Z]  # the columns of H Zᵀ
        A = mp.matrix([[mp.fsum(Z[a][i] * HZ[b][i] for i in range(d)) for b in range(len(Z))] for a in range(len(Z))])
        c = mp.lu_solve(A, mp.matrix(r))
        shift = [-mp.fsum(HZ[b][i] * c[b] for b in range(len(Z))) for i in range(d)]
        limit, tail = [a + b for a, b in zip(path[-1], shift)], _norm(shift)
    elif not problems:
        problems.append(f"gradient flow did not converge: ‖Zw − y‖ = {_fmt(_norm(r))} at t = {_fmt(t)}")
    kkt, steps = None, 0
    try:
        kkt, steps = _kkt(potential, Z, y, model.w0, dps)
    except (ArithmeticError, ValueError) as exc:  # DomainError, or a singular KKT matrix
        problems.append(f"KKT system: {exc}")
    return _Bias(Z, y, path, t, _norm(r), tail, limit, kkt, steps, problems, model.copies)


def bias_check(p: Parametrization, jac: JacobianResult, potential, *, dps: int = 30, seed: int = 0) -> Check:
    """The GF limit of underdetermined regression is argmin {R : Zw = y} (module docstring, ``bias``)."""
    tol = _check_tolerance(dps)
    with mp.workdps(dps):
        try:
            run = _bias(_Model.of(p, jac), potential, dps, seed)
        except _IntegrationError as exc:
            return _no_target("bias", tol, exc)
        m, d = len(run.Z), len(run.Z[0])
        shape = f"Z is {m} × {d}" + (" (two stacked copies of the d = 1 model)" if run.copies > 1 else "")
        if run.limit is not None and run.kkt is not None:
            error = max(abs(a - b) for a, b in zip(run.limit, run.kkt)) / (1 + max(abs(b) for b in run.kkt))
        else:
            error = mp.inf
        reasons = [f"GF limit ≠ argmin R on Zw = y: distance {_fmt(error)}"] if error > tol else []
        summary = (f"GF limit at t = {_fmt(run.t)} (‖Zw − y‖ = {_fmt(run.residual)}, tail correction "
                   f"{_fmt(run.tail)}) vs KKT solution "
                   f"({run.newton_steps} Newton steps): distance {_fmt(error)}; {shape}, seed {seed}")
    detail = "; ".join(reasons + run.problems + [summary])
    return Check("bias", STATEMENTS["bias"], float(error), tol, 1, detail)


# --- entry points ----------------------------------------------------------------------------------

_RUNNERS = {"trajectory": trajectory_check, "bias": bias_check}


def run_checks(derivation, names: Sequence[str] = CHECKS, dps: int = 30, seed: int = 0) -> tuple[Check, ...]:
    """The named checks of a :class:`Derivation` against its own potential.

    A derivation without a potential (not commuting) gives each check with ``points`` = 0 (skipped),
    its status as the detail.
    """
    unknown = [n for n in names if n not in _RUNNERS]
    if unknown:
        raise ValueError(f"unknown check(s) {', '.join(unknown)} (available: {', '.join(CHECKS)})")
    if derivation.legendre is None:
        return tuple(Check(n, STATEMENTS[n], 0.0, _check_tolerance(dps), 0, f"not applicable: "
                           f"{derivation.status.value}") for n in names)
    p = derivation.parametrization
    with mp.workdps(dps):
        potential = derivation.numeric()
        return tuple(_RUNNERS[n](p, derivation.jacobian, potential, dps=dps, seed=seed) for n in names)


def plot(derivation, path: str, dps: int = 15, seed: int = 0) -> None:
    """Draw both checks to ``path`` (any format matplotlib writes): w(t) of gradient flow and mirror
    flow on the trajectory loss, and the regression path of GF towards its limit with the KKT
    solution argmin {R : Zw = y} (first two coordinates). Needs matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("plot needs matplotlib: pip install matplotlib") from None
    if derivation.legendre is None:
        raise ValueError(f"{derivation.parametrization.name}: {derivation.status.value}")
    p = derivation.parametrization
    with mp.workdps(dps):
        potential = derivation.numeric()
        model = _Model.of(p, derivation.jacobian)
        traj = _trajectory(model, potential, dps, seed, n_times=40)
        bias = _bias(model, potential, dps, seed, dense=True)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    ts = [0.0] + [float(t) for t in traj.times]
    w0 = [float(v) for v in model.w0]
    for i in range(p.d):
        line, = ax.plot(ts, [w0[i]] + [float(w[i]) for w in traj.w_gf], label=f"GF  G(x(t))$_{i + 1}$")
        ax.plot(ts[:len(traj.w_mf) + 1], [w0[i]] + [float(w[i]) for w in traj.w_mf], "o", mfc="none",
                color=line.get_color(), label=f"MF  w(t)$_{i + 1}$")
    ax.set(xlabel="t", ylabel="w", title="gradient flow vs mirror flow, time-dependent loss")
    ax.legend(fontsize="small")
    xs = [float(w[0]) for w in bias.path]
    ys = [float(w[1]) for w in bias.path]
    bx.plot(xs, ys, ".-", label="GF path of w")
    if len(bias.Z) == 1 and len(bias.Z[0]) == 2:  # the constraint set is a line
        z1, z2 = (float(v) for v in bias.Z[0])
        c = float(bias.y[0])
        lo, hi = min(xs), max(xs)
        pad = 0.2 * (hi - lo or 1)
        if abs(z2) > abs(z1):
            u = [lo - pad, hi + pad]
            bx.plot(u, [(c - z1 * v) / z2 for v in u], "k--", lw=0.8, label="Zw = y")
        else:
            v = [min(ys) - pad, max(ys) + pad]
            bx.plot([(c - z2 * s) / z1 for s in v], v, "k--", lw=0.8, label="Zw = y")
    if bias.kkt is not None:
        bx.plot([float(bias.kkt[0])], [float(bias.kkt[1])], "r*", ms=16, label="argmin R on Zw = y (KKT)")
    if bias.limit is not None:
        bx.plot([float(bias.limit[0])], [float(bias.limit[1])], "kx", ms=9, label="GF limit")
    bx.set(xlabel="$w_1$", ylabel="$w_2$" + (" (second copy)" if bias.copies > 1 else ""),
           title="regression: GF limit vs implicit-bias prediction")
    bx.legend(fontsize="small")
    fig.suptitle(f"{p.name}: GF = MF (seed {seed}, {dps} digits)")
    fig.savefig(path)
