"""numpy export: a standalone module (needs only numpy) with R, ∇R, ∇²R, Q, ∇Q of a derivation.

The derivation's formulas are exact, but printed as they stand many lose every digit somewhere on
dom R. Hyperbolic entropy is the standard example: with z = w/(2α²),

    R(w) = α²/2 + w asinh(z)/4 − √(4α⁴ + w²)/4

subtracts two numbers ≈ α²/2 when w is tiny (R ≈ w²/(16α²) is lost below |w| ≈ 1e-8), and
√(4α⁴ + w²) overflows long before R does. So every formula goes through :func:`stable`, a chain of
exact rewrites, each applied wherever its pattern occurs (not per recipe), and each pass checked
against the unrewritten formula in mpmath at 50 digits on sample points of the formula's domain (a
pass that fails the check is dropped and recorded in ``Rewriter.rejected``):

1. *exponential sums* ``a e^x + b e^{−x} + c``: pairs become 2a cosh x, 2a sinh x or, when the
   constant cancels, 4a sinh²(x/2); otherwise e^x − 1 becomes expm1(x) when the constants cancel;
2. *factoring*: a sum whose terms have mixed signs and that is a rational function of the variables
   (or of their roots x^{1/k}) is factored over the rationals, which cancels its constants exactly:
   (k − 3ν)^−3 − (k + 3ν)^−3 = 18α⁴ν(3α²ν² + 1)/(1 − 9α²ν²)³ stays accurate as ν → 0;
3. *conjugates*: T + k√P whose two parts have opposite signs becomes (T² − k²P)/(T − k√P) when
   T² − k²P cancels symbolically (α²/2 − √(4α⁴ + w²)/4 = −w²/(16 (α²/2 + √(…)/4)));
4. *hypot*: √(a² + b²) becomes hypot(a, b), which neither overflows nor underflows;
5. *bounded ratios*: x²/D with D ⊇ hypot(·, x) becomes x·(x/D), so x² cannot overflow.

A closed piece r(s) with r'(s0) = 0 at s0 = q'(0) ≠ 0 is first written in t = s/s0 (egu:
R = (c²/4)(t log t + (1 − t)), t = 4w/c²), so that every occurrence of s shares one rounding and
R's relative error near its minimum is the unavoidable κ·eps, κ = |s r'(s)/r(s)|. Sums are printed
with their algebraic terms grouped, (1 − t) first, then the transcendental terms added.

Every parameter is a keyword argument defaulting to the recipe's value; inputs are array-like with
last axis of length DIM (any batch shape). Implicit pieces solve q'(ν) = s by a bracketed
safeguarded Newton and joint blocks minimise Q_b(µ) − ⟨µ, w_b⟩ by damped Newton, both vectorised
(:mod:`._solvers`). A point outside dom R raises ValueError naming it.

>>> import mirrorsym
>>> d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe("hyperbolic-entropy")))
>>> ns = {}
>>> exec(numpy_module(d), ns)
>>> r = float(ns["R"]([1e-100]))  # R ≈ w²/(16α²) = w²/4 for tiny w, where the naive form gives 0
>>> abs(r - 1e-200 / 4) < 1e-15 * r
True
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import mpmath as mp
import sympy as sp
from sympy.codegen.cfunctions import expm1, hypot, log1p

from ._derivation import Derivation
from ._numeric import to_mpf
from ._orbit import has_orbit_function
from ._version import __version__

__all__ = ["Plan", "Printer", "Rewriter", "numpy_module", "plan", "stable"]

#: a factored or rewritten formula may grow to this multiple of its size (count_ops) plus 8
_GROWTH = 2


# --- checking rewrites in mpmath -------------------------------------------------------------------

def _elementary(e: sp.Expr) -> sp.Expr:
    """The rewrites' special forms back in elementary functions, for evaluation in mpmath."""
    return e.replace(lambda x: isinstance(x, sp.UnevaluatedExpr), lambda x: x.args[0]).replace(
        lambda x: isinstance(x, hypot), lambda x: sp.sqrt(x.args[0] ** 2 + x.args[1] ** 2)).replace(
        lambda x: isinstance(x, expm1), lambda x: sp.exp(x.args[0]) - 1).replace(
        lambda x: isinstance(x, log1p), lambda x: sp.log(1 + x.args[0]))


def _samples(lo: mp.mpf, hi: mp.mpf) -> list[mp.mpf]:
    """Points of (lo, hi): moderate magnitudes on either side of 0 and points near finite ends."""
    pts = [sign * mp.mpf(m) for m in ("0.001", "0.043", "0.37", "1.3", "4.1", "27", "610") for sign in (1, -1)]
    for end in (lo, hi):
        if mp.isfinite(end):
            pts += [end + (mp.mpf(hi + lo) / 2 - end) * f for f in (mp.mpf("0.003"), mp.mpf("0.1"), mp.mpf("0.6"))]
    return sorted({p for p in pts if lo < p < hi})


