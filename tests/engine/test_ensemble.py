"""The final candidate: greedy ensemble selection on saved out-of-fold or dev outputs, and the
fitted blend."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import SVC

from sela_jupyter.engine.ensemble import (
    CV_FILE,
    PREDICTIONS_FILE,
    WeightedEnsemble,
    as_predictions,
    ensemble_class_source,
    final_blend,
    final_label,
    node_output,
    select_blend,
    shows_final,
)
from sela_jupyter.engine.insights import Insight
from sela_jupyter.engine.mcts import Tree
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


def _tree_with_outputs(
    tmp_path: Path, y_dev: np.ndarray, y_cv: np.ndarray, nodes: dict[str, dict[str, np.ndarray]]
) -> Tree:
    """A tree of finished nodes whose saved dev, test and (where given) out-of-fold outputs are
    ``nodes[id]``'s ``dev``, ``test`` and ``cv`` predictions (regression)."""
    tree = Tree()
    for node_id, outputs in nodes.items():
        node = tree.add_child(tree.root, Insight(f"eda.{node_id}", "eda", node_id))
        tree.begin(node)
        tree.finish(node, reward=1.0, dev_score=rmse(y_dev, outputs["dev"]))
        folder = tmp_path / node.id
        folder.mkdir()
        with (folder / PREDICTIONS_FILE).open("wb") as f:
            pickle.dump({part: {"predict": outputs[part]} for part in ("dev", "test")}, f)
        if "cv" in outputs:
            with (folder / CV_FILE).open("wb") as f:
                pickle.dump({"predict": outputs["cv"]}, f)
        outputs["id"] = node.id  # type: ignore[assignment]
    return tree


def test_out_of_fold_outputs_overrule_a_lucky_dev_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    y_dev, y_test, y_cv = rng.normal(size=50), rng.normal(size=50), rng.normal(size=250)
    nodes = {
        # "lucky": best on dev by chance, poor on train + dev out of fold, and on test
        "lucky": {"dev": y_dev + 0.1, "test": y_test + 1.0, "cv": y_cv + 1.0},
        "steady": {"dev": y_dev + 0.3, "test": y_test + 0.3, "cv": y_cv + 0.3},
        "unjudged": {"dev": y_dev + 0.2, "test": y_test + 0.2},  # no out-of-fold outputs
    }
    tree = _tree_with_outputs(tmp_path, y_dev, y_cv, nodes)
    ids = {name: outputs["id"] for name, outputs in nodes.items()}

    blend = final_blend(REGRESSION, tree, lambda n: tmp_path / n, y_dev, y_test, y_cv=y_cv)
    assert blend is not None and blend.chosen_on == "cv"
    assert blend.weights == {ids["steady"]: 1}
    assert blend.cv_score == pytest.approx(0.3)
    assert blend.dev_score == pytest.approx(0.3) and blend.test_score == pytest.approx(0.3)
    assert blend.best_single == {
        "node": ids["steady"],
        "cv_score": pytest.approx(0.3),
        "dev_score": pytest.approx(0.3),
    }

    on_dev = final_blend(REGRESSION, tree, lambda n: tmp_path / n, y_dev, y_test)
    assert on_dev is not None and on_dev.chosen_on == "dev" and on_dev.cv_score is None
    assert next(iter(on_dev.weights)) == ids["lucky"]  # dev alone falls for it


def test_without_out_of_fold_outputs_the_choice_falls_back_to_dev(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    y_dev, y_test, y_cv = rng.normal(size=40), rng.normal(size=40), rng.normal(size=200)
    nodes = {"a": {"dev": y_dev + 0.2, "test": y_test}, "b": {"dev": y_dev - 0.5, "test": y_test}}
    tree = _tree_with_outputs(tmp_path, y_dev, y_cv, nodes)
    blend = final_blend(REGRESSION, tree, lambda n: tmp_path / n, y_dev, y_test, y_cv=y_cv)
    assert blend is not None and blend.chosen_on == "dev"
    assert blend.to_dict()["chosen_on"] == "dev" and blend.to_dict()["cv_score"] is None


def test_the_final_earns_a_line_when_it_is_a_blend_or_another_node() -> None:
    alone = {"kind": "node", "members": [{"node": "n3", "weight": 1}]}
    other = {"kind": "node", "members": [{"node": "n9", "weight": 1}]}
    blend = {
        "kind": "ensemble",
        "members": [{"node": "n3", "weight": 2}, {"node": "n9", "weight": 1}],
    }
    assert not shows_final(None, "n3") and not shows_final(alone, "n3")
    assert shows_final(other, "n3") and shows_final(blend, "n3")
    assert final_label(other) == "node n9" and final_label(blend) == "a blend of 2 nodes"
