"""The template coder's cells run as the stage contract says.

Every applicable catalog insight of every stage is rendered into a full cell sequence (a setup
cell as the harness writes it, then eda, preprocess, features, model, ensemble), executed in a
fresh namespace, and the resulting ``Pipeline(steps + [("model", model)])`` is fitted on train and
scored on dev with real scikit-learn and XGBoost fits (see :mod:`codegen_fixtures`).
"""

from __future__ import annotations

import ast
import io
import re
from contextlib import redirect_stdout
from functools import cache

import numpy as np
import pandas as pd
import pytest
from codegen_fixtures import (
    SOURCES,
    Dataset,
    assert_sane,
    cases,
    dataset,
    path_through,
    path_to,
    setup_namespace,
    simulate,
)
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import StackingRegressor
from sklearn.pipeline import Pipeline

from sela_jupyter.engine.catalog import CATALOG, applicable_entries
from sela_jupyter.engine.codegen import TemplateCoder
from sela_jupyter.engine.insights import STAGES, Insight
from sela_jupyter.engine.task import make_task, profile_frame, split_frame

# -- every insight runs -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "key"), cases())
def test_insight_cell_runs_in_a_full_pipeline(name, key):
    data = dataset(name)

    result = simulate(data, path_through(data, key))

    assert_sane(data, result)


@pytest.mark.parametrize("name", list(SOURCES))
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
        namespace = setup_namespace(data)
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
    namespace = setup_namespace(data)

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
    for name in SOURCES:
        data = dataset(name)
        for entry in applicable_entries(data.profile, data.task):
            if entry.stage == "eda":
                continue
            code = TemplateCoder().stage_code(
                entry.stage,
                data.insight(entry.key),
                path_to(data, entry.key)[:-1],
                data.profile,
                data.task,
            )
            assert not re.search(r"\bdev\b", code), entry.key


def test_code_is_deterministic_and_column_names_are_literals():
    data = dataset("mixed")
    for entry in applicable_entries(data.profile, data.task):
        path = path_to(data, entry.key)
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
    for name in SOURCES:
        data = dataset(name)
        for entry in applicable_entries(data.profile, data.task):
            path = path_to(data, entry.key)
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
    path = path_through(data, key) if key else []

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
