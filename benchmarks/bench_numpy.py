"""Accuracy and speed of the generated numpy modules (issue 6).

Accuracy: for every commuting shipped recipe, R, ∇R and ∇²R of the generated module against mpmath
at points sampled logarithmically over dom R, |w| from 1e-100 to 1e100 (both signs where dom R
allows, and directions across the cone of a joint block), plus points crowding the minimiser w0,
where R, ∇R → 0. The reference is NumericPotential (the derivation's own formulas, unrewritten) at
the float inputs and the float parameters the module sees, at 40 + 2·|log10 |w|| digits (the
unrewritten formulas cancel that much). Errors are relative: |R − R*|/|R*|, and max-norm for ∇R and
∇²R. Target: 1e-13, except where the function itself is ill-conditioned: at relative condition
number κ (of the value with respect to w and to the parameters; κ → ∞ as w → w0, where R and ∇R
vanish), no float algorithm beats κ·eps, and the target is max(1e-13, 8 κ eps) (a few roundings, each amplified by κ).

Speed: R, ∇R, ∇²R and evaluate() of hyperbolic-entropy and azulay-shape on 10**6 points against
the best numpy written by hand for the same stable formula (target: within 1.3×).

Usage: python benchmarks/bench_numpy.py [--n N] [--runs R] [--points P] [--recipes a,b]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPS = np.finfo(float).eps


# --- sampling and reference ------------------------------------------------------------------------

def sample_points(d, n: int, lo_exp: float = -100, hi_exp: float = 100, near_w0: int = 0, seed: int = 0) -> np.ndarray:
    """n points of dom R (rows) with |coordinate| ≈ 10**k, k uniform in [lo_exp, hi_exp], plus
    ``near_w0`` points within relative distance 1e-1..1e-6 of w0 (jittered, inside dom R)."""
    import sympy as sp

    from mirrorsym._numeric import to_mpf

    rng = np.random.default_rng(seed)
    p = d.parametrization
    vals = p.numeric()
    w0 = np.array([float(sp.N(g.xreplace(vals).xreplace(dict.fromkeys(p.mu, 0)))) for g in d.grad_Q])
    rows = np.empty((n + near_w0, p.d))
    for blk in d.legendre.blocks:
        idx = list(blk.block.g_indices)
        if blk.pieces is None:  # a joint block: w = r·u for directions u = ∇Q_b(µ)/|∇Q_b(µ)| of the cone
            g = sp.lambdify([p.mu[i] for i in idx], [e.xreplace(vals) for e in blk.potential.grad], "numpy")
            mus = rng.normal(size=(n + near_w0, len(idx))) * 2
            u = np.array(g(*mus.T)).T
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            block = u * 10.0 ** rng.uniform(lo_exp, hi_exp, (n + near_w0, 1))
            step = np.linalg.norm(w0[idx]) * 10.0 ** rng.uniform(-6, -1, (near_w0, 1))
            block[n:] = w0[idx] + step * u[n:]  # w0 is inside the cone: so is a small step from it
            rows[:, idx] = block
            continue
        s = np.empty((n + near_w0, len(idx)))
        L = np.array(blk.L.tolist(), dtype=float)
        s0 = np.linalg.solve(L.T, w0[idx])  # s = L^-T w
        for j, pc in enumerate(blk.pieces):
            a, b = float(to_mpf(pc.dom[0], vals)), float(to_mpf(pc.dom[1], vals))
            signs = [sg for sg in (1, -1) if (a < 0 if sg < 0 else b > 0)]
            mag = 10.0 ** rng.uniform(lo_exp, hi_exp, n)
            x = mag * rng.choice(signs, n)
            # bounded sides: fold into the interval
            with np.errstate(invalid="ignore"):
                x = np.where(x >= b, b - (b - max(a, 0)) * rng.uniform(1e-6, 1, n), x)
                x = np.where(x <= a, a + (min(b, 0) - a) * rng.uniform(1e-6, 1, n), x)
            near = s0[j] * (1 + 10.0 ** rng.uniform(-6, -1, near_w0) * rng.choice([-1, 1], near_w0))
            if s0[j] == 0:
                near = 10.0 ** rng.uniform(-6, -1, near_w0) * rng.choice(signs, near_w0)
            s[:, j] = np.concatenate([x, near])
        rows[:, idx] = s @ L  # w = L^T s, row-wise
    return rows


class Reference:
    """(R, ∇R, ∇²R, κ_R, κ_∇R) at a float point w in mpmath, parameters at their float values.

    κ are the relative condition numbers with respect to w and the parameters (envelope theorem:
    ∂R/∂θ = −∂Q/∂θ(µ), ∂µ/∂θ = −∇²R ∂∇Q/∂θ(µ))."""

    def __init__(self, d):
        import sympy as sp

        p = d.parametrization
        self.d = p.d
        self.floats = {q: sp.Rational(float(p.defaults[q])) for q in p.parameters}
        self.num = d.numeric(**{q.name: v for q, v in self.floats.items()})
        theta = sp.Symbol("_theta")
        self.sens = []  # per parameter: (θ, ∂Q/∂θ, ∂∇Q/∂θ) as mpmath functions of µ
        for q, v in self.floats.items():
            sub = {**self.floats, q: theta}
            dQ = sp.lambdify(list(p.mu), sp.diff(d.Q.xreplace(sub), theta).xreplace({theta: v}), "mpmath")
            dG = [sp.lambdify(list(p.mu), sp.diff(e.xreplace(sub), theta).xreplace({theta: v}), "mpmath") for e in d.grad_Q]
            self.sens.append((v, dQ, dG))

    def __call__(self, w, extra: int = 0):
        import mpmath as mp

        mags = [abs(math.log10(abs(x))) for x in w if x != 0]
        with mp.workdps(40 + 2 * int(max(mags, default=0)) + extra):
            x = [mp.mpf(float(v)) for v in w]
            R, g, H = self.num.evaluate(x)
            kR = mp.fsum(abs(xi * gi) for xi, gi in zip(x, g))
            kg = [mp.fsum(abs(H[i, j] * x[j]) for j in range(self.d)) for i in range(self.d)]
            for v, dQ, dG in self.sens:
                v = mp.mpf(v)
                kR += abs(v * dQ(*g))
                dv = [f(*g) for f in dG]
                for i in range(self.d):
                    kg[i] += abs(v * mp.fsum(H[i, j] * dv[j] for j in range(self.d)))
            gmax = max(abs(t) for t in g)
            return R, list(g), H, (kR / abs(R) if R != 0 else mp.inf), (max(kg) / gmax if gmax != 0 else mp.inf)


def errors(d, mod, points: np.ndarray) -> list[dict]:
    """Per point: relative errors of R, ∇R, ∇²R (max-norm) and the condition numbers."""
    import mpmath as mp

    R, G, H = mod.evaluate(points)
    reference = Reference(d)
    out = []
    for k, w in enumerate(points):
        Rr, gr, Hr, kR, kG = reference(w)
        with mp.workdps(30):
            eR = abs(mp.mpf(float(R[k])) - Rr) / abs(Rr) if Rr != 0 else abs(mp.mpf(float(R[k])))
            gmax = max(abs(x) for x in gr)
            eG = max(abs(mp.mpf(float(G[k][i])) - gr[i]) for i in range(len(gr))) / gmax if gmax else mp.mpf(0)
            n = Hr.rows
            hmax = max(abs(Hr[i, j]) for i in range(n) for j in range(n))
            eH = max(abs(mp.mpf(float(H[k][i][j])) - Hr[i, j]) for i in range(n) for j in range(n)) / hmax
        out.append({"w": w, "R": float(eR), "grad": float(eG), "hess": float(eH), "kR": float(kR), "kG": float(kG)})
    return out


def tolerance(kappa: float) -> float:
    return max(1e-13, 8 * kappa * EPS)


def load_module(d):
    from mirrorsym._numpy_export import numpy_module

    ns: dict = {}
    exec(compile(numpy_module(d), f"<{d.parametrization.name}>", "exec"), ns)
    return type("Generated", (), {k: staticmethod(v) if callable(v) else v for k, v in ns.items()})


# --- speed -----------------------------------------------------------------------------------------

def hand_hyperbolic(alpha):
    """Hyperbolic entropy, written by hand: z = w/(2α²), R = (α²/2)(z asinh z − z²/(1 + hypot(1, z)))."""
    c = 2 * alpha * alpha

    def R(w):
        x = w[..., 0]
        return 0.25 * x * (np.arcsinh(x / c) - x / (c + np.hypot(x, c)))

    def grad_R(w):
        return np.arcsinh(w / c) * 0.25

    def hess_R(w):
        return (0.25 / np.hypot(w[..., 0], c))[..., None, None]

    def evaluate(w):
        x = w[..., 0]
        a = np.arcsinh(x / c) * 0.25
        h = np.hypot(x, c)
        return x * (a - 0.25 * x / (c + h)), a[..., None], (0.25 / h)[..., None, None]

    return {"R": R, "grad_R": grad_R, "hess_R": hess_R, "evaluate": evaluate}


def hand_azulay(a, b):
    """Azulay et al.'s potential, written by hand: c = a² + b², R = (w/2)(asinh(w/c) − w/(c + hypot(w, c)))."""
    c = a * a + b * b

    def R(w):
        x = w[..., 0]
        return 0.5 * x * (np.arcsinh(x / c) - x / (c + np.hypot(x, c)))

    def grad_R(w):
        return np.arcsinh(w / c) * 0.5

    def hess_R(w):
        return (0.5 / np.hypot(w[..., 0], c))[..., None, None]

    def evaluate(w):
        x = w[..., 0]
        g = np.arcsinh(x / c) * 0.5
        h = np.hypot(x, c)
        return x * (g - 0.5 * x / (c + h)), g[..., None], (0.5 / h)[..., None, None]

    return {"R": R, "grad_R": grad_R, "hess_R": hess_R, "evaluate": evaluate}


