"""Time the generated-module numpy solvers on 10**5 points: the scalar Legendre inverse (depth-3
Woodworth) and the joint damped Newton (quadratic-generic).

Scalar: g(nu) = (k - 3 nu)**-3 - (k + 3 nu)**-3 with k = 1/alpha, alpha = 0.7, on U = (-k/3, k/3)
(literature L5); the points s = g(nu) for uniform random nu in U. Target: under 0.5 s.

Joint: Q(mu) = sum_k b_k (exp(2 <lam_k, mu>) - 1), b = (529, 961, 841)/8100, lam = (-1, 1), (1, 2),
(2, -1) (literature L6, the shipped quadratic-generic), on three sets of w = grad Q(mu): |mu| <= 1;
w0 + delta |w0| u with delta log-uniform in 1e-15..1e-3 (w0 = grad Q(0), passed to twice float
precision as the exporter does); and |w| log-uniform over 1e-100..1e100 (mu along the valleys where
two terms balance, as in tests/test_solvers.py). The worst relative errors of R (value=True), grad R
and hess R = hess Q(mu)^-1 are measured on 300 points of each set against mpmath at 50 digits.

Prints medians of several runs. Usage: python benchmarks/bench_solvers.py [--n N] [--runs R]
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K = 1 / 0.7
C = K / 3
B = np.array([529 / 8100, 961 / 8100, 841 / 8100])
LAM = np.array([[-1.0, 1.0], [1.0, 2.0], [2.0, -1.0]])


def g(nu):
    return (K - 3 * nu) ** -3 - (K + 3 * nu) ** -3


def dg(nu):
    return 9 * ((K - 3 * nu) ** -4 + (K + 3 * nu) ** -4)


def Q(mu):
    return (B * np.expm1(2 * mu @ LAM.T)).sum(axis=-1)


def grad(mu):
    return 2 * (B * np.exp(2 * mu @ LAM.T)) @ LAM


def hess(mu):
    return 4 * np.einsum("...k,ki,kj->...ij", B * np.exp(2 * mu @ LAM.T), LAM, LAM)


def timed(fn, runs):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def joint_sets(n, rng):
    """{name: (w, mu used to make it)} for the three sets of the module docstring."""
    mod = rng.uniform(-1, 1, (n, 2))
    w0 = grad(np.zeros(2))
    th = rng.uniform(0, 2 * np.pi, n)
    delta = 10 ** rng.uniform(-15, -3, n) * abs(w0[0])
    near = w0 + delta[:, None] * np.stack([np.cos(th), np.sin(th)], axis=-1)
    e = rng.uniform(-100, 100, n)
    high = np.where((rng.integers(0, 2, n) == 0)[:, None], [-1 / 3, 2 / 3], [3 / 5, 1 / 5])
    valley = np.where((e < 0)[:, None], [2.0, 3.0], high)
    wide = (e * np.log(10) / 2)[:, None] * valley + rng.uniform(-1, 1, (n, 2))
    return {"|mu| <= 1": (grad(mod), mod), "next to w0": (near, np.zeros((n, 2))),
            "|w| 1e-100..1e100": (grad(wide), wide)}


def reference(w, start):
    """(R, mu, hess R) at the float w, by Newton in mpmath at 50 digits from ``start``."""
    from mpmath import mp, mpf

    lam = [(-1, 1), (1, 2), (2, -1)]
    with mp.workdps(50):
        b = [mpf(529) / 8100, mpf(961) / 8100, mpf(841) / 8100]
        wm, mu = mp.matrix([mpf(v) for v in w]), mp.matrix([mpf(v) for v in start])
        for _ in range(200):
            e = [bk * mp.exp(2 * (l0 * mu[0] + l1 * mu[1])) for bk, (l0, l1) in zip(b, lam)]
            gm = mp.matrix([2 * mp.fsum(ek * lk[i] for ek, lk in zip(e, lam)) for i in range(2)])
            H = mp.matrix([[4 * mp.fsum(ek * lk[i] * lk[j] for ek, lk in zip(e, lam)) for j in range(2)]
                           for i in range(2)])
            step = mp.lu_solve(H, gm - wm)
            size = max(abs(step[0]), abs(step[1]))
            if size <= mpf(10) ** -45 * max(1, abs(mu[0]), abs(mu[1])):
                break
            mu -= step * min(1, 1 / (2 * size))
        q = mp.fsum(bk * mp.expm1(2 * (l0 * mu[0] + l1 * mu[1])) for bk, (l0, l1) in zip(b, lam))
        Hinv = H**-1
        return (float(mu[0] * wm[0] + mu[1] * wm[1] - q), np.array([float(v) for v in mu]),
                np.array([[float(Hinv[i, j]) for j in range(2)] for i in range(2)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**5)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, ROOT)  # runs from a checkout, installed or not
    from mirrorsym._solvers import NUMPY_SOLVER_SOURCE

    ns = {"np": np}
    exec(NUMPY_SOLVER_SOURCE, ns)
    solve, newton = ns["_scalar_inverse"], ns["_convex_newton"]
    rng = np.random.default_rng(0)
    nu = rng.uniform(-C, C, args.n)
    s = g(nu)
    t, got = timed(lambda: solve(g, dg, s, -C, C), args.runs)
    err = np.max(np.abs(got - nu) / np.maximum(np.abs(nu), 1e-3))  # g itself cancels near nu = 0
    print(f"_scalar_inverse, {args.n} depth-3 points: median {t:.3f} s (target < 0.5 s); "
          f"max relative error {err:.1e}")

    from mpmath import mp, mpf

    with mp.workdps(50):
        w0 = [mpf(2114) / 4050, mpf(1610) / 4050]  # grad Q(0), exactly
        hi = np.array([float(v) for v in w0])
        w0 = (hi, np.array([float(v - mpf(h)) for v, h in zip(w0, hi)]))
    for name, (w, start) in joint_sets(args.n, rng).items():
        t, (mu, R) = timed(lambda w=w: newton(Q, grad, hess, w, w0=w0, value=True), args.runs)
        H = np.linalg.inv(hess(mu))
        worst = np.zeros(3)
        for k in rng.choice(args.n, 300, replace=False):
            Rr, mur, Hr = reference(w[k], start[k])
            worst = np.maximum(worst, [abs(R[k] - Rr) / abs(Rr), np.abs(mu[k] - mur).max() / np.abs(mur).max(),
                                       np.abs(H[k] - Hr).max() / np.abs(Hr).max()])
        print(f"_convex_newton, {args.n} points, {name:18s}: median {t:.3f} s; max relative error "
              f"R {worst[0]:.1e}, grad R {worst[1]:.1e}, hess R {worst[2]:.1e}")


if __name__ == "__main__":
    main()
