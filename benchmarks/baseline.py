"""A sela run against default XGBoost (one-hot encoded) on the very same train/dev/test split.

    python benchmarks/baseline.py [--data examples/housing.csv] [--target price] [--rollouts 10]

Prints both test scores. The baseline is what a user gets from ``XGBRegressor()`` /
``XGBClassifier()`` with one-hot encoded categoricals and no tuning.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from xgboost import XGBClassifier, XGBRegressor

import sela_jupyter
from sela_jupyter.engine.cells import score_saved_predictions

ROOT = Path(__file__).resolve().parent.parent


def default_xgboost_score(run: Any) -> float:
    """Test score of default XGBoost with one-hot categoricals on ``run``'s own split."""
    data = run.path / "data"
    task = run.task
    train = pd.read_parquet(data / "train.parquet")
    test_x = pd.read_parquet(data / "test_features.parquet")
    test_y = pd.read_parquet(data / "test_labels.parquet")[task.target]
    y = train[task.target]
    if task.is_classification:
        codes = {label: code for code, label in enumerate(task.classes)}
        y, test_y = y.map(codes), test_y.map(codes)
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore"),
                make_column_selector(dtype_exclude=np.number),
            )
        ],
        remainder="passthrough",
    )
    model = XGBClassifier(n_jobs=2) if task.is_classification else XGBRegressor(n_jobs=2)
    pipeline = make_pipeline(encode, model).fit(train.drop(columns=[task.target]), y)
    saved = {"predict": pipeline.predict(test_x)}
    if task.metric == "roc_auc":
        saved["predict_proba"] = pipeline.predict_proba(test_x)
    return score_saved_predictions(task, test_y.to_numpy(), saved)


def compare(
    frame: pd.DataFrame, target: str, *, rollouts: int, parallel: int, seed: int, runs_dir: str
) -> dict[str, Any]:
    """Run sela and the baseline; both test scores, the metric and its direction."""
    started = time.perf_counter()
    run = sela_jupyter.run(
        frame, target=target, rollouts=rollouts, parallel=parallel, seed=seed, runs_dir=runs_dir
    )
    wall = time.perf_counter() - started
    best = run.best
    return {
        "run": run,
        "metric": run.task.metric,
        "direction": run.task.direction,
        "sela_test": best.test_score if best else None,
        "sela_dev": best.dev_score if best else None,
        "best_insights": [i.text for i in run.tree.insights(best)] if best else [],
        "xgboost_test": default_xgboost_score(run),
        "wall_s": wall,
    }


def main() -> None:
    """Print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "examples" / "housing.csv"))
    parser.add_argument("--target", default="price")
    parser.add_argument("--rollouts", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = compare(
            pd.read_csv(args.data),
            args.target,
            rollouts=args.rollouts,
            parallel=args.parallel,
            seed=args.seed,
            runs_dir=tmp,
        )
    metric = result["metric"]
    print(f"{Path(args.data).name}: {args.rollouts} rollouts in {result['wall_s']:.1f} s")
    print(
        f"  sela best node  test {metric} {result['sela_test']:.6g} (dev {result['sela_dev']:.6g})"
    )
    for text in result["best_insights"]:
        print(f"      - {text}")
    print(f"  default XGBoost test {metric} {result['xgboost_test']:.6g}")


if __name__ == "__main__":
    main()