class Rewriter:
    """Applies the rewrites of the module docstring to formulas in ``variables``.

    ``variables`` maps each array symbol to its interval (lo, hi) (sympy expressions in the
    parameters); ``values`` gives the parameters' numbers for the checks. Formulas are checked a
    second time with every parameter scaled by 8/7, so that a rewrite valid only at the defaults fails.
    """

    def __init__(self, variables: Mapping[sp.Symbol, tuple], values: Mapping):
        self.variables = dict(variables)
        self.rejected: list[str] = []
        self._values = [dict(values), {k: v * sp.Rational(8, 7) for k, v in values.items()}]
        self._points = []
        for vals in self._values:
            with mp.workdps(50):
                cols = [_samples(to_mpf(lo, vals), to_mpf(hi, vals)) for lo, hi in self.variables.values()]
            n = max((len(c) for c in cols), default=0)
            # one point per sample index, the other variables cycling through theirs
            self._points.append([[c[(i * (k + 1)) % len(c)] for k, c in enumerate(cols)] for i in range(n)])

    def _evaluate(self, e: sp.Expr, which: int) -> list:
        e = _elementary(sp.sympify(e)).xreplace(self._values[which])
        fn = sp.lambdify(list(self.variables), e, modules="mpmath")
        out = []
        with mp.workdps(50):
            for pt in self._points[which]:
                try:
                    v = mp.mpmathify(fn(*pt))
                except (ArithmeticError, ValueError, TypeError):
                    v = None
                out.append(v if isinstance(v, mp.mpf) and mp.isfinite(v) else None)
        return out

    def equal(self, a: sp.Expr, b: sp.Expr) -> bool:
        """a = b at every sample point (both parameter sets) to 30 digits."""
        for which in range(2):
            for x, y in zip(self._evaluate(a, which), self._evaluate(b, which)):
                if (x is None) != (y is None):
                    return False
                if x is not None and abs(x - y) > mp.mpf(10) ** -30 * max(abs(x), abs(y), mp.mpf(10) ** -300):
                    return False
        return True

    def signs(self, e: sp.Expr) -> set[int]:
        """The signs e takes at the sample points (default parameters)."""
        return {int(mp.sign(v)) for v in self._evaluate(e, 0) if v is not None}

    def mixed(self, terms: Sequence[sp.Expr]) -> bool:
        """Whether some sample point has terms of both signs (a sum that can cancel)."""
        cols = [self._evaluate(t, 0) for t in terms]
        return any({int(mp.sign(v)) for v in row if v is not None} >= {1, -1} for row in zip(*cols))

    def _var(self, e: sp.Expr) -> bool:
        return bool(e.free_symbols & self.variables.keys())

    # the passes ---------------------------------------------------------------------------------

    def __call__(self, e: sp.Expr) -> sp.Expr:
        e = sp.sympify(e)
        for name, rewrite in (("exponential sums", self._exp_sums), ("factoring", self._factor),
                              ("conjugates", self._conjugates), ("hypot", self._hypot),
                              ("bounded ratios", self._ratios), ("common factors", self._common)):
            new = rewrite(e)
            if new != e:
                if self.equal(e, new):
                    e = new
                else:
                    self.rejected.append(f"{name}: {e} -> {new}")
        return e

    @staticmethod
    def _bottom_up(e: sp.Expr, f: Callable) -> sp.Expr:
        if e.args and not isinstance(e, sp.Order):
            args = [Rewriter._bottom_up(a, f) for a in e.args]
            if args != list(e.args):
                e = e.func(*args)
        return f(e)

    def _exp_sums(self, e: sp.Expr) -> sp.Expr:
        return self._bottom_up(sp.powsimp(e, combine="exp"), self._exp_sum)

    def _exp_sum(self, e: sp.Expr) -> sp.Expr:
        if not e.is_Add:
            return e
        const, coeff, other = sp.S.Zero, {}, []
        for term in e.args:
            if not self._var(term):
                const += term
                continue
            c, f = term.as_independent(*self.variables, as_Add=False)
            if isinstance(f, (sp.exp, expm1)):
                x = f.args[0]
                coeff[x] = coeff.get(x, sp.S.Zero) + c
                const -= c if isinstance(f, expm1) else 0  # a expm1(x) = a e^x − a
            else:
                other.append(term)
        if len(coeff) + (const != 0) < 2:
            return e
        out = []
        for x in sorted(coeff, key=sp.default_sort_key):
            if x not in coeff or (-x in coeff and x.could_extract_minus_sign()):
                continue
            a, b = coeff.pop(x), coeff.pop(-x, None)
            if b is not None and sp.expand(a - b) == 0:
                if const != 0 and sp.expand(const + 2 * a) == 0:
                    out.append(4 * a * sp.sinh(x / 2) ** 2)
                    const = sp.S.Zero
                else:
                    out.append(2 * a * sp.cosh(x))
            elif b is not None and sp.expand(a + b) == 0:
                out.append(2 * a * sp.sinh(x))
            else:
                coeff[x] = a
                if b is not None:
                    coeff[-x] = b
                out.append(None)  # placeholder keeps the loop simple; dropped below
        out = [t for t in out if t is not None]
        rest = list(coeff.items())
        if rest and const != 0 and sp.expand(const + sum(a for _, a in rest)) == 0:
            out += [a * expm1(x) for x, a in rest]
            const = sp.S.Zero
        else:
            out += [a * sp.exp(x) for x, a in rest]
        return sp.Add(const, *out, *other)

    def _factor(self, e: sp.Expr) -> sp.Expr:
        if not self._var(e):
            return e
        if e.is_Add:
            new = self._factor_sum(e)
            if new is not None:
                return new
        if e.args:
            args = [self._factor(a) for a in e.args]
            if args != list(e.args):
                return e.func(*args)
        return e

    def _factor_sum(self, e: sp.Add) -> sp.Expr | None:
        """e factored in the variables (or their roots), or None when that is not useful."""
        reps, back = {}, {}
        for v in e.free_symbols & self.variables.keys():
            dens = [p.exp.q for p in e.atoms(sp.Pow) if p.base == v and p.exp.is_Rational]
            k = math.lcm(*dens) if dens else 1
            if k > 1 and not v.is_positive:
                return None
            u = sp.Dummy(v.name, positive=bool(v.is_positive), real=True)
            reps[v] = (u, k)
            back[u] = v ** sp.Rational(1, k)
        eu = e.replace(lambda x: x.is_Pow and x.base in reps and x.exp.is_Rational,
                       lambda x: reps[x.base][0] ** (x.exp * reps[x.base][1]))
        eu = eu.xreplace({v: u**k for v, (u, k) in reps.items()})
        us = [u for u, _ in reps.values()]
        if eu.free_symbols & self.variables.keys() or not eu.is_rational_function(*us):
            return None
        if sp.count_ops(e) > 80 or not self.mixed(e.args):
            return None
        f = sp.factor(eu).xreplace(back)
        return f if f != e and sp.count_ops(f) <= _GROWTH * sp.count_ops(e) + 8 else None

    def _conjugates(self, e: sp.Expr) -> sp.Expr:
        return self._bottom_up(e, self._conjugate)

    def _conjugate(self, e: sp.Expr) -> sp.Expr:
        if not e.is_Add:
            return e
        roots, algebraic, rest = [], [], []
        for term in e.args:
            c, f = term.as_independent(*self.variables, as_Add=False)
            if f.is_Pow and f.exp == sp.S.Half and self._var(f.base):
                roots.append((c, f.base))
            elif not any(self._var(a) for a in term.atoms(sp.Function, sp.Pow) if not (a.is_Pow and a.exp.is_Integer)):
                algebraic.append(term)
            else:
                rest.append(term)
        if len(roots) != 1 or not algebraic:
            return e
        (k, P), T = roots[0], sp.Add(*algebraic)
        E = sp.expand(T**2 - k**2 * P)
        if E == 0 or len(sp.Add.make_args(E)) >= len(sp.Add.make_args(sp.expand(T**2))) + len(sp.Add.make_args(sp.expand(k**2 * P))):
            return e
        if self.signs(T * k * sp.sqrt(P)) != {-1}:  # the parts cancel, and T − k√P then cannot
            return e
        return sp.Add(sp.factor(E) / (T - k * sp.sqrt(P)), *rest)

    def _hypot(self, e: sp.Expr) -> sp.Expr:
        return self._bottom_up(e, self._hypot_one)

    def _hypot_one(self, e: sp.Expr) -> sp.Expr:
        if not (e.is_Pow and e.exp.is_Rational and e.exp.q == 2 and e.base.is_Add and self._var(e.base)):
            return e
        const = sp.Add(*(t for t in e.base.args if not self._var(t)))  # one leg for all parameter terms
        terms = [t for t in e.base.args if self._var(t)] + ([const] if const != 0 else [])
        legs = []
        for term in terms:
            root = sp.sqrt(term).replace(lambda x: isinstance(x, sp.Abs), lambda x: x.args[0])
            if root.has(sp.Abs) or any(p.exp.q == 2 and self._var(p.base) for p in root.atoms(sp.Pow) if p.exp.is_Rational):
                return e
            if self.signs(term) != {1}:
                return e
            legs.append(root)
        h = legs[0]
        for leg in legs[1:]:
            h = hypot(h, leg)
        return h ** (e.exp.p)

    def _common(self, e: sp.Expr) -> sp.Expr:
        """Common factors out of sums (fewer array operations; no new cancellation)."""
        return self._bottom_up(e, lambda x: sp.factor_terms(x) if x.is_Add else x)

    def _ratios(self, e: sp.Expr) -> sp.Expr:
        return self._bottom_up(e, self._ratio)

    def _ratio(self, e: sp.Expr) -> sp.Expr:
        if not e.is_Mul:
            return e
        for v in e.free_symbols & self.variables.keys():
            sq = v**2
            dens = [f for f in e.args if f.is_Pow and f.exp == -1 and any(v in h.args for h in f.base.atoms(hypot))]
            if sq in e.args and len(dens) == 1:
                rest = [f for f in e.args if f not in (sq, dens[0])]
                return sp.Mul(*rest, v, sp.UnevaluatedExpr(v / dens[0].base))
        return e


def stable(e: sp.Expr, variables: Mapping[sp.Symbol, tuple], values: Mapping) -> sp.Expr:
    """``e`` after the checked rewrites (module docstring); see :class:`Rewriter`.

    >>> w = sp.Symbol("w", real=True)
    >>> stable(1 - sp.sqrt(1 + w**2), {w: (-sp.oo, sp.oo)}, {})
    -w*w/(hypot(w, 1) + 1)
    """
    return Rewriter(variables, values)(e)


# --- printing --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Backend:
    """How one array library spells things: the module prefix and per-function names."""

    ns: str
    names: Mapping[str, str]

    def call(self, name: str) -> str:
        return self.names.get(name, f"{self.ns}.{name}")


NUMPY = Backend("np", {"asinh": "np.arcsinh", "acosh": "np.arccosh", "atanh": "np.arctanh", "asin": "np.arcsin",
                       "acos": "np.arccos", "atan": "np.arctan", "Abs": "np.abs", "Max": "np.maximum",
                       "Min": "np.minimum"})


