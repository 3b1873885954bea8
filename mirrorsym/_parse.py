"""The safe expression parser: recipe text to sympy, without ``eval``.

Recipes come from files a user may have downloaded, so their expressions are untrusted. They are read
with :func:`ast.parse` and the tree is walked here, building sympy objects node by node; nothing outside
this grammar is ever evaluated (no ``eval``, ``exec``, ``sympify`` or ``parse_expr``)::

    expr   := number | NAME | "pi" | "E" | "(" expr ")" | ("+" | "-") expr
            | expr ("+" | "-" | "*" | "/" | "**") expr
            | FUNC "(" expr ("," expr)* ")"
    number := an int or float literal, read from its text: 0.1 is exactly 1/10, never a double
    NAME   := a declared variable or parameter (ASCII only)
    FUNC   := exp | log | sqrt | cbrt | sin | cos | tan | sinh | cosh | tanh | asin | acos | atan
            | asinh | acosh | atanh | Abs | abs | sign | Max | Min

``log(x, b)`` is the logarithm of x to base b and ``cbrt(x)`` the real cube root (``cbrt(-8) = -2``).

Limits, so that hostile text can neither hang the parser nor exhaust memory: at most 10,000
characters, 5,000 sub-expressions nested at most 100 deep (a sum or product of many terms is one
level), literals of at most 100 digits. sympy evaluates numbers eagerly -- ``9**999999`` at once,
``(2*u)**n`` as ``2**n*u**n``, ``exp(c*log(x))`` as ``x**c``, ``2*(3*u + 1)`` as ``6*u + 2`` -- so
each power, sum and product is checked *before* sympy builds it. With L the log2 size of the largest
number (numerator or denominator) in a base, a power needs ``|e| <= 1000`` and ``|e| * L <= 2048``
(``9**999``, about 3,167 bits, is refused), and a root (a fractional power, which sympy factors)
``L <= 1024``; the numbers a sum or product can form are bounded by 2048 bits likewise, and so is the
growth of all of them together, so that there are few large numbers: sympy's numerical comparisons
(``Max``, ``sign``, ``Abs``) take about a second on ``exp`` of a 2048-bit number.

>>> import sympy as sp
>>> u, v = sp.symbols("u v", real=True)
>>> parse_expression("0.1*u**2 - exp(-v)", {"u": u, "v": v}, where="parametrization[0]")
u**2/10 - exp(-v)
>>> parse_expression("u + beta", {"u": u}, where="parametrization[1]")
Traceback (most recent call last):
...
mirrorsym._errors.RecipeError: parametrization[1]: undeclared symbol 'beta' in 'u + beta'
"""

from __future__ import annotations

import ast
import itertools
import math
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Mapping

import sympy as sp

from ._errors import RecipeError

__all__ = ["CONSTANTS", "FUNCTIONS", "parse_expression"]

MAX_LENGTH = 10_000
MAX_DEPTH = 100
MAX_NODES = 5_000
MAX_DIGITS = 100
MAX_EXPONENT = 1000
#: bound on log2 of any number a power, sum or product forms, and on their growth in all
MAX_BITS = 2048
#: bound on log2 of a number under a root: sympy factors it to pull out perfect powers, at a cost that
#: grows steeply (about 0.2 s for a 4,096-bit radicand)
MAX_ROOT_BITS = 1024
_CLIP = 80

#: the functions a recipe may call: name -> (sympy constructor, least and most number of arguments)
FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int, int | None]] = {
    "exp": (sp.exp, 1, 1),
    "log": (sp.log, 1, 2),
    "sqrt": (sp.sqrt, 1, 1),
    "cbrt": (lambda x: sp.real_root(x, 3), 1, 1),
    **{f: (getattr(sp, f), 1, 1) for f in ("sin", "cos", "tan", "sinh", "cosh", "tanh")},
    **{f: (getattr(sp, f), 1, 1) for f in ("asin", "acos", "atan", "asinh", "acosh", "atanh")},
    "Abs": (sp.Abs, 1, 1),
    "abs": (sp.Abs, 1, 1),
    "sign": (sp.sign, 1, 1),
    "Max": (sp.Max, 1, None),
    "Min": (sp.Min, 1, None),
}
#: the functions that are powers of their argument, checked like ``**``
_ROOTS = {"sqrt": sp.Rational(1, 2), "cbrt": sp.Rational(1, 3)}
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

