"""Monomial orbits (issue 3): w = u1·u2·u3 with a general x0, and other coupled monomials.

Ground truth is independent of mirrorsym's quadrature and root finding:

* for three linear factors, the dual time is Carlson's elliptic integral: with a = x0² and
  x(σ)² = a + (σ² − x_m0²), T(σ) = (R_F(a) − R_F(x(σ)²))/c on the side of x_m0, and by the symmetry
  of the integrand T(σ) = 2T(0) − T(−σ) on the other (mpmath's ``elliprf``);
* the point σ_w(w) solves the cubic Π(a_k + 2s) = (w/c)², s = (σ² − x_m0²)/2, by bisection;
* ψ(µ) is integrated from x0 by mpmath's Taylor-series ODE solver (``odefun``).
"""

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from conftest import derived, load_module
from hypothesis import given
from hypothesis import strategies as st

import mirrorsym
from mirrorsym._array_export import jax_module, torch_module
from mirrorsym._orbit import NUMPY_ORBIT_SOURCE, monomial_orbit


def _recipe(G, variables, init, **kw):
    return mirrorsym.Parametrization.create(G, variables, init, name="orbit-test", **kw)


def _mpf(v):
    """An exact rational (or int) as an mpf at the current precision (mp.mpf(Rational) goes via float)."""
    v = sp.Rational(v)
    return mp.mpf(v.p) / v.q


class Carlson:
    """∇R, R, ∇²R of w = c·u1·u2·u3 (x0 positive, unique smallest factor) from R_F and a bisected cubic."""

    def __init__(self, x0, c=1):
        self.c = _mpf(c)
        self.a = sorted(_mpf(v) ** 2 for v in x0)  # the smallest factor is the curve parameter
        self.w0 = self.c * mp.sqrt(self.a[0] * self.a[1] * self.a[2])

    def s_of(self, w):
        """s > −a_0/2 with c² Π(a_k + 2s) = w² (increasing in s there), by bisection."""
        target = (w / self.c) ** 2
        lo, hi = -self.a[0] / 2, mp.mpf(1)
        while mp.fprod(a + 2 * hi for a in self.a) < target:
            hi *= 2
        geometric = lo == 0  # an orbit through w = 0: s ~ w² can be 1e-200, bisect its magnitude first
        if geometric:
            lo = mp.mpf(10) ** -800
        for _ in range(4000):
            mid = mp.sqrt(lo * hi) if geometric and hi > 2 * lo else (lo + hi) / 2
            if mp.fprod(a + 2 * mid for a in self.a) < target:
                lo = mid
            else:
                hi = mid
            if hi - lo <= mp.mpf(10) ** (-mp.mp.dps - 5) * max(1, abs(mid)):
                break
        return (lo + hi) / 2

    def T_zero(self):
        """T(0): the time to w = 0, R_F(a) − R_F(a − a_0) (a − a_0 formed exactly)."""
        return (mp.elliprf(*self.a) - mp.elliprf(*[a - self.a[0] for a in self.a])) / self.c

    def T_same(self, s):
        return (mp.elliprf(*self.a) - mp.elliprf(*[a + 2 * s for a in self.a])) / self.c

    def evaluate(self, w):
        w = mp.mpf(w)
        s = self.s_of(abs(w))
        T0 = self.T_zero()
        mu = self.T_same(s) if w > 0 else 2 * T0 - self.T_same(s)
        x2 = [a + 2 * s for a in self.a]
        speed2 = self.c**2 * (x2[1] * x2[2] + x2[0] * x2[2] + x2[0] * x2[1])
        return mu * w - s, mu, 1 / speed2


@pytest.fixture(scope="module")
def product3():
    return derived("product-3")


def test_product3_is_implicit_verified_with_bounded_U_and_dom_R_everything(product3):
    d = product3
    assert d.status is mirrorsym.Status.VERIFIED
    assert not d.closed_form and d.R is None
    (pc,) = d.legendre.blocks[0].pieces
    assert pc.orbit is not None and pc.orbit.crossing and pc.orbit.variables[pc.orbit.m].name == "u1"
    assert pc.dom == (-sp.oo, sp.oo)
    ref = Carlson((sp.Rational(1, 2), 1, sp.Rational(3, 2)))
    with mp.workdps(30):
        lo, hi = (mp.mpf(sp.N(e, 40)) for e in pc.U)
        # U = (T(−∞), T(+∞)) = (R_F(a) − 2R_F(a − a_0), R_F(a)) for c = 1
        b = [a - ref.a[0] for a in ref.a]
        assert abs(hi - mp.elliprf(*ref.a)) < mp.mpf(10) ** -25
        assert abs(lo - (mp.elliprf(*ref.a) - 2 * mp.elliprf(*b))) < mp.mpf(10) ** -25


