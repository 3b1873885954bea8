"""Inverse-function peeling: solve f(x) = y for x when x occurs once in f, one layer at a time.

Each layer is inverted on a known real branch (a targeted rewrite, never a blind ``solve``): ``a + h``
→ ``y − a``, ``c·h`` → ``y/c``, ``exp`` → ``log``, ``h**e`` → the real root whose sign matches h at
a reference point, ``sinh`` → ``asinh``, and so on. The caller verifies the result numerically (the
reference point only chooses among the real branches).

>>> import sympy as sp
>>> x, y = sp.symbols("x y", real=True)
>>> peel_inverse(3 * sp.exp(2 * x) + 1, x, y, {x: 0})
log(y/3 - 1/3)/2
"""

from __future__ import annotations

from collections.abc import Mapping

import sympy as sp

__all__ = ["peel_inverse"]


def _sign_at(expr: sp.Expr, ref: Mapping) -> int | None:
    try:
        v = complex(sp.N(expr.xreplace(dict(ref)), 30))
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if abs(v.imag) > 1e-20 * max(1.0, abs(v.real)) or v.real == 0:
        return None
    return 1 if v.real > 0 else -1


def peel_inverse(f: sp.Expr, x: sp.Symbol, y: sp.Expr, ref: Mapping) -> sp.Expr | None:
    """The x with f(x) = y on the real branch containing the reference point ``ref``; None if f does
    not peel (x occurs more than once, or a layer has no elementary inverse)."""
    target = y
    while f != x:
        if f.count(x) != 1:
            return None
        if f.is_Add:
            rest, term = f.as_independent(x, as_Add=True)
            target, f = target - rest, term
        elif f.is_Mul:
            c, term = f.as_independent(x, as_Add=False)
            if c == 1:
                return None
            target, f = target / c, term
        elif f.is_Pow:
            b, e = f.args
            if e.has(x):
                if b.has(x):
                    return None
                target, f = sp.log(target) / sp.log(b), e
                continue
            sign = _sign_at(b, ref)
            if sign is None:
                return None
            if e == -1:
                target = 1 / target  # exact on both signs
            elif sign > 0:
                target = target ** (1 / e)
            else:
                # h < 0 and e = n/m in lowest terms (m odd, else h**e is not real): with n even,
                # y = |h|**e > 0 and h = -y**(1/e); with n odd, y < 0 and h = -(-y)**(1/e)
                n, m = sp.fraction(sp.nsimplify(e))
                if not (n.is_integer and m.is_integer) or m % 2 == 0:
                    return None
                target = -(target ** (1 / e)) if n % 2 == 0 else -((-target) ** (1 / e))
            f = b
        elif isinstance(f, sp.exp):
            target, f = sp.log(target), f.args[0]
        elif isinstance(f, sp.log) and len(f.args) == 1:
            target, f = sp.exp(target), f.args[0]
        elif isinstance(f, (sp.sinh, sp.tanh, sp.asinh, sp.atanh, sp.atan)):
            inverse = {sp.sinh: sp.asinh, sp.tanh: sp.atanh, sp.asinh: sp.sinh, sp.atanh: sp.tanh, sp.atan: sp.tan}
            target, f = inverse[type(f)](target), f.args[0]
        elif isinstance(f, sp.cosh):
            sign = _sign_at(f.args[0], ref)
            if sign is None:
                return None
            target, f = sign * sp.acosh(target), f.args[0]
        else:
            return None
    return target
