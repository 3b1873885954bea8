"""Numerical inverses of grad Q: the point mu(w) behind an implicit mirror potential.

R = Q* (MATH.md §4). When (grad Q)^-1 has no usable closed form, R is evaluated through
mu(w) = grad R(w), the unique minimiser over the dual domain U of the strictly convex

    f(mu) = Q(mu) - <mu, w>,        grad f = grad Q - w,        hess f = hess Q > 0,

which exists exactly when w lies in dom R = grad Q(U). Two solvers, each in two flavours — mpmath at
the current ``mp.dps`` (verification) and float64 numpy, vectorised over batches of w, as source text
pasted into generated standalone modules (:data:`NUMPY_SOLVER_SOURCE`):

**Scalar pieces** (separable blocks): g = q' strictly increasing on U = (lo, hi) with lo < 0 < hi,
either end possibly infinite; solve g(nu) = s.

* Bracket: probe outwards from 0 on the side where g passes s — at nu = +-1, +-2, +-4, ..., up to
  +-2**1000 or half a finite end e, then at e (1 - 2**-k), k = 1, 2, ... — until g crosses s. A probe
  where g fails (overflow, a pole, an exception) counts as beyond every s: that only happens next to
  an end where g blows up. If g never crosses s, s is outside the image (g(lo+), g(hi-)) = dom R.
* Solve: safeguarded Newton (Numerical Recipes' ``rtsafe``): the Newton step is taken only when it
  stays inside the bracket and at most halves the step before last, otherwise bisect; each
  evaluation shrinks the bracket, so the iteration cannot leave U or jump past a pole.

**Joint pieces** (d >= 2): damped Newton from mu = 0 (or mu0) with step p = -hess Q^-1 (grad Q - w)
(where hess Q is not numerically positive definite, e.g. one term of an exponential sum dwarfs the
others, with its eigenvalues floored at d eps times the largest: still a descent direction), and
squared Newton decrement lam2 = -<grad f, p> > 0.

* Trust radius: steps are capped at a radius that starts at 1 (in the max norm of mu), doubles
  while the cap binds and shrinks to the step taken after backtracking. The Newton step from 0
  towards |w| = 1e100 is ~1e100 long; capped, mu reaches |mu| ~ 100 in a few doublings with exp
  never overflowing (an overflowing trial point is simply rejected).
* Backtracking halves t until mu + t p lies in U and either f decreased measurably (Armijo,
  f(mu + t p) <= f(mu) - c t lam2 with c = 0.1, by more than its rounding) or Deuflhard's natural
  monotonicity test holds: the Newton correction hess Q(mu)^-1 grad f(mu + t p) is shorter than
  (1 - t/4) ||p||. The second needs only grad Q: it decides where differences of f are rounding
  noise, next to w0 (Q - <mu, w> cancels) and for tiny w (Q(mu) is then nearly its constant).
* Extrapolation: from above, along exp, a full Newton step covers only about 1 (exp(x) - w has
  Newton step ~ -1 for x >> log w); a full step after which f still falls along p is doubled
  while f keeps falling (the slope along p stays negative), up to 4 times or the trust radius.

**Stopping.** With ||.|| the max norm, eps the unit roundoff and tol = 10**(2 - dps) (mpmath) or
4 eps (numpy): the scalar solver stops when its step is below tol * max(1, |nu|) (mpmath; this
always happens) or 4 eps |nu| (numpy, relative even near 0; after 100 steps, when noise in g
prevents that, the bracketed iterate is returned). The joint solver returns mu + p, p the Newton
step, once

* ||p|| <= tol * ||mu||; or
* ||p||**3 / ||p_prev||**2 <= tol * ||mu|| (eps/4 in numpy), p_prev the previous step if it was a
  full one: the error left after p, as predicted by quadratic convergence; or
* grad f is rounding noise (||grad Q - w|| <= 8 eps (||grad Q|| + ||w||)) and ||p|| <= eps**(1/4)
  max(1, ||mu||) (the bound on p tells this from mu running off along a direction in which f
  flattens out, as it does for w on the boundary of dom R); or
* ||p|| <= sqrt(tol) * ||mu|| and p does not halve a full p_prev (or no step passes the tests).

A joint iteration that does not converge (200 mpmath / 100 numpy steps), finds no acceptable
step along a larger p, or whose mu runs beyond ||mu|| = 1e6 (f unbounded below) means that w is
outside dom R; so does a hess Q that is singular to working precision at the solution (f is flat
to rounding along a line: w is on the edge of dom R, or grad R is not determined there).

**Next to w0 = grad Q(0)** grad Q(mu) - w cancels: at working precision it fixes mu only to about
eps |w0| / |hess Q|, not relative to |mu| (and R = <mu, w> - Q(mu) ~ |w - w0|**2 loses as much).
The mpmath solver ends with Newton steps whose residual is evaluated at twice the precision. The
numpy solver, where hess Q stays within half of hess Q(0) on the segment [0, mu], takes one more
Newton step with the residual in integral form, int_0^1 hess Q(t mu) mu dt - (w - w0) (8-point
Gauss-Legendre, exact to rounding there, and checked against grad Q(mu) - grad Q(0)), with w0
passed as hi + lo to twice float precision (``w0=(hi, lo)``; the exporter knows it exactly); with
``value=True`` it also returns R = <mu, w - w0> - int_0^1 (1 - t) <mu, hess Q(t mu) mu> dt there
(Q(0) = 0), both terms O(|w - w0|**2) and free of cancellation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mpmath import mp, mpf

from ._errors import DomainError

__all__ = ["NUMPY_SOLVER_SOURCE", "convex_newton_mp", "scalar_inverse_mp", "solver_source"]

#: The expansion towards an infinite end stops at 2**_MAX_DOUBLINGS.
_MAX_DOUBLINGS = 1000
#: ||mu|| beyond which the joint iteration is taken to run off to infinity.
_MU_MAX = 1e6
#: Armijo constant c.
_ARMIJO = mpf("0.1")


def _real(fn: Callable, x) -> mpf | None:
    """fn(x) as a finite real mpf, or None where it fails (overflow, a pole, a complex value)."""
    try:
        y = fn(x)
    except (ArithmeticError, ValueError):
        return None
    if isinstance(y, (int, float)):
        y = mpf(y)
    return y if isinstance(y, mpf) and mp.isfinite(y) else None


def _probes(end: mpf):
    """Points from 0 towards ``end``: +-2**k below half of end, then end (1 - 2**-k) while not end."""
    for k in range(_MAX_DOUBLINGS + 1):
        t = mp.ldexp(mp.sign(end), k)
        if not abs(t) < abs(end) / 2:
            break
        yield t
    if mp.isfinite(end):
        k = 1
        while (t := end - mp.ldexp(end, -k)) != end:
            yield t
            k += 1


def scalar_inverse_mp(g: Callable, dg: Callable, s, lo, hi) -> mpf:
    """The nu in (lo, hi) with g(nu) = s, for g strictly increasing on (lo, hi) and dg = g' > 0.

    Runs at the current ``mp.dps``; lo < 0 < hi, either may be infinite. g and dg take and return
    mpf. The result is accurate to about 10**(2 - dps) * max(1, |nu|) (usually far better: the last
    step is normally a quadratically convergent Newton step).

    >>> from mpmath import exp, log
    >>> nu = scalar_inverse_mp(lambda x: exp(x) - 1, exp, 2, -mp.inf, mp.inf)
    >>> abs(nu - log(3)) < mpf(10) ** (2 - mp.dps)
    True
    >>> scalar_inverse_mp(lambda x: exp(x), exp, -1, -mp.inf, mp.inf)
    Traceback (most recent call last):
    ...
    mirrorsym._errors.DomainError: w = -1.0 is outside dom R (grad Q > 0 down to mu = -1.07e+301)
    """
    s, lo, hi = mpf(s), mpf(lo), mpf(hi)
    if not lo < 0 < hi:
        raise ValueError(f"U = ({lo}, {hi}) must contain 0")
    if mp.isnan(s):
        raise DomainError("w = nan is outside dom R")
    g0 = _real(g, mpf(0))
    if g0 is None:
        raise ValueError("g(0) is not a finite real number, but 0 must lie in U")
    if g0 == s:
        return mpf(0)
    sign = 1 if s > g0 else -1
    end = hi if sign > 0 else lo
    inner, g_inner = mpf(0), g0
    for t in _probes(end):
        gt = _real(g, t)
        if gt is None or sign * (gt - s) > 0:
            outer, g_outer = t, gt
            break
        inner, g_inner = t, gt
    else:
        rel = "<" if sign > 0 else ">"
        where = "up to" if sign > 0 else "down to"
        raise DomainError(
            f"w = {mp.nstr(s, 17)} is outside dom R "
            f"(grad Q {rel} {float(g_inner):.3g} {where} mu = {float(inner):.3g})"
        )
    if g_inner == s:
        return inner
    a, b = (inner, outer) if sign > 0 else (outer, inner)
    # Start from the outer point: beyond the root, Newton approaches a blow-up monotonically;
    # but a root near 0, where g is nearly linear, is one Newton step from 0.
    x = outer if g_outer is not None else inner
    slope0 = _real(dg, mpf(0))
    if slope0:
        first = (s - g0) / slope0
        if a < first < b and abs(first) < (b - a) / 4:
            x = first
    tol = mpf(10) ** (2 - mp.dps)
    floor = mpf(2) ** (-4 * mp.prec)  # relative accuracy also for roots of size 1e-100
    dx = dx_old = b - a
    # Terminates: a Newton step at most halves the step before last, a bisection halves the bracket.
    while True:
        gx = _real(g, x)
        if gx == s:
            return x
        if (sign > 0) if gx is None else gx > s:  # a failed evaluation is beyond the root
            b = x
        else:
            a = x
        slope = _real(dg, x) if gx is not None else None
        step = (gx - s) / slope if slope else None
        if step is not None and a < x - step < b and 2 * abs(step) <= abs(dx_old):
            x_new = x - step
        else:
            x_new = a + (b - a) / 2
        dx_old, dx = dx, x - x_new
        if abs(dx) <= tol * abs(x_new) + floor:
            return x_new
        x = x_new


def _dot(u, v) -> mpf:
    return mp.fdot([u[i] for i in range(len(u))], [v[i] for i in range(len(v))])


def _max_abs(u) -> mpf:
    return max(abs(u[i]) for i in range(len(u)))


def _objective(Q: Callable, grad: Callable, mu, w) -> tuple | None:
    """(f(mu), |Q(mu)| + |<mu, w>| (the magnitude f is rounded at), grad Q(mu), grad f(mu)), or None
    where Q or grad Q fails."""
    q = _real(Q, mu)
    try:
        g = mp.matrix(grad(mu))
    except (ArithmeticError, ValueError):
        return None
    if q is None or not all(mp.isfinite(g[i]) for i in range(len(g))):
        return None
    m = _dot(mu, w)
    return q - m, abs(q) + abs(m), g, g - w


def _direction_mp(H, r, cap) -> mp.matrix:
    """The Newton step -H^-1 r; where H is not numerically positive definite (one term of Q dwarfs the
    others), the step with the eigenvalues of H floored at d eps times the largest, still a descent
    direction; -r scaled to length ``cap`` where H vanishes (underflow)."""
    d = r.rows
    try:
        p = -mp.lu_solve(H, r)
        if all(mp.isfinite(p[i]) for i in range(d)) and (-_dot(r, p) > 0 or not _max_abs(r)):
            return p
    except ZeroDivisionError:
        pass
    E, V = mp.eigsy((H + H.T) / 2)
    top = max(abs(E[i]) for i in range(d))
    if not top > 0:
        size = _max_abs(r)
        return -r * (cap / size) if size else r
    floor = d * mp.eps * top
    c = V.T * r
    return -(V * mp.matrix([c[i] / max(E[i], floor) for i in range(d)]))


def convex_newton_mp(
    Q: Callable,
    grad: Callable,
    hess: Callable,
    w: Sequence,
    mu0: Sequence | None = None,
    inside: Callable | None = None,
) -> mp.matrix:
    """The minimiser mu of Q(mu) - <mu, w> over U, i.e. (grad Q)^-1(w), by damped Newton in mpmath.

    Q, grad and hess take mu as a d x 1 ``mp.matrix`` and return an mpf, a length-d list or matrix,
    and a d x d matrix. ``inside(mu)`` says whether mu lies in the open convex set U (None: U = R^d);
    the iteration never evaluates Q, grad or hess outside U. mu0 (default 0) must lie in U. Returns
    mu as a d x 1 matrix, accurate to about 10**(2 - dps) * ||mu|| when hess Q is well conditioned
    (ill conditioning costs digits: mu is then as accurate as the arithmetic allows), also next to
    w0 = grad Q(0) when grad evaluates at the working precision (the last residuals are taken at
    twice the precision). Raises DomainError when the iteration fails, i.e. w is outside dom R.

    >>> from mpmath import exp
    >>> Q = lambda m: (exp(m[0]) - 1) + (exp(2 * m[1]) - 1) / 2
    >>> mu = convex_newton_mp(Q, lambda m: [exp(m[0]), exp(2 * m[1])],
    ...                       lambda m: mp.diag([exp(m[0]), 2 * exp(2 * m[1])]), [2, 3])
    >>> print(mp.nstr(mu.T, 10))
    [0.6931471806  0.5493061443]
    """
    w = mp.matrix([mpf(v) for v in w])
    mu = mp.matrix(w.rows, 1) if mu0 is None else mp.matrix([mpf(v) for v in mu0])
    if inside is not None and not inside(mu):
        raise DomainError(f"mu0 = {mp.nstr(mu.T, 5)} is outside U")
    label = f"w = [{', '.join(mp.nstr(v, 17) for v in w)}] is outside dom R"
    tol = mpf(10) ** (2 - mp.dps)
    loose, flat = mp.sqrt(tol), mp.eps**0.25
    start = _objective(Q, grad, mu, w)
    if start is None:
        raise DomainError(f"Q or grad Q fails at mu0 = {mp.nstr(mu.T, 5)}, which must lie in U")
    f, f_scale, g, r = start
    prev = mpf(0)  # the last step, if it was a full Newton step
    cap = mpf(1)  # the trust radius: the longest step tried
    w_size = _max_abs(w)

    def accept(new, t) -> bool:
        """f decreased measurably (Armijo), or the Newton correction from the old hess shrank
        (Deuflhard's natural monotonicity test: it needs only grad Q, where differences of f are
        rounding noise, e.g. next to w0 or for tiny w, where Q(mu) is nearly constant)."""
        if new is None:
            return False
        if new[0] <= f - _ARMIJO * t * lam and new[0] < f - 16 * mp.eps * (new[1] + f_scale):
            return True
        return _max_abs(_direction_mp(H, new[3], cap)) <= (1 - min(t * tau, 1) / 4) * size

    for _ in range(200):
        try:
            H = mp.matrix(hess(mu))
        except (ArithmeticError, ValueError):
            raise DomainError(f"{label} (hess Q fails at mu = {mp.nstr(mu.T, 5)})") from None
        p = _direction_mp(H, r, cap)
        lam2 = -_dot(r, p)
        size, scale = _max_abs(p), _max_abs(mu)
        # r is rounding noise, and so is p (a large p: mu runs off along a direction in which f
        # flattens out, as for w on the boundary of dom R)
        r_size, r_noise = _max_abs(r), 8 * mp.eps * (_max_abs(g) + w_size)
        quiet = r_size <= r_noise and size <= flat * max(1, scale)
        noise = quiet or size <= loose * scale
        converged = size <= tol * scale or size**3 <= tol * scale * prev**2
        if converged or quiet or (noise and 0 < prev < 2 * size):
            if inside is None or inside(mu + p):
                mu = mu + p
            # no polish where the rounding of r moves p by less than tol |mu| (mu is then exact)
            exact = converged and size * r_noise <= tol * scale * r_size
            return _polish_mp(grad, hess, inside, w, mu, tol, label, H, polish=not exact)
        tau = min(mpf(1), cap / size)
        s, lam = tau * p, tau * lam2
        t, base = mpf(1), mu
        while True:
            trial = base + t * s
            new = _objective(Q, grad, trial, w) if inside is None or inside(trial) else None
            if accept(new, t):
                break
            t /= 2
            if t * tau * size <= tol * scale or t < mpf(2) ** -60:
                if noise:  # no measurable descent along a tiny step: rounding noise
                    return _polish_mp(grad, hess, inside, w, mu, tol, label, H)
                raise DomainError(f"{label} (no descent from mu = {mp.nstr(mu.T, 5)})")
        mu, (f, f_scale, g, r) = trial, new
        grow = 1
        # Along exp(mu) from above a full Newton step covers about 1: double it while f decreases
        # (the slope along s stays negative)
        if t == 1 and tau == 1 and _dot(s, r) < -lam / 8:
            for _k in range(60):
                if 2 * grow * size > max(cap, 4 * size):  # up to 4 times or the trust radius
                    break
                trial = base + 2 * grow * s
                new = _objective(Q, grad, trial, w) if inside is None or inside(trial) else None
                if not accept(new, 2 * grow) or _dot(s, new[3]) > 0:
                    break
                grow *= 2
                mu, (f, f_scale, g, r) = trial, new
                if not _dot(s, r) < 0:
                    break
        taken = t * grow * tau * size
        prev = size if t == 1 and grow == 1 and tau == 1 else mpf(0)
        cap = max(cap, 2 * taken) if t == 1 else max(2 * taken, cap / 4)
        if _max_abs(mu) > _MU_MAX:
            raise DomainError(f"{label} (mu runs off to infinity)")
    raise DomainError(f"{label} (damped Newton did not converge in 200 steps)")


def _polish_mp(grad, hess, inside, w, mu, tol, label, H, polish=True) -> mp.matrix:
    """mu, after Newton steps with grad Q(mu) - w evaluated at twice the precision (``polish``; each
    kept only if it lowers that residual): next to w0 = grad Q(0) the difference cancels, and at the
    working precision it fixes mu only to about eps |w0| / |hess Q|, not relative to |mu|.

    Where hess Q (H, taken at the last iterate) is numerically singular, f is flat to rounding along a
    line: w lies on the boundary of dom R to working precision, and that raises DomainError."""
    if all(mp.isfinite(v) for v in H):
        E = mp.eigsy((H + H.T) / 2, eigvals_only=True)
        if not min(E) > H.rows * mp.eps * max(abs(v) for v in E):
            raise DomainError(f"{label} (hess Q is singular at the solution mu = {mp.nstr(mu.T, 5)} to working "
                              "precision: w is on the edge of dom R, or grad R is not determined there)")
    if not polish:
        return mu

    def residual(m):
        try:
            with mp.workprec(2 * mp.prec):
                g = mp.matrix(grad(m))
                res = mp.matrix([g[i] - w[i] for i in range(w.rows)])
        except (ArithmeticError, ValueError):
            return None
        return res if all(mp.isfinite(res[i]) for i in range(res.rows)) else None

    res = residual(mu)
    for _ in range(3):
        if res is None or not _max_abs(res):
            break
        try:
            p = _direction_mp(mp.matrix(hess(mu)), res, mpf(0))
        except (ArithmeticError, ValueError):
            break
        trial = mu + p
        if inside is not None and not inside(trial):
            break
        new = residual(trial)
        if new is None or not _max_abs(new) < _max_abs(res):
            break
        mu, res = trial, new
        if _max_abs(p) <= tol * _max_abs(mu):
            break
    return mu


#: Source of ``_scalar_inverse`` and ``_convex_newton``, the float64 numpy versions of the solvers
#: above, vectorised over batches; pasted verbatim into generated modules after ``import numpy as np``
#: (the only name they use from the enclosing module).
NUMPY_SOLVER_SOURCE = '''
def _scalar_inverse(g, dg, s, lo, hi):
    """nu in (lo, hi) with g(nu) = s, elementwise; g increasing, dg = g'.

    s is an array of any shape, g and dg are vectorised, lo < 0 < hi may be
    infinite. Bracket from probes 0, +-1, +-2, ... (up to half a finite end
    e, then e (1 - 2**-k)); then safeguarded Newton: a Newton step is kept
    only if it stays in the bracket and at most halves the step before
    last, else bisect. NaN gives NaN; an s outside the image of g (as far as
    float64 resolves nu) raises ValueError.
    """
    if not lo < 0 < hi:
        raise ValueError(f"U = ({lo}, {hi}) must contain 0")
    s = np.asarray(s, dtype=float)
    flat = s.ravel()
    nu = np.full(flat.shape, np.nan)
    eps, tiny = np.finfo(float).eps, np.finfo(float).tiny
    with np.errstate(all="ignore"):
        g0 = g(np.zeros(1))[0]
        if not np.isfinite(g0):
            raise ValueError("g(0) is not finite, but 0 must lie in U")
        nu[flat == g0] = 0.0
        i, a, b, x, side, bad, image = [], [], [], [], [], [], []
        # Side +1 heads for hi, side -1 for lo; sign * g(sign * tau) grows
        # along the probes tau, and a non-finite value is beyond every s.
        for sign, end in ((-1.0, -lo), (1.0, hi)):
            tau = 2.0 ** np.arange(1024)
            if np.isfinite(end):
                near = end - end * 2.0 ** -np.arange(1.0, 64.0)
                tau = np.concatenate((tau[tau < end / 2], near[near < end]))
            raw = sign * g(sign * tau)
            fin = np.isfinite(raw)
            table = np.maximum.accumulate(np.where(fin, raw, np.inf))
            image.append(sign * table[-1])
            j = np.flatnonzero(sign * flat > sign * g0)
            k = np.searchsorted(table, sign * flat[j], side="right")
            bad.append(j[k == tau.size])
            j, k = j[k < tau.size], k[k < tau.size]
            inner = sign * np.concatenate(([0.0], tau))[k]
            outer = sign * tau[k]
            i.append(j)
            a.append(np.minimum(inner, outer))
            b.append(np.maximum(inner, outer))
            # Start beyond the root: there Newton approaches a blow-up
            # monotonically.
            x.append(np.where(fin[k], outer, inner))
            side.append(np.full(j.size, sign))
        bad = np.concatenate(bad)
        if bad.size:
            raise ValueError(
                f"w = {float(flat[bad.min()])!r} is outside dom R (the image"
                f" of grad Q is ({image[0]:.6g}, {image[1]:.6g}))")
        i, a, b, x, side = (np.concatenate(v) for v in (i, a, b, x, side))
        ss = flat[i]
        # Near 0 g is nearly linear: one Newton step from 0 lands close to
        # the root, where bisection from the far end would need ~1000
        # halvings to reach a root of size 1e-300.
        dg0 = dg(np.zeros(1))[0]
        first = (ss - g0) / dg0
        near0 = (first > a) & (first < b) & (np.abs(first) < (b - a) / 4)
        x = np.where(near0, first, x)
        dx = b - a
        dx_old = dx
        # the Newton step last computed at each end of the bracket (none yet)
        step_a = np.full(x.shape, np.nan)
        step_b = np.full(x.shape, np.nan)
        for _ in range(100):
            f = g(x) - ss
            above = np.where(np.isfinite(f), f > 0, side > 0)
            step = f / dg(x)
            b, step_b = np.where(above, x, b), np.where(above, step, step_b)
            a, step_a = np.where(above, a, x), np.where(above, step_a, step)
            newton = x - step
            take = ((newton > a) & (newton < b)
                    & (2 * np.abs(step) <= np.abs(dx_old)))
            # A convex or concave g makes Newton overshoot from one side of
            # the root and approach it monotonically from the other: when
            # the step from x leaves the bracket, step from its other end.
            from_b, from_a = b - step_b, a - step_a
            x_new = np.where(
                take, newton,
                np.where((from_b > a) & (from_b < b), from_b,
                         np.where((from_a > a) & (from_a < b), from_a,
                                  a + (b - a) / 2)))
            # a Newton correction below rounding is convergence, even when
            # x - step rounds back to the bracket end x itself
            settled = (f == 0) | (np.abs(step) <= 4 * eps * np.abs(x) + tiny)
            x_new = np.where(settled, x, x_new)
            dx_old, dx = dx, x - x_new
            done = settled | (np.abs(dx) <= 4 * eps * np.abs(x_new) + tiny)
            nu[i[done]] = x_new[done]
            keep = ~done
            i, ss, a, b, side = i[keep], ss[keep], a[keep], b[keep], side[keep]
            x, dx, dx_old = x_new[keep], dx[keep], dx_old[keep]
            step_a, step_b = step_a[keep], step_b[keep]
            if not i.size:
                break
        # Still unconverged after 100 steps: only noise in g keeps the
        # bracketed iterate from meeting the relative test.
        nu[i] = x
    return nu.reshape(s.shape)


def _convex_newton(Q, grad, hess, w, inside=None, w0=None, value=False):
    """mu minimising Q(mu) - <mu, w> by damped Newton from 0, per row of w.

    w has shape (..., d); Q, grad, hess map a batch mu of shape (n, d) to
    shapes (n,), (n, d), (n, d, d); inside(mu) -> bool (n,) says whether mu
    lies in U (None: U = R^d); Q, grad, hess are evaluated inside U only.
    Steps are capped by a trust radius (from 1, doubled while the cap
    binds): the Newton step from 0 towards |w| = 1e100 is 1e100 long.
    Backtracking halves a step until mu stays in U and f decreases
    measurably (Armijo) or the Newton correction from the old hess shrinks
    (Deuflhard's natural monotonicity test, for where differences of f are
    rounding noise); a full step that falls short along its line (exp from
    above) is doubled while f decreases. Where hess Q is not numerically
    positive definite its eigenvalues are floored at d eps times the
    largest; singular at the solution, it means w is on the edge of dom R
    to float precision.
    Next to w0 = grad Q(0), grad Q(mu) - w cancels: there mu takes a last
    Newton step with the residual int_0^1 hess Q(t mu) dt mu - (w - w0)
    (Gauss-Legendre), w0 given as a pair (hi, lo) with w0 = hi + lo to
    twice float precision (None: grad(0)). value=True returns (mu, R) with
    R = <mu, w> - Q(mu) (Q(0) = 0), near w0 computed as
    <mu, w - w0> - int_0^1 (1 - t) <mu, hess Q(t mu) mu> dt.
    Rows of w with NaN give NaN; a row for which the iteration fails (w
    outside dom R) raises ValueError.
    """
    w = np.asarray(w, dtype=float)
    d = w.shape[-1]
    rows = w.reshape(-1, d)
    mu = np.full(rows.shape, np.nan)
    todo = np.flatnonzero(~np.isnan(rows).any(axis=1))
    eps = np.finfo(float).eps
    tol, loose, flat, c = 4 * eps, np.sqrt(4 * eps), eps**0.25, 0.1

    def fail(j, why):
        raise ValueError(
            f"w = {rows[j].tolist()} is outside dom R ({why})")

    # Reductions over the short last axis, column by column (faster).
    def amax(v):
        m = np.abs(v[..., 0])
        for k in range(1, v.shape[-1]):
            m = np.maximum(m, np.abs(v[..., k]))
        return m

    def dot(u, v):
        return np.einsum("...i,...i->...", u, v)

    def finite(v):  # rows without inf or nan: 0 * inf is nan
        return np.isfinite(dot(v, 0 * v))

    def in_u(x):
        ok = finite(x)
        return ok if inside is None else ok & inside(x)

    def apply(m, v):
        return np.einsum("nij,nj->ni", m, v)

    def newton(h, r, cap):
        # (-M r, M): M = h^-1 where h is numerically positive definite;
        # else h's eigenvalues floored at d eps times the largest (still a
        # descent direction), or (cap / |r|) I where h vanishes (underflow)
        n = r.shape[0]
        hinv = np.full((n, d, d), np.nan)
        pd = finite(h.reshape(n, -1))
        if pd.any():
            pd[pd] = np.linalg.slogdet(h[pd])[0] > 0
        if pd.any():
            hinv[pd] = np.linalg.inv(h[pd])
        p = -apply(hinv, r)
        bad = ~(finite(p) & ((dot(r, p) < 0) | (amax(r) == 0)))
        if bad.any():
            hb = h[bad]
            hb = np.where(np.isfinite(hb), hb, 0.0)
            ev, vec = np.linalg.eigh((hb + np.swapaxes(hb, -1, -2)) / 2)
            top = amax(ev)
            ev = np.maximum(ev, d * eps * top[:, None])
            mb = (vec / ev[:, None, :]) @ np.swapaxes(vec, -1, -2)
            gone = ~((top > 0) & finite(mb.reshape(-1, d * d)))
            size = amax(r[bad][gone])
            mb[gone] = np.eye(d) * np.where(
                size > 0, cap[bad][gone] / size, 0.0)[:, None, None]
            hinv[bad] = mb
            p[bad] = -apply(mb, r[bad])
        return p, hinv

    def trial(j, xt):
        # (f, |Q| + |<mu, w>|, grad Q, grad f) at the points xt of rows j
        qt, gt = Q(xt), grad(xt)
        mt = dot(xt, ww[j])
        return qt - mt, np.abs(qt) + np.abs(mt), gt, gt - ww[j]

    def test(j, xt, t):
        # trial values at xt (rows j, with this iteration's hinv, s, ...),
        # and whether f decreased measurably (Armijo) or the Newton
        # correction from the old hess shrank (Deuflhard: grad only, for
        # where differences of f are rounding noise)
        ft, st_, gt, rt = trial(j, xt)
        fin = np.isfinite(ft) & finite(rt)
        bar = amax(apply(hinv[j], np.where(fin[:, None], rt, 0.0)))
        good = fin & (((ft <= fx[j] - c * t * lam[j])
                       & (ft < fx[j] - 16 * eps * (st_ + fs[j])))
                      | (bar <= (1 - np.minimum(t * tau[j], 1) / 4)
                         * size[j]))
        return good, ft, st_, gt, rt, dot(s[j], rt)

    def take(a, good, xt, ft, st_, gt, rt, sl):
        x[a], fx[a], fs[a] = xt[good], ft[good], st_[good]
        gx[a], r[a], slope[a] = gt[good], rt[good], sl[good]

    with np.errstate(all="ignore"):
        z = np.zeros((1, d))
        q0, g0, h0 = Q(z)[0], grad(z)[0], hess(z)[0]
        if w0 is None:
            hi, lo = g0, np.zeros(d)
        elif isinstance(w0, tuple):
            hi, lo = (np.asarray(v, dtype=float) for v in w0)
        else:
            hi, lo = np.asarray(w0, dtype=float), np.zeros(d)
        ww = rows[todo]
        n = todo.size
        x = np.zeros_like(ww)
        fx, fs = np.full(n, q0), np.full(n, abs(q0))
        gx = np.repeat(g0[None], n, axis=0)
        r = gx - ww
        cap = np.ones(n)  # the trust radius
        prev = np.zeros(n)  # the last step, if it was a full one
        settled = np.zeros(n, dtype=bool)  # no descent: noise
        for _ in range(100):
            if not todo.size:
                break
            p, hinv = newton(hess(x), r, cap)
            lam2 = -dot(r, p)
            size, scale = amax(p), amax(x)
            # r is rounding noise, and so is p (a large p: mu runs off along
            # a direction in which f flattens, as for w on the edge of dom R)
            quiet = ((amax(r) <= 8 * eps * (amax(gx) + amax(ww)))
                     & (size <= flat * np.maximum(1.0, scale)))
            noise = quiet | (size <= loose * scale)
            done = (settled | quiet | (size <= tol * scale)
                    | (size**3 <= eps / 4 * scale * prev**2)
                    | (noise & (prev > 0) & (size > prev / 2)))
            y = x[done] + np.where(settled[done, None], 0.0, p[done])
            mu[todo[done]] = np.where(in_u(y)[:, None], y, x[done])
            keep = ~done
            (todo, ww, x, fx, fs, gx, r, hinv, p, lam2, size, scale, noise,
             cap) = (v[keep] for v in
                     (todo, ww, x, fx, fs, gx, r, hinv, p, lam2, size, scale,
                      noise, cap))
            n = todo.size
            if not n:
                break
            tau = np.minimum(1.0, cap / size)
            s, lam = p * tau[:, None], tau * lam2
            base = x.copy()
            # Backtracking, per row: halve t until mu + t s lies in U and
            # passes the test.
            t, slope = np.ones(n), np.zeros(n)
            settled = np.zeros(n, dtype=bool)
            pend = np.arange(n)
            while pend.size:
                xt = base[pend] + t[pend, None] * s[pend]
                ok = in_u(xt)  # Q and grad are evaluated inside U only
                xt, j = xt[ok], pend[ok]
                good, *vals = test(j, xt, t[j])
                take(j[good], good, xt, *vals)
                ok[ok] = good
                pend = pend[~ok]
                t[pend] /= 2
                tp = t[pend]
                stuck = ((tp * tau[pend] * size[pend] <= tol * scale[pend])
                         | (tp < 2.0**-60))
                if not noise[pend[stuck]].all():
                    fail(todo[pend[stuck & ~noise[pend]][0]],
                         "the line search finds no descent")
                settled[pend[stuck]] = True
                pend = pend[~stuck]
            # From above, along exp, a full Newton step covers about 1:
            # double it while f decreases (the slope along s stays < 0),
            # up to 4 times or the trust radius.
            grow = np.ones(n)
            ext = np.flatnonzero((t == 1) & (tau == 1) & (slope < -lam / 8))
            reach = np.maximum(cap, 4 * size)
            for _ in range(60):
                ext = ext[2 * grow[ext] * size[ext] <= reach[ext]]
                if not ext.size:
                    break
                xt = base[ext] + 2 * grow[ext, None] * s[ext]
                ok = in_u(xt)
                ext, xt = ext[ok], xt[ok]
                good, *vals = test(ext, xt, 2 * grow[ext])
                good &= vals[-1] <= 0
                take(ext[good], good, xt, *vals)
                ext, sl = ext[good], vals[-1][good]
                grow[ext] *= 2
                ext = ext[sl < 0]
            taken = t * grow * tau * size
            prev = np.where((t == 1) & (grow == 1) & (tau == 1), size, 0.0)
            cap = np.where(t == 1, np.maximum(cap, 2 * taken),
                           np.maximum(2 * taken, cap / 4))
            far = amax(x) > 1e6
            if far.any():
                fail(todo[far][0], "mu runs off to infinity")
        if todo.size:
            fail(todo[0], "damped Newton did not converge in 100 steps")

        # int_0^1 hess Q(t m) m dt and int_0^1 (1 - t) <m, hess Q(t m) m> dt
        # by 8-point Gauss-Legendre, exact to rounding where hess Q stays
        # within half of hess Q(0) on [0, m] ("near")
        tq, wq = np.polynomial.legendre.leggauss(8)
        tq, wq = (tq + 1) / 2, wq / 2
        h0_size = np.abs(h0).max()

        def integrals(m):
            hv = apply(hess((tq[:, None, None] * m).reshape(-1, d)),
                       np.tile(m, (tq.size, 1))).reshape(tq.size, -1, d)
            return (np.tensordot(wq, hv, 1),
                    np.tensordot(wq * (1 - tq), dot(hv, m), 1))

        def near(m):
            hm = hess(m)
            return amax((hm - h0).reshape(m.shape[0], -1)) <= h0_size / 2, hm

        j = np.flatnonzero(finite(mu))
        if j.size:
            # hess Q singular at the solution: f is flat to rounding along a
            # line, w lies on the edge of dom R to float precision
            ok, hm = near(mu[j])
            fin = finite(hm.reshape(j.size, -1))
            ev = np.linalg.eigvalsh(
                np.where(fin[:, None, None], hm, np.eye(d)))
            edge = fin & ~(ev[:, 0] > d * eps * amax(ev))
            if edge.any():
                fail(j[edge][0], "hess Q is singular at the solution to float"
                     " precision: w is on the edge of dom R, or grad R is not"
                     " determined there in float64")
            # Next to w0, one more Newton step, with the residual in the
            # integral form (checked against grad Q(mu) - grad Q(0)).
            j, hm = j[ok], hm[ok]
            if j.size:
                y = mu[j]
                dq, gm = integrals(y)[0], grad(y)
                ok = (amax(dq - (gm - g0))
                      <= 64 * eps * (amax(gm) + np.abs(g0).max()))
                j, y = j[ok], y[ok]
                if j.size:
                    y = y + newton(hm[ok], dq[ok] - ((rows[j] - hi) - lo),
                                   np.zeros(j.size))[0]
                    ok = in_u(y)
                    mu[j[ok]] = y[ok]
        if not value:
            return mu.reshape(w.shape)
        R = np.full(rows.shape[0], np.nan)
        j = np.flatnonzero(finite(mu))
        if j.size:
            y = mu[j]
            qm = Q(y)
            R[j] = dot(y, rows[j]) - qm
            ok = near(y)[0]
            j, y, qm = j[ok], y[ok], qm[ok]
        if j.size:
            b = integrals(y)[1]
            m0 = dot(y, hi)
            ok = (np.abs(b - (qm - m0 - dot(y, lo)))
                  <= 64 * eps * (np.abs(qm) + dot(np.abs(y), np.abs(hi))))
            R[j[ok]] = dot(y[ok], (rows[j[ok]] - hi) - lo) - b[ok]
    return mu.reshape(w.shape), R.reshape(w.shape[:-1])
'''


def solver_source() -> str:
    """:data:`NUMPY_SOLVER_SOURCE`, the numpy solvers to paste into a generated module."""
    return NUMPY_SOLVER_SOURCE
