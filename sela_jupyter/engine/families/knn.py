"""k-nearest neighbours on standardised inputs."""

from __future__ import annotations

from .base import ModelFamily, TaskParams

KNN = ModelFamily(
    name="knn",
    label="knn",
    module="sklearn.neighbors",
    regressor="KNeighborsRegressor",
    classifier="KNeighborsClassifier",
    template="knn",
    description="k-nearest neighbours on standardised inputs",
    libraries=("scikit-learn",),
    complement=TaskParams(params={"n_neighbors": 15}),
    # The k tried by 3-fold CV when the spec gives no grid.
    settings={"grid": [5, 10, 20, 40]},
)
