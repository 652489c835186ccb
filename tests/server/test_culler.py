"""The server's idle-kernel culler leaves a running search's kernels alone."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rest_helpers import fetch_json, frame_upload, wait_for_run


@pytest.fixture
def jp_server_config(runs_dir: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"sela_jupyter": True}},
        "MappingKernelManager": {"cull_idle_timeout": 2, "cull_interval": 1},
        "SelaApp": {"runs_dir": str(runs_dir), "kernel_keepalive_interval": 0.1},
    }


async def test_run_kernels_are_kept_active_so_the_culler_skips_them(
    jp_fetch: Any, jp_serverapp: Any, housing: pd.DataFrame
) -> None:
    body = {
        "target": "price",
        "data": frame_upload(housing),
        "options": {"rollouts": 6, "max_depth": 2, "parallel": 2},
    }
    run_id = (await fetch_json(jp_fetch, "runs", method="POST", body=json.dumps(body)))["id"]
    km = jp_serverapp.kernel_manager
    for _ in range(600):
        if km.list_kernel_ids():
            break
        await asyncio.sleep(0.1)
    kernel_ids = list(km.list_kernel_ids())
    for kernel_id in kernel_ids:  # pretend they have been idle for an hour
        km.get_kernel(kernel_id).last_activity = datetime.now(timezone.utc) - timedelta(hours=1)
    await asyncio.sleep(1.0)
    for kernel_id in kernel_ids:
        age = datetime.now(timezone.utc) - km.get_kernel(kernel_id).last_activity
        assert age < timedelta(seconds=2)
    run = await wait_for_run(jp_fetch, run_id)
    assert run["status"] == "finished" and run["simulations"] == 6
    assert not any("died" in (n.get("error") or "") for n in run["tree"]["nodes"])
