"""The exceptions mirrorsym raises.

A small hierarchy: every error is a :class:`MirrorsymError` *and* the builtin exception a caller would
naturally catch (``ValueError`` for bad input, ``TimeoutError`` for a budget, ``ArithmeticError`` for a
failed numerical proof). The command line maps each class to one exit status.
"""

from __future__ import annotations


class MirrorsymError(Exception):
    """Base class of every error mirrorsym raises on purpose."""

    exit_status = 1


class RecipeError(MirrorsymError, ValueError):
    """The input (a recipe file or API arguments) is malformed; the message names the key and text.

    >>> raise RecipeError("parametrization[0]: unknown function 'foo' in 'foo(u)'")
    Traceback (most recent call last):
    ...
    mirrorsym._errors.RecipeError: parametrization[0]: unknown function 'foo' in 'foo(u)'
    """

    exit_status = 2


class DegenerateError(MirrorsymError, ValueError):
    """The mathematics of the input is degenerate (rank-deficient J at x0, d > D, ...)."""

    exit_status = 2


class DomainError(MirrorsymError, ValueError):
    """A point lies outside the domain of a potential (w outside dom R, mu outside U)."""

    exit_status = 2


class BudgetExceeded(MirrorsymError, TimeoutError):
    """A symbolic step did not finish inside its time budget; ``step`` names it."""

    exit_status = 5

    def __init__(self, step: str, seconds: float):
        self.step = step
        self.seconds = seconds
        super().__init__(f"step '{step}' ran out of its time budget ({seconds:.3g} s)")


class Unsupported(MirrorsymError, NotImplementedError):
    """mirrorsym has no method for this case (the message says which and why)."""

    exit_status = 5


class VerificationFailed(MirrorsymError, ArithmeticError):
    """A derived formula failed its high-precision numerical check."""

    exit_status = 4
