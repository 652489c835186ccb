"""Child kernels for real: outputs, errors, timeouts, kernel death, snapshots and the warm pool."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from kernel_helpers import simulate

from sela_jupyter.engine.runner import (
    KernelPool,
    KernelStartError,
    SimulationPlan,
    StageCell,
    build_notebook,
    connection_dir,
    own_manager,
)

SETUP = """\
import pandas as pd
from sklearn.metrics import r2_score
TARGET, METRIC = "y", "r2"
train = pd.DataFrame({"a": range(40), "y": [2 * i + 1 for i in range(40)]})
dev = train.copy()
notes = {}
def evaluate(pipeline, X, y):
    return r2_score(y, pipeline.predict(X))"""
STEPS = "from sklearn.preprocessing import StandardScaler\nsteps = [('scale', StandardScaler())]"
MODEL = "from sklearn.linear_model import LinearRegression\nmodel = LinearRegression()"


def plan(*cells: StageCell, **kwargs: object) -> SimulationPlan:
    return SimulationPlan(setup=SETUP, cells=list(cells), **kwargs)  # type: ignore[arg-type]


async def test_simulation_scores_and_keeps_outputs(pool: KernelPool) -> None:
    result = await simulate(
        pool,
        plan(
            StageCell("preprocess", STEPS + "\nprint('scaled')", "path", "n1"),
            StageCell("model", MODEL, "default"),
        ),
    )
    assert result.error is None
    assert result.dev_score == pytest.approx(1.0)
    assert "scaled" in result.output_tail()
    nb = build_notebook(result, title="# node")
    roles = [c.metadata["sela"]["role"] for c in nb.cells[1:]]
    assert roles == ["setup", "path", "default", "evaluation"]
    assert nb.cells[-1].outputs[0]["text"].startswith("dev r2: 1")


async def test_a_cell_stopped_by_the_cap_says_so_and_one_stopped_by_its_timeout_does_not(
    pool: KernelPool,
) -> None:
    sleep = StageCell("model", "import time\ntime.sleep(60)", "path")
    capped = await simulate(pool, plan(sleep, cell_timeout=30, cell_cap=1))
    assert "timed out after 1 s" in capped.error and capped.stopped_at_cap
    sleep = StageCell("model", "import time\ntime.sleep(60)", "path")
    timed_out = await simulate(pool, plan(sleep, cell_timeout=1, cell_cap=30))
    assert "timed out after 1 s" in timed_out.error and not timed_out.stopped_at_cap


async def test_stage_that_raises_fails_with_its_traceback(pool: KernelPool) -> None:
    result = await simulate(pool, plan(StageCell("model", "1 / 0", "path")))
    assert result.dev_score is None
    assert result.error_kind == "error"
    assert "ZeroDivisionError" in result.error
    assert "1 / 0" in result.traceback
    # the kernel is healthy: the next simulation works in it
    again = await simulate(
        pool, plan(StageCell("preprocess", STEPS, "path"), StageCell("model", MODEL, "default"))
    )
    assert again.dev_score == pytest.approx(1.0)


async def test_hanging_stage_times_out_and_is_interrupted(pool: KernelPool) -> None:
    result = await simulate(
        pool, plan(StageCell("model", "import time\ntime.sleep(60)", "path"), cell_timeout=2)
    )
    assert "timed out after 2 s" in result.error and not result.stopped_at_cap
    assert result.timings["total"] < 10
    again = await simulate(
        pool, plan(StageCell("preprocess", STEPS, "path"), StageCell("model", MODEL, "default"))
    )
    assert again.dev_score == pytest.approx(1.0)


async def test_uninterruptible_hang_restarts_the_kernel(pool: KernelPool) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(60)"
    result = await simulate(pool, plan(StageCell("model", code, "path"), cell_timeout=2))
    assert result.error_kind == "timeout"
    assert not result.kernel_healthy
    again = await simulate(
        pool, plan(StageCell("preprocess", STEPS, "path"), StageCell("model", MODEL, "default"))
    )
    assert again.dev_score == pytest.approx(1.0)


async def test_killed_kernel_fails_the_node_and_the_pool_recovers(pool: KernelPool) -> None:
    result = await simulate(pool, plan(StageCell("model", "import os\nos._exit(1)", "path")))
    assert result.error_kind == "kernel_died"
    assert "died" in result.error
    again = await simulate(
        pool, plan(StageCell("preprocess", STEPS, "path"), StageCell("model", MODEL, "default"))
    )
    assert again.dev_score == pytest.approx(1.0)
    assert len(pool.kernel_ids) == 1


async def test_child_resumes_from_parent_snapshot(pool: KernelPool, tmp_path: Path) -> None:
    snapshot = str(tmp_path / "parent.pkl")
    parent = await simulate(
        pool,
        plan(
            StageCell("preprocess", STEPS + "\nnotes['seen'] = 1", "path", "n1", snapshot),
            StageCell("model", MODEL, "default"),
        ),
    )
    assert parent.error is None and Path(snapshot).is_file()
    child = await simulate(
        pool,
        plan(
            StageCell("model", MODEL + "\nprint('notes', notes)", "path", "n2"),
            replay=[StageCell("preprocess", "raise RuntimeError('replayed!')", "path", "n1")],
            restore_from=snapshot,
        ),
    )
    assert child.restored
    assert child.error is None, child.error
    assert [c.role for c in child.cells] == ["path", "evaluation"]  # no setup, no replay
    assert "notes {'seen': 1}" in child.output_tail()


async def test_missing_snapshot_replays_ancestors(pool: KernelPool, tmp_path: Path) -> None:
    child = await simulate(
        pool,
        plan(
            StageCell("model", MODEL, "path", "n2"),
            replay=[StageCell("preprocess", STEPS, "path", "n1")],
            restore_from=str(tmp_path / "missing.pkl"),
        ),
    )
    assert not child.restored
    assert [c.role for c in child.cells] == ["setup", "replay", "path", "evaluation"]
    assert child.dev_score == pytest.approx(1.0)


async def test_a_retired_pool_shuts_a_cancelled_kernel_down_without_restarting_it(
    pool: KernelPool,
) -> None:
    kernel = await pool.acquire()
    before = kernel.simulations
    pool.retire()  # the run's budget is spent: what comes back is not recycled
    pool.release(kernel, healthy=False)  # e.g. its simulation was cancelled mid-cell
    for task in list(pool._background):
        await task
    assert kernel.simulations == before + 1  # a restart would have reset the count to 0
    assert pool._idle.empty()
    await pool.close()
    assert not await kernel.alive()


@pytest.mark.skipif(os.name != "posix", reason="Unix sockets are POSIX only")
async def test_a_pools_own_kernels_talk_over_unix_sockets(pool: KernelPool) -> None:
    kernel = await pool.acquire()
    info = pool.manager.get_kernel(kernel.kernel_id).get_connection_info()
    pool.release(kernel, healthy=True)
    assert info["transport"] == "ipc"
    assert Path(f"{info['ip']}-{info['shell_port']}").exists()  # the socket, not a TCP port
    result = await simulate(
        pool, plan(StageCell("preprocess", STEPS, "path"), StageCell("model", MODEL, "default"))
    )
    assert result.error is None
    assert result.dev_score == pytest.approx(1.0)


def test_socket_paths_too_long_for_the_system_fall_back_to_tcp(tmp_path: Path) -> None:
    def transport(directory: Path) -> str:
        manager = own_manager(str(directory))
        return manager.kernel_manager_factory(parent=manager).transport

    assert transport(tmp_path / ("d" * 120)) == "tcp"
    assert transport(Path("/tmp")) == ("ipc" if os.name == "posix" else "tcp")


def test_a_missing_runtime_directory_is_created_owner_only(tmp_path: Path) -> None:
    wanted = tmp_path / "home" / ".local" / "share" / "jupyter" / "runtime"
    directory, scratch = connection_dir(str(wanted))
    assert (directory, scratch) == (str(wanted), False)
    assert wanted.is_dir() and wanted.stat().st_mode & 0o077 == 0


async def test_an_unusable_runtime_directory_gives_way_to_a_private_scratch_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(blocker / "runtime"))
    pool = KernelPool(size=1)
    scratch = Path(pool.manager.connection_dir)
    assert scratch != blocker / "runtime" and scratch.stat().st_mode & 0o077 == 0
    await pool.start()
    try:
        result = await simulate(
            pool, plan(StageCell("preprocess", STEPS, "path"), StageCell("model", MODEL, "default"))
        )
        assert result.dev_score == pytest.approx(1.0)
    finally:
        await pool.close()
    assert not scratch.exists()  # the pool's own scratch directory goes with it


async def test_a_kernel_that_cannot_start_names_its_spec_and_the_cause(
    broken_kernel_spec: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(broken_kernel_spec))
    pool = KernelPool(size=2)
    try:
        with pytest.raises(KernelStartError) as raised:
            await pool.start()
    finally:
        await pool.close()
    message = str(raised.value)
    assert message.startswith("could not start a 'python3' kernel (`/nonexistent/python3 -m")
    assert "in 3 tries: FileNotFoundError" in message and "jupyter kernelspec list" in message
    assert pool.kernel_ids == []


def kernel_spec_that_starts_once(root: Path) -> Path:
    """A Jupyter path whose ``python3`` kernel starts the first time only: every later start
    (a restart, a replacement) exits at once, as when a kernel image goes missing mid-run."""
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    launcher = spec / "launch.sh"
    launcher.write_text(
        "#!/bin/sh\n"
        f'[ -e "{root}/started" ] && exit 3\n'
        f'touch "{root}/started"\n'
        f'exec "{sys.executable}" -m ipykernel_launcher -f "$1"\n'
    )
    launcher.chmod(0o755)
    (spec / "kernel.json").write_text(
        json.dumps({"argv": [str(launcher), "{connection_file}"], "display_name": "once"})
    )
    return root


async def test_a_pool_that_loses_its_last_kernel_for_good_says_so_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_spec_that_starts_once(tmp_path / "jupyter")))
    pool = KernelPool(size=1)
    await pool.start()
    try:
        died = await simulate(pool, plan(StageCell("model", "import os\nos._exit(1)", "path")))
        assert died.error_kind == "kernel_died"
        with pytest.raises(KernelStartError, match="could not start a 'python3' kernel"):
            await asyncio.wait_for(pool.acquire(), timeout=120)
    finally:
        await pool.close()


def kernel_spec_without(root: Path, module: str) -> Path:
    """A Jupyter path whose ``python3`` kernel cannot import ``module`` (a ``sitecustomize``
    refuses it), as in a kernel image that lacks a library."""
    site = root / "site"
    site.mkdir(parents=True)
    (site / "sitecustomize.py").write_text(
        "import sys\n\n\nclass _Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] == {module!r}:\n"
        "            raise ImportError(name)\n\n\n"
        "sys.meta_path.insert(0, _Refuse())\n"
    )
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": f"no {module}",
                "env": {"PYTHONPATH": str(site)},
            }
        )
    )
    return root


async def test_a_kernel_that_lacks_a_required_library_is_refused_with_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_spec_without(tmp_path / "jupyter", "pyarrow")))
    pool = KernelPool(size=2)
    try:
        with pytest.raises(KernelStartError) as raised:
            await pool.start()
    finally:
        await pool.close()
    message = str(raised.value)
    assert "'python3' kernel: the kernel cannot import pyarrow:" in message
    assert "in its image" in message and "tries" not in message