def best_time(fn, arg, runs: int) -> float:
    fn(arg)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t)
    return min(times)


def speed(n: int, runs: int) -> list[tuple[str, str, float, float]]:
    from mirrorsym import derive, find_recipe, load_recipe

    rng = np.random.default_rng(1)
    w = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n))[:, None]
    rows = []
    for name, hand in (("hyperbolic-entropy", hand_hyperbolic(0.5)), ("azulay-shape", hand_azulay(0.6, 0.9))):
        mod = load_module(derive(load_recipe(find_recipe(name))))
        for fn in ("R", "grad_R", "hess_R", "evaluate"):
            # interleave, so that both see the same machine state
            tg, th = [], []
            for _ in range(3):
                tg.append(best_time(getattr(mod, fn), w, runs))
                th.append(best_time(hand[fn], w, runs))
            rows.append((name, fn, min(tg), min(th)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10**6, help="points for the speed benchmark")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--points", type=int, default=400, help="log-spaced accuracy points per recipe")
    ap.add_argument("--recipes", default="", help="comma-separated recipe names (default: all commuting)")
    args = ap.parse_args()
    sys.path.insert(0, ROOT)  # runs from a checkout, installed or not
    from mirrorsym import derive, find_recipe, load_recipe, shipped_recipes

    names = args.recipes.split(",") if args.recipes else [path.stem for path in shipped_recipes()]
    print(f"accuracy: {args.points} log-spaced points per recipe (|w| in 1e-100..1e100) + 40 near w0")
    print(f"{'recipe':26s} {'max err R':>10s} {'max err ∇R':>11s} {'max err ∇²R':>12s}  {'worst err/tol':>13s}  points")
    for name in names:
        d = derive(load_recipe(find_recipe(name)))
        if not d.commuting:
            continue
        mod = load_module(d)
        pts = sample_points(d, args.points, near_w0=40)
        try:
            errs = errors(d, mod, pts)
        except ValueError as exc:  # a sampled point the float solver cannot reach
            print(f"{name:26s} failed: {exc}")
            continue
        worst = max(max(e["R"] / tolerance(e["kR"]), e["grad"] / tolerance(e["kG"]), e["hess"] / 1e-13) for e in errs)
        print(f"{name:26s} {max(e['R'] for e in errs):10.1e} {max(e['grad'] for e in errs):11.1e} "
              f"{max(e['hess'] for e in errs):12.1e}  {worst:13.2f}  {len(errs)}")
    print(f"\nspeed: {args.n} points, best of {args.runs} (x3 interleaved); target generated/hand <= 1.3")
    for name, fn, tg, th in speed(args.n, args.runs):
        print(f"{name:26s} {fn:9s} generated {tg * 1e3:7.1f} ms   hand {th * 1e3:7.1f} ms   ratio {tg / th:5.2f}")


if __name__ == "__main__":
    main()
