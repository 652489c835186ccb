"""The run's final candidate: a weighted blend of the best nodes' pipelines.

Every simulation saves its fitted pipeline's dev and test outputs (class probabilities where the
model has them). Nodes that rank among the best on dev when they finish, or best of their model
family so far, also save out-of-fold outputs over train + dev (k refits in their kernel), a judge
with four to five times dev's rows.
When a run ends, greedy ensemble selection with replacement (Caruana et al., ICML 2004) blends
the best nodes' out-of-fold outputs (or, without any, their dev outputs): each round adds the
member that most improves the blend's score, and the best-scoring prefix of those rounds wins.
The first prefix is the best single node, so a blend is the final answer only when the judge
says it is at least as good. For classifiers, ties of the metric (F1 ties often on few rows) go
to the lower Brier score of the blended probabilities. For binary F1, the final candidate's
decision threshold on the positive class's probability is then chosen on the same out-of-fold
outputs (F1 rewards predicting the minority class more often than "most probable class" does);
it moves from 0.5 only when that scores strictly better out of fold. The test score is computed
from the saved test outputs and reported, never used to choose.

:class:`WeightedEnsemble` is the fitted form: exported notebooks carry its source, so they need no
``sela_jupyter`` import.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np

from .cells import saved_scorer
from .mcts import Tree
from .records import BlendMember, FinalBlend
from .statuses import NodeStatus
from .task import Task

log = logging.getLogger(__name__)

#: How many of the best nodes (by dev score) may join the blend.
CANDIDATES = 20
#: Rounds of greedy selection with replacement (so weights are multiples of 1/ROUNDS at most).
ROUNDS = 25
PREDICTIONS_FILE = "predictions.pkl"
#: A node's out-of-fold outputs over the original training rows then dev (only some nodes).
CV_FILE = "cv_predictions.pkl"
#: With at least this many dev rows, dev alone is enough to judge the final choice: it places a
#: binary F1 decision threshold, and the search computes no out-of-fold outputs (on the
#: broadened benchmark's tables of 1,600 to 51,000 dev rows they chose no better than dev,
#: ``benchmarks/selection.py``, and there their refits cost the most).
DEV_ROWS_TO_JUDGE = 1500
#: Decision thresholds tried for a binary F1 final: the positive class's probability at or above
#: which it is predicted.
THRESHOLDS = tuple(round(0.05 + 0.01 * i, 2) for i in range(91))


class WeightedEnsemble:
    """A weighted average of fitted pipelines.

    Classifiers average class probabilities (a member without ``predict_proba`` votes with a
    one-hot of its prediction) and predict the most probable class code; with a ``threshold``
    (binary only) they predict class code ``positive`` when its averaged probability is at least
    ``threshold``, the other class otherwise. Regressors average predictions. ``members`` is a
    list of ``(fitted_pipeline, weight)``. Written with numpy alone, so exported notebooks can
    carry this very source.
    """

    def __init__(
        self,
        members: list[tuple[object, float]],
        n_classes: int | None = None,
        threshold: float | None = None,
        positive: int = 1,
    ) -> None:
        if threshold is not None and n_classes != 2:
            raise ValueError("a decision threshold needs a binary classifier (n_classes=2)")
        self.members = members
        self.n_classes = n_classes
        self.threshold = threshold
        self.positive = positive

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
        if self.n_classes is None:
            return blended
        if self.threshold is None:
            return blended.argmax(axis=1)
        return np.where(
            blended[:, self.positive] >= self.threshold, self.positive, 1 - self.positive
        )


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
    chosen_on: str = "dev"  # "cv": ranked and blended on out-of-fold outputs over train + dev
    cv_score: float | None = None
    #: Binary F1 only: predict the positive class at this blended probability or above (chosen
    #: out of fold); ``None`` predicts the most probable class.
    threshold: float | None = None

    @property
    def is_ensemble(self) -> bool:
        """True when more than one node contributes."""
        return len(self.weights) > 1

    @property
    def is_own_pipeline(self) -> bool:
        """True when the answer is not simply one node's pipeline: a blend, or a single node
        with its own decision threshold (both export and refit as a ``WeightedEnsemble``)."""
        return self.is_ensemble or self.threshold is not None

    def to_record(self) -> FinalBlend:
        """The run's final candidate, as ``run.json``'s ``final``."""
        return FinalBlend(
            kind="ensemble" if self.is_ensemble else "node",
            members=[BlendMember(n, w) for n, w in self.weights.items()],
            dev_score=self.dev_score,
            test_score=self.test_score,
            chosen_on=self.chosen_on,
            cv_score=self.cv_score,
            threshold=self.threshold,
            best_single=self.best_single,
        )


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


def positive_code(task: Task) -> int:
    """The class code of a binary task's positive (minority) class."""
    return list(task.classes).index(task.positive_label)


