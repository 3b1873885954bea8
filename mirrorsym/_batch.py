"""``mirrorsym batch``: derive many recipes in parallel, each in its own process.

Every recipe runs as ``python -m mirrorsym derive RECIPE --budget B`` in a subprocess of its own, so
that a crash, a runaway allocation or a hang is confined to that recipe: past its budget plus a grace
period the process group is killed and the outcome says so. The subprocesses write into a private
temporary directory; their outputs come back as text and are written into the output directory
atomically, so ``DIR`` never holds a partial file, nor a stale one from an earlier run. Per recipe
``NAME`` (the recipe file's stem):

``NAME.json`` ``NAME.tex`` ``NAME.py``
    the derivation, as ``mirrorsym derive`` writes it (``NAME.py`` only when G is commuting);
``NAME.log``
    the command, then its stdout and stderr;

and ``summary.json`` holds every outcome (sorted keys; deterministic except the seconds).

Two executors drive the subprocesses: ``local`` (a thread pool of ``jobs`` threads, one subprocess
each) and ``dask`` (tasks on a Dask distributed cluster, ``pip install mirrorsym[dask]``). A Dask
worker needs mirrorsym installed but no shared file system: the task carries the recipe's bytes, and
the outputs travel back in its result.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import MirrorsymError, RecipeError
from ._io import MAX_BYTES, write_atomically
from ._recipe import find_recipe
from ._version import __version__

__all__ = ["BatchResult", "ExecutorUnavailable", "RecipeOutcome", "add_batch_arguments", "run_batch",
           "run_batch_cli"]

GRACE = 15.0
"""Seconds a derivation may overrun its own ``--budget`` before its process group is killed."""

SUMMARY = "summary.json"
EXECUTORS = ("local", "dask")
# the derive options the batch sets itself: passing them through would clobber one file per recipe
_OWN_OPTIONS = ("--json", "--latex", "--latex-standalone", "--numpy", "--budget")
_OUTPUTS = {"--json": ".json", "--latex": ".tex", "--numpy": ".py"}


class ExecutorUnavailable(MirrorsymError, RuntimeError):
    """The executor asked for cannot run: Dask is not installed, or its scheduler is unreachable."""

    exit_status = 2


@dataclass(frozen=True)
class RecipeOutcome:
    """How one recipe of a batch ended.

    ``recipe`` is as given (a file or a shipped name), ``name`` its file's stem, which names the outputs.
    ``exit_status`` is that of ``mirrorsym derive`` (0 verified, 2 bad input, 3 not commuting, 4 a check
    failed, 5 out of budget; negative: ended by that signal), or None when the process had none: it
    was ``killed`` at the wall-clock limit, or the executor could not run it (``ran`` is False).
    ``verdict`` is the JSON's ``status`` when a JSON was written, else the last line of stderr.
    """

    name: str
    recipe: str
    exit_status: int | None
    verdict: str
    seconds: float
    outputs: tuple[Path, ...]
    killed: bool = False

    @property
    def ran(self) -> bool:
        """Whether the derivation ran to an end of its own or to the wall-clock kill."""
        return self.exit_status is not None or self.killed

    def to_dict(self, out_dir: Path) -> dict:
        """The outcome for ``summary.json``: output paths relative to ``out_dir``, seconds to the ms."""
        return {"name": self.name, "recipe": self.recipe, "exit_status": self.exit_status, "verdict": self.verdict,
                "killed": self.killed, "seconds": round(self.seconds, 3),
                "outputs": [p.relative_to(out_dir).as_posix() for p in self.outputs]}


@dataclass(frozen=True)
class BatchResult:
    """Every recipe's outcome, in the order the recipes were given, and where the summary is."""

    outcomes: tuple[RecipeOutcome, ...]
    out_dir: Path
    summary: Path
    budget: float
    grace: float
    executor: str
    extra_args: tuple[str, ...]
    seconds: float

    @property
    def all_ran(self) -> bool:
        """Whether every recipe ran (whatever its outcome); False if the executor lost one."""
        return all(o.ran for o in self.outcomes)

    def to_dict(self) -> dict:
        """The content of ``summary.json``."""
        return {"mirrorsym_version": __version__, "executor": self.executor, "budget": self.budget,
                "grace": self.grace, "extra_args": list(self.extra_args), "seconds": round(self.seconds, 3),
                "recipes": [o.to_dict(self.out_dir) for o in self.outcomes]}

    def table(self) -> list[str]:
        """The summary table, one row per recipe, then a line of totals."""
        width = max([len("recipe")] + [len(o.name) for o in self.outcomes])
        rows = [f"{'recipe':{width}s}  exit  seconds  outcome"]
        for o in self.outcomes:
            status = "-" if o.exit_status is None else str(o.exit_status)
            rows.append(f"{o.name:{width}s}  {status:>4s}  {o.seconds:7.1f}  {o.verdict}")
        counts = Counter("killed" if o.killed else "not run" if not o.ran else f"exit {o.exit_status}"
                         for o in self.outcomes)
        tally = ", ".join(f"{n} {what}" for what, n in sorted(counts.items()))
        rows.append(f"{len(self.outcomes)} recipes in {self.seconds:.1f} s: {tally}; summary in {self.summary}")
        return rows


