"""XGBoost whose number of boosting rounds is chosen by early stopping on a slice of train."""

from __future__ import annotations

from .base import ModelFamily, TaskParams

XGB_EARLY_STOPPING = ModelFamily(
    name="xgb_early_stopping",
    label="xgboost",
    module="xgboost",
    regressor="XGBRegressor",
    classifier="XGBClassifier",
    template="xgb_early_stopping",
    description="XGBoost with the number of rounds chosen by early stopping",
    libraries=("xgboost",),
    threading="n_jobs",
    booster=True,
    variant_of="xgb",
    # The most rounds the early-stopping probe may use (a spec's n_estimators overrides it).
    defaults=TaskParams(params={"n_estimators": 2000}),
)
