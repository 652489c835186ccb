"""XGBoost: gradient-boosted trees, the default model."""

from __future__ import annotations

from .base import ModelFamily, TaskParams

XGBOOST = ModelFamily(
    name="xgb",
    label="xgboost",
    module="xgboost",
    regressor="XGBRegressor",
    classifier="XGBClassifier",
    template="estimator",
    description="XGBoost gradient-boosted trees (XGBRegressor, XGBClassifier)",
    libraries=("xgboost",),
    threading="n_jobs",
    booster=True,
    # A sound, fast booster: what a node fits before it reaches the model stage.
    defaults=TaskParams(
        params={
            "n_estimators": 500,
            "learning_rate": 0.04,
            "max_depth": 4,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "min_child_weight": 2,
        }
    ),
    # Ensemble members are a little lighter than the model-stage configurations: they are
    # fitted once per stacking fold, and averaging makes up for what each one gives up.
    complement=TaskParams(
        params={
            "n_estimators": 300,
            "learning_rate": 0.06,
            "max_depth": 4,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
        }
    ),
)
