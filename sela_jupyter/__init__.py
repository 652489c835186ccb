"""sela-jupyter: SELA-style automated ML pipeline search for JupyterLab."""

from __future__ import annotations

import logging

# A library prints nothing through logging unless its application asks (``sela`` shows warnings
# as one line each, the server extension forwards to the server's log, every run keeps a
# ``run.log``); without this, Python's last-resort handler would print tracebacks to stderr.
logging.getLogger(__name__).addHandler(logging.NullHandler())

try:
    from ._version import __version__
except ImportError:  # a source checkout that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "sela-jupyter"}]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    from .server.app import SelaApp

    return [{"module": "sela_jupyter.server.app", "app": SelaApp}]


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext sela_jupyter``: register the ``%sela`` / ``%%sela`` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str):  # lazy: importing the package stays cheap for the server extension
    if name in ("run", "open_run", "resume", "Run"):
        from .engine import api

        return getattr(api, name)
    if name in ("SelaError", "SelaRunError", "SelaDataWarning"):
        from .engine import errors

        return getattr(errors, name)
    raise AttributeError(f"module 'sela_jupyter' has no attribute {name!r}")


__all__ = [
    "Run",
    "SelaDataWarning",
    "SelaError",
    "SelaRunError",
    "__version__",
    "open_run",
    "resume",
    "run",
]
