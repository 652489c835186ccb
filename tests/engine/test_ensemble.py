"""The final candidate: greedy ensemble selection on saved dev outputs, and the fitted blend."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import SVC

from sela_jupyter.engine.ensemble import (
    WeightedEnsemble,
    as_predictions,
    ensemble_class_source,
    node_output,
    select_blend,
)
from sela_jupyter.engine.task import Task

REGRESSION = Task(target="y", task_type="regression", metric="rmse", score_scale=1.0)
BINARY = Task(target="y", task_type="binary", metric="f1", positive_label="b", classes=("a", "b"))


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - p) ** 2)))


def test_blend_of_complementary_errors_beats_every_single_node() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    noise = rng.normal(scale=0.5, size=200)
    candidates = [("n1", y + noise), ("n2", y - noise + rng.normal(scale=0.05, size=200))]
    blend = select_blend(REGRESSION, y, candidates)

    assert blend.is_ensemble and set(blend.weights) == {"n1", "n2"}
    assert blend.dev_score < min(rmse(y, p) for _, p in candidates) / 5
    assert blend.best_single["node"] == min(candidates, key=lambda c: rmse(y, c[1]))[0]
    total = sum(blend.weights.values())
    blended = sum(w * dict(candidates)[n] for n, w in blend.weights.items()) / total
    assert blend.dev_score == pytest.approx(rmse(y, blended))  # the score is the blend's own


def test_the_best_node_alone_when_no_blend_helps() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=100)
    good = y + rng.normal(scale=0.1, size=100)
    bad = y + 3.0  # biased: any share of it hurts
    blend = select_blend(REGRESSION, y, [("bad", bad), ("good", good)])

    assert not blend.is_ensemble
    assert blend.weights == {"good": 1}
    assert blend.dev_score == pytest.approx(rmse(y, good))
    assert blend.to_dict()["kind"] == "node"


def test_a_saturated_f1_is_decided_by_the_brier_score_of_the_blend() -> None:
    y = np.array([0, 1, 1, 0])
    # Both are right on every row (F1 = 1), each unsure where the other is sure.
    unsure_first = np.array([[0.6, 0.4], [0.4, 0.6], [0.05, 0.95], [0.95, 0.05]])
    unsure_last = np.array([[0.95, 0.05], [0.05, 0.95], [0.4, 0.6], [0.6, 0.4]])
    blend = select_blend(BINARY, y, [("a", unsure_first), ("b", unsure_last)])
    assert blend.dev_score == 1.0
    assert blend.weights == {"a": 1, "b": 1}  # the even average has the lower Brier score

    confident = np.eye(2)[y] * 0.9 + 0.05
    timid = np.eye(2)[y] * 0.4 + 0.3
    alone = select_blend(BINARY, y, [("timid", timid), ("confident", confident)])
    assert alone.weights == {"confident": 1}  # any share of the timid one only adds Brier


def test_the_single_nodes_own_dev_score_is_kept() -> None:
    y = np.array([0.0, 1.0, 2.0])
    blend = select_blend(REGRESSION, y, [("n1", y + 1.0)], single_scores=[0.999])
    assert blend.weights == {"n1": 1} and blend.dev_score == 0.999


def test_saved_outputs_become_probabilities_or_votes() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert node_output({"predict": np.array([0, 1]), "predict_proba": proba}, BINARY) is not None
    np.testing.assert_array_equal(
        node_output({"predict": np.array([0, 1]), "predict_proba": proba}, BINARY), proba
    )
    votes = node_output({"predict": np.array([1, 0])}, BINARY)  # no probabilities saved
    np.testing.assert_array_equal(votes, [[0, 1], [1, 0]])
    wrong_width = {"predict": np.array([1, 0]), "predict_proba": np.ones((2, 3)) / 3}
    np.testing.assert_array_equal(node_output(wrong_width, BINARY), votes)
    assert list(as_predictions(proba, BINARY)["predict"]) == [0, 1]


def test_weighted_ensemble_blends_probabilities_and_votes() -> None:
    X, y = load_iris(return_X_y=True)
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    svc = SVC().fit(X, y)  # no predict_proba: it votes with a one-hot of its prediction
    ensemble = WeightedEnsemble([(logistic, 3), (svc, 1)], n_classes=3)

    proba = ensemble.predict_proba(X)
    assert proba.shape == (150, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    expected = (3 * logistic.predict_proba(X) + np.eye(3)[svc.predict(X)]) / 4
    np.testing.assert_allclose(proba, expected)
    assert (ensemble.predict(X) == expected.argmax(axis=1)).all()


def test_weighted_ensemble_averages_regressors() -> None:
    X = np.arange(20, dtype=float).reshape(-1, 1)
    a = LinearRegression().fit(X, 2 * X[:, 0])
    b = LinearRegression().fit(X, 4 * X[:, 0])
    ensemble = WeightedEnsemble([(a, 1), (b, 1)])
    np.testing.assert_allclose(ensemble.predict(X), 3 * X[:, 0])
    with pytest.raises(AttributeError):
        ensemble.predict_proba(X)


def test_exported_class_source_defines_a_working_ensemble() -> None:
    namespace: dict = {"np": np}
    exec(ensemble_class_source(), namespace)
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    exported = namespace["WeightedEnsemble"]([(model, 1)], n_classes=3)
    assert (exported.predict(X) == model.predict(X)).all()
