"""``%sela``: option checks, a real kernel of a real jupyter_server, and the in-process fallback."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from server_process import JupyterServer, http

from sela_jupyter.magics import SelaMagics, parse_line

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# -- option checks --------------------------------------------------------------------------------
@pytest.fixture
def magics(housing: pd.DataFrame) -> SelaMagics:
    shell = InteractiveShell.instance()
    shell.user_ns.update({"df": housing, "numbers": [1, 2, 3]})
    return SelaMagics(shell=shell)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("df target=price colour=red", "unknown option(s) colour"),
        ("df rollouts=2", "missing target"),
        ("numbers target=price", "not a pandas DataFrame"),
        ("df target=prise", "did you mean 'price'"),
        ("df target=price budget=soon", "cannot read the time budget"),
        ("df target=price rollouts=many", "rollouts must be a whole number"),
        ("df target=price cv_folds=three", "cv_folds must be a whole number"),
        ("nothing target=price", "no variable 'nothing'"),
        ("", "give a DataFrame and a target"),
    ],
)
def test_bad_lines_print_one_clear_error_and_start_nothing(
    magics: SelaMagics, capsys: Any, line: str, message: str
) -> None:
    assert magics.sela(line) is None
    assert message in capsys.readouterr().out
    assert magics._backend is None  # nothing was discovered, started or uploaded


def test_the_profile_before_a_run_comes_from_the_runs_own_split() -> None:
    from sela_jupyter.engine.task import prepare_data

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"id": np.arange(60), "x": rng.normal(size=60)})
    frame["y"] = np.arange(60) * 0.05 + rng.normal(size=60)  # the row id tracks y
    shell = InteractiveShell.instance()
    shell.user_ns.update({"rows": frame.iloc[:45], "later": frame.iloc[45:].drop(columns="y")})
    magics = SelaMagics(shell=shell)

    def shown(line: str) -> str:
        return magics.profile(*magics.start_fields(line.split()[:1], parse_line(line)[1], None))

    def run_sees(**kwargs: Any) -> str:
        return prepare_data(frame.iloc[:45], "y", **kwargs).profile.summary()

    assert run_sees(seed=3) != run_sees(seed=0)  # the split moves the row id's evidence
    assert shown("rows target=y seed=3").startswith(run_sees(seed=3))
    assert shown("rows target=y test=later").startswith(
        run_sees(test=frame.iloc[45:].drop(columns="y"))
    )


def test_parse_line_splits_words_and_options() -> None:
    assert parse_line("df target=price name='my run'") == (
        ["df"],
        {"target": "price", "name": "my run"},
    )


# -- a kernel driven over a server's websocket ----------------------------------------------------
def execute_ws(ws: Any, code: str, timeout: float = 120.0) -> str:
    """Run ``code`` over a kernel websocket; its text output (errors raise)."""
    msg_id = uuid.uuid4().hex
    ws.send(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "test",
                    "session": "test",
                    "msg_type": "execute_request",
                    "version": "5.3",
                    "date": "",
                },
                "parent_header": {},
                "metadata": {},
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": True,
                    "user_expressions": {},
                    "allow_stdin": False,
                },
                "channel": "shell",
                "buffers": [],
            }
        )
    )
    out: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id or msg["channel"] != "iopub":
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind in ("execute_result", "display_data"):
            out.append(content["data"].get("text/plain", "") + "\n")
        elif kind == "error":
            raise AssertionError("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out)
    raise AssertionError(f"no reply to {code!r} within {timeout} s")


def test_magic_in_a_server_kernel_runs_on_that_server(
    jupyter_server: JupyterServer, tmp_path: Path
) -> None:
    import websocket

    url, token, root = jupyter_server.url, jupyter_server.token, jupyter_server.root
    session = http(
        "POST",
        url + "api/sessions",
        token,
        {
            "path": "demo.ipynb",
            "type": "notebook",
            "name": "demo.ipynb",
            "kernel": {"name": "python3"},
        },
    )
    kernel_id = session["kernel"]["id"]
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{url.split(':')[2].rstrip('/')}/api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {token}"],
    )
    try:
        execute_ws(ws, f"import pandas as pd\ndf = pd.read_csv({str(EXAMPLES / 'housing.csv')!r})")
        execute_ws(ws, "%load_ext sela_jupyter")
        started = time.monotonic()
        out = execute_ws(ws, "%sela df target=price rollouts=4")
        returned_in = time.monotonic() - started
        assert f"searching on {url}" in out, out
        runs = http("GET", url + "sela/api/runs", token)["runs"]
        assert len(runs) == 1 and runs[0]["id"] in out
        run_id = runs[0]["id"]
        assert runs[0]["source"] == "%sela df"
        # the kernel is free while the server searches
        assert execute_ws(ws, "print(1 + 1)").strip() == "2"
        waited = execute_ws(ws, f"_ = %sela wait {run_id}")
        assert "finished" in waited
        run = http("GET", url + f"sela/api/runs/{run_id}", token)
        assert run["status"] == "finished" and run["simulations"] == 4
        assert returned_in < run["timings"]["elapsed"]
        assert (root / ".sela" / "runs" / run_id / "run.json").is_file()
        assert not list((root / ".sela" / "runs" / ".incoming").glob("*"))  # handed over as a file
        execute_ws(ws, f"%sela export {run_id} {tmp_path / 'best.py'}")
        assert "# %% evaluation" in (tmp_path / "best.py").read_text()
    finally:
        ws.close()
        http("DELETE", url + f"api/sessions/{session['id']}", token)
    assert http("GET", url + "api/kernels", token) == []


def test_magic_without_a_server_runs_the_engine_in_the_kernel(tmp_path: Path) -> None:
    from jupyter_client.manager import KernelManager

    env = {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID", "SELA_SERVER_URL")}
    km = KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path), env=env)
    client = km.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)

        def run(code: str) -> str:
            out: list[str] = []

            def hook(msg: dict[str, Any]) -> None:
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    out.append("\n".join(msg["content"]["traceback"]))

            reply = client.execute_interactive(code, timeout=180, output_hook=hook)
            assert reply["content"]["status"] == "ok", "".join(out)
            return "".join(out)

        run(f"import pandas as pd\ndf = pd.read_csv({str(EXAMPLES / 'housing.csv')!r})")
        run("%load_ext sela_jupyter")
        out = run("%sela df target=price rollouts=2 max_depth=1")
        assert "searching on this kernel" in out, out
        assert "regression" in out and "rmse" in out  # the compact profile
        # the magic returned while the search goes on in the background
        assert run("runs = %sela runs\nprint(runs.active.tolist())").strip() == "[True]"
        waited = run("_ = %sela wait")
        assert "finished, 2 simulations" in waited, waited
        runs = list((tmp_path / ".sela" / "runs").glob("*/run.json"))
        assert len(runs) == 1
        assert json.loads(runs[0].read_text())["status"] == "finished"
        run("%sela insert")  # set_next_input: no error outside a frontend
        run("%sela df target=price budget=0.1s name=doomed")  # too short for one simulation
        failed = run("_ = %sela wait doomed")
        assert failed.startswith("sela: run "), failed
        assert "failed: the time budget (0.1 s) ran out before the first simulation" in failed
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
