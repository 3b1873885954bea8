"""The non-commuting diagnosis (issue 5, MATH.md §7): witness, loop, metric, path dependence, partial results.

Non-commuting cases are the four shipped recipes (built here from sympy expressions); the commuting
controls must produce no obstruction. Reference values are computed independently in the tests
(literature.md formulas, exact brackets), not read back from the code under test.
"""

import functools
import json
import pathlib
import time

import mpmath as mp
import pytest
import sympy as sp

from mirrorsym._brackets import brackets, lie_bracket
from mirrorsym._budget import Budget
from mirrorsym._diagnosis import ab_shape, conserved_quadratics, diagnose
from mirrorsym._errors import BudgetExceeded
from mirrorsym._jacobian import jacobian
from mirrorsym._parametrization import Parametrization

R = sp.Rational
RECIPES = pathlib.Path(__file__).resolve().parent.parent / "recipes"


def _sym(names):
    return sp.symbols(names, real=True)


def _quadratic(A, xs):
    x = sp.Matrix(xs)
    return sp.expand((x.T * A * x)[0] / 2)


def _cases():
    a, b1, b2 = _sym("a b1 b2")
    a11, a12, a21, a22 = _sym("a11 a12 a21 a22")
    u11, u12, u21, u22, v1, v2 = _sym("u11 u12 u21 u22 v1 v2")
    x1, x2, x3, x4 = _sym("x1 x2 x3 x4")
    u, v, up, vp, um, vm = _sym("u v up vp um vm")
    A1 = sp.Matrix([[2, 1, 0], [1, 1, 0], [0, 0, -1]])
    A2 = sp.Matrix([[1, 0, 1], [0, -1, 1], [1, 1, 2]])
    # diagonal blocks commute on span(e1, e2) ∋ x0, the lower blocks do not
    B1 = sp.diag(1, 2, sp.Matrix([[1, 1], [1, 0]]))
    B2 = sp.diag(3, -1, sp.Matrix([[0, 1], [1, 2]]))
    q5 = sp.root(5, 4)
    return {
        "single-neuron": ([a * b1, a * b2], [a, b1, b2], [R(1, 2), R(3, 10), R(-1, 5)]),
        "matrix-factorisation-2x2": ([a11**2 + a12**2, a11 * a21 + a12 * a22, a21**2 + a22**2],
                                     [a11, a12, a21, a22], [1, 0, R(1, 2), 1]),
        "two-layer-linear": ([v1 * u11 + v2 * u21, v1 * u12 + v2 * u22], [u11, u12, u21, u22, v1, v2],
                             [1, R(1, 2), R(-1, 3), 1, R(1, 2), R(2, 3)]),
        "noncommuting-quadratic": ([_quadratic(A1, [x1, x2, x3]), _quadratic(A2, [x1, x2, x3])], [x1, x2, x3],
                                   [1, R(1, 2), R(-1, 3)]),
        # literature.md N1: δ = a² − |b|² = 0 and w = G(x0) = (1, 2)
        "single-neuron-delta0": ([a * b1, a * b2], [a, b1, b2], [q5, 1 / q5, 2 / q5]),
        "hyperbolic": ([u**2 - v**2], [u, v], [R(1, 2), R(1, 2)]),
        "azulay": ([up * vp - um * vm], [up, vp, um, vm], [R(3, 5), R(9, 10), R(3, 5), R(9, 10)]),
        "commuting-quadratic": ([(x1**2 + x2**2) / 2, x1 * x2], [x1, x2], [1, R(1, 3)]),
        "invariant-subspace": ([_quadratic(B1, [x1, x2, x3, x4]), _quadratic(B2, [x1, x2, x3, x4])],
                               [x1, x2, x3, x4], [1, R(1, 2), 0, 0]),
    }


CASES = _cases()
NONCOMMUTING = ["single-neuron", "matrix-factorisation-2x2", "two-layer-linear", "noncommuting-quadratic"]
COMMUTING = ["hyperbolic", "azulay", "commuting-quadratic"]


@functools.cache
def case(name):
    G, xs, x0 = CASES[name]
    p = Parametrization.create(G, xs, x0, name=name)
    return p, diagnose(p, jacobian(p), brackets(p))


