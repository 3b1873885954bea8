"""LaTeX export: the derivation as equations (amsmath), as a fragment or a standalone document.

Symbols keep the recipe's names (``alpha`` prints as α); inverse hyperbolic functions print in the ISO
style (arsinh). Every step is shown with the method that produced it.
"""

from __future__ import annotations

import sympy as sp

from ._derivation import Derivation
from ._version import __version__

__all__ = ["latex", "latex_document", "latex_fragment"]

_ISO = {r"\operatorname{asinh}": r"\operatorname{arsinh}", r"\operatorname{acosh}": r"\operatorname{arcosh}",
        r"\operatorname{atanh}": r"\operatorname{artanh}"}


def latex(e) -> str:
    out = sp.latex(e)
    for a, b in _ISO.items():
        out = out.replace(a, b)
    return out


def _vec(items) -> str:
    items = list(items)
    return latex(items[0]) if len(items) == 1 else r"\left(" + ", ".join(latex(x) for x in items) + r"\right)"


def _interval(lo, hi) -> str:
    return rf"\left({latex(lo)}, {latex(hi)}\right)"  # open: U and dom R are open sets


def _escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"), ("_", r"\_"),
                 ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")):
        text = text.replace(a, b)
    return text.replace(r"\textbackslash\{\}", r"\textbackslash{}")


def _align(rows) -> list[str]:
    return [r"\begin{align*}", " \\\\\n".join(f"  {lhs} &= {rhs}" for lhs, rhs in rows), r"\end{align*}"]


