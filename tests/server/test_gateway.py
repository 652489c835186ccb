"""With GatewayClient.url set, a run's child kernels live on the gateway and the run finishes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rest_helpers import fetch_json, frame_upload, wait_for_run
from server_process import free_port

BIN = Path(sys.executable).parent


def gateway_kernels(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/api/kernels", timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A local Jupyter Kernel Gateway on 127.0.0.1 with no token."""
    port = free_port()
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter-kernelgateway"),
            "--ip=127.0.0.1",
            f"--port={port}",
            "--KernelGatewayApp.allow_origin=*",
            "--JupyterWebsocketPersonality.list_kernels=True",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            gateway_kernels(url)
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(log.read_text()) from None
            time.sleep(0.3)
    yield url
    proc.terminate()
    proc.wait(30)


@pytest.fixture
def jp_server_config(runs_dir: Path, gateway: str) -> Any:
    from jupyter_server.gateway.gateway_client import GatewayClient

    # A process-wide singleton: drop the one earlier servers made, and ours afterwards.
    GatewayClient.clear_instance()
    yield {
        "ServerApp": {"jpserver_extensions": {"sela_jupyter": True}},
        "GatewayClient": {"url": gateway, "request_timeout": 60.0},
        "SelaApp": {"runs_dir": str(runs_dir)},
    }
    GatewayClient.clear_instance()


async def test_run_creates_its_kernels_on_the_gateway_and_finishes(
    jp_fetch: Any, jp_serverapp: Any, gateway: str, housing: pd.DataFrame
) -> None:
    assert type(jp_serverapp.kernel_manager).__name__ == "GatewayMappingKernelManager"
    body = {
        "target": "price",
        "data": frame_upload(housing),
        "options": {"rollouts": 2, "max_depth": 1},
    }
    run_id = (await fetch_json(jp_fetch, "runs", method="POST", body=json.dumps(body)))["id"]
    on_gateway: set[str] = set()
    while True:  # poll the gateway while the run searches
        on_gateway |= {k["id"] for k in gateway_kernels(gateway)}
        run = await fetch_json(jp_fetch, "runs", run_id)
        if not run["active"]:
            break
        await asyncio.sleep(0.2)
    run = await wait_for_run(jp_fetch, run_id)
    assert on_gateway, "no kernel ever appeared on the gateway"
    assert run["status"] == "finished" and run["simulations"] == 2
    assert all(n["status"] == "done" for n in run["tree"]["nodes"] if n["status"] != "queued")
    assert gateway_kernels(gateway) == []  # shut down on the gateway when the run ended
