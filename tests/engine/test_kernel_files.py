"""Files over the kernel connection, with real kernels: what a kernel with no shared disk gets.

The kernels here could read the run directory, but they work in a scratch directory of their
own and are only ever told names relative to it, so every file they read must have been sent and
every file the server keeps must have been fetched.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
from kernel_helpers import simulate

from sela_jupyter.engine.cells import call
from sela_jupyter.engine.kernel_files import OverConnection
from sela_jupyter.engine.runner import KernelPool, SimulationPlan, StageCell

STEPS = "from sklearn.preprocessing import StandardScaler\nsteps = [('scale', StandardScaler())]"
MODEL = "from sklearn.linear_model import LinearRegression\nmodel = LinearRegression()"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory with the train and dev frames a setup cell reads."""
    run = tmp_path / "run-1"
    (run / "data").mkdir(parents=True)
    frame = pd.DataFrame({"a": range(300), "y": [2.0 * i + 1 for i in range(300)]})
    frame.iloc[:200].to_parquet(run / "data" / "train.parquet")
    frame.iloc[200:].to_parquet(run / "data" / "dev.parquet")
    return run


def setup_reading(run_dir: Path) -> tuple[str, tuple[str, str]]:
    train, dev = str(run_dir / "data" / "train.parquet"), str(run_dir / "data" / "dev.parquet")
    source = (
        "import pandas as pd\nfrom sklearn.metrics import r2_score\n"
        'TARGET, METRIC, TASK = "y", "r2", "regression"\n'
        f"train = pd.read_parquet({train!r})\ndev = pd.read_parquet({dev!r})\nnotes = {{}}\n"
        "def evaluate(pipeline, X, y):\n    return r2_score(y, pipeline.predict(X))"
    )
    return source, (train, dev)


async def remote_pool(run_dir: Path, **settings: int) -> KernelPool:
    pool = KernelPool(size=1, files=OverConnection(run_dir, **settings))
    await pool.start()
    return pool


@pytest.fixture
async def pool(run_dir: Path) -> AsyncIterator[KernelPool]:
    """One real kernel that gets its files in 4 kB chunks (so every file takes several)."""
    kernels = await remote_pool(run_dir, chunk_bytes=4096)
    yield kernels
    await kernels.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_simulation_gets_its_frames_and_the_server_gets_what_it_wrote(
    pool: KernelPool, run_dir: Path
) -> None:
    setup, data_files = setup_reading(run_dir)
    node = run_dir / "nodes" / "n1"
    result = await simulate(
        pool,
        SimulationPlan(
            setup=setup,
            data_files=data_files,
            cells=[
                StageCell("preprocess", STEPS, "path", "n1", str(node / "snapshot.pkl")),
                StageCell("model", MODEL, "default"),
            ],
            root_snapshot_path=str(run_dir / "nodes" / "n0" / "snapshot.pkl"),
            predictions_path=str(node / "predictions.pkl"),
        ),
    )

    assert result.error is None and result.dev_score == pytest.approx(1.0)
    setup_cell = result.cells[0].result.source
    assert "'data/train.parquet'" in setup_cell and str(run_dir) not in setup_cell
    assert result.timings["transfer"] > 0
    kernel = await pool.acquire()
    try:
        scratch = Path(await kernel.evaluate("__import__('os').getcwd()"))
        assert scratch != run_dir and scratch.name.startswith("sela-run-1-")
        for written in (
            "nodes/n0/snapshot.pkl",
            "nodes/n1/snapshot.pkl",
            "nodes/n1/predictions.pkl",
        ):
            assert digest(run_dir / written) == digest(scratch / written), written
    finally:
        pool.release(kernel, healthy=True)


async def test_a_new_kernel_resumes_from_a_snapshot_it_is_sent(run_dir: Path) -> None:
    setup, data_files = setup_reading(run_dir)
    root = str(run_dir / "nodes" / "n0" / "snapshot.pkl")
    parent = str(run_dir / "nodes" / "n1" / "snapshot.pkl")
    first = await remote_pool(run_dir)
    try:
        made = await simulate(
            first,
            SimulationPlan(
                setup=setup,
                data_files=data_files,
                cells=[
                    StageCell("preprocess", STEPS + "\nnotes['seen'] = 1", "path", "n1", parent),
                    StageCell("model", MODEL, "default"),
                ],
                root_snapshot_path=root,
            ),
        )
        assert made.error is None and Path(parent).is_file()
    finally:
        await first.close()

    second = await remote_pool(run_dir)  # a fresh kernel, in a scratch directory of its own
    try:
        resumed = await simulate(
            second,
            SimulationPlan(
                setup="raise RuntimeError('the setup must not run: the snapshot has it all')",
                data_files=data_files,
                cells=[StageCell("model", MODEL + "\nassert notes['seen'] == 1", "path", "n2")],
                restore_from=parent,
                base_snapshot=root,
            ),
        )
    finally:
        await second.close()
    assert resumed.restored and resumed.error is None
    assert resumed.dev_score == pytest.approx(1.0)


async def test_frames_past_the_size_limit_fail_the_node_with_the_setting_to_change(
    run_dir: Path,
) -> None:
    setup, data_files = setup_reading(run_dir)
    pool = await remote_pool(run_dir, max_bytes=512)
    try:
        result = await simulate(
            pool,
            SimulationPlan(
                setup=setup, data_files=data_files, cells=[StageCell("model", MODEL, "path")]
            ),
        )
    finally:
        await pool.close()
    assert result.error_kind == "transfer"
    assert "data/train.parquet is" in result.error
    assert "c.SelaApp.max_transfer_mb" in result.error


async def test_a_snapshot_too_large_to_fetch_is_left_behind_and_children_replay(
    run_dir: Path,
) -> None:
    setup, data_files = setup_reading(run_dir)
    snapshot = run_dir / "nodes" / "n1" / "snapshot.pkl"
    # Frames pass (a few kB), but a snapshot holding a 2 MB array does not.
    pool = await remote_pool(run_dir, max_bytes=1 << 20)
    try:
        result = await simulate(
            pool,
            SimulationPlan(
                setup=setup,
                data_files=data_files,
                cells=[
                    StageCell(
                        "preprocess",
                        STEPS + "\nimport numpy as np\nbig = np.ones(1 << 18)",
                        "path",
                        "n1",
                        str(snapshot),
                    ),
                    StageCell("model", MODEL, "default"),
                ],
            ),
        )
    finally:
        await pool.close()
    assert result.error is None and result.dev_score == pytest.approx(1.0)
    assert not snapshot.exists()


async def test_a_damaged_file_is_refused_and_removed(pool: KernelPool) -> None:
    kernel = await pool.acquire()
    try:
        await kernel.execute(call("_sela_put", "x.bin", 0, "aGVsbG8="), timeout=30, hidden=True)
        wrong = await kernel.execute(
            call("_sela_put_done", "x.bin", 5, "0" * 64), timeout=30, hidden=True
        )
        assert not wrong.ok and "arrived damaged" in wrong.error_value
        assert await kernel.evaluate("__import__('os').listdir('.')") == []
    finally:
        pool.release(kernel, healthy=True)
