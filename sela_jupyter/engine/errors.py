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


class SimulationError(SelaError):
    """A simulation failed: a stage raised, timed out, or its kernel died."""

    def __init__(self, message: str, *, kind: str = "error", traceback: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.traceback = traceback
