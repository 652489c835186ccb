"""Fingerprint of a fixed-rollout run, to show a refactor left behaviour unchanged.

Runs ``examples/housing.csv`` (and a small classification table) at ``parallel=1`` with a fixed
seed and prints, as JSON, what must not move: every node's parent, stage, insight, status and
scores, the final candidate, and the exported notebook's cells (volatile paths stripped).
Timings are left out: they differ between any two runs.

    python benchmarks/behaviour_check.py --out before.json   # on the old commit
    python benchmarks/behaviour_check.py --out after.json    # on the new one
    diff before.json after.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_breast_cancer

import sela_jupyter

ROOT = Path(__file__).resolve().parent.parent


def _round(value: Any) -> Any:
    return None if value is None else round(float(value), 10)


def _as_dict(record: Any) -> Any:
    """A record as JSON (older commits hand out dicts, newer ones dataclasses)."""
    return record.to_dict() if hasattr(record, "to_dict") else record


def fingerprint(run: Any, runs_dir: str) -> dict[str, Any]:
    """What a run decided, independent of timing and of where it was stored."""
    nodes = []
    for node in sorted(run.tree, key=lambda n: n.id):
        insight = node.insight
        nodes.append(
            {
                "id": node.id,
                "parent": node.parent,
                "stage": node.stage,
                "insight": insight.text if insight else None,
                "status": node.status,
                "visits": node.visits,
                "value": _round(node.value),
                "error": (node.error or "")[:200] or None,
                "dev": _round(node.dev_score),
                "test": _round(node.test_score),
            }
        )
    final = _as_dict(run.final)
    if final:
        final = {k: v for k, v in final.items() if k not in ("seconds", "timings")}
    exported = [
        {
            "kind": c.kind,
            "role": c.role,
            "source": c.source.replace(runs_dir, "<runs>").replace(run.id, "<run>"),
        }
        for c in run.cells()
    ]
    return {
        "status": str(_as_dict(run.record)["status"]),
        "nodes": nodes,
        "final": final,
        "export": exported,
    }


def main() -> None:
    """Run the fixed-rollout searches and print (or write) their fingerprints."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON here instead of stdout")
    parser.add_argument("--rollouts", type=int, default=12)
    args = parser.parse_args()
    housing = pd.read_csv(ROOT / "examples" / "housing.csv")
    cancer = load_breast_cancer(as_frame=True).frame
    result = {}
    for name, frame, target in (("housing", housing, "price"), ("cancer", cancer, "target")):
        with tempfile.TemporaryDirectory() as runs_dir:
            run = sela_jupyter.run(
                frame, target, rollouts=args.rollouts, parallel=1, seed=0, runs_dir=runs_dir
            )
            result[name] = fingerprint(run, runs_dir)
    text = json.dumps(result, indent=1, sort_keys=True, default=str)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
