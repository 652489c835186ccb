"""The fixed cells the harness writes (setup, evaluation) and the hidden ones it runs (snapshots).

Generated stage code never writes these. The setup cell defines the stage contract's variables; the
evaluation cell builds ``pipeline = Pipeline(steps + [("model", model)])``, fits it on train and
scores dev with the run's metric. The metric is one expression (:data:`METRIC_EXPRESSIONS`) used by
both the kernel's ``evaluate`` and the engine's test scoring, so the two can never disagree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from .kernel_helpers import kernel_helpers_source, warmup_source
from .task import Task, split_source

#: metric -> (sklearn.metrics imports, expression over y (true codes), pipeline and X)
METRIC_EXPRESSIONS: dict[str, tuple[str, str]] = {
    "f1": ("f1_score", "f1_score(y, pipeline.predict(X), pos_label=POSITIVE)"),
    "f1_weighted": ("f1_score", "f1_score(y, pipeline.predict(X), average='weighted')"),
    "accuracy": ("accuracy_score", "accuracy_score(y, pipeline.predict(X))"),
    "rmse": ("root_mean_squared_error", "root_mean_squared_error(y, pipeline.predict(X))"),
    "mae": ("mean_absolute_error", "mean_absolute_error(y, pipeline.predict(X))"),
    "r2": ("r2_score", "r2_score(y, pipeline.predict(X))"),
    "rmsle": (
        "root_mean_squared_log_error",
        "root_mean_squared_log_error(y, np.clip(pipeline.predict(X), 0, None))",
    ),
}
_ROC_AUC = {
    "binary": ("roc_auc_score", "roc_auc_score(y, pipeline.predict_proba(X)[:, 1])"),
    "multiclass": (
        "roc_auc_score",
        "roc_auc_score(y, pipeline.predict_proba(X), multi_class='ovr', average='weighted',"
        " labels=list(range(len(CLASSES))))",
    ),
}


def metric_expression(task: Task) -> tuple[str, str]:
    """The sklearn import and the scoring expression for ``task``'s metric."""
    if task.metric == "roc_auc":
        return _ROC_AUC[task.task_type]
    return METRIC_EXPRESSIONS[task.metric]


def _constants(task: Task) -> str:
    lines = [
        f"TARGET = {task.target!r}",
        f"TASK = {task.task_type!r}",
        f"METRIC = {task.metric!r}  # {task.direction}",
        f"SEED = {task.seed}",
    ]
    if task.is_classification:
        lines.append(f"CLASSES = {list(task.classes)!r}  # models see class codes 0..k-1")
    if task.task_type == "binary":
        code = list(task.classes).index(task.positive_label)
        lines.append(f"POSITIVE = {code}  # {task.positive_label!r}, the minority class")
    return "\n".join(lines)


def _evaluate_def(task: Task) -> str:
    name, expression = metric_expression(task)
    direction = "higher" if task.direction == "maximize" else "lower"
    return (
        "def evaluate(pipeline, X, y):\n"
        f'    """Score a fitted pipeline on labelled rows by {task.metric} ({direction} is better)."""\n'
        f"    return float({expression})\n"
    ), name


def _encode_labels(frames: list[str]) -> str:
    lines = ["class_codes = {label: code for code, label in enumerate(CLASSES)}"]
    lines += [f"{f}[TARGET] = {f}[TARGET].map(class_codes)" for f in frames]
    return "\n".join(lines)


def setup_source(task: Task, *, train_path: str, dev_path: str, test_path: str | None) -> str:
    """The run's setup cell: imports, constants, train/dev (test features) and ``evaluate``."""
    evaluate, metric_import = _evaluate_def(task)
    parts = [
        f"import numpy as np\nimport pandas as pd\nfrom sklearn.metrics import {metric_import}",
        _constants(task),
        f"train = pd.read_parquet({train_path!r})\ndev = pd.read_parquet({dev_path!r})",
    ]
    if test_path:
        parts[-1] += (
            f"\ntest = pd.read_parquet({test_path!r})  # features only: labels stay out of the kernel"
        )
    if task.is_classification:
        parts.append(_encode_labels(["train", "dev"]))
    parts.append("notes = {}  # findings that stages pass on to later stages\n\n\n" + evaluate)
    return "\n\n".join(parts)


