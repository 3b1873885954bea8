"""The generated numpy modules: stable rewrites (each against mpmath), accuracy against mpmath over
dom R from 1e-100 to 1e100, no floating-point warnings, lint-clean standalone source."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from conftest import derived

from mirrorsym._numpy_export import NUMPY, Printer, Rewriter, numpy_module, plan, stable

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_numpy", ROOT / "benchmarks" / "bench_numpy.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

CLOSED = ["hyperbolic-entropy", "azulay-shape", "egu", "deep-one-sided-3", "quadratic-separable"]
IMPLICIT = ["woodworth-depth-3", "woodworth-depth-4"]
COMMUTING = CLOSED + IMPLICIT + ["quadratic-generic"]

w, x = sp.symbols("w x", real=True)
t = sp.Symbol("t", positive=True)
a = sp.Symbol("a", positive=True)


def module(name):
    return bench.load_module(derived(name))


# --- rewrites --------------------------------------------------------------------------------------

@pytest.mark.parametrize("expr, variables, expect", [
    # conjugate + hypot + bounded ratio: no cancellation at small w, no overflow at large w
    (a - sp.sqrt(a**2 + w**2), {w: (-sp.oo, sp.oo)}, lambda e: e.has(sp.UnevaluatedExpr) and not e.has(sp.sqrt)),
    # x - sqrt(x^2 + a) cancels for large x > 0
    (x - sp.sqrt(x**2 + a), {x: (0, sp.oo)}, lambda e: not e.is_Add),
    # exponential pairs
    (a * sp.exp(x) - a * sp.exp(-x), {x: (-sp.oo, sp.oo)}, lambda e: e.has(sp.sinh)),
    (a * (sp.exp(x) - 1) + a * (sp.exp(-x) - 1), {x: (-sp.oo, sp.oo)}, lambda e: e.has(sp.sinh) and not e.has(sp.exp)),
    (3 * sp.exp(2 * x) + 5 * sp.exp(-x) - 8, {x: (-sp.oo, sp.oo)}, lambda e: e.has(sp.codegen.cfunctions.expm1)),
    # factoring cancels constants: (k - 3x)^-3 - (k + 3x)^-3 ~ x near 0
    ((1 / a - 3 * x) ** -3 - (1 / a + 3 * x) ** -3, {x: (-1 / (3 * a), 1 / (3 * a))}, lambda e: e.is_Mul),
    # polynomial in a root: 2t - 3 t^(2/3) + 1 = (t^(1/3) - 1)^2 (2 t^(1/3) + 1)
    (2 * t - 3 * t ** sp.Rational(2, 3) + 1, {t: (0, sp.oo)}, lambda e: e.is_Mul),
])
def test_rewrites_are_exact_and_take(expr, variables, expect):
    rw = Rewriter(variables, {a: sp.Rational(7, 10)})
    new = rw(expr)
    assert not rw.rejected
    assert expect(new), new
    assert rw.equal(expr, new)  # at 50 digits, for the defaults and for parameters scaled by 8/7


def test_a_wrong_rewrite_is_caught():
    rw = Rewriter({w: (-sp.oo, sp.oo)}, {a: sp.Rational(1, 2)})
    assert not rw.equal(sp.sqrt(a**2 + w**2), a + sp.Abs(w))
    assert rw.equal(sp.sqrt(a**2 + w**2), sp.codegen.cfunctions.hypot(a, w))


def test_stable_forms_are_accurate_in_float():
    """Each rewritten formula, printed, against mpmath where the naive one loses everything."""
    cases = [(1 - sp.sqrt(1 + w**2), {w: (-sp.oo, sp.oo)}, [1e-150, 1e-8, 1.0, 1e150, 1e300]),
             (t * sp.log(t) - t + 1, {t: (0, sp.oo)}, [1 - 1e-4, 1 + 1e-7, 1e-300, 7.0, 1e300])]
    for expr, variables, pts in cases:
        (v,) = variables
        new = stable(expr, variables, {})
        code = Printer(NUMPY, [v]).doprint(new)
        f = eval(f"lambda {v.name}: {code}", {"np": np})
        with np.errstate(all="raise", under="ignore"):
            got = f(np.array(pts))
        for p, g in zip(pts, got):
            with mp.workdps(700):
                ref = sp.lambdify(v, expr, "mpmath")(mp.mpf(p))
                assert abs(g - ref) <= 4e-16 * abs(ref) * max(1, abs(float(p * sp.lambdify(v, sp.diff(expr, v), "mpmath")(mp.mpf(p)) / ref))), (expr, p)


def test_printer_groups_and_folds():
    pr = Printer(NUMPY, [t, w])
    assert pr.doprint(t * sp.log(t) - t + 1) == "t*np.log(t) + (1 - t)"  # exact 1 - t first
    assert pr.doprint(4 * w / a**2) == "(4/a**2)*w"  # one scalar, then one array operation
    assert pr.doprint(t ** sp.Rational(2, 3)) == "np.cbrt(t)**2"
    assert pr.doprint(sp.log(29) - sp.log(31)) == repr(float(sp.N(sp.log(29) - sp.log(31), 30)))


@pytest.mark.parametrize("name", COMMUTING)
def test_every_rewrite_passes_its_check(name):
    assert plan(derived(name)).rejected == ()


def test_shipped_formulas_take_their_stable_forms():
    src = numpy_module(derived("hyperbolic-entropy"))
    assert "np.hypot" in src and "np.sqrt" not in src.split("def grad_Q")[1]
    assert "np.sinh(4*mu1)" in src  # ∇Q = 2α² sinh 4µ: relative accuracy as µ → 0
    egu = numpy_module(derived("egu"))
    assert "_t1*np.log(_t1) + (1 - _t1)" in egu  # R = (c²/4)(t log t + (1 − t)), t = 4w/c²
    assert "np.cbrt" in numpy_module(derived("deep-one-sided-3"))


# --- accuracy --------------------------------------------------------------------------------------

def _check(name, n, near, lo=-100, hi=100):
    d = derived(name)
    errs = bench.errors(d, module(name), bench.sample_points(d, n, lo, hi, near_w0=near, seed=3))
    for e in errs:
        assert e["R"] <= bench.tolerance(e["kR"]), (name, "R", e)
        assert e["grad"] <= bench.tolerance(e["kG"]), (name, "grad", e)
    return errs


@pytest.mark.parametrize("name", CLOSED)
def test_closed_forms_are_accurate_over_dom_R(name):
    errs = _check(name, 40, 12)
    assert max(e["hess"] for e in errs) <= 1e-13
    well = [e for e in errs if e["kR"] < 50]  # away from w0 the plain target holds
    assert max(e["R"] for e in well) <= 1e-13 and max(e["grad"] for e in well) <= 1e-13


@pytest.mark.parametrize("name", IMPLICIT)
def test_implicit_pieces_are_accurate_down_to_1e_minus_100(name):
    """R and ∇R everywhere sampled; ∇²R where float ν resolves the distance to the pole of ∇Q."""
    errs = _check(name, 24, 6, -100, 25)
    assert max(e["hess"] for e in errs if max(abs(e["w"])) < 1e12) <= 1e-13


def test_joint_block_is_accurate_inside_the_cone():
    d = derived("quadratic-generic")
    mod = module("quadratic-generic")
    rng = np.random.default_rng(5)
    mus = rng.normal(size=(12, 2)) * 0.4
    ref = bench.Reference(d)
    pts = mod.grad_Q(mus)
    R, G, H = mod.evaluate(pts)
    for k, p in enumerate(pts):
        Rr, gr, Hr, kR, _ = ref(p)
        assert abs(R[k] - float(Rr)) <= bench.tolerance(float(kR)) * abs(float(Rr))
        assert np.max(np.abs(G[k] - np.array(gr, dtype=float))) <= 1e-12 * max(1, np.max(np.abs(np.array(gr, dtype=float))))
        assert np.allclose(H[k], np.array(Hr.tolist(), dtype=float), rtol=1e-11, atol=0)


def joint_reference(d):
    """R(w) at the exact float w, in mpmath at 50 digits, for a derivation without parameters:
    µ solves ∇Q(µ) = w by mp.findroot (multidimensional Newton with J = ∇²Q) from ``start``, and
    R = ⟨µ, w⟩ − Q(µ). At |w − w0| = δ|w0| both terms are ≈ |µ||w0| ≈ δ while R ≈ δ², so this loses
    about 2·|log10 δ| ≤ 30 of the 50 digits, and keeps ≥ 20 (Q is stationary in µ: an error in µ at
    the 1e-47 of findroot's tolerance costs nothing)."""
    p = d.parametrization
    assert not p.parameters
    Q = sp.lambdify(list(p.mu), d.Q, "mpmath")
    grad = sp.lambdify(list(p.mu), list(d.grad_Q), "mpmath")
    hess = sp.lambdify(list(p.mu), sp.Matrix(d.grad_Q).jacobian(list(p.mu)).tolist(), "mpmath")

    def R(w, start):
        with mp.workdps(50):
            x = [mp.mpf(float(v)) for v in w]
            mu = mp.findroot(lambda *m: [g - v for g, v in zip(grad(*m), x)], [mp.mpf(float(v)) for v in start], J=hess)
            mu = [mu[i] for i in range(len(x))]
            assert max(abs(g - v) for g, v in zip(grad(*mu), x)) <= mp.mpf(10) ** -40 * max(abs(v) for v in x)
            return mp.fsum(m * v for m, v in zip(mu, x)) - Q(*mu)

    return R


def near_w0(w0, deltas=tuple(10.0**k for k in range(-15, -2, 2))):
    """Points w next to w0: w0·(1 ± δ) and w0 + δ|w0|u for six unit vectors u, per δ; and for each
    the start µ = ∇²Q(0)⁻¹(w − w0) of the mpmath reference (in floats; Newton does the rest)."""
    ang = np.arange(6) * np.pi / 3 + 0.1
    units = np.stack([np.cos(ang), np.sin(ang)], axis=-1)
    w = np.array([p for dl in deltas for p in (w0 * (1 + dl), w0 * (1 - dl), *(w0 + dl * np.linalg.norm(w0) * units))])
    assert not (w == w0).all(axis=-1).any()
    return w


def joint_points(mod):
    """(w, start) for quadratic-generic: next to w0 (δ = 1e-15 … 1e-3, and w0 itself, rounded to
    float) and at w = ∇Q(µ) for µ
    uniform in [−3, 3]² (cond ∇²Q up to ~1e8: R is stationary in µ, so it stays exact there)."""
    w0, h0 = mod.grad_Q(np.zeros(2)), mod.hess_R(mod.grad_Q(np.zeros(2)))
    near = np.concatenate([near_w0(w0), w0[None]])  # float w0 is not w0: R(float w0) ≈ 8e-34, not 0
    mus = np.random.default_rng(11).uniform(-3, 3, size=(16, 2))
    return np.concatenate([near, mod.grad_Q(mus)]), np.concatenate([(near - w0) @ h0.T, mus])


def test_joint_block_R_is_exact_next_to_w0_and_across_the_cone():
    """R = ⟨µ, w⟩ − Q(µ) as a formula cancels next to w0 = ∇Q(0) (relative error eps/δ at
    |w − w0| = δ|w0|: 0.4 at δ = 1e-15); the module takes R from the solver, which computes it as
    ⟨µ, w − w0⟩ − ∫(1 − t)⟨µ, ∇²Q(tµ)µ⟩dt there. Against mpmath at the exact float w, to 1e-13."""
    d = derived("quadratic-generic")
    mod = module("quadratic-generic")
    w, start = joint_points(mod)
    ref = joint_reference(d)
    R, G, H = mod.evaluate(w)
    assert np.array_equal(R, mod.R(w)) and np.array_equal(G, mod.grad_R(w)) and np.array_equal(H, mod.hess_R(w))
    worst = max(float(abs(r - ref(p, m)) / abs(ref(p, m))) for p, r, m in zip(w, R, start))
    assert worst <= 1e-13, worst
    assert np.array_equal(mod.R(w[:72].reshape(4, 18, 2)), R[:72].reshape(4, 18))  # any batch shape, row by row


@pytest.mark.parametrize("name", ["hyperbolic-entropy", "azulay-shape", "egu", "deep-one-sided-3", "woodworth-depth-3"])
def test_no_floating_point_warnings_where_results_are_representable(name):
    d = derived(name)
    mod = module(name)
    pts = bench.sample_points(d, 300, -300, 300, seed=9)
    with np.errstate(over="ignore"):
        if name.startswith("woodworth"):
            pts = pts[np.abs(pts[:, 0]) < 1e45]
    reference_ok = []
    for p in pts:
        with mp.workdps(30):
            R, g, H = d.numeric().evaluate([mp.mpf(float(v)) for v in p])
        reference_ok.append(all(abs(v) < 1e300 and (v == 0 or abs(v) > 1e-300) for v in [R, *g, H[0, 0]]))
    pts = pts[np.array(reference_ok)]
    with np.errstate(all="raise", under="ignore"):  # underflow to 0 of a result below 1e-308 is right
        R, G, H = mod.evaluate(pts)
        for fn in (mod.R, mod.grad_R, mod.hess_R):
            fn(pts)
    assert np.all(np.isfinite(R)) and np.all(np.isfinite(G)) and np.all(np.isfinite(H))


# --- the module ------------------------------------------------------------------------------------

def test_functions_agree_batch_shapes_and_parameters():
    mod = module("azulay-shape")
    w = np.linspace(-3, 5, 24).reshape(2, 3, 4, 1)
    R, G, H = mod.evaluate(w)
    assert R.shape == (2, 3, 4) and G.shape == (2, 3, 4, 1) and H.shape == (2, 3, 4, 1, 1)
    assert np.array_equal(R, mod.R(w)) and np.array_equal(G, mod.grad_R(w)) and np.array_equal(H, mod.hess_R(w))
    assert np.allclose(mod.grad_Q(mod.grad_R(w)), w, rtol=1e-14)
    assert mod.R([1.0], a=1.0, b=2.0) != mod.R([1.0])
    with pytest.raises(ValueError, match="last axis"):
        mod.R(np.ones((3, 2)))


def test_domain_and_dual_domain_are_enforced():
    mod = module("egu")
    with pytest.raises(ValueError, match="outside dom R"):
        mod.R([[-1.0]])
    deep = module("deep-one-sided-3")
    with pytest.raises(ValueError, match="outside U"):
        deep.mirror_descent_step([0.4], [-1.0], 1.0)  # µ would pass the blow-up at 1/(3α)


def test_mirror_descent_step_matches_gradient_flow_limit():
    """Mirror descent in dual coordinates on L = ½(w − 3)²: µ ← µ − lr (w − 3), w = ∇Q(µ); its
    fixed point is the minimiser, and the iterates agree with ∇R(w_k) = µ_k."""
    mod = module("hyperbolic-entropy")
    mu, w = np.zeros(1), mod.grad_Q(np.zeros(1))
    for _ in range(400):
        mu, w = mod.mirror_descent_step(mu, w - 3.0, 0.05)
    assert abs(w[0] - 3.0) < 1e-9 and np.allclose(mod.grad_R(w), mu, rtol=1e-12)


@pytest.mark.parametrize("name", COMMUTING)
def test_generated_source_is_lint_clean_and_headed(name, tmp_path):
    src = numpy_module(derived(name))
    assert src.startswith(f'"""Mirror potential of the mirrorsym recipe {name!r}, generated by mirrorsym ')
    assert "def mirror_descent_step(mu, grad_L_at_w, lr" in src
    ruff = shutil.which("ruff")
    if ruff is None:
        if os.environ.get("CI") == "true":
            pytest.fail("ruff is not installed (it is in the test extra)")
        pytest.skip("ruff not installed")
    path = tmp_path / f"{name.replace('-', '_')}.py"
    path.write_text(src)
    for args in (["--isolated"], ["--config", str(ROOT / "pyproject.toml")]):
        p = subprocess.run([ruff, "check", "--no-cache", *args, str(path)], capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


def test_generated_modules_import_with_only_numpy(tmp_path):
    """In a fresh interpreter that refuses to import sympy, mpmath, scipy or mirrorsym."""
    for name in ("hyperbolic-entropy", "woodworth-depth-3", "quadratic-generic"):
        (tmp_path / f"{name.replace('-', '_')}.py").write_text(numpy_module(derived(name)))
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'sympy', 'mpmath', 'scipy', 'mirrorsym'}:\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import hyperbolic_entropy as h, woodworth_depth_3 as d3, quadratic_generic as q\n"
        "print(float(h.R([[0.3]])[0]), float(d3.grad_R([[0.1]])[0, 0]), q.grad_R([[0.5, 0.4]]).shape)\n")
    p = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "(1, 2)" in p.stdout


