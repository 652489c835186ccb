"""What a simulation pays when its kernel has no shared disk: local kernels against a gateway's.

Runs the same seeded search (same data, same rollouts, one kernel) three ways and prints, for each,
the median per-simulation overhead (a simulation's wall time minus the time inside its visible
cells), the median time spent moving files over the kernel connection, and the bytes moved:

- ``local``: kernels on this machine, reading and writing the run directory in place;
- ``kernel gateway``: a local Jupyter Kernel Gateway (files travel over the connection);
- ``enterprise gateway``: Jupyter Enterprise Gateway whose kernels run in a mount namespace of
  their own, where the run directory does not exist (as in ``make test``; needs ``unshare``).

    python benchmarks/gateway_overhead.py [--rows 546,50000] [--rollouts 12] [--parallel 1]

``--rows`` picks the data sizes: 546 is the housing example; a larger figure repeats it (with
noise) to that many rows, to show how the transfers grow with the data.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sela_jupyter.engine.new_run import create_run
from sela_jupyter.engine.options import SearchOptions
from sela_jupyter.engine.search import Search
from sela_jupyter.engine.statuses import NodeStatus
from sela_jupyter.engine.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "server"), str(ROOT / "tests")]


def housing(rows: int) -> pd.DataFrame:
    """The housing example, or that many rows drawn from it with a little noise on the numbers."""
    frame = pd.read_csv(ROOT / "examples" / "housing.csv")
    if rows <= len(frame):
        return frame.head(rows)
    rng = np.random.default_rng(0)
    big = frame.sample(rows, replace=True, random_state=0).reset_index(drop=True)
    for column in ("price", "lotsize"):
        big[column] = big[column] * rng.normal(1.0, 0.05, size=rows)
    return big


def gateway_manager(url: str) -> Any:
    """A jupyter_server gateway kernel manager for ``url`` (what a server with
    ``GatewayClient.url`` uses)."""
    from jupyter_server.gateway.gateway_client import GatewayClient
    from jupyter_server.gateway.managers import GatewayMappingKernelManager

    GatewayClient.clear_instance()
    GatewayClient.instance(url=url, request_timeout=120.0)
    return GatewayMappingKernelManager()


def measure(
    frame: pd.DataFrame,
    rollouts: int,
    runs_root: Path,
    kernel_manager: Any = None,
    kernel_name: str = "python3",
    parallel: int = 1,
) -> dict[str, float]:
    """One search (its run under ``runs_root``); the median overhead and transfer time per
    simulation, and the sizes of what the kernels read and wrote."""
    with tempfile.TemporaryDirectory(dir=runs_root) as tmp:
        store = RunStore(tmp)
        options = SearchOptions(rollouts=rollouts, parallel=parallel, seed=0)
        run_id = create_run(frame, "price", store=store, options=options)
        search = Search(store, run_id, kernel_manager=kernel_manager, kernel_name=kernel_name)
        started = time.perf_counter()
        asyncio.run(search.run())
        wall = time.perf_counter() - started
        overheads, transfers = [], []
        for node in search.tree:
            if not node.simulated or "total" not in node.timings:
                continue
            timings = node.timings
            overheads.append(timings["total"] - timings.get("in_cells", 0.0))
            transfers.append(timings.get("transfer", 0.0))
        moved = sum(f.stat().st_size for f in (Path(tmp) / run_id).rglob("*.pkl"))
        data = sum(f.stat().st_size for f in (Path(tmp) / run_id / "data").glob("*.parquet"))
        return {
            "simulations": search.tree.simulations,
            "failed": sum(1 for n in search.tree if n.status == NodeStatus.FAILED),
            "median_overhead_s": statistics.median(overheads),
            "median_transfer_s": statistics.median(transfers),
            "kernel_files_mb": moved / 2**20,
            "data_mb": data / 2**20,
            "wall_s": wall,
        }


def main() -> None:
    """Measure every way on every size and print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="546,50000")
    parser.add_argument("--rollouts", type=int, default=12)
    parser.add_argument(
        "--parallel", type=int, default=1, help="kernels at once (1 compares overheads fairly)"
    )
    args = parser.parse_args()
    from gateways import enterprise_gateway, isolation_problem, kernel_gateway

    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        runs_root = root / "runs"  # what the isolated kernels cannot see
        runs_root.mkdir()
        ways: dict[str, tuple[Any, str]] = {"local": (None, "python3")}
        kg = stack.enter_context(kernel_gateway(root / "kg"))
        ways["kernel gateway"] = (kg, "python3")
        problem = isolation_problem()
        if problem is None:
            eg = stack.enter_context(enterprise_gateway(root / "eg", runs_root))
            ways["enterprise gateway"] = (eg, eg.kernel_name)
        else:
            print(f"no enterprise gateway: {problem}")
        for rows in (int(r) for r in args.rows.split(",")):
            frame = housing(rows)
            for label, (gateway, spec) in ways.items():
                manager = gateway_manager(gateway.url) if gateway is not None else None
                r = measure(frame, args.rollouts, runs_root, manager, spec, args.parallel)
                print(
                    f"{rows:>7} rows  {label:<18}  {r['simulations']:>3} simulations "
                    f"({r['failed']} failed)  "
                    f"median overhead {r['median_overhead_s'] * 1000:7.1f} ms  "
                    f"median transfer {r['median_transfer_s'] * 1000:7.1f} ms  "
                    f"data {r['data_mb']:5.1f} MB  kernel files {r['kernel_files_mb']:6.1f} MB  "
                    f"wall {r['wall_s']:5.1f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
