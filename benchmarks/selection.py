"""Compare the rules for choosing a run's final candidate on runs already made.

For every run kept under ``--runs-dir`` (``compare.py --runs-dir DIR`` keeps them), the same
searched tree is finished six ways and each answer is scored on the held-out test rows:

- ``dev best``: the node with the best dev score;
- ``dev blend``: greedy ensemble selection on the nodes' dev outputs;
- ``dev blend+t``: the same blend with, for binary F1 on a dev of at least
  ``DEV_ROWS_TO_JUDGE`` rows, the decision threshold chosen on dev (the engine's default there);
- ``cv best``: the node with the best out-of-fold score over train + dev;
- ``cv blend``: greedy ensemble selection on out-of-fold outputs, predicting the most probable
  class;
- ``cv blend+t``: the same blend with, for binary F1, the decision threshold chosen out of fold
  (the engine's default; identical to ``cv blend`` on other tasks).

Paired on one tree, the rules differ only in how they choose, not in what the search found.

    python benchmarks/selection.py --runs-dir /tmp/runs
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pandas as pd

from sela_jupyter.engine.api import open_run
from sela_jupyter.engine.ensemble import final_blend
from sela_jupyter.engine.run_state import RunState
from sela_jupyter.engine.store import RunStore

RULES = ("dev best", "dev blend", "dev blend+t", "cv best", "cv blend", "cv blend+t")


def choices(run_dir: Path) -> dict[str, Any] | None:
    """Test scores of the six rules on one run, or ``None`` if it has no test labels."""
    run = open_run(run_dir.name, run_dir.parent)
    task = run.task
    state = RunState.load(RunStore(run_dir.parent), run_dir.name)
    y_dev, y_test, y_cv_rows = state.dev_labels, state.test_labels, state.cv_labels
    if y_dev is None or y_test is None or y_cv_rows is None:
        return None
    y_cv = y_cv_rows.to_numpy()

    def node_dir(node_id: str) -> Path:
        return run.path / "nodes" / node_id

    scores: dict[str, Any] = {"run": run_dir.name, "target": task.target, "metric": task.metric}
    for rule in RULES:
        on_cv = rule.startswith("cv")
        blend = final_blend(
            task,
            run.tree,
            node_dir,
            y_dev.to_numpy(),
            y_test.to_numpy(),
            y_cv=y_cv if on_cv else None,
            rounds=1 if rule.endswith("best") else 25,
            tune_threshold=rule.endswith("+t"),
        )
        scores[rule] = None if blend is None else blend.test_score
    scores["direction"] = task.direction
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs-dir", required=True)
    args = parser.parse_args()
    rows = [c for d in sorted(Path(args.runs_dir).iterdir()) if (c := choices(d))]
    table = pd.DataFrame(rows)
    print(table.drop(columns="direction").to_string(index=False))
    print("\ngeometric mean of each rule's test score relative to 'dev best' (above 1 is better):")
    for rule in RULES:
        logs = []
        for _, row in table.iterrows():
            if row[rule] is None or row["dev best"] is None:
                continue
            ratio = row[rule] / row["dev best"]
            logs.append(math.log(ratio if row["direction"] == "maximize" else 1 / ratio))
        print(f"  {rule:10s} {math.exp(sum(logs) / len(logs)):.4f} over {len(logs)} runs")


if __name__ == "__main__":
    main()
