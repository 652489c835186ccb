"""Catalog specs are typed: a misspelt value, an unknown or a missing key fails at definition."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sela_jupyter.engine.catalog import CATALOG, PREPROCESS_DEFAULTS, CatalogEntry, always
from sela_jupyter.engine.codegen import eda, ensemble, features, model, preprocess
from sela_jupyter.engine.specs import (
    SPEC_TYPES,
    EdaAnalysis,
    EnsembleKind,
    Feature,
    Member,
    NumericImpute,
    NumericTransform,
    RowFilter,
    SpecError,
    TargetTransform,
    check_spec,
    vocabulary,
)
from sela_jupyter.engine.specs import Encoding as EncodingName


def entry(stage: str, spec: dict) -> CatalogEntry:
    return CatalogEntry(f"{stage}.test", stage, "A test idea", always, spec)


def test_a_misspelt_value_fails_when_the_entry_is_defined():
    with pytest.raises(SpecError, match=r"'preprocess\.test': numeric_transform 'lgo' is not one"):
        entry("preprocess", {"numeric_transform": "lgo"})


@pytest.mark.parametrize(
    ("stage", "spec", "message"),
    [
        ("preprocess", {"numeric_transfrom": "quantile"}, "unknown preprocess spec key"),
        ("preprocess", {"missing_indicator": "yes"}, "missing_indicator 'yes' is not a bool"),
        ("preprocess", {"row_filter": "outliers"}, "row_filter 'outliers' is not one of"),
        ("eda", {}, "its eda spec needs 'analysis'"),
        ("eda", {"analysis": "overview"}, "analysis 'overview' is not one of"),
        ("features", {"feature": "ratio"}, "feature 'ratio' is not one of"),
        ("model", {"params": {}}, "its model spec needs 'family'"),
        ("model", {"family": "xbg"}, "family 'xbg' is not a registered model family"),
        ("model", {"family": "knn", "grid": "5, 10"}, "grid '5, 10' is not a list or tuple"),
        ("model", {"family": "rf", "params": [1]}, "is not a mapping"),
        ("model", {"family": "xgb_tuned", "n_iter": 2.5}, "n_iter 2.5 is not an int"),
        ("ensemble", {"ensemble": "blend"}, "ensemble 'blend' is not one of"),
        ("ensemble", {"ensemble": "stack", "members": ("linear", "boosters")}, "'boosters'"),
        ("ensemble", {"ensemble": "vote", "members": ["linear"]}, "is not a tuple"),
        ("ensemble", {"ensemble": "vote", "voting": "majority"}, "voting 'majority'"),
    ],
)
def test_specs_of_the_wrong_shape_fail(stage, spec, message):
    with pytest.raises(SpecError, match=message):
        entry(stage, spec)


def test_spec_errors_are_value_errors_and_unknown_stages_fail():
    assert issubclass(SpecError, ValueError)
    with pytest.raises(SpecError, match="unknown stage"):
        check_spec("x", "deploy", {})


def test_the_catalog_and_the_preprocess_defaults_have_their_stages_shape():
    for key, catalog_entry in CATALOG.items():
        check_spec(key, catalog_entry.stage, catalog_entry.spec)
    check_spec("defaults", "preprocess", PREPROCESS_DEFAULTS)
    assert set(SPEC_TYPES) == {"eda", "preprocess", "features", "model", "ensemble"}


@pytest.mark.parametrize(
    ("kind", "registry"),
    [
        (EdaAnalysis, eda.RENDERERS),
        (NumericImpute, preprocess.IMPUTERS),
        (NumericTransform, preprocess.NUMERIC_TRANSFORMS),
        (EncodingName, preprocess.CATEGORICAL_LAYOUTS),
        (RowFilter, preprocess.ROW_FILTERS),
        (TargetTransform, preprocess.TARGET_NOTES),
        (TargetTransform, model.TARGET_TRANSFORMS),
        (Feature, features.RENDERERS),
        (EnsembleKind, ensemble.RENDERERS),
        (Member, ensemble.MEMBER_CANDIDATES),
    ],
)
def test_every_value_a_spec_may_name_has_a_renderer(kind, registry):
    assert set(vocabulary(kind)) == set(registry)


def test_insights_no_longer_import_the_catalog():
    code = (
        "import sys, sela_jupyter.engine.insights; "
        "assert 'sela_jupyter.engine.catalog' not in sys.modules"
    )

    subprocess.run([sys.executable, "-c", code], check=True)
