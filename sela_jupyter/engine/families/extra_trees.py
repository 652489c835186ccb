"""scikit-learn's extremely randomised trees: random split points, smoother than a forest."""

from __future__ import annotations

from .base import ModelFamily, TaskParams

EXTRA_TREES = ModelFamily(
    name="et",
    label="extra_trees",
    module="sklearn.ensemble",
    regressor="ExtraTreesRegressor",
    classifier="ExtraTreesClassifier",
    template="estimator",
    description="scikit-learn extremely randomised trees (extra trees)",
    libraries=("scikit-learn",),
    threading="n_jobs",
    complement=TaskParams(
        params={"n_estimators": 200},
        regression={"max_features": 0.7, "min_samples_leaf": 1},
        classification={"max_features": "sqrt", "min_samples_leaf": 1},
        large_data={"min_samples_leaf": 3},
    ),
)
