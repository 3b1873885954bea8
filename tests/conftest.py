"""Shared fixtures: hypothesis profiles (``HYPOTHESIS_PROFILE=ci`` in .ci/run) and cached derivations."""

import functools
import os

import mpmath as mp
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

mp.mp.dps = 30


@functools.cache
def derived(name: str):
    """The derivation of a shipped recipe, computed once per test session."""
    import mirrorsym

    return mirrorsym.derive(mirrorsym.load_recipe(mirrorsym.find_recipe(name)))


def load_module(d, tmp_path, name: str):
    """The generated numpy module of a derivation, written to ``tmp_path`` and imported from there."""
    import importlib.util

    import mirrorsym

    path = tmp_path / f"{name}.py"
    path.write_text(mirrorsym.numpy_module(d))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
