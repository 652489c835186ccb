"""The server under concurrency and faults, driven over HTTP as other processes would: malformed
and fuzzed requests, admission and the run queue, a server killed mid-run and restarted, and
requests answered while a large upload is decoded."""

from __future__ import annotations

import base64
import io
import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_process import JupyterServer, send, start_server

from sela_jupyter.engine.options import REQUEST_OPTIONS

RUNS = "sela/api/runs"


def upload(frame: pd.DataFrame) -> dict[str, str]:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return {"parquet_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}


def post(server: JupyterServer, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, reply = send("POST", server.url + path, server.token, raw)
    return status, json.loads(reply) if reply else {}


def wait_until(server: JupyterServer, run_id: str, *statuses: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = server.api("GET", f"{RUNS}/{run_id}")
        if run["status"] in statuses and not (run["status"] == "running" and not run["active"]):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """One server for the module's fuzzing: runs of one simulation, no queue."""
    tmp = tmp_path_factory.mktemp("server")
    server = start_server(
        tmp,
        "--SelaApp.default_rollouts=1",
        "--SelaApp.default_max_depth=1",
        "--SelaApp.max_queued_runs=0",
    )
    yield server
    server.stop()


# -- malformed and fuzzed requests ------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"target": "price", "data": {"parquet_base64": 5}}, "must be a base64 string"),
        ({"target": "price", "data": {"parquet_base64": None}}, "must be a base64 string"),
        ({"target": "price", "data": {"file": "x.parquet"}, "options": "fast"}, "'options'"),
        ({"target": "price", "data": {"file": "x.parquet"}, "options": [1]}, "'options'"),
        (b'{"target": "price", "options": {"rollouts": Infinity}}', "Infinity"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"target": "price", "data": {"file": "x"}, "name": 3}', "'name' must be a string"),
    ],
)
def test_malformed_start_requests_get_400_with_a_message(
    server: JupyterServer, body: Any, message: str
) -> None:
    status, reply = post(server, RUNS, body)
    assert status == 400, reply
    assert message in reply["message"]


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
DATA = JSON | st.fixed_dictionaries(
    {}, optional={"file": JSON | st.text(max_size=20), "parquet_base64": JSON | st.text()}
)
START = st.fixed_dictionaries(
    {},
    optional={
        "target": JSON | st.sampled_from(["price", "y", ""]),
        "data": DATA,
        "test": DATA,
        "options": JSON | st.dictionaries(st.sampled_from(sorted(REQUEST_OPTIONS)), JSON),
        "name": JSON,
        "task": JSON | st.sampled_from(["regression", "binary", "multiclass"]),
        "metric": JSON | st.sampled_from(["rmse", "f1"]),
        "description": JSON,
        "source": JSON,
    },
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=START | JSON | st.binary(max_size=64))
def test_no_start_request_gets_a_server_error(server: JupyterServer, body: Any) -> None:
    runs = server.root / ".sela" / "runs"
    before = set(runs.glob("*"))
    status, reply = post(server, RUNS, body)
    assert 400 <= status < 500, reply
    assert reply.get("message")
    assert set(runs.glob("*")) == before  # a refused request leaves nothing behind


@pytest.fixture(scope="module")
def a_run(server: JupyterServer, housing_module: pd.DataFrame) -> dict[str, Any]:
    status, run = post(server, RUNS, {"target": "price", "data": upload(housing_module)})
    assert status == 201, run
    return wait_until(server, run["id"], "finished")


@pytest.fixture(scope="module")
def housing_module() -> pd.DataFrame:
    return pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "housing.csv")


@FUZZ
@given(
    body=JSON | st.fixed_dictionaries({}, optional={"text": JSON}) | st.binary(max_size=64),
    node=st.sampled_from(["n0", "n1", "n999", "..", "n0;rm"]),
    verb=st.sampled_from(["insights", "prune", "pin"]),
)
def test_no_steering_request_gets_a_server_error(
    server: JupyterServer, a_run: dict[str, Any], body: Any, node: str, verb: str
) -> None:
    status, reply = post(server, f"{RUNS}/{a_run['id']}/nodes/{node}/{verb}", body)
    assert status < 500, reply
    if status >= 400:
        assert reply.get("message")