def test_orbit_time_is_carlsons_elliptic_integral():
    u = sp.symbols("u1:4", real=True)
    for x0 in [(1, 2, 3), (sp.Rational(1, 3), 2, 1), (sp.Rational(5, 2), sp.Rational(7, 3), sp.Rational(9, 4))]:
        orb = monomial_orbit(u[0] * u[1] * u[2], u, dict(zip(u, x0)), index=1)
        ref = Carlson(x0)
        for sig in ["0.01", "0.3", "1.7", "40", "1e8", "-0.2", "-3", "-1e5"]:
            with mp.workdps(40):
                sig, xm = mp.mpf(sig), _mpf(min(x0))
                got = mp.mpf(sp.N(orb.time(sp.Float(str(sig), 40), list(x0)), 40))
                s = (abs(sig) ** 2 - xm**2) / 2
                want = ref.T_same(s) if sig > 0 else 2 * ref.T_zero() - ref.T_same(s)
                assert abs(got - want) <= mp.mpf(10) ** -30 * (1 + abs(want)), (x0, sig)


def _odefun_psi(grads, x0, mu):
    sgn = 1 if mu > 0 else -1
    sol = mp.odefun(lambda t, y: [sgn * g(*y) for g in grads], 0, [mp.mpf(v) for v in x0])
    return sol(abs(mu))


def _flow_samples(p, mus):
    """(µ, w = G(ψ(µ)), |∇G(ψ(µ))|²) with ψ integrated from x0 by mpmath's ODE solver, for d = 1."""
    xs = p.variables
    grads = [sp.lambdify(xs, sp.diff(p.G[0], x), "mpmath") for x in xs]
    Gf = sp.lambdify(xs, p.G[0], "mpmath")
    x0 = [mp.mpf(sp.N(v, 30)) for v in p.x0]
    out = []
    with mp.workdps(30):
        for mu in map(mp.mpf, mus):
            x = _odefun_psi(grads, x0, mu)
            out.append((float(mu), float(Gf(*x)), float(sum(g(*x) ** 2 for g in grads))))
    return out


def test_psi_follows_the_flow_and_crosses_zero(product3):
    """ψ(µ) against an ODE integration of +∇G from x0 (through w = 0: the smallest factor changes sign)."""
    d = product3
    p = d.parametrization
    grads = [lambda a, b, c: b * c, lambda a, b, c: a * c, lambda a, b, c: a * b]
    psi = sp.lambdify(p.mu, list(d.psi.psi), "mpmath")
    with mp.workdps(30):
        T0 = mp.mpf(sp.N(d.legendre.blocks[0].pieces[0].orbit.time(0, [sp.Rational(1, 2), 1, sp.Rational(3, 2)]), 40))
        for mu in [mp.mpf("0.2"), mp.mpf("-0.1"), T0 - mp.mpf("0.15")]:
            got = psi(mu)
            ref = _odefun_psi(grads, [mp.mpf(1) / 2, 1, mp.mpf(3) / 2], mu)
            assert max(abs(a - b) for a, b in zip(got, ref)) < mp.mpf(10) ** -20
        assert psi(T0 - mp.mpf("0.15"))[0] < 0  # past w = 0


@pytest.mark.parametrize("x0", [(sp.Rational(1, 2), 1, sp.Rational(3, 2)), (0, 1, sp.Rational(3, 2))],
                         ids=["product-3", "a factor starting at 0"])
