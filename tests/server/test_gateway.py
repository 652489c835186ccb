"""Runs whose kernels live on a gateway: a local Kernel Gateway, and an Enterprise Gateway whose
kernels cannot see the server's disk (see :mod:`gateways`).

With ``GatewayClient.url`` set, a run's kernels start on the gateway, every file a simulation
needs travels over the kernel connection, every node's notebook is kept on the server, export
and Insert work, and a kernel killed mid-simulation fails its node only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from gateways import Gateway, enterprise_gateway, isolation_problem, kernel_gateway
from rest_helpers import fetch_json, frame_upload, wait_for_run


@pytest.fixture(scope="module")
def gateway_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runs directory of every server in this module (the isolated kernels hide it)."""
    return tmp_path_factory.mktemp("gateway-runs")


@pytest.fixture(scope="module", params=["kernel gateway", "enterprise gateway"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gateway_runs: Path
) -> Iterator[Gateway]:
    """Each gateway in turn, started once for the module's tests."""
    root = tmp_path_factory.mktemp("gateway")
    if request.param == "kernel gateway":
        with kernel_gateway(root) as running:
            yield running
        return
    problem = isolation_problem()
    if problem is not None:
        pytest.skip(f"kernels cannot be isolated from the server's disk: {problem}")
    with enterprise_gateway(root, gateway_runs) as running:
        yield running


@pytest.fixture
def runs_dir(gateway_runs: Path) -> Path:
    return gateway_runs


@pytest.fixture
def jp_server_config(runs_dir: Path, gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Any:
    from jupyter_server.gateway.gateway_client import GatewayClient

    # A process-wide singleton: drop the one earlier servers made, and ours afterwards. A test
    # server's teardown can still make a new one, unconfigured, while the next test's server
    # runs: the environment gives that one the gateway too.
    GatewayClient.clear_instance()
    monkeypatch.setenv("JUPYTER_GATEWAY_URL", gateway.url)
    monkeypatch.setenv("JUPYTER_GATEWAY_REQUEST_TIMEOUT", "120")
    yield {
        "ServerApp": {"jpserver_extensions": {"sela_jupyter": True}},
        "GatewayClient": {"url": gateway.url, "request_timeout": 120.0},
        "SelaApp": {"runs_dir": str(runs_dir), "kernel_name": gateway.kernel_name},
    }
    GatewayClient.clear_instance()


async def start_run(jp_fetch: Any, frame: pd.DataFrame, **options: Any) -> str:
    body = {"target": "price", "data": frame_upload(frame), "options": options}
    return (await fetch_json(jp_fetch, "runs", method="POST", body=json.dumps(body)))["id"]


def done_nodes(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in run["tree"]["nodes"] if n["status"] == "done"]


async def test_a_run_on_the_gateway_keeps_its_notebooks_and_exports(
    jp_fetch: Any, jp_serverapp: Any, gateway: Gateway, housing: pd.DataFrame
) -> None:
    assert type(jp_serverapp.kernel_manager).__name__ == "GatewayMappingKernelManager"
    run_id = await start_run(jp_fetch, housing, rollouts=6, parallel=2, max_depth=2)
    on_gateway: set[str] = set()
    while True:  # poll the gateway while the run searches
        on_gateway |= {k["id"] for k in gateway.kernels()}
        if not (await fetch_json(jp_fetch, "runs", run_id))["active"]:
            break
        await asyncio.sleep(0.2)
    run = await wait_for_run(jp_fetch, run_id)

    assert len(on_gateway) >= 2, "the run's two kernels never appeared on the gateway"
    assert run["status"] == "finished" and run["simulations"] == 6, run.get("error")
    assert all(n["status"] == "done" for n in run["tree"]["nodes"] if n["status"] != "queued")
    for node in done_nodes(run):
        detail = await fetch_json(jp_fetch, "runs", run_id, "nodes", node["id"])
        assert Path(detail["notebook"]).is_file(), node["id"]
        assert detail["timings"]["transfer"] > 0, node["id"]  # predictions came back
    best = run["best"]["node"]
    snapshot = Path(jp_serverapp.web_app.settings["sela_run_manager"].store.root)
    assert list((snapshot / run_id).rglob("predictions.pkl")), "no predictions came back"

    # Insert (the sidebar's cells) and the .ipynb export
    cells = await fetch_json(
        jp_fetch, "runs", run_id, "export", params={"format": "cells", "node": best}
    )
    assert "evaluation" in [c["role"] for c in cells["cells"]]
    response = await jp_fetch(
        "sela", "api", "runs", run_id, "export", params={"format": "ipynb", "node": best}
    )
    notebook = nbformat.reads(response.body.decode(), as_version=4)
    assert any("pipeline.fit" in c.source for c in notebook.cells if c.cell_type == "code")
    final = await fetch_json(jp_fetch, "runs", run_id, "export", params={"format": "cells"})
    assert final["cells"]
    assert gateway.kernels() == []  # shut down on the gateway when the run ended


async def test_a_kernel_killed_mid_simulation_fails_its_node_and_the_run_goes_on(
    jp_fetch: Any, jp_serverapp: Any, gateway: Gateway, housing: pd.DataFrame
) -> None:
    run_id = await start_run(jp_fetch, housing, rollouts=12, parallel=2, max_depth=2)
    kills = 0
    failed: list[dict[str, Any]] = []
    while True:
        run = await fetch_json(jp_fetch, "runs", run_id)
        if not run["active"]:
            break
        failed = [n for n in run["tree"]["nodes"] if n["status"] == "failed"]
        # Once a node is done, kill a kernel in the middle of a fit (one that computes), until
        # a kill lands in a simulation (one can land just as it ends).
        busy = gateway.computing_kernel() if not failed and done_nodes(run) and kills < 4 else None
        if busy is not None:
            gateway.kill_kernel(busy)
            kills += 1
            for _ in range(50):  # until its node fails (or 10 s: the kill fell between two)
                await asyncio.sleep(0.2)
                run = await fetch_json(jp_fetch, "runs", run_id)
                if any(n["status"] == "failed" for n in run["tree"]["nodes"]):
                    break
        await asyncio.sleep(0.1)
    run = await wait_for_run(jp_fetch, run_id)

    failed = [n for n in run["tree"]["nodes"] if n["status"] == "failed"]
    assert kills and len(failed) == 1, (kills, failed)
    detail = await fetch_json(jp_fetch, "runs", run_id, "nodes", failed[0]["id"])
    assert "kernel died" in json.dumps(detail)
    assert run["status"] == "finished", run.get("error")
    assert run["simulations"] == 12 and len(done_nodes(run)) >= 10


async def test_a_gateway_restart_fails_only_what_ran_and_the_run_goes_on(
    jp_fetch: Any, jp_serverapp: Any, gateway: Gateway, housing: pd.DataFrame
) -> None:
    run_id = await start_run(jp_fetch, housing, rollouts=10, parallel=2, max_depth=2)
    restarted = False
    while True:
        run = await fetch_json(jp_fetch, "runs", run_id)
        if not run["active"]:
            break
        if not restarted and len(done_nodes(run)) >= 2:
            # Every kernel goes down with the gateway; the pool starts new ones once it is back.
            await asyncio.get_running_loop().run_in_executor(None, gateway.restart)
            restarted = True
        await asyncio.sleep(0.2)
    run = await wait_for_run(jp_fetch, run_id, timeout=300)

    assert restarted and run["status"] == "finished", run.get("error")
    failed = [n for n in run["tree"]["nodes"] if n["status"] == "failed"]
    assert len(failed) <= 2  # at most the two simulations running when it went down
    assert run["simulations"] == 10 and len(done_nodes(run)) >= 8
