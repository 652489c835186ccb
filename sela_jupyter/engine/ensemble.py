"""The run's final candidate: a weighted blend of the best nodes' pipelines, chosen on dev.

Every simulation saves its fitted pipeline's dev and test outputs (class probabilities where the
model has them). When a run ends, greedy ensemble selection with replacement (Caruana et al.,
ICML 2004) blends the best nodes' saved dev outputs: each round adds the member that most improves
the blend's dev score, and the best-scoring prefix of those rounds wins. The first prefix is the
best single node, so the blend is the final answer only when dev says it is at least as good.
When dev cannot tell candidates apart (a saturated F1 on a small dev set) ties go to the more even
and the longer blend, since averaging more pipelines lowers variance. The test score is computed from the saved test outputs and reported, never used to
choose.

:class:`WeightedEnsemble` is the fitted form: exported notebooks carry its source, so they need no
``sela_jupyter`` import.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from .cells import saved_scorer
from .mcts import DONE, Tree
from .task import Task

log = logging.getLogger(__name__)

#: How many of the best nodes (by dev score) may join the blend.
CANDIDATES = 20
#: Rounds of greedy selection with replacement (so weights are multiples of 1/ROUNDS at most).
ROUNDS = 25
PREDICTIONS_FILE = "predictions.pkl"


class WeightedEnsemble:
    """A weighted average of fitted pipelines.

    Classifiers average class probabilities (a member without ``predict_proba`` votes with a
    one-hot of its prediction) and predict the most probable class code; regressors average
    predictions. ``members`` is a list of ``(fitted_pipeline, weight)``. Written with numpy
    alone, so exported notebooks can carry this very source.
    """

    def __init__(self, members: list[tuple[object, float]], n_classes: int | None = None) -> None:
        self.members = members
        self.n_classes = n_classes

    @staticmethod
    def member_output(member: object, X: object, n_classes: int | None) -> np.ndarray:
        """One member's output: probabilities (n, k) for classifiers, predictions otherwise."""
        if n_classes is None:
            return np.asarray(member.predict(X), dtype=float)
        if hasattr(member, "predict_proba"):
            try:
                proba = np.asarray(member.predict_proba(X), dtype=float)
                if proba.ndim == 2 and proba.shape[1] == n_classes:
                    return proba
            except Exception:  # e.g. an SVC without probability=True
                pass
        codes = np.asarray(member.predict(X)).astype(int)
        return np.eye(n_classes)[codes]

    def _blend(self, X: object) -> np.ndarray:
        total = sum(weight for _, weight in self.members)
        return (
            sum(
                weight * self.member_output(member, X, self.n_classes)
                for member, weight in self.members
            )
            / total
        )

    def predict_proba(self, X: object) -> np.ndarray:
        """Weighted mean of the members' class probabilities (classifiers only)."""
        if self.n_classes is None:
            raise AttributeError("a regression ensemble has no predict_proba")
        return self._blend(X)

    def predict(self, X: object) -> np.ndarray:
        """Class codes (classifiers) or values (regressors) of the weighted blend."""
        blended = self._blend(X)
        return blended.argmax(axis=1) if self.n_classes is not None else blended


def ensemble_class_source() -> str:
    """The source of :class:`WeightedEnsemble`, for exported notebooks."""
    return inspect.getsource(WeightedEnsemble)


@dataclass
class Blend:
    """A selected blend: node id -> weight (rounds it was picked), its dev and test score."""

    weights: dict[str, int]
    dev_score: float
    test_score: float | None = None
    best_single: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ensemble(self) -> bool:
        """True when more than one node contributes."""
        return len(self.weights) > 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as ``run.json``'s ``final``."""
        return {
            "kind": "ensemble" if self.is_ensemble else "node",
            "members": [{"node": n, "weight": w} for n, w in self.weights.items()],
            "dev_score": self.dev_score,
            "test_score": self.test_score,
            "best_single": self.best_single,
        }


def node_output(saved: dict[str, Any], task: Task) -> np.ndarray:
    """A saved part (``{"predict", "predict_proba"?}``) as blendable numbers."""
    if not task.is_classification:
        return np.asarray(saved["predict"], dtype=float)
    k = len(task.classes)
    proba = np.asarray(saved.get("predict_proba", []), dtype=float)
    if proba.ndim == 2 and proba.shape == (len(saved["predict"]), k):
        return proba
    codes = np.asarray(saved["predict"]).astype(int)
    return np.eye(k)[codes]


def as_predictions(output: np.ndarray, task: Task) -> dict[str, Any]:
    """Blended numbers back to what the metric expression reads."""
    if task.is_classification:
        return {"predict": output.argmax(axis=1), "predict_proba": output}
    return {"predict": output}


