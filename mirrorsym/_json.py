"""JSON export of a derivation: every formula as a sympy-parsable string, exact numbers as strings.

The document is deterministic (sorted keys, no timings unless asked for): two runs on the same
recipe give byte-identical files. Keys are described in docs/schema.json.
"""

from __future__ import annotations

import json

import sympy as sp

from ._derivation import Derivation
from ._version import __version__

__all__ = ["SCHEMA_VERSION", "dumps", "to_json"]

SCHEMA_VERSION = 1


def _s(e) -> str | None:
    return None if e is None else sp.sstr(e)


def _interval(lo, hi) -> list[str]:
    return [_s(lo), _s(hi)]


def _domain(d: Derivation) -> dict:
    return {k: [{"coordinate": _s(part.coordinate), "interval": None if part.lo is None else _interval(part.lo, part.hi),
                 **({"description": part.description} if part.description else {})} for part in parts]
            for k, parts in d.domain().items()}


def _without_seconds(obj):
    """The same JSON value without its timings (they differ from run to run; outputs must not)."""
    if isinstance(obj, dict):
        return {k: _without_seconds(v) for k, v in obj.items() if k != "seconds"}
    if isinstance(obj, list):
        return [_without_seconds(v) for v in obj]
    return obj


def _template_form(doc: dict, d: Derivation, dim: int | None) -> None:
    """For a coordinate template: the coordinate formulas stay under ``coordinate``; the top-level
    formulas become their elementwise (x[i]) and summed (Σ_{i=1}^{n}) forms."""
    p = d.parametrization
    doc["coordinate"] = {k: doc[k] for k in ("variables", "parametrization", "init", "w", "mu", "psi", "grad_Q", "Q",
                                              "R", "grad_R", "hess_R")}
    doc["dimension"] = p.dimension if dim is None else dim
    doc["d"] = doc["dimension"]
    doc["index"] = "i"
    doc["variables"] = [f"{x.name}[i]" for x in p.variables]
    doc["w"], doc["mu"] = ["w[i]"], ["mu[i]"]
    doc["parametrization"] = [_s(d.elementwise(g)) for g in p.G]
    doc["init"] = {f"{x.name}[i]": _s(d.elementwise(v)) for x, v in zip(p.variables, p.x0)}
    doc["psi"] = [_s(d.elementwise(c)) for c in d.psi.psi]
    doc["grad_Q"] = [_s(d.elementwise(g)) for g in d.grad_Q]
    doc["Q"] = _s(d.summed(d.Q, dim))
    doc["R"] = None if d.R is None else _s(d.summed(d.R, dim))
    doc["grad_R"] = None if d.grad_R is None else [_s(d.elementwise(g)) for g in d.grad_R]
    doc["hess_R"] = None if d.hess_R is None else [_s(d.elementwise(d.hess_R[0, 0]))]
    doc["elementwise"] = "grad_Q, grad_R, psi are per coordinate i = 1..d; hess_R is diagonal with these entries"


