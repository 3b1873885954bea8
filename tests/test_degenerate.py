"""Degenerate mathematics (issue 9): each input gets a precise message or a correct special-case
result — never a traceback, a hang past the budget, or a wrong R."""

import json
import time

import pytest
import sympy as sp

import mirrorsym
from mirrorsym._cli import main


def make(G, variables, init, parameters=None, assumptions=None):
    return mirrorsym.Parametrization.create(G, variables, init, parameters=parameters or {},
                                            assumptions=assumptions or {}, name="case")


@pytest.mark.parametrize("G, variables, init, assumptions, error, fragment", [
    (["u**2 - v**2"], ["u", "v"], {"u": "0", "v": "0"}, {}, mirrorsym.DegenerateError, "rank 0 < d = 1"),
    (["u**3"], ["u"], {"u": "0"}, {}, mirrorsym.DegenerateError, "rank 0"),
    (["sqrt(u)"], ["u"], {"u": "0"}, {}, mirrorsym.DegenerateError, "singular locus"),
    (["log(u)"], ["u"], {"u": "-1"}, {}, mirrorsym.DegenerateError, "not a finite real number"),
    (["acosh(u)"], ["u"], {"u": "1/2"}, {}, mirrorsym.DegenerateError, "outside the real domain"),
    (["u", "u**2"], ["u"], {"u": "1"}, {}, mirrorsym.DegenerateError, "d = 2 components but only D = 1"),
    (["u", "3"], ["u", "v"], {"u": "1", "v": "1"}, {}, mirrorsym.DegenerateError, "constant in x"),
    (["u**2 + v", "u**2 + v"], ["u", "v"], {"u": "1", "v": "1"}, {}, mirrorsym.DegenerateError, "repeated"),
    (["Abs(u)"], ["u"], {"u": "1"}, {}, mirrorsym.DegenerateError, "Abs is not smooth"),
    (["sign(u)*u**2"], ["u"], {"u": "1"}, {}, mirrorsym.DegenerateError, "sign is not smooth"),
    (["Max(u, v)"], ["u", "v"], {"u": "1", "v": "2"}, {}, mirrorsym.DegenerateError, "Max is not smooth"),
    (["u**2"], ["u"], {"u": "-1"}, {"u": ["positive"]}, mirrorsym.RecipeError, "contradicts the assumption"),
])
def test_degenerate_inputs_are_named(G, variables, init, assumptions, error, fragment):
    with pytest.raises(error, match=fragment):
        mirrorsym.derive(make(G, variables, init, assumptions=assumptions))


def test_abs_of_a_positive_variable_is_just_the_variable():
    d = mirrorsym.derive(make(["Abs(u)**2"], ["u"], {"u": "1"}, assumptions={"u": ["positive"]}))
    assert d.status is mirrorsym.Status.VERIFIED


@pytest.mark.parametrize("init, dom", [({"u": "1", "v": "1/2"}, (-sp.oo, sp.oo)),
                                       ({"u": "1", "v": "1"}, (0, sp.oo)),
                                       ({"u": "1", "v": "-1"}, (-sp.oo, 0))])
def test_initialisation_changes_dom_R_of_uv(init, dom):
    """w = u·v: u0 = ±v0 keeps the flow on a ray, so dom R is one-sided; otherwise it is all of R."""
    d = mirrorsym.derive(make(["u*v"], ["u", "v"], init))
    assert d.status is mirrorsym.Status.VERIFIED
    (part,) = d.domain()["dom_R"]
    assert (part.lo, part.hi) == dom


def test_no_closed_form_strategy_is_exit_5_not_a_hang(tmp_path, capsys):
    path = tmp_path / "sinh.toml"
    path.write_text('name = "sinh"\nvariables = ["u"]\nparametrization = ["sinh(u)"]\ninit = { u = "1/2" }\n')
    t = time.perf_counter()
    rc = main(["derive", str(path), "--budget", "2", "--json", str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 5 and time.perf_counter() - t < 2 + 5
    assert "step" in err or "flow" in err or "antiderivative" in err
    assert not (tmp_path / "o.json").exists()


def test_implicit_outputs_are_deterministic(tmp_path, capsys):
    docs = []
    for k in range(2):
        assert main(["derive", "woodworth-depth-3", "--json", str(tmp_path / f"{k}.json"),
                     "--numpy", str(tmp_path / f"{k}.py")]) == 0
        docs.append(((tmp_path / f"{k}.json").read_bytes(), (tmp_path / f"{k}.py").read_bytes()))
    capsys.readouterr()
    assert docs[0] == docs[1]
    assert "seconds" not in json.loads(docs[0][0])
