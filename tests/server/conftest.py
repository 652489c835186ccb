"""Fixtures for the server extension: pytest-jupyter's jp_* fixtures with sela_jupyter enabled."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 (jp_fetch, jp_serverapp, jp_ws_fetch, ...)


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """Where the server keeps runs in a test."""
    return tmp_path / "runs"


@pytest.fixture
def jp_server_config(runs_dir: Path) -> dict[str, Any]:
    """A server with the extension on, runs in ``runs_dir``, small defaults."""
    return {
        "ServerApp": {"jpserver_extensions": {"sela_jupyter": True}},
        "SelaApp": {"runs_dir": str(runs_dir), "default_rollouts": 2, "max_concurrent_runs": 2},
    }


@pytest.fixture
async def jp_asyncio_loop():
    """pytest-asyncio's loop, so the server and the async test share one loop."""
    return asyncio.get_running_loop()
