"""Malicious and malformed input: every case is a RecipeError that says where and what, nothing else.

Expressions go through :func:`parse_expression` directly; whole recipes through
:func:`recipe_from_text` and :func:`load_recipe`. The injection cases also check that nothing ran.
"""

import re

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from mirrorsym._errors import RecipeError
from mirrorsym._parse import parse_expression
from mirrorsym._recipe import load_recipe, recipe_from_text

u, v = sp.symbols("u v", real=True)
NAMES = {"u": u, "v": v}
WHERE = "parametrization[0]"

# a sum of 3 * 30 products of 30 terms each: 5,400 nodes, but only about 60 levels deep
_GROUP = "(" + "+".join(["u"] * 30) + ")"
_MANY_NODES = "+".join(["(" + "*".join([_GROUP] * 30) + ")"] * 3)

# (text, regex naming the problem)
EXPRESSIONS = {
    # code execution and introspection
    "import-system": ("__import__('os').system('echo hi')", r"attribute access"),
    "subclasses": ("().__class__.__bases__[0].__subclasses__()", r"attribute access"),
    "dunder-attribute": ("u.__class__", r"attribute access"),
    "attribute": ("u.real", r"attribute access"),
    "dunder-name": ("__builtins__", r"forbidden name '__builtins__'"),
    "dunder-call": ("__import__('os')", r"forbidden name '__import__'"),
    "lambda": ("lambda: 1", r"lambda not allowed"),
    "lambda-call": ("(lambda: 1)()", r"only named functions"),
    "call-result": ("exp(u)(v)", r"only named functions"),
    "comprehension": ("[x for x in ()]", r"comprehensions not allowed"),
    "generator": ("sum(x for x in (u,))", r"unknown function 'sum'"),
    "format-string": ('"{0.__class__}".format(u)', r"attribute access"),
    "f-string": ('f"{u}"', r"f-strings not allowed"),
    "exec": ("exec('1')", r"unknown function 'exec'"),
    "eval": ("eval('1')", r"unknown function 'eval'"),
    "open": ("open('/etc/passwd')", r"unknown function 'open'"),
    "getattr": ("getattr(u, 'x')", r"unknown function 'getattr'"),
    "globals": ("globals()", r"unknown function 'globals'"),
    "print": ("print(u)", r"unknown function 'print'"),
    "sympy-attribute": ("sympy.exp(u)", r"attribute access 'sympy.exp'"),
    "symbol-call": ("u(1)", r"'u' is a symbol, not a function"),
    # constructs outside the grammar
    "conditional": ("u if v else 1", r"conditional expressions not allowed"),
    "comparison": ("u < v", r"comparisons not allowed"),
    "boolean": ("u and v", r"boolean operators not allowed"),
    "not": ("not u", r"operator 'not' not allowed"),
    "subscript": ("u[0]", r"subscripts not allowed"),
    "starred": ("*u", r"cannot parse"),
    "starred-argument": ("exp(*[u])", r"starred arguments not allowed"),
    "walrus": ("(u := 1)", r"assignment expressions"),
    "tuple": ("(u, v)", r"tuples not allowed"),
    "list": ("[u]", r"lists not allowed"),
    "set": ("{u}", r"sets not allowed"),
    "dict": ("{u: v}", r"dicts not allowed"),
    "await": ("await u", r"await not allowed"),
    "statement": ("u = 1", r"cannot parse"),
    "two-statements": ("u; v", r"cannot parse"),
    "import": ("import os", r"cannot parse"),
    "xor": ("u ^ 2", r"operator '\^' not allowed \(write \*\* for powers\)"),
    "floor-division": ("u // v", r"operator '//' not allowed"),
    "modulo": ("u % v", r"operator '%' not allowed"),
    "matmul": ("u @ v", r"operator '@' not allowed"),
    "shift": ("u << 1", r"operator '<<' not allowed"),
    "invert": ("~u", r"operator '~' not allowed"),
    # constants that are not numbers
    "complex": ("1j", r"complex literal '1j' not allowed"),
    "true": ("True", r"True not allowed"),
    "none": ("None", r"None not allowed"),
    "ellipsis": ("...", r"Ellipsis not allowed"),
    "bytes": ("b'x'", r"bytes not allowed"),
    "string": ("'str'", r"strings not allowed"),
    # names and calls
    "undeclared": ("u + beta", r"undeclared symbol 'beta'"),
    "unknown-function": ("foo(u)", r"unknown function 'foo'"),
    "bare-function": ("exp + u", r"'exp' is a function, not a value"),
    "arity-high": ("exp(u, v, w)", r"wrong number of arguments: exp takes 1 argument, got 3"),
    "arity-low": ("log()", r"wrong number of arguments: log takes 1 or 2 arguments, got 0"),
    "arity-max": ("Max()", r"wrong number of arguments: Max takes at least 1 argument, got 0"),
    "keyword": ("exp(x=u)", r"keyword arguments not allowed"),
    # resources
    "huge-power": ("9**999999", r"exponent 999999 too large"),
    "tower": ("10**10**10", r"exponent 10000000000 too large"),
    "tower-3": ("2**(2**(2**100))", r"exponent 126765060022\.\.\. \(31 characters\) too large"),
    "big-power": ("9**999", r"power too large"),
    "negative-exponent": ("u**-1001", r"exponent -1001 too large"),
    "distributed-power": ("((2*u)**1000)**1000", r"power too large"),
    "merged-exponents": ("u**600*u**600", r"exponent 1200 too large once powers are combined"),
    "exp-log-power": ("exp(10**99*log(2))", r"exponent .* too large"),
    "logcombine-power": ("exp(pi*(1000000*log(2) + log(3)))", r"exponent 1000000 too large"),
    "latent-power": ("2**(u + 10**99)", r"exponent .* too large"),
    "latent-exp-power": ("exp(log(2)*(u + 10**99))", r"exponent .* too large"),
    "big-root": ("sqrt(2**1000*2**1000 + 1)", r"root of a number too large|numbers too large"),
    "many-powers": ("+".join(f"sqrt({10**99 + k})" for k in range(90)), r"numbers too large"),
    "product-of-literals": ("*".join([str(10**99 + 7)] * 30), r"numbers too large"),
    "sum-of-fractions": ("+".join(f"1/{p}" for p in sp.primerange(1000, 3000)), r"numbers too large"),
    "nested-brackets": ("(" * 200 + "u" + ")" * 200, r"too deeply nested"),
    "nested-calls": ("exp(" * 101 + "u" + ")" * 101, r"too deeply nested"),
    "nested-unary": ("-" * 5000 + "u", r"too deeply nested"),
    "nested-unary-101": ("-" * 101 + "u", r"too deeply nested"),
    "many-nodes": (_MANY_NODES, r"too large \(more than 5000 sub-expressions\)"),
    "long-sum": ("u+" * 6000 + "u", r"too long \(12001 characters"),
    "long-line": ("u" + " " * 20000, r"too long"),
    "long-literal": ("1" * 200, r"numeric literal with more than 100 digits"),
    "long-hex-literal": ("0x" + "f" * 200, r"numeric literal with more than 100 digits"),
    "long-decimal": ("0." + "1" * 200, r"numeric literal .* too long or too large"),
    "float-exponent": ("1e999", r"numeric literal '1e999' too long or too large"),
    "float-exponent-digits": ("1e" + "9" * 5000, r"numeric literal .* too long or too large"),
    # characters
    "cyrillic-a": ("\u0430 + u", r"the name '\u0430' is not ASCII \(U\+0430"),
    "fullwidth-u": ("\uff55 + 1", r"the name '\uff55' is not ASCII"),  # NFKC would make it 'u'
    "fullwidth-digits": ("\uff11\uff12 + u", r"character '\uff11' is not ASCII"),
    "zero-width-space": ("u\u200b + v", r"is not ASCII \(U\+200B"),
    "bidi-override": ("u + \u202ev", r"is not ASCII \(U\+202E"),
    "nul-byte": ("u\x00", r"control character '\\x00'"),
    "escape": ("u\x1b[2J", r"control character '\\x1b'"),
    # arithmetic
    "division-by-zero": ("u/0", r"division by zero"),
    "division-by-cancelled-zero": ("1/(u - u)", r"division by zero"),
    "zero-negative-power": ("0**-1", r"division by zero"),
    "log-zero": ("log(0)", r"undefined or infinite"),
    "not-comparable": ("Max(u, sqrt(-1))", r"cannot evaluate"),
    # syntax
    "empty": ("", r"empty expression"),
    "whitespace": ("  \t\n ", r"empty expression"),
    "dangling-power": ("u**", r"cannot parse 'u\*\*' \(invalid syntax\)"),
    "dollar": ("u $ v", r"cannot parse 'u \$ v' \(invalid syntax\)"),
    "unbalanced": ("(u + v", r"cannot parse"),
    "yield": ("yield u", r"cannot parse"),
    "tokenizer-warning": ("1else 2", r"cannot parse '1else 2' \(invalid decimal literal\)"),
}


