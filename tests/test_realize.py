"""The reverse direction, ``mirrorsym realize`` (MATH.md §8): a potential R to a parametrization w = G(u).

Round trips derive(realize(R)) against R itself in mpmath (∇²R, and ∇R − ∇R(w0) since derive
normalises ∇R(w0) = 0), the implicit path checked independently (q'(u)² φ''(q(u)) = 1 by numerical
differentiation, u = ∫√φ'' by quadrature, and gradient flow with the exported numpy module against
MATH.md §5), the curvature certificate against a known sphere and a brute-force Christoffel
computation, and the command line.
"""

import argparse
import importlib.util
import json

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

import mirrorsym
from mirrorsym._cli import main as cli_main
from mirrorsym._numeric import mp_function
from mirrorsym._realize import (
    Outcome,
    add_realize_arguments,
    find_potential,
    load_potential,
    potential_from_text,
    realize,
    run_realize,
    shipped_potentials,
)


def spec_of(name):
    return load_potential(find_potential(name))


def lp_text(p: str) -> str:
    return f'''name = "lp"
variables = ["w"]
potential = "Abs(w)**{p}/({p}*({p} - 1))"
domain = {{ w = "positive" }}
w0 = {{ w = 1 }}
'''


def load_module(text, path):
    path.write_text(text)
    module_spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def assert_round_trip(spec, points):
    """derive(realize(spec)) is verified and has ∇²R = the spec's, ∇R = ∇φ − ∇φ(w0) at ``points`` (20 digits)."""
    tol = mp.mpf(10) ** -20
    r = realize(spec)
    assert r.status is Outcome.REALISED and r.recipe_text is not None
    assert all(c.passed for c in r.checks)
    d = mirrorsym.derive(mirrorsym.recipe_from_text(r.recipe_text))
    assert d.status is mirrorsym.Status.VERIFIED
    W, values = spec.variables, spec.defaults
    hessian = mp_function(W, list(spec.hessian), values)
    grad = mp_function(W, [sp.diff(spec.potential, x) for x in W], values) if spec.potential is not None else None
    w0 = [mp.mpf(sp.N(v.xreplace(values), 40)) for v in spec.w0]
    numeric = d.numeric()
    for w in points:
        w = [mp.mpf(x) for x in w]
        _, gR, hR = numeric.evaluate(w)
        assert max(abs(a - b) for a, b in zip(hR, hessian(*w))) < tol, w
        if grad is not None:
            assert max(abs(a - (b - c)) for a, b, c in zip(gR, grad(*w), grad(*w0))) < tol, w
    return r, d


# -- round trips through derive ------------------------------------------------------------------------


def test_entropy_round_trip():
    r, d = assert_round_trip(spec_of("entropy"), [["0.05"], ["0.7"], ["3.5"]])
    assert r.G == (sp.Symbol("u", real=True) ** 2 / 4,) and r.u0 == (2,)  # egu: w = u²/4
    assert d.R == sp.Symbol("w1", real=True) * sp.log(sp.Symbol("w1", real=True)) - sp.Symbol("w1", real=True) + 1


def test_log_barrier_round_trip():
    r, _ = assert_round_trip(spec_of("log-barrier"), [["0.1"], ["2.5"], ["40"]])
    assert r.G == (sp.exp(sp.Symbol("u", real=True)),) and r.u0 == (0,)
    assert r.pieces[0].u_interval == (-sp.oo, sp.oo)


@pytest.mark.parametrize("p", ["1.5", "2.5", "3", "4", "0.5", "-1"])
def test_lp_round_trips(p):
    r, _ = assert_round_trip(potential_from_text(lp_text(p)), [["0.2"], ["0.9"], ["2.7"]])
    # u = F(w) = 2 w^(p/2)/p, so w = q(u) = (p u/2)^(2/p) and u0 = F(1) = 2/p
    p = sp.Rational(p)
    for w in (sp.Rational(3, 10), sp.Integer(2)):
        u = 2 * w ** (p / 2) / p
        assert abs(sp.N(r.G[0].subs(r.u[0], u) - (p * u / 2) ** (2 / p), 40)) < 1e-30
    assert r.u0 == (2 / p,)