@dataclass(frozen=True)
class _Task:
    """One derivation: ``recipe`` as given, resolved to ``path``; ``data``, the file's bytes, is set when it
    runs where ``path`` may not exist."""

    name: str
    recipe: str
    path: str
    budget: float
    grace: float
    extra_args: tuple[str, ...]
    data: bytes | None = None


@dataclass(frozen=True)
class _Run:
    """What a task brings back: the outcome without local paths, and the outputs' text by suffix."""

    exit_status: int | None
    killed: bool
    verdict: str
    seconds: float
    files: dict[str, str]


class _Reaper:
    """The derive processes still running, to kill when a local batch is interrupted or abandoned.

    They run in sessions of their own (so that a kill takes their whole process group), which also puts
    them out of reach of the terminal's Ctrl-C. Once closed, a process registered late is killed at once.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()
        self._closed = False

    def add(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._live.add(proc)
            if self._closed:
                _kill_group(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._live.discard(proc)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for proc in self._live:
                _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process group of ``proc`` (its session: its children too), or ``proc`` alone off POSIX.

    Not after ``proc`` was reaped: until then its pid, the group's id, cannot be reused. It may have exited
    already, though, and left a child holding its pipes open.
    """
    if proc.returncode is not None:
        return
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        proc.kill()


def _derive_command(recipe: str, outputs: dict[str, str], budget: float, extra_args: Sequence[str]) -> list[str]:
    """The ``mirrorsym derive`` command line, run with this interpreter (so the same mirrorsym)."""
    files = [arg for option, path in outputs.items() for arg in (option, path)]
    return [sys.executable, "-m", "mirrorsym", "derive", recipe, *files, "--budget", repr(budget), *extra_args]


def _verdict(exit_status: int, json_text: str | None, stderr: str) -> str:
    """The JSON's status if there is a readable one, else stderr's last line without the program name."""
    if json_text is not None:
        try:
            status = json.loads(json_text).get("status")
        except (ValueError, AttributeError):
            status = None
        if isinstance(status, str):
            return status
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if lines:
        return lines[-1].removeprefix("mirrorsym: ")
    if exit_status < 0:
        return f"ended by signal {-exit_status}"
    return f"exit {exit_status} with no message"


