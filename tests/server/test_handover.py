"""The magic's REST client hands a DataFrame over as a file (same host) or as an upload."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import pytest
from rest_helpers import wait_for_run

from sela_jupyter.magics import ServerBackend
from sela_jupyter.server.manager import RunManager


@pytest.mark.parametrize(("same_host", "expected"), [(True, "file"), (False, "parquet_base64")])
async def test_client_hands_the_frame_over_by_file_or_upload(
    jp_fetch: Any,
    jp_serverapp: Any,
    jp_base_url: str,
    jp_http_port: int,
    jp_auth_header: dict[str, str],
    housing: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    same_host: bool,
    expected: str,
) -> None:
    seen: list[str] = []
    original = RunManager.read_frame

    def spy(self: RunManager, spec: Any, what: str = "data") -> Any:
        if spec is not None:
            seen.extend(spec)
        return original(self, spec, what)

    monkeypatch.setattr(RunManager, "read_frame", spy)
    token = jp_auth_header["Authorization"].split()[1]
    backend = ServerBackend(
        f"http://localhost:{jp_http_port}{jp_base_url}", token, same_host=same_host
    )
    loop = asyncio.get_running_loop()  # the client blocks: keep it off the server's loop
    run_id = await loop.run_in_executor(
        None,
        lambda: backend.start(housing, "price", options={"rollouts": 1, "max_depth": 1}),
    )
    assert seen == [expected]
    run = await wait_for_run(jp_fetch, run_id)
    assert run["status"] == "finished"
    script = await loop.run_in_executor(None, backend.script, run_id, "best")
    assert "# %% evaluation" in script
