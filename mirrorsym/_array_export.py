"""JAX and PyTorch exports: the functions of the numpy module (:mod:`._numpy_export`), with the same
stable formulas, written for ``jax.numpy`` or ``torch`` so that they are differentiable.

An implicit piece solves q'(ν) = s in float64 numpy on values detached from the graph (through
``jax.pure_callback`` under JAX), then takes two Newton steps ν ← ν − (q'(ν) − s)/q''(ν) in the
framework. At the solution those steps change nothing, but their derivatives are exact to second
order: dν/ds = 1/q''(ν) and d²ν/ds² = −q'''/q''³, so autodiff gives ∇R and ∇²R of R = sν − q(ν).

A joint (non-separable) block is done the same way in its d_b dimensions: µ_b = argmin Q_b(µ) − ⟨µ, w_b⟩
by the numpy damped Newton ``_convex_newton`` on detached values, then two Newton steps
µ ← µ − ∇²Q_b(µ)⁻¹(∇Q_b(µ) − w_b) in the framework (a batched linear solve). The Newton map's
derivative in µ vanishes at the root, so the error left is O(|δw|²) after the first step and
O(|δw|⁴) after the second: autodiff gives dµ/dw = ∇²Q_b(µ)⁻¹ and d²µ/dw² exactly, hence ∇R = µ and
∇²R of R = ⟨µ, w⟩ − Q(µ); hess_R, the framework's inverse of ∇²Q_b(µ), differentiates to ∇³R. The
steps serve the derivatives only: µ = µ_solver + (µ_newton − stop_gradient(µ_newton)) has the solver's
value exactly, since ∇Q_b(µ) − w_b loses digits next to w0 = ∇Q_b(0) where the solver need not. So has
the block's R_b: it is ⟨µ, w_b⟩ − Q_b(µ) in the framework, for its derivatives, with the value of the
solver's R_b, computed as ⟨µ, w_b − w0⟩ − ∫(1 − t)⟨µ, ∇²Q_b(tµ)µ⟩dt next to w0 (the formula would cancel
there to a relative error eps/δ at |w_b − w0| = δ|w0|).

Inputs keep their dtype (enable ``jax_enable_x64`` for float64 under JAX). Under PyTorch a point
outside dom R raises ValueError as in numpy; under JAX (which may be tracing) it gives NaN (for a
joint block, in the rows of the batch that are outside dom R).

>>> import mirrorsym
>>> d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe("egu")))
>>> "import torch" in torch_module(d) and "import jax.numpy as jnp" in jax_module(d)
True
"""

from __future__ import annotations

