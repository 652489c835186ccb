"""Test score of single model families, fit on the benchmark's own seeded train splits.

Tells which family a search should be able to find on a dataset: on breast cancer a scaled
logistic regression beats default XGBoost by about 0.015 F1 over 20 splits, which is why the
search tries every model family and judges each family's best out of fold. Classification
datasets only (families compared on class probabilities, most probable class predicted).

    python benchmarks/families.py [--dataset breast_cancer] [--seeds 20]   # about 1 minute
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Callable

import numpy as np
from bench_data import DATASETS
from bench_tools import CORES, _one_hot, make_split
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from xgboost import XGBClassifier


def _scaled(model: object) -> Pipeline:
    return make_pipeline(_one_hot(dense=True), SimpleImputer(), StandardScaler(), model)


FAMILIES: dict[str, Callable[[int], Pipeline]] = {
    "logistic": lambda seed: _scaled(LogisticRegressionCV(Cs=10, max_iter=2000)),
    "svm": lambda seed: _scaled(SVC(probability=True, random_state=0)),
    "xgboost": lambda seed: make_pipeline(
        _one_hot(), XGBClassifier(n_jobs=CORES, random_state=seed)
    ),
}


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    """Print each family's (and two probability blends') mean test score and standard error."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="breast_cancer")
    parser.add_argument("--seeds", type=int, default=20, help="splits: seeds 0 .. N-1")
    args = parser.parse_args(argv)
    dataset = DATASETS[args.dataset]
    frame = dataset.load()
    scores: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        split = make_split(frame, dataset.target, seed)
        if not split.task.is_classification:
            parser.error(f"{args.dataset} is not a classification dataset")
        proba = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name, build in FAMILIES.items():
                fitted = build(seed).fit(split.X_train, split.y_train)
                proba[name] = fitted.predict_proba(split.X_test)
        proba["logistic+xgboost"] = (proba["logistic"] + proba["xgboost"]) / 2
        proba["all three"] = sum(proba[name] for name in FAMILIES) / len(FAMILIES)
        for name, p in proba.items():
            scores.setdefault(name, []).append(split.score(np.argmax(p, axis=1)))
    print(f"{args.dataset}: test {split.task.metric} over {args.seeds} splits (mean, std. error)")
    for name, values in scores.items():
        error = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0
        print(f"  {name:<18}{statistics.mean(values):.4f}  {error:.4f}")
    return scores


if __name__ == "__main__":
    main()
