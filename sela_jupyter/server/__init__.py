"""jupyter_server extension: REST and live events over the SELA engine (see ``openapi.yaml``)."""

from __future__ import annotations

from .app import SelaApp

__all__ = ["SelaApp"]