_OPERATOR_TEXT = {
    ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>",
    ast.BitOr: "|", ast.BitAnd: "&", ast.BitXor: "^", ast.Invert: "~", ast.Not: "not",
}
#: how a message names each construct outside the grammar
_FORBIDDEN = {
    ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Slice: "slices",
    ast.Lambda: "lambda", ast.IfExp: "conditional expressions", ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators", ast.NamedExpr: "assignment expressions (:=)",
    ast.Starred: "starred expressions", ast.Tuple: "tuples", ast.List: "lists", ast.Dict: "dicts",
    ast.Set: "sets", ast.ListComp: "comprehensions", ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings", ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}
_FLOAT = re.compile(r"(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?")
_WORDS = re.compile(r"\w+|\W")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse_expression(text: str, names: Mapping[str, sp.Symbol], *, where: str) -> sp.Expr:
    """Parse ``text`` into a sympy expression over the symbols ``names`` (grammar: module docstring).

    ``where`` locates the text in its recipe (``"parametrization[0]"``, ``"init.u"``) and begins every
    error message. A name in ``names`` means its symbol even where it coincides with a constant or a
    function name (``E`` is then the symbol; ``exp(u)`` still calls the function).

    Raises :class:`RecipeError` for anything outside the grammar or its limits.
    """
    return _Parser(text, names, where).parse()


def _chain(node: ast.AST) -> type[sp.Add | sp.Mul] | None:
    """sp.Add for a node a + b or a - b, sp.Mul for a * b or a / b, else None."""
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, (ast.Add, ast.Sub)):
            return sp.Add
        if isinstance(node.op, (ast.Mult, ast.Div)):
            return sp.Mul
    return None


def _clip(text: str) -> str:
    """``text`` quoted for a message; repr() so that control characters never reach a terminal raw."""
    return repr(text if len(text) <= _CLIP else text[: _CLIP - 3] + "...")


def _short(number: sp.Number) -> str:
    """A number for a message, its digits elided when there are many."""
    text = str(number)
    return text if len(text) <= 20 else f"{text[:12]}... ({len(text)} characters)"


def _size(expr: sp.Expr) -> float:
    """log2 of the largest numerator or denominator among the rational numbers in ``expr``."""
    return max((math.log2(n) for r in expr.atoms(sp.Rational) for n in (abs(r.p), r.q) if n), default=0.0)


def _estimate(kind: type[sp.Add | sp.Mul], operands: list[sp.Expr]) -> tuple[float, float]:
    """(bound on the log2 size of any number ``kind(*operands)`` forms, largest operand number size).

    A product combines its numbers every way (coefficients multiply, the exponents of a base add, a
    coefficient distributes over a sum), so the bound is the sum of the operands' sizes. A sum only
    adds the coefficients of like terms: the bound is the largest such sum of coefficient sizes.
    """
    if kind is sp.Mul:
        sizes = [_size(x) for x in operands]
        return sum(sizes), max(sizes)
    like: dict[sp.Expr, float] = defaultdict(float)
    largest = 0.0
    for term in itertools.chain.from_iterable(sp.Add.make_args(x) for x in operands):
        coefficient, rest = term.as_coeff_Mul()
        size = _size(coefficient)
        like[rest] += size
        largest = max(largest, size)
    return max(like.values()), largest


