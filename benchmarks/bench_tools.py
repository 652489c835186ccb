"""The tools under comparison, each fit on the same seeded train split, chosen with dev where it
chooses anything, and scored on the same held-out test rows by the engine's own scoring function.

Every tool is held to 2 cores: sela runs 2 simulations at a time, FLAML and XGBoost get
``n_jobs=2``, and HistGradientBoosting's OpenMP pool is capped at 2 threads.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
from resources import PeakMemory, directory_bytes
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from threadpoolctl import threadpool_limits

import sela_jupyter
from sela_jupyter.engine.cells import score_saved_predictions
from sela_jupyter.engine.ensemble import positive_code
from sela_jupyter.engine.task import Task, prepare_data

CORES = 2


@dataclass
class Split:
    """The engine's seeded 60/20/20 split of one dataset, with labels as the engine's class codes."""

    frame: pd.DataFrame  # as handed to sela
    task: Task
    X_train: pd.DataFrame
    y_train: pd.Series
    X_dev: pd.DataFrame
    y_dev: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series

    def score(self, predictions: Any) -> float:
        """Test score of ``predictions`` (codes for classification) exactly as the engine scores."""
        return score_saved_predictions(self.task, self.y_test.to_numpy(), {"predict": predictions})


def make_split(frame: pd.DataFrame, target: str, seed: int) -> Split:
    """Split ``frame`` exactly as a sela run with ``seed`` does (``prepare_data``)."""
    data = prepare_data(frame, target, seed=seed)
    task = data.task

    def xy(part: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        y = part[data.target]
        if task.is_classification:
            y = y.map({label: code for code, label in enumerate(task.classes)}).astype(int)
        return part.drop(columns=[data.target]), y

    assert data.held_out is not None
    return Split(data.frame, task, *xy(data.train), *xy(data.dev), *xy(data.held_out))


def _one_hot(dense: bool = False) -> ColumnTransformer:
    return ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=not dense),
                make_column_selector(dtype_exclude=np.number),
            )
        ],
        remainder="passthrough",
    )


def run_xgboost(split: Split, *, budget: float, seed: int, runs_dir: Path) -> dict[str, Any]:
    """Default XGBoost, one-hot categoricals, fit on train."""
    from xgboost import XGBClassifier, XGBRegressor

    model_class = XGBClassifier if split.task.is_classification else XGBRegressor
    model = model_class(n_jobs=CORES, random_state=seed)
    pipeline = make_pipeline(_one_hot(), model).fit(split.X_train, split.y_train)
    return {"test_score": split.score(pipeline.predict(split.X_test))}


#: Columns with more training levels than this are ordinal codes, not categorical features, for
#: HistGradientBoosting (whose categorical support stops at ``max_bins``, 255).
HGB_MAX_LEVELS = 250


def run_hgb(split: Split, *, budget: float, seed: int, runs_dir: Path) -> dict[str, Any]:
    """Default HistGradientBoosting with native categorical support, fit on train.

    Non-numeric columns are ordinal-encoded (unseen and missing levels become NaN) and passed as
    categorical features, except those with more than :data:`HGB_MAX_LEVELS` levels in train,
    which stay ordinal codes: the plain baseline a user gets in a few lines.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import OrdinalEncoder

    text = [c for c in split.X_train.columns if not pd.api.types.is_numeric_dtype(split.X_train[c])]
    levels = {c: split.X_train[c].nunique() for c in text}
    encode = ColumnTransformer(
        [
            (
                "levels",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                text,
            )
        ],
        remainder="passthrough",
    )
    categorical = [i for i, c in enumerate(text) if levels[c] <= HGB_MAX_LEVELS]
    model_class = (
        HistGradientBoostingClassifier
        if split.task.is_classification
        else HistGradientBoostingRegressor
    )
    model = model_class(random_state=seed, categorical_features=categorical or None)
    with threadpool_limits(limits=CORES):
        features = split.X_train.astype({c: str for c in text}).where(split.X_train.notna())
        pipeline = make_pipeline(encode, model).fit(features, split.y_train)
        test = split.X_test.astype({c: str for c in text}).where(split.X_test.notna())
        predictions = pipeline.predict(test)
    return {"test_score": split.score(predictions)}