def test_numpy_module_matches_carlson_over_the_whole_line(x0, tmp_path):
    d = derived("product-3") if x0[0] else mirrorsym.derive(
        _recipe(["u1*u2*u3"], ["u1", "u2", "u3"], dict(zip(["u1", "u2", "u3"], map(str, x0)))))
    mod = load_module(d, tmp_path, "product3")
    ref = Carlson(x0)
    w0 = float(x0[0] * x0[1] * x0[2])
    ws = np.array([s * 10.0**k for k in range(-100, 101, 4) for s in (1, -1)]
                  + [w0 + 0.75 * f for f in (1e-3, 1e-6, 1e-9, -1e-4, -1e-7)] + [0.0])
    R, g, H = mod.evaluate(ws[:, None])
    worst = {"R": 0.0, "grad": 0.0, "hess": 0.0}
    for w, r, gg, hh in zip(ws, R, g[:, 0], H[:, 0, 0]):
        # R_F(a) − R_F(a + 2s) cancels like s: digits enough for s ~ w² (w0 = 0) at |w| = 1e-100
        with mp.workdps(40 + (3 * int(abs(np.log10(abs(w)))) if w and not w0 else 0)):
            Rr, mu, h = ref.evaluate(w)
        if w == w0:
            assert gg == 0 and r == 0
            continue
        worst["grad"] = max(worst["grad"], float(abs(gg - mu) / abs(mu)))
        worst["hess"] = max(worst["hess"], float(abs(hh - h) / h))
        if not w0 or abs(w - w0) > 1e-2:  # R ~ (w − w0)² cancels next to w0 ≠ 0: relative error κ·eps
            worst["R"] = max(worst["R"], float(abs(r - Rr) / abs(Rr)))
    assert worst["grad"] < 1e-13 and worst["hess"] < 1e-13 and worst["R"] < 1e-13, worst
    # R is minimal, 0, at w0
    assert abs(mod.R(np.array([w0]))) < 1e-16 and abs(mod.grad_R(np.array([w0]))[0]) < 1e-16


def test_numpy_dual_side_inverts_the_primal_side(product3, tmp_path):
    mod = load_module(product3, tmp_path, "product3_dual")
    mu = np.linspace(-1.7, 1.0, 41)[1:-1, None]
    w = mod.grad_Q(mu)
    np.testing.assert_allclose(mod.grad_R(w), mu, rtol=0, atol=1e-13)
    mu2, w2 = mod.mirror_descent_step(np.zeros(1), np.array([-0.1]), 1.0)
    np.testing.assert_allclose(mod.grad_R(w2), mu2, atol=1e-14)
    with pytest.raises(ValueError, match="outside U"):
        mod.grad_Q(np.array([2.0]))


@given(st.lists(st.floats(0.2, 3.0), min_size=3, max_size=3, unique=True), st.floats(-0.95, 0.95))
def test_numpy_orbit_functions_for_random_starts(x0, frac):
    """T, σ, σ_w of the generated code against R_F at random starts and points of U."""
    ns = {"np": np}
    exec(NUMPY_ORBIT_SOURCE, ns)
    xs = sorted(x0)
    if xs[1] ** 2 - xs[0] ** 2 < 1e-3 * xs[1] ** 2:
        return  # near a tie the crossing parametrization is ill-conditioned by nature
    o = ns["_Orbit"](1.0, x0, (1, 1, 1), x0.index(xs[0]), True)
    lo, hi = o.time_range()
    mu = np.array([frac * (hi if frac > 0 else -lo)])
    sig = o.point(mu)
    ref = Carlson(x0)
    with mp.workdps(30):
        s = (mp.mpf(float(sig[0])) ** 2 - mp.mpf(xs[0]) ** 2) / 2
        T0 = ref.T_zero()
        want = ref.T_same(s) if sig[0] > 0 else 2 * T0 - ref.T_same(s)
        assert abs(float(want) - mu[0]) < 1e-12 * (1 + abs(mu[0]))
        w = float(mp.sign(sig[0]) * mp.sqrt(mp.fprod(a + 2 * s for a in ref.a)))
    assert abs(o.output(np.array([w]))[0] - sig[0]) <= 1e-13 * abs(sig[0]) + 1e-300


def test_a_tie_does_not_cross_and_dom_R_is_one_sided(tmp_path):
    """u1(0) = u2(0): ∇G → 0 as u1, u2 → 0, so w never reaches 0, U = (−∞, ·) and dom R = (0, ∞)."""
    d = mirrorsym.derive(_recipe(["u1*u2*u3"], ["u1", "u2", "u3"], {"u1": "1", "u2": "1", "u3": "2"}))
    assert d.status is mirrorsym.Status.VERIFIED
    (pc,) = d.legendre.blocks[0].pieces
    assert not pc.orbit.crossing and pc.U[0] == -sp.oo and pc.dom == (0, sp.oo)
    mod = load_module(d, tmp_path, "tie")
    # on the orbit u1 = u2 = σ, u3² = 3 + σ², w = σ²√(3 + σ²): ∇R = T(σ) = ∫_1^σ dτ/(τ√(3 + τ²)) in closed form
    for sig in [1e-30, 1e-3, 0.5, 3.0, 1e20]:
        with mp.workdps(40):
            s = mp.mpf(sig)
            w = s**2 * mp.sqrt(3 + s**2)
            F = lambda t: -mp.asinh(mp.sqrt(3) / t) / mp.sqrt(3)  # noqa: E731 (an antiderivative of 1/(t√(3 + t²)))
            mu = F(s) - F(1)
        got = mod.grad_R(np.array([float(w)]))[0]
        assert abs(got - float(mu)) <= 1e-13 * abs(float(mu)), sig
    with pytest.raises(ValueError, match="dom R"):
        mod.grad_R(np.array([-1.0]))


