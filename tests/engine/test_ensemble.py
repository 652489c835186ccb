"""The final candidate: greedy ensemble selection on saved out-of-fold or dev outputs, and the
fitted blend."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import f1_score
from sklearn.svm import SVC

from sela_jupyter.engine.ensemble import (
    CV_FILE,
    DEV_ROWS_TO_JUDGE,
    PREDICTIONS_FILE,
    THRESHOLDS,
    WeightedEnsemble,
    as_predictions,
    binary_f1_curve,
    choose_threshold,
    ensemble_class_source,
    final_blend,
    node_output,
    select_blend,
)
from sela_jupyter.engine.insights import Insight
from sela_jupyter.engine.mcts import Tree
from sela_jupyter.engine.records import BlendMember, FinalBlend
from sela_jupyter.engine.task import Task

REGRESSION = Task(target="y", task_type="regression", metric="rmse", score_scale=1.0)
BINARY = Task(target="y", task_type="binary", metric="f1", positive_label="b", classes=("a", "b"))
#: The positive (minority) class listed first: its code is 0, not 1.
BINARY_FIRST = Task(
    target="y", task_type="binary", metric="f1", positive_label="a", classes=("a", "b")
)
MULTICLASS = Task(target="y", task_type="multiclass", metric="f1_weighted", classes=("a", "b", "c"))


def shy_probabilities(
    rng: np.random.Generator, n: int, positive: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (a third positive) and two-column probabilities that rank well but put the
    positive class's probability too low, so "most probable class" misses many positives."""
    y = np.where(rng.random(n) < 1 / 3, positive, 1 - positive)
    signal = np.where(y == positive, 0.45, 0.15) + rng.normal(0, 0.12, n)
    p = np.clip(signal, 0.01, 0.99)
    proba = np.empty((n, 2))
    proba[:, positive], proba[:, 1 - positive] = p, 1 - p
    return y, proba


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
    assert blend.to_record().kind == "node"


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
    assert blend.to_record().chosen_on == "dev" and blend.to_record().cv_score is None


def _final(kind: str, members: list[tuple[str, int]], threshold: float | None = None) -> FinalBlend:
    """A final candidate of ``members`` (node, weight)."""
    return FinalBlend(kind, [BlendMember(n, w) for n, w in members], 1.0, threshold=threshold)


def test_the_final_earns_a_line_when_it_is_a_blend_or_another_node() -> None:
    alone = _final("node", [("n3", 1)])
    other = _final("node", [("n9", 1)])
    blend = _final("ensemble", [("n3", 2), ("n9", 1)])
    assert not _final("node", []).shows_beside("n3") and not alone.shows_beside("n3")
    assert other.shows_beside("n3") and blend.shows_beside("n3")
    assert other.label() == "node n9" and blend.label() == "a blend of 2 nodes"


def test_the_f1_curve_is_sklearns_f1_at_every_threshold() -> None:
    y, proba = shy_probabilities(np.random.default_rng(5), 300)
    curve = binary_f1_curve(y, proba[:, 1], positive=1)
    for t, f in zip(THRESHOLDS, curve, strict=True):
        assert f == pytest.approx(f1_score(y, (proba[:, 1] >= t).astype(int), zero_division=0))


@pytest.mark.parametrize("task", [BINARY, BINARY_FIRST])
def test_a_threshold_is_chosen_when_it_beats_the_most_probable_class(task: Task) -> None:
    positive = list(task.classes).index(task.positive_label)
    y, proba = shy_probabilities(np.random.default_rng(6), 600, positive)
    plain = f1_score(y, proba.argmax(axis=1), pos_label=positive)
    chosen = choose_threshold(task, y, proba, baseline=plain)
    assert chosen is not None
    threshold, score = chosen
    assert 0.2 < threshold < 0.45  # positives sit around 0.45: the cut moves below 0.5
    predicted = np.where(proba[:, positive] >= threshold, positive, 1 - positive)
    assert score == pytest.approx(f1_score(y, predicted, pos_label=positive))
    assert score > plain + 0.05
    thresholded = as_predictions(proba, task, threshold)["predict"]
    assert (thresholded == predicted).all()


def test_no_threshold_when_the_most_probable_class_is_already_best() -> None:
    y = np.array([0, 0, 0, 1, 1, 0, 1, 0])
    proba = np.where(y[:, None] == np.arange(2), 0.9, 0.1)  # confident and right
    assert choose_threshold(BINARY, y, proba, baseline=1.0) is None
    # A baseline the curve cannot beat (the candidate's own predictions) also keeps argmax.
    y, proba = shy_probabilities(np.random.default_rng(7), 200)
    assert choose_threshold(BINARY, y, proba, baseline=1.0) is None


def test_thresholds_are_only_for_binary_f1() -> None:
    y, proba = shy_probabilities(np.random.default_rng(8), 200)
    assert choose_threshold(MULTICLASS, y, np.c_[proba, np.zeros(200)], baseline=0.0) is None
    accuracy = Task(
        target="y", task_type="binary", metric="accuracy", positive_label="b", classes=("a", "b")
    )
    assert choose_threshold(accuracy, y, proba, baseline=0.0) is None


