"""RBF-kernel support vector machines on standardised inputs."""

from __future__ import annotations

from .base import ModelFamily

SVM = ModelFamily(
    name="svm",
    label="svm",
    module="sklearn.svm",
    regressor="SVR",
    classifier="SVC",
    template="svm",
    description="an RBF-kernel support vector machine on standardised inputs (SVR, SVC)",
    libraries=("scikit-learn",),
    # SVC gives no class probabilities unless it is calibrated.
    probabilities=False,
    # The C tried by 3-fold CV when the spec gives no grid.
    settings={"grid": [0.3, 1.0, 3.0, 10.0]},
)