class Printer:
    """Prints a sympy expression as array code for ``backend``.

    Unlike sympy's code printers it decides the order of evaluation: a sum's algebraic terms are
    added first, in one parenthesised group (so 1 − t is exact before t log t joins it), and a
    product's parameter-only factors are folded into one scalar before any array is touched. Roots
    x^{p/2}, x^{p/3} print as sqrt and cbrt (cbrt only for x known positive); constants free of
    parameters print as correctly rounded float literals. ``arrays`` are the symbols holding arrays
    and ``opaque`` those among them that hold transcendental values (common subexpressions).

    >>> t = sp.Symbol("t", positive=True)
    >>> Printer(NUMPY, [t]).doprint(t * sp.log(t) - t + 1)
    't*np.log(t) + (1 - t)'
    """

    def __init__(self, backend: Backend = NUMPY, arrays: Iterable[sp.Symbol] = (), opaque: Iterable[sp.Symbol] = ()):
        self.backend = backend
        self.arrays = set(arrays)
        self.opaque = set(opaque)

    def doprint(self, e) -> str:
        return self._p(sp.sympify(e))

    def _array(self, e: sp.Expr) -> bool:
        return bool(e.free_symbols & self.arrays)

    def _algebraic(self, e: sp.Expr) -> bool:
        return not (e.free_symbols & self.opaque) and not any(
            isinstance(a, sp.Function) or (a.is_Pow and not a.exp.is_Integer) for a in sp.preorder_traversal(e))

    def _p(self, e: sp.Expr, prec: int = 0) -> str:
        """e printed, parenthesised if its precedence is below ``prec`` (0 sum, 1 product, 2 power)."""
        if isinstance(e, sp.UnevaluatedExpr):  # a grouping the evaluation must keep
            inner = self._p(e.args[0])
            return inner if prec == 0 else f"({inner})"
        if e in (sp.oo, -sp.oo):
            # (−∞).is_negative is False in sympy (negative implies finite): compare instead
            s, own = ("-" if e == -sp.oo else "") + f"{self.backend.ns}.inf", 0 if e == -sp.oo else 3
        elif e.is_Rational:
            s, own = (str(e.p), 3) if e.q == 1 else (f"{e.p}/{e.q}", 1)
            own = 0 if e.is_negative else own
        elif not e.free_symbols and e.is_number:
            v = float(sp.N(e, 30))
            s, own = repr(v), 0 if v < 0 else 3
        elif e.is_Add:
            s, own = self._add(e), 0
        elif e.is_Mul:
            s, own = self._mul(e), 1
        elif e.is_Pow:
            s, own = self._pow(e)
        elif e.is_Symbol:
            s, own = e.name, 3
        elif hasattr(e, "array_code"):  # a function with its own array implementation (._orbit)
            s, own = e.array_code(self), 3
        elif isinstance(e, sp.Function):
            s, own = f"{self.backend.call(type(e).__name__)}({', '.join(self._p(a) for a in e.args)})", 3
        else:
            raise NotImplementedError(f"cannot print {type(e).__name__}: {e}")
        return f"({s})" if own < prec else s

    def _add(self, e: sp.Add) -> str:
        terms = sorted(e.args, key=sp.default_sort_key)
        alg = [t for t in terms if self._array(t) and self._algebraic(t)]
        consts = [t for t in terms if not self._array(t)]
        trans = [t for t in terms if self._array(t) and not self._algebraic(t)]
        if not (alg or trans):
            return self._sum(consts)
        group = ([sp.Add(*consts)] if consts else []) + alg  # 1 - t rather than -t + 1
        if trans and alg and len(group) > 1:
            return self._sum(trans + [sp.UnevaluatedExpr(sp.Add(*group))])
        return self._sum(trans + group)

    def _sum(self, terms) -> str:
        out = ""
        for k, t in enumerate(terms):
            if isinstance(t, sp.UnevaluatedExpr):
                negative = False
            elif not t.free_symbols and t.is_number:
                negative = float(sp.N(t)) < 0
            else:
                negative = t.could_extract_minus_sign()
            if k and negative:
                out += " - " + self._p(-t, 1)
            else:
                out += (" + " if k else "") + self._p(t, 1 if k else 0)
        return out

    def _mul(self, e: sp.Mul) -> str:
        c, rest = e.as_coeff_Mul()
        if c.is_negative:
            return "-" + self._p(-e, 1)
        num, den = [], []
        for f in sp.Mul.make_args(rest):
            if f.is_Pow and f.exp.is_Rational and f.exp.is_negative:
                den.append(f.base ** -f.exp)
            else:
                num.append(f)
        if c != 1:
            if c.is_Rational:
                num += [sp.Integer(c.p)] if c.p != 1 else []
                den += [sp.Integer(c.q)] if c.q != 1 else []
            else:
                num.append(c)
        snum = [f for f in num if not self._array(f)]
        sden = [f for f in den if not self._array(f)]
        anum = [f for f in num if self._array(f)]
        aden = [f for f in den if self._array(f)]
        parts = []
        if snum or sden:
            # the scalar part first, as one number: Python folds it before any array is touched
            top = "*".join(self._p(f, 1) for f in snum) if snum else "1"
            scalar = top if not sden else f"{top}/{self._p(sp.Mul(*sden, evaluate=False), 2)}"
            parts.append(scalar if not sden or not anum else f"({scalar})")
        parts += [self._p(f, 1) for f in anum]
        out = "*".join(parts) if parts else "1"
        if aden:
            out += "/" + self._p(sp.Mul(*aden, evaluate=False) if len(aden) > 1 else aden[0], 2)
        return out

    def _pow(self, e: sp.Pow) -> tuple[str, int]:
        b, x = e.base, e.exp
        if x.is_Rational and x.q in (2, 3) and (x.q == 2 or b.is_positive):
            root = f"{self.backend.call('sqrt' if x.q == 2 else 'cbrt')}({self._p(b)})"
            p = abs(x.p)
            s = root if p == 1 else f"{root}**{p}"
            return (s, 3 if p == 1 else 2) if x.p > 0 else (f"1/{s}", 1)
        if x.is_Integer and x.is_negative:
            return f"1/{self._p(b ** -x, 2)}", 1
        if x.is_Rational and x.q != 1:
            return f"{self._p(b, 3)}**({x.p}/{x.q})", 2
        return f"{self._p(b, 3)}**{self._p(x, 3)}", 2


# --- the plan: what every generated function computes, backend-independent -------------------------

@dataclasses.dataclass(frozen=True)
class ScalarSolve:
    """ν = (q')⁻¹(s) on U = (lo, hi) for an implicit piece; q, dq, ddq are formulas in ``var``."""

    nu: sp.Symbol
    s: sp.Symbol
    var: sp.Symbol
    q: sp.Expr
    dq: sp.Expr
    ddq: sp.Expr
    lo: sp.Expr
    hi: sp.Expr
    index: int
    #: ``_h<index>``, the array q''(ν) (see :meth:`ModuleWriter.scalar_curvature`)
    h: sp.Symbol = None
    #: per finite end of U: (end, +1 for hi / −1 for lo, the δ symbol, q'(end ∓ δ), q''(end ∓ δ))
    ends: tuple = ()


@dataclasses.dataclass(frozen=True)
class JointSolve:
    """µ_b = argmin Q_b(µ) − ⟨µ, w_b⟩ for a joint block; Q, grad, hess are formulas in ``vars``.

    ``mus`` name the solution's components, ``H`` the entries of (∇²Q_b(µ_b))⁻¹ = ∇²R_b and ``value``
    the block's R_b(w_b) = ⟨µ_b, w_b⟩ − Q_b(µ_b), which the solver returns without the cancellation
    of that formula next to w0 = ∇Q_b(0) (see :meth:`ModuleWriter.joint_solve`)."""

    mus: tuple[sp.Symbol, ...]
    ws: tuple[sp.Symbol, ...]
    vars: tuple[sp.Symbol, ...]
    Q: sp.Expr
    grad: tuple[sp.Expr, ...]
    hess: tuple[tuple[sp.Expr, ...], ...]
    index: int

    @property
    def H(self) -> tuple[tuple[sp.Symbol, ...], ...]:
        k = len(self.mus)
        return tuple(tuple(sp.Symbol(f"_H{self.index}_{a}{c}", real=True) for c in range(k)) for a in range(k))

    @property
    def value(self) -> sp.Symbol:
        return sp.Symbol(f"_R{self.index}", real=True)