@pytest.mark.parametrize("G, variables, init", [
    (["u**2*v"], ["u", "v"], {"u": "1", "v": "2"}),
    (["a*b*c*e"], ["a", "b", "c", "e"], {"a": "1", "b": "1/2", "c": "3/2", "e": "2"}),
    (["-2*u1*u2*u3"], ["u1", "u2", "u3"], {"u1": "-1/2", "u2": "1", "u3": "3/2"}),
])
def test_other_monomials_follow_their_flow(G, variables, init, tmp_path):
    """∇R(G(ψ(µ))) = µ and ∇²R = 1/|∇G|² with ψ from an independent ODE integration."""
    p = _recipe(G, variables, init)
    d = mirrorsym.derive(p)
    assert d.status is mirrorsym.Status.VERIFIED and not d.closed_form
    mod = load_module(d, tmp_path, "mono")
    for mu, w, speed2 in _flow_samples(p, ["0.05", "-0.08"]):
        assert abs(mod.grad_R(np.array([w]))[0] - mu) < 1e-13
        assert abs(mod.hess_R(np.array([w]))[0, 0] - 1 / speed2) < 1e-13 / speed2


def test_parameters_flow_through_the_orbit(tmp_path):
    p = _recipe(["beta*u1*u2*u3"], ["u1", "u2", "u3"], {"u1": "alpha", "u2": "1", "u3": "3/2"},
                parameters={"alpha": 0.4, "beta": 1.5}, assumptions={"alpha": ["positive"], "beta": ["positive"]})
    d = mirrorsym.derive(p)
    mod = load_module(d, tmp_path, "param")
    for alpha, beta in [(0.4, 1.5), (0.3, 2.0)]:
        ref = Carlson((sp.nsimplify(alpha), 1, sp.Rational(3, 2)), c=sp.nsimplify(beta))
        for w in [0.1, -2.0, 30.0]:
            with mp.workdps(30):
                _, mu, h = ref.evaluate(w)
            assert abs(mod.grad_R(np.array([w]), alpha=alpha, beta=beta)[0] - float(mu)) < 1e-13 * abs(float(mu))
            assert abs(mod.hess_R(np.array([w]), alpha=alpha, beta=beta)[0, 0] - float(h)) < 1e-13 * float(h)


def test_cli_writes_json_numpy_and_framework_modules(tmp_path):
    from mirrorsym._cli import main

    js, py = tmp_path / "p3.json", tmp_path / "p3.py"
    assert main(["derive", "product-3", "--json", str(js), "--numpy", str(py)]) == 0
    import json

    doc = json.loads(js.read_text())
    part = doc["pieces"][0]["parts"][0]
    assert doc["closed_form"] is False and part["orbit"]["parameter"] == "u1" and part["orbit"]["crosses_zero"]
    jsonschema = pytest.importorskip("jsonschema")
    from pathlib import Path

    schema = json.loads((Path(__file__).parent.parent / "docs" / "schema.json").read_text())
    jsonschema.validate(doc, schema)
    del part["orbit"]["T"]  # the schema describes the orbit: an incomplete one is invalid
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
    assert main(["derive", "product-3", "--torch", str(tmp_path / "t.py"), "--jax", str(tmp_path / "j.py")]) == 0
    assert "_orbit_fw_gradient(" in (tmp_path / "t.py").read_text()


def _exec(src):
    ns = {}
    exec(compile(src, "<generated>", "exec"), ns)
    return ns


