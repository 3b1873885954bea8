"""``mirrorsym batch``: every recipe's outcome is reported, whatever the others do (a bad file, a
non-commuting G, a budget run out, a hang killed at the wall clock), locally and on a Dask cluster."""

import argparse
import json
import sys
import time

import pytest

import mirrorsym
from mirrorsym import _batch
from mirrorsym._batch import ExecutorUnavailable, add_batch_arguments, run_batch, run_batch_cli

NOT_COMMUTING = {"single-neuron", "matrix-factorisation-2x2", "two-layer-linear", "noncommuting-quadratic"}


@pytest.fixture
def bad_recipe(tmp_path):
    path = tmp_path / "recipes" / "bad.toml"
    path.parent.mkdir()
    path.write_text('name = "bad"\nvariables = ["u"\n')
    return path


def cli(*argv):
    parser = argparse.ArgumentParser(prog="mirrorsym batch")
    add_batch_arguments(parser)
    return run_batch_cli(parser.parse_args([str(a) for a in argv]))


def test_whole_catalogue_with_a_bad_recipe(tmp_path, bad_recipe, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "single-neuron.py").write_text("stale: no numpy module exists for a non-commuting G\n")
    shipped = [p.stem for p in mirrorsym.shipped_recipes()]
    rc = cli(*shipped, bad_recipe, "--jobs", 2, "--out", out)
    stdout, stderr = capsys.readouterr()
    assert rc == 0, stderr  # every recipe ran, whatever its outcome
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["recipes"]}
    assert [r["name"] for r in summary["recipes"]] == shipped + ["bad"]  # the order given, not of completion
    assert set(NOT_COMMUTING) <= set(shipped)
    for name in shipped:
        row = rows[name]
        assert row["exit_status"] == (3 if name in NOT_COMMUTING else 0), row
        assert row["verdict"] == json.loads((out / f"{name}.json").read_text())["status"]
        expected = [f"{name}.json", f"{name}.tex"] + ([] if name in NOT_COMMUTING else [f"{name}.py"]) + [f"{name}.log"]
        assert row["outputs"] == expected and not row["killed"]
        assert f"{name} " in stdout and f"] {name}: " in stderr  # a table row and a progress line each
    assert not (out / "single-neuron.py").exists()  # the stale output of an earlier run is gone
    bad = rows["bad"]
    assert bad["exit_status"] == 2 and bad["outputs"] == ["bad.log"] and bad["recipe"] == str(bad_recipe)
    assert bad["verdict"].startswith(f"RecipeError: {bad_recipe}: invalid TOML")
    assert (out / "bad.log").read_text().splitlines()[0] == f"$ mirrorsym derive {bad_recipe} --budget 60"
    assert f"{len(shipped) + 1} recipes in" in stdout and "1 exit 2" in stdout and "4 exit 3" in stdout
    assert summary["budget"] == 60.0 and summary["executor"] == "local" and summary["extra_args"] == []


def test_budget_stops_a_recipe_and_options_pass_through(tmp_path):
    result = run_batch(["quadratic-generic"], tmp_path, jobs=1, budget=0.001)
    (o,) = result.outcomes
    assert o.exit_status == 5 and "time budget" in o.verdict and o.outputs == (tmp_path / "quadratic-generic.log",)
    result = run_batch(["egu"], tmp_path, budget=30, extra_args=["--no-verify", "--param", "c=2"])
    (o,) = result.outcomes
    assert o.exit_status == 0 and "not verified" in o.verdict
    assert json.loads((tmp_path / "egu.json").read_text())["parameters"] == {"c": "2"}
    assert json.loads((tmp_path / "summary.json").read_text())["extra_args"] == ["--no-verify", "--param", "c=2"]