@pytest.mark.parametrize("text, problem", EXPRESSIONS.values(), ids=EXPRESSIONS.keys())
def test_hostile_expression(text, problem):
    with pytest.raises(RecipeError) as info:
        parse_expression(text, NAMES, where=WHERE)
    message = str(info.value)
    assert message.startswith(WHERE + ": ")
    assert re.search(problem, message), message
    assert len(message) < 400  # the text is echoed clipped


def test_corpus_is_large():
    assert len(EXPRESSIONS) >= 45


def test_not_a_string():
    with pytest.raises(RecipeError, match=r"^init\.u: expected an expression as a string, got list"):
        parse_expression(["u"], NAMES, where="init.u")


def _injections(tmp_path):
    """Texts that, if evaluated anywhere, would create a file under ``tmp_path``."""
    target = tmp_path / "PWNED"
    return target, [
        f"open('{target}', 'w')",
        f"__import__('os').system('touch {target}')",
        f"__import__('pathlib').Path('{target}').touch()",
        f"exec(\"open('{target}', 'w')\")",
        f"eval(\"open('{target}', 'w')\")",
        f"[open('{target}', 'w') for _ in (1,)]",
        f"(lambda: open('{target}', 'w'))()",
        f"u.__class__.__init__.__globals__['__builtins__']['open']('{target}', 'w')",
        f"Max(u, open('{target}', 'w'))",
        f"exp(u) if open('{target}', 'w') else 1",
    ]


