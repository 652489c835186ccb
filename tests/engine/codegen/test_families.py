"""Every registered model family renders a model cell that fits and predicts, for both tasks.

A family's cell is rendered from its own defaults (:meth:`ModelFamily.spec`), executed after the
default preprocess cell on a tiny frame, and the pipeline is fitted and asked for predictions with
real scikit-learn and XGBoost; the rest checks that everything that reads the registry (catalog
specs, ensemble members, kernel libraries, LLM prompts) agrees with it.
"""

from __future__ import annotations

import importlib
import io
from contextlib import redirect_stdout
from functools import cache

import numpy as np
import pandas as pd
import pytest
from codegen_fixtures import CONTRACT_NAMES, Dataset, setup_namespace
from sklearn.pipeline import Pipeline

from sela_jupyter.engine import kernel_helpers, llm_coder, llm_insights
from sela_jupyter.engine.catalog import CATALOG, LARGE_DATA_ROWS
from sela_jupyter.engine.codegen import DEFAULT_MODEL, Context, TemplateCoder, model_family_of
from sela_jupyter.engine.codegen import ensemble as ensemble_templates
from sela_jupyter.engine.codegen import model as model_templates
from sela_jupyter.engine.families import (
    DEFAULT_FAMILY,
    REGISTRY,
    ModelFamily,
    family,
    import_name,
    model_libraries,
    model_modules,
)
from sela_jupyter.engine.insights import Insight
from sela_jupyter.engine.task import make_task, profile_frame, split_frame

FAMILIES = list(REGISTRY)


@cache
def tiny(task_type: str) -> Dataset:
    """160 rows: three numeric columns (one with gaps), one categorical, a clear signal."""
    rng = np.random.default_rng(3)
    n = 160
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.uniform(0, 10, size=n),
            "c": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
        }
    )
    signal = 2 * frame["a"] + 0.3 * frame["b"] + (frame["colour"] == "red")
    frame.loc[::9, "c"] = np.nan
    frame["y"] = signal + rng.normal(scale=0.3, size=n)
    if task_type == "binary":
        frame["y"] = np.where(signal > signal.median(), "yes", "no")
    task = make_task(frame, "y", task_type=task_type)
    profile = profile_frame(frame, task)
    train, dev, _ = split_frame(frame, task)
    return Dataset(f"tiny {task_type}", task, profile, train, dev, ())


def model_cell(data: Dataset, model: ModelFamily) -> str:
    """The model cell of ``model`` with its defaults, on a path without a model insight."""
    ctx = Context.build(data.profile, data.task, [])
    return model_templates.render(ctx, model.spec()).render() + "\n"


def run_cells(data: Dataset, cells: list[str]) -> dict:
    namespace = setup_namespace(data)
    for code in cells:
        namespace = {k: v for k, v in namespace.items() if k in CONTRACT_NAMES}
        with redirect_stdout(io.StringIO()):
            exec(compile(code, "<cell>", "exec"), namespace)
    return namespace


@pytest.mark.parametrize("task_type", ["regression", "binary"])
@pytest.mark.parametrize("name", FAMILIES)
def test_family_model_cell_fits_and_predicts(name, task_type):
    data = tiny(task_type)
    preprocess = TemplateCoder().stage_code("preprocess", None, [], data.profile, data.task)
    code = model_cell(data, family(name))

    namespace = run_cells(data, [preprocess, code])
    pipeline = Pipeline([*namespace["steps"], ("model", namespace["model"])])
    target = data.task.target
    pipeline.fit(namespace["train"].drop(columns=[target]), namespace["train"][target])
    predictions = np.asarray(pipeline.predict(namespace["dev"].drop(columns=[target])))

    assert predictions.shape == (len(data.dev),)
    if task_type == "regression":
        assert np.isfinite(predictions).all()
    else:
        assert set(np.unique(predictions)) <= {0, 1}
    assert family(name).estimator(task_type == "regression") in code


@pytest.mark.parametrize("name", FAMILIES)
def test_family_estimators_and_template_exist(name):
    model = family(name)

    module = importlib.import_module(model.module)

    assert hasattr(module, model.regressor) and hasattr(module, model.classifier)
    assert model.template in model_templates.TEMPLATES
    if model.complement is not None:
        assert model.template in ensemble_templates.MEMBER_TEMPLATES
    assert model.variant_of is None or model.variant_of in REGISTRY
    assert model.description and model.libraries