from ._derivation import Derivation
from ._numpy_export import NUMPY, Backend, JointSolve, ModuleWriter, OrbitSolve, Printer, ScalarSolve, cse_code, plan

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
    """Shared by the JAX and torch writers: numpy solvers for the detached solve, framework Newton steps."""

    #: the detached joint solve gives NaN in the rows outside dom R instead of raising (JAX: tracing)
    nan_outside = False

    def orbit_helpers(self, library: str) -> str:
        """The orbit functions (:func:`~._orbit.framework_orbit_source`) when a piece needs them."""
        from ._orbit import framework_orbit_source, has_orbit_function

        if not has_orbit_function(self.plan.Q, *self.plan.grad_Q):
            return ""

        return "\n" + framework_orbit_source(library).strip("\n") + "\n"

    def scalar_curvature(self, sv, kw: str) -> list[str]:
        # differentiable through ν (the framework's Newton steps make ν exact to first order)
        return [f"{sv.h.name} = _ddq{sv.index}({sv.nu.name}{kw})"]

    def curvature_helpers(self, sv) -> list[str]:
        return []

    def numpy_solvers(self) -> str:
        """The numpy solvers, with numpy versions of q' and q'' (scalar pieces) or of Q_b, ∇Q_b and
        ∇²Q_b (joint blocks) for them, of every implicit piece."""
        from ._solvers import solver_source

        solves = [sv for sv in self.plan.solves if not isinstance(sv, OrbitSolve)]  # orbits: orbit_helpers
        if not solves:
            return ""
        out = [solver_source().strip("\n"), ""]
        sig = "".join(f", {q.name}" for q in self.p.parameters)
        kw = "".join(f", {q.name}=float({q.name})" for q in self.p.parameters)
        for sv in solves:
            if isinstance(sv, JointSolve):
                out += ["", *self._numpy_joint(sv, sig, kw)]
                continue
            for name, e in (("dq", sv.dq), ("ddq", sv.ddq)):
                lines, (res,) = cse_code([e], {sv.var}, NUMPY)
                out += ["", f"def _np_{name}{sv.index}({sv.var.name}{', *' if sig else ''}{sig}):",
                        *["    " + line for line in lines], f"    return {res}", ""]
            pr = Printer(NUMPY)
            out += ["", f"def _solve{sv.index}(s{sig}):",
                    f"    return _scalar_inverse(lambda v: _np_dq{sv.index}(v{kw}), lambda v: _np_ddq{sv.index}(v{kw}), "
                    f"np.asarray(s, dtype=float), float({pr.doprint(sv.lo)}), float({pr.doprint(sv.hi)})).astype(np.asarray(s).dtype)", ""]
        return "\n".join(out) + "\n"

    def _numpy_joint(self, js: JointSolve, sig: str, kw: str) -> list[str]:
        """``_np_Q<b>``, ``_np_gradQ<b>``, ``_np_hessQ<b>`` (the numpy module's ``_Q<b>``, ``_gradQ<b>``,
        ``_hessQ<b>``) and ``_joint<b>(w, *parameters, value=False)``: µ_b for a batch of w_b, or
        (µ_b, R_b) with ``value``, solved in float64 numpy (with the numpy module's w0) and returned in
        w's dtype."""
        b, npw = js.index, ModuleWriter(self.plan)
        out = [*npw._helper_function(f"_np_Q{b}", "m", js.vars, [js.Q], "value"),
               *npw._helper_function(f"_np_gradQ{b}", "m", js.vars, list(js.grad), "vector"),
               *npw._helper_function(f"_np_hessQ{b}", "m", js.vars, [e for row in js.hess for e in row], "matrix")]
        fns = ", ".join(f"lambda m: _np_{f}{b}(m{kw})" for f in ("Q", "gradQ", "hessQ"))
        w0 = ModuleWriter.joint_w0(js)  # the numpy module's w0 = hi + lo ("" when w0 has parameters)
        out += [f"def _joint{b}(w{sig}, value=False):",
                f'    """µ minimising Q_{b}(µ) − <µ, w> per row of w, and with value also R = <µ, w> − Q_{b}(µ)',
                '    (float64 numpy, on detached values)."""',
                "    x = np.asarray(w, dtype=float)",
                "    dtype = np.asarray(w).dtype"]
        if not self.nan_outside:
            return out + [f"    mu, r = _convex_newton({fns}, x{w0}, value=True)",
                          "    return (mu.astype(dtype), r.astype(dtype)) if value else mu.astype(dtype)", "", ""]
        return out + ["    try:",
                      f"        mu, r = _convex_newton({fns}, x{w0}, value=True)",
                      "    except ValueError:  # a row outside dom R: NaN there, the other rows one by one",
                      "        rows = x.reshape(-1, x.shape[-1])",
                      "        mu, r = np.full(rows.shape, np.nan), np.full(rows.shape[0], np.nan)",
                      "        for k in range(rows.shape[0]):",
                      "            try:",
                      f"                m, v = _convex_newton({fns}, rows[k:k + 1]{w0}, value=True)",
                      "                mu[k], r[k] = m[0], v[0]",
                      "            except ValueError:",
                      "                pass",
                      "        mu, r = mu.reshape(x.shape), r.reshape(x.shape[:-1])",
                      "    return (mu.astype(dtype), r.astype(dtype)) if value else mu.astype(dtype)", "", ""]

    def newton(self, sv: ScalarSolve, kw: str) -> list[str]:
        nu, s = sv.nu.name, sv.s.name
        # two steps from the detached root: exact first and second derivatives (module docstring)
        return ["for _ in range(2):", f"    {nu} = {nu} - (_dq{sv.index}({nu}{kw}) - {s}) / _ddq{sv.index}({nu}{kw})"]

    def detached_joint(self, js: JointSolve, wb: str, value: bool = False) -> str:
        """The expression for µ_b, or with ``value`` for the pair (µ_b, R_b), solved on the detached
        values of the array ``wb`` (no gradient)."""
        raise NotImplementedError

    def stop_gradient(self, x: str) -> str:
        raise NotImplementedError

    def joint_solve(self, js: JointSolve, kw: str, need_H: bool, need_R: bool = False) -> list[str]:
        b, ns = js.index, self.backend.ns
        wb, mu, nw, rv = f"_w{b}", f"_mu{b}", f"_newton{b}", f"_value{b}"
        # two steps from the detached minimiser: exact first and second derivatives (module docstring).
        # Their value is only for the derivatives: ∇Q_b(µ) − w_b cancels next to w0, where the numpy
        # solver may do better, so µ keeps the solver's value exactly (x − x = 0 in floats)
        lines = [f"{wb} = {self.stack([w.name for w in js.ws], -1)}",
                 f"{mu}, {rv} = {self.detached_joint(js, wb, True)}" if need_R else f"{mu} = {self.detached_joint(js, wb)}",
                 f"{nw} = {mu}", "for _ in range(2):",
                 f"    {nw} = {nw} - {ns}.linalg.solve(_hessQ{b}({nw}{kw}), (_gradQ{b}({nw}{kw}) - {wb})[..., None])[..., 0]",
                 f"{mu} = {mu} + ({nw} - {self.stop_gradient(nw)})",
                 *[f"{m.name} = {mu}[..., {a}]" for a, m in enumerate(js.mus)]]
        if need_R:
            # R_b = <µ, w_b> − Q_b(µ) for the derivatives, the solver's R_b for the value (the formula
            # cancels next to w0): the same x_solver + (x − stop_gradient(x)) as for µ
            r = js.value.name
            lines += [f"{r} = {' + '.join(f'{m.name}*{w.name}' for m, w in zip(js.mus, js.ws))} - _Q{b}({mu}{kw})",
                      f"{r} = {rv} + ({r} - {self.stop_gradient(r)})"]
        return lines + self._joint_curvature(js, kw, need_H)

    def _joint_curvature(self, js: JointSolve, kw: str, need_H: bool) -> list[str]:
        b = js.index
        if not need_H:
            return []
        return [f"_H{b} = {self.backend.ns}.linalg.inv(_hessQ{b}(_mu{b}{kw}))",
                *[f"{h.name} = _H{b}[..., {a}, {c}]" for a, row in enumerate(js.H) for c, h in enumerate(row)]]