def test_injection_has_no_side_effect(tmp_path, capfd):
    target, texts = _injections(tmp_path)
    for text in texts:
        with pytest.raises(RecipeError):
            parse_expression(text, NAMES, where=WHERE)
    assert not target.exists()
    assert capfd.readouterr() == ("", "")


def test_injection_in_a_recipe_has_no_side_effect(tmp_path, capfd):
    target, texts = _injections(tmp_path)
    for text in texts:
        for key in ("parametrization", "init"):
            recipe = _recipe(parametrization=[text] if key == "parametrization" else ["u**2 - v**2"],
                             init={"u": text, "v": "1"} if key == "init" else {"u": "1", "v": "1"})
            with pytest.raises(RecipeError, match=rf"^hostile\.toml: {key}(\[0\]|\.u): "):
                recipe_from_text(recipe, source="hostile.toml")
    assert not target.exists()
    assert capfd.readouterr() == ("", "")


# -- whole recipes -----------------------------------------------------------------------------------

def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(x) for x in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in value.items()) + " }"
    return str(value)  # numbers: str() of nan and inf is TOML too


_MISSING = object()


def _recipe(*, raw: str = "", **changes) -> str:
    """A valid recipe's text with keys replaced (or dropped, given _MISSING) and ``raw`` appended."""
    keys = {
        "name": "hostile",
        "variables": ["u", "v"],
        "parametrization": ["u**2 - v**2"],
        "init": {"u": "alpha", "v": "alpha"},
        "assumptions": {"alpha": ["positive"]},
        "parameters": {"alpha": 0.5},
    }
    keys.update(changes)
    return "\n".join(f"{k} = {_toml(x)}" for k, x in keys.items() if x is not _MISSING) + "\n" + raw


