"""Each run's own log, ``run.log`` in its directory: what the engine warned about while that run
searched, and the traceback of a failure, whatever else logs in the same process.

Tracebacks go to :data:`trace`, a logger that does not propagate: they belong in the run's log
(and on a console only when asked, ``sela --debug``), while the user sees one line naming the
cause. Records are told apart by run through a context variable, so two runs searching on one
server's event loop each get their own file.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

#: The run log's file name in the run directory.
RUN_LOG = "run.log"

#: The engine's package logger: every module's ``logging.getLogger(__name__)`` is below it.
ENGINE_LOGGER = "sela_jupyter"

#: Tracebacks of failures, for run logs and debug consoles only (never the default console).
trace = logging.getLogger(f"{ENGINE_LOGGER}.trace")
trace.propagate = False
trace.addHandler(logging.NullHandler())  # never Python's last-resort console printer

_current_run: ContextVar[str | None] = ContextVar("sela_current_run", default=None)

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def run_log(path: Path, run_id: str) -> Iterator[None]:
    """Append the engine's records of run ``run_id`` (made in this context and the tasks it
    starts) to ``path`` while the block runs. The file appears at the first record."""
    handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(lambda record: _current_run.get() == run_id)
    loggers = (logging.getLogger(ENGINE_LOGGER), trace)
    token = _current_run.set(run_id)
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()
        _current_run.reset(token)


class OneLineFormatter(logging.Formatter):
    """``sela: warning: message``, with no traceback: what a console user reads."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one ``sela: level: message`` line."""
        return f"sela: {record.levelname.lower()}: {record.getMessage()}"


class ForwardHandler(logging.Handler):
    """Hands each record to another logger's handlers (the Jupyter server's log, say)."""

    def __init__(self, target: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
        super().__init__()
        self.target = target.logger if isinstance(target, logging.LoggerAdapter) else target

    def emit(self, record: logging.LogRecord) -> None:
        """Pass ``record`` on, unchanged."""
        self.target.handle(record)


def log_to_console(stream: object, *, debug: bool = False) -> logging.Handler:
    """Show the engine's records on ``stream``: warnings as one line each, or (``debug``)
    every record from DEBUG up with its traceback, failures' tracebacks included."""
    handler = logging.StreamHandler(stream)  # type: ignore[arg-type]
    if debug:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.setLevel(logging.DEBUG)
        loggers = (logging.getLogger(ENGINE_LOGGER), trace)
    else:
        handler.setFormatter(OneLineFormatter())
        handler.setLevel(logging.WARNING)
        loggers = (logging.getLogger(ENGINE_LOGGER),)
    for logger in loggers:
        logger.addHandler(handler)
        if debug:
            logger.setLevel(logging.DEBUG)
    return handler
