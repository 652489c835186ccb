"""The learning task: target, task type, metric, data profile and the seeded split.

Everything here is decided once per run and written to ``run.json``: the metric's direction never
changes mid-search, and the split is reproducible from the frame and the seed alone (the exported
notebook runs the same :func:`split_frame` code, see :func:`split_source`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .errors import SelaInputError
from .leaks import suspected_leaks

TASK_TYPES = ("regression", "binary", "multiclass")

#: metric name -> (direction, task types it applies to)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "f1": ("maximize", ("binary",)),
    "f1_weighted": ("maximize", ("binary", "multiclass")),
    "accuracy": ("maximize", ("binary", "multiclass")),
    "roc_auc": ("maximize", ("binary", "multiclass")),
    "rmse": ("minimize", ("regression",)),
    "mae": ("minimize", ("regression",)),
    "r2": ("maximize", ("regression",)),
    "rmsle": ("minimize", ("regression",)),
}

DEFAULT_METRIC = {"binary": "f1", "multiclass": "f1_weighted", "regression": "rmse"}

# Column kinds the profile assigns; the insight catalog conditions on them.
NUMERIC, CATEGORICAL, TEXT, DATETIME, ID_LIKE = "numeric", "categorical", "text", "datetime", "id"

_ID_NAME = re.compile(r"(^|_)(id|index|rownames|uuid|key)$", re.IGNORECASE)
_MIN_ROWS = 20
_MIN_STRATIFY_COUNT = 5
_ID_SIGNAL = 0.1  # |Spearman| with the target above which an id-like column is kept


@dataclass(frozen=True)
class Task:
    """What is learned and how it is scored, fixed once per run."""

    target: str
    task_type: str
    metric: str
    seed: int = 0
    positive_label: Any = None
    classes: tuple[Any, ...] = ()
    #: Errors are divided by this before ``1/(1+s)``: the target's standard deviation for
    #: rmse and mae, so rewards sit on the same 0..1 scale as F1 whatever the target's units.
    score_scale: float = 1.0

    @property
    def direction(self) -> str:
        """``"maximize"`` or ``"minimize"``; fixed by the metric."""
        return METRICS[self.metric][0]

    @property
    def is_classification(self) -> bool:
        """True for binary and multiclass tasks."""
        return self.task_type != "regression"

    def reward(self, score: float | None) -> float:
        """Map a dev score to an MCTS reward, higher is better, failures 0.

        Lower-is-better metrics map to ``1/(1+s/scale)`` (see :attr:`score_scale`).
        """
        if score is None or not np.isfinite(score):
            return 0.0
        if self.direction == "minimize":
            return 1.0 / (1.0 + max(score, 0.0) / self.score_scale)
        return max(float(score), 0.0)

    def better(self, a: float | None, b: float | None) -> bool:
        """True when score ``a`` beats score ``b`` (``None`` loses to anything)."""
        if a is None:
            return False
        if b is None:
            return True
        return a < b if self.direction == "minimize" else a > b

    def error_gap(self, score: float, best: float) -> float:
        """How much worse ``score`` is than ``best``, relative to ``best``'s error: 0.1 is 10 %
        more error. The error is the score itself for lower-is-better metrics and ``1 - score``
        for the others (each at most 1), so the gap compares across metrics and scales."""
        error, best_error = (
            (score, best) if self.direction == "minimize" else (1.0 - score, 1.0 - best)
        )
        if error <= best_error:
            return 0.0
        return (error - best_error) / best_error if best_error > 1e-12 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``run.json``."""
        data = asdict(self)
        data["classes"] = [_json_scalar(c) for c in self.classes]
        data["positive_label"] = _json_scalar(self.positive_label)
        data["direction"] = self.direction
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        """Inverse of :meth:`to_dict`."""
        return cls(
            target=data["target"],
            task_type=data["task_type"],
            metric=data["metric"],
            seed=int(data.get("seed", 0)),
            positive_label=data.get("positive_label"),
            classes=tuple(data.get("classes", ())),
            score_scale=float(data.get("score_scale", 1.0)),
        )


