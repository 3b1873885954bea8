"""JAX and PyTorch exports: same values as the numpy module, and autodiff of R gives ∇R and ∇²R
(closed and implicit pieces, scalar and joint). Skipped when the optional dependency is not installed."""

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import derived
from test_numpy_export import joint_points, joint_reference

from mirrorsym import numpy_module
from mirrorsym._array_export import jax_module, torch_module
from mirrorsym._recipe import shipped_recipes

#: every shipped commuting recipe (the templates export one coordinate's block, DIM = 1)
NAMES = ["azulay-shape", "azulay-shape-n", "deep-one-sided-3", "egu", "egu-n", "hyperbolic-entropy",
         "hyperbolic-entropy-n", "product-3", "quadratic-generic", "quadratic-separable", "woodworth-depth-3",
         "woodworth-depth-3-n", "woodworth-depth-4"]
JOINT = "quadratic-generic"  # its one block does not split: µ = argmin Q(µ) − <µ, w> jointly in d = 2


def _load(src):
    ns = {}
    exec(compile(src, "<generated>", "exec"), ns)
    return ns


def _points(d):
    return np.array([[0.3] * d.parametrization.d, [2.5] * d.parametrization.d, [1e-3] * d.parametrization.d])


@pytest.mark.parametrize("name", NAMES)
def test_torch_module_is_differentiable(name):
    torch = pytest.importorskip("torch")
    d = derived(name)
    ref, mod = _load(numpy_module(d)), _load(torch_module(d))
    w = _points(d)
    R, G, H = ref["evaluate"](w)
    wt = torch.tensor(w, requires_grad=True)
    Rt = mod["R"](wt)
    (g,) = torch.autograd.grad(Rt.sum(), wt)
    assert np.allclose(Rt.detach().numpy(), R, rtol=1e-14, atol=0)
    assert np.allclose(g.numpy(), G, rtol=1e-13, atol=1e-300)
    for k in range(len(w)):
        h = torch.autograd.functional.hessian(lambda x: mod["R"](x[None])[0], torch.tensor(w[k]))
        assert np.allclose(h.numpy(), H[k], rtol=1e-12, atol=0)
    _, Gt2, Ht2 = mod["evaluate"](torch.tensor(w))
    assert np.allclose(Gt2.numpy(), G, rtol=1e-14) and np.allclose(Ht2.numpy(), H, rtol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_jax_module_is_differentiable_and_jits(name):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    d = derived(name)
    ref, mod = _load(numpy_module(d)), _load(jax_module(d))
    w = _points(d)
    R, G, H = ref["evaluate"](w)
    assert np.allclose(np.asarray(jax.jit(mod["R"])(jnp.asarray(w))), R, rtol=1e-14, atol=0)
    g = jax.jit(jax.grad(lambda x: mod["R"](x).sum()))(jnp.asarray(w))
    assert np.allclose(np.asarray(g), G, rtol=1e-13, atol=1e-300)
    h = jax.jit(jax.vmap(jax.hessian(lambda x: mod["R"](x[None])[0])))(jnp.asarray(w))
    assert np.allclose(np.asarray(h), H, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", sorted(p.stem for p in shipped_recipes()))
def test_every_shipped_recipe_exports_or_has_no_potential(name):
    """Needs neither library: the commuting recipes' modules are generated (and compile), and all of
    them are in NAMES, so the tests above differentiate them; the others have nothing to export."""
    d = derived(name)
    if not d.commuting:
        assert name not in NAMES
        for make in (torch_module, jax_module):
            with pytest.raises(ValueError, match="no mirror potential"):
                make(d)
        return
    assert name in NAMES
    for make in (torch_module, jax_module):
        compile(make(d), f"<{name}>", "exec")


# --- the joint block (quadratic-generic) -----------------------------------------------------------

def _rel(a, b) -> float:
    """The largest normwise relative difference of a from b over the points (first axis)."""
    a, b = (np.asarray(x, dtype=float).reshape(len(b), -1) for x in (a, b))
    return float(np.max(np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)))


@pytest.fixture(scope="module")
def joint():
    """The derivation, its numpy module, points w = ∇Q(µ) and (R, ∇R, ∇²R) there from numpy and mpmath.

    µ is uniform in [−1/2, 1/2]², where cond ∇²Q ≲ 10³: a float64 µ(w) is then good to ~1e-14
    (farther out ∇²Q is ill conditioned and every solver, numpy's too, keeps only eps·cond)."""
    d = derived(JOINT)
    ref = _load(numpy_module(d))
    mu = np.random.default_rng(6).uniform(-0.5, 0.5, size=(7, 2))
    w = ref["grad_Q"](mu)
    R, G, H = ref["evaluate"](w)
    exact = [d.numeric().evaluate(list(row)) for row in w]
    return SimpleNamespace(d=d, ref=ref, mu=mu, w=w, R=R[:, None], G=G, H=H,
                           mp_G=np.array([[float(x) for x in g] for _, g, _ in exact]),
                           mp_H=np.array([[[float(h[i, j]) for j in range(2)] for i in range(2)] for _, _, h in exact]))


def test_joint_points_are_inside_dom_r_and_mu_is_recovered(joint):
    assert _rel(joint.G, joint.mu) < 1e-13 and _rel(joint.G, joint.mp_G) < 1e-13 and _rel(joint.H, joint.mp_H) < 1e-12


def test_joint_block_torch_values_autodiff_and_domain(joint):
    torch = pytest.importorskip("torch")
    j = joint
    mod = _load(torch_module(j.d))
    wt = torch.tensor(j.w, requires_grad=True)
    Rt, Gt, Ht = mod["R"](wt), mod["grad_R"](wt), mod["hess_R"](wt)
    Rn, Gn, Hn = (x.detach().numpy() for x in (Rt, Gt, Ht))
    # the same values as the numpy module, and as mpmath
    assert _rel(Rn[:, None], j.R) <= 1e-12 and _rel(Gn, j.G) <= 1e-12 and _rel(Hn, j.H) <= 1e-12
    assert _rel(Gn, j.mp_G) <= 1e-12 and _rel(Hn, j.mp_H) <= 1e-12
    e = [x.numpy() for x in mod["evaluate"](torch.tensor(j.w))]
    assert _rel(e[0][:, None], j.R) <= 1e-12 and _rel(e[1], j.G) <= 1e-12 and _rel(e[2], j.H) <= 1e-12
    # autodiff: ∂R = grad_R, ∂grad_R = hess_R = ∂²R (R and grad_R act row by row)
    (g,) = torch.autograd.grad(Rt.sum(), wt)
    assert _rel(g.numpy(), Gn) <= 1e-10
    jac = torch.autograd.functional.jacobian(lambda x: mod["grad_R"](x).sum(0), torch.tensor(j.w))
    assert _rel(jac.permute(1, 0, 2).numpy(), Hn) <= 1e-10
    for k in range(len(j.w)):
        x = torch.tensor(j.w[k])
        hess = torch.autograd.functional.hessian(lambda y: mod["R"](y[None])[0], x)
        assert _rel(hess.numpy()[None], Hn[k][None]) <= 1e-10

        # third order, what the second framework Newton step is for: ∂(∂grad_R) = ∂hess_R
        def jac_grad(y):
            return torch.autograd.functional.jacobian(lambda z: mod["grad_R"](z[None])[0], y, create_graph=True)

        d2mu = torch.autograd.functional.jacobian(jac_grad, x)
        dH = torch.autograd.functional.jacobian(lambda y: mod["hess_R"](y[None])[0], x)
        assert _rel(d2mu.numpy()[None], dH.numpy()[None]) <= 1e-9
    # µ is the detached solver's value exactly, the Newton steps only give its derivatives (next to
    # w0, ∇Q(µ) − w cancels in a Newton step, and would lose what the solver keeps)
    near = j.ref["grad_Q"](np.array([[1e-11, -7e-12], [1e-3, 2e-3]]))
    assert np.array_equal(mod["grad_R"](torch.tensor(near)).numpy(), mod["_joint1"](near))
    # normalisation R(w0) = 0, ∇R(w0) = 0 at w0 = ∇Q(0)
    w0 = torch.tensor(j.ref["grad_Q"](np.zeros(2)))
    assert abs(float(mod["R"](w0))) < 1e-15 and float(mod["grad_R"](w0).abs().max()) < 1e-14
    # float32 in, float32 out; a mirror-descent step lands where grad_R maps back to µ⁺
    assert mod["grad_R"](torch.tensor(j.w, dtype=torch.float32)).dtype == torch.float32
    m1, w1 = mod["mirror_descent_step"](torch.zeros(2, dtype=torch.float64), torch.tensor([0.3, -0.2]), 0.5)
    assert _rel(mod["grad_R"](w1).numpy()[None], m1.numpy()[None]) <= 1e-12
    # outside dom R (the open cone spanned by the λ_k): ValueError, as in numpy
    with pytest.raises(ValueError, match="outside dom R"):
        mod["R"](torch.tensor([list(j.w[0]), [-1.0, -1.0]]))
    with pytest.raises(ValueError, match="outside dom R"):
        j.ref["R"](np.array([-1.0, -1.0]))


def test_joint_block_jax_values_autodiff_jit_and_domain(joint):
    """What differs from torch is the detached solve (pure_callback): values, ∂R, ∂grad_R under jit,
    dtypes and NaN outside dom R. (XLA compiles each transformed function in ~0.5 s: the third order
    is checked under torch, jax.hessian(R) in test_jax_module_is_differentiable_and_jits.)"""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    j = joint
    mod = _load(jax_module(j.d))
    x = jnp.asarray(j.w)
    near = j.ref["grad_Q"](np.array([[1e-11, -7e-12], [1e-3, 2e-3]]))  # see the torch test
    n = len(j.w)
    R, G, H, H_eval = (np.asarray(a) for a in jax.jit(
        lambda y: (mod["R"](y)[:, None], mod["grad_R"](y), mod["hess_R"](y), mod["evaluate"](y)[2]))(
        jnp.asarray(np.concatenate([j.w, near]))))
    assert np.array_equal(G[n:], mod["_joint1"](near))  # µ is the detached solver's value exactly
    R, G, H, H_eval = R[:n], G[:n], H[:n], H_eval[:n]
    # the same values as the numpy module, and as mpmath
    assert _rel(R, j.R) <= 1e-12 and _rel(G, j.G) <= 1e-12 and _rel(H, j.H) <= 1e-12 and _rel(H_eval, j.H) <= 1e-12
    assert _rel(G, j.mp_G) <= 1e-12 and _rel(H, j.mp_H) <= 1e-12
    # autodiff: ∂R = grad_R, ∂grad_R = hess_R
    assert _rel(np.asarray(jax.jit(jax.grad(lambda y: mod["R"](y).sum()))(x)), G) <= 1e-10
    dG = jax.jit(jax.vmap(jax.jacfwd(lambda y: mod["grad_R"](y[None])[0])))(x)
    assert _rel(np.asarray(dG), H) <= 1e-10
    # float32 in, float32 out; outside dom R under JAX (which may be tracing): NaN in that row only
    out = jax.jit(mod["grad_R"])(jnp.asarray([[-1.0, -1.0], list(j.w[0])], dtype=jnp.float32))
    assert out.dtype == jnp.float32
    assert np.isnan(np.asarray(out[0])).all() and _rel(np.asarray(out[1:]), j.G[:1]) <= 1e-5


@pytest.fixture(scope="module")
def joint_near():
    """Points next to w0 (δ = 1e-15 … 1e-3, and float w0) and across the cone (:func:`joint_points`), the
    numpy module's (R, ∇R, ∇²R) there and R in mpmath at 50 digits (:func:`joint_reference`)."""
    d = derived(JOINT)
    ref = _load(numpy_module(d))
    w, start = joint_points(SimpleNamespace(**ref))
    R, G, H = ref["evaluate"](w)
    exact = joint_reference(d)
    return SimpleNamespace(d=d, w=w, R=R, G=G, H=H, w0=ref["grad_Q"](np.zeros(2)),
                           mp_R=[exact(p, m) for p, m in zip(w, start)])


def _check_joint_R(j, R, g):
    """R against mpmath to 1e-13 (the formula ⟨µ, w⟩ − Q(µ) would be off by eps/δ: 0.4 at δ = 1e-15) and
    bit for bit the numpy module's; autodiff g = ∂R against ∇R. The framework R is ⟨µ, w⟩ − Q(µ) for
    its derivatives, so ∂R = µ + (∂µ)ᵀ(w − ∇Q(µ)) with the float residual w − ∇Q(µ) ~ eps|w|: the
    error is ≤ eps|w|‖∇²R(w)‖ in norm (measured: 0.85 of it): ~1e-16 relative at well-conditioned
    points, 2e-10 at µ = (0.6, −2.8) where cond ∇²Q ≈ 4e7, and all of ∂R at float w0, where µ ≈ 1e-17
    (as before R took the solver's value). Tolerance: max(8 eps |w| ‖∇²R(w)‖, 1e-13 |∇R|)."""
    worst = max(float(abs(r - e) / abs(e)) for r, e in zip(R, j.mp_R))
    assert worst <= 1e-13, worst
    assert np.array_equal(R, j.R)
    err = np.linalg.norm(g - j.G, axis=1)
    bound = 8 * np.finfo(float).eps * np.linalg.norm(j.w, axis=1) * np.linalg.norm(j.H, ord=2, axis=(1, 2))
    assert np.all(err <= np.maximum(bound, 1e-13 * np.linalg.norm(j.G, axis=1))), np.max(err / bound)


def test_joint_block_R_torch_is_exact_next_to_w0(joint_near):
    """R of the torch module is the numpy solver's (µ and R solved with the numpy module's w0), and
    autodiff of it gives ∇R and ∇²R (the framework formula ⟨µ, w⟩ − Q(µ), value replaced)."""
    torch = pytest.importorskip("torch")
    j = joint_near
    mod = _load(torch_module(j.d))
    wt = torch.tensor(j.w, requires_grad=True)
    Rt = mod["R"](wt)
    (g,) = torch.autograd.grad(Rt.sum(), wt)
    _check_joint_R(j, Rt.detach().numpy(), g.numpy())
    assert np.array_equal(mod["evaluate"](torch.tensor(j.w))[0].numpy(), j.R)
    assert np.array_equal(mod["grad_R"](torch.tensor(j.w)).numpy(), j.G)
    for k in range(0, len(j.w), 6):  # second order, next to w0 and out in the cone
        h = torch.autograd.functional.hessian(lambda y: mod["R"](y[None])[0], torch.tensor(j.w[k]))
        assert _rel(h.numpy()[None], j.H[k][None]) <= 1e-10


def test_joint_block_R_jax_is_exact_next_to_w0(joint_near):
    """As for torch, under jit (∇²R by autodiff under JAX: test_jax_module_is_differentiable_and_jits)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    j = joint_near
    mod = _load(jax_module(j.d))
    x = jax.numpy.asarray(j.w)
    R = np.asarray(jax.jit(mod["R"])(x))
    g = np.asarray(jax.jit(jax.grad(lambda y: mod["R"](y).sum()))(x))
    _check_joint_R(j, R, g)
    assert np.array_equal(np.asarray(mod["grad_R"](x)), j.G)
    # outside dom R: NaN in that row, R and µ, and the solver's values in the others
    R2 = np.asarray(jax.jit(mod["R"])(jax.numpy.asarray([[-1.0, -1.0], list(j.w[0])])))
    assert np.isnan(R2[0]) and R2[1] == j.R[0]


def test_joint_block_with_a_parameter_torch():
    """No shipped joint recipe has parameters: quadratic-generic with x0 = (a, 1/3, 1/5) does. The
    parameter reaches the detached solve as a number and the Newton steps as a tensor, so that
    ∂µ/∂a is differentiable too (checked against central differences of the numpy module)."""
    torch = pytest.importorskip("torch")
    from mirrorsym import derive
    from mirrorsym._recipe import find_recipe, recipe_from_text

    text = find_recipe(JOINT).read_text().replace(f'name = "{JOINT}"', 'name = "quadratic-generic-a"')
    text = text.replace('x1 = "1"', 'x1 = "a"') + '\n[assumptions]\na = ["positive"]\n\n[parameters]\na = 0.9\n'
    d = derive(recipe_from_text(text), verify_result=False)
    ref, mod = _load(numpy_module(d)), _load(torch_module(d))
    compile(jax_module(d), "<jax>", "exec")
    w = ref["grad_Q"](np.array([[0.2, -0.1], [0.1, 0.3]]))
    for a in (0.9, 1.1):
        assert _rel(mod["grad_R"](torch.tensor(w), a=a).numpy(), ref["grad_R"](w, a=a)) <= 1e-12
        assert _rel(mod["hess_R"](torch.tensor(w), a=a).numpy(), ref["hess_R"](w, a=a)) <= 1e-12
    a = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    (da,) = torch.autograd.grad(mod["grad_R"](torch.tensor(w), a=a).sum(), a)
    fd = (ref["grad_R"](w, a=0.9 + 1e-6).sum() - ref["grad_R"](w, a=0.9 - 1e-6).sum()) / 2e-6
    assert abs(float(da) - fd) <= 1e-8 * abs(fd)


@pytest.mark.parametrize("name", ["hyperbolic-entropy", "woodworth-depth-3", "quadratic-separable"])
def test_plot_writes_a_figure(name, tmp_path):
    pytest.importorskip("matplotlib")
    from mirrorsym._plot import plot

    plot(derived(name), str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
