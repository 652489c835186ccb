"""Two searches at once on one server, and one search under a read load, against one alone.

Starts a real ``jupyter server`` with the extension (its defaults: two runs at once), then on the
same data and rollouts measures a run alone, two runs started together, and a run while 20 clients
keep reading the run list. Prints each run's elapsed time, its slowdown against the run alone, its
best scores (the same search should find the same answer) and the readers' throughput and latency.

    python benchmarks/concurrency.py [--dataset boston] [--rollouts 8] [--readers 20] [--rates 0,1]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from bench_data import DATASETS
from server_process import JupyterServer, send, start_server

RUNS = "sela/api/runs"


def start_run(server: JupyterServer, frame: pd.DataFrame, target: str, rollouts: int) -> str:
    """POST a run; its id."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    body = {
        "target": target,
        "data": {"parquet_base64": base64.b64encode(buffer.getvalue()).decode("ascii")},
        "options": {"rollouts": rollouts, "seed": 0},
    }
    status, reply = send("POST", server.url + RUNS, server.token, json.dumps(body).encode())
    if status != 201:
        raise SystemExit(f"could not start a run: {status} {reply!r}")
    return json.loads(reply)["id"]


def wait(server: JupyterServer, run_id: str, timeout: float = 3600) -> dict[str, Any]:
    """The run once it is no longer searching."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = server.api("GET", f"{RUNS}/{run_id}")
        if run["status"] not in ("created", "queued", "running") or (
            run["status"] == "running" and not run["active"]
        ):
            return run
        time.sleep(0.5)
    raise SystemExit(f"run {run_id} did not end within {timeout} s")


def describe(run: dict[str, Any], alone: float | None) -> str:
    """One line: elapsed, slowdown, simulations, best dev and test scores."""
    elapsed = run["timings"]["elapsed"]
    best = run.get("best") or {}
    slowdown = f"  x{elapsed / alone:.2f}" if alone else ""
    return (
        f"{run['status']:<9} {elapsed:7.1f} s{slowdown:<8} {run['simulations']:>3} sims"
        f"  best dev {best.get('dev_score', float('nan')):.4g}"
        f"  test {best.get('test_score') or float('nan'):.4g}"
    )


def read_load(
    server: JupyterServer, readers: int, rate: float, stop: threading.Event
) -> dict[str, Any]:
    """``readers`` clients reading the run list until ``stop``, each ``rate`` times a second
    (0: as fast as the server answers); counts and latencies."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def reader() -> None:
        while not stop.is_set():
            began = time.monotonic()
            status, _ = send("GET", server.url + RUNS, server.token, None)
            took = time.monotonic() - began
            with lock:
                latencies.append(took)
                errors[0] += status != 200
            if rate:
                stop.wait(max(0.0, 1 / rate - took))

    threads = [threading.Thread(target=reader) for _ in range(readers)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(60)
    seconds = time.monotonic() - began
    ordered = sorted(latencies) or [float("nan")]
    return {
        "requests": len(latencies),
        "per_second": len(latencies) / seconds,
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="boston", choices=sorted(DATASETS))
    parser.add_argument("--rollouts", type=int, default=8)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument(
        "--rates",
        default="0,1",
        help="requests per second of each reader, one measured run per rate (0: flat out)",
    )
    args = parser.parse_args()
    dataset = DATASETS[args.dataset]
    frame = dataset.load()

    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            print(
                f"{dataset.name}: {frame.shape[0]} rows, {args.rollouts} rollouts, server defaults"
            )
            alone = wait(server, start_run(server, frame, dataset.target, args.rollouts))
            base = alone["timings"]["elapsed"]
            print(f"alone           {describe(alone, None)}")

            pair = [start_run(server, frame, dataset.target, args.rollouts) for _ in range(2)]
            for index, run_id in enumerate(pair, start=1):
                print(f"together ({index}/2)  {describe(wait(server, run_id), base)}")

            for rate in (float(r) for r in args.rates.split(",")):
                stop = threading.Event()
                box: dict[str, Any] = {}
                loader = threading.Thread(
                    target=lambda box=box, rate=rate, stop=stop: box.update(
                        read_load(server, args.readers, rate, stop)
                    )
                )
                loader.start()
                loaded = wait(server, start_run(server, frame, dataset.target, args.rollouts))
                stop.set()
                loader.join(120)
                pace = f"{rate:g}/s each" if rate else "flat out"
                print(f"under reads     {describe(loaded, base)}")
                print(
                    f"  readers: {args.readers} clients {pace}, {box['requests']} GET {RUNS}"
                    f" during the run, {box['per_second']:.0f}/s, p50 {box['p50_ms']:.0f} ms,"
                    f" p99 {box['p99_ms']:.0f} ms, {box['errors']} errors"
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
