"""Recipes: a parametrization written as a small TOML file.

A recipe names the reparametrization w = G(x), the variables x, the initialisation x0 and the
symbolic parameters with their assumptions and default values::

    name = "hyperbolic-entropy"            # required: letters, digits, '_', '.', '-'
    title = "Hyperbolic entropy"           # optional, as are description and reference
    variables = ["u", "v"]                 # required, non-empty
    parametrization = ["u**2 - v**2"]      # required: G_1..G_d (a bare string is one component)
    init = { u = "alpha", v = "alpha" }    # required: x0, one expression or number per variable

    [assumptions]                          # name -> sympy assumptions (a bare string is one)
    alpha = ["positive"]

    [parameters]                           # name -> default value (exact: 0.5 means 1/2)
    alpha = 0.5

Every variable and parameter is real. A name listed under ``[assumptions]`` but neither a variable
nor under ``[parameters]`` is a parameter without a default value (``beta = []`` declares one with
no assumption beyond real). Expressions are read by the safe parser of :mod:`mirrorsym._parse`.
Every error is a :class:`RecipeError` whose message starts with the file name and the key.

>>> p = recipe_from_text('''
... name = "egu"
... variables = ["u"]
... parametrization = "u**2/4"
... init = { u = "c" }
... assumptions = { c = "positive" }
... ''')
>>> p.G, p.x0, p.parameters, p.defaults
((u**2/4,), (c,), (c,), {})
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from ._errors import RecipeError
from ._io import read_text, toml_table
from ._parametrization import Parametrization

__all__ = ["check_keys", "find_recipe", "load_recipe", "recipe_from_dict", "recipe_from_text", "shipped_recipes", "show_value"]

KEYS = ("name", "title", "description", "reference", "dimension", "variables", "parametrization", "init",
        "assumptions", "parameters")
REQUIRED = ("name", "variables", "parametrization", "init")
RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
# no path separators and no leading dot: a recipe name is safe to use in a file name
_RECIPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def load_recipe(path: str | Path) -> Parametrization:
    """The parametrization of the recipe file ``path``; its ``source`` is the recipe plus ``"file"``."""
    p = recipe_from_text(read_text(path, "recipe"), source=str(path))
    return dataclasses.replace(p, source={**p.source, "file": str(path)})


def recipe_from_text(text: str, source: str = "<recipe>") -> Parametrization:
    """The parametrization of the TOML recipe ``text``; ``source`` names it in error messages."""
    return recipe_from_dict(toml_table(text, source, "recipe"), source)


def recipe_from_dict(data: Mapping, source: str = "<recipe>") -> Parametrization:
    """The parametrization of an already-parsed recipe (the TOML tables as dicts).

    Checks the keys and the shape of each value here, so that a message names the key; the names
    and expressions themselves are checked by :meth:`Parametrization.create`. The returned object's
    ``source`` is a copy of ``data``.
    """

    def fail(message: str) -> RecipeError:
        return RecipeError(f"{source}: {message}")

    check_keys(data, KEYS, REQUIRED, fail, "recipe")

    name = data["name"]
    if not isinstance(name, str) or not _RECIPE_NAME.fullmatch(name):
        raise fail(f"name: {show_value(name)} is not a valid recipe name (letters, digits, '_', '.' and '-', "
                   "starting with a letter or digit)")
    for key in ("title", "description", "reference"):
        if not isinstance(data.get(key, ""), str):
            raise fail(f"{key}: expected a string, got {show_value(data[key])}")

    variables = data["variables"]
    if not isinstance(variables, list) or not variables:
        raise fail(f"variables: expected a non-empty list of names, got {show_value(variables)}")
    for i, v in enumerate(variables):
        if not isinstance(v, str):
            raise fail(f"variables[{i}]: expected a name (a string), got {show_value(v)}")

    G = data["parametrization"]
    G = [G] if isinstance(G, str) else G
    if not isinstance(G, list) or not G:
        raise fail(f"parametrization: expected a non-empty list of expressions, got {show_value(G)}")

    init = data["init"]
    if not isinstance(init, Mapping):
        raise fail(f"init: expected a table 'variable = value', got {show_value(init)}")

    assumptions = _table(data, "assumptions", fail)
    for k, v in assumptions.items():
        if isinstance(v, str):
            assumptions[k] = v = [v]
        if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
            raise fail(f"assumptions.{k}: expected a list of assumption names, got {show_value(v)}")

    parameters = _table(data, "parameters", fail)
    dimension, indexed = None, ()
    if "dimension" in data:
        dimension = data["dimension"]
        if not isinstance(dimension, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", dimension):
            raise fail(f"dimension: expected the name of the dimension (e.g. \"n\"), got {show_value(dimension)}")
        variables, G, init, assumptions, parameters, indexed = _untemplate(
            variables, G, init, assumptions, parameters, fail)
    else:
        for key, text in [("variables", variables), ("init", list(init)), ("parameters", list(parameters))]:
            if any(isinstance(t, str) and _INDEXED.search(t) for t in text):
                raise fail(f"{key}: indexed names like 'u[i]' need a dimension key (e.g. dimension = \"n\")")
    # a name with assumptions only is a parameter without a default value
    for k in assumptions:
        if k not in variables and k not in parameters:
            parameters[k] = None

    try:
        p = Parametrization.create(G, variables, init, parameters=parameters, assumptions=assumptions,
                                   name=name, title=data.get("title", ""))
    except RecipeError as exc:
        raise fail(str(exc)) from None
    return dataclasses.replace(p, source=copy.deepcopy(dict(data)), dimension=dimension, indexed=indexed)


_INDEXED = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)\[([^\]]*)\]")


def _untemplate(variables, G, init, assumptions, parameters, fail):
    """A coordinate template (``u[i]``, ``alpha[i]``) as the parametrization of one coordinate.

    ``dimension = "n"`` declares w ∈ R^n with n identical independent blocks, so the derivation is
    done once on the block and R(w) = Σ_i r(w_i) (MATH.md §6). Inside the template the only index is
    ``i``; ``u[i]`` is renamed ``u`` before the safe parser sees the text. Returns the renamed
    variables, components, init, assumptions, parameters, and the names that were indexed.
    """
    indexed = []
    plain_vars = []
    for k, v in enumerate(variables):
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_]*)\[i\]", v)
        if not m:
            raise fail(f"variables[{k}]: with a dimension every variable is a coordinate template like 'u[i]', "
                       f"got {show_value(v)}")
        plain_vars.append(m.group(1))
        indexed.append(m.group(1))

    def rename_key(key, where):
        m = _INDEXED.fullmatch(key)
        if m is None:
            return key
        if m.group(2) != "i":
            raise fail(f"{where}: the index of a template is i, got {show_value(key)}")
        if m.group(1) not in indexed:
            indexed.append(m.group(1))
        return m.group(1)

    parameters = {rename_key(k, f"parameters.{k}"): v for k, v in parameters.items()}
    assumptions = {rename_key(k, f"assumptions.{k}"): v for k, v in assumptions.items()}
    init = {rename_key(str(k), f"init.{k}"): v for k, v in init.items()}

    def rename_text(text, where):
        if not isinstance(text, str):
            return text
        for m in _INDEXED.finditer(text):
            if m.group(2) != "i" or m.group(1) not in indexed:
                raise fail(f"{where}: {show_value(m.group(0))} is not a declared coordinate template "
                           f"(templates: {', '.join(n + '[i]' for n in indexed)})")
        return _INDEXED.sub(lambda m: m.group(1), text)

    G = [rename_text(g, f"parametrization[{k}]") for k, g in enumerate(G)]
    init = {k: rename_text(v, f"init.{k}") for k, v in init.items()}
    if len(G) != 1:
        raise fail("parametrization: a dimension template has one component per coordinate, w_i = G(x_i)")
    return plain_vars, G, init, assumptions, parameters, tuple(indexed)


def check_keys(data, keys, required, fail: Callable[[str], RecipeError], what: str) -> None:
    """``data`` is a table with only known keys (a typo gets a suggestion) and every required one."""
    if not isinstance(data, Mapping):
        raise fail(f"expected a table of {what} keys, got {type(data).__name__}")
    unknown = [k for k in data if k not in keys]
    if unknown:
        hints = [f"{show_value(k)} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(str(k), keys, 1))
                 else show_value(k) for k in unknown]
        raise fail(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)} (allowed: {', '.join(keys)})")
    missing = [k for k in required if k not in data]
    if missing:
        raise fail(f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")


def show_value(value) -> str:
    """repr(value) for a message, clipped: a recipe value may be a megabyte long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _table(data: Mapping, key: str, fail: Callable[[str], RecipeError]) -> dict:
    """The optional table ``data[key]`` as a fresh dict (empty if absent)."""
    table = data.get(key, {})
    if not isinstance(table, Mapping):
        raise fail(f"{key}: expected a table, got {show_value(table)}")
    return dict(table)


def shipped_recipes() -> list[Path]:
    """The recipe files shipped in the project's ``recipes/`` directory, sorted by name."""
    if not RECIPES_DIR.is_dir():
        return []
    return sorted(RECIPES_DIR.glob("*.toml"), key=lambda p: p.name)


def find_recipe(name_or_path: str | Path) -> Path:
    """``name_or_path`` if it is a file, else the shipped recipe of that name (``.toml`` optional)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = {p.stem: p for p in shipped_recipes()}
    # only a bare name is looked up among the shipped recipes, never a path
    if path.parent == Path("."):
        stem = path.name.removesuffix(".toml")
        if stem in shipped:
            return shipped[stem]
        close = difflib.get_close_matches(stem, shipped, 1)
    else:
        close = []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise RecipeError(f"{name_or_path}: no such recipe file, and no shipped recipe of that name{hint} "
                      f"(shipped: {', '.join(shipped) or 'none'})")
