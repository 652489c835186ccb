"""LightGBM: leaf-wise gradient-boosted trees, FLAML's usual winner (optional: ``[lightgbm]``)."""

from __future__ import annotations

from .base import ModelFamily

LIGHTGBM = ModelFamily(
    name="lgbm",
    label="lightgbm",
    module="lightgbm",
    regressor="LGBMRegressor",
    classifier="LGBMClassifier",
    template="estimator",
    description="LightGBM leaf-wise gradient-boosted trees (LGBMRegressor, LGBMClassifier)",
    libraries=("lightgbm",),
    threading="n_jobs",
    booster=True,
    optional=True,
    # Without it LightGBM logs a warning line per tree that cannot split, into the node's output.
    fixed={"verbose": -1},
)
