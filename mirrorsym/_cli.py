"""The command line: ``mirrorsym derive | verify | plot | realize | batch | list``. Thin: it parses
arguments, calls the API, writes outputs atomically and maps outcomes to exit statuses:

0 derived and verified · 2 bad input · 3 not commuting · 4 a check failed · 5 no result within budget
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from ._batch import add_batch_arguments, run_batch_cli
from ._errors import MirrorsymError, RecipeError, Unsupported
from ._io import param_argument, write_atomically
from ._realize import add_realize_arguments, run_realize
from ._version import __version__

__all__ = ["main"]

_CHECK_NAMES = ("hessian", "trajectory", "bias")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _checks(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in _CHECK_NAMES]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"--checks: unknown check(s) {', '.join(bad) or '(none given)'}; "
                                         f"choose from {', '.join(_CHECK_NAMES)}")
    return names


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="mirrorsym", description="Implicit bias of gradient descent under a "
                                 "reparametrization w = G(x): the mirror potential R, derived and verified.")
    ap.add_argument("--version", action="version", version=f"mirrorsym {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("derive", help="derive and verify the mirror potential of a recipe")
    d.add_argument("recipe", help="a recipe TOML file, or the name of a shipped recipe")
    d.add_argument("--json", metavar="PATH", help="write the derivation as JSON")
    d.add_argument("--latex", metavar="PATH", help="write the derivation as a LaTeX fragment")
    d.add_argument("--latex-standalone", metavar="PATH", help="write a complete LaTeX document")
    d.add_argument("--numpy", metavar="PATH", help="write a standalone numpy module (grad_R, R, hess_R, Q, grad_Q)")
    d.add_argument("--jax", metavar="PATH", help="write the same functions as a JAX module (differentiable)")
    d.add_argument("--torch", metavar="PATH", help="write the same functions as a PyTorch module (differentiable)")
    d.add_argument("--param", metavar="NAME=VALUE", action="append", type=param_argument, default=[],
                   help="override a parameter's default value (repeatable)")
    d.add_argument("--budget", metavar="S", type=float, default=60.0, help="overall time budget in seconds (default 60)")
    d.add_argument("--no-verify", action="store_true", help="skip the mpmath verification (exit 0 means derived, unproven)")
    d.add_argument("--verify", choices=("points", "full"), default="points",
                   help="points: the identities at sample points (default); full: also the trajectory (GF = MF) "
                        "and implicit-bias (argmin R on Zw = y) checks")
    d.add_argument("--dps", type=int, default=30, help="digits for the verification (default 30)")
    d.add_argument("--seed", type=int, default=0, help="seed of the verification's sample points (default 0)")
    d.add_argument("--timings", action="store_true", help="include per-stage timings in the JSON (not reproducible)")
    d.add_argument("--dim", metavar="N", type=_positive_int,
                   help="for a recipe with a dimension template: instantiate it with d = N coordinates")
    v = sub.add_parser("verify", help="run the verification checks of a recipe and print their table")
    v.add_argument("recipe", help="a recipe TOML file, or the name of a shipped recipe")
    v.add_argument("--checks", default="hessian,trajectory,bias", type=_checks,
                   help="comma-separated: hessian (the point checks), trajectory, bias (default: all)")
    v.add_argument("--dps", type=int, default=30, help="digits (default 30; 15 is a fast mode)")
    v.add_argument("--seed", type=int, default=0, help="seed of the random points and losses (default 0)")
    v.add_argument("--param", metavar="NAME=VALUE", action="append", type=param_argument, default=[],
                   help="override a parameter's default value (repeatable)")
    v.add_argument("--budget", metavar="S", type=float, default=60.0, help="time budget of the derivation")
    v.add_argument("--json", metavar="PATH", help="write the derivation with these checks as JSON")
    v.add_argument("--plot", metavar="PATH", help="draw w(t) for GF and MF and the regression limit (needs matplotlib)")
    pl = sub.add_parser("plot", help="draw R and ∇R over dom R (and level sets for d = 2); needs matplotlib")
    pl.add_argument("recipe", help="a recipe TOML file, or the name of a shipped recipe")
    pl.add_argument("--out", metavar="PATH", required=True, help="image file to write (png, pdf, svg)")
    pl.add_argument("--param", metavar="NAME=VALUE", action="append", type=param_argument, default=[],
                    help="override a parameter's default value (repeatable)")
    add_realize_arguments(sub.add_parser("realize", help="from a mirror potential R to a parametrization "
                                         "G that realises it (POTENTIAL.toml)"))
    b = sub.add_parser("batch", help="derive many recipes in parallel, one process each, with a summary table")
    add_batch_arguments(b)
    sub.add_parser("list", help="list the shipped recipes")
    return ap


def _summary(d, dim: int | None = None) -> list[str]:
    p = d.parametrization
    lines = [f"{p.name}: {d.status.value}"]
    if p.dimension is not None and d.commuting:
        n = p.dimension if dim is None else dim
        lines.append(f"  for w ∈ R^{n}: w[i] = {d.elementwise(p.G[0])}, i = 1..{n}, independent identical blocks; "
                     f"R(w) = Σ_i r(w[i]) with r the potential of one coordinate:")
    lines.append(f"  G(x)   = ({', '.join(str(g) for g in p.G)})  with x = ({', '.join(x.name for x in p.variables)}), "
                 f"x0 = ({', '.join(str(v) for v in p.x0)})")
    if not d.commuting:
        for b in d.brackets.nonzero:
            lines.append(f"  [∇G_{b.i + 1}, ∇G_{b.j + 1}] = ({', '.join(str(e) for e in b.vector)}) ≠ 0")
            if b.witness:
                pt = ", ".join(f"{k} = {v}" for k, v in b.witness.items())
                lines.append(f"      at {pt}: ({', '.join(str(v) for v in b.value_at_witness)})  [{b.decided_by}]")
        if d.diagnosis is not None:
            lines += ["  " + s for s in d.diagnosis.summary()]
        return lines
    lines.append(f"  Q(µ)   = {d.Q}")
    if d.closed_form:
        lines.append(f"  R(w)   = {d.R}")
        lines.append(f"  ∇R(w)  = ({', '.join(str(g) for g in d.grad_R)})")
    else:
        lines.append("  R(w)   = <µ, w> − Q(µ) with ∇Q(µ) = w  (implicit: no usable closed-form inverse of ∇Q)")
        for b in d.legendre.blocks:
            for pc in b.pieces or ():
                if pc.orbit is not None:
                    lines.append(f"  ∇R({pc.s}) = {pc.dr}  (T: a quadrature along the orbit, σ = "
                                 f"{pc.orbit.variables[pc.orbit.m]})")
    dom = d.domain()
    lines.append("  U      = " + ", ".join(f"{u.coordinate} ∈ ({u.lo}, {u.hi})" for u in dom["U"]))
    lines.append("  dom R  = " + ", ".join(f"{u.coordinate} ∈ ({u.lo}, {u.hi})" if u.lo is not None else
                                           f"{u.coordinate}: {u.description}" for u in dom["dom_R"]))
    if d.verification is not None:
        v = d.verification
        ok = sum(c.passed for c in v.checks)
        lines.append(f"  checks: {ok}/{len(v.checks)} passed at {v.dps} digits (seed {v.seed})")
        lines += ["    " + row for row in v.table() if not row.startswith("ok")]
    return lines


def _load(args):
    """The recipe named on the command line, with its --param overrides."""
    from ._recipe import find_recipe, load_recipe

    p = load_recipe(find_recipe(args.recipe))
    return p.with_values(dict(args.param)) if args.param else p


def _derive(args) -> int:
    from ._derivation import Status, derive

    p = _load(args)
    if args.dim is not None and p.dimension is None:
        raise RecipeError(f"--dim: the recipe {p.name!r} has no dimension template (dimension = \"n\" with u[i] ...)")
    d = derive(p, budget=args.budget, verify_result=not args.no_verify, dps=args.dps, seed=args.seed,
               full=args.verify == "full")
    outputs = {}
    if args.json:
        from ._json import dumps

        outputs[args.json] = dumps(d, timings=args.timings, dim=args.dim)
    if args.latex:
        from ._latex import latex_fragment

        outputs[args.latex] = latex_fragment(d)
    if args.latex_standalone:
        from ._latex import latex_document

        outputs[args.latex_standalone] = latex_document(d)
    if args.numpy and d.commuting:
        from ._numpy_export import numpy_module

        outputs[args.numpy] = numpy_module(d, dim=args.dim)
    if (args.jax or args.torch) and d.commuting:
        from ._array_export import jax_module, torch_module

        for path, make in ((args.jax, jax_module), (args.torch, torch_module)):
            if path:
                try:
                    outputs[path] = make(d)
                except NotImplementedError as exc:
                    raise Unsupported(f"{path}: {exc}") from None
    for path, text in outputs.items():
        write_atomically(path, text)
    print("\n".join(_summary(d, args.dim)))
    if args.numpy and not d.commuting:
        print(f"  (no numpy module written to {args.numpy}: there is no mirror potential)")
    return {Status.VERIFIED: 0, Status.UNVERIFIED: 0, Status.NOT_COMMUTING: 3, Status.CHECK_FAILED: 4}[d.status]


def _verify(args) -> int:
    import dataclasses

    from ._derivation import Status, derive, with_checks
    from ._trajectory import run_checks

    p = _load(args)
    d = derive(p, budget=args.budget, dps=args.dps, seed=args.seed)
    if d.status is Status.NOT_COMMUTING:
        print("\n".join(_summary(d)))
        return 3
    if "hessian" not in args.checks:
        d = dataclasses.replace(d, verification=dataclasses.replace(d.verification, checks=()))
    d = with_checks(d, run_checks(d, [c for c in args.checks if c != "hessian"], dps=args.dps, seed=args.seed))
    v = d.verification
    print(f"{p.name}: {sum(c.passed for c in v.checks)}/{len(v.checks)} checks passed at {v.dps} digits (seed {v.seed})")
    for row in v.table():
        print("  " + row)
    if args.json:
        from ._json import dumps

        write_atomically(args.json, dumps(d))
    if args.plot:
        from ._trajectory import plot

        plot(d, args.plot, dps=min(args.dps, 15), seed=args.seed)
    return 0 if v.passed else 4


def _plot(args) -> int:
    from ._derivation import derive
    from ._plot import plot

    p = _load(args)
    d = derive(p)
    if not d.commuting:
        print("\n".join(_summary(d)))
        return 3
    plot(d, args.out)
    print(f"{p.name}: R and ∇R over dom R drawn to {args.out}")
    return 0


def _list() -> int:
    from ._recipe import load_recipe, shipped_recipes

    for path in shipped_recipes():
        try:
            title = load_recipe(path).title
        except RecipeError as exc:
            title = f"(invalid: {exc})"
        print(f"{path.stem:32s} {title}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "derive":
            return _derive(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "batch":
            return run_batch_cli(args)
        if args.command == "realize":
            return run_realize(args)
        if args.command == "plot":
            return _plot(args)
        return _list()
    except MirrorsymError as exc:
        print(f"mirrorsym: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("mirrorsym: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``mirrorsym list | head``): not an error; silence the final flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