@pytest.mark.parametrize("name", NONCOMMUTING)
def test_witness_is_exact_and_nonzero(name):
    p, dg = case(name)
    c = dg.certificate("witness")
    assert c.verdict is True and not dg.commuting
    for pair in c.numbers["pairs"]:
        point = {x: sp.Rational(pair["point"][x.name]) for x in p.variables}
        exact = lie_bracket(p.G[pair["i"] - 1], p.G[pair["j"] - 1], p.variables).xreplace(point)
        assert list(exact) == list(pair["value"]) and any(e != 0 for e in exact)
        assert all(e.is_Rational for e in exact)
    assert dg.summary()[0].startswith("not commuting: [∇G_")


@pytest.mark.parametrize("name", NONCOMMUTING)
def test_loop_moves_w_by_eps_squared_bracket(name):
    p, dg = case(name)
    c = dg.certificate("loop")
    assert c.verdict is True and c.numbers["point"] == "x0"
    # the prediction, exactly: ε² J(x0) [∇G_i, ∇G_j](x0)
    i, j = c.numbers["pair"]
    at = dict(zip(p.variables, p.x0))
    J = sp.Matrix([[sp.diff(g, x) for x in p.variables] for g in p.G]).xreplace(at)
    coeff = J * lie_bracket(p.G[i - 1], p.G[j - 1], p.variables).xreplace(at)
    assert list(coeff) == list(c.numbers["predicted_coefficient_exact"])
    (e1, e2), (d1, d2) = c.numbers["eps"], c.numbers["displacement"]
    for eps, disp in ((e1, d1), (e2, d2)):
        err = mp.norm(mp.matrix(disp) - eps**2 * mp.matrix([mp.mpf(sp.N(v, 40)) for v in coeff]))
        assert err < mp.mpf("0.05") * eps**2 * mp.norm(mp.matrix([mp.mpf(sp.N(v, 40)) for v in coeff]))
    assert abs(mp.norm(mp.matrix(d1)) / mp.norm(mp.matrix(d2)) - 4) < mp.mpf("0.2")


@pytest.mark.parametrize("name", NONCOMMUTING)
def test_path_dependence_differs_far_beyond_tolerance(name):
    _, dg = case(name)
    c = dg.certificate("path_dependence")
    assert c.verdict is True and c.numbers["converged"]
    assert c.numbers["max_difference"] > 300 * c.numbers["tolerance"]
    assert c.numbers["final_distance"] < 1e-8


@pytest.mark.parametrize("name", NONCOMMUTING)
def test_no_mirror_potential_and_serialisable(name):
    _, dg = case(name)
    assert dg.no_mirror_potential
    doc = json.loads(json.dumps(dg.to_json()))
    assert doc["commuting"] is False and doc["no_mirror_potential"] is True
    assert [c["name"] for c in doc["certificates"]] == [c.name for c in dg.certificates]
    loop = next(c for c in doc["certificates"] if c["name"] == "loop")
    assert all(isinstance(v, str) for v in loop["numbers"]["predicted_coefficient_exact"])
    assert all(isinstance(v, float) for v in loop["numbers"]["predicted_coefficient"])
    tex = dg.latex()
    assert tex.startswith("\\begin{proposition}") and tex.endswith("\\end{proposition}")
    assert tex.count("{") == tex.count("}") and "\\begin{enumerate}" in tex


def test_single_neuron_summary_and_exact_json():
    _, dg = case("single-neuron")
    assert dg.summary()[0].startswith("not commuting: [∇G_1, ∇G_2] = (0, -b2, b1) ≠ 0 at (a, b1, b2) = (")
    loop = dg.certificate("loop").to_json()
    assert loop["numbers"]["predicted_coefficient_exact"] == ["1/10", "3/20"]
    metric = dg.certificate("metric").to_json()
    assert metric["numbers"]["invariants"] == ["a**2 - b1**2 - b2**2"] and metric["numbers"]["levels"] == ["3/25"]