# -- admission, the queue, stop -----------------------------------------------------------------
def test_runs_past_the_slots_queue_in_order_and_past_the_queue_are_refused_leaving_nothing(
    tmp_path: Path, housing: pd.DataFrame
) -> None:
    server = start_server(
        tmp_path,
        "--SelaApp.max_concurrent_runs=1",
        "--SelaApp.max_queued_runs=1",
        "--SelaApp.default_rollouts=2",
        "--SelaApp.default_max_depth=1",
    )
    try:
        body = json.dumps({"target": "price", "data": upload(housing)}).encode()
        replies: list[tuple[int, dict[str, Any]]] = []
        threads = [
            threading.Thread(target=lambda: replies.append(post(server, RUNS, body)))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        codes = sorted(status for status, _ in replies)
        assert codes == [201, 201, 429, 429], replies
        refused = [reply for status, reply in replies if status == 429]
        assert all("max_queued_runs is 1" in reply["message"] for reply in refused)
        runs_dir = server.root / ".sela" / "runs"
        assert len(list(runs_dir.glob("*/run.json"))) == 2  # the refused left nothing

        accepted = sorted((r for s, r in replies if s == 201), key=lambda r: r["created"])
        first, second = accepted if accepted[0]["status"] != "queued" else accepted[::-1]
        assert second["status"] == "queued"
        listed = {r["id"]: r["status"] for r in server.api("GET", RUNS)["runs"]}
        assert listed[second["id"]] in ("queued", "running", "finished")
        done = [wait_until(server, r["id"], "finished") for r in (first, second)]
        assert done[0]["timings"]["finished"] <= done[1]["timings"]["finished"]
    finally:
        server.stop()


def test_stop_with_parallel_kernels_leaves_no_node_running(
    tmp_path: Path, housing: pd.DataFrame
) -> None:
    server = start_server(tmp_path)
    try:
        for _ in range(2):
            options = {"rollouts": 20, "parallel": 2, "max_depth": 2}
            status, run = post(
                server, RUNS, {"target": "price", "data": upload(housing), "options": options}
            )
            assert status == 201, run
            deadline = time.monotonic() + 120
            while server.api("GET", f"{RUNS}/{run['id']}")["simulations"] < 2:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            status, stopped = post(server, f"{RUNS}/{run['id']}/stop", {})
            assert status == 200 and stopped["status"] == "stopped"
            nodes = server.api("GET", f"{RUNS}/{run['id']}")["tree"]["nodes"]
            assert all(n["status"] != "running" for n in nodes)
            stored = json.loads(
                (server.root / ".sela" / "runs" / run["id"] / "tree.json").read_text()
            )
            assert all(n["status"] != "running" for n in stored["nodes"])
    finally:
        server.stop()


# -- a server killed mid-run ----------------------------------------------------------------------
def test_a_run_of_a_killed_server_is_interrupted_then_resumes_where_it_was(
    tmp_path: Path, housing: pd.DataFrame
) -> None:
    args = ("--SelaApp.default_max_depth=2",)
    server = start_server(tmp_path, *args)
    status, run = post(
        server, RUNS, {"target": "price", "data": upload(housing), "options": {"rollouts": 12}}
    )
    assert status == 201, run
    run_dir = server.root / ".sela" / "runs" / run["id"]
    deadline = time.monotonic() + 120
    while json.loads((run_dir / "run.json").read_text())["simulations"] < 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    before = json.loads((run_dir / "run.json").read_text())
    kernel_files = before["kernel_files"]
    assert kernel_files and all(Path(f).is_file() for f in kernel_files)
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(30)
    time.sleep(1)  # the orphaned kernels notice their parent is gone

    server = start_server(tmp_path, *args, root=server.root)
    try:
        listed = {r["id"]: r for r in server.api("GET", RUNS)["runs"]}
        assert listed[run["id"]]["status"] == "interrupted" and not listed[run["id"]]["active"]
        nodes = server.api("GET", f"{RUNS}/{run['id']}")["tree"]["nodes"]
        assert all(n["status"] != "running" for n in nodes)
        assert not any(Path(f).exists() for f in kernel_files)  # the dead kernels' files
        status, _ = post(server, f"{RUNS}/{run['id']}/resume", {})
        assert status == 202
        finished = wait_until(server, run["id"], "finished")
        assert finished["simulations"] == 12
        assert finished["timings"]["elapsed"] >= before["timings"]["elapsed"] > 0
    finally:
        server.stop()


# -- the event loop stays free ------------------------------------------------------------------
def test_requests_are_answered_while_a_large_upload_is_decoded(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--SelaApp.max_queued_runs=0")
    try:
        rng = np.random.default_rng(0)
        big = pd.DataFrame(rng.normal(size=(400_000, 12)), columns=[f"x{i}" for i in range(12)])
        big["y"] = rng.normal(size=len(big))
        body = json.dumps({"target": "missing", "data": upload(big)}).encode()  # 400 at the end
        answered: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                started = time.monotonic()
                status, _ = send("GET", server.url + "sela/api/info", server.token, None)
                assert status == 200
                answered.append(time.monotonic() - started)
                time.sleep(0.01)

        poller = threading.Thread(target=poll)
        poller.start()
        started = time.monotonic()
        status, reply = post(server, RUNS, body)
        took = time.monotonic() - started
        done.set()
        poller.join(30)
        assert status == 400 and "missing" in reply["message"]
        assert took > 0.3 and len(answered) >= 5
        assert max(answered) < max(0.25, took / 2), (took, max(answered))
    finally:
        server.stop()
