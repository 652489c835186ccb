"""The `sela` command as a user runs it: bad input, a run, SIGKILL mid-search, resume, export."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from new_user import new_user_env

SELA = [sys.executable, "-m", "sela_jupyter.cli"]


def sela(
    *args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SELA, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def write(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    ("content", "target", "message"),
    [
        ("a,b\n1,2\n", "price", "target column 'price' not found"),
        ("a,price\n" + "1,\n" * 30, "price", "every row is missing"),
        ("a,price\n" + "1,5\n" * 30, "price", "has a single value"),
        ("a,price\n", "price", "the DataFrame is empty"),
        ("a,a,price\n" + "1,2,3\n" * 30, "price", "duplicated column names"),
        ('a,price\n"1,2\n3', "price", "could not parse"),
        ("a;price\n1;2\n3;4\n", "price", "separated by something other than commas"),
    ],
)
def test_bad_input_gets_one_clear_message(
    tmp_path: Path, content: str, target: str, message: str
) -> None:
    data = tmp_path / "data.csv"
    data.write_text(content)
    result = sela("run", str(data), "--target", target, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[-1]] and lines[0].startswith("sela: error: ")
    assert message in result.stderr
    assert not (tmp_path / ".sela").exists() or not any((tmp_path / ".sela" / "runs").iterdir())


def test_a_first_run_on_a_brand_new_machine_finishes_with_notebooks(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    home = tmp_path / "home"  # no Jupyter server, kernel or sela ever ran for this user
    data = write(tmp_path / "d.csv", small_regression)
    result = sela(
        "run", data, "--target", "y", "--rollouts", "3", cwd=tmp_path, env=new_user_env(home)
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / ".sela" / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["simulations"] == 3
    assert len(list(run_dir.glob("nodes/*/notebook.ipynb"))) == 3
    runtime = home / ".local" / "share" / "jupyter" / "runtime"  # made for the kernels, private
    assert runtime.is_dir() and runtime.stat().st_mode & 0o077 == 0


def test_a_kernel_that_cannot_start_fails_the_run_with_one_clear_line(
    tmp_path: Path, small_regression: pd.DataFrame, broken_kernel_spec: Path
) -> None:
    env = new_user_env(tmp_path / "home", JUPYTER_PATH=str(broken_kernel_spec))
    data = write(tmp_path / "d.csv", small_regression)
    result = sela("run", data, "--target", "y", "--rollouts", "2", cwd=tmp_path, env=env)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("sela: ")]
    assert error_lines == [result.stderr.strip().splitlines()[-1]]
    assert error_lines[0].startswith("sela: error: run ")
    assert "could not start a 'python3' kernel (`/nonexistent/python3" in error_lines[0]
    assert "FileNotFoundError" in error_lines[0] and "jupyter kernelspec list" in error_lines[0]
    (run_dir,) = (tmp_path / ".sela" / "runs").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed" and "could not start" in record["error"]
    assert f"details in {run_dir / 'run.log'}" in error_lines[0]
    assert "Traceback" in (run_dir / "run.log").read_text()
    assert "failed" in sela("list", cwd=tmp_path, env=env).stdout

    debug = sela("--debug", "resume", run_dir.name, cwd=tmp_path, env=env)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_binary_file_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(bytes(range(256)) * 8)
    result = sela("run", str(data), "--target", "y", cwd=tmp_path)
    assert result.returncode == 2
    assert "could not parse" in result.stderr


def test_bad_time_budget_is_explained(tmp_path: Path, small_regression: pd.DataFrame) -> None:
    data = write(tmp_path / "d.csv", small_regression)
    result = sela("run", data, "--target", "y", "--time-budget", "ten minutes", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot read the time budget 'ten minutes'" in result.stderr


def test_sigkill_then_resume_keeps_finished_nodes(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    data = write(tmp_path / "d.csv", small_regression)
    proc = subprocess.Popen(
        [*SELA, "run", data, "--target", "y", "--rollouts", "8"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    runs = tmp_path / ".sela" / "runs"
    deadline = time.monotonic() + 120
    finished: dict[str, dict] = {}
    while time.monotonic() < deadline:
        results = list(runs.glob("*/nodes/*/result.json"))
        if len(results) >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    (run_dir,) = runs.iterdir()
    for path in run_dir.glob("nodes/*/result.json"):
        finished[path.parent.name] = json.loads(path.read_text())
    assert len(finished) >= 3
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    listed = sela("list", cwd=tmp_path).stdout
    assert run_dir.name in listed and "interrupted" in listed and "running" not in listed

    result = sela("resume", run_dir.name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "finished"
    assert record["simulations"] == 8
    for node_id, before in finished.items():
        after = json.loads((run_dir / "nodes" / node_id / "result.json").read_text())
        assert after["timings"] == before["timings"]  # not simulated again
    assert len(list(run_dir.glob("nodes/*/notebook.ipynb"))) == 8

    listing = sela("list", cwd=tmp_path)
    assert run_dir.name in listing.stdout and "finished" in listing.stdout


def test_run_then_exported_notebook_reproduces_dev_score(
    tmp_path: Path, housing: pd.DataFrame
) -> None:
    data = write(tmp_path / "housing.csv", housing)
    result = sela("run", data, "--target", "price", "--rollouts", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "best node" in result.stdout and "notebook.ipynb" in result.stdout

    exported = sela("export", "last", "-o", "best.ipynb", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    nb = nbformat.read(tmp_path / "best.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells)
    assert "sela_jupyter" not in source
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    (run_dir,) = (tmp_path / ".sela" / "runs").iterdir()
    final = json.loads((run_dir / "run.json").read_text())["final"]  # the blend or best node
    evaluation = next(c for c in nb.cells if c.metadata.get("sela", {}).get("role") == "evaluation")
    printed = evaluation.outputs[0]["text"]
    assert printed.startswith("dev rmse: ")
    assert float(printed.split(":")[1]) == pytest.approx(final["dev_score"], rel=1e-5)  # .6g

    script = sela("export", "last", "--format", "py", "-o", "best.py", cwd=tmp_path)
    assert script.returncode == 0
    ran = subprocess.run(
        [sys.executable, "best.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert "dev rmse:" in ran.stdout
