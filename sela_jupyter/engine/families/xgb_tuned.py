"""XGBoost tuned by a random search over its settings, by 3-fold CV in the model cell."""

from __future__ import annotations

from .base import ModelFamily

XGB_TUNED = ModelFamily(
    name="xgb_tuned",
    label="xgboost",
    module="xgboost",
    regressor="XGBRegressor",
    classifier="XGBClassifier",
    template="xgb_tuned",
    description="XGBoost tuned by a random search with 3-fold cross-validation",
    libraries=("xgboost",),
    threading="n_jobs",
    booster=True,
    variant_of="xgb",
    # Settings sampled: n_iter, or n_iter_large past the catalog's LARGE_DATA_ROWS.
    settings={"n_iter": 12, "n_iter_large": 6},
)