def test_weighted_ensemble_predicts_with_a_threshold_and_its_exported_source_too() -> None:
    X, y = load_iris(return_X_y=True)
    X, y = X[y > 0], (y[y > 0] == 2).astype(int)
    model = LogisticRegression(max_iter=500).fit(X, y)
    positive_proba = model.predict_proba(X)[:, 1]
    namespace: dict = {"np": np}
    exec(ensemble_class_source(), namespace)
    for cls in (WeightedEnsemble, namespace["WeightedEnsemble"]):
        low = cls([(model, 1)], n_classes=2, threshold=0.2, positive=1)
        assert (low.predict(X) == (positive_proba >= 0.2)).all()
        flipped = cls([(model, 1)], n_classes=2, threshold=0.7, positive=0)
        assert (flipped.predict(X) == np.where(1 - positive_proba >= 0.7, 0, 1)).all()
        with pytest.raises(ValueError, match="binary"):
            cls([(model, 1)], n_classes=3, threshold=0.5)


def _binary_tree(
    tmp_path: Path, nodes: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]
) -> Tree:
    """Finished binary nodes whose saved dev, test and out-of-fold outputs are ``nodes[id]``'s
    ``(labels, probabilities)`` per part; dev scores are F1 of the most probable class."""
    tree = Tree()
    for node_id, parts in nodes.items():
        node = tree.add_child(tree.root, Insight(f"eda.{node_id}", "eda", node_id))
        tree.begin(node)
        y_dev, dev = parts["dev"]
        tree.finish(node, reward=1.0, dev_score=f1_score(y_dev, dev.argmax(axis=1)))
        folder = tmp_path / node.id
        folder.mkdir()
        saved = {
            part: {"predict": proba.argmax(axis=1), "predict_proba": proba}
            for part, (_, proba) in parts.items()
        }
        with (folder / PREDICTIONS_FILE).open("wb") as f:
            pickle.dump({part: saved[part] for part in ("dev", "test")}, f)
        with (folder / CV_FILE).open("wb") as f:
            pickle.dump(saved["cv"], f)
    return tree


def test_a_binary_final_chosen_out_of_fold_gets_its_threshold(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    parts = {
        part: shy_probabilities(rng, n) for part, n in (("dev", 80), ("test", 80), ("cv", 400))
    }
    tree = _binary_tree(tmp_path, {"shy": parts})
    (y_dev, dev), (y_test, test), (y_cv, cv) = parts["dev"], parts["test"], parts["cv"]
    blend = final_blend(BINARY, tree, lambda n: tmp_path / n, y_dev, y_test, y_cv=y_cv)
    assert blend is not None and blend.chosen_on == "cv" and blend.threshold is not None
    assert blend.threshold < 0.5 and blend.is_own_pipeline and not blend.is_ensemble
    at = blend.threshold
    assert blend.cv_score == pytest.approx(f1_score(y_cv, cv[:, 1] >= at))
    assert blend.cv_score > blend.best_single["cv_score"]  # the node's own predictions
    assert blend.dev_score == pytest.approx(f1_score(y_dev, dev[:, 1] >= at))
    assert blend.test_score == pytest.approx(f1_score(y_test, test[:, 1] >= at))
    assert blend.to_record().threshold == at

    plain = final_blend(
        BINARY, tree, lambda n: tmp_path / n, y_dev, y_test, y_cv=y_cv, tune_threshold=False
    )
    assert plain is not None and plain.threshold is None
    assert plain.test_score == pytest.approx(f1_score(y_test, test.argmax(axis=1)))
    on_dev = final_blend(BINARY, tree, lambda n: tmp_path / n, y_dev, y_test)
    assert on_dev is not None and on_dev.chosen_on == "dev" and on_dev.threshold is None


def test_a_dev_of_enough_rows_places_the_threshold_without_out_of_fold_outputs(
    tmp_path: Path,
) -> None:
    def chosen_on_dev(rows: int) -> FinalBlend:
        rng = np.random.default_rng(9)
        parts = {part: shy_probabilities(rng, rows) for part in ("dev", "test", "cv")}
        folder = tmp_path / str(rows)
        folder.mkdir()
        tree = _binary_tree(folder, {"shy": parts})
        (y_dev, dev), (y_test, test) = parts["dev"], parts["test"]
        blend = final_blend(BINARY, tree, lambda n: folder / n, y_dev, y_test)
        assert blend is not None and blend.chosen_on == "dev"
        if blend.threshold is not None:
            at = blend.threshold
            assert blend.dev_score == pytest.approx(f1_score(y_dev, dev[:, 1] >= at))
            assert blend.test_score == pytest.approx(f1_score(y_test, test[:, 1] >= at))
        return blend.to_record()

    enough = chosen_on_dev(DEV_ROWS_TO_JUDGE)
    assert enough.threshold is not None and enough.threshold < 0.5 and enough.is_own_pipeline
    assert chosen_on_dev(DEV_ROWS_TO_JUDGE - 1).threshold is None


def test_a_threshold_makes_the_final_its_own_pipeline() -> None:
    node = _final("node", [("n3", 1)], threshold=0.37)
    blend = _final("ensemble", [("n3", 1)] * 2)
    assert node.shows_beside("n3") and node.label() == "node n3, threshold 0.37"
    two = _final("ensemble", [("n3", 2), ("n9", 1)], threshold=0.6)
    assert two.label(weights=True) == "a blend of 2 nodes (n3 x2, n9 x1), threshold 0.60"
    assert node.is_own_pipeline and blend.is_own_pipeline
    assert not _final("node", [("n3", 1)]).is_own_pipeline
    assert FinalBlend.from_dict(two.to_dict()) == two  # one JSON shape, read back whole
