"""Helper transformers and functions that generated cells define, as real, tested code.

The templates copy each one into the cells that use it with :func:`source_of`, so an exported
notebook never imports sela. The copied text is this module's text: whatever is written here is
what the cells hold, byte for byte (which is why these definitions carry no type hints, and why
the long line in :class:`QuantileClipper` is already split the way the cell renderer splits it).
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone


@cache
def source_of(definition: Any) -> str:
    """The source text of a class or function of this module, as a cell block."""
    return inspect.getsource(definition)


class QuantileClipper(TransformerMixin, BaseEstimator):
    """Clip each column to its [lower, upper] quantiles, learned on the training rows."""

    def __init__(self, lower=0.01, upper=0.99):
        self.lower = lower
        self.upper = upper

    def fit(self, X, y=None):
        self.low_, self.high_ = np.nanquantile(
            np.asarray(X, dtype=float),
            [self.lower, self.upper],
            axis=0,
        )
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)


def signed_log(values):
    """sign(x) * log1p(|x|): compresses both tails and keeps zero at zero."""
    return np.sign(values) * np.log1p(np.abs(values))


class FrequencyEncoder(TransformerMixin, BaseEstimator):
    """Replace each category by its share of the training rows (unseen categories get 0)."""

    def fit(self, X, y=None):
        X = pd.DataFrame(X)
        self.frequencies_ = [X[c].astype(object).value_counts(normalize=True) for c in X.columns]
        return self

    def transform(self, X):
        X = pd.DataFrame(X)
        encoded = [
            X[c].astype(object).map(frequencies).astype(float).fillna(0.0)
            for c, frequencies in zip(X.columns, self.frequencies_, strict=True)
        ]
        return np.column_stack(encoded)


def as_objects(frame):
    """Plain Python values with NaN for missing ones, whatever the pandas dtype (bool, category)."""
    return frame.astype(object).where(frame.notna(), np.nan)


def as_text(column):
    """Missing texts become empty strings."""
    return column.fillna("").astype(str)


def add_text_stats(frame, columns):
    """Length, word count and character-class shares of each text column."""
    frame = frame.copy()
    for column in columns:
        texts = frame[column].fillna("").astype(str)
        length = texts.str.len()
        share = length.clip(lower=1)
        frame[f"{column}_length"] = length
        frame[f"{column}_words"] = texts.str.split().str.len()
        frame[f"{column}_digit_share"] = texts.str.count(r"\d") / share
        frame[f"{column}_upper_share"] = texts.str.count(r"[A-Z]") / share
        frame[f"{column}_punctuation_share"] = texts.str.count(r"[^\w\s]") / share
    return frame


def add_ratios(frame, columns):
    """a / b for each pair of columns (a zero denominator gives a missing value)."""
    frame = frame.copy()
    for i, numerator in enumerate(columns):
        for denominator in columns[i + 1 :]:
            ratio = frame[numerator] / frame[denominator].replace(0, np.nan)
            frame[f"{numerator}_per_{denominator}"] = ratio.replace([np.inf, -np.inf], np.nan)
    return frame


def add_products(frame, columns):
    """a * b for each pair of columns: explicit interactions."""
    frame = frame.copy()
    for i, left in enumerate(columns):
        for right in columns[i + 1 :]:
            frame[f"{left}_times_{right}"] = frame[left] * frame[right]
    return frame


class GroupDeviation(TransformerMixin, BaseEstimator):
    """Add each column's difference from its training mean within the rows' group."""

    def __init__(self, group, columns):
        self.group = group
        self.columns = columns

    def fit(self, X, y=None):
        self.group_means_ = X.groupby(X[self.group].astype(str))[self.columns].mean()
        return self

    def transform(self, X):
        X = X.copy()
        means = self.group_means_.reindex(X[self.group].astype(str))
        for column in self.columns:
            gap = X[column].to_numpy(dtype=float) - means[column].to_numpy(dtype=float)
            X[f"{column}_minus_{self.group}_mean"] = gap
        return X


def add_crosses(frame, pairs):
    """One combined level per pair of categorical columns, e.g. "yes & no"."""
    frame = frame.copy()
    for a, b in pairs:
        frame[f"{a} x {b}"] = frame[a].astype(str) + " & " + frame[b].astype(str)
    return frame


def add_missing_count(frame):
    """The number of missing values in each row."""
    frame = frame.copy()
    frame["missing_count"] = frame.isna().sum(axis=1)
    return frame


def with_seed(estimator, seed):
    """A copy of ``estimator`` with every random_state, nested ones too, set to seed."""
    seeded = clone(estimator)
    names = [name for name in seeded.get_params() if name.split("__")[-1] == "random_state"]
    return seeded.set_params(**{name: seed for name in names})
