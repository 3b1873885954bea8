"""JAX and PyTorch exports: the functions of the numpy module (:mod:`._numpy_export`), with the same
stable formulas, written for ``jax.numpy`` or ``torch`` so that they are differentiable.

An implicit piece solves q'(ν) = s in float64 numpy on values detached from the graph (through
``jax.pure_callback`` under JAX), then takes two Newton steps ν ← ν − (q'(ν) − s)/q''(ν) in the
framework. At the solution those steps change nothing, but their derivatives are exact to second
order: dν/ds = 1/q''(ν) and d²ν/ds² = −q'''/q''³, so autodiff gives ∇R and ∇²R of R = sν − q(ν).
Joint (non-separable) blocks are not exported yet.

Inputs keep their dtype (enable ``jax_enable_x64`` for float64 under JAX). Under PyTorch a point
outside dom R raises ValueError as in numpy; under JAX (which may be tracing) it gives NaN.

>>> import mirrorsym
>>> d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe("egu")))
>>> "import torch" in torch_module(d) and "import jax.numpy as jnp" in jax_module(d)
True
"""

from __future__ import annotations

from ._derivation import Derivation
from ._numpy_export import NUMPY, Backend, JointSolve, ModuleWriter, Printer, ScalarSolve, cse_code, plan

__all__ = ["jax_module", "torch_module"]

JAX = Backend("jnp", {k: v.replace("np.", "jnp.") for k, v in NUMPY.names.items()})
TORCH = Backend("torch", {"Abs": "torch.abs", "Max": "torch.maximum", "Min": "torch.minimum", "hypot": "_hypot",
                          "cbrt": "_cbrt", "sign": "torch.sign"})

_TORCH_HELPERS = '''
def _points(a, name):
    a = torch.as_tensor(a)
    if not a.is_floating_point():
        a = a.to(torch.float64)
    if a.ndim == 0 or a.shape[-1] != DIM:
        raise ValueError(f"{name} must have last axis of length {DIM}, got shape {tuple(a.shape)}")
    return a


def _inside(x, lo, hi, label, where="dom R"):
    bad = ~((x > lo) & (x < hi))
    if bool(torch.any(bad)):
        raise ValueError(f"{label} = {x[bad].flatten()[0].item()!r} is outside {where}, which needs {lo} < {label} < {hi}")


def _hypot(a, b):
    like = a if torch.is_tensor(a) else b
    return torch.hypot(torch.as_tensor(a, dtype=like.dtype), torch.as_tensor(b, dtype=like.dtype))


def _cbrt(x):
    return torch.sign(x) * torch.abs(x) ** (1 / 3)
'''

_JAX_HELPERS = '''
def _points(a, name):
    a = jnp.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        a = a.astype(float)
    if a.ndim == 0 or a.shape[-1] != DIM:
        raise ValueError(f"{name} must have last axis of length {DIM}, got shape {a.shape}")
    return a
'''


class _ArrayWriter(ModuleWriter):
    """Shared by the JAX and torch writers: numpy solvers for the detached solve."""

    def __init__(self, pl):
        super().__init__(pl)
        if any(isinstance(sv, JointSolve) for sv in pl.solves):
            raise NotImplementedError(f"{self.p.name}: the {self.library} export of a joint (non-separable) implicit "
                                      "block is not available yet; use the numpy module")

    def scalar_curvature(self, sv, kw: str) -> list[str]:
        # differentiable through ν (the framework's Newton steps make ν exact to first order)
        return [f"{sv.h.name} = _ddq{sv.index}({sv.nu.name}{kw})"]

    def curvature_helpers(self, sv) -> list[str]:
        return []

    def numpy_solvers(self) -> str:
        """The numpy solver, and numpy versions of q' and q'' for it, of every implicit piece."""
        from ._solvers import solver_source

        if not self.plan.solves:
            return ""
        out = [solver_source().strip("\n"), ""]
        sig = "".join(f", {q.name}" for q in self.p.parameters)
        for sv in self.plan.solves:
            for name, e in (("dq", sv.dq), ("ddq", sv.ddq)):
                lines, (res,) = cse_code([e], {sv.var}, NUMPY)
                out += ["", f"def _np_{name}{sv.index}({sv.var.name}{', *' if sig else ''}{sig}):",
                        *["    " + line for line in lines], f"    return {res}", ""]
            kw = "".join(f", {q.name}=float({q.name})" for q in self.p.parameters)
            pr = Printer(NUMPY)
            out += ["", f"def _solve{sv.index}(s{sig}):",
                    f"    return _scalar_inverse(lambda v: _np_dq{sv.index}(v{kw}), lambda v: _np_ddq{sv.index}(v{kw}), "
                    f"np.asarray(s, dtype=float), float({pr.doprint(sv.lo)}), float({pr.doprint(sv.hi)})).astype(np.asarray(s).dtype)", ""]
        return "\n".join(out) + "\n"

    def newton(self, sv: ScalarSolve, kw: str) -> list[str]:
        nu, s = sv.nu.name, sv.s.name
        # two steps from the detached root: exact first and second derivatives (module docstring)
        return ["for _ in range(2):", f"    {nu} = {nu} - (_dq{sv.index}({nu}{kw}) - {s}) / _ddq{sv.index}({nu}{kw})"]


