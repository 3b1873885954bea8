"""The generated numpy grad_R of an implicit potential (issue 3 target): woodworth-depth-3 on 10^5
points in under 0.5 s, agreeing with mpmath (30 digits) to 1e-12 relative.

Usage: python benchmarks/implicit_numpy.py [RECIPE]   (e.g. product-3: 0.14 s, 3e-16 on the dev machine)
"""

import importlib.util
import os
import sys
import tempfile
import time

import mpmath as mp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import mirrorsym  # noqa: E402 -- after the path set-up, so the checkout is measured


def main(name: str = "woodworth-depth-3", n: int = 100_000) -> None:
    d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe(name)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mod.py")
        with open(path, "w") as f:
            f.write(mirrorsym.numpy_module(d))
        spec = importlib.util.spec_from_file_location("mod", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    rng = np.random.default_rng(0)
    w = (np.sign(rng.standard_normal(n)) * 10.0 ** rng.uniform(-6, 6, n)).reshape(-1, 1)
    mod.grad_R(w[:10])  # warm-up
    times = []
    for _ in range(5):
        t = time.perf_counter()
        mu = mod.grad_R(w)
        times.append(time.perf_counter() - t)
    num = d.numeric()
    worst = 0.0
    with mp.workdps(30):
        for k in rng.choice(n, 200, replace=False):
            ref = num.evaluate([mp.mpf(float(w[k, 0]))])[1][0]
            worst = max(worst, abs(float(mu[k, 0]) - float(ref)) / abs(float(ref)))
    best = min(times)
    print(f"{name}: grad_R on {n} points: {best:.3f} s (target < 0.5 s) {'ok' if best < 0.5 else 'SLOW'}; "
          f"max relative error vs mpmath {worst:.1e} (target 1e-12) {'ok' if worst < 1e-12 else 'INACCURATE'}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