def test_metric_defect_reproduces_literature_N1():
    _, dg = case("single-neuron-delta0")
    c = dg.certificate("metric")
    assert c.verdict is True
    # independent reference: literature.md N1's leaf a² = (δ + t)/2, b = w/a, H = a²I + bbᵀ at δ = 0
    def h_inv(w1, w2):
        a2 = mp.sqrt(4 * (w1**2 + w2**2)) / 2
        b = [w1 / mp.sqrt(a2), w2 / mp.sqrt(a2)]
        return mp.inverse(mp.matrix([[a2 + b[0] ** 2, b[0] * b[1]], [b[0] * b[1], a2 + b[1] ** 2]]))

    def d(i, j, k):  # ∂_k (H⁻¹)_ij at w = (1, 2)
        return mp.diff(lambda *w: h_inv(*w)[i, j], (1, 2), tuple(int(m == k) for m in range(2)))

    ref = {"T_112": d(0, 0, 1) - d(0, 1, 0), "T_212": d(1, 0, 1) - d(1, 1, 0)}
    got = c.numbers["defect"]
    for key, value in ref.items():
        assert abs(got[key] - value) < mp.mpf(10) ** -20
    assert (round(float(got["T_112"]), 3), round(float(got["T_212"]), 3)) == (-0.089, 0.045)


@pytest.mark.parametrize("name", ["matrix-factorisation-2x2", "two-layer-linear", "noncommuting-quadratic"])
def test_metric_not_applicable_when_the_leaf_is_larger_than_d(name):
    p, dg = case(name)
    c = dg.certificate("metric")
    assert c.verdict is None and c.numbers["leaf_dimension_at_least"] > p.d


def test_time_warped_mirror_flow_for_single_neuron():
    p, dg = case("single-neuron")
    c = dg.certificate("time_warp")
    assert c.verdict is True and c.numbers["a"] == "a" and c.numbers["b"] == ["b1", "b2"]
    # independent check of the reported P at leaf points a² − |b|² = δ = 3/25, a > 0
    P, w = c.numbers["P"], p.w
    grad = [sp.diff(P, wi) for wi in w]
    hess = sp.Matrix(2, 2, lambda k, l: sp.diff(grad[k], w[l]))
    delta = mp.mpf(3) / 25
    for b in ([0.3, -0.2], [0.5, 0.1], [-0.1, 0.7], [0.05, 0.02]):
        b = [mp.mpf(v) for v in b]
        a = mp.sqrt(delta + b[0] ** 2 + b[1] ** 2)
        at = {w[0]: a * b[0], w[1]: a * b[1]}
        g = [mp.mpf(sp.N(e.xreplace(at), 40)) for e in grad]
        Hp = mp.matrix([[mp.mpf(sp.N(hess[k, l].xreplace(at), 40)) for l in range(2)] for k in range(2)])
        JJ = mp.matrix([[a**2 + b[0] ** 2, b[0] * b[1]], [b[0] * b[1], a**2 + b[1] ** 2]])
        assert max(abs(g[k] - b[k]) for k in range(2)) < mp.mpf(10) ** -20
        assert mp.mnorm(Hp * JJ - a * mp.eye(2), 1) < mp.mpf(10) ** -20
    assert c.numbers["max_error_grad"] < 1e-20 and c.numbers["max_error_hess"] < 1e-20


def test_time_warp_only_for_the_a_times_b_shape():
    a, b1, b2, c = _sym("a b1 b2 c")
    assert ab_shape([a * b1, a * b2], [a, b1, b2]) == (a, (b1, b2))
    assert ab_shape([b1 * a, a * b2], [b1, b2, a]) == (a, (b1, b2))
    assert ab_shape([2 * a * b1, a * b2], [a, b1, b2]) is None
    assert ab_shape([a * b1, a * b1], [a, b1]) is None
    assert ab_shape([a * b1, c * b2], [a, b1, b2, c]) is None
    _, dg = case("matrix-factorisation-2x2")
    assert dg.certificate("time_warp").verdict is None and dg.certificate("time_warp").text == ""


def test_time_warp_with_negative_scalar_and_three_outputs():
    a, b1, b2, b3 = _sym("a b1 b2 b3")
    p = Parametrization.create([a * b1, a * b2, a * b3], [a, b1, b2, b3], [R(-1, 2), R(3, 10), R(-1, 5), R(1, 7)])
    dg = diagnose(p, jacobian(p), brackets(p))
    assert dg.certificate("time_warp").verdict is True
    assert dg.certificate("metric").verdict is True


