"""Fit AutoGluon (default preset) on one benchmark split and write its test predictions.

Run by ``bench_tools.run_autogluon`` in AutoGluon's own virtual environment (AutoGluon pins
pandas, scikit-learn and pyarrow ranges of its own, so it stays out of the project's): ``make
bench`` builds it as ``.venv-autogluon`` with ``autogluon.tabular[lightgbm,catboost,xgboost]``
and no torch (PyPI's torch wheels pull CUDA packages; a CPU-only wheel is not on the registries
here), so AutoGluon runs without its neural-network models.

    python autogluon_runner.py SPLIT_DIR --label y --problem-type regression \\
        --eval-metric root_mean_squared_error --time-limit 60 --cpus 2 [--positive-class 0]

``SPLIT_DIR`` holds ``train.parquet``, ``dev.parquet`` (both with the label) and
``test.parquet``; the predictions go to ``SPLIT_DIR/predictions.parquet``, and what AutoGluon
fitted to ``SPLIT_DIR/summary.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def main() -> None:
    """Fit on train with dev as AutoGluon's tuning data, predict test."""
    from autogluon.tabular import TabularPredictor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split_dir", type=Path)
    parser.add_argument("--label", required=True)
    parser.add_argument("--problem-type", required=True)
    parser.add_argument("--eval-metric", required=True)
    parser.add_argument("--time-limit", type=float, required=True)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--positive-class", type=int, default=None)
    args = parser.parse_args()
    folder = args.split_dir
    train = pd.read_parquet(folder / "train.parquet")
    dev = pd.read_parquet(folder / "dev.parquet")
    test = pd.read_parquet(folder / "test.parquet")
    extra = {} if args.positive_class is None else {"positive_class": args.positive_class}
    predictor = TabularPredictor(
        label=args.label,
        problem_type=args.problem_type,
        eval_metric=args.eval_metric,
        path=str(folder / "autogluon"),
        verbosity=0,
        **extra,
    )
    predictor.fit(
        train,
        tuning_data=dev,
        time_limit=args.time_limit,
        num_cpus=args.cpus,
        num_gpus=0,
    )
    predictions = predictor.predict(test)
    pd.DataFrame({"prediction": predictions.to_numpy()}).to_parquet(folder / "predictions.parquet")
    board = predictor.leaderboard(silent=True)
    summary = {"best": predictor.model_best, "models": board["model"].tolist()}
    (folder / "summary.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
