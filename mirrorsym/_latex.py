"""LaTeX export: the derivation as equations to paste (a fragment) or as a complete document.

Symbols keep the recipe's names: ``alpha`` prints as α, ``a11`` as a₁₁, a multi-letter name such as
``up`` as \\mathit{up} (never as the product u·p); inverse hyperbolic functions print in the ISO
style (\\operatorname{arsinh}). Equations are ``align*`` rows ``lhs &= rhs``; a right-hand side
wider than the line is broken at its top-level + and −, and inside c·(…) or a fraction with a long
numerator, which are printed as c\\Bigl(… \\\\ … \\Bigr) so that the pieces can sit on separate
lines. Vectors are printed one component per row. Widths are estimated from the LaTeX source (a
character of math is about half an em).

The fragment needs ``amsmath`` and ``amssymb`` (and ``amsthm`` with a ``proposition`` theorem for a
non-commuting diagnosis); :func:`latex_document` is a complete article that compiles with pdflatex.

>>> import mirrorsym
>>> d = mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe("hyperbolic-entropy")))
>>> latex_fragment(d, inline=True)
'R(w) = \\\\frac{\\\\alpha^{2}}{2} + \\\\frac{w_{1} \\\\operatorname{arsinh}{\\\\left(\\\\frac{w_{1}}{2 \\\\alpha^{2}} \\\\right)}}{4} - \\\\frac{\\\\sqrt{4 \\\\alpha^{4} + w_{1}^{2}}}{4}'
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

import sympy as sp
from sympy.printing.latex import LatexPrinter

from ._derivation import Derivation
from ._version import __version__

__all__ = ["html_summary", "latex", "latex_document", "latex_fragment"]

_ISO = {r"\operatorname{asinh}": r"\operatorname{arsinh}", r"\operatorname{acosh}": r"\operatorname{arcosh}",
        r"\operatorname{atanh}": r"\operatorname{artanh}"}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "mu", "nu", "xi",
          "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
          "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega", "varepsilon", "vartheta", "varphi", "varrho",
          "varsigma", "varpi"}
#: unicode in the derivation's messages and check statements, as LaTeX math
_UNICODE = {"∇": r"\nabla ", "²": "^2", "³": "^3", "⁴": "^4", "ψ": r"\psi ", "µ": r"\mu ", "μ": r"\mu ", "φ": r"\varphi ",
            "ν": r"\nu ", "λ": r"\lambda ", "ε": r"\varepsilon ", "α": r"\alpha ", "β": r"\beta ", "γ": r"\gamma ",
            "δ": r"\delta ", "σ": r"\sigma ", "τ": r"\tau ", "Σ": r"\Sigma ", "ᵀ": r"^{\top}", "⁻¹": "^{-1}",
            "⟨": r"\langle ", "⟩": r"\rangle ", "≻": r"\succ ", "≺": r"\prec ", "₀": "_0", "₁": "_1", "₂": "_2",
            "∘": r"\circ ", "·": r"\cdot ", "≤": r"\le ", "≥": r"\ge ", "≠": r"\ne ", "≈": r"\approx ", "−": "-",
            "→": r"\to ", "∈": r"\in ", "×": r"\times ", "‖": r"\|", "∞": r"\infty ", "∂": r"\partial ",
            "…": r"\dots ", "√": r"\surd ", "∫": r"\int ", "⊆": r"\subseteq ", "∅": r"\emptyset ", "±": r"\pm "}
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
#: width of the right-hand side of one align row, in characters of math (≈ 0.5 em each)
WIDTH = 62


# --- expressions ---------------------------------------------------------------------------------

def _symbol_name(s: sp.Symbol) -> str:
    """LaTeX of a recipe symbol: sympy's for Greek letters and name+digits (a11 → a_{11}),
    \\mathit for any other multi-letter name."""
    m = re.fullmatch(r"([A-Za-z]+)(\d*)", s.name)
    if not m or len(m.group(1)) == 1 or m.group(1) in _GREEK:
        return sp.latex(s)
    base = rf"\mathit{{{m.group(1)}}}"
    return f"{base}_{{{m.group(2)}}}" if m.group(2) else base


def latex(e) -> str:
    """LaTeX of a sympy expression, symbols named as in the recipe and ISO function names.

    >>> latex(sp.asinh(sp.Symbol("up")) + sp.Symbol("a11"))
    'a_{11} + \\\\operatorname{arsinh}{\\\\left(\\\\mathit{up} \\\\right)}'
    """
    e = sp.sympify(e)
    names = {s: _symbol_name(s) for s in e.free_symbols if isinstance(s, sp.Symbol)}
    out = LatexPrinter({"symbol_names": names}).doprint(e)
    for a, b in _ISO.items():
        out = out.replace(a, b)
    return out


def _width(tex: str) -> float:
    """Estimated printed width of LaTeX math, in characters: fractions count their wider part,
    scripts 0.7 of their size, commands one character, operators and relations two."""
    def group(s: str, i: int) -> tuple[str, int]:
        depth, j = 0, i
        while j < len(s):
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1:j], j + 1
            j += 1
        return s[i + 1:], len(s)

    w, i = 0.0, 0
    while i < len(tex):
        c = tex[i]
        if tex.startswith(r"\frac", i):
            a, i = group(tex, i + 5)
            b, i = group(tex, i)
            w += max(_width(a), _width(b)) + 0.5
        elif tex.startswith((r"\operatorname", r"\mathit", r"\text", r"\mathrm"), i):
            k = tex.index("{", i)
            a, i = group(tex, k)
            w += len(a)
        elif tex.startswith((r"\left", r"\right", r"\Bigl", r"\Bigr", r"\bigl", r"\bigr"), i):
            i += 5 if tex.startswith((r"\left", r"\Bigl", r"\Bigr", r"\bigl", r"\bigr"), i) else 6
            w += 0.5 if i < len(tex) and tex[i] in "()[]|." else 0
            i += 1 if i < len(tex) and tex[i] in "()[]|." else 0
        elif c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", tex[i:])
            i += len(m.group(0))
            w += {"quad": 2, "qquad": 4, ",": 0.3, " ": 0.3, "cdot": 1.5, "in": 2}.get(m.group(1), 1)
        elif c in "^_":
            if i + 1 < len(tex) and tex[i + 1] == "{":
                a, i = group(tex, i + 1)
            else:
                a, i = tex[i + 1:i + 2], i + 2
            w += 0.7 * _width(a)
        elif c in "{} ":
            i += 1
        else:
            w += 2 if c in "+-=<>" else 0.5 if c in ",;.()" else 1
            i += 1
    return w


def _ordered(e: sp.Add) -> list:
    return LatexPrinter()._as_ordered_terms(e)


def _chunks(e: sp.Expr) -> list[str]:
    """LaTeX of e as a sequence of pieces (each after the first starting with + or −) between which
    a line may break; a single unbreakable piece when e is not a sum, c·(sum) or sum/den."""
    e = sp.sympify(e)
    if e.is_Add:
        out = []
        for k, t in enumerate(_ordered(e)):
            inner = _chunks(t) if _width(latex(t)) > WIDTH else [latex(t)]
            if k == 0:
                out += inner
            elif t.could_extract_minus_sign():
                inner = _chunks(-t) if _width(latex(-t)) > WIDTH else [latex(-t)]
                out += ["- " + inner[0], *inner[1:]]
            else:
                out += ["+ " + inner[0], *inner[1:]]
        return out
    if e.is_Mul:
        sums = [f for f in e.args if f.is_Add]
        dens = [f for f in e.args if f.is_Pow and f.exp.is_negative]
        num = sp.Mul(*[f for f in e.args if f not in dens])
        if len(sums) == 1 or (dens and num.is_Add):
            inner = sums[0] if len(sums) == 1 else num
            coeff = e / inner
            neg = coeff.could_extract_minus_sign()
            head = ("-" if neg else "") + (latex(-coeff if neg else coeff) if (-coeff if neg else coeff) != 1 else "")
            parts = _chunks(inner)
            if len(parts) > 1:
                return [head + r"\Bigl(" + parts[0], *parts[1:-1], parts[-1] + r"\Bigr)"]
    return [latex(e)]


def _rows(lhs: str, e, width: float = WIDTH) -> list[str]:
    """align rows for ``lhs = e``, the right-hand side broken into lines of at most ``width``."""
    rhs = latex(e) if not isinstance(e, str) else e
    if isinstance(e, str) or _width(rhs) <= width:
        return [f"  {lhs} &= {rhs}"]
    lines, line = [], ""
    for piece in _chunks(e):
        if line and _width(line) + _width(piece) > width:
            lines.append(line)
            line = ""
        line += (" " if line else "") + piece
    lines.append(line)
    # \Bigl( opened on one line and closed on a later one is legal; \left/\right pairs never split
    return [f"  {lhs} &= {lines[0]}"] + [rf"  &\quad {piece}" for piece in lines[1:]]


def _vector_rows(name: str, items: Sequence, index: str = "") -> list[str]:
    """Rows for a vector: ``name = (a)`` when it fits, else one row ``name_k = …`` per component."""
    items = list(items)
    if len(items) == 1:
        return _rows(name, items[0])
    joined = r"\left(" + ", ".join(latex(x) for x in items) + r"\right)"
    if _width(joined) <= WIDTH:
        return _rows(name, joined)
    out = []
    for k, x in enumerate(items):
        out += _rows(f"{name}_{{{index}{k + 1}}}" if not name.endswith(")") else f"\\bigl[{name}\\bigr]_{{{k + 1}}}", x)
    return out


def _align(rows: Iterable[str]) -> list[str]:
    rows = list(rows)
    return [r"\begin{align*}", " \\\\\n".join(rows), r"\end{align*}"]


def _vec(items) -> str:
    items = list(items)
    return latex(items[0]) if len(items) == 1 else r"\left(" + ", ".join(latex(x) for x in items) + r"\right)"


def _interval(lo, hi) -> str:
    return rf"\left({latex(lo)}, {latex(hi)}\right)"  # open: U and dom R are open sets


# --- text ----------------------------------------------------------------------------------------

def _text(text: str) -> str:
    """Plain text (a message, a method's name) for LaTeX text mode; unicode math becomes $…$."""
    out = []
    for ch in text:
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
        elif ch in _UNICODE:
            out.append(f"${_UNICODE[ch].strip()}$")
        elif ord(ch) < 128:
            out.append(ch)
        else:
            out.append("?")  # a character pdflatex cannot set; the JSON keeps the original
    return "".join(out).replace("$$", "")


def _statement(text: str) -> str:
    """A check's statement (math with a few words) as LaTeX math."""
    text = re.sub(r"\b([xw])0\b", r"\1_0", text)
    out = []
    for part in re.split(r"(\b[A-Za-z]{2,}\b)", text):
        if re.fullmatch(r"[A-Za-z]{2,}", part):
            out.append(rf"\text{{ {part} }}")
            continue
        for ch in part:
            out.append(_UNICODE.get(ch, _SPECIAL.get(ch, ch) if ch in "&%$#" else ch if ord(ch) < 128 else "?"))
    return "".join(out)


# --- the document --------------------------------------------------------------------------------

def _parametrization(d: Derivation) -> list[str]:
    p = d.parametrization
    out = [r"\paragraph{Parametrization.}"]
    rows = []
    for wi, g in zip(p.w, p.G):
        rows += _rows(latex(wi), g)
    rows += _rows("x", _vec(p.variables))
    rows += _rows("x_0", _vec(p.x0))
    out += _align(rows)
    assumed = []
    for s in p.variables + p.parameters:
        for k, rel in (("positive", "> 0"), ("negative", "< 0"), ("nonnegative", r"\ge 0"), ("nonpositive", r"\le 0"),
                       ("nonzero", r"\ne 0")):
            if getattr(s, f"is_{k}"):
                assumed.append(f"{latex(s)} {rel}")
                break
    if assumed:
        out.append("Assumptions: $" + ",\\ ".join(assumed) + "$.")
    if p.defaults:
        out.append("Parameters stay symbolic; the numerical checks use $"
                   + ",\\ ".join(f"{latex(k)} = {latex(v)}" for k, v in p.defaults.items()) + "$.")
    return out + [""]


def _body(d: Derivation) -> list[str]:
    p = d.parametrization
    out = _parametrization(d)
    if not d.commuting:
        out.append(r"\paragraph{Not commuting.}")
        for b in d.brackets.nonzero:
            out += _align(_vector_rows(rf"[\nabla G_{{{b.i + 1}}}, \nabla G_{{{b.j + 1}}}]", b.vector))
            if b.witness:
                pt = ",\\ ".join(f"{latex(sp.Symbol(k))} = {latex(v)}" for k, v in b.witness.items())
                out.append(f"This bracket is nonzero at ${pt}$ (exact), where it equals ${_vec(b.value_at_witness)}$.")
        if d.diagnosis is not None:
            out += ["", d.diagnosis.latex()]
        return out
    if p.dimension is not None:
        n = sp.Symbol(p.dimension)
        out.append(r"\paragraph{For every dimension.} The model is $w_i = G(x_i)$ for $i = 1, \dots, " + latex(n) +
                   r"$, independent identical blocks, so every stage factorises (below: one coordinate, "
                   r"$w = w_i$) and")
        if d.R is not None:
            out += _align(_rows("R(w)", d.summed(d.R)))
        else:
            out.append(r"$R(w) = \sum_{i=1}^{" + latex(n) + r"} r(w_i)$ with $r$ the implicit potential of one coordinate.")
    how = sorted({b.decided_by for b in d.brackets.pairs}) or ["d = 1: nothing to check"]
    out.append(r"\paragraph{Commuting.} All Lie brackets $[\nabla G_i, \nabla G_j] = \nabla^2 G_j \nabla G_i - "
               r"\nabla^2 G_i \nabla G_j$ vanish (" + _text(", ".join(how)) + r"), and $J$ has rank "
               f"{d.jacobian.rank_at_x0} at $x_0$.")
    out.append(r"\paragraph{Flows} of $+\nabla G_i$ (" + _text("; ".join(sorted({f.method for f in d.flows.flows}))) + "):")
    rows = []
    for f in d.flows.flows:
        rows += _vector_rows(rf"\varphi^{{t}}_{{{f.index + 1}}}(x)", f.phi)
    out += _align(rows)
    out.append(r"\paragraph{Dual coordinates.} $\psi(x_0;\mu) = \varphi^{\mu_1}_1\circ\dots\circ\varphi^{\mu_d}_d(x_0)$ "
               r"and $\nabla Q(\mu) = G(\psi(x_0;\mu))$, $Q(0) = 0$:")
    out += _align(_vector_rows(r"\psi(x_0;\mu)", d.psi.psi) + _vector_rows(r"\nabla Q(\mu)", d.grad_Q) + _rows("Q(\\mu)", d.Q))
    domain = d.domain()
    U = [rf"{latex(part.coordinate)} \in {_interval(part.lo, part.hi)}" for part in domain["U"]]
    out.append(r"Dual domain: $U = \{\mu : " + r",\ ".join(U) + r"\}$.")
    out.append(r"\paragraph{Mirror potential} $R = Q^*$ (Legendre transform), normalised by $R(w_0) = 0$, "
               r"$\nabla R(w_0) = 0$:")
    if d.closed_form:
        rows = _rows("R(w)", d.R) + _vector_rows(r"\nabla R(w)", d.grad_R)
        H = d.hess_R
        if p.d == 1:
            rows += _rows(r"\nabla^2 R(w)", H[0, 0])
        elif _width(latex(H)) <= WIDTH:
            rows += _rows(r"\nabla^2 R(w)", latex(H))
        else:
            rows += [row for i in range(p.d) for j in range(i, p.d) for row in _rows(rf"\partial_{{{i + 1}}}\partial_{{{j + 1}}} R(w)", H[i, j])]
        out += _align(rows)
        methods = sorted({pc.method for b in d.legendre.blocks for pc in b.pieces})
        out.append("Inverse of $\\nabla Q$ by " + _text(", ".join(methods)) + r"; $\nabla^2 R = (\nabla^2 Q)^{-1}\circ\nabla R$.")
    else:
        mu = sp.Matrix(p.mu)
        R_mu = (mu.T * sp.Matrix(d.grad_Q))[0, 0] - d.Q
        out.append(r"No closed-form inverse of $\nabla Q$ was usable, so $R$ is given parametrically over $\mu \in U$ "
                   r"(and evaluated numerically by solving $\nabla Q(\mu) = w$):")
        out += _align(_vector_rows(r"w(\mu)", d.grad_Q) + _rows(r"R\bigl(w(\mu)\bigr)", sp.expand(R_mu))
                      + _rows(r"\nabla R\bigl(w(\mu)\bigr)", _vec(p.mu))
                      + _rows(r"\nabla^2 R\bigl(w(\mu)\bigr)", r"\nabla^2 Q(\mu)^{-1}"))
        out += _orbit_paragraphs(d)
        why = [a for b in d.legendre.blocks if b.pieces for pc in b.pieces for a in pc.attempts]
        if why:
            out.append("Tried: " + _text("; ".join(why)) + ".")
    dom = [rf"{latex(part.coordinate)} \in {_interval(part.lo, part.hi)}" for part in domain["dom_R"] if part.lo is not None]
    cones = [part for part in domain["dom_R"] if part.lo is None]
    if dom:
        out.append(r"Domain: $\operatorname{dom} R = \{w : " + r",\ ".join(dom) + r"\}$" + ("." if not cones else ","))
    for part in cones:
        out.append(f"$({', '.join(latex(x) for x in part.coordinate)}) \\in$ " + _text(part.description) + ".")
    if d.verification is not None:
        v = d.verification
        out.append(r"\paragraph{Verification} in mpmath at " + f"{v.dps} digits, seed {v.seed}, at sample points "
                   r"$x = \psi(x_0;\mu)$, $\mu \in U$:")
        out += [r"\begin{center}", r"\begin{tabular}{llrrl}", r"check & statement & max.\ error & points & \\ \hline"]
        for c in v.checks:
            verdict = "passed" if c.passed else r"\textbf{FAILED}"
            out.append(rf"\texttt{{{_text(c.name)}}} & ${_statement(c.statement)}$ & {_num(c.max_error)} & {c.points} & "
                       rf"{verdict} \\")
        out += [r"\end{tabular}", r"\end{center}"]
    return out


def _num(x: float) -> str:
    if x == 0:
        return "$0$"
    m, e = f"{x:.1e}".split("e")
    return f"${m} \\cdot 10^{{{int(e)}}}$"


def latex_fragment(d: Derivation, inline: bool = False) -> str:
    """The derivation as LaTeX to paste (module docstring); ``inline``: R alone, for notebooks."""
    p = d.parametrization
    if inline:
        if d.R is not None:
            return "R(w) = " + latex(d.R)
        if d.commuting and d.legendre is not None:
            return r"R(w) = \langle \mu, w\rangle - Q(\mu),\quad \nabla Q(\mu) = w"
        return r"\text{" + _text(d.status.value) + "}"
    head = [f"% mirrorsym {__version__}: {p.name} ({d.status.value})",
            "% needs \\usepackage{amsmath,amssymb}" + (", amsthm and \\newtheorem{proposition}{Proposition}"
                                                       if not d.commuting else "")]
    return "\n".join(head + _body(d)) + "\n"


def latex_document(d: Derivation) -> str:
    """A complete article (amsmath, amssymb, amsthm) that compiles with pdflatex."""
    p = d.parametrization
    lines = [r"\documentclass[10pt,a4paper]{article}", r"\usepackage[utf8]{inputenc}", r"\usepackage[T1]{fontenc}",
             r"\usepackage{amsmath,amssymb,amsthm}", r"\usepackage[margin=2.5cm]{geometry}",
             r"\newtheorem{proposition}{Proposition}", r"\allowdisplaybreaks", r"\setlength{\parindent}{0pt}",
             rf"\title{{{_text(p.title or p.name)}}}",
             rf"\author{{Derived by mirrorsym {__version__} from the recipe \texttt{{{_text(p.name)}}}}}", r"\date{}",
             r"\begin{document}", r"\maketitle"]
    if getattr(p, "description", ""):
        lines.append(_text(p.description))
    lines.append(f"Status: {_text(d.status.value)}.")
    return "\n".join(lines + _body(d) + [r"\end{document}"]) + "\n"


def html_summary(d: Derivation) -> str:
    """An HTML summary for notebooks (``_repr_html_``): status, G, R, dom R and the checks; the
    formulas are MathJax ``$…$`` spans."""
    p = d.parametrization
    rows = [("G(x)", "$" + _vec(p.G) + "$"), ("x, x<sub>0</sub>", f"${_vec(p.variables)}$, ${_vec(p.x0)}$")]
    if d.commuting and d.legendre is not None:
        rows.append(("R(w)", "$" + latex_fragment(d, inline=True).removeprefix("R(w) = ") + "$"))
        dom = d.domain()["dom_R"]
        rows.append(("dom R", ", ".join(f"${latex(part.coordinate)} \\in {_interval(part.lo, part.hi)}$"
                                        if part.lo is not None else html.escape(part.description) for part in dom)))
    if d.verification is not None:
        v = d.verification
        rows.append(("checks", f"{sum(c.passed for c in v.checks)}/{len(v.checks)} passed at {v.dps} digits (seed {v.seed})"))
    body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{html.escape(val, quote=False) if not val.startswith('$') else val}</td></tr>"
                   for k, val in rows)
    return (f"<div><b>{html.escape(p.title or p.name)}</b>: {html.escape(d.status.value)}"
            f"<table>{body}</table></div>")