def test_conserved_quadratics():
    a, b1, b2 = _sym("a b1 b2")
    assert conserved_quadratics([a * b1, a * b2], [a, b1, b2]) == [a**2 - b1**2 - b2**2]
    u11, u12, u21, u22, v1, v2 = _sym("u11 u12 u21 u22 v1 v2")
    balanced = conserved_quadratics([v1 * u11 + v2 * u21, v1 * u12 + v2 * u22], [u11, u12, u21, u22, v1, v2])
    assert len(balanced) == 3  # the entries of W1 W1ᵀ − W2ᵀ W2
    assert conserved_quadratics([sp.exp(a) * b1], [a, b1]) is None


@pytest.mark.parametrize("name", COMMUTING)
def test_commuting_controls_have_no_obstruction(name):
    p, dg = case(name)
    assert dg.commuting and dg.certificate("witness").verdict is False
    assert not dg.no_mirror_potential
    assert all(c.verdict is not True for c in dg.certificates if c.obstruction)
    path = dg.certificate("path_dependence")
    assert path.verdict is False and path.numbers["max_difference"] < path.numbers["tolerance"]
    if p.d >= 2:
        loop = dg.certificate("loop")
        assert loop.verdict is False
        eps, disp = loop.numbers["eps"][1], loop.numbers["norms"][1]
        assert disp / eps**2 < 1e-10  # no ε² term: the loop closes up to integration error
        assert dg.certificate("metric").verdict is False


def test_commuting_impulse_is_minus_grad_R():
    """For w = u² − v², α = 1/2 every loss accumulates −∇R(w*) = −¼ asinh(w*/(2α²)) (literature.md L1)."""
    _, dg = case("hyperbolic")
    c = dg.certificate("path_dependence")
    (w_star,) = c.numbers["w_star"]
    for (impulse,) in c.numbers["impulses"]:
        assert abs(impulse + mp.asinh(w_star / (2 * 0.25)) / 4) < 1e-7


def test_commuting_on_the_invariant_subspace_of_x0():
    _, dg = case("invariant-subspace")
    assert not dg.commuting
    assert dg.certificate("reachable_commuting").verdict is True
    assert dg.certificate("loop").verdict is False and dg.certificate("path_dependence").verdict is False
    assert not dg.no_mirror_potential


def test_single_neuron_brackets_do_not_vanish_at_x0():
    _, dg = case("single-neuron")
    c = dg.certificate("reachable_commuting")
    assert c.verdict is False and c.numbers["value_at_x0"] == [0, R(1, 5), R(3, 10)]


def test_parameters_without_values_leave_numeric_certificates_undecided():
    a, b1, b2, c = _sym("a b1 b2 c")
    p = Parametrization.create([c * a * b1, a * b2], [a, b1, b2], [R(1, 2), R(3, 10), R(-1, 5)],
                               parameters={"c": None})
    dg = diagnose(p, jacobian(p), brackets(p))
    assert dg.certificate("witness").verdict is True
    assert all(cert.verdict is None and "RecipeError" in cert.method for cert in dg.certificates[1:])


def test_an_exhausted_budget_raises():
    p, _ = case("single-neuron")
    budget = Budget(1e-6)
    time.sleep(1e-3)
    with pytest.raises(BudgetExceeded):
        diagnose(p, jacobian(p), brackets(p), budget=budget)


@pytest.mark.parametrize("name", NONCOMMUTING)
def test_shipped_recipes(name):
    recipe = pytest.importorskip("mirrorsym._recipe")
    p = recipe.load_recipe(str(RECIPES / f"{name}.toml"))
    G, xs, x0 = CASES[name]
    assert [str(x) for x in p.variables] == [str(x) for x in xs]
    assert sp.expand(sp.Matrix(p.G) - sp.Matrix(G).xreplace(dict(zip(xs, p.variables)))) == sp.zeros(len(G), 1)
    assert list(p.x0) == [sp.sympify(v) for v in x0]
    t = time.perf_counter()
    dg = diagnose(p, jacobian(p), brackets(p))
    assert time.perf_counter() - t < 10
    assert dg.no_mirror_potential and dg.certificate("loop").verdict and dg.certificate("path_dependence").verdict