def as_predictions(
    output: np.ndarray, task: Task, threshold: float | None = None
) -> dict[str, Any]:
    """Blended numbers back to what the metric expression reads (``threshold``: see
    :class:`WeightedEnsemble`)."""
    if not task.is_classification:
        return {"predict": output}
    if threshold is None:
        return {"predict": output.argmax(axis=1), "predict_proba": output}
    positive = positive_code(task)
    codes = np.where(output[:, positive] >= threshold, positive, 1 - positive)
    return {"predict": codes, "predict_proba": output}


def binary_f1_curve(y: np.ndarray, positive_proba: np.ndarray, positive: int) -> np.ndarray:
    """F1 of the positive class when predicting it at each of :data:`THRESHOLDS` or above."""
    actual = np.asarray(y) == positive
    predicted = np.asarray(positive_proba)[None, :] >= np.asarray(THRESHOLDS)[:, None]
    true_positives = (predicted & actual[None, :]).sum(axis=1)
    denominators = predicted.sum(axis=1) + actual.sum()
    return np.where(denominators > 0, 2 * true_positives / np.maximum(denominators, 1), 0.0)


def choose_threshold(
    task: Task, y: np.ndarray, output: np.ndarray, baseline: float
) -> tuple[float, float] | None:
    """The decision threshold that maximises binary F1 of blended probabilities ``output`` on
    ``y``, with that F1 (ties go to the threshold nearest 0.5); ``None`` when it does not
    strictly beat ``baseline``, the F1 of the candidate's own predictions. Only for binary F1:
    ``None`` for any other task."""
    if task.metric != "f1" or task.task_type != "binary" or output.shape[1] != 2:
        return None
    positive = positive_code(task)
    curve = binary_f1_curve(y, output[:, positive], positive)
    best = max(range(len(THRESHOLDS)), key=lambda i: (curve[i], -abs(THRESHOLDS[i] - 0.5)))
    if curve[best] <= baseline + 1e-12:
        return None
    return THRESHOLDS[best], float(curve[best])