@dataclasses.dataclass(frozen=True)
class OrbitSolve:
    """σ = σ_w(s) and ν = T(σ) of a monomial-orbit piece (:mod:`._orbit`): ``call(name, arg)`` is the
    orbit function ``name`` applied to ``arg`` (a sympy expression the printer turns into code)."""

    sig: sp.Symbol
    nu: sp.Symbol
    s: sp.Symbol
    orbit: object
    x0: tuple[sp.Expr, ...]
    index: int

    def output(self) -> sp.Expr:
        return self.orbit.output(self.s, self.x0)

    def time(self) -> sp.Expr:
        return self.orbit.time(self.sig, self.x0)


@dataclasses.dataclass(frozen=True)
class Plan:
    """The generated functions as stabilised sympy formulas, for any array backend.

    ``defs`` are (symbol, formula) definitions in evaluation order (the piece arguments s = L⁻ᵀ w and
    their scaled forms t = s/s0); ``checks`` are (symbol, lo, hi, label) bounds of dom R; ``solves``
    produce the numerically solved symbols; R, grad_R, hess_R are formulas in w and those symbols.
    ``U_checks`` are (coordinate, lo, hi, label) bounds of U for mirror_descent_step. ``rejected``
    lists rewrites that failed their check (none, for a correct rewriter).
    """

    d: Derivation
    defs: tuple[tuple[sp.Symbol, sp.Expr], ...]
    checks: tuple[tuple[sp.Symbol, sp.Expr, sp.Expr, str], ...]
    solves: tuple[ScalarSolve | JointSolve | OrbitSolve, ...]
    R: sp.Expr
    grad_R: tuple[sp.Expr, ...]
    hess_R: tuple[tuple[sp.Expr, ...], ...]
    Q: sp.Expr
    grad_Q: tuple[sp.Expr, ...]
    U_checks: tuple[tuple[sp.Expr, sp.Expr, sp.Expr, str], ...]
    rejected: tuple[str, ...]


def _finite(x) -> bool:
    return x not in (sp.oo, -sp.oo)


def plan(d: Derivation) -> Plan:
    """The :class:`Plan` of a commuting derivation: every formula through :class:`Rewriter`."""
    if not d.commuting or d.legendre is None:
        raise ValueError(f"{d.parametrization.name}: {d.status.value}; there is no mirror potential to export")
    p = d.parametrization
    values = p.numeric()
    rejected: list[str] = []

    def rewrite(e, variables):
        if has_orbit_function(e):
            return e  # orbit functions are opaque to the rewrites (and their mpmath checks costly)
        rw = Rewriter(variables, values)
        out = rw(e)
        rejected.extend(rw.rejected)
        return out

    defs, checks, solves = [], [], []
    R = sp.S.Zero
    grad: list = [sp.S.Zero] * p.d
    hess = [[sp.S.Zero] * p.d for _ in range(p.d)]
    mu_U: dict[sp.Symbol, tuple] = {}
    for bno, blk in enumerate(d.legendre.blocks):
        idx = blk.block.g_indices
        mus = [p.mu[i] for i in idx]
        mu_U.update({m: tuple(u) for m, u in zip(mus, blk.potential.U)})
        if blk.pieces is None:
            js = _joint(blk, mus, [p.w[i] for i in idx], bno + 1, rewrite)
            solves.append(js)
            # R_b = ⟨µ, w⟩ − Q_b(µ) from the solver: as a formula it cancels next to w0 (relative error eps/δ
            # at |w − w0| = δ|w0|), the solver's form ⟨µ, w − w0⟩ − ∫(1 − t)⟨µ, ∇²Q_b(tµ)µ⟩dt does not
            R += js.value
            for a, i in enumerate(idx):
                grad[i] = js.mus[a]
                for c, k in enumerate(idx):
                    hess[i][k] = js.H[a][c]
            continue
        identity = blk.L == sp.eye(len(idx))
        nus, ddrs = [], []
        for pc, sw in zip(blk.pieces, blk.s_of_w):
            if identity:
                s, j = pc.s, p.w.index(pc.s) + 1
            else:
                j = len(checks) + len(defs) + 1
                s = sp.Symbol(f"_s{j}", real=True)
                defs.append((s, sw))
            if _finite(pc.dom[0]) or _finite(pc.dom[1]):
                checks.append((s, pc.dom[0], pc.dom[1], sp.sstr(sw)))
            if pc.orbit is not None:
                sig, nu = sp.Symbol(f"_sig{j}", real=True), sp.Symbol(f"_nu{j}", real=True)
                x0 = tuple(p.x0[k] for k in blk.block.x_indices)
                solves.append(OrbitSolve(sig, nu, s, pc.orbit, x0, j))
                orb = pc.orbit
                # R = sν − Q(σ): stationary in ν, as for the other implicit pieces
                r = s * nu - (sig - x0[orb.m]) * (sig + x0[orb.m]) / (2 * orb.exponents[orb.m])
                dr, ddr = nu, rewrite(1 / orb.speed2(sig, x0), {sig: orb.sigma_range(x0, values)})
            elif pc.closed:
                r, dr, ddr = _closed_piece(pc, s, j, defs, values, rewrite)
            else:
                var = sp.Symbol(f"_v{j}", real=True)
                q, dq, ddq = (rewrite(e.xreplace({pc.nu: var}), {var: tuple(pc.U)}) for e in (pc.q, pc.dq, pc.ddq))
                nu = sp.Symbol(f"_nu{j}", real=True)
                h = sp.Symbol(f"_h{j}", real=True)
                solves.append(ScalarSolve(nu, s, var, q, dq, ddq, pc.U[0], pc.U[1], j, h, _end_forms(pc, j)))
                # R = sν − q(ν): first-order errors in ν cancel, since s = q'(ν) makes it stationary
                r, dr, ddr = s * nu - q.xreplace({var: nu}), nu, 1 / h
            R += sp.UnevaluatedExpr(r)  # keeps each piece's own grouping (e.g. (1 - t)) out of the total
            nus.append(dr)
            ddrs.append(ddr)
        Li = blk.L.inv()
        for i, v in zip(idx, Li * sp.Matrix(nus)):
            grad[i] = v
        Hb = Li * sp.diag(*ddrs) * Li.T
        for a, i in enumerate(idx):
            for c, k in enumerate(idx):
                hess[i][k] = Hb[a, c]
    U = {m: mu_U[m] for m in p.mu}
    U_checks = tuple((part.coordinate, part.lo, part.hi, sp.sstr(part.coordinate)) for part in d.domain()["U"]
                     if _finite(part.lo) or _finite(part.hi))
    return Plan(d, tuple(defs), tuple(checks), tuple(solves), R, tuple(grad), tuple(tuple(r) for r in hess),
                rewrite(d.Q, U), tuple(rewrite(g, U) for g in d.grad_Q), U_checks, tuple(rejected))


def _end_forms(pc, j: int) -> tuple:
    """q' and q'' in the distance δ to each finite end of U (ν = hi − δ or lo + δ).

    Next to a pole of q' a float ν keeps only ~eps·|end| of δ, so q''(ν) ~ δ^{-p-1} loses all its
    digits; substituted exactly, the bases collapse (1/α − 3(1/(3α) − δ) = 3δ) and the δ-forms are
    well conditioned."""
    out = []
    if has_orbit_function(pc.dq):
        return ()  # an end of U from an orbit is where σ → ∞, not a pole of ψ's powers: nothing to collapse
    d = sp.Symbol(f"_d{j}", positive=True)
    for end, sign in ((pc.U[1], 1), (pc.U[0], -1)):
        if not _finite(end):
            continue
        forms = []
        for e in (pc.dq, pc.ddq):
            e = e.xreplace({pc.nu: end - sign * d})
            forms.append(e.replace(lambda x: x.is_Pow, lambda x: sp.Pow(sp.expand(x.base), x.exp)))
        out.append((end, sign, d, *forms))
    return tuple(out)


