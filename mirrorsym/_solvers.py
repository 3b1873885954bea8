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
and squared Newton decrement lam2 = -<grad f, p> > 0. Backtracking halves t until mu + t p lies in U
and either Armijo holds, f(mu + t p) <= f(mu) - c t lam2 with c = 0.1, or its gradient form
<p, grad f(mu + t p)> <= (1 - 2c) lam2 (the two agree for quadratic f; the gradient form still works
near the solution, where differences of f are rounding noise: Q - <mu, w> cancels).

**Stopping.** With ||.|| the max norm, scale = max(1, ||mu||), eps the unit roundoff and tol =
10**(2 - dps) (mpmath) or 4 eps (numpy): the scalar solver stops when its step is below
tol * max(1, |nu|) (mpmath; this always happens) or 4 eps |nu| (numpy, relative even near 0; after
100 steps, when noise in g prevents that, the bracketed iterate is returned). The joint solver
returns mu + p, p the Newton step, once

* ||p|| <= tol * scale; or
* ||p||**3 / ||p_prev||**2 <= tol * scale, p_prev the previous step if it was a full one: the error
  left after p, as predicted by quadratic convergence; or
* lam2 <= eps (|Q(mu)| + |<mu, w>|) and ||p|| <= eps**(1/4) * scale: f cannot decrease
  measurably any more (the bound on p tells this from mu running off along a direction in which f
  flattens out, as it does for w on the boundary of dom R); or
* ||p|| <= sqrt(tol) * scale and p does not halve a full p_prev (or no descent is found along it).

The last two stop at the noise floor of an ill-conditioned hess Q, where mu is as accurate as the
arithmetic allows (about eps * cond(hess Q)). A joint iteration that does not converge (200
mpmath / 100 numpy steps), finds no descent along a larger step, or whose mu runs beyond
||mu|| = 1e6 (f unbounded below) means that w is outside dom R.
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


def _objective(Q: Callable, grad: Callable, mu, w) -> tuple[mpf, mpf, mp.matrix] | None:
    """(f(mu), |Q(mu)| + |<mu, w>| (the magnitude f is rounded at), grad f(mu)), or None if Q fails."""
    q = _real(Q, mu)
    try:
        r = mp.matrix(grad(mu)) - w
    except (ArithmeticError, ValueError):
        return None
    if q is None or not all(mp.isfinite(r[i]) for i in range(len(r))):
        return None
    m = _dot(mu, w)
    return q - m, abs(q) + abs(m), r


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
    mu as a d x 1 matrix, accurate to about 10**(2 - dps) * max(1, ||mu||) when hess Q is well
    conditioned (ill conditioning costs digits: mu is then as accurate as the arithmetic allows).
    Raises DomainError when the iteration fails, i.e. w is outside dom R.

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
    f, f_scale, r = start
    prev = mpf(0)  # the last step, if it was a full Newton step
    for _ in range(200):
        try:
            p = -mp.lu_solve(mp.matrix(hess(mu)), r)
        except ZeroDivisionError:
            raise DomainError(f"{label} (hess Q is singular at mu = {mp.nstr(mu.T, 5)})") from None
        lam2 = -_dot(r, p)
        size, scale = _max_abs(p), max(1, _max_abs(mu))
        noise = size <= loose * scale
        if (
            size <= tol * scale
            or size**3 <= tol * scale * prev**2
            or (abs(lam2) <= mp.eps * f_scale and size <= flat * scale)
            or (noise and 0 < prev < 2 * size)
        ):
            return mu + p if inside is None or inside(mu + p) else mu
        if not lam2 > 0:
            raise DomainError(f"{label} (hess Q is not positive definite at mu = {mp.nstr(mu.T, 5)})")
        t = mpf(1)
        while True:
            trial = mu + t * p
            new = _objective(Q, grad, trial, w) if inside is None or inside(trial) else None
            if new is not None and (
                new[0] <= f - _ARMIJO * t * lam2 or _dot(p, new[2]) <= (1 - 2 * _ARMIJO) * lam2
            ):
                break
            t /= 2
            if t * size <= tol * scale:
                if noise:  # no measurable descent along a tiny step: rounding noise
                    return mu
                raise DomainError(f"{label} (no descent from mu = {mp.nstr(mu.T, 5)})")
        mu, (f, f_scale, r), prev = trial, new, size if t == 1 else mpf(0)
        if _max_abs(mu) > _MU_MAX:
            raise DomainError(f"{label} (mu runs off to infinity)")
    raise DomainError(f"{label} (damped Newton did not converge in 200 steps)")


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


