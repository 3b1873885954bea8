"""numpy export: a standalone module (needs only numpy) with Q, ∇Q, R, ∇R, ∇²R of a derivation.

Every parameter is a keyword argument defaulting to the recipe's value; inputs are array-like with
last axis of length DIM (any batch shape). Closed-form pieces are printed from their formulas (common
subexpressions shared); implicit pieces solve q'(ν) = s by a bracketed safeguarded Newton and joint
blocks minimise Q_b(µ) − ⟨µ, w_b⟩ by damped Newton, both vectorised (:mod:`._solvers`). A point
outside dom R raises ValueError naming it.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from ._derivation import Derivation
from ._version import __version__

__all__ = ["numpy_module"]

_HELPERS = '''

def _points(a, name):
    a = np.asarray(a, dtype=float)
    if a.ndim == 0 or a.shape[-1] != DIM:
        raise ValueError(f"{name} must have last axis of length {DIM}, got shape {a.shape}")
    return a


def _inside(s, lo, hi, label):
    bad = (s <= lo) | (s >= hi)
    if np.any(bad):
        raise ValueError(f"{label} = {np.asarray(s)[bad].flat[0]!r} is outside dom R, which needs {lo} < {label} < {hi}")
'''


class _Printer(NumPyPrinter):
    def _print_Infinity(self, expr):
        return "np.inf"

    def _print_NegativeInfinity(self, expr):
        return "-np.inf"


def _code(e: sp.Expr) -> str:
    return _Printer({"fully_qualified_modules": True}).doprint(e).replace("numpy.", "np.")


class _Body:
    """Lines of one generated function, with cse over its final expressions."""

    def __init__(self, indent: str = "    "):
        self.lines: list[str] = []
        self.indent = indent
        self._n = 0

    def add(self, line: str) -> None:
        self.lines.append(self.indent + line)

    def assign_all(self, targets: list[str], exprs: list[sp.Expr]) -> None:
        syms = sp.numbered_symbols(f"_c{self._n}_")
        self._n += 1
        reps, reduced = sp.cse(exprs, symbols=syms, order="none")
        for sym, val in reps:
            self.add(f"{sym} = {_code(val)}")
        for t, e in zip(targets, reduced):
            self.add(f"{t} = {_code(e)}")


def _param_sig(d: Derivation) -> str:
    p = d.parametrization
    if not p.parameters:
        return ""
    return ", *, " + ", ".join(f"{q.name}={float(p.defaults[q])!r}" if q in p.defaults else q.name for q in p.parameters)


def _unpack(body: _Body, var: str, syms) -> None:
    """Bind coordinates to names; :func:`_prune` later drops the ones a body never reads."""
    for k, s in enumerate(syms):
        body.add(f"{s.name} = {var}[..., {k}]  # unpack")


def _prune(lines: list[str]) -> list[str]:
    """Drop unpack lines whose name is not used elsewhere (keeps the module lint-clean)."""
    out = []
    for n, line in enumerate(lines):
        if line.endswith("  # unpack"):
            name = line.split("=")[0].strip()
            rest = lines[:n] + lines[n + 1:]
            if not any(re.search(rf"\b{re.escape(name)}\b", r) for r in rest):
                continue
            line = line[: -len("  # unpack")]
        out.append(line)
    return out


def _dual_functions(d: Derivation, sig: str) -> list[str]:
    p = d.parametrization
    out = []
    b = _Body()
    _unpack(b, "mu", p.mu)
    b.add("out = np.empty(mu.shape)")
    b.assign_all([f"out[..., {i}]" for i in range(p.d)], list(d.grad_Q))
    out += [f"def grad_Q(mu{sig}):", '    """∇Q(µ) = G(ψ(x0; µ)), the model w reached at dual coordinates µ."""',
            '    mu = _points(mu, "mu")', *_prune(b.lines), "    return out", "", ""]
    b = _Body()
    _unpack(b, "mu", p.mu)
    b.assign_all(["q"], [d.Q])
    out += [f"def Q(mu{sig}):", '    """The dual potential Q(µ), Q(0) = 0 (strictly convex on U)."""',
            '    mu = _points(mu, "mu")', *_prune(b.lines), "    return q + np.zeros(mu.shape[:-1])", "", ""]
    return out


def _primal_function(d: Derivation, sig: str, what: str) -> list[str]:
    """grad_R / R / hess_R: per block, closed pieces printed, implicit ones solved numerically."""
    p = d.parametrization
    b = _Body()
    _unpack(b, "w", p.w)
    if what == "grad_R":
        b.add("out = np.empty(w.shape)")
    elif what == "hess_R":
        b.add("out = np.zeros(w.shape + (DIM,))")
    else:
        b.add("out = np.zeros(w.shape[:-1])")
    for blk_no, blk in enumerate(d.legendre.blocks):
        idx = blk.block.g_indices
        k = len(idx)
        if blk.pieces is None:
            mus = [p.mu[i] for i in idx]
            cols = ", ".join(str(i) for i in idx)
            for name, exprs, shape in (("Q", [blk.potential.Q], None), ("g", list(blk.potential.grad), "m.shape"),
                                       ("h", [sp.diff(g, m) for g in blk.potential.grad for m in mus], "m.shape + (m.shape[-1],)")):
                b.add(f"def _{name}{blk_no}(m):")
                inner = _Body("        ")
                _unpack(inner, "m", mus)
                if shape is None:
                    inner.assign_all(["r"], exprs)
                    b.lines += _prune(inner.lines)
                    b.add("    return r + np.zeros(m.shape[:-1])")
                else:
                    inner.add(f"r = np.empty({shape})")
                    targets = [f"r[..., {a}]" for a in range(k)] if name == "g" else \
                        [f"r[..., {a}, {c}]" for a in range(k) for c in range(k)]
                    inner.assign_all(targets, exprs)
                    b.lines += _prune(inner.lines)
                    b.add("    return r")
            b.add(f"m{blk_no} = _convex_newton(_Q{blk_no}, _g{blk_no}, _h{blk_no}, w[..., [{cols}]])")
            if what == "grad_R":
                for a, i in enumerate(idx):
                    b.add(f"out[..., {i}] = m{blk_no}[..., {a}]")
            elif what == "R":
                b.add(f"out += np.sum(m{blk_no} * w[..., [{cols}]], axis=-1) - _Q{blk_no}(m{blk_no})")
            else:
                b.add(f"hb = np.linalg.inv(_h{blk_no}(m{blk_no}))")
                for a, i in enumerate(idx):
                    for c, j in enumerate(idx):
                        b.add(f"out[..., {i}, {j}] = hb[..., {a}, {c}]")
            continue
        Li = blk.L.inv()
        identity = blk.L == sp.eye(k)
        nus, rs, ddrs = [], [], []
        for pc, sw in zip(blk.pieces, blk.s_of_w):
            if not identity:
                b.assign_all([pc.s.name], [sw])
            if pc.dom[0] != -sp.oo or pc.dom[1] != sp.oo:
                b.add(f"_inside({pc.s.name}, {_code(pc.dom[0])}, {_code(pc.dom[1])}, {pc.s.name!r})")
            if pc.closed:
                nus.append(pc.dr)
                rs.append(pc.r)
                ddrs.append(pc.ddr)
                continue
            nu = sp.Symbol(f"_nu{pc.nu.name}")
            b.add(f"{nu.name} = _scalar_inverse(lambda v: {_code(pc.dq.xreplace({pc.nu: sp.Symbol('v')}))}, "
                  f"lambda v: {_code(pc.ddq.xreplace({pc.nu: sp.Symbol('v')}))}, {pc.s.name}, "
                  f"{_code(pc.U[0])}, {_code(pc.U[1])})")
            nus.append(nu)
            rs.append(pc.s * nu - pc.q.xreplace({pc.nu: nu}))
            ddrs.append(1 / pc.ddq.xreplace({pc.nu: nu}))
        if what == "grad_R":
            mub = Li * sp.Matrix(nus)
            b.assign_all([f"out[..., {i}]" for i in idx], list(mub))
        elif what == "R":
            b.assign_all(["out"], [sp.Symbol("out") + sp.Add(*rs)])
        else:
            Hb = Li * sp.diag(*ddrs) * Li.T
            b.assign_all([f"out[..., {i}, {j}]" for a, i in enumerate(idx) for c, j in enumerate(idx)],
                         [Hb[a, c] for a in range(k) for c in range(k)])
    doc = {"grad_R": "∇R(w) = µ(w), the mirror map (inverse of grad_Q).",
           "R": "The mirror potential R(w), normalised by R(w0) = 0, ∇R(w0) = 0.",
           "hess_R": "∇²R(w) = (∇²Q(µ(w)))⁻¹ = (J Jᵀ)⁻¹ on the reachable set; shape (..., DIM, DIM)."}[what]
    return [f"def {what}(w{sig}):", f'    """{doc}"""', '    w = _points(w, "w")', *_prune(b.lines), "    return out", "", ""]


def numpy_module(d: Derivation) -> str:
    """Source of the standalone numpy module for a commuting derivation."""
    from ._solvers import solver_source

    p = d.parametrization
    sig = _param_sig(d)
    params = "{" + ", ".join(f"{q.name!r}: {float(p.defaults[q])!r}" for q in p.parameters if q in p.defaults) + "}"
    head = [f'"""Mirror potential of the recipe {p.name!r}: generated by mirrorsym {__version__}.', "",
            f"Parametrization: w = G(x) = {', '.join(sp.sstr(g) for g in p.G)}, x = ({', '.join(x.name for x in p.variables)}),",
            f"x0 = ({', '.join(sp.sstr(v) for v in p.x0)}).",
            f"R is {'closed form' if d.closed_form else 'implicit (evaluated by a numerical Legendre inverse)'}; "
            f"status: {d.status.value}.",
            "Functions take arrays with last axis of length DIM; parameters are keyword arguments.", '"""', "",
            "import numpy as np", "", f"PARAMETERS = {params}", f"DIM = {p.d}", _HELPERS]
    if not d.closed_form:
        head += ["", solver_source().strip("\n"), ""]
    body = ["", ""] + _dual_functions(d, sig)
    for what in ("grad_R", "R", "hess_R"):
        body += _primal_function(d, sig, what)
    body += ["def mirror_descent_step(mu, grad_L_at_w, lr):",
             '    """One mirror-descent step in dual coordinates: µ ← µ − lr ∇L(w), with w = grad_Q(µ).',
             "", "    Needs only ∇Q: gradient descent on x is this step with µ = ∇R(G(x)) (infinitesimally).", '    """',
             "    return np.asarray(mu, dtype=float) - lr * np.asarray(grad_L_at_w, dtype=float)", ""]
    return "\n".join(head + body)
