"""Core numerical helpers shared by the stages: exact parameter substitution, mpmath evaluation, and
sample points inside an interval of the dual domain.

>>> import sympy as sp
>>> [round(float(v), 3) for v in sample_interval(-sp.oo, sp.Rational(1, 2), {}, 4)]
[-0.887, -0.444, 0.222, 0.444]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mpmath as mp
import sympy as sp

__all__ = ["BlockCache", "mp_function", "realify", "sample_interval", "to_mpf"]


def mp_function(args: Sequence[sp.Symbol], exprs, values: Mapping):
    """An mpmath function of ``args`` for expression(s) with the parameters replaced exactly by ``values``."""
    single = isinstance(exprs, sp.Basic) and not isinstance(exprs, sp.MatrixBase)
    seq = [exprs] if single else list(exprs)
    seq = [sp.sympify(e).xreplace(dict(values)) for e in seq]
    fn = sp.lambdify(list(args), seq, modules="mpmath")

    def call(*xs):
        out = fn(*xs)
        out = [mp.mpmathify(v) for v in out]
        return out[0] if single else out

    return call


def to_mpf(expr: sp.Expr, values: Mapping) -> mp.mpf:
    """An exact expression, parameters substituted, as an mpf at the current precision (±inf allowed)."""
    e = sp.sympify(expr).xreplace(dict(values))
    if e == sp.oo:
        return mp.inf
    if e == -sp.oo:
        return -mp.inf
    return mp.mpf(sp.N(e, mp.mp.dps + 10))


def sample_interval(lo: sp.Expr, hi: sp.Expr, values: Mapping, n: int) -> list[mp.mpf]:
    """n points of (lo, hi) ∋ 0, alternating sides of 0, spread up to 90 % of the way to a finite end.

    Unbounded sides are sampled within distance 0.9 of 0: far enough for the special points of the
    usual potentials (they sit at µ = 0 or at the ends), near enough that exponentials stay moderate.
    An irrational jitter keeps the points off special values.
    """
    a, b = to_mpf(lo, values), to_mpf(hi, values)
    reach = {1: mp.mpf(1) if b == mp.inf else b, -1: mp.mpf(-1) if a == -mp.inf else a}
    m = (n + 1) // 2
    pts = []
    for k in range(n):
        side = 1 if k % 2 == 0 else -1
        level = mp.mpf(k // 2 + 1) / m * mp.mpf("0.9") * (1 - mp.sqrt(2) / 100)
        pts.append(reach[side] * level)
    return sorted(pts)


def realify(expr: sp.Expr, ref: Mapping) -> sp.Expr | None:
    """Remove the ±iπ that sympy's antiderivatives leave with logarithms of negative quantities.

    log(a) with a < 0 at the reference point ``ref`` (and so on the whole connected domain, where a
    cannot cross 0) is rewritten log(−a) + iπ; the imaginary parts then cancel exactly, or the
    expression is not real there and None is returned.

    >>> x = sp.Symbol("x", positive=True)
    >>> realify(-sp.log(x - 1) + sp.I * sp.pi, {x: sp.Rational(1, 2)})
    -log(1 - x)
    """
    if not expr.has(sp.I):
        return expr
    reps = {}
    for lg in expr.atoms(sp.log):
        try:
            v = complex(sp.N(lg.args[0].xreplace(dict(ref)), 30))
        except (TypeError, ValueError):
            return None
        if v.real < 0 and abs(v.imag) <= 1e-25 * abs(v.real):
            reps[lg] = sp.log(sp.expand(-lg.args[0])) + sp.I * sp.pi
    out = sp.expand(expr.xreplace(reps), log=False, power_base=False, power_exp=False, mul=True, multinomial=False)
    return None if out.has(sp.I) else out


class BlockCache:
    """Results of one derivation's symbolic steps, keyed up to a renaming of the block's own symbols.

    Blocks that are identical but for their names (w = (u1² − v1², u2² − v2², …)) are derived once:
    a step's inputs are rewritten in canonical symbols before lookup, its result is stored in those
    symbols and renamed back for each block (MATH.md §6).

    >>> cache, x, y = BlockCache(), sp.Symbol("x"), sp.Symbol("y")
    >>> cache.get("square", (x,), (x**2,), lambda c: (c**2 + 1,))
    (x**2 + 1,)
    >>> cache.get("square", (y,), (y**2,), lambda c: (c**2 + 1,)), cache.hits
    ((y**2 + 1,), 1)
    """

    def __init__(self):
        self._store: dict = {}
        self.hits = 0

    @staticmethod
    def _canonical(symbols) -> list[sp.Symbol]:
        return [sp.Symbol(f"_canonical{k}", **s.assumptions0) for k, s in enumerate(symbols)]

    def get(self, step: str, symbols, key_exprs, compute):
        """``compute(*canonical symbols)`` once per distinct (step, key_exprs up to renaming)."""
        canon = self._canonical(symbols)
        to_canon = dict(zip(symbols, canon))
        key = (step, tuple(sp.sympify(e).xreplace(to_canon) if isinstance(e, sp.Basic) else e for e in key_exprs))
        if key in self._store:
            self.hits += 1
        else:
            self._store[key] = compute(*canon)
        back = dict(zip(canon, symbols))
        return _rename(self._store[key], back)


def _rename(obj, back: dict):
    """The same result with canonical symbols renamed back (sympy objects, tuples, frozen dataclasses)."""
    import dataclasses

    if isinstance(obj, sp.Basic):
        return obj.xreplace(back)
    if isinstance(obj, tuple):
        return tuple(_rename(v, back) for v in obj)
    if isinstance(obj, list):
        return [_rename(v, back) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.replace(obj, **{f.name: _rename(getattr(obj, f.name), back) for f in dataclasses.fields(obj)})
    return obj
