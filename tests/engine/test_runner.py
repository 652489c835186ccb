"""Child kernels for real: outputs, errors, timeouts, kernel death, snapshots and the warm pool."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kernel_helpers import simulate

from sela_jupyter.engine.runner import (
    KernelPool,
    SimulationPlan,
    StageCell,
    build_notebook,
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
    assert "timed out after 2 s" in result.error
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