def select_blend(
    task: Task,
    y_dev: np.ndarray,
    candidates: list[tuple[str, np.ndarray]],
    *,
    rounds: int = ROUNDS,
    single_scores: list[float] | None = None,
) -> Blend:
    """Greedy selection with replacement over ``candidates`` (``(node, dev output)``, best first).

    Returns the best prefix of ``rounds`` greedy picks; ties go to the longer prefix.
    ``single_scores`` are the candidates' own dev scores (from their ``predict``, which for a
    classifier need not be the argmax of its probabilities); by default they are recomputed.
    """
    if not candidates:
        raise ValueError("no candidates to blend")
    score = saved_scorer(task)
    scores = single_scores or [score(y_dev, as_predictions(out, task)) for _, out in candidates]
    first = 0
    for i, s in enumerate(scores):
        if task.better(s, scores[first]):
            first = i
    picks = [first]
    total = candidates[first][1].copy()
    prefix_scores = [scores[first]]
    for _ in range(rounds - 1):
        best_i, best_s = None, None
        for i, (_, output) in enumerate(candidates):
            s = score(y_dev, as_predictions((total + output) / (len(picks) + 1), task))
            # A tie goes to the candidate picked least so far: when dev cannot tell blends apart,
            # the more even average has the lower variance.
            if (
                best_s is None
                or task.better(s, best_s)
                or (s == best_s and picks.count(i) < picks.count(best_i))  # type: ignore[arg-type]
            ):
                best_i, best_s = i, s
        assert best_i is not None and best_s is not None
        picks.append(best_i)
        total += candidates[best_i][1]
        prefix_scores.append(best_s)
    chosen = 0
    for k, s in enumerate(prefix_scores):
        if not task.better(prefix_scores[chosen], s):  # ties: the longer prefix
            chosen = k
    counts = Counter(candidates[i][0] for i in picks[: chosen + 1])
    weights = {node: counts[node] for node, _ in candidates if node in counts}
    if len(weights) == 1:  # the best node on its own
        weights = {candidates[first][0]: 1}
        prefix_scores[chosen] = scores[first]
    return Blend(
        weights=weights,
        dev_score=prefix_scores[chosen],
        best_single={"node": candidates[first][0], "dev_score": scores[first]},
    )


def load_outputs(path: Path) -> dict[str, Any] | None:
    """A node's saved outputs, or ``None`` when missing or unreadable."""
    try:
        with path.open("rb") as f:
            return cloudpickle.load(f)
    except Exception as exc:
        log.warning("cannot read %s: %s", path, exc)
        return None


def final_blend(
    task: Task,
    tree: Tree,
    node_dir: Any,
    y_dev: np.ndarray,
    y_test: np.ndarray | None,
    *,
    limit: int = CANDIDATES,
    rounds: int = ROUNDS,
) -> Blend | None:
    """The run's final candidate from the ``limit`` best finished nodes' saved outputs.

    ``node_dir(node_id)`` is the node's directory. Nodes whose dev outputs equal a better node's
    (an EDA node scores exactly like its parent) join only once. ``None`` when no node saved
    outputs.
    """
    done = [n for n in tree.nodes.values() if n.status == DONE and n.dev_score is not None]
    direction = -1 if task.direction == "maximize" else 1
    done.sort(key=lambda n: (direction * n.dev_score, n.depth))  # type: ignore[operator]
    candidates: list[tuple[str, np.ndarray]] = []
    singles: list[float] = []
    tests: dict[str, np.ndarray | None] = {}
    seen: list[np.ndarray] = []
    for node in done:
        if len(candidates) >= limit:
            break
        saved = load_outputs(Path(node_dir(node.id)) / PREDICTIONS_FILE)
        if not saved or "dev" not in saved:
            continue
        dev = node_output(saved["dev"], task)
        if len(dev) != len(y_dev) or any(np.array_equal(dev, other) for other in seen):
            continue
        seen.append(dev)
        candidates.append((node.id, dev))
        singles.append(float(node.dev_score))  # type: ignore[arg-type]
        tests[node.id] = node_output(saved["test"], task) if "test" in saved else None
    if not candidates:
        return None
    blend = select_blend(task, y_dev, candidates, rounds=rounds, single_scores=singles)
    if not blend.is_ensemble:
        blend.test_score = tree[next(iter(blend.weights))].test_score
        return blend
    members = [tests[n] for n in blend.weights]
    if y_test is not None and all(m is not None for m in members):
        total = sum(blend.weights.values())
        output = sum(w * tests[n] for n, w in blend.weights.items()) / total  # type: ignore[operator]
        blend.test_score = saved_scorer(task)(y_test, as_predictions(output, task))
    return blend