@dataclass
class ColumnProfile:
    """One feature column as the profile sees it."""

    name: str
    dtype: str
    kind: str
    missing: int
    unique: int
    examples: list[str] = field(default_factory=list)
    note: str = ""
    warning: str = ""  # e.g. a suspected leak: something a person should look at before trusting


@dataclass
class DataProfile:
    """What the insight proposers and coders know about the data (never the data itself)."""

    n_rows: int
    n_features: int
    target: str
    task_type: str
    columns: list[ColumnProfile]
    target_summary: dict[str, Any]
    metadata: dict[str, int]
    head: str
    dropped_target_rows: int = 0

    def names(self, kind: str) -> list[str]:
        """Feature column names of one kind (``numeric``, ``categorical``, ``text``, ...)."""
        return [c.name for c in self.columns if c.kind == kind]

    @property
    def missing_columns(self) -> list[str]:
        """Feature columns with at least one missing value."""
        return [c.name for c in self.columns if c.missing > 0]

    @property
    def warnings(self) -> list[str]:
        """One line per column a person should look at (a suspected leak, a row id the search
        uses as a feature), naming the column."""
        return [f"{c.name}: {c.warning}" for c in self.columns if c.warning]

    @property
    def skewed_target(self) -> bool:
        """True for a positive regression target whose skew makes a log transform worth trying."""
        summary = self.target_summary
        return (
            self.task_type == "regression"
            and summary.get("min", -1) >= 0
            and abs(summary.get("skew", 0.0)) > 0.75
        )

    @property
    def imbalanced(self) -> bool:
        """True for a classification target whose rarest class is under a third of the largest."""
        counts = self.target_summary.get("counts", {})
        if len(counts) < 2:
            return False
        return min(counts.values()) / max(counts.values()) < 1 / 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``run.json``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataProfile:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["columns"] = [ColumnProfile(**c) for c in data["columns"]]
        return cls(**data)

    def summary(self) -> str:
        """A few lines a person reads before a search starts."""
        kinds = {k: self.names(k) for k in (NUMERIC, CATEGORICAL, TEXT, DATETIME, ID_LIKE)}
        lines = [
            f"{self.n_rows} rows x {self.n_features} features, target {self.target!r} "
            f"({self.task_type})",
            "columns: " + ", ".join(f"{len(v)} {k}" for k, v in kinds.items() if v),
        ]
        if self.missing_columns:
            lines.append("missing values in: " + ", ".join(self.missing_columns[:10]))
        if kinds[ID_LIKE]:
            lines.append("id-like (ignored by default): " + ", ".join(kinds[ID_LIKE]))
        lines += [f"{c.name}: {c.note}" for c in self.columns if c.note and not c.warning]
        lines += [f"warning, {line}" for line in self.warnings]
        if self.dropped_target_rows:
            lines.append(f"{self.dropped_target_rows} rows without a target value are left out")
        return "\n".join(lines)


