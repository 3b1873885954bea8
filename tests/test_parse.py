"""The safe parser and the recipe loader on well-formed input: values, exactness, message formats."""

import builtins
import dataclasses

import pytest
import sympy as sp

from mirrorsym._errors import RecipeError
from mirrorsym._parse import FUNCTIONS, MAX_DEPTH, MAX_LENGTH, parse_expression
from mirrorsym._recipe import find_recipe, load_recipe, recipe_from_dict, recipe_from_text, shipped_recipes

u, v = sp.symbols("u v", real=True)
alpha = sp.Symbol("alpha", real=True, positive=True)
NAMES = {"u": u, "v": v, "alpha": alpha}


def parse(text, names=NAMES, where="parametrization[0]"):
    return parse_expression(text, names, where=where)


@pytest.mark.parametrize("text, expected", [
    ("u**2 - v**2", u**2 - v**2),
    ("0.1*u", u / 10),
    ("exp(-u)*sinh(v)", sp.exp(-u) * sp.sinh(v)),
    ("log(u, 2)", sp.log(u) / sp.log(2)),
    ("log(u)", sp.log(u)),
    ("sqrt(u)", sp.sqrt(u)),
    ("cbrt(u)", sp.real_root(u, 3)),
    ("cbrt(-8)", sp.Integer(-2)),
    ("abs(u)", sp.Abs(u)),
    ("Abs(u - v)", sp.Abs(u - v)),
    ("sign(u)", sp.sign(u)),
    ("Max(u, v, 1)", sp.Max(u, v, 1)),
    ("Min(u, v)", sp.Min(u, v)),
    ("-u", -u),
    ("--u", u),
    ("+u", u),
    ("-u**2", -(u**2)),
    ("2**-1", sp.Rational(1, 2)),
    ("2**3**2", sp.Integer(512)),
    ("u/v/2", u / (2 * v)),
    ("pi*u", sp.pi * u),
    ("E", sp.E),
    ("E**u", sp.exp(u)),
    ("alpha*exp(u/alpha)", alpha * sp.exp(u / alpha)),
    ("  u + v\t", u + v),
    ("(u\n + v)", u + v),
    ("u  # a comment", u),
    ("0x10", sp.Integer(16)),
    ("u**1000", u**1000),
])
def test_values(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - {"log", "Max", "Min", "cbrt", "abs"}))
def test_every_unary_function(name):
    function = FUNCTIONS[name][0]
    assert parse(f"{name}(u + 1)") == function(u + 1)


@pytest.mark.parametrize("text, expected", [
    ("1/3", sp.Rational(1, 3)),
    ("0.1", sp.Rational(1, 10)),
    (".5", sp.Rational(1, 2)),
    ("1.", sp.Integer(1)),
    ("1.5e-3", sp.Rational(3, 2000)),
    ("2E3", sp.Integer(2000)),
    ("1_000.25", sp.Rational(4001, 4)),
    ("0.1 + 0.2", sp.Rational(3, 10)),  # not 0.30000000000000004
    ("0.123456789012345678901234567890", sp.Rational(123456789012345678901234567890, 10**30)),
])
def test_numbers_are_exact(text, expected):
    value = parse(text)
    assert isinstance(value, sp.Rational)
    assert value == expected


def test_names_shadow_constants_and_functions():
    E, exp = sp.symbols("E exp", real=True)
    assert parse("E + 1", {"E": E}) == E + 1
    assert parse("exp(exp)", {"exp": exp}) == sp.exp(exp)


def test_free_symbols_are_the_given_ones():
    value = parse("u*alpha + sin(v)")
    assert value.free_symbols == {u, v, alpha}
    assert alpha.is_positive  # the caller's symbol itself, assumptions and all


def test_limits_are_inclusive():
    assert parse("9" * 100) == sp.Integer(10**100 - 1)
    assert parse("u" + " " * (MAX_LENGTH - 1)) == u
    assert parse("-" * (MAX_DEPTH - 1) + "u") == -u
    assert parse("(" * MAX_DEPTH + "u" + ")" * MAX_DEPTH) == u
    assert parse("3**1000") == sp.Integer(3) ** 1000  # about 1,585 bits: within 2,048
    assert parse("(2*u)**1000") == 2**1000 * u**1000


