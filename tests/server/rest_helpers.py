"""Helpers for the REST tests (imported by the test modules of this directory)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import time
from typing import Any

import pandas as pd


def frame_upload(frame: pd.DataFrame) -> dict[str, str]:
    """A frame as the ``parquet_base64`` upload of a start request."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return {"parquet_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}


async def fetch_json(jp_fetch: Any, *parts: str, **kwargs: Any) -> Any:
    """``jp_fetch`` under ``sela/api`` returning the decoded JSON body."""
    response = await jp_fetch("sela", "api", *parts, **kwargs)
    return json.loads(response.body) if response.body else None


async def wait_for_run(
    jp_fetch: Any,
    run_id: str,
    *,
    until: tuple[str, ...] = ("finished", "stopped", "failed"),
    timeout: float = 180.0,
) -> dict[str, Any]:
    """Poll ``GET /sela/api/runs/{id}`` until its status is one of ``until`` and it is idle."""
    deadline = time.monotonic() + timeout
    while True:
        run = await fetch_json(jp_fetch, "runs", run_id)
        if run["status"] in until and not run["active"]:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {timeout} s")
        await asyncio.sleep(0.3)