def validate_frame(frame: Any, target: str) -> pd.DataFrame:
    """Check that ``frame`` can be searched for ``target``; raise :class:`SelaInputError` if not.

    Returns the rows that have a target value (a new frame; the caller's is never changed).
    """
    if not isinstance(frame, pd.DataFrame):
        raise SelaInputError(
            f"expected a pandas DataFrame, got {type(frame).__name__}; "
            "wrap your data with pd.DataFrame(...) first"
        )
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise SelaInputError(
            f"the DataFrame is empty ({frame.shape[0]} rows, {frame.shape[1]} columns)"
        )
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        raise SelaInputError(
            "duplicated column names: "
            + ", ".join(repr(c) for c in duplicated)
            + "; rename them so every column has its own name"
        )
    if target not in frame.columns:
        close = difflib.get_close_matches(str(target), [str(c) for c in frame.columns], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise SelaInputError(
            f"target column {target!r} not found in the DataFrame{hint} "
            f"(columns: {', '.join(map(str, frame.columns[:20]))})"
        )
    labelled = frame[frame[target].notna()]
    if labelled.empty:
        raise SelaInputError(f"target column {target!r} has no values: every row is missing")
    if labelled[target].nunique() < 2:
        raise SelaInputError(
            f"target column {target!r} has a single value ({_json_scalar(labelled[target].iloc[0])!r}); "
            "there is nothing to learn"
        )
    if frame.shape[1] < 2:
        raise SelaInputError(f"the DataFrame has no feature columns besides {target!r}")
    if len(labelled) < _MIN_ROWS:
        raise SelaInputError(
            f"only {len(labelled)} rows have a target value; at least {_MIN_ROWS} are needed "
            "to split train, dev and test"
        )
    return labelled


def infer_task_type(y: pd.Series) -> str:
    """Guess regression, binary or multiclass from the target's values."""
    y = y.dropna()
    n_unique = y.nunique()
    if pd.api.types.is_bool_dtype(y) or n_unique == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(y):
        integral = bool(np.all(np.equal(np.mod(y.to_numpy(dtype=float), 1), 0)))
        if integral and n_unique <= min(20, max(3, len(y) // 20)):
            return "multiclass"
        return "regression"
    return "multiclass"


def make_task(
    frame: pd.DataFrame,
    target: str,
    *,
    task_type: str | None = None,
    metric: str | None = None,
    seed: int = 0,
) -> Task:
    """Fix the task for ``frame``: task type (inferred unless given), metric and positive class."""
    y = frame[target].dropna()
    if task_type is None:
        task_type = infer_task_type(y)
    if task_type not in TASK_TYPES:
        raise SelaInputError(f"unknown task {task_type!r}; choose one of {', '.join(TASK_TYPES)}")
    if task_type == "regression" and not pd.api.types.is_numeric_dtype(y):
        raise SelaInputError(f"task 'regression' needs a numeric target, {target!r} is {y.dtype}")
    if task_type == "binary" and y.nunique() != 2:
        raise SelaInputError(f"task 'binary' needs 2 classes, {target!r} has {y.nunique()}")
    metric = metric or DEFAULT_METRIC[task_type]
    if metric not in METRICS:
        raise SelaInputError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if task_type not in METRICS[metric][1]:
        allowed = [m for m, (_, tasks) in METRICS.items() if task_type in tasks]
        raise SelaInputError(
            f"metric {metric!r} does not apply to a {task_type} task; use one of {', '.join(allowed)}"
        )
    if metric == "rmsle" and (y < 0).any():
        raise SelaInputError(
            f"metric 'rmsle' needs a non-negative target; {target!r} has negatives"
        )
    classes: tuple[Any, ...] = ()
    positive = None
    if task_type != "regression":
        counts = y.value_counts()
        classes = tuple(_json_scalar(c) for c in sorted(counts.index, key=str))
        if task_type == "binary":
            # The minority class is the positive one; ties go to the later label in sort order.
            positive = _json_scalar(min(counts.index, key=lambda c: (counts[c], -classes.index(c))))
    scale = 1.0
    if metric in ("rmse", "mae"):
        scale = float(y.astype(float).std()) or 1.0
    return Task(target, task_type, metric, seed, positive, classes, scale)


def profile_frame(
    frame: pd.DataFrame,
    task: Task,
    *,
    dropped_target_rows: int = 0,
    train: pd.DataFrame | None = None,
) -> DataProfile:
    """Describe ``frame``'s columns and target for the insight proposers (and people).

    With ``train`` (the training rows), a numeric column that looks like a row id but tracks the
    target there (rows sorted by something meaningful) is kept as a numeric feature, with a
    warning, since its value carries over only to rows numbered the same way; a column that
    predicts the target almost alone there gets a warning that it may be a leak.
    """
    features = frame.drop(columns=[task.target])
    n = len(frame)
    columns = [_profile_column(features[name], n) for name in features.columns]
    if train is not None:
        for column in columns:
            if column.kind == ID_LIKE and pd.api.types.is_numeric_dtype(features[column.name]):
                rho = _rank_correlation(train[column.name], train[task.target], task)
                if abs(rho) >= _ID_SIGNAL:
                    column.kind = NUMERIC
                    column.note = (
                        f"looks like a row id, but tracks {task.target!r} on the training rows "
                        f"(Spearman {rho:+.2f}): kept as a feature"
                    )
                    column.warning = (
                        f"a row id that tracks {task.target!r} (Spearman {rho:+.2f} on the "
                        "training rows); the search uses it, which holds only for new rows "
                        "numbered the same way"
                    )
        _note_leaks(columns, train, task)
    y = frame[task.target]
    if task.is_classification:
        counts = {str(k): int(v) for k, v in y.value_counts().items()}
        target_summary: dict[str, Any] = {"counts": counts, "n_classes": len(counts)}
    else:
        values = y.astype(float)
        target_summary = {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "skew": float(values.skew()),
        }
    numeric = sum(c.kind == NUMERIC for c in columns)
    metadata = {
        "NumberOfInstances": n,
        "NumberOfFeatures": features.shape[1],
        "NumberOfClasses": int(y.nunique()) if task.is_classification else 0,
        "NumberOfMissingValues": int(features.isna().sum().sum()),
        "NumberOfInstancesWithMissingValues": int(features.isna().any(axis=1).sum()),
        "NumberOfNumericFeatures": numeric,
        "NumberOfSymbolicFeatures": features.shape[1] - numeric,
    }
    with pd.option_context("display.max_columns", 30, "display.width", 200):
        head = frame.head(5).to_string(max_colwidth=40)
    return DataProfile(
        n_rows=n,
        n_features=features.shape[1],
        target=task.target,
        task_type=task.task_type,
        columns=columns,
        target_summary=target_summary,
        metadata=metadata,
        head=head,
        dropped_target_rows=dropped_target_rows,
    )


def split_frame(
    frame: pd.DataFrame, task: Task, *, has_test: bool = False
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Seeded 60/20/20 train/dev/test split (train/dev 75/25 when a separate test frame exists).

    Stratified for classification when every class has enough rows. The exported notebook runs
    exactly this logic (:func:`split_source`), so both see the same rows.
    """
    stratify = _stratify_column(frame, task)
    if has_test:
        train, dev = train_test_split(
            frame, test_size=0.25, random_state=task.seed, stratify=stratify
        )
        return train, dev, None
    rest, test = train_test_split(frame, test_size=0.2, random_state=task.seed, stratify=stratify)
    stratify = _stratify_column(rest, task)
    train, dev = train_test_split(rest, test_size=0.25, random_state=task.seed, stratify=stratify)
    return train, dev, test


def split_source(task: Task, *, has_test: bool = False, frame_name: str = "data") -> str:
    """Python source that reproduces :func:`split_frame` with only pandas and scikit-learn."""
    strat = (
        f"{frame_name}[TARGET] if {frame_name}[TARGET].value_counts().min() >= "
        f"{_MIN_STRATIFY_COUNT} else None"
    )
    if has_test:
        return (
            f"train, dev = train_test_split(\n"
            f"    {frame_name}, test_size=0.25, random_state=SEED,\n"
            f"    stratify={strat if task.is_classification else 'None'},\n)"
        )
    rest_strat = (
        f"rest[TARGET] if rest[TARGET].value_counts().min() >= {_MIN_STRATIFY_COUNT} else None"
    )
    return (
        f"rest, test = train_test_split(\n"
        f"    {frame_name}, test_size=0.2, random_state=SEED,\n"
        f"    stratify={strat if task.is_classification else 'None'},\n)\n"
        f"train, dev = train_test_split(\n"
        f"    rest, test_size=0.25, random_state=SEED,\n"
        f"    stratify={rest_strat if task.is_classification else 'None'},\n)"
    )


def _note_leaks(columns: list[ColumnProfile], train: pd.DataFrame, task: Task) -> None:
    """Warn about each column that predicts the target almost alone on the training rows."""
    judged = {c.name: c for c in columns if c.kind in (NUMERIC, CATEGORICAL)}
    for leak in suspected_leaks(train, task.target, task.task_type, list(judged), seed=task.seed):
        warning = f"{leak.evidence}. A leak? Drop the column unless it is known when you predict"
        judged[leak.column].warning = warning


def _rank_correlation(column: pd.Series, y: pd.Series, task: Task) -> float:
    """Spearman correlation with the target (0 for multiclass, whose codes have no order)."""
    if task.task_type == "multiclass":
        return 0.0
    if task.task_type == "binary":
        y = (y == task.positive_label).astype(float)
    rho = column.astype(float).corr(y.astype(float), method="spearman")
    return 0.0 if pd.isna(rho) else float(rho)


def _stratify_column(frame: pd.DataFrame, task: Task) -> pd.Series | None:
    if not task.is_classification:
        return None
    y = frame[task.target]
    return y if y.value_counts().min() >= _MIN_STRATIFY_COUNT else None


def _profile_column(column: pd.Series, n_rows: int) -> ColumnProfile:
    non_null = column.dropna()
    unique = int(non_null.nunique())
    examples = [str(v)[:40] for v in non_null.unique()[:3]]
    return ColumnProfile(
        name=str(column.name),
        dtype=str(column.dtype),
        kind=_column_kind(column, non_null, unique, n_rows),
        missing=int(column.isna().sum()),
        unique=unique,
        examples=examples,
    )


def _column_kind(column: pd.Series, non_null: pd.Series, unique: int, n_rows: int) -> str:
    if pd.api.types.is_bool_dtype(column):
        return CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(column):
        return DATETIME
    all_distinct = unique >= 0.98 * max(len(non_null), 1) and len(non_null) > 20
    if pd.api.types.is_numeric_dtype(column):
        integral = pd.api.types.is_integer_dtype(column)
        if (
            integral
            and all_distinct
            and (_ID_NAME.search(str(column.name)) or non_null.is_monotonic_increasing)
        ):
            return ID_LIKE
        return NUMERIC
    if isinstance(column.dtype, pd.CategoricalDtype):
        return CATEGORICAL
    text = non_null.astype(str)
    if len(text) and _looks_like_dates(text):
        return DATETIME
    words = text.str.split().str.len().mean() if len(text) else 0
    if words >= 4 and unique > 0.3 * max(len(text), 1):
        return TEXT
    if all_distinct:
        return ID_LIKE
    return CATEGORICAL


def _looks_like_dates(text: pd.Series) -> bool:
    sample = text.head(200)
    if sample.str.fullmatch(r"[-+]?\d+(\.\d+)?").mean() > 0.5:
        return False  # plain numbers stored as strings are not dates
    # Dates carry a 4-digit year or separated day/month/year parts; "1st", "2nd" do not count.
    datelike = sample.str.contains(r"\d{4}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2}")
    if not datelike.all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.9)


def _json_scalar(value: Any) -> Any:
    """numpy scalars -> plain Python, so labels survive JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class PreparedData:
    """A frame checked and described for a run: the task, profile and seeded split."""

    frame: pd.DataFrame  # as given (column names as strings)
    target: str
    task: Task
    profile: DataProfile
    train: pd.DataFrame
    dev: pd.DataFrame
    held_out: pd.DataFrame | None  # the 20% test split; None when a test frame was given
    test: pd.DataFrame | None  # the separate test frame, if any


def prepare_data(
    frame: Any,
    target: str,
    *,
    test: Any = None,
    task_type: str | None = None,
    metric: str | None = None,
    seed: int = 0,
) -> PreparedData:
    """Validate, fix the task, split and profile, exactly as a run does (the caller's frames are
    never modified). Raises :class:`SelaInputError` with one clear message on bad input."""
    labelled = validate_frame(frame, target)
    if test is not None and not isinstance(test, pd.DataFrame):
        raise SelaInputError(f"the test data must be a DataFrame, got {type(test).__name__}")
    if any(not isinstance(c, str) for c in frame.columns):
        # Parquet and the generated code both want string column names: use str(name) throughout.
        frame, labelled, target = (
            frame.rename(columns=str),
            labelled.rename(columns=str),
            str(target),
        )
        if test is not None:
            test = test.rename(columns=str)
    if test is not None:
        missing = [c for c in labelled.columns if c != target and c not in test.columns]
        if missing:
            raise SelaInputError(f"the test data lacks feature columns: {', '.join(missing[:10])}")
    task = make_task(labelled, target, task_type=task_type, metric=metric, seed=seed)
    labelled = labelled.reset_index(drop=True)
    train, dev, held_out = split_frame(labelled, task, has_test=test is not None)
    profile = profile_frame(
        labelled, task, dropped_target_rows=len(frame) - len(labelled), train=train
    )
    return PreparedData(frame, target, task, profile, train, dev, held_out, test)