def test_the_base_recipe_is_valid():
    p = recipe_from_text(_recipe())
    assert p.G == (u**2 - v**2,) and p.name == "hostile"


# (recipe text, regex naming the problem); every message starts "hostile.toml: "
RECIPES = {
    "invalid-toml": ('name = "hostile\nvariables = ["u"]', r"invalid TOML: .*\(at line 1, column \d+\)"),
    "duplicate-key": (_recipe(raw='name = "again"'), r"invalid TOML: Cannot overwrite a value"),
    "deep-toml": ("x = " + "[" * 100_000 + "]" * 100_000, r"invalid TOML: arrays or tables nested too deeply"),
    "too-large": ("# " + "x" * 1_000_001, r"recipe larger than 1 MB"),
    "only-variables": ('variables = ["u"]', r"missing required keys name, parametrization, init"),
    "missing-variables": (_recipe(variables=_MISSING), r"missing required key variables"),
    "missing-name": (_recipe(name=_MISSING), r"missing required key name"),
    "unknown-key": (_recipe(raw="paramters = { beta = 1 }"),
        r"unknown key 'paramters' \(did you mean 'parameters'\?\) \(allowed: name, "),
    "variables-string": (_recipe(variables="u"), r"variables: expected a non-empty list of names, got 'u'"),
    "variables-empty": (_recipe(variables=[]), r"variables: expected a non-empty list"),
    "variables-number": (_recipe(variables=["u", 3]), r"variables\[1\]: expected a name \(a string\), got 3"),
    "duplicate-variable": (_recipe(variables=["u", "u"], init={"u": "1"}), r"variables: 'u' is listed twice"),
    "dunder-variable": (_recipe(variables=["__class__", "v"]), r"variables\[0\]: '__class__' is not a valid name"),
    "keyword-variable": (_recipe(variables=["lambda", "v"]), r"variables\[0\]: 'lambda' is not a valid name"),
    "reserved-variable": (_recipe(variables=["w1", "v"]), r"variables\[0\]: the name 'w1' is reserved"),
    "variable-and-parameter": (_recipe(variables=["u", "alpha"]), r"'alpha' is both a variable and a parameter"),
    "parameter-string": (_recipe(parameters={"alpha": "0.5"}), r"parameters\.alpha: expected a number, got '0\.5'"),
    "parameter-boolean": (_recipe(parameters={"alpha": True}), r"parameters\.alpha: expected a number, got True"),
    "parameter-nan": (_recipe(parameters={"alpha": float("nan")}),
        r"parameters\.alpha: expected a finite number, got nan"),
    "parameter-inf": (_recipe(parameters={"alpha": float("-inf")}),
        r"parameters\.alpha: expected a finite number, got -inf"),
    "parameter-table": (_recipe(parameters={"alpha": {"x": 1}}), r"parameters\.alpha: expected a number"),
    "parameters-not-table": (_recipe(parameters=[1]), r"parameters: expected a table, got \[1\]"),
    "init-not-table": (_recipe(init=3), r"init: expected a table 'variable = value', got 3"),
    "init-wrong-variable": (_recipe(init={"u": "1", "v": "1", "z": "1"}), r"init: z is not variable"),
    "init-missing": (_recipe(init={"u": "1"}), r"init: no initial value for v"),
    "init-uses-variable": (_recipe(init={"u": "v", "v": "1"}),
        r"init\.u: an initial value may use parameters, not variables"),
    "init-boolean": (_recipe(init={"u": True, "v": "1"}), r"init\.u: expected an expression, got bool"),
    "init-contradicts": (_recipe(assumptions={"alpha": ["positive"], "u": ["negative"]}),
        r"init\.u: initial value alpha contradicts the assumption 'negative'"),
    "undeclared-symbol": (_recipe(parametrization=["u*beta"]),
        r"parametrization\[0\]: undeclared symbol 'beta' in 'u\*beta'"),
    "unknown-assumption": (_recipe(assumptions={"alpha": ["sparkly"]}),
        r"assumptions\.alpha: unknown assumption 'sparkly'"),
    "assumption-not-list": (_recipe(assumptions={"alpha": [1]}),
        r"assumptions\.alpha: expected a list of assumption names"),
    "assumptions-not-table": (_recipe(assumptions=["positive"]), r"assumptions: expected a table"),
    "inconsistent-assumptions": (_recipe(assumptions={"alpha": ["positive", "negative"]}),
        r"assumptions\.alpha: inconsistent assumptions"),
    "assumption-contradicts-value": (_recipe(parameters={"alpha": -1}),
        r"parameters\.alpha: value -1 contradicts the assumption 'positive'"),
    "parametrization-empty": (_recipe(parametrization=[]), r"parametrization: expected a non-empty list"),
    "parametrization-table": (_recipe(parametrization=[{"a": 1}]),
        r"parametrization\[0\]: expected an expression, got dict"),
    "parametrization-boolean": (_recipe(parametrization=["u", True]),
        r"parametrization\[1\]: expected an expression, got bool"),
    "parametrization-nan": (_recipe(parametrization=["u", float("nan")]),
        r"parametrization\[1\]: expected a finite number, got nan"),
    "name-slash": (_recipe(name="../evil"), r"name: '\.\./evil' is not a valid recipe name"),
    "name-newline": (_recipe(name="evil\n"), r"name: 'evil\\n' is not a valid recipe name"),
    "name-number": (_recipe(name=3), r"name: 3 is not a valid recipe name"),
    "title-number": (_recipe(raw="title = 3"), r"title: expected a string, got 3"),
    "hostile-expression": (_recipe(parametrization=["__import__('os').system('echo hi')"]),
        r"parametrization\[0\]: attribute access"),
}


