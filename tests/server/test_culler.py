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
        "options": {"rollouts": 200, "max_depth": 2, "parallel": 2},
    }
    run_id = (await fetch_json(jp_fetch, "runs", method="POST", body=json.dumps(body)))["id"]
    # Once a simulation has finished, the pool's kernels are all started and warm: a kernel that
    # died on start (a port race under load) has already been replaced and is gone from the list.
    await wait_for_simulations(jp_fetch, run_id, 1)
    km = jp_serverapp.kernel_manager
    kernel_ids = list(km.list_kernel_ids())
    assert len(kernel_ids) == 2
    for kernel_id in kernel_ids:  # pretend they have been idle for an hour
        km.get_kernel(kernel_id).last_activity = datetime.now(timezone.utc) - timedelta(hours=1)
    await asyncio.sleep(1.5)  # the culler looks every second and culls after two idle seconds
    assert set(kernel_ids) <= set(km.list_kernel_ids()), "the culler shut down a run's kernel"
    for kernel_id in kernel_ids:
        age = datetime.now(timezone.utc) - km.get_kernel(kernel_id).last_activity
        assert age < timedelta(seconds=2)
    await fetch_json(jp_fetch, "runs", run_id, "stop", method="POST", body="{}")
    run = await wait_for_run(jp_fetch, run_id)
    assert run["status"] == "stopped" and run["simulations"] >= 1
    assert not any("died" in (n.get("error") or "") for n in run["tree"]["nodes"])


async def wait_for_simulations(jp_fetch: Any, run_id: str, count: int) -> None:
    """Poll the run until ``count`` simulations have finished."""
    for _ in range(1200):
        run = await fetch_json(jp_fetch, "runs", run_id)
        if run["simulations"] >= count:
            return
        assert run["status"] == "running", run["status"]
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} finished no simulation in 120 s")