def _estimator_settings() -> list[object]:
    """(family, settings) for every plain-estimator setting the catalog and registry hold."""
    cases = []
    for entry in CATALOG.values():
        if entry.stage == "model" and family(entry.spec["family"]).template == "estimator":
            cases.append(pytest.param(entry.spec["family"], dict(entry.spec), id=entry.key))
    for model in REGISTRY.values():
        if model.template != "estimator":
            continue
        cases.append(pytest.param(model.name, model.spec(), id=f"{model.name}-defaults"))
        if model.complement is not None:
            spec = model.complement.as_spec()
            cases.append(pytest.param(model.name, spec, id=f"{model.name}-complement"))
    return cases


@pytest.mark.parametrize(("name", "spec"), _estimator_settings())
def test_estimator_settings_are_parameters_of_the_estimator(name, spec):
    model = family(name)
    module = importlib.import_module(model.module)
    known = {
        task: set(getattr(module, model.estimator(task == "regression"))().get_params())
        for task in ("regression", "classification")
    }

    # Shared settings may name a parameter of one task's estimator only (class_weight) when
    # the entry applies to that task alone.
    for part in ("params", "large_data"):
        assert set(spec.get(part, {})) <= known["regression"] | known["classification"], part
    for task in ("regression", "classification"):
        assert set(spec.get(task, {})) <= known[task], task


@pytest.mark.parametrize("chosen", FAMILIES)
def test_every_family_as_the_chosen_model_gets_complementary_members(chosen):
    data = tiny("regression")
    ensembles = [e for e in CATALOG.values() if e.stage == "ensemble"]
    for entry in ensembles:
        ctx = Context.build(data.profile, data.task, [])
        ctx.model = family(chosen).spec()

        code = ensemble_templates.render(ctx, entry.spec).render()

        compile(code, entry.key, "exec")
        for member in entry.spec.get("members", ()):
            picked = next(
                family(n)
                for n in ensemble_templates.MEMBER_CANDIDATES[member]
                if family(n).base != family(chosen).base
            )
            assert f'"{picked.label}"' in code, (chosen, entry.key, member)


def test_boosters_complement_each_other():
    assert ensemble_templates.MEMBER_CANDIDATES["booster"][:2] == ("xgb", "hgb")
    assert all(family(n).booster for n in ensemble_templates.MEMBER_CANDIDATES["booster"])


def test_default_model_is_the_default_familys_defaults():
    assert DEFAULT_MODEL["family"] == DEFAULT_FAMILY
    assert DEFAULT_MODEL["params"] == dict(family(DEFAULT_FAMILY).defaults.params)


def test_model_family_of_a_path():
    data = tiny("regression")
    eda = CATALOG["eda.data_overview"].insight(data.profile)
    forest = CATALOG["model.random_forest"].insight(data.profile)
    llm = Insight("llm.model.1", "model", "A gradient-boosted forest", "llm")

    assert model_family_of([eda]) == DEFAULT_FAMILY
    assert model_family_of([eda, forest]) == "rf"
    assert model_family_of([CATALOG["model.xgb_random_search"].insight()]) == "xgb_tuned"
    assert model_family_of([eda, llm]) == "llm.model.1"


def test_large_data_settings_apply_past_the_threshold():
    rng = np.random.default_rng(0)
    n = LARGE_DATA_ROWS + 1
    frame = pd.DataFrame({"a": rng.normal(size=n), "y": rng.normal(size=n)})
    task = make_task(frame, "y")
    ctx = Context.build(profile_frame(frame, task), task, [])

    settings = model_templates.task_params(ctx, family("rf").complement.as_spec())

    assert settings["min_samples_leaf"] == 3


def test_kernel_libraries_and_prompts_come_from_the_registry():
    libraries = model_libraries()

    assert libraries == ("xgboost", "scikit-learn")
    assert set(model_modules()) <= set(kernel_helpers.WARM_MODULES)
    assert {import_name(lib) for lib in libraries} <= set(kernel_helpers._SELA_LIBRARIES)
    for library in libraries:
        assert library in llm_insights.SYSTEM_PROMPT
        assert library in llm_coder.STAGE_RULES["model"]