def test_shipped_lp_3_matches_the_formula():
    r = realize(spec_of("lp-3"))
    u = sp.Symbol("u", real=True)
    assert all(abs(sp.N((r.G[0] - (3 * u / 2) ** sp.Rational(2, 3)).subs(u, v))) < 1e-25 for v in (0.1, 1, 7))


def test_linear_change_of_variables_round_trip():
    """R = φ1(w1 + w2) + φ2(w1 − w2): z = A w with the rows of A found from the Hessian alone."""
    r, _ = assert_round_trip(spec_of("entropy-plus-quadratic"), [["0.7", "0.1"], ["2", "-1"], ["0.2", "0.3"]])
    assert r.A == sp.ImmutableMatrix([[1, 1], [1, -1]])
    assert [str(pc.argument) for pc in r.pieces] == ["w1 + w2", "w1 - w2"]
    assert r.pieces[0].interval == (0, sp.oo)  # from the constraint w1 + w2 > 0
    assert r.curvature.flat


def test_hessian_input_and_parameters_round_trip():
    spec = potential_from_text('''
name = "barrier-scaled"
variables = ["w1", "w2"]
hessian = [["c/w1", "0"], ["0", "1/w2**2"]]
domain = { w1 = "positive", w2 = "positive" }
w0 = { w1 = 1, w2 = 2 }
[assumptions]
c = "positive"
[parameters]
c = 2.5
''')
    r, _ = assert_round_trip(spec, [["0.4", "1.1"], ["3", "0.5"]])
    assert "c = 2.5" in r.recipe_text and 'c = ["positive"]' in r.recipe_text
    assert r.method == "separable"


def test_negative_domain_branch():
    spec = potential_from_text('name = "nl"\nvariables = ["w"]\npotential = "-log(-w)"\n'
                               'domain = { w = "negative" }\nw0 = { w = -2 }')
    r, _ = assert_round_trip(spec, [["-0.3"], ["-5"]])
    assert r.pieces[0].F == -sp.log(-spec.variables[0])  # real on w < 0, increasing


def test_bounded_interval_branch():
    """Fermi-Dirac entropy on (0, 1): √φ'' = 1/(√w √(1 − w)), u = 2 asin(√w), w = sin(u/2)²."""
    spec = potential_from_text('name = "fd"\nvariables = ["w"]\npotential = "w*log(w) + (1 - w)*log(1 - w)"\n'
                               'domain = { w = [0, 1] }\nw0 = { w = 0.5 }')
    r = realize(spec)
    u, w = sp.Symbol("u", real=True), spec.variables[0]
    assert r.G == (sp.sin(u / 2) ** 2,) and r.u0 == (sp.pi / 2,)
    assert r.pieces[0].F == 2 * sp.asin(sp.sqrt(w)) and r.pieces[0].u_interval == (0, sp.pi)
    assert all(c.passed for c in r.checks)


# -- the implicit path -------------------------------------------------------------------------------


