"""Plots of a derivation (matplotlib, the ``plot`` extra): R and ∇R over dom R and, for d = 2,
the level sets of R.

The curves of R and ∇R are drawn along each coordinate w_k through w0 (the others held at w0), over
a window w0_k ± 2(1 + |w0_k|) clipped to dom R, with the generated numpy module (so implicit
potentials are solved as the user's code would solve them). The level sets for d = 2 are drawn
parametrically from the dual side — µ on a grid, w = ∇Q(µ), R = ⟨µ, w⟩ − Q(µ) — so they need no
solve and follow the shape of dom R (a cone for a joint quadratic family).
"""

from __future__ import annotations

import numpy as np

from ._derivation import Derivation
from ._numeric import to_mpf

__all__ = ["plot"]


def _window(d: Derivation, k: int, w0: np.ndarray) -> tuple[float, float]:
    """w0_k ± 2(1 + |w0_k|), kept inside the interval of dom R that constrains w_k, if any."""
    lo, hi = w0[k] - 2 * (1 + abs(w0[k])), w0[k] + 2 * (1 + abs(w0[k]))
    values = d.parametrization.numeric()
    for part in d.domain()["dom_R"]:
        if part.lo is not None and part.coordinate == d.parametrization.w[k]:
            a, b = float(to_mpf(part.lo, values)), float(to_mpf(part.hi, values))
            lo = max(lo, a + 1e-3 * (w0[k] - a)) if np.isfinite(a) else lo
            hi = min(hi, b - 1e-3 * (b - w0[k])) if np.isfinite(b) else hi
    return lo, hi


def _slice(mod: dict, w0: np.ndarray, k: int, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R and ∂R/∂w_k along w0 + t e_k, at the grid points that lie in dom R."""
    keep, R, g = [], [], []
    for t in grid:
        w = w0.copy()
        w[k] = t
        try:
            R.append(float(mod["R"](w)))
            g.append(float(mod["grad_R"](w)[k]))
            keep.append(t)
        except ValueError:  # outside dom R along this line (a cone, say): leave the point out
            continue
    return np.array(keep), np.array(R), np.array(g)


def plot(d: Derivation, path: str) -> None:
    """Draw R and ∇R over dom R (and, for d = 2, the level sets of R) and save the figure to ``path``
    (any format matplotlib writes: png, pdf, svg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'mirrorsym[plot]'") from None
    from ._numpy_export import numpy_module

    mod: dict = {}
    exec(compile(numpy_module(d), "<generated>", "exec"), mod)  # the module mirrorsym itself generated
    p = d.parametrization
    w0 = np.asarray(mod["grad_Q"](np.zeros(p.d)), dtype=float)
    cols = 3 if p.d == 2 else 2
    fig, ax = plt.subplots(1, cols, figsize=(4.2 * cols, 3.6), constrained_layout=True)
    fig.suptitle(f"{p.title or p.name}: {'closed form' if d.closed_form else 'implicit'} R", fontsize=9)
    for k in range(p.d):
        t, R, g = _slice(mod, w0, k, np.linspace(*_window(d, k, w0), 300))
        label = f"along w{k + 1}" if p.d > 1 else None
        ax[0].plot(t, R, label=label)
        ax[1].plot(t, g, label=label)
    ax[0].set(xlabel="w" if p.d == 1 else "w_k (others at w0)", ylabel="R(w)")
    ax[1].set(xlabel="w" if p.d == 1 else "w_k (others at w0)", ylabel="∇R(w) = µ" if p.d == 1 else "∂R/∂w_k")
    for a in ax[:2]:
        a.axvline(w0[0] if p.d == 1 else np.nan, color="0.8", lw=0.8)
        if p.d > 1:
            a.legend(fontsize=7)
    if p.d == 2:
        m = np.linspace(-1, 1, 80)
        mus = np.stack([a.ravel() for a in np.meshgrid(m, m, indexing="ij")], axis=-1)
        with np.errstate(all="ignore"):
            w = mod["grad_Q"](mus)
            R = (mus * w).sum(axis=-1) - mod["Q"](mus)
        ok = np.all(np.isfinite(w), axis=-1) & np.isfinite(R)
        tri = ax[2].tricontour(w[ok, 0], w[ok, 1], R[ok], levels=15, linewidths=0.8)
        ax[2].clabel(tri, fontsize=6)
        ax[2].plot(*w0, "k.", ms=4)
        ax[2].set(xlabel="w1", ylabel="w2", title="level sets of R (µ ∈ [−1, 1]²)")
    fig.savefig(path, dpi=120)
    plt.close(fig)
