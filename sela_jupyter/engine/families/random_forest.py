"""scikit-learn's random forest: fully grown trees on bootstrap samples and feature subsets."""

from __future__ import annotations

from .base import ModelFamily, TaskParams

RANDOM_FOREST = ModelFamily(
    name="rf",
    label="random_forest",
    module="sklearn.ensemble",
    regressor="RandomForestRegressor",
    classifier="RandomForestClassifier",
    template="estimator",
    description="scikit-learn random forest",
    libraries=("scikit-learn",),
    threading="n_jobs",
    complement=TaskParams(
        params={"n_estimators": 200},
        regression={"max_features": 0.6, "min_samples_leaf": 1},
        classification={"max_features": "sqrt", "min_samples_leaf": 1},
        large_data={"min_samples_leaf": 3},
    ),
)