#: AutoGluon's name of each engine metric.
_AUTOGLUON_METRICS = {
    "rmse": "root_mean_squared_error",
    "mae": "mean_absolute_error",
    "r2": "r2",
    "f1": "f1",
    "f1_weighted": "f1_weighted",
    "accuracy": "accuracy",
    "roc_auc": "roc_auc",
}


def autogluon_python() -> Path:
    """The Python of AutoGluon's own environment (``$SELA_AUTOGLUON_PYTHON``, else
    ``.venv-autogluon`` at the repository root, which ``make bench`` builds)."""
    root = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("SELA_AUTOGLUON_PYTHON", root / ".venv-autogluon/bin/python"))


def run_autogluon(split: Split, *, budget: float, seed: int, runs_dir: Path) -> dict[str, Any]:
    """AutoGluon's default preset with the same time budget, fit on train with dev as its tuning
    data (as FLAML gets dev), on 2 CPUs, in its own environment (see ``autogluon_runner.py``)."""
    python = autogluon_python()
    if not python.is_file():
        raise RuntimeError(f"no AutoGluon environment at {python}: run `make bench` first")
    task = split.task
    problem = "regression" if not task.is_classification else task.task_type
    with tempfile.TemporaryDirectory(dir=runs_dir) as tmp:
        folder = Path(tmp)
        split.X_train.assign(y__=split.y_train.to_numpy()).to_parquet(folder / "train.parquet")
        split.X_dev.assign(y__=split.y_dev.to_numpy()).to_parquet(folder / "dev.parquet")
        split.X_test.to_parquet(folder / "test.parquet")
        command = [
            str(python),
            str(Path(__file__).with_name("autogluon_runner.py")),
            str(folder),
            "--label=y__",
            f"--problem-type={problem}",
            f"--eval-metric={_AUTOGLUON_METRICS[task.metric]}",
            f"--time-limit={budget:g}",
            f"--cpus={CORES}",
        ]
        if task.task_type == "binary":
            command.append(f"--positive-class={positive_code(task)}")
        done = subprocess.run(command, capture_output=True, text=True, timeout=budget * 3 + 120)
        if done.returncode != 0:
            raise RuntimeError(f"AutoGluon failed: {done.stderr[-2000:]}")
        predictions = pd.read_parquet(folder / "predictions.parquet")["prediction"].to_numpy()
        summary = json.loads((folder / "summary.json").read_text())
    return {"test_score": split.score(predictions), "best_model": summary["best"]}


def run_flaml(split: Split, *, budget: float, seed: int, runs_dir: Path) -> dict[str, Any]:
    """FLAML ``AutoML`` with the same time budget, fit on train with dev as its validation set.

    Given ``X_val``, FLAML chooses on dev and does not refit on train + dev, so its final model has
    seen exactly what sela's has (sela's answer is fit on train; its choice uses out-of-fold refits
    over train + dev, never kept). It optimises the engine's
    metric: ``rmse`` is built in; F1 with the engine's positive class and weighted F1 are not, so
    they are passed as a custom metric that calls the engine's scoring function.
    """
    from flaml import AutoML

    task = split.task

    def engine_metric(X_val, y_val, estimator, labels, X_train, y_train, *args, **kwargs):
        score = score_saved_predictions(
            task, np.asarray(y_val), {"predict": estimator.predict(X_val)}
        )
        return 1.0 - score, {task.metric: score}

    def text_as_object(frame: pd.DataFrame) -> pd.DataFrame:
        # FLAML recognises text columns by the classic ``object`` dtype, not pandas 3's ``str``.
        text = frame.select_dtypes(exclude=[np.number, "bool"]).columns
        return frame.astype(dict.fromkeys(text, object))

    metric = "rmse" if task.metric == "rmse" else engine_metric
    automl = AutoML()
    with warnings.catch_warnings():  # its linear learner floods stderr with ConvergenceWarnings
        warnings.simplefilter("ignore")
        automl.fit(
            X_train=text_as_object(split.X_train),
            y_train=split.y_train,
            X_val=text_as_object(split.X_dev),
            y_val=split.y_dev,
            task="classification" if task.is_classification else "regression",
            metric=metric,
            time_budget=budget,
            n_jobs=CORES,
            seed=seed,
            verbose=0,
            log_file_name="",
        )
    predictions = np.asarray(automl.predict(text_as_object(split.X_test)))
    return {
        "test_score": split.score(predictions),
        "best_estimator": automl.best_estimator,
        "dev_score": None if automl.best_loss is None else _dev_from_loss(task, automl.best_loss),
    }


