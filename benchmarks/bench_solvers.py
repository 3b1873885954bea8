"""Time the generated-module numpy solvers: the Legendre inverse of 10**5 depth-3 Woodworth points.

g(nu) = (k - 3 nu)**-3 - (k + 3 nu)**-3 with k = 1/alpha, alpha = 0.7, on U = (-k/3, k/3) (literature
L5); the points s = g(nu) for uniform random nu in U. Prints the median of several runs and the
worst relative error. Target: under 0.5 s. Usage: python benchmarks/bench_solvers.py [--n N] [--runs R]
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


def g(nu):
    return (K - 3 * nu) ** -3 - (K + 3 * nu) ** -3


def dg(nu):
    return 9 * ((K - 3 * nu) ** -4 + (K + 3 * nu) ** -4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**5)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    sys.path.insert(0, ROOT)  # runs from a checkout, installed or not
    from mirrorsym._solvers import NUMPY_SOLVER_SOURCE

    ns = {"np": np}
    exec(NUMPY_SOLVER_SOURCE, ns)
    solve = ns["_scalar_inverse"]
    nu = np.random.default_rng(0).uniform(-C, C, args.n)
    s = g(nu)
    times = []
    for _ in range(args.runs):
        t = time.perf_counter()
        got = solve(g, dg, s, -C, C)
        times.append(time.perf_counter() - t)
    err = np.max(np.abs(got - nu) / np.maximum(np.abs(nu), 1e-3))  # g itself cancels near nu = 0
    print(f"_scalar_inverse, {args.n} depth-3 points: median {statistics.median(times):.3f} s "
          f"(best {min(times):.3f} s, target < 0.5 s); max relative error {err:.1e}")


if __name__ == "__main__":
    main()
