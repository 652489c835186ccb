"""Columns that predict the target almost alone are flagged as suspected leaks; good ones are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris

from sela_jupyter.engine.leaks import suspected_leaks
from sela_jupyter.engine.task import prepare_data


def market(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Like ISLR's Smarket: today's return decides the direction, yesterday's barely matters."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"lag1": rng.normal(size=n), "today": rng.normal(size=n)})
    frame["volume"] = rng.gamma(2.0, size=n)
    frame["direction"] = np.where(frame["today"] > 0, "Up", "Down")
    return frame


def names(frame: pd.DataFrame, target: str, task_type: str) -> list[str]:
    columns = [c for c in frame.columns if c != target]
    return [leak.column for leak in suspected_leaks(frame, target, task_type, columns)]


def test_a_numeric_column_that_decides_a_class_is_flagged_with_its_evidence() -> None:
    frame = market()
    leaks = suspected_leaks(frame, "direction", "binary", ["lag1", "today", "volume"])
    assert [leak.column for leak in leaks] == ["today"]
    assert "accuracy 1.000" in leaks[0].evidence and "majority class" in leaks[0].evidence


def test_a_relabelled_copy_of_the_class_is_flagged_even_with_missing_values() -> None:
    frame = market()
    frame["status"] = frame["direction"].map({"Up": "gain", "Down": "loss"})
    frame.loc[::50, "status"] = None
    assert names(frame, "direction", "binary") == ["today", "status"]


def test_a_multiclass_target_determined_by_a_category_is_flagged() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.normal(size=300), "code": rng.choice(["a", "b", "c"], 300)})
    frame["kind"] = frame["code"].map({"a": "first", "b": "second", "c": "third"})
    assert names(frame, "kind", "multiclass") == ["code"]


def test_a_transform_of_a_regression_target_is_flagged() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"size": rng.gamma(3.0, size=400)})
    frame["price"] = frame["size"] * 10 + rng.normal(scale=5, size=400)
    frame["price_eur"] = frame["price"] * 0.9
    frame["band"] = pd.qcut(frame["price"], 4).astype(str)  # informative, far from determining
    assert names(frame, "price", "regression") == ["price_eur"]


def test_a_category_that_fixes_a_regression_target_is_flagged() -> None:
    rng = np.random.default_rng(3)
    groups = [f"g{i}" for i in range(8)]
    frame = pd.DataFrame({"group": rng.choice(groups, 400), "x": rng.normal(size=400)})
    frame["y"] = frame["group"].map({g: 10.0 * i for i, g in enumerate(groups)})
    assert names(frame, "y", "regression") == ["group"]


@pytest.mark.parametrize(
    ("load", "task_type"),
    [(load_breast_cancer, "binary"), (load_iris, "multiclass")],
)
def test_strong_honest_features_are_not_flagged(load: object, task_type: str) -> None:
    frame = load(as_frame=True).frame  # type: ignore[operator]
    assert names(frame, "target", task_type) == []


def test_ids_and_tiny_tables_are_not_flagged() -> None:
    frame = market()
    frame["row"] = [f"r{i}" for i in range(len(frame))]  # memorises rows, predicts nothing
    assert names(frame, "direction", "binary") == ["today"]
    assert names(market(n=30), "direction", "binary") == []


def test_the_profile_warns_and_the_run_record_and_summary_carry_it() -> None:
    frame = market()
    before = frame.copy()
    data = prepare_data(frame, "direction")
    (line,) = data.profile.warnings
    assert line.startswith("today: predicts 'direction' almost alone") and "A leak?" in line
    assert "warning, today: predicts" in data.profile.summary()
    pd.testing.assert_frame_equal(frame, before)


def test_a_clean_frame_gets_no_warning() -> None:
    frame = market().drop(columns="today")
    data = prepare_data(frame, "direction")
    assert data.profile.warnings == [] and "warning" not in data.profile.summary()


def test_a_numeric_leak_with_missing_values_is_still_flagged() -> None:
    frame = market()
    frame.loc[::7, "today"] = np.nan
    assert names(frame, "direction", "binary") == []  # a seventh unknown: not near-perfect
    frame = market()
    frame.loc[frame["direction"] == "Up", "loss"] = np.nan  # only losses are recorded
    frame.loc[frame["direction"] == "Down", "loss"] = 1.0
    assert names(frame, "direction", "binary") == ["today", "loss"]