def test_torch_module_of_an_orbit_is_exact_and_differentiable(product3):
    torch = pytest.importorskip("torch")
    ref = _exec(mirrorsym.numpy_module(product3))
    mod = _exec(torch_module(product3))
    w = np.array([[-40.0], [-0.3], [1e-8], [0.7], [0.75], [2.0], [1e6]])
    R, G, H = ref["evaluate"](w)
    wt = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    Rt = mod["R"](wt)
    np.testing.assert_allclose(Rt.detach().numpy(), R, rtol=1e-15, atol=0)
    np.testing.assert_allclose(mod["grad_R"](wt).detach().numpy(), G, rtol=1e-15, atol=0)
    np.testing.assert_allclose(mod["hess_R"](wt).detach().numpy(), H, rtol=1e-15, atol=0)
    (g,) = torch.autograd.grad(Rt.sum(), wt, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), G, rtol=1e-12, atol=1e-300)
    (h,) = torch.autograd.grad(g.sum(), wt)
    np.testing.assert_allclose(h.numpy(), H[:, 0, :], rtol=1e-10, atol=0)
    mu = torch.tensor([[-1.2], [0.1], [0.9]], dtype=torch.float64, requires_grad=True)
    q = mod["Q"](mu)
    (dq,) = torch.autograd.grad(q.sum(), mu, create_graph=True)
    np.testing.assert_allclose(dq.detach().numpy(), mod["grad_Q"](mu).detach().numpy(), rtol=1e-12)
    (ddq,) = torch.autograd.grad(dq.sum(), mu)  # ∇²Q = (∇²R)⁻¹ at w = ∇Q(µ)
    wq = ref["grad_Q"](mu.detach().numpy())
    np.testing.assert_allclose(ddq.numpy()[:, 0], 1 / ref["hess_R"](wq)[:, 0, 0], rtol=1e-10)


def test_jax_module_of_an_orbit_jits_and_differentiates(product3):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    ref = _exec(mirrorsym.numpy_module(product3))
    mod = _exec(jax_module(product3))
    w = np.array([[-40.0], [-0.3], [0.7], [2.0], [1e6]])
    R, G, H = ref["evaluate"](w)
    # XLA fuses and reorders the arithmetic of R = wν − Q(σ): a few ulps where R is small (next to w0)
    np.testing.assert_allclose(np.asarray(jax.jit(mod["R"])(jnp.asarray(w))), R, rtol=1e-14, atol=0)
    g = jax.jit(jax.grad(lambda x: mod["R"](x).sum()))(jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(g), G, rtol=1e-12, atol=1e-300)
    h = jax.vmap(jax.hessian(lambda x: mod["R"](x[None])[0]))(jnp.asarray(w))
    np.testing.assert_allclose(np.asarray(h), H, rtol=1e-10, atol=0)


@pytest.mark.slow  # a nested numerical solve in mpmath: ~10–20 s
@pytest.mark.parametrize("G, variables, init", [
    (["u1*u2*u3 - v1*v2*v3"], ["u1", "u2", "u3", "v1", "v2", "v3"],
     {"u1": "1/2", "u2": "1", "u3": "3/2", "v1": "1", "v2": "1/2", "v3": "1"}),
    (["u1*u2*u3 - v**3"], ["u1", "u2", "u3", "v"], {"u1": "1/2", "u2": "1", "u3": "3/2", "v": "1"}),
])
def test_sums_of_monomials_in_disjoint_groups(G, variables, init, tmp_path):
    """A depth-3 diagonal network with general initialisation: each group of variables moves along its own
    orbit at the same time µ; ∇R solves Σ_j w_j(µ) = w numerically. Checked against ψ from an ODE solver."""
    p = _recipe(G, variables, init)
    d = mirrorsym.derive(p)
    assert d.status is mirrorsym.Status.VERIFIED and not d.closed_form
    (pc,) = d.legendre.blocks[0].pieces
    assert pc.orbit is None and pc.r is None and pc.dom == (-sp.oo, sp.oo)
    lo, hi = (float(sp.N(e, 20)) for e in pc.U)
    assert -2 < lo < 0 < hi < 2  # both ends finite: one orbit blows up on each side
    mod = load_module(d, tmp_path, "sums")
    for mu, w, speed2 in _flow_samples(p, ["0.1", "-0.15"]):
        assert abs(mod.grad_R(np.array([w]))[0] - mu) < 1e-13
        assert abs(mod.hess_R(np.array([w]))[0, 0] - 1 / speed2) < 1e-12 / speed2
        assert abs(mod.grad_Q(np.array([mu]))[0] - w) < 1e-13 * abs(w)
    with pytest.raises(ValueError, match="outside U"):
        mod.grad_Q(np.array([hi + 0.01]))
    doc = mirrorsym.to_json(d)
    assert doc["pieces"][0]["orbits"][0]["variables"] == ["u1", "u2", "u3"]
    assert "Orbit of the group" in mirrorsym.latex_document(d)