def _dev_from_loss(task: Task, loss: float) -> float:
    return float(loss) if task.metric == "rmse" else 1.0 - float(loss)


def simulation_overheads(run: Any) -> list[float]:
    """Per-simulation overhead (wall time minus time inside the visible cells), as
    ``benchmarks/overhead.py`` measures it, from the run's node notebooks."""
    overheads = []
    for node in run.tree:
        if not node.simulated or "finished" not in node.timings:
            continue
        path = run.path / "nodes" / node.id / "notebook.ipynb"
        if not path.is_file():
            continue
        nb = nbformat.read(path, as_version=4)
        in_cells = sum(
            c.metadata["sela"]["duration_s"]
            for c in nb.cells
            if c.cell_type == "code" and "sela" in c.metadata and "from" not in c.metadata["sela"]
        )
        overheads.append(node.timings["finished"] - node.timings["started"] - in_cells)
    return overheads


def run_sela(split: Split, *, budget: float, seed: int, runs_dir: Path) -> dict[str, Any]:
    """sela with the built-in catalog (no LLM), ``time_budget`` = the budget, every other option
    its default (as a new user runs it). It splits the frame itself; the split is checked against
    everyone else's. Its answer is the run's final candidate (chosen on dev); the best single node
    is reported too, and what the run cost: peak memory (this process and its kernels) and the
    size of its run directory."""
    started = time.perf_counter()
    with PeakMemory() as memory:
        run = sela_jupyter.run(
            split.frame,
            target=split.task.target,
            rollouts=None,
            time_budget=budget,
            seed=seed,
            runs_dir=runs_dir,
            llm="off",
        )
    wall = time.perf_counter() - started
    test_labels = pd.read_parquet(run.path / "data" / "test_labels.parquet")
    if not test_labels.index.equals(split.X_test.index):
        raise RuntimeError("sela's held-out rows differ from the harness split")
    best = run.best
    final = run.final.to_dict() if run.final else {}
    overheads = simulation_overheads(run)
    simulations = run.record.simulations
    board = run.leaderboard(limit=8)
    failed = sum(1 for node in run.tree if node.simulated and node.dev_score is None)
    return {
        # The run's answer: its final candidate (a blend of the best nodes when dev chose one).
        "test_score": final.get("test_score", None if best is None else best.test_score),
        "dev_score": final.get("dev_score", None if best is None else best.dev_score),
        "final_kind": final.get("kind"),
        "final_members": final.get("members"),
        "best_node_test_score": None if best is None else best.test_score,
        "best_node_dev_score": None if best is None else best.dev_score,
        "run_id": run.id,
        "simulations": simulations,
        "failed_simulations": failed,
        "simulations_per_minute": simulations / (wall / 60.0),
        "parallel": run.record.options.parallel,
        "peak_memory_mb": memory.peak / 2**20,
        "run_dir_mb": directory_bytes(run.path) / 2**20,
        "median_overhead_s": statistics.median(overheads) if overheads else None,
        "overheads_s": overheads,
        "best_insights": [i.text for i in run.tree.insights(best)] if best else [],
        "leaderboard": [
            {k: (None if pd.isna(v) else v) for k, v in row.items()}
            for row in board.drop(columns=["node"]).to_dict("records")
        ],
    }


TOOLS = {
    "sela": run_sela,
    "autogluon": run_autogluon,
    "flaml": run_flaml,
    "xgboost": run_xgboost,
    "hgb": run_hgb,
}
