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


def _module(source, tmp_path, name):
    import importlib.util

    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", ["hyperbolic-entropy-n", "woodworth-depth-3-n"])
def test_template_numpy_module_works_for_any_length(name, tmp_path):
    import numpy as np

    d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe(name)))
    block = _module(mirrorsym.numpy_module(mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe(name[:-2])))),
                    tmp_path, "block")
    mod = _module(mirrorsym.numpy_module(d), tmp_path, "family")
    assert mod.DIM is None
    rng = np.random.default_rng(1)
    for n in (1, 7, 1000):
        w = rng.normal(size=(3, n))
        g = mod.grad_R(w)
        assert g.shape == (3, n)
        np.testing.assert_allclose(g, block.grad_R(w[..., None])[..., 0], rtol=0, atol=0)   # elementwise
        np.testing.assert_allclose(mod.R(w), block.R(w[..., None]).sum(axis=-1), rtol=1e-15)
        np.testing.assert_allclose(mod.hess_R_diagonal(w), block.hess_R(w[..., None])[..., 0, 0], rtol=0, atol=0)
        np.testing.assert_allclose(mod.grad_Q(g), w, rtol=1e-12, atol=1e-14)
    H = mod.hess_R(w[:1, :4])
    assert H.shape == (1, 4, 4) and np.count_nonzero(H - np.diag(np.diag(H[0]))) == 0
    fixed = _module(mirrorsym.numpy_module(d, dim=5), tmp_path, "fixed")
    with pytest.raises(ValueError, match="length 5"):
        fixed.grad_R(np.zeros(4))


def test_identical_blocks_are_derived_once_and_renamed_back():
    """w = (u_k³ − v_k³)_k: one inversion serves every block, each reported in its own names."""
    n = 4
    variables = [x for k in range(n) for x in (f"u{k}", f"v{k}")]
    p = mirrorsym.Parametrization.create([f"u{k}**3 - v{k}**3" for k in range(n)], variables,
                                         dict.fromkeys(variables, "alpha"), parameters={"alpha": 0.7},
                                         assumptions={"alpha": ["positive"]})
    d = mirrorsym.derive(p)
    assert d.status is mirrorsym.Status.VERIFIED
    pieces = [b.pieces[0] for b in d.legendre.blocks]
    assert [(pc.nu, pc.s) for pc in pieces] == list(zip(p.mu, p.w))
    for k, pc in enumerate(pieces):
        assert pc.dq == pieces[0].dq.xreplace({p.mu[0]: p.mu[k]})
    # and the numbers are those of the single block, coordinate by coordinate
    single = mirrorsym.derive(mirrorsym.Parametrization.create(
        ["u**3 - v**3"], ["u", "v"], {"u": "alpha", "v": "alpha"}, parameters={"alpha": 0.7},
        assumptions={"alpha": ["positive"]}))
    ws = [mp.mpf(x) for x in ("-2", "0.1", "3", "40")]
    g = d.numeric().evaluate(ws)[1]
    for k, wk in enumerate(ws):
        assert abs(g[k] - single.numeric().evaluate([wk])[1][0]) < mp.mpf(10) ** -25
