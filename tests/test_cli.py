"""The command line: exit statuses, outputs, messages (run in-process through ``main`` and once as a
real subprocess, which is what users and the contract check run)."""

import importlib.util
import json
import subprocess
import sys

import mpmath as mp
import numpy as np
import pytest

from mirrorsym._cli import main

RECIPES = __import__("pathlib").Path(__file__).resolve().parent.parent / "recipes"


def run(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def load(path):
    spec = importlib.util.spec_from_file_location("generated_module", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_derive_writes_verified_outputs(tmp_path, capsys):
    js, tex, py = tmp_path / "d.json", tmp_path / "d.tex", tmp_path / "d.py"
    rc, out, err = run(capsys, "derive", str(RECIPES / "hyperbolic-entropy.toml"), "--json", str(js),
                       "--latex", str(tex), "--numpy", str(py))
    assert rc == 0, err
    assert "derived and verified" in out and "asinh" in out
    doc = json.loads(js.read_text())
    for key in ("name", "commuting", "variables", "parametrization", "parameters", "w", "mu", "psi", "grad_Q", "Q",
                "R", "closed_form", "domain", "verification"):
        assert key in doc, key
    assert doc["commuting"] is True and doc["closed_form"] is True
    assert all(c["passed"] and c["precision"] == 30 for c in doc["verification"]["checks"])
    assert r"\operatorname{arsinh}" in tex.read_text()
    mod = load(py)
    assert mod.DIM == 1 and mod.PARAMETERS == {"alpha": 0.5}
    w = np.array([[-3.0], [0.2], [40.0]])
    a = mp.mpf("0.5")
    for wi, g in zip(w[:, 0], mod.grad_R(w)[:, 0]):
        assert abs(g - float(mp.asinh(mp.mpf(wi) / (2 * a**2)) / 4)) < 1e-15
    # parameters are keyword arguments, stay symbolic in the derivation
    assert abs(mod.grad_R([1.0], alpha=2.0)[0] - float(mp.asinh(mp.mpf(1) / 8) / 4)) < 1e-15


def test_param_override_and_no_verify(tmp_path, capsys):
    js = tmp_path / "d.json"
    rc, out, _ = run(capsys, "derive", "egu", "--param", "c=2", "--json", str(js))
    assert rc == 0 and json.loads(js.read_text())["parameters"] == {"c": "2"}
    rc, out, _ = run(capsys, "derive", "egu", "--no-verify")
    assert rc == 0 and "not verified" in out


def test_not_commuting_exits_3_with_witness(tmp_path, capsys):
    js = tmp_path / "n.json"
    rc, out, _ = run(capsys, "derive", "single-neuron", "--json", str(js), "--numpy", str(tmp_path / "n.py"))
    assert rc == 3
    assert "[∇G_1, ∇G_2] = (0, -b2, b1)" in out
    doc = json.loads(js.read_text())
    assert doc["commuting"] is False and doc["R"] is None
    pair = doc["brackets"][0]
    assert pair["zero"] is False and pair["witness"] and pair["value_at_witness"]
    assert doc["diagnosis"]["no_mirror_potential"] is True
    assert not (tmp_path / "n.py").exists()


@pytest.mark.parametrize("text, fragment", [
    ('name = "x"\nvariables = ["u"]\nparametrization = ["u**2 + beta"]\ninit = { u = "1" }\n', "beta"),
    ('name = "x"\nvariables = ["u"]\nparametrization = ["foo(u)"]\ninit = { u = "1" }\n', "foo"),
    ('name = "x"\nvariables = ["u"]\nparametrization = ["u**2"]\ninit = { v = "1" }\n', "init"),
    ('name = "x"\nvariables = ["u"]\nparametrization = ["u**"]\ninit = { u = "1" }\n', "parametrization[0]"),
    ('name = "x"\nvariables = ["u", "v"]\nparametrization = ["u**2 - v**2"]\ninit = { u = "0", v = "0" }\n', "rank"),
    ('this is not toml', "TOML"),
])
def test_bad_input_exits_2_naming_the_problem(tmp_path, capsys, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out_json = tmp_path / "out.json"
    rc, _out, err = run(capsys, "derive", str(path), "--json", str(out_json))
    assert rc == 2
    assert fragment in err and "Traceback" not in err
    assert not out_json.exists()


def test_missing_recipe_exits_2(capsys):
    rc, _, err = run(capsys, "derive", "no-such-recipe")
    assert rc == 2 and "no-such-recipe" in err


def test_no_strategy_exits_5(tmp_path, capsys):
    path = tmp_path / "ei.toml"
    # dφ/dt = 2u e^{u²}: t = ∫ e^{-s²}/(2s) ds is an exponential integral, which has no elementary inverse
    path.write_text('name = "ei"\nvariables = ["u"]\nparametrization = ["exp(u**2)"]\ninit = { u = "1" }\n')
    rc, _, err = run(capsys, "derive", str(path))
    assert rc == 5 and "flow" in err


def test_budget_exhaustion_exits_5_naming_the_step(capsys):
    rc, _, err = run(capsys, "derive", "quadratic-generic", "--budget", "0.001")
    assert rc == 5 and "budget" in err and "step" in err


def test_failed_check_exits_4(monkeypatch, capsys):
    """A closed form whose R is off by 0.1 % (its gradient still right) must fail the Fenchel check."""
    import mirrorsym._legendre as L

    real = L._template

    def wrong(*args):
        out = real(*args)
        return None if out is None else (out[0] * (1 + 1e-3),) + out[1:]

    monkeypatch.setattr(L, "_template", wrong)
    rc, out, _ = run(capsys, "derive", "hyperbolic-entropy")
    assert rc == 4
    assert "FAIL" in out and "fenchel" in out


def test_list(capsys):
    rc, out, _ = run(capsys, "list")
    assert rc == 0
    for name in ("hyperbolic-entropy", "azulay-shape", "egu", "deep-one-sided-3", "quadratic-separable", "single-neuron"):
        assert name in out


def test_python_dash_m_is_the_command(tmp_path):
    p = subprocess.run([sys.executable, "-m", "mirrorsym", "derive", "egu", "--json", str(tmp_path / "e.json")],
                       capture_output=True, text=True, cwd=RECIPES.parent)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "e.json").read_text())["R"] == "c**2/4 + w1*log(4*w1/c**2) - w1"


def test_outputs_are_deterministic(tmp_path, capsys):
    texts = []
    for k in range(2):
        paths = [tmp_path / f"{k}.{ext}" for ext in ("json", "tex", "py")]
        rc, _, _ = run(capsys, "derive", "quadratic-separable", "--json", str(paths[0]), "--latex", str(paths[1]),
                       "--numpy", str(paths[2]))
        assert rc == 0
        texts.append([p.read_bytes() for p in paths])
    assert texts[0] == texts[1]


def test_verify_command_runs_the_full_checks(tmp_path, capsys):
    js = tmp_path / "v.json"
    rc, out, _ = run(capsys, "verify", "azulay-shape", "--checks", "hessian,trajectory,bias", "--dps", "15",
                     "--seed", "3", "--json", str(js))
    assert rc == 0, out
    names = [c["name"] for c in json.loads(js.read_text())["verification"]["checks"]]
    assert {"grad_R", "hess_R", "trajectory", "bias"} <= set(names)
    assert "seed 3" in out and "15 digits" in out


def test_verify_not_commuting_exits_3(capsys):
    rc, out, _ = run(capsys, "verify", "single-neuron", "--checks", "trajectory", "--dps", "15")
    assert rc == 3 and "not commuting" in out


def test_derive_verify_full(tmp_path, capsys):
    js = tmp_path / "f.json"
    rc, _, _ = run(capsys, "derive", "egu", "--verify", "full", "--dps", "15", "--json", str(js))
    checks = {c["name"]: c for c in json.loads(js.read_text())["verification"]["checks"]}
    assert rc == 0 and checks["trajectory"]["passed"] and checks["bias"]["passed"]
