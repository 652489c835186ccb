"""The typed shape of catalog specs: what each stage's template renders, and its check.

A catalog entry's ``spec`` stays a plain mapping, typed per stage here (:class:`EdaSpec`,
:class:`PreprocessSpec`, :class:`FeatureSpec`, :class:`ModelSpec`, :class:`EnsembleSpec`), and
:func:`check_spec` runs when an entry is defined: an unknown key, a missing one, a value outside
its vocabulary (a misspelt ``numeric_transform``) or of the wrong type raises :class:`SpecError`.
A model spec's ``family`` must be registered in :mod:`.families`. The vocabularies here are the
keys of the code generator's renderer registries (a test keeps the two equal).
"""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Union, get_args, get_origin, get_type_hints

from .families import REGISTRY

EdaAnalysis = Literal[
    "data_overview",
    "target_distribution",
    "class_balance",
    "target_correlations",
    "mutual_information",
    "skew_outliers",
    "feature_redundancy",
    "missing_report",
    "cardinality_report",
    "text_report",
    "datetime_report",
    "quick_baselines",
]
NumericImpute = Literal["median", "knn", "iterative"]
NumericTransform = Literal["standard", "quantile", "power", "winsorize", "signed_log"]
CategoricalImpute = Literal["most_frequent", "none"]  # none: missing is a level of its own
Encoding = Literal["onehot", "onehot_rare", "ordinal", "target", "frequency", "mixed_target"]
RowFilter = Literal["isolation_forest", "duplicates"]
TargetTransform = Literal["log1p", "power"]
Feature = Literal[
    "date_parts",
    "text_tfidf",
    "text_char_tfidf",
    "text_stats",
    "ratios",
    "products",
    "polynomial",
    "group_deviation",
    "category_crosses",
    "splines",
    "category_frequency",
    "category_target_means",
    "missing_count",
    "select_model",
    "select_mutual_info",
    "pca_components",
    "kmeans_distances",
]
EnsembleKind = Literal["stack", "vote", "bagging", "seed_average"]
#: The kinds of complementary estimator an ensemble adds next to the chosen model.
Member = Literal["linear", "booster", "trees", "forest", "knn"]
Voting = Literal["soft", "hard"]


class EdaSpec(TypedDict):
    """An analysis to print."""

    analysis: EdaAnalysis


class PreprocessSpec(TypedDict, total=False):
    """Overrides of the preprocess defaults (``catalog.PREPROCESS_DEFAULTS``), one concern each."""

    numeric_impute: NumericImpute
    missing_indicator: bool
    numeric_transform: NumericTransform | None
    categorical_impute: CategoricalImpute
    encoding: Encoding
    row_filter: RowFilter | None
    target_transform: TargetTransform | None


class FeatureSpec(TypedDict):
    """A feature idea."""

    feature: Feature


class _ModelFamilySpec(TypedDict):
    family: str


class ModelSpec(_ModelFamilySpec, total=False):
    """A model family and its settings: shared, per task, for large data, and template ones."""

    params: Mapping[str, Any]
    regression: Mapping[str, Any]
    classification: Mapping[str, Any]
    large_data: Mapping[str, Any]
    grid: Sequence[float]  # knn: the k, svm: the C tried by 3-fold CV
    n_iter: int  # xgb_tuned: settings sampled
    n_iter_large: int  # xgb_tuned: settings sampled on large data


class _EnsembleKindSpec(TypedDict):
    ensemble: EnsembleKind


class EnsembleSpec(_EnsembleKindSpec, total=False):
    """How the chosen model is combined with others."""

    members: tuple[Member, ...]
    voting: Voting
    weights: Sequence[float]
    n_estimators: int
    max_samples: float
    seeds: int


#: The spec type of each stage.
SPEC_TYPES: dict[str, Any] = {
    "eda": EdaSpec,
    "preprocess": PreprocessSpec,
    "features": FeatureSpec,
    "model": ModelSpec,
    "ensemble": EnsembleSpec,
}


class SpecError(ValueError):
    """A catalog spec does not have its stage's shape."""


def vocabulary(kind: Any) -> tuple[Any, ...]:
    """The values a ``Literal`` vocabulary (e.g. :data:`Feature`) allows."""
    return get_args(kind)


def check_spec(key: str, stage: str, spec: Mapping[str, Any]) -> None:
    """Raise :class:`SpecError` unless ``spec`` has the shape of ``stage``'s spec type."""
    kind = SPEC_TYPES.get(stage)
    if kind is None:
        raise SpecError(f"catalog entry {key!r}: unknown stage {stage!r}")
    if not isinstance(spec, Mapping):
        raise SpecError(
            f"catalog entry {key!r}: its spec is a {type(spec).__name__}, not a mapping"
        )
    hints = get_type_hints(kind)
    unknown = [name for name in spec if name not in hints]
    if unknown:
        raise SpecError(
            f"catalog entry {key!r}: unknown {stage} spec key {unknown[0]!r}; "
            f"expected {', '.join(hints)}"
        )
    missing = [name for name in sorted(kind.__required_keys__) if name not in spec]
    if missing:
        raise SpecError(f"catalog entry {key!r}: its {stage} spec needs {missing[0]!r}")
    for name, value in spec.items():
        expected = _mismatch(value, hints[name])
        if expected is not None:
            raise SpecError(f"catalog entry {key!r}: {name} {value!r} is not {expected}")
    if stage == "model" and spec["family"] not in REGISTRY:
        raise SpecError(
            f"catalog entry {key!r}: family {spec['family']!r} is not a registered model family "
            f"({', '.join(REGISTRY)})"
        )


def _mismatch(value: Any, hint: Any) -> str | None:
    """``None`` when ``value`` fits the type ``hint``, else what was expected."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return None
    if origin is Literal:
        return None if value in args else "one of " + ", ".join(map(repr, args))
    if origin in (Union, types.UnionType):
        failures = [_mismatch(value, arm) for arm in args]
        return None if None in failures else " or ".join(f for f in failures if f)
    if hint is type(None):
        return None if value is None else "None"
    if hint in (int, float):
        number = (int, float) if hint is float else (int,)
        ok = isinstance(value, number) and not isinstance(value, bool)
        return None if ok else f"a{'n' if hint is int else ''} {hint.__name__}"
    if hint in (bool, str):
        return None if isinstance(value, hint) else f"a {hint.__name__}"
    if origin is Mapping:
        ok = isinstance(value, Mapping) and all(isinstance(k, str) for k in value)
        return None if ok else "a mapping of names to values"
    if origin in (tuple, Sequence):
        container = tuple if origin is tuple else (list, tuple)
        if not isinstance(value, container):
            return "a tuple" if origin is tuple else "a list or tuple"
        for item in value:
            expected = _mismatch(item, args[0])
            if expected is not None:
                return f"a sequence of {expected} ({item!r} is not)"
        return None
    raise TypeError(f"check_spec cannot check the type {hint!r}")
