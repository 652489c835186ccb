"""Task inference, metrics, profiles, splits and bad-input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

from sela_jupyter.engine.errors import SelaInputError
from sela_jupyter.engine.task import (
    ID_LIKE,
    make_task,
    profile_frame,
    split_frame,
    split_source,
    validate_frame,
)


def test_housing_is_regression_with_rmse(housing: pd.DataFrame) -> None:
    task = make_task(housing, "price")
    assert (task.task_type, task.metric, task.direction) == ("regression", "rmse", "minimize")
    assert task.score_scale == pytest.approx(housing["price"].std())


def test_binary_f1_makes_the_minority_class_positive() -> None:
    frame = pd.DataFrame({"x": range(100), "y": ["no"] * 70 + ["yes"] * 30})
    task = make_task(frame, "y")
    assert (task.task_type, task.metric, task.positive_label) == ("binary", "f1", "yes")


def test_multiclass_defaults_to_weighted_f1() -> None:
    frame = pd.DataFrame({"x": range(90), "y": ["a", "b", "c"] * 30})
    assert make_task(frame, "y").metric == "f1_weighted"


def test_task_and_metric_can_be_overridden() -> None:
    frame = pd.DataFrame({"x": range(100), "y": [0, 1, 2, 3, 4] * 20})
    task = make_task(frame, "y", task_type="regression", metric="mae")
    assert (task.task_type, task.metric) == ("regression", "mae")


def test_metric_that_does_not_fit_the_task_is_refused() -> None:
    frame = pd.DataFrame({"x": range(100), "y": np.linspace(0, 1, 100)})
    with pytest.raises(SelaInputError, match="does not apply to a regression task"):
        make_task(frame, "y", metric="f1")


def test_rewards_map_lower_is_better_into_zero_one() -> None:
    frame = pd.DataFrame({"x": range(100), "y": np.linspace(0, 100, 100)})
    task = make_task(frame, "y")
    assert task.reward(0.0) == 1.0
    assert 0 < task.reward(task.score_scale) == pytest.approx(0.5)
    assert task.reward(None) == 0.0
    assert task.better(1.0, 2.0) and not task.better(2.0, 1.0)


def test_error_gaps_compare_scores_across_metrics_as_shares_of_the_best_error() -> None:
    regression = make_task(pd.DataFrame({"x": range(100), "y": np.linspace(0, 100, 100)}), "y")
    assert regression.error_gap(1.2, 1.0) == pytest.approx(0.2)  # rmse: the score is the error
    assert regression.error_gap(0.9, 1.0) == 0.0  # better than the best is no gap
    labels = pd.DataFrame({"x": range(100), "y": ["a", "b"] * 50})
    binary = make_task(labels, "y")
    assert binary.metric == "f1"
    assert binary.error_gap(0.78, 0.80) == pytest.approx(0.1)  # 22 % error against 20 %
    assert binary.error_gap(0.5, 1.0) == float("inf")  # any error against a perfect score
    assert binary.error_gap(1.0, 1.0) == 0.0


def test_profile_counts_sela_metadata_and_finds_id_columns(housing: pd.DataFrame) -> None:
    task = make_task(housing, "price")
    profile = profile_frame(housing, task)
    assert profile.metadata["NumberOfInstances"] == 546
    assert profile.metadata["NumberOfFeatures"] == 12
    assert profile.metadata["NumberOfSymbolicFeatures"] == 7  # 6 yes/no columns + rownames
    assert profile.names(ID_LIKE) == ["rownames"]
    assert profile.skewed_target
    assert "price" in profile.head


def test_profile_recognises_text_and_dates() -> None:
    n = 60
    frame = pd.DataFrame(
        {
            "review": [f"the product number {i} was really quite good" for i in range(n)],
            "when": pd.date_range("2020-01-01", periods=n).astype(str),
            "y": [0, 1] * 30,
        }
    )
    profile = profile_frame(frame, make_task(frame, "y"))
    kinds = {c.name: c.kind for c in profile.columns}
    assert kinds == {"review": "text", "when": "datetime"}


def test_split_is_60_20_20_stratified_and_seeded() -> None:
    data = load_breast_cancer(as_frame=True).frame
    task = make_task(data, "target", seed=7)
    train, dev, test = split_frame(data, task)
    assert (len(train), len(dev), len(test)) == (341, 114, 114)
    rate = data["target"].mean()
    for part in (train, dev, test):
        assert abs(part["target"].mean() - rate) < 0.02
    again = split_frame(data, task)[0]
    assert train.index.equals(again.index)


def test_split_source_reproduces_split_frame() -> None:
    data = load_breast_cancer(as_frame=True).frame
    task = make_task(data, "target", seed=3)
    train, dev, test = split_frame(data, task)
    namespace = {"data": data, "TARGET": "target", "SEED": 3, "train_test_split": train_test_split}
    exec(split_source(task), namespace)
    assert namespace["train"].index.equals(train.index)
    assert namespace["dev"].index.equals(dev.index)
    assert namespace["test"].index.equals(test.index)


def test_caller_frame_is_not_modified(housing: pd.DataFrame) -> None:
    before = housing.copy()
    validate_frame(housing, "price")
    profile_frame(housing, make_task(housing, "price"))
    pd.testing.assert_frame_equal(housing, before)


@pytest.mark.parametrize(
    ("frame", "target", "message"),
    [
        ([1, 2, 3], "y", "expected a pandas DataFrame, got list"),
        (pd.DataFrame(), "y", "the DataFrame is empty"),
        (
            pd.DataFrame({"x": range(30), "y": range(30)}),
            "prize",
            "target column 'prize' not found",
        ),
        (pd.DataFrame({"x": range(30), "y": [np.nan] * 30}), "y", "every row is missing"),
        (pd.DataFrame({"x": range(30), "y": [1] * 30}), "y", "has a single value"),
        (
            pd.DataFrame([[1, 2, 3]] * 30, columns=["a", "a", "y"]),
            "y",
            "duplicated column names: 'a'",
        ),
        (pd.DataFrame({"x": range(5), "y": range(5)}), "y", "only 5 rows have a target value"),
    ],
)
def test_bad_input_gets_one_clear_message(frame: object, target: str, message: str) -> None:
    with pytest.raises(SelaInputError, match=message):
        validate_frame(frame, target)


def test_missing_target_suggests_close_column() -> None:
    frame = pd.DataFrame({"price": range(30), "x": range(30)})
    with pytest.raises(SelaInputError, match="did you mean 'price'"):
        validate_frame(frame, "prices")


def test_row_id_that_tracks_the_target_is_kept(housing: pd.DataFrame) -> None:
    task = make_task(housing, "price")
    train, _, _ = split_frame(housing, task)
    profile = profile_frame(housing, task, train=train)
    rownames = next(c for c in profile.columns if c.name == "rownames")
    assert rownames.kind == "numeric"
    assert "Spearman" in rownames.note
    # The search uses it, so the person hears why that may not carry over to new rows.
    (warning,) = profile.warnings
    assert warning.startswith("rownames: a row id that tracks 'price'")
    assert "numbered the same way" in warning
    assert "warning, rownames" in profile.summary()


def test_row_id_without_signal_stays_ignored() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": range(200), "x": rng.normal(size=200)})
    frame["y"] = frame["x"] * 2 + rng.normal(size=200)
    task = make_task(frame, "y")
    train, _, _ = split_frame(frame, task)
    profile = profile_frame(frame, task, train=train)
    assert profile.names(ID_LIKE) == ["id"]
    assert profile.warnings == []


def test_ordinals_are_not_dates() -> None:
    frame = pd.DataFrame({"pclass": ["1st", "2nd", "3rd"] * 20, "y": [0, 1] * 30})
    profile = profile_frame(frame, make_task(frame, "y"))
    assert profile.columns[0].kind == "categorical"
