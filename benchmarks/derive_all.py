"""Time `mirrorsym derive` (derive + verify, process start included) for every shipped recipe.

Median of several runs per recipe; prints a table. Target (issue 2): under 1 s per closed-form recipe
on a 2-core machine. Usage: python benchmarks/derive_all.py [--runs N] [RECIPE ...]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def time_recipe(path: str, runs: int) -> tuple[float, int, str]:
    times, rc, kind = [], None, "?"
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        for _ in range(runs):
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "mirrorsym", "derive", path, "--json", out],
                               cwd=ROOT, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            rc = p.returncode
        if os.path.exists(out):
            doc = json.load(open(out))
            kind = "closed" if doc.get("closed_form") else "implicit" if doc.get("commuting") else "noncommuting"
    return statistics.median(times), rc, kind


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("recipes", nargs="*")
    args = ap.parse_args()
    recipes = args.recipes or sorted(os.path.join(ROOT, "recipes", f) for f in os.listdir(os.path.join(ROOT, "recipes"))
                                     if f.endswith(".toml"))
    print(f"{'recipe':32s} {'kind':13s} {'exit':>4s} {'median s':>9s}")
    for path in recipes:
        med, rc, kind = time_recipe(path, args.runs)
        flag = "  (over the 1 s target)" if kind == "closed" and med > 1.0 else ""
        print(f"{os.path.basename(path)[:-5]:32s} {kind:13s} {rc:4d} {med:9.2f}{flag}", flush=True)


if __name__ == "__main__":
    main()