class _Parser:
    """One parse: the text (quoted in messages), the names, and the growth of its numbers so far."""

    def __init__(self, text: str, names: Mapping[str, sp.Symbol], where: str):
        self.text = text
        self.names = names
        self.where = where
        self.spent = 0.0

    def fail(self, problem: str) -> RecipeError:
        """The error for ``problem``, located by ``where`` and quoting the whole text."""
        return RecipeError(f"{self.where}: {problem} in {_clip(self.text)}")

    # -- the whole text ----------------------------------------------------------------------------

    def parse(self) -> sp.Expr:
        if not isinstance(self.text, str):
            raise RecipeError(f"{self.where}: expected an expression as a string, got {type(self.text).__name__}")
        if len(self.text) > MAX_LENGTH:
            raise self.fail(f"expression too long ({len(self.text)} characters, at most {MAX_LENGTH})")
        self.check_characters()
        self.check_brackets()
        # leading whitespace would be an IndentationError, and surrounding whitespace never matters
        self.source = self.text.strip()
        if not self.source:
            raise RecipeError(f"{self.where}: empty expression")
        try:
            with warnings.catch_warnings():
                # a tokenizer warning ('1else', '\d') becomes a syntax error, not noise on stderr
                warnings.simplefilter("error")
                tree = ast.parse(self.source, mode="eval")
        except SyntaxError as exc:
            raise RecipeError(f"{self.where}: cannot parse {_clip(self.text)} ({exc.msg})") from None
        except (RecursionError, MemoryError):  # the C parser's own nesting limits
            raise RecipeError(f"{self.where}: cannot parse {_clip(self.text)} (too deeply nested)") from None
        self.check_tree(tree.body)
        # where each line starts, to cut a literal's own text out of the (ASCII) source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.source)]
        try:
            result = self.build(tree.body)
        except RecipeError:
            raise
        except Exception as exc:  # noqa: BLE001 -- sympy's failures (Max(u, sqrt(-1))) are no documented set
            raise self.fail(f"cannot evaluate ({type(exc).__name__}: {exc})") from None
        if result.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise self.fail(f"the expression is undefined or infinite ({_clip(str(result))})")
        # sympy merges u**600 * u**600 into u**1200, and exact evaluation later meets the exponent
        merged = max((abs(p.exp) for p in result.atoms(sp.Pow) if p.exp.is_Number), default=0)
        if merged > MAX_EXPONENT:
            raise self.fail(f"exponent {_short(merged)} too large once powers are combined "
                            f"(|exponent| at most {MAX_EXPONENT})")
        return result

    def check_characters(self) -> None:
        # Python folds identifiers by NFKC (a fullwidth 'u' silently becomes 'u') and admits lookalike
        # letters (Cyrillic 'а'), so non-ASCII text is refused before the tokenizer sees it.
        if not self.text.isascii():
            word = next(w for w in _WORDS.findall(self.text) if not w.isascii())
            char = next(c for c in word if not c.isascii())
            what = f"the name {_clip(word)} is not ASCII" if word.isidentifier() else f"character {char!r} is not ASCII"
            raise self.fail(f"{what} (U+{ord(char):04X}; lookalike letters are refused)")
        m = _CONTROL.search(self.text)
        if m:
            raise self.fail(f"control character {m.group()!r}")

    def check_brackets(self) -> None:
        # brackets add no tree depth, but the C parser has its own (lower-level) limit on them
        depth = 0
        for char in self.text:
            depth += (char in "([{") - (char in ")]}")
            if depth > MAX_DEPTH:
                raise self.fail(f"expression too deeply nested (more than {MAX_DEPTH} levels of brackets)")

    def check_tree(self, root: ast.expr) -> None:
        """Bound the tree before building it; iterative, so this walk cannot recurse too deep itself.

        A sum or product of many terms is one level, not one per term: :meth:`chain` builds it in a
        loop, and a polynomial of a hundred terms is not deeply nested.
        """
        count = 0
        stack = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            count += 1
            if count > MAX_NODES:
                raise self.fail(f"expression too large (more than {MAX_NODES} sub-expressions)")
            if depth > MAX_DEPTH:
                raise self.fail(f"expression too deeply nested (more than {MAX_DEPTH} levels)")
            kind = _chain(node)
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    # the left operand of (a + b) + c continues the chain: same level
                    continues = kind is not None and child is node.left and _chain(child) is kind
                    stack.append((child, depth if continues else depth + 1))

    # -- nodes -------------------------------------------------------------------------------------

    def build(self, node: ast.expr) -> sp.Expr:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(f"{_FORBIDDEN.get(type(node), type(node).__name__)} not allowed")

    def constant(self, node: ast.Constant) -> sp.Expr:
        value = node.value
        if isinstance(value, bool) or value is None or value is ...:  # bool first: it is an int
            raise self.fail(f"{value!r} not allowed (not a number)")
        if isinstance(value, int):
            if abs(value) >= 10**MAX_DIGITS:
                raise self.fail(f"numeric literal with more than {MAX_DIGITS} digits")
            return sp.Integer(value)
        if isinstance(value, float):
            return self.decimal(self.segment(node))
        if isinstance(value, complex):
            raise self.fail(f"complex literal {self.segment(node)!r} not allowed (the variables are real)")
        raise self.fail(f"{'strings' if isinstance(value, str) else 'bytes'} not allowed")

    def segment(self, node: ast.expr) -> str:
        start = self.line_starts[node.lineno - 1] + node.col_offset
        end = self.line_starts[node.end_lineno - 1] + node.end_col_offset
        return self.source[start:end]

    def decimal(self, literal: str) -> sp.Rational:
        """The exact value of a float literal such as ``1_000.25e-3``, from its digits."""
        whole, frac, exponent = _FLOAT.fullmatch(literal.replace("_", "")).groups()
        frac, exponent = frac or "", exponent or "0"
        # the exponent's length first: int() refuses strings of more than 4,300 digits
        if len(whole + frac) > MAX_DIGITS or len(exponent.lstrip("+-0")) > 3 or abs(int(exponent)) > MAX_DIGITS:
            raise self.fail(f"numeric literal {_clip(literal)} too long or too large "
                            f"(at most {MAX_DIGITS} digits, exponent at most {MAX_DIGITS})")
        return sp.Integer(int(whole + frac)) * sp.Rational(10) ** (int(exponent) - len(frac))

    def name(self, name: str) -> sp.Expr:
        if name in self.names:
            return self.names[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        if "__" in name:
            raise self.fail(f"forbidden name {_clip(name)}")
        if name in FUNCTIONS:
            raise self.fail(f"{_clip(name)} is a function, not a value; call it as {name}(...)")
        raise self.fail(f"undeclared symbol {_clip(name)}")

    def unary(self, node: ast.UnaryOp) -> sp.Expr:
        if isinstance(node.op, ast.USub):
            return -self.build(node.operand)
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand)
        raise self.fail(f"operator '{_OPERATOR_TEXT[type(node.op)]}' not allowed")

    def binary(self, node: ast.BinOp) -> sp.Expr:
        op = node.op
        if isinstance(op, ast.Pow):
            return self.power(self.build(node.left), self.build(node.right))
        if _chain(node) is None:
            hint = " (write ** for powers)" if isinstance(op, ast.BitXor) else ""
            raise self.fail(f"operator '{_OPERATOR_TEXT[type(op)]}' not allowed{hint}")
        return self.chain(node)

    def chain(self, node: ast.BinOp) -> sp.Expr:
        """a ± b ± c ... or a */ b */ c ..., parsed as ((a ± b) ± c) ...: built in a loop, left to right."""
        kind = _chain(node)
        rights = []
        while _chain(node) is kind:
            rights.append((node.op, node.right))
            node = node.left
        operands = [self.build(node)]
        for op, right in reversed(rights):
            value = self.build(right)
            if isinstance(op, ast.Sub):
                value = -value
            elif isinstance(op, ast.Div):
                if value.is_Number and value.is_zero:
                    raise self.fail("division by zero")
                value = 1 / value
            operands.append(value)
        bound, largest = _estimate(kind, operands)
        if bound > MAX_BITS:
            what = "product" if kind is sp.Mul else "sum"
            raise self.fail(f"numbers too large (a {what} forming a number of up to {bound:.0f} bits, "
                            f"at most {MAX_BITS})")
        self.spend(bound - largest)
        return kind(*operands)

    def power(self, base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
        if base is sp.E:  # E**x is exp(x)
            self.check_exp(exponent)
        elif exponent.is_Number:
            if base.is_Number and base.is_zero and exponent.is_negative:
                raise self.fail("division by zero (0 to a negative power)")
            self.check_power(_size(base), exponent)
        else:
            # expand() later splits 2**(u + 1000) into 2**u * 2**1000: each number is an exponent
            self.check_exponents(_size(base), exponent)
        return base**exponent

    def check_power(self, size: float, exponent: sp.Rational) -> None:
        """Refuse b**exponent, ``size`` the log2 size of the numbers in b, if sympy's eager evaluation
        would form a huge number; else charge the growth."""
        if abs(exponent) > MAX_EXPONENT:
            raise self.fail(f"exponent {_short(exponent)} too large (|exponent| at most {MAX_EXPONENT})")
        cost = float(abs(exponent)) * size
        if cost > MAX_BITS:
            raise self.fail(f"power too large (to the {_short(exponent)}: a number of about {cost:.0f} bits, "
                            f"at most {MAX_BITS})")
        if not exponent.is_Integer and size > MAX_ROOT_BITS:
            raise self.fail(f"root of a number too large (about {size:.0f} bits, at most {MAX_ROOT_BITS})")
        self.spend(cost)

    def check_exponents(self, size: float, exponent: sp.Expr) -> None:
        for number in exponent.atoms(sp.Rational):
            self.check_power(size, number)

    def check_exp(self, arg: sp.Expr) -> None:
        # sympy rewrites exp(c*log(x)) as x**c at once, and expand() exp(log(x)*(u + c)) later, so with
        # a log in the argument each of its numbers is an exponent of the logs' arguments
        logs = arg.atoms(sp.log)
        if logs:
            self.check_exponents(max(_size(g.args[0]) for g in logs), arg)

    def spend(self, growth: float) -> None:
        # each large number costs its growth over the literals (themselves at most 100 digits), so
        # a short text cannot make many of them
        self.spent += growth
        if self.spent > MAX_BITS:
            raise self.fail(f"numbers too large (powers and products growing them by more than {MAX_BITS} bits in all)")

    def call(self, node: ast.Call) -> sp.Expr:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.fail(f"attribute access {_clip(ast.unparse(func))} not allowed")
        if not isinstance(func, ast.Name):
            raise self.fail(f"only named functions can be called, not {_clip(ast.unparse(func))}")
        name = func.id
        if name not in FUNCTIONS:
            if name in self.names:
                raise self.fail(f"{_clip(name)} is a symbol, not a function")
            if "__" in name:
                raise self.fail(f"forbidden name {_clip(name)}")
            raise RecipeError(f"{self.where}: unknown function {_clip(name)} in {_clip(self.text)} "
                              f"(functions: {', '.join(FUNCTIONS)})")
        if node.keywords:
            raise self.fail(f"keyword arguments not allowed (in the call of {name})")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise self.fail(f"starred arguments not allowed (in the call of {name})")
        function, least, most = FUNCTIONS[name]
        n = len(node.args)
        if n < least or (most is not None and n > most):
            expected = f"at least {least}" if most is None else str(least) if least == most else f"{least} or {most}"
            plural = "" if (most or least) == 1 else "s"
            raise self.fail(f"wrong number of arguments: {name} takes {expected} argument{plural}, got {n}")
        args = [self.build(a) for a in node.args]
        if name in _ROOTS:
            self.check_power(_size(args[0]), _ROOTS[name])
        elif name == "exp":
            self.check_exp(args[0])
        return function(*args)
