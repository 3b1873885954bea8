"""The core input type: a parametrization w = G(x) with its initialisation and parameters.

>>> p = Parametrization.create(["u**2 - v**2"], ["u", "v"], {"u": "alpha", "v": "alpha"},
...                            parameters={"alpha": 0.5}, assumptions={"alpha": ["positive"]})
>>> p.G, p.x0, p.d, p.D
((u**2 - v**2,), (alpha, alpha), 1, 2)
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction

import sympy as sp

from ._errors import DegenerateError, RecipeError
from ._parse import CONSTANTS, FUNCTIONS, parse_expression

__all__ = ["ASSUMPTIONS", "Parametrization", "exact_number"]

#: sympy assumption names a recipe may use, for variables and parameters.
ASSUMPTIONS = ("positive", "negative", "nonnegative", "nonpositive", "nonzero", "real")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: names mirrorsym uses for its own symbols (w_i, µ_i, ν_i, s_i, flow time t, numpy's np).
_RESERVED = re.compile(r"^((w|mu|nu|s)[0-9]+|t|np)$")


def exact_number(value, where: str) -> sp.Rational:
    """A recipe number as an exact rational (0.1 means 1/10, as written, not the nearest double)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction, sp.Rational)):
        raise RecipeError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise RecipeError(f"{where}: expected a finite number, got {value!r}")
        return sp.Rational(repr(value))
    return sp.Rational(value)


