"""How much search a time budget buys: simulations per minute, peak memory and run directory size.

    python benchmarks/throughput.py [--datasets loans,deliveries,taxi] [--budget 60] [--seeds 0] \
        [--against REV]

Runs sela as a new user does (``sela_jupyter.run(frame, target=..., time_budget=...)``, every
other option its default) on each table and seed, and prints one line per run: simulations, the
rate per minute, ``parallel``, peak resident memory of this process and its kernels, and the
run directory's size. ``--against REV`` first runs the same measurement with the engine of git
revision ``REV`` (checked out in a temporary worktree, imported ahead of this one) so that both
figures come from one session on one machine, then prints the ratio of the rates.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATASETS = "loans,deliveries,taxi"  # the 10k-row tables


def measure(datasets: list[str], budget: float, seeds: list[int]) -> list[dict[str, Any]]:
    """One run per (dataset, seed) with the ``sela_jupyter`` found first on ``sys.path``."""
    import warnings

    from bench_data import DATASETS
    from resources import PeakMemory, directory_bytes

    import sela_jupyter

    warnings.filterwarnings("ignore")
    rows = []
    for name in datasets:
        dataset = DATASETS[name]
        frame = dataset.load()
        for seed in seeds:
            with tempfile.TemporaryDirectory() as runs_dir, PeakMemory() as memory:
                started = time.perf_counter()
                run = sela_jupyter.run(
                    frame, target=dataset.target, time_budget=budget, seed=seed, runs_dir=runs_dir
                )
                wall = time.perf_counter() - started
                rows.append(
                    {
                        "dataset": name,
                        "rows": len(frame),
                        "seed": seed,
                        "simulations": run.record.simulations,
                        "per_minute": run.record.simulations / (wall / 60.0),
                        "parallel": run.record.options.parallel,
                        "wall_s": wall,
                        "peak_memory_mb": memory.peak / 2**20,
                        "run_dir_mb": directory_bytes(run.path) / 2**20,
                        "engine": str(Path(sela_jupyter.__file__).resolve().parent.parent),
                    }
                )
            print(_line(rows[-1]), file=sys.stderr, flush=True)
    return rows


def _line(row: dict[str, Any]) -> str:
    return (
        f"{row['dataset']:<12} seed {row['seed']}  {row['simulations']:>4} simulations"
        f"  {row['per_minute']:6.1f}/min  parallel {row['parallel']}"
        f"  peak {row['peak_memory_mb']:7.0f} MB  run dir {row['run_dir_mb']:7.1f} MB"
    )


def against(rev: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The same measurement with the engine of ``rev``, in a subprocess importing a worktree."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "engine"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
        )
        try:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--datasets",
                    args.datasets,
                    "--budget",
                    str(args.budget),
                    "--seeds",
                    args.seeds,
                    "--engine",
                    str(tree),
                    "--json",
                ],
                check=True,
                stdout=subprocess.PIPE,
                text=True,
            )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
            )
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Parse options, measure (the other revision first), print the lines and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=DEFAULT_DATASETS, help="comma-separated names")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--against", metavar="REV", help="also measure git revision REV")
    parser.add_argument("--engine", help=argparse.SUPPRESS)  # a worktree to import sela from
    parser.add_argument("--json", action="store_true", help="print the rows as JSON only")
    args = parser.parse_args(argv)
    if args.engine:
        sys.path.insert(0, args.engine)
    sys.path.insert(0, str(HERE))
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    before = against(args.against, args) if args.against else []
    rows = measure(datasets, args.budget, seeds)
    if args.json:
        print(json.dumps(rows))
        return rows
    if before:
        print(f"engine at {args.against}:")
        for row in before:
            print("  " + _line(row))
        print("this engine:")
    for row in rows:
        print(("  " if before else "") + _line(row))
    if before:
        for name in datasets:
            old = statistics.mean(r["per_minute"] for r in before if r["dataset"] == name)
            new = statistics.mean(r["per_minute"] for r in rows if r["dataset"] == name)
            print(f"{name:<12} {old:6.1f} -> {new:6.1f} simulations/min  ({new / old:.2f}x)")
    return before + rows


if __name__ == "__main__":
    main()
