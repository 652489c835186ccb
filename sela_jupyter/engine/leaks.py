"""Feature columns that predict the target almost on their own: likely leaks.

A column that is a copy, a transform or a consequence of the target (``Today``'s return next to the
``Direction`` it determines, a ``price_eur`` next to ``price``) makes every pipeline look perfect on
dev and fail in use. The search cannot tell such a column from a good feature, so the profile only
flags it and says why; the person decides whether it is known at prediction time.

The check looks at the training rows only. Each column predicts the target by itself, fit on one
half of those rows and judged on the other half, so a column that merely memorises rows (an id, a
free-text field) does not look predictive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

#: Share of the majority-class errors a column must remove on its own to be flagged (classification).
ERRORS_REMOVED = 0.98
#: |Spearman| with a regression target from which a numeric column is flagged.
RANK_CORRELATION = 0.995
#: Held-out R² of a category's mean target from which a categorical column is flagged (regression).
CATEGORY_R2 = 0.99
#: Rows judged at least; smaller tables are too small to tell a leak from luck.
MIN_ROWS = 40
#: Rows sampled from a larger training set (the check stays well under a second).
MAX_ROWS = 4000


@dataclass(frozen=True)
class Leak:
    """One suspicious column and the evidence, in words a person reads."""

    column: str
    evidence: str


def suspected_leaks(
    train: pd.DataFrame,
    target: str,
    task_type: str,
    columns: list[str],
    *,
    seed: int = 0,
) -> list[Leak]:
    """The ``columns`` of ``train`` that predict ``target`` almost alone, in column order."""
    labelled = train[train[target].notna()]
    if len(labelled) < MIN_ROWS:
        return []
    if len(labelled) > MAX_ROWS:
        labelled = labelled.sample(MAX_ROWS, random_state=seed)
    order = np.random.default_rng(seed).permutation(len(labelled))
    fit_rows, judge_rows = order[: len(order) // 2], order[len(order) // 2 :]
    if task_type == "regression":
        y = labelled[target].astype(float)
    else:
        y = pd.Series(pd.factorize(labelled[target])[0], index=labelled.index, name=target)
        majority = int(y.iloc[fit_rows].mode().iloc[0])
        baseline_error = float((y.iloc[judge_rows] != majority).mean())
        if baseline_error == 0:
            return []
    found = []
    for name in columns:
        column = labelled[name]
        if column.nunique(dropna=False) < 2:  # missing or not can be the whole story
            continue
        if task_type == "regression":
            evidence = _regression_evidence(column, y, fit_rows, judge_rows)
        else:
            evidence = _classification_evidence(
                column, y, fit_rows, judge_rows, majority, baseline_error
            )
        if evidence:
            found.append(Leak(name, evidence))
    return found


def _classification_evidence(
    column: pd.Series,
    codes: pd.Series,
    fit_rows: np.ndarray,
    judge_rows: np.ndarray,
    majority: int,
    baseline_error: float,
) -> str | None:
    y_fit, y_judge = codes.iloc[fit_rows], codes.iloc[judge_rows]
    if _is_number(column):
        x = column.astype(float).to_numpy().reshape(-1, 1)  # the tree routes missing values
        tree = DecisionTreeClassifier(max_depth=3, random_state=0)
        tree.fit(x[fit_rows], y_fit)
        predicted = tree.predict(x[judge_rows])
        how = "a 3-level tree on it"
    else:
        keys = column.astype(str)
        predicted = keys.iloc[judge_rows].map(_majority_by_value(keys.iloc[fit_rows], y_fit))
        predicted = predicted.fillna(majority).to_numpy()
        how = "each value's majority class"
    error = float((predicted != y_judge.to_numpy()).mean())
    if error > (1 - ERRORS_REMOVED) * baseline_error:
        return None
    return (
        f"predicts {codes.name!r} almost alone: {how} gets accuracy {1 - error:.3f} on held-back "
        f"training rows, against {1 - baseline_error:.3f} for the majority class"
    )


def _is_number(column: pd.Series) -> bool:
    """Numbers a tree can split or a rank can order (booleans count as categories, as in the
    profile)."""
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _majority_by_value(keys: pd.Series, codes: pd.Series) -> pd.Series:
    """Each value's most frequent class code (ties to the smaller code)."""
    pairs = pd.DataFrame({"key": keys.to_numpy(), "code": codes.to_numpy()})
    counts = pairs.value_counts().reset_index(name="n")
    counts = counts.sort_values(["key", "n", "code"], ascending=[True, False, True])
    return counts.drop_duplicates("key").set_index("key")["code"]


def _regression_evidence(
    column: pd.Series, y: pd.Series, fit_rows: np.ndarray, judge_rows: np.ndarray
) -> str | None:
    if _is_number(column):
        rho = column.astype(float).corr(y, method="spearman")
        if pd.isna(rho) or abs(rho) < RANK_CORRELATION:
            return None
        return f"tracks {y.name!r} almost exactly: Spearman {rho:+.3f} on the training rows"
    keys = column.astype(str)
    means = y.iloc[fit_rows].groupby(keys.iloc[fit_rows].to_numpy()).mean()
    y_judge = y.iloc[judge_rows]
    predicted = keys.iloc[judge_rows].map(means).fillna(float(y.iloc[fit_rows].mean()))
    spread = float(((y_judge - y_judge.mean()) ** 2).sum())
    if spread == 0:
        return None
    r2 = 1 - float(((y_judge - predicted) ** 2).sum()) / spread
    if r2 < CATEGORY_R2:
        return None
    return (
        f"determines {y.name!r} almost alone: each value's mean target explains R² {r2:.3f} "
        "of held-back training rows"
    )