def test_hyperbolic_entropy_is_implicit_in_one_dimension(tmp_path):
    """u = ∫ (w² + 4α⁴)^(−1/4)/2 dw is hypergeometric: no recipe, a numerical q checked three ways."""
    spec = spec_of("hyperbolic-entropy")
    r = realize(spec)
    assert r.status is Outcome.IMPLICIT and r.exit_status == 0
    assert r.recipe_text is None and r.G is None and r.pieces[0].F is None
    assert "derive cannot take it" in r.status.value and any("derive cannot" in n for n in r.notes)
    assert "hyper" in r.pieces[0].method
    w, a = spec.variables[0], sp.Rational(1, 2)
    phi2 = sp.diff(spec.potential, w, 2).subs(spec.parameters[0], a)  # the user's φ'', not the simplified one
    phi2_mp = mp_function([w], phi2, {})
    num = r.numeric()
    with mp.workdps(20):
        for u in (mp.mpf("-1.3"), mp.mpf("0.2"), mp.mpf("2.1")):
            q = num.w([u])[0]
            dq = mp.diff(lambda v: num.w([v])[0], u)
            assert abs(dq**2 * phi2_mp(q) - 1) < mp.mpf(10) ** -12
            integral = mp.quad(lambda s: (s**2 + 4 * a**4) ** mp.mpf(-0.25) / 2, [0, q])
            assert abs(integral - u) < mp.mpf(10) ** -15

    module = load_module(r.numpy_module(), tmp_path / "hyper.py")
    assert module.DIM == 1 and module.PARAMETERS == {"alpha": 0.5} and module.init().tolist() == [0.0]
    u = np.array([[-40.0], [-1.3], [0.2], [2.1], [99.5]])
    assert np.allclose(module.u_of_w(module.G(u)), u, rtol=1e-13, atol=1e-14)
    for ui, wi in zip(u[:, 0], module.G(u)[:, 0]):
        assert abs(wi - float(num.w([ui])[0])) <= 1e-12 * (1 + abs(wi))

    # gradient flow on u (RK4, the exported G and J) is mirror flow: ∇R(w(t)) − ∇R(w0) + ∫∇L = 0 (MATH.md §5);
    # the state is (u, ∫∇L dt)
    def rhs(state):
        uu = state[:1][None, :]
        g = module.G(uu)[0, 0] - 2.0  # ∇L for L(w) = (w − 2)²/2
        return np.array([-module.jacobian(uu)[0, 0, 0] * g, g])

    state, h = np.array([0.0, 0.0]), 0.01
    for _ in range(50):
        k1 = rhs(state)
        k2 = rhs(state + h / 2 * k1)
        k3 = rhs(state + h / 2 * k2)
        k4 = rhs(state + h * k3)
        state = state + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    w_t = module.G(state[:1][None, :])[0, 0]
    assert w_t > 1.5  # it moved
    assert abs(np.arcsinh(w_t / (2 * 0.25)) / 4 + state[1]) < 1e-7


def test_implicit_inverse_with_closed_antiderivative():
    """φ'' = (1 + 1/w)²: u = w + log w is elementary, its inverse (Lambert W) is not in the grammar."""
    spec = potential_from_text('name = "lw"\nvariables = ["w"]\nhessian = [["(1 + 1/w)**2"]]\n'
                               'domain = { w = "positive" }\nw0 = { w = 1 }')
    r = realize(spec)
    w = spec.variables[0]
    assert r.status is Outcome.IMPLICIT and r.pieces[0].F == w + sp.log(w) and r.pieces[0].q is None
    assert "LambertW" in r.pieces[0].method and r.u0 == (1,)
    num = r.numeric()
    with mp.workdps(20):
        for u in (mp.mpf(-3), mp.mpf("0.5"), mp.mpf(6)):
            q = num.w([u])[0]
            assert abs(q + mp.log(q) - u) < mp.mpf(10) ** -15
            assert abs(mp.diff(lambda v: num.w([v])[0], u) ** 2 * (1 + 1 / q) ** 2 - 1) < mp.mpf(10) ** -12


# -- curvature ---------------------------------------------------------------------------------------------


def test_simplex_entropy_is_curved_with_the_sphere_curvature():
    """The Fisher metric of the simplex is a sphere of radius 2: K = 1/4 exactly, so D > d is needed."""
    r = realize(spec_of("simplex-entropy"))
    c = r.curvature
    assert r.status is Outcome.CURVED and r.exit_status == 3 and not c.flat
    assert c.gaussian_exact == sp.Rational(1, 4) and mp.mpf(c.gaussian) == mp.mpf("0.25")
    assert c.component == (1, 2, 1, 2) and c.exact == sp.Rational(27, 4)  # K det g, det g = 27 at (1/3, 1/3)
    assert r.recipe_text is None and not r.pieces
    with pytest.raises(ValueError, match="curved"):
        r.numeric()


def test_curvature_of_a_three_dimensional_simplex():
    spec = potential_from_text('''
name = "simplex-3"
variables = ["w1", "w2", "w3"]
potential = "w1*log(w1) + w2*log(w2) + w3*log(w3) + (1 - w1 - w2 - w3)*log(1 - w1 - w2 - w3)"
domain = { w1 = "positive", w2 = "positive", w3 = "positive" }
constraints = ["1 - w1 - w2 - w3"]
w0 = { w1 = 0.25, w2 = 0.25, w3 = 0.25 }
''')
    r = realize(spec)
    assert r.status is Outcome.CURVED and r.curvature.gaussian is None and r.curvature.exact != 0


