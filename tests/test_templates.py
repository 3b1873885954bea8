"""Coordinate templates (issue 7): ``dimension = "n"`` recipes are derived once per coordinate and
reported as R(w) = Σ_{i=1}^{n} r(w_i); ``--dim N`` instantiates a concrete d."""

import json

import mpmath as mp
import pytest
import sympy as sp

import mirrorsym
from mirrorsym._cli import main

TEMPLATE = '''
name = "t"
dimension = "n"
variables = ["u[i]", "v[i]"]
parametrization = ["u[i]**2 - v[i]**2"]
init = { "u[i]" = "alpha[i]", "v[i]" = "alpha[i]" }
[assumptions]
"alpha[i]" = ["positive"]
[parameters]
"alpha[i]" = 0.5
'''


def test_template_is_one_coordinate_with_indexed_names():
    p = mirrorsym.recipe_from_text(TEMPLATE)
    assert p.dimension == "n" and set(p.indexed) == {"u", "v", "alpha"}
    assert [x.name for x in p.variables] == ["u", "v"] and p.d == 1
    d = mirrorsym.derive(p)
    i, n = sp.Symbol("i", integer=True, positive=True), sp.Symbol("n", integer=True, positive=True)
    w, a = sp.IndexedBase("w"), sp.IndexedBase("alpha")
    r = (w[i] * sp.asinh(w[i] / (2 * a[i] ** 2)) - sp.sqrt(w[i] ** 2 + 4 * a[i] ** 4) + 2 * a[i] ** 2) / 4
    assert sp.simplify(d.summed(d.R).function - r) == 0
    assert d.summed(d.R).limits == ((i, 1, n),)


@pytest.mark.parametrize("name", ["hyperbolic-entropy-n", "azulay-shape-n", "egu-n", "woodworth-depth-3-n"])
def test_shipped_templates_give_the_sum_form(name, tmp_path, capsys):
    js = tmp_path / "t.json"
    assert main(["derive", name, "--json", str(js)]) == 0
    doc = json.loads(js.read_text())
    assert doc["dimension"] == "n" and doc["w"] == ["w[i]"]
    base = name[:-2]
    assert main(["derive", base, "--json", str(tmp_path / "b.json")]) == 0
    capsys.readouterr()
    coordinate = json.loads((tmp_path / "b.json").read_text())
    assert doc["coordinate"]["R"] == coordinate["R"]          # the same block potential ...
    if coordinate["R"] is not None:
        assert doc["R"].startswith("Sum(") and doc["R"].endswith(", (i, 1, n))")   # ... summed over i


def test_dim_instantiates_a_concrete_dimension(tmp_path, capsys):
    js = tmp_path / "d.json"
    assert main(["derive", "egu-n", "--dim", "1000", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    doc = json.loads(js.read_text())
    assert doc["d"] == 1000 and doc["R"].endswith("(i, 1, 1000))") and "R^1000" in out
    # the summed potential is the block potential at every coordinate: check one value in mpmath
    R = sp.sympify(doc["R"], locals={"w": sp.IndexedBase("w"), "c": sp.Symbol("c", positive=True)})
    term = R.function.subs({sp.Symbol("c", positive=True): sp.Rational(6, 5)}).subs(sp.IndexedBase("w")[sp.Symbol("i")], 2)
    assert abs(sp.N(term, 40) - (2 * mp.log(2 / mp.mpf("0.36")) - 2 + mp.mpf("0.36"))) < 1e-25


@pytest.mark.parametrize("text, fragment", [
    (TEMPLATE.replace('dimension = "n"\n', ""), "need a dimension key"),
    (TEMPLATE.replace('["u[i]", "v[i]"]', '["u", "v[i]"]'), "coordinate template"),
    (TEMPLATE.replace("u[i]**2 - v[i]**2", "u[j]**2 - v[i]**2"), "not a declared coordinate template"),
    (TEMPLATE.replace("u[i]**2 - v[i]**2", "w[i]**2"), "not a declared coordinate template"),
    (TEMPLATE.replace('dimension = "n"', "dimension = 3"), "dimension"),
    (TEMPLATE.replace('["u[i]**2 - v[i]**2"]', '["u[i]**2", "v[i]**2"]'), "one component per coordinate"),
])
def test_template_errors_name_the_key(text, fragment):
    with pytest.raises(mirrorsym.RecipeError, match=fragment):
        mirrorsym.recipe_from_text(text)


def test_dim_needs_a_template(capsys):
    assert main(["derive", "egu", "--dim", "3"]) == 2
    assert "no dimension template" in capsys.readouterr().err