def _run_one(task: _Task, reaper: _Reaper | None = None) -> _Run:
    """Run one derivation in a subprocess, killed at ``budget + grace`` seconds; runs on a Dask worker too."""
    with tempfile.TemporaryDirectory(prefix="mirrorsym-batch-") as tmp:
        if task.data is None:
            recipe = os.path.abspath(task.path)
        else:
            recipe = os.path.join(tmp, "recipe", os.path.basename(task.path))
            os.mkdir(os.path.dirname(recipe))
            with open(recipe, "wb") as f:
                f.write(task.data)
        outputs = {option: os.path.join(tmp, task.name + suffix) for option, suffix in _OUTPUTS.items()}
        start = time.monotonic()
        proc = subprocess.Popen(_derive_command(recipe, outputs, task.budget, task.extra_args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        if reaper is not None:
            reaper.add(proc)
        try:
            stdout, stderr = proc.communicate(timeout=task.budget + task.grace)
            killed = False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            killed = True
        finally:
            if reaper is not None:
                reaper.discard(proc)
        seconds = time.monotonic() - start
        files = {}
        for option, suffix in _OUTPUTS.items():
            with contextlib.suppress(FileNotFoundError):
                files[suffix] = Path(outputs[option]).read_text(encoding="utf-8")

    def show(data: bytes) -> str:
        # messages name the recipe as it was given and the outputs as they will be named in the output
        # directory, not as the subprocess saw them
        text = data.decode("utf-8", errors="replace")
        return text.replace(recipe, task.path).replace(os.path.join(tmp, ""), "")

    out, err = show(stdout), show(stderr)
    if killed:
        verdict = f"killed after {seconds:.1f} s (budget {task.budget:g} s + {task.grace:g} s grace)"
        exit_status = None
    else:
        verdict = _verdict(proc.returncode, files.get(".json"), err)
        exit_status = proc.returncode
    command = shlex.join(["mirrorsym", "derive", task.path, "--budget", f"{task.budget:g}", *task.extra_args])
    parts = [f"$ {command}", out, err] + ([f"mirrorsym batch: {verdict}"] if killed else [])
    files[".log"] = "".join(part if part.endswith("\n") else part + "\n" for part in parts if part)
    return _Run(exit_status, killed, verdict, seconds, files)


def _result(future) -> _Run | Exception:
    """The task's result, or the exception that stopped the executor from producing one."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 -- one recipe the executor lost must not stop the batch
        return exc


def _run_local(tasks: Sequence[_Task], jobs: int) -> Iterator[tuple[_Task, _Run | Exception]]:
    """Each task in a thread of a pool of ``jobs``, yielded as it finishes."""
    reaper = _Reaper()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mirrorsym-batch")
    try:
        futures = {pool.submit(_run_one, task, reaper): task for task in tasks}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], _result(future)
    finally:
        reaper.close()  # a no-op after a complete batch; kills the stragglers of an interrupted one
        pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(tasks: Sequence[_Task], scheduler) -> Iterator[tuple[_Task, _Run | Exception]]:
    """Each task on the Dask cluster of ``scheduler`` (an address, or a ``distributed.Client`` used as is)."""
    try:
        import distributed
    except ImportError:
        raise ExecutorUnavailable("--executor dask needs Dask distributed: pip install mirrorsym[dask]") from None
    if isinstance(scheduler, distributed.Client):
        client, own = scheduler, False
    else:
        try:
            client, own = distributed.Client(scheduler), True
        except (OSError, ValueError) as exc:  # unreachable (OSError, TimeoutError) or malformed (ValueError)
            raise ExecutorUnavailable(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None
    futures = {}
    try:
        # pure=False: two tasks with equal arguments are still two runs, and a rerun is never cached
        futures = {client.submit(_run_one, task, pure=False): task for task in tasks}
        for future in distributed.as_completed(futures):
            yield futures[future], _result(future)
    finally:
        # a running subprocess still stops at its own budget + grace on the worker
        client.cancel(list(futures))
        if own:
            client.close()


def _store(out_dir: Path, task: _Task, run: _Run | Exception) -> RecipeOutcome:
    """Write a task's outputs into ``out_dir``, remove the ones of an earlier run it did not write, and
    return its outcome."""
    if isinstance(run, Exception):
        verdict = f"not run: {type(run).__name__}: {run}"
        run = _Run(None, False, verdict, 0.0, {".log": f"mirrorsym batch: {verdict}\n"})
    written = []
    for suffix in (*_OUTPUTS.values(), ".log"):
        path = out_dir / f"{task.name}{suffix}"
        if suffix in run.files:
            write_atomically(path, run.files[suffix])
            written.append(path)
        else:
            path.unlink(missing_ok=True)
    return RecipeOutcome(task.name, task.recipe, run.exit_status, run.verdict, run.seconds, tuple(written), run.killed)


def _check_arguments(jobs, budget, grace, executor, scheduler, extra_args) -> None:
    if not (isinstance(jobs, int) and not isinstance(jobs, bool) and jobs >= 1):
        raise RecipeError(f"jobs: expected a positive integer, got {jobs!r}")
    if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise RecipeError(f"budget: expected a positive number of seconds, got {budget!r}")
    if not (isinstance(grace, (int, float)) and math.isfinite(grace) and grace >= 0):
        raise RecipeError(f"grace: expected a non-negative number of seconds, got {grace!r}")
    if executor not in EXECUTORS:
        raise RecipeError(f"executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    if executor == "dask" and scheduler is None:
        raise RecipeError("executor 'dask' needs the address of a scheduler (--scheduler tcp://HOST:8786)")
    if executor == "local" and scheduler is not None:
        raise RecipeError("a scheduler is used only by the 'dask' executor (--executor dask)")
    for arg in extra_args:
        if not isinstance(arg, str):
            raise RecipeError(f"extra_args: expected strings, got {arg!r}")
        if arg.partition("=")[0] in _OWN_OPTIONS:
            raise RecipeError(f"extra_args: {arg!r} is set by the batch itself (per recipe, in the output directory)")


def _tasks(recipes: Sequence[str | os.PathLike], budget: float, grace: float, extra_args: tuple[str, ...],
           remote: bool) -> list[_Task]:
    """One task per recipe; every name is resolved, and checked to own its output files, before any runs."""
    if isinstance(recipes, (str, os.PathLike)) or not recipes:
        raise RecipeError(f"recipes: expected a non-empty list of recipe files or names, got {recipes!r}")
    tasks, given = [], {}
    for recipe in recipes:
        path = find_recipe(recipe)
        name = path.stem
        if name == Path(SUMMARY).stem:
            raise RecipeError(f"{recipe}: a recipe named {name!r} would overwrite the batch's {SUMMARY}; rename it")
        if name in given:
            raise RecipeError(f"{given[name]} and {recipe} would both write {name}.*; derive them in separate batches")
        given[name] = recipe
        data = None
        if remote:  # read here: the worker may not see this file system
            try:
                with path.open("rb") as f:
                    data = f.read(MAX_BYTES + 1)  # derive rejects a larger recipe: no need to ship more
            except OSError as exc:
                raise RecipeError(f"{recipe}: cannot read the recipe ({exc.strerror or exc})") from None
        tasks.append(_Task(name, os.fspath(recipe), str(path), float(budget), float(grace), extra_args, data))
    return tasks


def run_batch(recipes: Sequence[str | os.PathLike], out_dir: str | os.PathLike, jobs: int | None = None,
              budget: float = 60.0, executor: str = "local", scheduler=None, extra_args: Sequence[str] = (), *,
              grace: float = GRACE, on_done: Callable[[RecipeOutcome], None] | None = None) -> BatchResult:
    """Derive every recipe in its own ``mirrorsym derive`` process and write the outputs into ``out_dir``.

    ``recipes`` are files or names of shipped recipes; ``jobs`` (default: the number of CPUs) is the
    local executor's parallelism (on Dask the cluster's worker threads set it); ``budget`` is each
    recipe's ``--budget``, and its process is killed ``grace`` seconds past it. ``executor`` is
    ``"local"`` or ``"dask"`` (then ``scheduler`` is the scheduler's address, or a ``distributed.Client``).
    ``extra_args`` are passed to every ``derive`` (e.g. ``["--no-verify"]``). ``on_done`` is called
    with each outcome as its recipe finishes. Raises :class:`RecipeError` for bad arguments (an unknown
    recipe among them) and :class:`ExecutorUnavailable`, before any recipe runs; a recipe's own failure
    is its outcome, never an exception.
    """
    jobs = (os.cpu_count() or 1) if jobs is None else jobs
    extra_args = tuple(extra_args)
    _check_arguments(jobs, budget, grace, executor, scheduler, extra_args)
    tasks = _tasks(recipes, budget, grace, extra_args, remote=executor == "dask")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecipeError(f"{out_dir}: cannot create the output directory ({exc.strerror or exc})") from None
    start = time.monotonic()
    runs = _run_local(tasks, jobs) if executor == "local" else _run_dask(tasks, scheduler)
    outcomes = {}
    with contextlib.closing(runs):
        for task, run in runs:
            outcomes[task.name] = _store(out_dir, task, run)
            if on_done is not None:
                on_done(outcomes[task.name])
    result = BatchResult(tuple(outcomes[t.name] for t in tasks), out_dir, out_dir / SUMMARY, float(budget),
                         float(grace), executor, extra_args, time.monotonic() - start)
    write_atomically(result.summary, json.dumps(result.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return result


def _positive(kind: type) -> Callable[[str], int | float]:
    """An argparse type: a positive (and finite) ``kind``."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    return parse


def _param(text: str) -> str:
    """An argparse type: NAME=VALUE with a numeric VALUE, checked here so that no recipe runs in vain."""
    name, sep, value = text.partition("=")
    try:
        float(value)
    except ValueError:
        sep = ""
    if not (sep and name.strip()):
        raise argparse.ArgumentTypeError(f"--param expects NAME=VALUE with a numeric VALUE, got {text!r}")
    return text


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``mirrorsym batch`` to ``parser`` (read back by :func:`run_batch_cli`)."""
    parser.add_argument("recipes", nargs="+", metavar="RECIPE", help="recipe TOML files or names of shipped recipes")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help=f"output directory: NAME.json, NAME.tex, NAME.py, NAME.log per recipe, and {SUMMARY}")
    parser.add_argument("--jobs", "-j", metavar="N", type=_positive(int), default=None,
                        help="recipes derived at once by the local executor (default: the number of CPUs)")
    parser.add_argument("--budget", metavar="S", type=_positive(float), default=60.0,
                        help=f"time budget of each recipe in seconds (default 60); its process is killed {GRACE:g} s later")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="run on this machine (default) or on a Dask cluster (pip install mirrorsym[dask])")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--param", metavar="NAME=VALUE", action="append", type=_param, default=[],
                        help="override a parameter's default value in every recipe (repeatable)")
    parser.add_argument("--no-verify", action="store_true", help="skip the mpmath verification")
    parser.add_argument("--dps", type=_positive(int), help="digits for the verification (default 30)")
    parser.add_argument("--seed", type=int, help="seed of the verification's sample points (default 0)")


def run_batch_cli(args: argparse.Namespace) -> int:
    """Run ``mirrorsym batch``: progress on stderr, the summary table on stdout.

    Returns 0 when every recipe ran, whatever its outcome (the summary reports outcomes), 1 when the
    executor lost one. Bad arguments raise a :class:`MirrorsymError` with exit status 2.
    """
    extra = [arg for p in args.param for arg in ("--param", p)]
    extra += ["--no-verify"] if args.no_verify else []
    extra += ["--dps", str(args.dps)] if args.dps is not None else []
    extra += ["--seed", str(args.seed)] if args.seed is not None else []
    done = 0

    def progress(outcome: RecipeOutcome) -> None:
        nonlocal done
        done += 1
        print(f"[{done}/{len(args.recipes)}] {outcome.name}: {outcome.verdict} ({outcome.seconds:.1f} s)",
              file=sys.stderr, flush=True)

    result = run_batch(args.recipes, args.out, jobs=args.jobs, budget=args.budget, executor=args.executor,
                       scheduler=args.scheduler, extra_args=extra, on_done=progress)
    print("\n".join(result.table()))
    return 0 if result.all_ran else 1