class TorchWriter(_ArrayWriter):
    backend = TORCH
    library = "PyTorch"

    def imports(self) -> list[str]:
        return ["import numpy as np", "import torch"]

    def helpers(self) -> str:
        return _TORCH_HELPERS + self.orbit_helpers("torch") + ("\n\n" + self.numpy_solvers() if self.plan.solves else "")

    def take(self, var: str) -> str:
        conv = "".join(f"\n    {q.name} = torch.as_tensor({q.name}, dtype={var}.dtype)" for q in self.p.parameters)
        return f'{var} = _points({var}, "{var}"){conv}'

    def _detached_parameters(self) -> str:
        # take() made each parameter a tensor, which may require grad (the Newton steps differentiate in it)
        return "".join(f", float({q.name}.detach())" for q in self.p.parameters)

    def scalar_solve(self, sv: ScalarSolve, kw: str) -> list[str]:
        s, params = sv.s.name, self._detached_parameters()
        return [f"{sv.nu.name} = torch.as_tensor(_solve{sv.index}({s}.detach().cpu().numpy(){params}), dtype={s}.dtype)",
                *self.newton(sv, kw)]

    def detached_joint(self, js: JointSolve, wb: str, value: bool = False) -> str:
        params = self._detached_parameters()
        if value:
            return (f"(torch.as_tensor(v, dtype={wb}.dtype) for v in "
                    f"_joint{js.index}({wb}.detach().cpu().numpy(){params}, value=True))")
        return f"torch.as_tensor(_joint{js.index}({wb}.detach().cpu().numpy(){params}), dtype={wb}.dtype)"

    def stop_gradient(self, x: str) -> str:
        return f"{x}.detach()"

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
    nan_outside = True

    def imports(self) -> list[str]:
        return ["import jax", "import jax.numpy as jnp", "import numpy as np"]

    def helpers(self) -> str:
        return _JAX_HELPERS + self.orbit_helpers("jax") + ("\n\n" + self.numpy_solvers() if self.plan.solves else "")

    def check(self, x: str, lo: str, hi: str, label: str, where: str = "dom R") -> list[str]:
        return [f"{x} = jnp.where(({x} > {lo}) & ({x} < {hi}), {x}, jnp.nan)  # outside {where}: NaN"]

    def scalar_solve(self, sv: ScalarSolve, kw: str) -> list[str]:
        s = sv.s.name
        params = "".join(f", jax.lax.stop_gradient(jnp.asarray({q.name}, {s}.dtype))" for q in self.p.parameters)
        return [f"{sv.nu.name} = jax.pure_callback(_solve{sv.index}, jax.ShapeDtypeStruct({s}.shape, {s}.dtype), "
                f"jax.lax.stop_gradient({s}){params}, vmap_method='sequential')", *self.newton(sv, kw)]

    def detached_joint(self, js: JointSolve, wb: str, value: bool = False) -> str:
        params = "".join(f", jax.lax.stop_gradient(jnp.asarray({q.name}, {wb}.dtype))" for q in self.p.parameters)
        mu = f"jax.ShapeDtypeStruct({wb}.shape, {wb}.dtype)"
        fn, shapes = f"_joint{js.index}", mu
        if value:
            fn = f"lambda *a: _joint{js.index}(*a, value=True)"
            shapes = f"({mu}, jax.ShapeDtypeStruct({wb}.shape[:-1], {wb}.dtype))"
        return f"jax.pure_callback({fn}, {shapes}, jax.lax.stop_gradient({wb}){params}, vmap_method='sequential')"

    def stop_gradient(self, x: str) -> str:
        return f"jax.lax.stop_gradient({x})"

    def _asarray(self, name: str) -> str:
        return f"jnp.asarray({name}, dtype=mu.dtype)"


def torch_module(d: Derivation) -> str:
    """Source of the PyTorch module of a commuting derivation (functions as in :func:`numpy_module`)."""
    return TorchWriter(plan(d)).source()


def jax_module(d: Derivation) -> str:
    """Source of the JAX module of a commuting derivation (functions as in :func:`numpy_module`)."""
    return JaxWriter(plan(d)).source()