@pytest.mark.parametrize("leader", ["time.sleep(120)", "sys.exit(0)"], ids=["hangs", "exits"])
def test_a_hang_is_killed_with_its_children_and_the_others_finish(tmp_path, bad_recipe, monkeypatch, leader):
    real = _batch._derive_command
    # stands in for a derivation that ignores its budget; its child holds the output pipes open, so the
    # batch can finish only if the whole process group is killed, even once the leader has exited
    hang = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            f"print('hanging', flush=True); {leader}")

    def command(recipe, outputs, budget, extra_args):
        if recipe.endswith("egu.toml"):
            return [sys.executable, "-c", hang]
        return real(recipe, outputs, budget, extra_args)

    monkeypatch.setattr(_batch, "_derive_command", command)
    start = time.monotonic()
    result = run_batch(["egu", bad_recipe], tmp_path, jobs=2, budget=2.0, grace=1.0)
    assert time.monotonic() - start < 30
    egu, bad = result.outcomes
    assert egu.killed and egu.exit_status is None and egu.ran and egu.verdict.startswith("killed after ")
    assert egu.seconds >= 3.0 and egu.outputs == (tmp_path / "egu.log",)
    log = (tmp_path / "egu.log").read_text()
    assert "hanging" in log and log.rstrip().endswith("(budget 2 s + 1 s grace)")
    assert bad.exit_status == 2 and result.all_ran
    assert json.loads(result.summary.read_text())["recipes"][0]["killed"] is True


def test_an_executor_failure_is_an_outcome(tmp_path, monkeypatch):
    def broken(task, reaper=None):
        raise OSError("no such interpreter")

    monkeypatch.setattr(_batch, "_run_one", broken)
    result = run_batch(["egu"], tmp_path, jobs=1)
    (o,) = result.outcomes
    assert not o.ran and o.exit_status is None and o.verdict == "not run: OSError: no such interpreter"
    assert not result.all_ran


def test_bad_arguments(tmp_path, monkeypatch):
    with pytest.raises(mirrorsym.RecipeError, match="no shipped recipe of that name; did you mean 'egu'") as exc:
        run_batch(["egu", "eguu"], tmp_path)
    assert exc.value.exit_status == 2 and not (tmp_path / "summary.json").exists()
    with pytest.raises(mirrorsym.RecipeError, match="would both write egu"):
        run_batch(["egu", "recipes/egu.toml"], tmp_path)
    with pytest.raises(mirrorsym.RecipeError, match="set by the batch itself"):
        run_batch(["egu"], tmp_path, extra_args=["--json=x.json"])
    with pytest.raises(mirrorsym.RecipeError, match="needs the address of a scheduler"):
        run_batch(["egu"], tmp_path, executor="dask")
    with pytest.raises(mirrorsym.RecipeError, match="jobs"):
        run_batch(["egu"], tmp_path, jobs=0)
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    with pytest.raises(ExecutorUnavailable, match=r"pip install mirrorsym\[dask\]") as exc:
        cli("egu", "--out", tmp_path, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:8786")
    assert exc.value.exit_status == 2 and isinstance(exc.value, mirrorsym.MirrorsymError)


def test_dask_cluster_on_loopback_matches_local(tmp_path, bad_recipe, capsys):
    distributed = pytest.importorskip("distributed")
    recipes = ["egu", "single-neuron", bad_recipe]
    local = run_batch(recipes, tmp_path / "local", jobs=2)
    # a worker process of its own: the task and its result really travel, as they would to another machine
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        rc = cli(*recipes, "--out", tmp_path / "dask", "--executor", "dask", "--scheduler", cluster.scheduler_address)
    assert rc == 0, capsys.readouterr().err

    def timeless(doc):
        if isinstance(doc, dict):
            return {k: timeless(v) for k, v in doc.items() if k != "seconds"}
        return [timeless(v) for v in doc] if isinstance(doc, list) else doc

    def reproducible(path):  # the content but the timings
        text = path.read_text()
        return timeless(json.loads(text)) if path.suffix == ".json" else text

    assert sorted(p.name for p in (tmp_path / "dask").iterdir()) == sorted(p.name for p in local.out_dir.iterdir())
    for path in local.out_dir.iterdir():  # the outputs and logs, bad.log's message naming the file included
        here, there = reproducible(path), reproducible(tmp_path / "dask" / path.name)
        if path.name == "summary.json":
            assert (here.pop("executor"), there.pop("executor")) == ("local", "dask")
        assert there == here, path.name