def _joint(blk, mus, ws, number, rewrite) -> JointSolve:
    vs = tuple(sp.Symbol(f"_m{number}_{a}", real=True) for a in range(len(mus)))
    U = {v: tuple(u) for v, u in zip(vs, blk.potential.U)}
    grad = [g.xreplace(dict(zip(mus, vs))) for g in blk.potential.grad]
    return JointSolve(tuple(sp.Symbol(f"_mu{number}_{a}", real=True) for a in range(len(mus))), tuple(ws), vs,
                      rewrite(blk.potential.Q.xreplace(dict(zip(mus, vs))), U), tuple(rewrite(g, U) for g in grad),
                      tuple(tuple(rewrite(sp.diff(g, v), U) for v in vs) for g in grad), number)


def _closed_piece(pc, s, j, defs, values, rewrite):
    """(r, r', r'') of a closed piece, in ``s`` or in t = s/s0 when r is minimal at s0 = q'(0) ≠ 0.

    R itself has two candidate forms: the rewritten closed form, and the Legendre form
    R = sν − q(ν) with ν = r'(s), whose first-order error in ν cancels because s = q'(ν) makes it
    stationary. :func:`_probe` keeps the first that float64 evaluates accurately.
    """
    r, dr, ddr = (e.xreplace({pc.s: s}) for e in (pc.r, pc.dr, pc.ddr))
    lo, hi = pc.dom
    s0 = sp.simplify(pc.dq.xreplace({pc.nu: 0}))
    var, x, interval, back = s, s, (lo, hi), {}
    if s0 != 0 and (s0.is_positive or s0.is_negative):
        one_sided = (lo == 0) if s0.is_positive else (hi == 0)
        var = sp.Symbol(f"_t{j}", positive=True) if one_sided else sp.Symbol(f"_t{j}", real=True)
        interval = (lo / s0, hi / s0) if s0.is_positive else (hi / s0, lo / s0)
        defs.append((var, s / s0))
        x, back = s0 * var, {s: s0 * var}
    check = Rewriter({var: interval}, values)
    out = []
    for e in (r, dr, ddr):
        plain = e.xreplace(back)
        scaled = sp.expand_log(plain, force=False).replace(
            lambda y: y.is_Pow and y.exp.is_Rational and y.exp.q > 1 and sp.factor(y.base).is_Mul,
            lambda y: sp.factor(y.base) ** y.exp)  # √(s0² t² + s0²) = |s0| √(t² + 1)
        scaled = sp.factor_terms(sp.expand(scaled, deep=False))
        c, rest = scaled.as_coeff_Mul()
        if rest.is_Add:  # sympy would distribute a number over the sum, undoing the grouping
            scaled = c * sp.UnevaluatedExpr(rest)
        out.append(rewrite(scaled if check.equal(plain, scaled) else plain, {var: interval}))
    nu = sp.Symbol("_nu", real=True)
    q = rewrite(pc.q.xreplace({pc.nu: nu}), {nu: tuple(pc.U)})
    legendre = x * out[1] - q.xreplace({nu: out[1]})
    pick = _probe([out[0], legendre], pc, s, defs[-1] if back else None, values)
    return (out[0], legendre)[pick], out[1], out[2]


def _probe(candidates, pc, s, tdef, values) -> int:
    """The first candidate formula for r(s) whose float64 value is within max(1e-13, 8κ eps) of
    mpmath (κ = |s r'(s)/r(s)|) at points of dom across 1e-100..1e100 and crowding the minimiser;
    else the one with the smallest worst error/tolerance."""
    import numpy as np

    floats = {q: float(v) for q, v in values.items()}
    exact = {q: sp.Rational(f) for q, f in floats.items()}
    with mp.workdps(30):
        lo, hi = to_mpf(pc.dom[0], exact), to_mpf(pc.dom[1], exact)
        s0 = to_mpf(pc.dq.xreplace({pc.nu: 0}), exact)
    pts = {sign * 10.0**k for k in range(-100, 101, 5) for sign in (1, -1)}
    pts |= {float(s0 * (1 + sign * mp.mpf(10) ** -k)) for k in range(1, 9) for sign in (1, -1)} if s0 else set()
    pts = np.array(sorted(x for x in pts if lo < x < hi))
    r = sp.lambdify([pc.s], pc.r.xreplace(exact), "mpmath")
    dr = sp.lambdify([pc.s], pc.dr.xreplace(exact), "mpmath")
    ref, tol = [], []
    for x in pts:
        with mp.workdps(40 + 2 * int(abs(math.log10(abs(x))))):
            v = r(mp.mpf(x))
            ref.append(v)
            tol.append(max(1e-13, 8 * float(abs(x * dr(mp.mpf(x)) / v)) * 2.0**-52) if v else 1e-13)
    worst = []
    arrays = {s} | ({tdef[0]} if tdef else set())
    for cand in candidates:
        lines, (res,) = cse_code([cand.xreplace({q: sp.Float(f, 17) for q, f in floats.items()})], arrays)
        pre = [f"{tdef[0].name} = {Printer(NUMPY, {s}).doprint(tdef[1].xreplace(floats))}"] if tdef else []
        ns = {"np": np}
        exec("def f(" + s.name + "):\n    " + "\n    ".join([*pre, *lines, "return " + res]), ns)
        with np.errstate(all="ignore"):
            got = ns["f"](pts)
        with mp.workdps(30):
            errs = [float(abs(mp.mpf(float(g)) - v) / abs(v)) / t if v and np.isfinite(g) else (0.0 if g == 0 else math.inf)
                    for g, v, t in zip(got, ref, tol)]
        worst.append(max(errs, default=0.0))
        if worst[-1] <= 1:
            return len(worst) - 1
    return min(range(len(worst)), key=worst.__getitem__)


# --- the module ------------------------------------------------------------------------------------

_HELPERS = '''
def _points(a, name):
    a = np.asarray(a, dtype=float)
    if a.ndim == 0 or a.shape[-1] != DIM:
        raise ValueError(f"{name} must have last axis of length {DIM}, got shape {a.shape}")
    return a


def _inside(x, lo, hi, label, where="dom R"):
    bad = ~(x > lo) if hi == np.inf else ~(x < hi) if lo == -np.inf else ~((x > lo) & (x < hi))
    if np.any(bad):
        raise ValueError(f"{label} = {np.asarray(x)[bad].flat[0]!r} is outside {where}, which needs {lo} < {label} < {hi}")
'''

_POLISH = '''

def _polish(g, dg, s, nu, lo, hi):
    """Two Newton steps on g(nu) = s from the solver's nu, each kept only where it stays inside
    (lo, hi) and does not increase |g(nu) - s| (a bracketing solver may stop short of a root
    that lies very close to 0)."""
    with np.errstate(all="ignore"):
        for _ in range(2):
            f = g(nu) - s
            new = nu - f / dg(nu)
            ok = (new > lo) & (new < hi) & (np.abs(g(new) - s) <= np.abs(f))
            nu = np.where(ok, new, nu)
    return nu
'''