def brier(y: np.ndarray, proba: np.ndarray) -> float:
    """Multiclass Brier score of probabilities ``(n, k)`` against class codes (lower is better)."""
    onehot = np.eye(proba.shape[1])[np.asarray(y).astype(int)]
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def select_blend(
    task: Task,
    y_dev: np.ndarray,
    candidates: list[tuple[str, np.ndarray]],
    *,
    rounds: int = ROUNDS,
    single_scores: list[float] | None = None,
) -> Blend:
    """Greedy selection with replacement over ``candidates`` (``(node, dev output)``, best first).

    Blends are ranked by the run's metric; for classifiers a tie (F1 on a small dev set ties
    often, and saturates at 1) goes to the lower Brier score of the blended probabilities, a
    proper score that still tells the blends apart. A tie on both goes to the candidate picked
    least so far while picking, and to the longer prefix when choosing one. Returns the best of
    the ``rounds`` greedy prefixes. ``single_scores`` are the candidates' own dev scores (from
    their ``predict``, which for a classifier need not be the argmax of its probabilities).
    """
    if not candidates:
        raise ValueError("no candidates to blend")
    score = saved_scorer(task)
    sign = 1.0 if task.direction == "maximize" else -1.0

    def rank(metric: float, output: np.ndarray) -> tuple[float, ...]:
        """Higher is better."""
        if task.is_classification:
            return (sign * metric, -brier(y_dev, output))
        return (sign * metric,)

    def blend_rank(output: np.ndarray) -> tuple[tuple[float, ...], float]:
        metric = score(y_dev, as_predictions(output, task))
        return rank(metric, output), metric

    scores = single_scores or [score(y_dev, as_predictions(out, task)) for _, out in candidates]
    ranks = [rank(m, out) for m, (_, out) in zip(scores, candidates, strict=True)]
    first = max(range(len(candidates)), key=lambda i: (ranks[i], -i))
    picks = [first]
    total = candidates[first][1].copy()
    prefixes = [(ranks[first], scores[first])]
    for _ in range(rounds - 1):
        best_i, best = None, None
        for i, (_, output) in enumerate(candidates):
            trial = blend_rank((total + output) / (len(picks) + 1))
            if (
                best is None
                or trial[0] > best[0]
                or (trial[0] == best[0] and picks.count(i) < picks.count(best_i))  # type: ignore[arg-type]
            ):
                best_i, best = i, trial
        assert best_i is not None and best is not None
        picks.append(best_i)
        total += candidates[best_i][1]
        prefixes.append(best)
    chosen = max(range(len(prefixes)), key=lambda k: (prefixes[k][0], k))
    counts = Counter(candidates[i][0] for i in picks[: chosen + 1])
    common = math.gcd(*counts.values())  # 5 and 5 read better as 1 and 1
    weights = {node: counts[node] // common for node, _ in candidates if node in counts}
    dev_score = prefixes[chosen][1]
    if len(weights) == 1:  # the best node on its own
        weights = {candidates[first][0]: 1}
        dev_score = scores[first]
    return Blend(
        weights=weights,
        dev_score=dev_score,
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


def dev_judges_alone(dev_rows: int) -> bool:
    """Whether a dev of ``dev_rows`` rows is enough to judge the final choice on (see
    :data:`DEV_ROWS_TO_JUDGE`): then no node needs out-of-fold outputs."""
    return dev_rows >= DEV_ROWS_TO_JUDGE


def final_blend(
    task: Task,
    tree: Tree,
    node_dir: Any,
    y_dev: np.ndarray,
    y_test: np.ndarray | None,
    *,
    y_cv: np.ndarray | None = None,
    limit: int = CANDIDATES,
    rounds: int = ROUNDS,
    tune_threshold: bool = True,
) -> Blend | None:
    """The run's final candidate, blended from the ``limit`` best finished nodes.

    With ``y_cv`` (the labels of the original training rows, then dev's) the nodes that saved
    out-of-fold outputs (:data:`CV_FILE`) are ranked and blended on those: four to five times as
    many rows as dev alone, so the choice is much less a matter of which few rows landed in dev.
    Without it, or when no node has them, the best nodes on dev are blended on dev. Either way
    the blend's dev and test scores come from the nodes' saved outputs of the pipelines fitted on
    train. Chosen out of fold, or on a dev of at least :data:`DEV_ROWS_TO_JUDGE` rows, a binary
    F1 answer also gets the decision threshold that scores best there (:func:`choose_threshold`;
    ``tune_threshold=False`` keeps the most probable class).
    ``node_dir(node_id)`` is the node's directory. A node whose outputs equal a better node's (an
    EDA node scores exactly like its parent) joins only once. ``None`` when no node saved outputs.
    """
    score = saved_scorer(task)
    done = [
        n for n in tree.nodes.values() if n.status == NodeStatus.DONE and n.dev_score is not None
    ]
    direction = -1 if task.direction == "maximize" else 1
    done.sort(key=lambda n: (direction * n.dev_score, n.depth))  # type: ignore[operator]
    saved: dict[str, dict[str, Any] | None] = {}

    def outputs(node_id: str) -> dict[str, Any] | None:
        """The node's saved dev and test outputs, read once; ``None`` if unusable."""
        if node_id not in saved:
            found = load_outputs(Path(node_dir(node_id)) / PREDICTIONS_FILE)
            ok = found and "dev" in found and len(found["dev"]["predict"]) == len(y_dev)
            saved[node_id] = found if ok else None
        return saved[node_id]

    judged: list[tuple[str, dict[str, Any], float]] = []  # (node, outputs judged on, score)
    chosen_on, y_judge = "dev", y_dev
    if y_cv is not None:
        for node in done:
            path = Path(node_dir(node.id)) / CV_FILE
            cv = load_outputs(path) if path.is_file() else None
            if cv and len(cv["predict"]) == len(y_cv) and outputs(node.id):
                judged.append((node.id, cv, score(y_cv, cv)))
        if judged:
            chosen_on, y_judge = "cv", y_cv
            judged.sort(key=lambda j: direction * j[2])
    ranked = (
        iter(judged)
        if judged
        else (
            (n.id, found["dev"], float(n.dev_score))  # type: ignore[arg-type]
            for n in done
            if (found := outputs(n.id))
        )
    )
    candidates: list[tuple[str, np.ndarray]] = []
    singles: list[float] = []
    for node_id, judged_outputs, single in ranked:
        if len(candidates) >= limit:
            break
        output = node_output(judged_outputs, task)
        if any(np.array_equal(output, c) for _, c in candidates):
            continue
        candidates.append((node_id, output))
        singles.append(single)
    if not candidates:
        return None
    blend = select_blend(task, y_judge, candidates, rounds=rounds, single_scores=singles)
    blend.chosen_on = chosen_on
    members = {n: saved[n] or {} for n in blend.weights}  # every candidate has outputs
    if tune_threshold and (chosen_on == "cv" or dev_judges_alone(len(y_dev))):
        # A small dev is too few rows to place a threshold; out of fold there are 4-5x as many.
        blended = _weighted_mean(blend.weights, dict(candidates))
        tuned = choose_threshold(task, y_judge, blended, baseline=blend.dev_score)
        if tuned is not None:
            blend.threshold, blend.dev_score = tuned
    if chosen_on == "cv":
        blend.cv_score = blend.dev_score
        blend.best_single["cv_score"] = blend.best_single.pop("dev_score")
        blend.best_single["dev_score"] = tree[blend.best_single["node"]].dev_score
        blend.dev_score = _blend_score(task, score, blend, members, "dev", y_dev)  # type: ignore[assignment]
    if y_test is not None:
        blend.test_score = _blend_score(task, score, blend, members, "test", y_test)
    return blend


def _blend_score(
    task: Task,
    score: Callable[[Any, dict[str, Any]], float],
    blend: Blend,
    members: dict[str, dict[str, Any]],
    part: str,
    y: np.ndarray,
) -> float | None:
    """The blend's score on ``part`` from its members' saved outputs (a single member's own
    prediction, as its node was scored); ``None`` when a member lacks that part."""
    if any(part not in members[n] for n in blend.weights):
        return None
    if not blend.is_own_pipeline:
        return score(y, members[next(iter(blend.weights))][part])
    outputs = {n: node_output(members[n][part], task) for n in blend.weights}
    output = _weighted_mean(blend.weights, outputs)
    return score(y, as_predictions(output, task, blend.threshold))  # type: ignore[arg-type]


def _weighted_mean(weights: dict[str, int], outputs: dict[str, np.ndarray]) -> np.ndarray:
    """The blend of ``outputs`` (node -> blendable numbers) with ``weights`` (node -> weight)."""
    total = sum(weights.values())
    return sum(w * outputs[n] for n, w in weights.items()) / total  # type: ignore[return-value]
