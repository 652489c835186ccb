"""Errors the engine raises on purpose, each with a message a user can act on."""

from __future__ import annotations


class SelaError(Exception):
    """Base class of every error the engine raises deliberately."""


class SelaInputError(SelaError, ValueError):
    """The data or options given to a run are unusable; the message names the problem."""


class SelaDataWarning(UserWarning):
    """Something about the data a person should look at, e.g. a column that leaks the target."""


class RunNotFoundError(SelaError, LookupError):
    """No run with the given id exists in the runs directory."""


class SelaRunError(SelaError):
    """A run ended without a single successful simulation: its kernels could not start, every
    simulation failed, or the time budget ran out before the first one finished. The message
    names the cause and what to do; ``run_id`` and ``run_dir`` (where known: a run on a server
    may live on another machine) say where the run and its ``run.log`` are."""

    def __init__(self, message: str, *, run_id: str, run_dir: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.run_dir = run_dir


class SimulationError(SelaError):
    """A simulation failed: a stage raised, timed out, or its kernel died."""

    def __init__(self, message: str, *, kind: str = "error", traceback: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.traceback = traceback


def describe(exc: BaseException) -> str:
    """``Name: message`` of an unexpected exception, on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
