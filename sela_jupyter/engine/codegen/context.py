"""The data context a stage template renders for: the profile, the task and the path's decisions.

:class:`Context` answers what the templates ask about the data (its column lists by kind, the
training rows, the task's estimator names) and what the earlier stages of the path decided (the
preprocess settings, the chosen model), so the templates never look at insights themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..catalog import PREPROCESS_DEFAULTS, CatalogEntry, entry_for
from ..families import DEFAULT_FAMILY
from ..insights import Insight
from ..task import CATEGORICAL, DATETIME, ID_LIKE, NUMERIC, TEXT, DataProfile, Task
from .source import Cell

#: Mutual information is estimated on at most this many training rows (its kNN estimator is slow).
MI_SAMPLE_ROWS = 2000


@dataclass
class Context:
    """The profile, task and decisions of the earlier stages on the path."""

    profile: DataProfile
    task: Task
    preprocess: dict[str, Any] = field(default_factory=dict)
    model: Mapping[str, Any] | None = None

    @classmethod
    def build(cls, profile: DataProfile, task: Task, path: Sequence[Insight]) -> Context:
        """The context after the built-in insights on ``path`` (others leave the defaults)."""
        context = cls(profile, task, dict(PREPROCESS_DEFAULTS))
        for insight in path:
            entry = builtin_entry(insight)
            if entry is None:
                continue  # another coder wrote that stage; its contract variables are all we use
            if entry.stage == "preprocess":
                context.preprocess.update(entry.spec)
            elif entry.stage == "model":
                context.model = entry.spec
        return context

    # column lists -------------------------------------------------------------------------

    @property
    def regression(self) -> bool:
        """The task is regression."""
        return self.task.task_type == "regression"

    @property
    def numeric(self) -> list[str]:
        """Numeric feature columns."""
        return self.profile.names(NUMERIC)

    @property
    def informative_numeric(self) -> list[str]:
        """Numeric columns with at least one value (all-missing columns carry nothing)."""
        return [
            c.name
            for c in self.profile.columns
            if c.kind == NUMERIC and c.missing < self.profile.n_rows
        ]

    @property
    def categorical(self) -> list[str]:
        """Categorical feature columns."""
        return self.profile.names(CATEGORICAL)

    @property
    def text(self) -> list[str]:
        """Free-text feature columns."""
        return self.profile.names(TEXT)

    @property
    def dates(self) -> list[str]:
        """Date and timestamp feature columns."""
        return self.profile.names(DATETIME)

    @property
    def numeric_ids(self) -> list[str]:
        """Id-like columns of a numeric dtype (a numeric column selector would pick them up)."""
        return [
            c.name
            for c in self.profile.columns
            if c.kind == ID_LIKE and _is_numeric_dtype_name(c.dtype)
        ]

    @property
    def n_inputs(self) -> int:
        """Numeric plus categorical columns: the default model inputs."""
        return len(self.numeric) + len(self.categorical)

    @property
    def train_rows(self) -> int:
        """A lower bound on the training rows (60% of the labelled rows, less 1% filtered)."""
        return max(1, int(self.profile.n_rows * 0.6 * 0.99))

    @property
    def target_transform(self) -> str | None:
        """The path's target transform (regression only), or ``None``."""
        return self.preprocess.get("target_transform") if self.regression else None

    # task-dependent names -----------------------------------------------------------------

    def estimator(self, regression: str, classification: str) -> str:
        """``regression`` for a regression task, else ``classification``."""
        return regression if self.regression else classification

    @property
    def mutual_info(self) -> str:
        """The mutual information estimator for the task."""
        return self.estimator("mutual_info_regression", "mutual_info_classif")

    @property
    def target_type(self) -> str:
        """The task as ``TargetEncoder``'s ``target_type`` names it."""
        return {"regression": "continuous"}.get(self.task.task_type, self.task.task_type)

    @property
    def model_family(self) -> str:
        """The chosen model's family name (the default model's before the model stage)."""
        return (self.model or {}).get("family", DEFAULT_FAMILY)


def mi_rows(ctx: Context, cell: Cell) -> str:
    """The frame to estimate mutual information on: ``train``, or a seeded sample of it."""
    if ctx.train_rows <= MI_SAMPLE_ROWS:
        return "train"
    cell.add(
        "# Mutual information is estimated on a sample of the training rows to stay fast.\n"
        f"sample = train.sample(n={MI_SAMPLE_ROWS}, random_state=SEED)"
    )
    return "sample"


def builtin_entry(insight: Insight) -> CatalogEntry | None:
    """The catalog entry of a built-in insight, or ``None`` for any other insight."""
    if insight.source != "builtin":
        return None
    try:
        return entry_for(insight.id)
    except KeyError:
        return None


def _is_numeric_dtype_name(dtype: str) -> bool:
    try:
        return bool(pd.api.types.is_numeric_dtype(pd.api.types.pandas_dtype(dtype)))
    except (TypeError, ValueError):
        return False
