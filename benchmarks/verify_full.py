"""Time the full verification of every shipped commuting recipe: derivation with the point checks of
stage 7, then the trajectory and bias checks of stage 8 (mirrorsym._trajectory).

Prints seconds per recipe and per check, and whether each check passed. Target (issue 4): under 20 s
per recipe at 30 digits on a 2-core machine. Non-commuting recipes are listed and skipped.
Usage: python benchmarks/verify_full.py [--dps N] [--seed N] [RECIPE ...]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mirrorsym
from mirrorsym import _trajectory

TARGET = 20.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("recipes", nargs="*")
    args = ap.parse_args()
    names = args.recipes or [os.path.basename(p)[:-5] for p in sorted(mirrorsym.shipped_recipes())]
    print(f"{'recipe':28s} {'kind':9s} {'derive+points':>13s} {'trajectory':>11s} {'bias':>8s} {'total':>8s}  result")
    for name in names:
        t0 = time.perf_counter()
        d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe(name)), dps=args.dps, seed=args.seed)
        t_derive = time.perf_counter() - t0
        if not d.commuting:
            print(f"{name:28s} {'skipped':9s} {t_derive:13.2f} {'':>11s} {'':>8s} {t_derive:8.2f}  not commuting")
            continue
        seconds, failed = [], [c.name for c in d.verification.failed]
        for check in _trajectory.CHECKS:
            t = time.perf_counter()
            c, = _trajectory.run_checks(d, (check,), dps=args.dps, seed=args.seed)
            seconds.append(time.perf_counter() - t)
            failed += [] if c.passed else [c.name]
        total = t_derive + sum(seconds)
        result = ("ok" if not failed else "FAILED: " + ", ".join(failed)) + (f"  (over the {TARGET:.0f} s target)"
                                                                             if total > TARGET else "")
        kind = "closed" if d.closed_form else "implicit"
        print(f"{name:28s} {kind:9s} {t_derive:13.2f} {seconds[0]:11.2f} {seconds[1]:8.2f} {total:8.2f}  {result}",
              flush=True)


if __name__ == "__main__":
    main()