def test_curvature_formula_against_christoffel_symbols():
    """R_ijkl = ¼ g^pq (T_ilp T_jkq − T_ikp T_jlq) agrees with R^ρ_σµν from the Christoffel symbols."""
    spec = potential_from_text('name = "c"\nvariables = ["a", "b"]\n'
                               'potential = "exp(a)*b**2 + a**4 - log(b) + a*b"\n'
                               'domain = { b = "positive" }\nw0 = { a = "1/3", b = "2/5" }')
    r = realize(spec)
    assert r.status is Outcome.CURVED
    W = spec.variables
    g = sp.hessian(spec.potential, W)
    gi = g.inv()
    gamma = [[[sum(gi[r_, l] * (sp.diff(g[l, m], W[n]) + sp.diff(g[l, n], W[m]) - sp.diff(g[m, n], W[l])) / 2
                   for l in range(2)) for n in range(2)] for m in range(2)] for r_ in range(2)]

    def riemann_up(r_, s, m, n):
        return (sp.diff(gamma[r_][n][s], W[m]) - sp.diff(gamma[r_][m][s], W[n])
                + sum(gamma[r_][m][l] * gamma[l][n][s] - gamma[r_][n][l] * gamma[l][m][s] for l in range(2)))

    at = dict(zip(W, spec.w0))
    r1212 = sum(g[0, l] * riemann_up(l, 1, 0, 1) for l in range(2)).xreplace(at)
    assert abs(sp.N(r1212, 40) - sp.N(r.curvature.exact, 40)) < 1e-30
    assert abs(mp.mpf(r.curvature.value) - mp.mpf(sp.N(r1212, 30))) < 1e-18


def test_flat_metrics_have_zero_curvature():
    for name in ("entropy-plus-quadratic",):
        c = realize(spec_of(name)).curvature
        assert c.flat and abs(mp.mpf(c.value)) < 1e-25 and c.points > 1
    c = realize(spec_of("entropy")).curvature
    assert c.flat and c.component is None


def test_flat_without_rational_directions_has_no_construction():
    spec = potential_from_text('name = "irr"\nvariables = ["a", "b"]\npotential = "exp(a + sqrt(2)*b) + b**2/2"\n'
                               'w0 = { a = 0, b = 0 }')
    r = realize(spec)
    assert r.status is Outcome.NO_CONSTRUCTION and r.exit_status == 5 and r.curvature.flat


def test_constant_hessian_by_ldl():
    spec = potential_from_text('name = "quad"\nvariables = ["a", "b"]\npotential = "a**2 + a*b + b**2"\n'
                               'w0 = { a = 0, b = 0 }')
    r, _ = assert_round_trip(spec, [["0.3", "-1"], ["2", "5"]])
    assert "LDL" in r.method


# -- input ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ('potental = "w**2"\nw0 = { w = 1 }', "unknown key 'potental' (did you mean 'potential'?)"),
    ('potential = "w**2"\nhessian = [["2"]]\nw0 = { w = 1 }', "exactly one of 'potential'"),
    ('potential = "__import__(\'os\').system(\'true\')"\nw0 = { w = 1 }', "potential: attribute access"),
    ('potential = "w**2 + beta"\nw0 = { w = 1 }', "potential: undeclared symbol 'beta'"),
    ('potential = "-log(w)"\ndomain = { w = "positive" }\nw0 = { w = -1 }', "w0.w: -1 is not inside the domain"),
    ('potential = "-w**2"\nw0 = { w = 1 }', "not positive definite"),
    ('potential = "w**2"\ndomain = { w = "positiv" }\nw0 = { w = 1 }', "domain.w: unknown domain 'positiv'"),
    ('potential = "c*w**2"\nw0 = { w = 1 }\n[assumptions]\nc = "positive"', "parameters.c: no value"),
    ('potential = "w**2"\nconstraints = ["w - 2"]\nw0 = { w = 1 }', "constraints[0]"),
    ('potential = "w**2"\nw0 = {}', "w0: no initial value for w"),
])
def test_bad_input_names_the_key(text, message):
    with pytest.raises(mirrorsym.RecipeError) as info:
        potential_from_text('name = "x"\nvariables = ["w"]\n' + text)
    assert message in str(info.value)


