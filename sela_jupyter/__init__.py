"""sela-jupyter: SELA-style automated ML pipeline search for JupyterLab."""

from __future__ import annotations

try:
    from ._version import __version__
except ImportError:  # a source checkout that was never built
    __version__ = "0.0.0.dev0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "sela-jupyter"}]


def __getattr__(name: str):  # lazy: importing the package stays cheap for the server extension
    if name in ("run", "open_run", "resume", "Run"):
        from .engine import api

        return getattr(api, name)
    raise AttributeError(f"module 'sela_jupyter' has no attribute {name!r}")


__all__ = ["Run", "__version__", "open_run", "resume", "run"]
