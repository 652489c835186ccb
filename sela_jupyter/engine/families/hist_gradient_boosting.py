"""scikit-learn's HistGradientBoosting: histogram-based gradient-boosted trees."""

from __future__ import annotations

from .base import ModelFamily, TaskParams

HIST_GRADIENT_BOOSTING = ModelFamily(
    name="hgb",
    label="hist_gradient_boosting",
    module="sklearn.ensemble",
    regressor="HistGradientBoostingRegressor",
    classifier="HistGradientBoostingClassifier",
    template="estimator",
    description="scikit-learn HistGradientBoosting (histogram gradient-boosted trees)",
    libraries=("scikit-learn",),
    threading="openmp",
    booster=True,
    complement=TaskParams(
        params={
            "learning_rate": 0.08,
            "max_iter": 200,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 10,
            "l2_regularization": 1.0,
            "early_stopping": False,
        }
    ),
)
