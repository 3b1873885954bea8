"""JAX and PyTorch exports: same values as the numpy module, and autodiff of R gives ∇R and ∇²R
(closed and implicit pieces). Skipped when the optional dependency is not installed."""

import numpy as np
import pytest
from conftest import derived

from mirrorsym import numpy_module
from mirrorsym._array_export import jax_module, torch_module

NAMES = ["hyperbolic-entropy", "egu", "deep-one-sided-3", "quadratic-separable", "woodworth-depth-3"]


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
    g = jax.grad(lambda x: mod["R"](x).sum())(jnp.asarray(w))
    assert np.allclose(np.asarray(g), G, rtol=1e-13, atol=1e-300)
    h = jax.vmap(jax.hessian(lambda x: mod["R"](x[None])[0]))(jnp.asarray(w))
    assert np.allclose(np.asarray(h), H, rtol=1e-12, atol=0)


def test_joint_blocks_are_refused_clearly():
    with pytest.raises(NotImplementedError, match="joint"):
        torch_module(derived("quadratic-generic"))


@pytest.mark.parametrize("name", ["hyperbolic-entropy", "woodworth-depth-3", "quadratic-separable"])
def test_plot_writes_a_figure(name, tmp_path):
    pytest.importorskip("matplotlib")
    from mirrorsym._plot import plot

    plot(derived(name), str(tmp_path / "r.png"))
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
