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

CONTRACT_VARIABLES = ("train", "dev", "test", "TARGET", "TASK", "METRIC", "SEED", "notes")


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

KERNEL_HELPERS = r'''
def _sela_versions():
    import importlib, sys
    out = {"python": sys.version.split()[0]}
    for name in ("numpy", "pandas", "sklearn", "xgboost", "cloudpickle", "scipy"):
        try:
            out[name] = importlib.import_module(name).__version__
        except Exception:
            out[name] = None
    return out


def _sela_user_names():
    ip = get_ipython()
    hidden = set(ip.user_ns_hidden)
    return [k for k in list(ip.user_ns) if not k.startswith("_") and k not in hidden]


def _sela_snapshot(path):
    """Pickle the user's variables (modules by name) so a child kernel can resume from them."""
    import os, types, cloudpickle
    ns = get_ipython().user_ns
    state, modules, skipped = {}, {}, []
    for name in _sela_user_names():
        value = ns[name]
        if isinstance(value, types.ModuleType):
            modules[name] = value.__name__
        else:
            state[name] = value
    try:
        payload = cloudpickle.dumps({"versions": _sela_versions(), "modules": modules, "state": state})
    except Exception:
        for name in list(state):
            try:
                cloudpickle.dumps(state[name])
            except Exception:
                skipped.append(name)
                del state[name]
        payload = cloudpickle.dumps({"versions": _sela_versions(), "modules": modules, "state": state})
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, path)
    return {"bytes": len(payload), "skipped": skipped}


def _sela_restore(path):
    """Load a snapshot into this kernel; False (nothing loaded) if it is missing, unreadable or
    was taken with other library versions: the caller then replays the stage code instead."""
    import importlib, cloudpickle
    try:
        with open(path, "rb") as f:
            snap = cloudpickle.load(f)
    except Exception:
        return False
    if snap.get("versions") != _sela_versions():
        return False
    ns = get_ipython().user_ns
    for name, module in snap["modules"].items():
        ns[name] = importlib.import_module(module)
    ns.update(snap["state"])
    return True


def _sela_limit_threads(n):
    """Hold this kernel to ``n`` threads: its BLAS and OpenMP pools, and every ``n_jobs`` of
    the estimators the stage code built (``steps`` and ``model``) that asks for more."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(limits=n)
    ns = get_ipython().user_ns
    built = [ns.get("model")] + [
        step[1] for step in ns.get("steps") or [] if isinstance(step, tuple) and len(step) > 1
    ]
    for estimator in built:
        try:
            params = estimator.get_params(deep=True)
        except Exception:
            continue
        for key, value in params.items():
            jobs = key.rsplit("__", 1)[-1] == "n_jobs"
            if jobs and isinstance(value, int) and (value < 0 or value > n):
                try:
                    estimator.set_params(**{key: n})
                except Exception:
                    pass


def _sela_reset():
    """Forget the last simulation's variables; imported modules stay warm in sys.modules."""
    ns = get_ipython().user_ns
    for name in _sela_user_names():
        del ns[name]
    import gc
    gc.collect()


def _sela_fingerprint():
    """A digest of what the evaluation cell would fit (``steps``, ``model``, the training rows),
    or None when they cannot be pickled. Cell-defined functions pickle by value, with a file name
    that differs between kernels, so a digest can miss a match but never invent one."""
    import hashlib, cloudpickle
    import pandas as pd
    ns = get_ipython().user_ns
    try:
        digest = hashlib.sha256(cloudpickle.dumps((ns["steps"], ns["model"])))
        train = ns["train"]
        digest.update(repr(list(train.columns)).encode())
        digest.update(pd.util.hash_pandas_object(train, index=True).to_numpy().tobytes())
        return digest.hexdigest()
    except Exception:
        return None


def _sela_save_predictions(path):
    """Save the fitted pipeline's dev and test outputs (class probabilities where the model has
    them): test scores and the final ensemble are computed from these, outside the kernel."""
    import os, cloudpickle
    import numpy as np, pandas as pd
    ns = get_ipython().user_ns
    pipeline = ns["pipeline"]
    frames = {"dev": ns["dev"].drop(columns=[ns["TARGET"]])}
    if isinstance(ns.get("test"), pd.DataFrame):
        frames["test"] = ns["test"].drop(columns=[ns["TARGET"]], errors="ignore")
    out = {}
    for part, X in frames.items():
        out[part] = {"predict": np.asarray(pipeline.predict(X))}
        if ns["TASK"] != "regression" and hasattr(pipeline, "predict_proba"):
            try:
                out[part]["predict_proba"] = np.asarray(pipeline.predict_proba(X), dtype=float)
            except Exception:  # e.g. an SVC without probability=True: hard votes only
                pass
    with open(path + ".tmp", "wb") as f:
        cloudpickle.dump(out, f)
    os.replace(path + ".tmp", path)


def _sela_cv_predictions(path, train_path, folds):
    """Out-of-fold outputs of the evaluated pipeline over every original training row, then
    every dev row: ``folds`` refits of ``clone(pipeline)``, stratified for classifiers, with the
    same folds in every kernel of the run. Rows the stage code dropped from ``train`` are still
    predicted, never fitted. Saved like ``_sela_save_predictions``'s parts; returns the number of
    rows, or 0 when the stage code reshaped the rows or columns so no fair folds exist."""
    import os, cloudpickle
    import numpy as np, pandas as pd
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold
    ns = get_ipython().user_ns
    target, train, dev = ns["TARGET"], ns["train"], ns["dev"]
    original = pd.read_parquet(train_path)
    classifier = ns["TASK"] != "regression"
    if classifier:
        codes = {label: code for code, label in enumerate(ns["CLASSES"])}
        original[target] = original[target].map(codes)
    columns = [c for c in train.columns if c != target]
    if (
        list(columns) != [c for c in dev.columns if c != target]
        or not set(columns) <= set(original.columns)
        or not train.index.isin(original.index).all()
        or original.index.isin(dev.index).any()
    ):
        return 0
    rows = pd.concat([original[columns + [target]], dev[columns + [target]]])
    own = pd.concat([train[columns + [target]], dev[columns + [target]]])
    y = rows[target].to_numpy()
    if classifier and np.bincount(y.astype(int)).min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=ns["SEED"])
    else:
        splitter = KFold(folds, shuffle=True, random_state=ns["SEED"])
    k = len(ns["CLASSES"]) if classifier else 0
    predict, proba = None, np.zeros((len(rows), k)) if classifier else None
    for fit_at, held_at in splitter.split(rows, y):
        fit = own[own.index.isin(rows.index[fit_at])]
        fold = clone(ns["pipeline"]).fit(fit[columns], fit[target])
        held = rows.iloc[held_at][columns]
        values = np.asarray(fold.predict(held))
        if predict is None:
            predict = np.empty(len(rows), dtype=values.dtype)
        predict[held_at] = values
        if proba is not None:
            try:
                p = np.asarray(fold.predict_proba(held), dtype=float)
            except Exception:  # hard votes only (an SVC without probability=True)
                p = None
            if p is None or p.shape != (len(held_at), k):
                proba = None
            else:
                proba[held_at] = p
    out = {"predict": predict}
    if proba is not None:
        out["predict_proba"] = proba
    with open(path + ".tmp", "wb") as f:
        cloudpickle.dump(out, f)
    os.replace(path + ".tmp", path)
    return len(rows)
'''

WARMUP_SOURCE = """
def _sela_warm():
    import importlib
    for name in ("numpy", "pandas", "sklearn", "sklearn.pipeline", "sklearn.compose",
                 "sklearn.preprocessing", "sklearn.impute", "sklearn.metrics",
                 "sklearn.model_selection", "sklearn.linear_model", "sklearn.ensemble",
                 "sklearn.feature_selection", "sklearn.feature_extraction.text",
                 "sklearn.neighbors", "sklearn.svm", "xgboost", "cloudpickle", "pyarrow"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
_sela_warm()
"""


def call(function: str, *args: Any) -> str:
    """Source of a call to a kernel helper with JSON-safe arguments."""
    return f"{function}({', '.join(json.dumps(a) for a in args)})"