def test_a_table_that_is_no_hessian_is_refused():
    with pytest.raises(mirrorsym.RecipeError, match=r"hessian: not the Hessian of any potential: ∂hessian\[0\]\[1\]/∂a"):
        potential_from_text('name = "x"\nvariables = ["a", "b"]\nhessian = [["1", "a"], ["a", "1"]]\n'
                            'w0 = { a = 0, b = 0 }')
    with pytest.raises(mirrorsym.RecipeError, match="hessian: expected a 2 × 2 table"):
        potential_from_text('name = "x"\nvariables = ["a", "b"]\nhessian = [["1", "0"]]\nw0 = { a = 0, b = 0 }')


def test_an_exhausted_budget_names_the_step():
    with pytest.raises(mirrorsym.BudgetExceeded, match="simplify") as info:
        realize(spec_of("hyperbolic-entropy"), budget=1e-9)
    assert info.value.exit_status == 5


def test_shipped_potentials_load():
    names = {p.stem for p in shipped_potentials()}
    assert {"entropy", "log-barrier", "lp-3", "hyperbolic-entropy", "simplex-entropy"} <= names
    for path in shipped_potentials():
        assert load_potential(path).name == path.stem
    with pytest.raises(mirrorsym.RecipeError, match="did you mean 'entropy'"):
        find_potential("entropi")


# -- outputs and the command line -----------------------------------------------------------------------


def run(capsys, *argv):
    parser = argparse.ArgumentParser(prog="mirrorsym realize")
    add_realize_arguments(parser)
    rc = run_realize(parser.parse_args(list(argv)))
    return rc, capsys.readouterr().out


def test_cli_realize_then_derive(tmp_path, capsys):
    recipe, js, tex, py = (tmp_path / n for n in ("e.toml", "e.json", "e.tex", "e.py"))
    rc, out = run(capsys, "entropy", "--recipe", str(recipe), "--json", str(js), "--latex", str(tex), "--numpy", str(py))
    assert rc == 0 and "realised in closed form" in out and f"mirrorsym derive {recipe}" in out
    doc = json.loads(js.read_text())
    assert doc["realisation"]["G"] == ["u**2/4"] and doc["derive_accepts"] and doc["recipe"] == recipe.read_text()
    assert doc["curvature"]["flat"] and all(c["passed"] for c in doc["verification"])
    assert r"\frac{u^{2}}{4}" in tex.read_text()
    module = load_module(py.read_text(), py)
    assert np.allclose(module.G([[2.0], [4.0]]), [[1.0], [4.0]]) and np.allclose(module.init(), [2.0])
    assert cli_main(["derive", str(recipe)]) == 0
    assert "derived and verified" in capsys.readouterr().out


def test_cli_implicit_and_curved(tmp_path, capsys):
    recipe, py = tmp_path / "h.toml", tmp_path / "h.py"
    rc, out = run(capsys, "hyperbolic-entropy", "--recipe", str(recipe), "--numpy", str(py), "--param", "alpha=1")
    assert rc == 0 and "derive cannot take" in out and not recipe.exists() and py.exists()
    assert load_module(py.read_text(), py).PARAMETERS == {"alpha": 1.0}
    js = tmp_path / "s.json"
    rc, out = run(capsys, "simplex-entropy", "--recipe", str(recipe), "--json", str(js))
    assert rc == 3 and "K(w0) = 1/4" in out and not recipe.exists()
    assert json.loads(js.read_text())["curvature"]["gaussian_exact"] == "1/4"
    with pytest.raises(mirrorsym.RecipeError, match="no such potential"):
        run(capsys, str(tmp_path / "missing.toml"))
    with pytest.raises(mirrorsym.RecipeError, match="--param: 'beta' is not a parameter"):
        run(capsys, "entropy", "--param", "beta=2")