def latex_fragment(d: Derivation, inline: bool = False) -> str:
    """The derivation as a LaTeX fragment to paste (or, ``inline``, R alone for notebooks)."""
    p = d.parametrization
    if inline:
        if d.R is not None:
            return "R(w) = " + latex(d.R)
        return r"\text{" + _escape(d.status.value) + "}"
    out = [f"% mirrorsym {__version__}: {p.name}"]
    out.append(r"\paragraph{Parametrization.}")
    rows = [(latex(wi), latex(g)) for wi, g in zip(p.w, p.G)]
    rows.append((r"x_0", _vec(p.x0) + r",\quad x = " + _vec(p.variables)))
    out += _align(rows)
    assumed = [rf"{latex(s)} > 0" for s in p.variables + p.parameters if s.is_positive]
    if assumed:
        out.append("Assumptions: $" + ", ".join(assumed) + "$.")
    if p.defaults:
        out.append("Numerical checks use $" + ", ".join(f"{latex(k)} = {latex(v)}" for k, v in p.defaults.items()) + "$.")
    out.append("")
    if not d.commuting:
        out.append(r"\paragraph{Not commuting.}")
        for b in d.brackets.nonzero:
            out += _align([(rf"[\nabla G_{{{b.i + 1}}}, \nabla G_{{{b.j + 1}}}]", _vec(b.vector))])
            if b.witness:
                pt = ", ".join(f"{latex(sp.Symbol(k))} = {latex(v)}" for k, v in b.witness.items())
                out.append(f"This bracket is nonzero at ${pt}$ (exact), where it equals ${_vec(b.value_at_witness)}$.")
        if d.diagnosis is not None and hasattr(d.diagnosis, "latex"):
            out.append(d.diagnosis.latex())
        return "\n".join(out) + "\n"
    how = sorted({b.decided_by for b in d.brackets.pairs}) or ["d = 1"]
    out.append(r"\paragraph{Commuting.} All Lie brackets $[\nabla G_i, \nabla G_j] = \nabla^2 G_j \nabla G_i - "
               r"\nabla^2 G_i \nabla G_j$ vanish (" + _escape(", ".join(how)) + r"), and $J$ has rank "
               f"{d.jacobian.rank_at_x0} at $x_0$.")
    out.append(r"\paragraph{Flows} of $+\nabla G_i$ (" + _escape("; ".join(sorted({f.method for f in d.flows.flows}))) + "):")
    out += _align([(rf"\varphi^{{t}}_{{{f.index + 1}}}(x)", _vec(f.phi)) for f in d.flows.flows])
    out.append(r"\paragraph{Dual coordinates.} $\psi(x_0;\mu) = \varphi^{\mu_1}_1\circ\dots\circ\varphi^{\mu_d}_d(x_0)$ "
               r"and $\nabla Q(\mu) = G(\psi(x_0;\mu))$, $Q(0) = 0$:")
    out += _align([(r"\psi(x_0;\mu)", _vec(d.psi.psi)), (r"\nabla Q(\mu)", _vec(d.grad_Q)), ("Q(\\mu)", latex(d.Q))])
    domain = d.domain()
    U = [rf"{latex(part.coordinate)} \in {_interval(part.lo, part.hi)}" for part in domain["U"]]
    out.append(r"Dual domain: $U = \{" + r",\ ".join(U) + r"\}$.")
    out.append(r"\paragraph{Mirror potential} $R = Q^*$ (Legendre transform), normalised by $R(w_0) = 0$, "
               r"$\nabla R(w_0) = 0$:")
    if d.closed_form:
        out += _align([("R(w)", latex(d.R)), (r"\nabla R(w)", _vec(d.grad_R)),
                       (r"\nabla^2 R(w)", latex(d.hess_R) if p.d > 1 else latex(d.hess_R[0, 0]))])
    else:
        out += _align([("R(w)", r"\langle \mu(w), w\rangle - Q(\mu(w)),\quad \text{where } \nabla Q(\mu(w)) = w,\ \mu(w) \in U"),
                       (r"\nabla R(w)", r"\mu(w),\qquad \nabla^2 R(w) = \nabla^2 Q(\mu(w))^{-1}")])
        out.append("No closed-form inverse of $\\nabla Q$ was usable (" + _escape("; ".join(
            a for b in d.legendre.blocks if b.pieces for pc in b.pieces for a in pc.attempts)[:400]) + "); "
            "$R$ is given parametrically and evaluated numerically.")
    dom = [rf"{latex(part.coordinate)} \in {_interval(part.lo, part.hi)}" for part in domain["dom_R"] if part.lo is not None]
    if dom:
        out.append(r"Domain: $\operatorname{dom} R = \{w : " + r",\ ".join(dom) + r"\}$.")
    if d.verification is not None:
        v = d.verification
        out.append(r"\paragraph{Verification} in mpmath at " + f"{v.dps} digits, seed {v.seed}:")
        out.append(r"\begin{center}\begin{tabular}{llrr}")
        out.append(r"check & statement & max.\ error & points \\ \hline")
        for c in v.checks:
            st = c.statement.replace("∇", r"\nabla ").replace("²", "^2").replace("ψ", r"\psi").replace("µ", r"\mu")
            st = st.replace("φ", r"\varphi").replace("ᵀ", "^T").replace("⁻¹", "^{-1}").replace("⟨", r"\langle ")
            st = st.replace("⟩", r"\rangle ").replace("≻", r"\succ").replace("₀", "_0")
            out.append(rf"\texttt{{{_escape(c.name)}}} & ${st}$ & {c.max_error:.1e} & {c.points} \\")
        out.append(r"\end{tabular}\end{center}")
    return "\n".join(out) + "\n"


def latex_document(d: Derivation) -> str:
    """A complete document that compiles with pdflatex (article, amsmath, amssymb)."""
    p = d.parametrization
    title = _escape(p.title or p.name)
    return ("\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{amsmath,amssymb}\n"
            "\\usepackage[margin=2.5cm]{geometry}\n\\allowdisplaybreaks\n"
            f"\\title{{{title}}}\n\\author{{derived by mirrorsym {__version__}}}\n\\date{{}}\n"
            "\\begin{document}\n\\maketitle\n" + latex_fragment(d) + "\\end{document}\n")
