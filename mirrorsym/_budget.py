"""Wall-clock budgets for symbolic steps that can run long.

sympy is pure Python, so a SIGALRM handler can interrupt it between bytecodes. The handler raises a
private ``BaseException`` (sympy swallows plain ``Exception`` in many places) and re-fires every 50 ms
until the protected block has been left; at the boundary it becomes a :class:`BudgetExceeded`.
Outside the main thread signals are unavailable; there the budget is only checked between steps.

>>> b = Budget(60.0)
>>> with b.step("expand", 1.0):
...     pass
>>> b.remaining() <= 60.0
True
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

from ._errors import BudgetExceeded

__all__ = ["Budget"]


class _Interrupt(BaseException):
    """Raised inside a budgeted block when its time is up (BaseException so sympy cannot swallow it)."""


def _handler(signum, frame):
    raise _Interrupt


class Budget:
    """An overall deadline, shared by every step of one derivation; steps nest."""

    def __init__(self, seconds: float | None = 60.0):
        self.total = float("inf") if seconds is None else float(seconds)
        self.start = time.monotonic()
        self._deadlines: list[float] = []

    def remaining(self) -> float:
        return self.total - (time.monotonic() - self.start)

    def check(self, step: str) -> None:
        """Raise :class:`BudgetExceeded` if the overall deadline has passed."""
        if self.remaining() <= 0:
            raise BudgetExceeded(step, self.total)

    def _arm(self) -> None:
        if self._deadlines and self._deadlines[-1] != float("inf"):
            delay = max(self._deadlines[-1] - time.monotonic(), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, delay, 0.05)
        else:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)

    @contextlib.contextmanager
    def step(self, name: str, seconds: float | None = None) -> Iterator[None]:
        """Run the block with at most ``seconds`` (and never past the enclosing deadlines)."""
        limit = self.remaining() if seconds is None else min(seconds, self.remaining())
        if limit <= 0:
            raise BudgetExceeded(name, seconds if seconds is not None else self.total)
        if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
            yield  # no signals here: the deadline is only checked after the block
            self.check(name)
            return
        deadline = time.monotonic() + limit
        if self._deadlines:
            deadline = min(deadline, self._deadlines[-1])
        outermost = not self._deadlines
        old = signal.signal(signal.SIGALRM, _handler) if outermost else None
        self._deadlines.append(deadline)
        self._arm()
        try:
            yield
        except _Interrupt:
            if time.monotonic() >= deadline - 1e-3 and (len(self._deadlines) < 2 or deadline < self._deadlines[-2]):
                raise BudgetExceeded(name, limit) from None
            if outermost:
                raise BudgetExceeded(name, limit) from None
            raise
        finally:
            self._deadlines.pop()
            if outermost:
                signal.setitimer(signal.ITIMER_REAL, 0, 0)
                signal.signal(signal.SIGALRM, old)
            else:
                self._arm()


def attempt(budget: Budget, name: str, seconds: float, fn, *args, **kwargs):
    """Call ``fn`` under a sub-budget; return ``(value, None)`` or ``(None, "reason")`` on timeout.

    Used where running out of time is an expected outcome (a strategy that may not finish), not an
    error: the caller falls back to the next strategy.
    """
    try:
        with budget.step(name, seconds):
            return fn(*args, **kwargs), None
    except BudgetExceeded as exc:
        if budget.remaining() <= 0:
            raise
        return None, str(exc)