class ModuleWriter:
    """Writes the standalone module of a :class:`Plan` for the numpy backend.

    Subclasses (:mod:`._array_export`) override the backend, the imports and helpers, how inputs
    are taken, how bounds are checked, how solves are done and how outputs are stacked.
    """

    backend = NUMPY
    library = "numpy"

    def __init__(self, pl: Plan):
        self.plan = pl
        self.p = pl.d.parametrization
        names = {q.name for q in self.p.parameters}
        clash = names & {"w", "mu", "lr", "grad_L_at_w", "np", "jnp", "jax", "torch", "math"}
        if clash:
            raise ValueError(f"a parameter named {sorted(clash)[0]!r} would shadow a name of the generated module")

    # pieces a subclass changes ------------------------------------------------------------------

    def imports(self) -> list[str]:
        return ["import numpy as np"]

    def helpers(self) -> str:
        src = _HELPERS
        pl = self.plan
        if has_orbit_function(pl.Q, *pl.grad_Q):
            from ._orbit import NUMPY_ORBIT_SOURCE

            src += "\n" + NUMPY_ORBIT_SOURCE.rstrip("\n") + "\n"
        if any(not isinstance(sv, OrbitSolve) for sv in self.plan.solves):
            from ._solvers import solver_source

            src += "\n\n" + solver_source().strip("\n") + "\n"
            if any(isinstance(sv, ScalarSolve) for sv in self.plan.solves):
                src += _POLISH
        return src

    def take(self, var: str) -> str:
        return f'{var} = _points({var}, "{var}")'

    def check(self, x: str, lo: str, hi: str, label: str, where: str = "dom R") -> list[str]:
        return [f"_inside({x}, {lo}, {hi}, {label!r}{'' if where == 'dom R' else f', {where!r}'})"]

    def scalar_solve(self, sv: ScalarSolve, kw: str) -> list[str]:
        g, dg = f"lambda v: _dq{sv.index}(v{kw})", f"lambda v: _ddq{sv.index}(v{kw})"
        bounds = f"{self._scalar(sv.lo)}, {self._scalar(sv.hi)}"
        return [f"{sv.nu.name} = _scalar_inverse({g}, {dg}, {sv.s.name}, {bounds})",
                f"{sv.nu.name} = _polish({g}, {dg}, {sv.s.name}, {sv.nu.name}, {bounds})"]

    @staticmethod
    def joint_w0(js: JointSolve) -> str:
        """The ``, w0=(hi, lo)`` argument of ``_convex_newton`` for a joint block, or "" when w0 = ∇Q_b(0)
        is not a plain number (it has parameters; the solver then takes w0 = grad(0) in floats).

        w0 is given as hi + lo to twice float precision: next to w0 the solver takes ∇Q_b(µ) − w as
        ∫∇²Q_b(tµ)µ dt − (w − w0) and R_b as ⟨µ, w − w0⟩ − ∫(1 − t)⟨µ, ∇²Q_b(tµ)µ⟩dt, exact only with w0 exact."""
        w0 = [sp.N(g.xreplace(dict.fromkeys(js.vars, 0)), 40) for g in js.grad]
        if not all(v.is_Float and abs(v) < 1e300 for v in w0):
            return ""
        hi = [float(v) for v in w0]
        lo = [float(v - sp.Float(h, 40)) for v, h in zip(w0, hi)]
        return f", w0=(np.array({hi!r}), np.array({lo!r}))"

    def joint_solve(self, js: JointSolve, kw: str, need_H: bool, need_R: bool = False) -> list[str]:
        """µ_b (and, with ``need_R``, the block's value R_b = ``_R<b>``, from the solver: the formula
        ⟨µ, w⟩ − Q_b(µ) loses its digits next to w0) and, with ``need_H``, the entries of ∇²R_b."""
        b = js.index
        extra = self.joint_w0(js) + (", value=True" if need_R else "")
        out = f"_mu{b}, {js.value.name}" if need_R else f"_mu{b}"
        lines = [f"{out} = _convex_newton(lambda m: _Q{b}(m{kw}), lambda m: _gradQ{b}(m{kw}), "
                 f"lambda m: _hessQ{b}(m{kw}), {self.stack([w.name for w in js.ws], -1)}{extra})"]
        lines += [f"{m.name} = _mu{b}[..., {a}]" for a, m in enumerate(js.mus)]
        if need_H:
            lines.append(f"_H{b} = {self.backend.ns}.linalg.inv(_hessQ{b}(_mu{b}{kw}))")
            lines += [f"{h.name} = _H{b}[..., {a}, {c}]" for a, row in enumerate(js.H) for c, h in enumerate(row)]
        return lines

    def stack(self, items: Sequence[str], axis: int) -> str:
        return f"{self.backend.ns}.stack([{', '.join(items)}], axis={axis})"

    def full(self, value: str, like: str) -> str:
        ns = self.backend.ns
        return f"{ns}.zeros({like}.shape[:-1])" if value == "0" else f"{ns}.full({like}.shape[:-1], float({value}))"

    def extra_functions(self) -> list[str]:
        return []

    # the module ---------------------------------------------------------------------------------

    def _printer(self, arrays, opaque=()) -> Printer:
        return Printer(self.backend, arrays, opaque)

    def _scalar(self, e) -> str:
        return self._printer(()).doprint(sp.sympify(e))

    @property
    def _sig(self) -> str:
        p = self.p
        if not p.parameters:
            return ""
        return ", *, " + ", ".join(f"{q.name}={float(p.defaults[q])!r}" for q in p.parameters)

    @property
    def _kw(self) -> str:
        return "".join(f", {q.name}={q.name}" for q in self.p.parameters)

    def scalar_curvature(self, sv: ScalarSolve, kw: str) -> list[str]:
        """The array q''(ν) of an implicit piece, accurate next to a finite end of U."""
        if not sv.ends:
            return [f"{sv.h.name} = _ddq{sv.index}({sv.nu.name}{kw})"]
        return [f"{sv.h.name} = _curvature{sv.index}({sv.nu.name}, {sv.s.name}{kw})"]

    def curvature_helpers(self, sv: ScalarSolve) -> list[str]:
        """``_curvature<j>``: q''(ν), except within a quarter of U of a finite end, where δ = |end − ν|
        (exact in floats there) is refined by Newton on q'(end ∓ δ) = s and q'' taken in δ."""
        if not sv.ends:
            return []
        out = []
        for _end, sign, d, dq_end, ddq_end in sv.ends:
            tag = "hi" if sign > 0 else "lo"
            out += self._helper_function(f"_dq{sv.index}_{tag}", d.name, [d], [dq_end], "scalar")
            out += self._helper_function(f"_ddq{sv.index}_{tag}", d.name, [d], [ddq_end], "scalar")
        sig = "".join(f", {q.name}" for q in self.p.parameters)
        kw = "".join(f", {q.name}={q.name}" for q in self.p.parameters)
        lines = [f"def _curvature{sv.index}(nu, s{', *' if sig else ''}{sig}):",
                 f'    """q\'\'(ν) of piece {sv.index}, accurate next to the finite ends of U."""',
                 f"    h = _ddq{sv.index}(nu{kw})", "    with np.errstate(all=\"ignore\"):"]
        width = f"({self._scalar(sv.hi)} - {self._scalar(sv.lo)})" if _finite(sv.hi) and _finite(sv.lo) else None
        for end, sign, _d, _dq_end, _ddq_end in sv.ends:
            tag = "hi" if sign > 0 else "lo"
            e = self._scalar(end)
            dist = f"({e} - nu)" if sign > 0 else f"(nu - {e})"
            span = width or f"abs({e})"
            # q'(end ∓ δ) moves against δ at hi and with it at lo: the Newton step's sign follows
            step = "+" if sign > 0 else "-"
            # d starts with an absolute error of one ulp of the end, so its relative error can be
            # large when ν is within a few ulps of the pole: Newton, kept positive, repairs it
            lines += [f"        d = {dist}",
                      f"        near = (d > 0) & (d < 0.25 * {span})",
                      "        d = np.where(near, d, 1.0)",
                      "        for _ in range(8):",
                      f"            new = d {step} (_dq{sv.index}_{tag}(d{kw}) - s) / _ddq{sv.index}_{tag}(d{kw})",
                      "            d = np.where(new > 0, new, d / 2)",
                      f"        h = np.where(near, _ddq{sv.index}_{tag}(d{kw}), h)"]
        return out + lines + ["    return h", "", ""]

    def header(self) -> list[str]:
        p, d = self.p, self.plan.d
        dom = "; ".join(f"{part.coordinate} in ({part.lo}, {part.hi})" if part.lo is not None else
                        f"{sp.sstr(list(part.coordinate))}: {part.description}" for part in d.domain()["dom_R"])
        form = f"R(w) = {sp.sstr(d.R)}" if d.closed_form else \
            "R(w) = <mu, w> - Q(mu) where grad_Q(mu) = w (implicit: solved numerically)"
        lines = [f'"""Mirror potential of the mirrorsym recipe {p.name!r}, generated by mirrorsym {__version__} ({self.library}).',
                 "", f"{p.title or p.name}." if p.title else "",
                 f"Parametrization w = G(x) = ({', '.join(sp.sstr(g) for g in p.G)}), x = ({', '.join(x.name for x in p.variables)}),",
                 f"x0 = ({', '.join(sp.sstr(v) for v in p.x0)}); status: {d.status.value}.",
                 "", *_wrap(form, 96), f"dom R: {dom}.", "",
                 "Functions take arrays whose last axis has length DIM (any batch shape before it);",
                 "parameters are keyword arguments defaulting to PARAMETERS. evaluate(w) returns",
                 "(R, grad_R, hess_R) sharing their subexpressions; mirror_descent_step works in the",
                 "dual coordinates mu = grad_R(w) and needs only grad_Q.", '"""']
        return [line for line in lines if line is not None]

    def source(self) -> str:
        pl, p = self.plan, self.p
        params = "{" + ", ".join(f"{q.name!r}: {float(p.defaults[q])!r}" for q in p.parameters) + "}"
        out = [*self.header(), "", *self.imports(), "", f"RECIPE = {p.name!r}", f"MIRRORSYM_VERSION = {__version__!r}",
               f"PARAMETERS = {params}", f"DIM = {p.d}", "", self.helpers().strip("\n"), "", ""]
        for sv in pl.solves:
            if isinstance(sv, OrbitSolve):
                continue
            if isinstance(sv, ScalarSolve):
                for name, e in (("dq", sv.dq), ("ddq", sv.ddq)):
                    out += self._helper_function(f"_{name}{sv.index}", sv.var.name, [sv.var], [e], "scalar")
                out += self.curvature_helpers(sv)
            else:
                out += self._helper_function(f"_Q{sv.index}", "m", sv.vars, [sv.Q], "value")
                out += self._helper_function(f"_gradQ{sv.index}", "m", sv.vars, list(sv.grad), "vector")
                out += self._helper_function(f"_hessQ{sv.index}", "m", sv.vars, [e for row in sv.hess for e in row], "matrix")
        out += self._dual()
        out += self._primal("grad_R", "∇R(w) = µ(w), the mirror map (the inverse of grad_Q).", ["grad"])
        out += self._primal("R", "The mirror potential R(w), normalised by R(w0) = 0 and ∇R(w0) = 0.", ["R"])
        out += self._primal("hess_R", "∇²R(w) = ∇²Q(µ(w))⁻¹ = (J Jᵀ)⁻¹ on the reachable set; shape (..., DIM, DIM).", ["hess"])
        out += self._primal("evaluate", "(R(w), ∇R(w), ∇²R(w)) in one pass, sharing subexpressions.", ["R", "grad", "hess"])
        out += self._step()
        out += self.extra_functions()
        while out[-1] == "":
            out.pop()
        return "\n".join(out) + "\n"

    def _helper_function(self, name: str, arg: str, vars_, exprs, kind: str) -> list[str]:
        sig = "".join(f", {q.name}" for q in self.p.parameters)
        lines = [f"def {name}({arg}{', *' if sig else ''}{sig}):"]
        if kind != "scalar":
            lines += [f"    {v.name} = {arg}[..., {a}]" for a, v in enumerate(vars_)]
        body, results = self._cse(exprs, set(vars_))
        lines += ["    " + line for line in body]
        if kind == "matrix":
            k = len(vars_)
            rows = [self.stack(results[a * k:(a + 1) * k], -1) for a in range(k)]
            lines.append(f"    return {self.stack(rows, -2)}")
        elif kind == "vector":
            lines.append(f"    return {self.stack(results, -1)}")
        else:
            lines.append(f"    return {results[0]}")
        return lines + ["", ""]

    def _cse(self, exprs, arrays: set, like: str | None = None) -> tuple[list[str], list[str]]:
        lines, results = cse_code(exprs, arrays, self.backend)
        if like is not None:
            results = [r if sp.sympify(e).free_symbols & arrays else self.full(r, like) for r, e in zip(results, exprs)]
        return lines, results

    def _dual(self) -> list[str]:
        pl, p = self.plan, self.p
        out = []
        for name, doc, exprs in (("grad_Q", "∇Q(µ) = G(ψ(x0; µ)): the model w reached at dual coordinates µ.", pl.grad_Q),
                                 ("Q", "The dual potential Q(µ), Q(0) = 0, strictly convex on U.", [pl.Q])):
            lines = [f"def {name}(mu{self._sig}):", f'    """{doc}"""', "    " + self.take("mu")]
            used = set().union(*(sp.sympify(e).free_symbols for e in exprs))
            used |= set().union(*(sp.sympify(c[0]).free_symbols for c in pl.U_checks)) if pl.U_checks else set()
            lines += [f"    {m.name} = mu[..., {i}]" for i, m in enumerate(p.mu) if m in used]
            pr = self._printer(set(p.mu))  # beyond a finite end of U the flow has blown up: no w there
            for coord, lo, hi, label in pl.U_checks:
                lines += ["    " + line for line in self.check(pr.doprint(coord), self._scalar(lo), self._scalar(hi), label, "U")]
            body, results = self._cse(exprs, set(p.mu), like="mu")
            lines += ["    " + line for line in body]
            lines.append(f"    return {self._vector(results) if name == 'grad_Q' else results[0]}")
            out += lines + ["", ""]
        return out

    def _vector(self, items: list[str]) -> str:
        if len(items) == 1:
            return f"({items[0]})[..., None]" if not items[0].isidentifier() else f"{items[0]}[..., None]"
        return self.stack(items, -1)

    def _primal(self, name: str, doc: str, what: list[str]) -> list[str]:
        pl, p = self.plan, self.p
        exprs: list = []
        if "R" in what:
            exprs.append(pl.R)
        if "grad" in what:
            exprs += list(pl.grad_R)
        if "hess" in what:
            exprs += [e for row in pl.hess_R for e in row]
        exprs = [sp.sympify(e) for e in exprs]
        need = set().union(*(e.free_symbols for e in exprs)) | {c[0] for c in pl.checks}
        solves = []
        for sv in reversed(pl.solves):  # solves depend on defs and w only
            produced = ({sv.nu, sv.h} if isinstance(sv, ScalarSolve) else {sv.sig, sv.nu} if isinstance(sv, OrbitSolve)
                        else set(sv.mus) | {h for row in sv.H for h in row} | {sv.value})
            if produced & need:
                solves.insert(0, sv)
                need |= set(sv.ws) if isinstance(sv, JointSolve) else {sv.s}
                if isinstance(sv, OrbitSolve):
                    need.add(sv.sig)
        defs = [(s, e) for s, e in pl.defs if s in need]
        for _s, e in defs:
            need |= e.free_symbols
        lines = [f"def {name}(w{self._sig}):", f'    """{doc}"""', "    " + self.take("w")]
        lines += [f"    {w.name} = w[..., {i}]" for i, w in enumerate(p.w) if w in need]
        arrays = set(p.w)

        def checks(symbols):  # each bound right after its coordinate exists, before any use
            for s, lo, hi, label in pl.checks:
                if s in symbols:
                    lines.extend("    " + line for line in self.check(s.name, self._scalar(lo), self._scalar(hi), label))

        checks(set(p.w))
        for s, e in defs:
            lines.append(f"    {s.name} = {self._printer(arrays).doprint(e)}")
            arrays.add(s)
            checks({s})
        for sv in solves:
            if isinstance(sv, OrbitSolve):
                pr = self._printer(arrays)
                if sv.nu in need:  # ∇²R needs σ only; the quadrature T(σ) is for R and ∇R
                    lines.append(f"    {sv.sig.name}, {sv.nu.name} = {sv.output().array_code(pr, '_orbit_gradient')}")
                else:
                    lines.append(f"    {sv.sig.name} = {sv.output().array_code(pr)}")
                arrays |= {sv.sig, sv.nu}
            elif isinstance(sv, ScalarSolve):
                lines += ["    " + line for line in self.scalar_solve(sv, self._kw)]
                if sv.h in need:  # only ∇²R needs q''(ν)
                    lines += ["    " + line for line in self.scalar_curvature(sv, self._kw)]
                arrays |= {sv.nu, sv.h}
            else:
                need_H = bool(need & {h for row in sv.H for h in row})
                lines += ["    " + line for line in self.joint_solve(sv, self._kw, need_H, sv.value in need)]
                arrays |= set(sv.mus) | {h for row in sv.H for h in row} | {sv.value}
        body, results = self._cse(exprs, arrays, like="w")
        lines += ["    " + line for line in body]
        k, outs = 0, []
        for part in what:
            if part == "R":
                outs.append(results[k])
                k += 1
            elif part == "grad":
                outs.append(self._vector(results[k:k + p.d]))
                k += p.d
            else:
                flat = results[k:k + p.d * p.d]
                k += p.d * p.d
                if p.d == 1:
                    outs.append(f"({flat[0]})[..., None, None]" if not flat[0].isidentifier() else f"{flat[0]}[..., None, None]")
                else:
                    outs.append(self.stack([self.stack(flat[a * p.d:(a + 1) * p.d], -1) for a in range(p.d)], -2))
        lines.append(f"    return {', '.join(outs)}")
        return lines + ["", ""]

    def _step(self) -> list[str]:
        pl, p = self.plan, self.p
        lines = [f"def mirror_descent_step(mu, grad_L_at_w, lr{self._sig}):",
                 '    """One step of mirror descent in the dual coordinates µ = ∇R(w): returns (µ⁺, w⁺) with',
                 "", "    µ⁺ = µ − lr ∇L(w),   w⁺ = ∇Q(µ⁺),", "",
                 "    so only ∇Q is evaluated (no inverse). Gradient descent on x with step lr follows these",
                 "    iterates to first order in lr; start from µ = 0, w = w0. µ⁺ must stay in U.", '    """',
                 "    " + self.take("mu"), f"    mu = mu - lr * {self._asarray('grad_L_at_w')}"]
        used = set().union(*(sp.sympify(c[0]).free_symbols for c in pl.U_checks)) if pl.U_checks else set()
        lines += [f"    {m.name} = mu[..., {i}]" for i, m in enumerate(p.mu) if m in used]
        pr = self._printer(set(p.mu))
        for coord, lo, hi, label in pl.U_checks:
            lines += ["    " + line for line in self.check(pr.doprint(coord), self._scalar(lo), self._scalar(hi), label, "U")]
        lines.append(f"    return mu, grad_Q(mu{self._kw})")
        return lines + ["", ""]

    def _asarray(self, name: str) -> str:
        return f"np.asarray({name}, dtype=float)"


