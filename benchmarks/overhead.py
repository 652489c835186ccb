"""Per-simulation orchestration overhead, and what kernel-state snapshots save over replaying code.

Runs the same seeded search on the housing data twice, once with snapshots (children resume from
their parent's kernel state) and once replaying every ancestor's stage code, and prints:

- the median per-simulation overhead: a simulation's wall time (waiting for a kernel, restoring,
  snapshotting, recording the notebook) minus the time inside its visible cells;
- the median time spent reaching the node's own stage (restore vs. setup + replay of ancestors).

    python benchmarks/overhead.py [--rollouts 16] [--parallel 1] [--data examples/housing.csv]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd

from sela_jupyter.engine.new_run import create_run
from sela_jupyter.engine.options import SearchOptions
from sela_jupyter.engine.search import Search
from sela_jupyter.engine.store import RunStore

ROOT = Path(__file__).resolve().parent.parent


def measure(
    frame: pd.DataFrame, target: str, *, rollouts: int, parallel: int, reuse_state: bool
) -> dict[str, Any]:
    """Run one search and collect per-simulation timings from its node notebooks."""
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        options = SearchOptions(rollouts=rollouts, parallel=parallel, reuse_state=reuse_state)
        run_id = create_run(frame, target, store=store, options=options)
        search = Search(store, run_id)
        started = time.perf_counter()
        asyncio.run(search.run())
        wall = time.perf_counter() - started
        overheads, reach, cells = [], [], []
        for node in search.tree:
            if not node.simulated:
                continue
            nb = nbformat.read(store.node_dir(run_id, node.id) / "notebook.ipynb", as_version=4)
            ran = [
                c.metadata["sela"]
                for c in nb.cells
                if c.cell_type == "code" and "from" not in c.metadata["sela"]
            ]
            in_cells = sum(m["duration_s"] for m in ran)
            total = node.timings["finished"] - node.timings["started"]
            overheads.append(total - in_cells)
            cells.append(in_cells)
            if node.depth >= 2:  # nodes that have an ancestor stage to restore or replay
                replayed = sum(m["duration_s"] for m in ran if m["role"] in ("setup", "replay"))
                reach.append(node.timings.get("restore", 0.0) + replayed)
        return {
            "simulations": search.tree.simulations,
            "wall_s": wall,
            "median_overhead_s": statistics.median(overheads),
            "median_cells_s": statistics.median(cells),
            "median_reach_parent_state_s": statistics.median(reach) if reach else None,
        }


def main() -> None:
    """Print both measurements and the difference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "examples" / "housing.csv"))
    parser.add_argument("--target", default="price")
    parser.add_argument("--rollouts", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    frame = pd.read_csv(args.data)
    results = {}
    for label, reuse in (("snapshots", True), ("replay", False)):
        results[label] = measure(
            frame, args.target, rollouts=args.rollouts, parallel=args.parallel, reuse_state=reuse
        )
    snap, replay = results["snapshots"], results["replay"]
    print(f"{args.rollouts} rollouts, parallel={args.parallel}, data={Path(args.data).name}")
    for label, r in results.items():
        reach = r["median_reach_parent_state_s"]
        print(
            f"  {label:<9}  median overhead {r['median_overhead_s'] * 1000:7.1f} ms   "
            f"median cells {r['median_cells_s']:.3f} s   "
            f"reach parent state {reach * 1000 if reach is not None else float('nan'):7.1f} ms"
            f"   wall {r['wall_s']:.1f} s"
        )
    if snap["median_reach_parent_state_s"] is not None and replay["median_reach_parent_state_s"]:
        saved = replay["median_reach_parent_state_s"] - snap["median_reach_parent_state_s"]
        print(
            f"snapshots save {saved * 1000:.1f} ms per simulation (median) against replaying "
            "parent code"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