def test_non_commuting_has_no_module():
    with pytest.raises(ValueError, match="no mirror potential"):
        numpy_module(derived("single-neuron"))


def test_dual_functions_check_a_one_sided_U(tmp_path):
    """deep-one-sided-3 has U = (−∞, 1/(3α)): grad_Q, Q and mirror_descent_step accept µ < 1/(3α) and refuse
    µ beyond it, where the flow has blown up (a regression: −∞ printed as +inf refused every µ)."""
    d = derived("deep-one-sided-3")
    path = tmp_path / "d1.py"
    path.write_text(numpy_module(d))
    spec = importlib.util.spec_from_file_location("d1", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    alpha = mod.PARAMETERS["alpha"]
    mu = np.array([[-5.0], [0.0], [0.1]])
    np.testing.assert_allclose(mod.grad_Q(mu)[:, 0], (1 / alpha - 3 * mu[:, 0]) ** -3, rtol=1e-14)
    mu1, w1 = mod.mirror_descent_step(np.zeros(1), np.array([-0.1]), 1.0)
    assert mu1[0] == 0.1 and abs(w1[0] - (1 / alpha - 0.3) ** -3) < 1e-14 * w1[0]
    for f in (mod.grad_Q, mod.Q):
        with pytest.raises(ValueError, match="outside U"):
            f(np.array([1 / (3 * alpha) + 1e-3]))