def cse_code(exprs, arrays: Iterable[sp.Symbol], backend: Backend = NUMPY) -> tuple[list[str], list[str]]:
    """Assignments of the common subexpressions of ``exprs`` and the printed results."""
    arrays, opaque = set(arrays), set()
    reps, reduced = sp.cse([sp.sympify(e) for e in exprs], symbols=sp.numbered_symbols("_e"), order="canonical")
    lines = []
    for sym, val in reps:
        pr = Printer(backend, arrays, opaque)
        if val.free_symbols & arrays:
            arrays.add(sym)
            if not pr._algebraic(val):
                opaque.add(sym)
        lines.append(f"{sym.name} = {pr.doprint(val)}")
    pr = Printer(backend, arrays, opaque)
    return lines, [pr.doprint(e) for e in reduced]


def _wrap(text: str, width: int) -> list[str]:
    """Split a long formula line at ' + ' / ' - ' so the docstring stays readable."""
    out, line = [], ""
    for tok in text.replace(" - ", " \0- ").replace(" + ", " \0+ ").split("\0"):
        if line and len(line) + len(tok) > width:
            out.append(line.rstrip())
            line = "    "
        line += tok
    return out + [line.rstrip()]


def numpy_module(d: Derivation, dim: int | None = None) -> str:
    """Source of the standalone numpy module of a commuting derivation (see the module docstring).

    For a coordinate template (``dimension = "n"``) the module works elementwise on any number of
    coordinates, or checks for exactly ``dim`` of them when given (``--dim N``)."""
    if d.parametrization.dimension is not None:
        return _family_module(ModuleWriter(plan(d)), dim)
    return ModuleWriter(plan(d)).source()