def export_setup_source(
    task: Task, *, data_path: str, has_test: bool, test_path: str | None
) -> str:
    """Setup cell of an exported notebook: load the data and split it exactly as the run did."""
    evaluate, metric_import = _evaluate_def(task)
    reader = "read_parquet" if data_path.endswith(".parquet") else "read_csv"
    parts = [
        "import numpy as np\nimport pandas as pd\n"
        f"from sklearn.metrics import {metric_import}\n"
        "from sklearn.model_selection import train_test_split",
        _constants(task),
        f"data = pd.{reader}({data_path!r})\ndata = data[data[TARGET].notna()].reset_index(drop=True)\n"
        + split_source(task, has_test=has_test),
    ]
    frames = ["train", "dev"] + (["test"] if not has_test else [])
    if has_test and test_path:
        test_reader = "read_parquet" if test_path.endswith(".parquet") else "read_csv"
        parts[-1] += f"\ntest = pd.{test_reader}({test_path!r})"
        frames.append("test")
    if task.is_classification:
        if has_test:
            parts.append(
                _encode_labels(["train", "dev"])
                + "\nif TARGET in test:\n    test[TARGET] = test[TARGET].map(class_codes)"
            )
        else:
            parts.append(_encode_labels(frames))
    parts.append("notes = {}  # findings that stages pass on to later stages\n\n\n" + evaluate)
    return "\n\n".join(parts)


EVALUATION_SOURCE = """\
from sklearn.pipeline import Pipeline

pipeline = Pipeline(steps + [("model", model)])
pipeline.fit(train.drop(columns=[TARGET]), train[TARGET])
dev_score = evaluate(pipeline, dev.drop(columns=[TARGET]), dev[TARGET])
print(f"dev {METRIC}: {dev_score:.6g}")"""


def saved_scorer(task: Task) -> Callable[[Any, dict[str, Any]], float]:
    """``score(y, predictions)`` for outputs saved by the kernel, with the very expression the
    kernel's ``evaluate`` uses (``predictions`` holds ``predict`` and, where needed,
    ``predict_proba``). Compiled once: ensemble selection scores hundreds of blends."""
    import sklearn.metrics as metrics

    _, expression = metric_expression(task)
    code = compile(expression, "<sela metric>", "eval")
    base: dict[str, Any] = {"np": np, "X": None}
    base.update({k: getattr(metrics, k) for k in dir(metrics) if not k.startswith("_")})
    if task.is_classification:
        base["CLASSES"] = list(task.classes)
    if task.task_type == "binary":
        base["POSITIVE"] = list(task.classes).index(task.positive_label)

    def score(y: Any, predictions: dict[str, Any]) -> float:
        class _Saved:
            def predict(self, X: Any) -> Any:
                return predictions["predict"]

            def predict_proba(self, X: Any) -> Any:
                return predictions["predict_proba"]

        return float(eval(code, {**base, "pipeline": _Saved(), "y": y}))

    return score


def score_saved_predictions(task: Task, y: Any, predictions: dict[str, Any]) -> float:
    """Score predictions saved by the kernel with the very expression the kernel's ``evaluate`` uses."""
    return saved_scorer(task)(y, predictions)


# ---------------------------------------------------------------------------------------------
# Hidden cells: defined once per kernel, never part of a notebook.

#: Defines the hidden kernel helpers (``_sela_snapshot``, ...), from :mod:`.kernel_helpers`.
KERNEL_HELPERS = kernel_helpers_source()

#: Imports the libraries a simulation uses, so that the first one does not pay for it.
WARMUP_SOURCE = warmup_source()


def call(function: str, *args: Any) -> str:
    """Source of a call to a kernel helper with JSON-safe arguments (``None``, ``True`` and
    ``False`` as Python spells them)."""
    return f"{function}({', '.join(_literal(a) for a in args)})"


def _literal(value: Any) -> str:
    return repr(value) if value is None or isinstance(value, bool) else json.dumps(value)