def to_json(d: Derivation, timings: bool = False, dim: int | None = None) -> dict:
    p = d.parametrization
    doc = {
        "schema_version": SCHEMA_VERSION,
        "mirrorsym_version": __version__,
        "name": p.name,
        "title": p.title,
        "status": d.status.value,
        "commuting": d.commuting,
        "variables": [x.name for x in p.variables],
        "parametrization": [_s(g) for g in p.G],
        "init": {x.name: _s(v) for x, v in zip(p.variables, p.x0)},
        "parameters": {q.name: (_s(p.defaults[q]) if q in p.defaults else None) for q in p.parameters},
        "assumptions": {s.name: sorted(k for k in ("positive", "negative", "nonnegative", "nonpositive", "nonzero")
                                       if getattr(s, f"is_{k}")) for s in p.variables + p.parameters},
        "w": [s.name for s in p.w],
        "mu": [s.name for s in p.mu],
        "rank_at_x0": d.jacobian.rank_at_x0,
        "brackets": [{"i": b.i + 1, "j": b.j + 1, "bracket": [_s(e) for e in b.vector], "zero": b.is_zero,
                      "decided_by": b.decided_by,
                      "witness": None if b.witness is None else {k: _s(v) for k, v in b.witness.items()},
                      "value_at_witness": None if b.value_at_witness is None else [_s(v) for v in b.value_at_witness]}
                     for b in d.brackets.pairs],
    }
    if not d.commuting:
        doc.update({"closed_form": False, "R": None,
                    "diagnosis": None if d.diagnosis is None else
                    d.diagnosis.to_json() if timings else _without_seconds(d.diagnosis.to_json())})
        return doc
    leg = d.legendre
    doc.update({
        "flows": [{"component": f.index + 1, "phi": [_s(c) for c in f.phi], "time": "t", "method": f.method,
                   "residual": f.residual} for f in d.flows.flows],
        "psi": [_s(c) for c in d.psi.psi],
        "grad_Q": [_s(g) for g in d.grad_Q],
        "Q": _s(d.Q),
        "closed_form": d.closed_form,
        "R": _s(d.R),
        "grad_R": None if d.grad_R is None else [_s(g) for g in d.grad_R],
        "hess_R": None if d.hess_R is None else [[_s(e) for e in row] for row in d.hess_R.tolist()],
        "domain": _domain(d),
        "pieces": [],
    })
    for b in leg.blocks:
        entry = {"w_indices": [i + 1 for i in b.block.g_indices], "method": b.potential.method}
        if b.pieces is None:
            entry.update({"kind": "joint", "closed_form": False, "Q": _s(b.potential.Q),
                          "grad_Q": [_s(g) for g in b.potential.grad]})
        else:
            entry.update({"kind": "separable", "closed_form": b.closed, "L": [[_s(x) for x in row] for row in b.L.tolist()],
                          "s": [_s(e) for e in b.s_of_w],
                          "parts": [{"nu": pc.nu.name, "s": pc.s.name, "q": _s(pc.q), "dq": _s(pc.dq),
                                     "U": _interval(*pc.U), "dom": _interval(*pc.dom), "r": _s(pc.r), "dr": _s(pc.dr),
                                     "ddr": _s(pc.ddr), "method": pc.method, "assumptions": list(pc.assumptions),
                                     "attempts": list(pc.attempts), **_orbit(pc, b, p)} for pc in b.pieces]})
        groups = d.flows.orbit_groups[d.legendre.blocks.index(b)] if d.flows.orbit_groups else None
        if groups:  # a sum over the orbits of variable groups: each group's orbit, as for an orbit piece
            sig = sp.Symbol("sigma", real=True)
            entry["orbits"] = [{"variables": [v.name for v in orb.variables], "parameter": orb.variables[orb.m].name,
                                "x_of_sigma": [_s(e) for e in orb.curve(sig, [p.x0[p.variables.index(v)] for v in orb.variables])],
                                "T": _s(orb.time_integral(sig, [p.x0[p.variables.index(v)] for v in orb.variables])),
                                "crosses_zero": orb.crossing} for orb in groups]
        doc["pieces"].append(entry)
    if not d.closed_form:
        mu = sp.Matrix(p.mu)
        doc["implicit"] = {
            "w_of_mu": [_s(g) for g in d.grad_Q],
            "R_of_mu": _s((mu.T * sp.Matrix(d.grad_Q))[0, 0] - d.Q),
            "statement": "R is the Legendre transform of Q: R(w) = <mu, w> - Q(mu) where grad Q(mu) = w, mu in U",
        }
    if p.dimension is not None:
        _template_form(doc, d, dim)
    if d.verification is not None:
        v = d.verification
        doc["verification"] = {"passed": v.passed, "dps": v.dps, "seed": v.seed,
                               "checks": [{"name": c.name, "statement": c.statement, "max_error": c.max_error,
                                           "tolerance": c.tolerance, "precision": v.dps, "points": c.points,
                                           "passed": c.passed, **({"detail": c.detail} if c.detail else {})}
                                          for c in v.checks]}
        if timings:
            doc["verification"]["seconds"] = v.seconds
    if timings:
        doc["seconds"] = {"jacobian": d.jacobian.seconds, "brackets": d.brackets.seconds, "flows": d.flows.seconds,
                          "psi": d.psi.seconds, "potential_Q": d.potential.seconds, "legendre": leg.seconds,
                          "total": d.seconds}
    return doc


def dumps(d: Derivation, timings: bool = False, dim: int | None = None) -> str:
    return json.dumps(to_json(d, timings, dim), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _orbit(pc, b, p) -> dict:
    """The orbit representation of a monomial-orbit piece (see mirrorsym._orbit), else nothing."""
    orb = pc.orbit
    if orb is None:
        return {}
    x0 = [p.x0[k] for k in b.block.x_indices]
    sig = sp.Symbol("sigma", real=True)
    return {"orbit": {
        "parameter": orb.variables[orb.m].name,
        "x_of_sigma": [_s(e) for e in orb.curve(sig, x0)],
        "T": _s(orb.time_integral(sig, x0)),
        "crosses_zero": orb.crossing,
        "statement": "sigma(mu) = T^-1(mu), sigma_w(w) solves G(x(sigma)) = w; "
                     "grad R(w) = T(sigma_w(w)), R(w) = w T(sigma_w(w)) - Q(sigma_w(w))",
    }}