@pytest.mark.parametrize("text, problem", RECIPES.values(), ids=RECIPES.keys())
def test_hostile_recipe(text, problem):
    with pytest.raises(RecipeError) as info:
        recipe_from_text(text, source="hostile.toml")
    message = str(info.value)
    assert message.startswith("hostile.toml: ")
    assert re.search(problem, message), message


def test_recipe_numbers_are_expressions():
    p = recipe_from_text(_recipe(parametrization=["u", 3, 0.25]))
    assert p.G == (u, 3, sp.Rational(1, 4))


def test_load_recipe_failures(tmp_path):
    with pytest.raises(RecipeError, match=r"missing\.toml: cannot read the recipe \(No such file or directory\)"):
        load_recipe(tmp_path / "missing.toml")
    with pytest.raises(RecipeError, match=r": cannot read the recipe"):
        load_recipe(tmp_path)  # a directory
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 1_000_001)
    with pytest.raises(RecipeError, match=r"big\.toml: recipe file larger than 1 MB"):
        load_recipe(big)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b'name = "\xff"')
    with pytest.raises(RecipeError, match=r"binary\.toml: not UTF-8 text \(invalid start byte at byte 8\)"):
        load_recipe(binary)
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "broken"\nvariables = [u]\n', encoding="utf-8")
    with pytest.raises(RecipeError, match=rf"^{re.escape(str(broken))}: invalid TOML: .*\(at line 2, column 14\)"):
        load_recipe(broken)


# -- fuzzing -----------------------------------------------------------------------------------------

TOKENS = ["u", "v", "w", "alpha", "x", "_", "0", "1", "2", "10", "0.5", "1e3", "3j", "99**99", "**1000",
          "+", "-", "*", "/", "**", "//", "%", "^", "(", ")", "[", "]", ",", ".", " ", "exp", "log", "sqrt",
          "cbrt", "sin", "atanh", "Max", "abs", "sign", "pi", "E", "__class__", "lambda", ":", "=", "'",
          '"', "if", "else", "<", "@", "$", "\\", "#", "\n", "\t", "\x00", "\u0430", "\uff11", "\u00e9"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_fuzz_parse_expression(text):
    try:
        value = parse_expression(text, NAMES, where=WHERE)
    except RecipeError as exc:
        assert str(exc).startswith(WHERE + ": ")
    else:
        assert isinstance(value, sp.Expr)
        assert value.free_symbols <= {u, v}