def _orbit_paragraphs(d) -> list[str]:
    """The orbit form of each monomial-orbit piece: x(σ), T(σ) as its integral, and R through σ_w."""
    p = d.parametrization
    out = []
    for b in d.legendre.blocks:
        for pc in b.pieces or ():
            orb = pc.orbit
            if orb is None:
                continue
            x0 = [p.x0[k] for k in b.block.x_indices]
            sig = sp.Symbol("sigma", real=True)
            k = orb.index
            name = latex(orb.variables[orb.m])
            out.append(rf"\paragraph{{Orbit of $G_{{{pc.s.name[1:]}}}$.}} Along the flow $x_k^2/n_k - x_j^2/n_j$ is conserved; "
                       rf"with the curve parameter $\sigma = {name}$ and $T_{{{k}}}(\sigma)$ the time the flow takes to reach it "
                       rf"(a quadrature), $\sigma_{{{k}}} = T_{{{k}}}^{{-1}}$ and $\sigma^{{w}}_{{{k}}}(w)$ the root of "
                       rf"$G(x(\sigma)) = w$:")
            rows = _vector_rows(r"x(\sigma)", orb.curve(sig, x0)) + _rows(rf"T_{{{k}}}(\sigma)", orb.time_integral(sig, x0))
            carlson = orb.carlson(sig, x0)
            if carlson is not None:
                rows += _rows("", carlson)
            w = pc.s
            sw = orb.output(w, x0)
            at = rf"\Big|_{{\sigma = {latex(sw)}}}"
            rows += _rows(rf"\nabla R({latex(w)})", orb.time(sw, x0))
            rows += _rows(rf"\nabla^2 R({latex(w)})", r"\frac{1}{|\nabla G(x(\sigma))|^2}" + at)
            rows += _rows(r"|\nabla G(x(\sigma))|^2", sp.expand(orb.speed2(sig, x0)))
            out += _align(rows)
            if carlson is not None:
                out.append(r"(the second form, with Carlson's $R_F(a, b, c) = \tfrac12\int_0^\infty dt/\sqrt{(t+a)(t+b)(t+c)}$, "
                           + (rf"holds for $\sigma$ of the sign of ${latex(x0[orb.m])}$.)" if x0[orb.m] != 0 else
                              r"holds for $\sigma \ge 0$.)"))
    for groups in d.flows.orbit_groups or ():
        for orb in groups or ():
            x0 = [p.x0[p.variables.index(v)] for v in orb.variables]
            sig = sp.Symbol("sigma", real=True)
            k = orb.index
            names = ", ".join(latex(v) for v in orb.variables)
            out.append(rf"\paragraph{{Orbit of the group $({names})$.}} Its term ${latex(orb.G(orb.variables))}$ moves it "
                       rf"along its own orbit, with curve parameter $\sigma = {latex(orb.variables[orb.m])}$, the time "
                       rf"$T_{{{k}}}(\sigma)$ to reach it (a quadrature) and $\sigma_{{{k}}} = T_{{{k}}}^{{-1}}$:")
            out += _align(_vector_rows(rf"({names})(\sigma)", orb.curve(sig, x0))
                          + _rows(rf"T_{{{k}}}(\sigma)", orb.time_integral(sig, x0)))
    return out