@pytest.mark.parametrize("text, where, message", [
    ("foo(u) + v", "parametrization[0]", "parametrization[0]: unknown function 'foo' in 'foo(u) + v' (functions: exp, log, "),
    ("beta", "init.u", "init.u: undeclared symbol 'beta' in 'beta'"),
    ("u**", "parametrization[1]", "parametrization[1]: cannot parse 'u**' (invalid syntax)"),
])
def test_message_format(text, where, message):
    with pytest.raises(RecipeError) as info:
        parse(text, where=where)
    assert str(info.value).startswith(message)


def test_long_text_is_clipped_in_messages():
    with pytest.raises(RecipeError) as info:
        parse("u + " * 40 + "beta")
    message = str(info.value)
    assert message.startswith("parametrization[0]: undeclared symbol 'beta' in 'u + u + ")
    assert message.endswith("...'") and len(message) < 150


def test_long_sums_and_products_are_not_deep():
    assert parse(" + ".join(f"{k}*u**{k % 7}" for k in range(1, 400))) == sum(k * u ** (k % 7) for k in range(1, 400))
    assert parse("*".join(["(u + 1)"] * 300)) == (u + 1) ** 300


def test_no_eval_or_exec(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the parser must not evaluate text")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sp, "parse_expr", forbidden)
    monkeypatch.setattr(sp, "sympify", forbidden)
    assert parse("exp(-u)*sinh(v) + 0.5*log(u, 2)") == sp.exp(-u) * sp.sinh(v) + sp.log(u) / (2 * sp.log(2))


# -- recipes -----------------------------------------------------------------------------------------

RECIPE = """
name = "hyperbolic-entropy"
title = "Hyperbolic entropy"
description = "w = u^2 - v^2"
reference = "literature.md L1"
variables = ["u", "v"]
parametrization = ["u**2 - v**2"]
init = { u = "alpha", v = "alpha" }

[assumptions]
alpha = ["positive"]
beta = "nonzero"

[parameters]
alpha = 0.1
"""


def test_recipe_from_text():
    p = recipe_from_text(RECIPE)
    a = sp.Symbol("alpha", real=True, positive=True)
    assert p.name == "hyperbolic-entropy" and p.title == "Hyperbolic entropy"
    assert p.G == (u**2 - v**2,)
    assert p.x0 == (a, a)
    assert p.defaults == {a: sp.Rational(1, 10)}  # exact, not the double nearest 0.1
    # beta has assumptions only: a parameter without default value
    assert [s.name for s in p.parameters] == ["alpha", "beta"]
    assert p.parameters[1].is_nonzero
    assert p.source["description"] == "w = u^2 - v^2" and "file" not in p.source


def test_recipe_bare_strings_and_numbers():
    p = recipe_from_dict({"name": "n", "variables": ["u"], "parametrization": "u**2", "init": {"u": 0.5}})
    assert p.G == (u**2,) and p.x0 == (sp.Rational(1, 2),)
    p = recipe_from_dict({"name": "n", "variables": ["u"], "parametrization": ["u", 3, 0.25], "init": {"u": "1/3"}})
    assert p.G == (u, 3, sp.Rational(1, 4)) and p.x0 == (sp.Rational(1, 3),)


def test_recipe_source_is_a_copy():
    data = {"name": "n", "variables": ["u"], "parametrization": ["u"], "init": {"u": 1}}
    p = recipe_from_dict(data)
    data["variables"].append("v")
    assert p.source["variables"] == ["u"]


def test_load_recipe(tmp_path):
    path = tmp_path / "he.toml"
    path.write_text(RECIPE, encoding="utf-8")
    p = load_recipe(path)
    assert p == recipe_from_text(RECIPE)
    assert p.source["file"] == str(path) and p.source["name"] == "hyperbolic-entropy"
    assert dataclasses.replace(p).source == p.source


def test_shipped_recipes_load():
    paths = shipped_recipes()
    assert paths and paths == sorted(paths, key=lambda q: q.name)
    for path in paths:
        assert path.suffix == ".toml"
        assert load_recipe(path).name  # every shipped recipe is valid


def test_find_recipe(tmp_path):
    first = shipped_recipes()[0]
    assert find_recipe(first.stem) == first
    assert find_recipe(first.name) == first
    path = tmp_path / "mine.toml"
    path.write_text(RECIPE, encoding="utf-8")
    assert find_recipe(str(path)) == path
    with pytest.raises(RecipeError, match=rf"no shipped recipe of that name.*{first.stem}"):
        find_recipe("no-such-recipe")
    with pytest.raises(RecipeError, match="no such recipe file"):
        find_recipe(tmp_path / first.name)  # a path is never looked up among the shipped recipes