def _check_name(name, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or "__" in name or keyword.iskeyword(name):
        raise RecipeError(f"{where}: {name!r} is not a valid name (letters, digits and _, starting with a letter)")
    if name in FUNCTIONS or name in CONSTANTS:
        raise RecipeError(f"{where}: the name {name!r} shadows the {'function' if name in FUNCTIONS else 'constant'} "
                          f"of that name; choose another")
    if _RESERVED.match(name):
        raise RecipeError(f"{where}: the name {name!r} is reserved for mirrorsym's own symbols (w_i, mu_i, nu_i, s_i, the flow time t, numpy's np)")
    return name


def _symbol(name: str, assumptions: Sequence[str], where: str) -> sp.Symbol:
    kw = {"real": True}
    for a in assumptions:
        if a not in ASSUMPTIONS:
            raise RecipeError(f"{where}: unknown assumption {a!r} (allowed: {', '.join(ASSUMPTIONS)})")
        kw[a] = True
    try:
        return sp.Symbol(name, **kw)
    except Exception as exc:  # noqa: BLE001 -- sympy's InconsistentAssumptions and kin have no common base
        raise RecipeError(f"{where}: inconsistent assumptions {list(assumptions)!r}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Parametrization:
    """w = G(x) with x0, symbolic parameters and their default values.

    Every variable and parameter is a real sympy Symbol carrying the recipe's assumptions; ``defaults``
    maps each parameter Symbol to an exact Rational used only by numerics (verification, exports).
    """

    variables: tuple[sp.Symbol, ...]
    G: tuple[sp.Expr, ...]
    x0: tuple[sp.Expr, ...]
    parameters: tuple[sp.Symbol, ...] = ()
    defaults: Mapping[sp.Symbol, sp.Rational] = dataclasses.field(default_factory=dict)
    name: str = "parametrization"
    title: str = ""
    source: Mapping[str, object] = dataclasses.field(default_factory=dict, compare=False)
    #: for a coordinate template (``dimension = "n"`` in a recipe): the dimension's name, and the
    #: variable and parameter names written with the index ``[i]``; then G is one coordinate's block
    dimension: str | None = None
    indexed: tuple[str, ...] = ()

    @property
    def d(self) -> int:
        return len(self.G)

    @property
    def D(self) -> int:
        return len(self.variables)

    @property
    def w(self) -> tuple[sp.Symbol, ...]:
        """The model coordinates w_1..w_d (real symbols)."""
        return tuple(sp.Symbol(f"w{i + 1}", real=True) for i in range(self.d))

    @property
    def mu(self) -> tuple[sp.Symbol, ...]:
        """The dual coordinates mu_1..mu_d (real symbols)."""
        return tuple(sp.Symbol(f"mu{i + 1}", real=True) for i in range(self.d))

    def numeric(self, values: Mapping[sp.Symbol, sp.Rational] | None = None) -> dict:
        """Parameter substitution for numerics: the defaults, overridden by ``values``."""
        sub = dict(self.defaults)
        sub.update(values or {})
        missing = [p.name for p in self.parameters if p not in sub]
        if missing:
            raise RecipeError(f"parameters: no numeric value for {', '.join(missing)} (give one in [parameters] or --param)")
        return sub

    def with_values(self, values: Mapping[str, object]) -> Parametrization:
        """A copy with some parameter defaults replaced (``--param NAME=VALUE``)."""
        by_name = {p.name: p for p in self.parameters}
        new = dict(self.defaults)
        for k, v in values.items():
            if k not in by_name:
                raise RecipeError(f"--param: {k!r} is not a parameter of this recipe (parameters: {', '.join(by_name) or 'none'})")
            new[by_name[k]] = v if isinstance(v, sp.Rational) else exact_number(v, f"--param {k}")
            _check_value(by_name[k], new[by_name[k]], f"--param {k}")
        return dataclasses.replace(self, defaults=new)

    @classmethod
    def create(
        cls,
        G: Sequence[sp.Expr | str],
        variables: Sequence[sp.Symbol | str],
        init: Mapping[str | sp.Symbol, object] | Sequence[object],
        parameters: Mapping[str | sp.Symbol, object] | None = None,
        assumptions: Mapping[str | sp.Symbol, Sequence[str]] | None = None,
        name: str = "parametrization",
        title: str = "",
    ) -> Parametrization:
        """Build from sympy objects or strings (strings go through the safe parser).

        ``parameters`` maps each symbolic parameter to its default numeric value (or None for a
        parameter without default); ``assumptions`` maps variable or parameter names to sympy
        assumption names.
        """
        parameters = dict(parameters or {})
        assumptions = {str(k): list(v) for k, v in (assumptions or {}).items()}
        var_names = [_check_name(str(v), f"variables[{i}]") for i, v in enumerate(variables)]
        par_names = [_check_name(str(p), f"parameters.{p}") for p in parameters]
        for n in var_names:
            if var_names.count(n) > 1:
                raise RecipeError(f"variables: {n!r} is listed twice")
            if n in par_names:
                raise RecipeError(f"variables: {n!r} is both a variable and a parameter")
        # a parameter used only through assumptions/init but absent from [parameters] stays symbolic
        for k in assumptions:
            if k not in var_names and k not in par_names:
                raise RecipeError(f"assumptions.{k}: {k!r} is neither a variable nor a parameter")
        symbols = {}
        for n in var_names + par_names:
            symbols[n] = _symbol(n, assumptions.get(n, ()), f"assumptions.{n}")
        # sympy Symbols given by the caller keep their identity only if their assumptions agree
        names = dict(symbols)

        def expr(value, where):
            if isinstance(value, str):
                return parse_expression(value, names, where=where)
            if isinstance(value, (int, float, Fraction)) and not isinstance(value, bool):
                return exact_number(value, where)
            if isinstance(value, sp.Basic):
                free = {s.name for s in value.free_symbols}
                unknown = sorted(free - set(names))
                if unknown:
                    raise RecipeError(f"{where}: undeclared symbol(s) {', '.join(unknown)} in {value}")
                return value.xreplace({s: names[s.name] for s in value.free_symbols})
            raise RecipeError(f"{where}: expected an expression, got {type(value).__name__}")

        if not G:
            raise RecipeError("parametrization: at least one component G_1 is needed")
        Gs = tuple(sp.sympify(expr(g, f"parametrization[{i}]")) for i, g in enumerate(G))
        xs = tuple(symbols[n] for n in var_names)
        par_syms = tuple(symbols[n] for n in par_names)
        for i, g in enumerate(Gs):
            stray = sorted(s.name for s in g.free_symbols if s not in xs and s not in par_syms)
            if stray:
                raise RecipeError(f"parametrization[{i}]: undeclared symbol(s) {', '.join(stray)}")
        if isinstance(init, Mapping):
            keys = [str(k) for k in init]
            extra = sorted(set(keys) - set(var_names))
            missing = [n for n in var_names if n not in keys]
            if extra:
                raise RecipeError(f"init: {', '.join(extra)} {'is' if len(extra) == 1 else 'are'} not variable(s) (variables: {', '.join(var_names)})")
            if missing:
                raise RecipeError(f"init: no initial value for {', '.join(missing)}")
            init_vals = [{str(k): v for k, v in init.items()}[n] for n in var_names]
        else:
            init_vals = list(init)
            if len(init_vals) != len(var_names):
                raise RecipeError(f"init: {len(init_vals)} values given for {len(var_names)} variables")
        x0 = []
        for n, v in zip(var_names, init_vals):
            e = sp.sympify(expr(v, f"init.{n}"))
            if any(s in xs for s in e.free_symbols):
                raise RecipeError(f"init.{n}: an initial value may use parameters, not variables: {e}")
            x0.append(e)
        defaults = {}
        for n in par_names:
            v = parameters[n] if n in parameters else parameters.get(symbols[n])
            if v is None:
                continue
            defaults[symbols[n]] = exact_number(v, f"parameters.{n}")
            _check_value(symbols[n], defaults[symbols[n]], f"parameters.{n}")
        p = cls(variables=xs, G=Gs, x0=tuple(x0), parameters=par_syms, defaults=defaults, name=str(name), title=str(title))
        p._check_x0_real()
        return p

    def _check_x0_real(self) -> None:
        for xi, v in zip(self.variables, self.x0):
            if v.is_real is False:
                raise RecipeError(f"init.{xi.name}: initial value {v} is not real")
            for a in ("positive", "negative", "nonnegative", "nonpositive", "nonzero"):
                if getattr(xi, f"is_{a}") and getattr(v, f"is_{a}") is False:
                    raise RecipeError(f"init.{xi.name}: initial value {v} contradicts the assumption {a!r}")

    def require_shape(self) -> None:
        if self.d > self.D:
            raise DegenerateError(f"d = {self.d} components but only D = {self.D} variables: J = dG cannot have rank d")


def _check_value(sym: sp.Symbol, value: sp.Rational, where: str) -> None:
    for a in ("positive", "negative", "nonnegative", "nonpositive", "nonzero"):
        if getattr(sym, f"is_{a}") and not getattr(value, f"is_{a}"):
            raise RecipeError(f"{where}: value {value} contradicts the assumption {a!r} of {sym.name}")
