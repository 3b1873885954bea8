"""Scaling of derive + verify with the dimension for the separable template recipes (issue 7):
`mirrorsym derive RECIPE --dim N` for N = 1, 10, 100, 1000, process start included, median of runs.
Target: d = 1000 within 2x of d = 1. Usage: python benchmarks/scaling.py [--runs K]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = ["hyperbolic-entropy-n", "azulay-shape-n", "egu-n", "woodworth-depth-3-n"]


def run(name: str, dim: int, runs: int) -> float:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "mirrorsym", "derive", name, "--dim", str(dim),
                                "--json", os.path.join(tmp, "o.json"), "--numpy", os.path.join(tmp, "o.py")],
                               cwd=ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if p.returncode != 0:
                raise SystemExit(f"{name} --dim {dim}: exit {p.returncode}: {p.stderr.strip()[-200:]}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    dims = (1, 10, 100, 1000)
    print(f"{'recipe':24s}" + "".join(f"{'d=' + str(d):>9s}" for d in dims) + "   d=1000/d=1")
    for name in TEMPLATES:
        t = [run(name, d, args.runs) for d in dims]
        print(f"{name:24s}" + "".join(f"{x:9.2f}" for x in t) + f"   {t[-1] / t[0]:.2f}x", flush=True)


if __name__ == "__main__":
    main()
