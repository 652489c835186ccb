"""Scaled linear models: RidgeCV for regression, logistic regression for classification."""

from __future__ import annotations

from .base import ModelFamily, TaskParams

LINEAR = ModelFamily(
    name="linear",
    label="linear",
    module="sklearn.linear_model",
    regressor="RidgeCV",
    classifier="LogisticRegression",
    template="linear",
    description="a scaled linear model (RidgeCV, LogisticRegression)",
    libraries=("scikit-learn",),
    complement=TaskParams(),
)