def _convex_newton(Q, grad, hess, w, inside=None):
    """mu minimising Q(mu) - <mu, w> by damped Newton from 0, per row of w.

    w has shape (..., d); Q, grad, hess map a batch mu of shape (n, d) to
    shapes (n,), (n, d), (n, d, d); inside(mu) -> bool (n,) says whether mu
    lies in U (None: U = R^d); Q, grad, hess are evaluated inside U only.
    Backtracking halves the step until mu stays in U and Armijo holds (or
    its gradient form, immune to cancellation in f).
    Rows of w with NaN give NaN; a row for which the iteration fails (w
    outside dom R) raises ValueError.
    """
    w = np.asarray(w, dtype=float)
    rows = w.reshape(-1, w.shape[-1])
    mu = np.full(rows.shape, np.nan)
    todo = np.flatnonzero(~np.isnan(rows).any(axis=1))
    eps = np.finfo(float).eps
    tol = 4 * eps
    loose, flat = np.sqrt(tol), eps**0.25
    c = 0.1

    def fail(j, why):
        raise ValueError(
            f"w = {rows[j].tolist()} is outside dom R ({why})")

    def in_u(x):
        ok = np.isfinite(x).all(axis=-1)
        return ok if inside is None else ok & inside(x)

    with np.errstate(all="ignore"):
        ww = rows[todo]
        x = np.zeros_like(ww)
        fx = Q(x)  # f(0) = Q(0)
        fs = np.abs(fx)  # |Q| + |<mu, w>|, the magnitude f is rounded at
        r = grad(x) - ww
        prev = np.zeros(todo.size)  # the last step, if it was a full one
        settled = np.zeros(todo.size, dtype=bool)  # no descent: noise
        for _ in range(100):
            if not todo.size:
                break
            h = hess(x)
            pd = np.linalg.slogdet(h)[0] > 0
            if not pd.all():
                fail(todo[~pd][0], "hess Q is singular or indefinite")
            p = -np.linalg.solve(h, r[..., None])[..., 0]
            lam2 = -(r * p).sum(axis=-1)
            size = np.abs(p).max(axis=-1)
            scale = np.maximum(1.0, np.abs(x).max(axis=-1))
            noise = size <= loose * scale
            done = (settled | (size <= tol * scale)
                    | (size**3 <= tol * scale * prev**2)
                    | ((np.abs(lam2) <= eps * fs) & (size <= flat * scale))
                    | (noise & (prev > 0) & (size > prev / 2)))
            y = x[done] + p[done]
            mu[todo[done]] = np.where(in_u(y)[:, None], y, x[done])
            keep = ~done
            todo, ww, x, fx, fs, r, p, lam2, size, scale, noise = (
                v[keep] for v in
                (todo, ww, x, fx, fs, r, p, lam2, size, scale, noise))
            descent = (lam2 > 0) & np.isfinite(size)
            if not descent.all():
                fail(todo[~descent][0], "hess Q is not positive definite")
            # Backtracking, per row: halve t where mu + t p leaves U or
            # neither Armijo nor its gradient form holds.
            t = np.ones(todo.size)
            settled = np.zeros(todo.size, dtype=bool)
            pend = np.arange(todo.size)
            while pend.size:
                xt = x[pend] + t[pend, None] * p[pend]
                ok = in_u(xt)  # Q and grad are evaluated inside U only
                xt, j = xt[ok], pend[ok]
                qt = Q(xt)
                mt = (xt * ww[j]).sum(axis=-1)
                rt = grad(xt) - ww[j]
                good = (np.isfinite(qt) & np.isfinite(rt).all(axis=-1)
                        & ((qt - mt <= fx[j] - c * t[j] * lam2[j])
                           | ((p[j] * rt).sum(axis=-1)
                              <= (1 - 2 * c) * lam2[j])))
                ok[ok] = good
                acc = j[good]
                x[acc], fx[acc], r[acc] = xt[good], (qt - mt)[good], rt[good]
                fs[acc] = (np.abs(qt) + np.abs(mt))[good]
                pend = pend[~ok]
                t[pend] /= 2
                stuck = t[pend] * size[pend] <= tol * scale[pend]
                if not noise[pend[stuck]].all():
                    fail(todo[pend[stuck & ~noise[pend]][0]],
                         "the line search finds no descent")
                settled[pend[stuck]] = True
                pend = pend[~stuck]
            prev = np.where(t == 1, size, 0.0)
            far = np.abs(x).max(axis=-1) > 1e6
            if far.any():
                fail(todo[far][0], "mu runs off to infinity")
        if todo.size:
            fail(todo[0], "damped Newton did not converge in 100 steps")
    return mu.reshape(w.shape)
'''


def solver_source() -> str:
    """:data:`NUMPY_SOLVER_SOURCE`, the numpy solvers to paste into a generated module."""
    return NUMPY_SOLVER_SOURCE