_PUBLIC = ("grad_Q", "Q", "grad_R", "R", "hess_R", "evaluate", "mirror_descent_step")

_FAMILY = '''

def _coordinates(a, name):
    """(..., n) -> (..., n, 1): every coordinate is its own block, w_i = G(x_i)."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0 or (DIM is not None and a.shape[-1] != DIM):
        raise ValueError(f"{name} must have last axis of length {DIM or 'n >= 1'}, got shape {a.shape}")
    return a[..., None]


def _diagonal(h):
    out = np.zeros(h.shape + h.shape[-1:])
    i = np.arange(h.shape[-1])
    out[..., i, i] = h
    return out


def grad_Q(mu{sig}):
    """∇Q(µ), coordinate by coordinate: ∇Q(µ)_i = q'(µ_i)."""
    return _coordinate_grad_Q(_coordinates(mu, "mu"){kw})[..., 0]


def Q(mu{sig}):
    """Q(µ) = Σ_i q(µ_i)."""
    return np.sum(_coordinate_Q(_coordinates(mu, "mu"){kw}), axis=-1)


def grad_R(w{sig}):
    """∇R(w)_i = r'(w_i), the mirror map coordinate by coordinate."""
    return _coordinate_grad_R(_coordinates(w, "w"){kw})[..., 0]


def R(w{sig}):
    """R(w) = Σ_i r(w_i)."""
    return np.sum(_coordinate_R(_coordinates(w, "w"){kw}), axis=-1)


def hess_R_diagonal(w{sig}):
    """The diagonal r''(w_i) of ∇²R(w) (which is diagonal): use it for large n."""
    return _coordinate_hess_R(_coordinates(w, "w"){kw})[..., 0, 0]


def hess_R(w{sig}):
    """∇²R(w) = diag(r''(w_i)); shape (..., n, n)."""
    return _diagonal(hess_R_diagonal(w{kw}))


def evaluate(w{sig}):
    """(R(w), ∇R(w), ∇²R(w)) in one pass."""
    r, g, h = _coordinate_evaluate(_coordinates(w, "w"){kw})
    return np.sum(r, axis=-1), g[..., 0], _diagonal(h[..., 0, 0])


def mirror_descent_step(mu, grad_L_at_w, lr{sig}):
    """One mirror-descent step in dual coordinates, coordinate by coordinate: returns (µ⁺, ∇Q(µ⁺))."""
    mu, w = _coordinate_mirror_descent_step(_coordinates(mu, "mu"), _coordinates(grad_L_at_w, "grad_L_at_w"), lr{kw})
    return mu[..., 0], w[..., 0]
'''


def _family_module(writer: ModuleWriter, dim: int | None) -> str:
    """The module of one coordinate's block, its public functions renamed ``_coordinate_*``, with
    elementwise wrappers for w ∈ R^n: R(w) = Σ_i r(w_i), ∇R and ∇Q coordinate by coordinate,
    ∇²R diagonal (MATH.md §6: independent identical blocks)."""
    src = writer.source()
    for name in _PUBLIC:
        src = re.sub(rf"^def {name}\(", f"def _coordinate_{name}(", src, flags=re.M)
    src = src.replace("    return mu, grad_Q(mu", "    return mu, _coordinate_grad_Q(mu")
    # the block's own functions check their last axis against the block size, not the dimension
    src = src.replace("a.shape[-1] != DIM:", "a.shape[-1] != BLOCK:").replace("of length {DIM}", "of length {BLOCK}")
    n = writer.p.dimension
    src = src.replace("\nDIM = 1\n", f"\nDIM = {dim!r}  # the number of coordinates (None: any n, the symbol {n!r})\n"
                      "BLOCK = 1  # components per coordinate\n", 1)
    wrappers = _FAMILY.replace("{sig}", writer._sig).replace("{kw}", writer._kw)
    return src.rstrip("\n") + "\n" + wrappers