class TorchWriter(_ArrayWriter):
    backend = TORCH
    library = "PyTorch"

    def imports(self) -> list[str]:
        return ["import numpy as np", "import torch"]

    def helpers(self) -> str:
        return _TORCH_HELPERS + ("\n\n" + self.numpy_solvers() if self.plan.solves else "")

    def take(self, var: str) -> str:
        conv = "".join(f"\n    {q.name} = torch.as_tensor({q.name}, dtype={var}.dtype)" for q in self.p.parameters)
        return f'{var} = _points({var}, "{var}"){conv}'

    def scalar_solve(self, sv: ScalarSolve, kw: str) -> list[str]:
        s, params = sv.s.name, "".join(f", float({q.name})" for q in self.p.parameters)
        return [f"{sv.nu.name} = torch.as_tensor(_solve{sv.index}({s}.detach().cpu().numpy(){params}), dtype={s}.dtype)",
                *self.newton(sv, kw)]

    def stack(self, items, axis: int) -> str:
        return f"torch.stack([{', '.join(items)}], dim={axis})"

    def full(self, value: str, like: str) -> str:
        if value == "0":
            return f"torch.zeros({like}.shape[:-1], dtype={like}.dtype)"
        return f"torch.full({like}.shape[:-1], float({value}), dtype={like}.dtype)"

    def _asarray(self, name: str) -> str:
        return f"torch.as_tensor({name}, dtype=mu.dtype)"


class JaxWriter(_ArrayWriter):
    backend = JAX
    library = "JAX"

    def imports(self) -> list[str]:
        return ["import jax", "import jax.numpy as jnp", "import numpy as np"]

    def helpers(self) -> str:
        return _JAX_HELPERS + ("\n\n" + self.numpy_solvers() if self.plan.solves else "")

    def check(self, x: str, lo: str, hi: str, label: str, where: str = "dom R") -> list[str]:
        return [f"{x} = jnp.where(({x} > {lo}) & ({x} < {hi}), {x}, jnp.nan)  # outside {where}: NaN"]

    def scalar_solve(self, sv: ScalarSolve, kw: str) -> list[str]:
        s = sv.s.name
        params = "".join(f", jax.lax.stop_gradient(jnp.asarray({q.name}, {s}.dtype))" for q in self.p.parameters)
        return [f"{sv.nu.name} = jax.pure_callback(_solve{sv.index}, jax.ShapeDtypeStruct({s}.shape, {s}.dtype), "
                f"jax.lax.stop_gradient({s}){params}, vmap_method='sequential')", *self.newton(sv, kw)]

    def _asarray(self, name: str) -> str:
        return f"jnp.asarray({name}, dtype=mu.dtype)"


def torch_module(d: Derivation) -> str:
    """Source of the PyTorch module of a commuting derivation (functions as in :func:`numpy_module`)."""
    return TorchWriter(plan(d)).source()


def jax_module(d: Derivation) -> str:
    """Source of the JAX module of a commuting derivation (functions as in :func:`numpy_module`)."""
    return JaxWriter(plan(d)).source()
