"""The features stage's templates: one renderer per feature idea, assembled into one cell.

Each idea contributes a :class:`FeaturePart`: definitions for the cell, steps that work on the raw
frame before preprocessing, branches added to the preprocess ``ColumnTransformer``, and steps
appended after it. Date and text columns always get a default treatment unless the idea handles
them, since they are unusable raw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..specs import Feature
from ..task import CATEGORICAL
from .context import Context, mi_rows
from .preprocess import target_encoder
from .source import Cell, py_call, py_list, py_str
from .transformers import (
    FrequencyEncoder,
    GroupDeviation,
    add_crosses,
    add_missing_count,
    add_products,
    add_ratios,
    add_text_stats,
    as_text,
    source_of,
)


@dataclass
class FeaturePart:
    """What one feature idea adds: definitions, raw-frame steps, preprocess branches, end steps."""

    cell: Cell = field(default_factory=Cell)
    front: list[tuple[str, str]] = field(default_factory=list)
    branches: list[tuple[str, str, str]] = field(default_factory=list)
    back: list[tuple[str, str]] = field(default_factory=list)


def _date_parts(ctx: Context, rich: bool) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports(
        "import pandas as pd", "from sklearn.preprocessing import FunctionTransformer"
    )
    extra = ""
    if rich:
        part.cell.imports("import numpy as np")
        extra = (
            '        frame[f"{column}_day"] = dates.dt.day\n'
            '        frame[f"{column}_dayofyear"] = dates.dt.day_of_year\n'
            '        frame[f"{column}_hour"] = dates.dt.hour\n'
            '        frame[f"{column}_is_weekend"] = (dates.dt.day_of_week >= 5).astype(float)\n'
            "        # Cyclical encodings put December next to January and Sunday next to Monday.\n"
            '        frame[f"{column}_month_sin"] = np.sin(2 * np.pi * dates.dt.month / 12)\n'
            '        frame[f"{column}_month_cos"] = np.cos(2 * np.pi * dates.dt.month / 12)\n'
            '        frame[f"{column}_weekday_sin"] = np.sin(2 * np.pi * dates.dt.day_of_week / 7)\n'
            '        frame[f"{column}_weekday_cos"] = np.cos(2 * np.pi * dates.dt.day_of_week / 7)\n'
        )
    part.cell.add(py_list(ctx.dates, prefix="date_columns = "))
    part.cell.add(
        "def add_date_parts(frame, columns):\n"
        '    """Numeric parts of each date column (unparseable dates become missing)."""\n'
        "    frame = frame.copy()\n"
        "    for column in columns:\n"
        '        dates = pd.to_datetime(frame[column], errors="coerce", format="mixed", utc=True)\n'
        '        frame[f"{column}_year"] = dates.dt.year\n'
        '        frame[f"{column}_month"] = dates.dt.month\n'
        '        frame[f"{column}_weekday"] = dates.dt.day_of_week\n'
        '        epoch = pd.Timestamp("1970-01-01", tz="UTC")\n'
        '        frame[f"{column}_days_since_1970"] = (dates - epoch).dt.days\n'
        + extra
        + "    return frame"
    )
    part.front.append(
        (
            "date_parts",
            'FunctionTransformer(add_date_parts, kw_args={"columns": date_columns})',
        )
    )
    return part


def _text_tfidf(ctx: Context, analyzer: str) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports(
        "from sklearn.decomposition import TruncatedSVD",
        "from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import FunctionTransformer",
    )
    components = max(2, min(100 if analyzer != "default" else 32, ctx.train_rows // 4))
    if analyzer == "char":
        vectorizer = (
            'HashingVectorizer(analyzer="char_wb", ngram_range=(2, 5), n_features=2**15, '
            "alternate_sign=False, norm=None)"
        )
    else:
        vectorizer = (
            "HashingVectorizer(ngram_range=(1, 2), n_features=2**15, alternate_sign=False, "
            "norm=None)"
        )
    part.cell.add(source_of(as_text))
    part.cell.add(
        "# Hashing keeps the width fixed, so the SVD works whatever the vocabulary size.\n"
        "text_pipeline = "
        + py_call(
            "make_pipeline",
            [
                "FunctionTransformer(as_text)",
                vectorizer,
                "TfidfTransformer(sublinear_tf=True)",
                f"TruncatedSVD(n_components={components}, random_state=SEED)",
            ],
        )
    )
    for i, column in enumerate(ctx.text):
        part.branches.append((f"text_{i}", "text_pipeline", py_str(column)))
    return part


def _text_stats(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports("from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(py_list(ctx.text, prefix="text_columns = "))
    part.cell.add(source_of(add_text_stats))
    part.front.append(
        ("text_stats", 'FunctionTransformer(add_text_stats, kw_args={"columns": text_columns})')
    )
    return part


def _main_numeric(
    ctx: Context, part: FeaturePart, count: int, continuous: bool, purpose: str
) -> None:
    """Define ``main_columns``: the ``count`` numeric features with the most mutual information."""
    candidates = ctx.informative_numeric
    if continuous:
        wide = [c.name for c in ctx.profile.columns if c.name in candidates and c.unique > 2]
        candidates = wide if len(wide) >= 2 else candidates
    if len(candidates) <= count:
        part.cell.add(py_list(candidates, prefix="main_columns = "))
        return
    part.cell.imports(
        "import pandas as pd", f"from sklearn.feature_selection import {ctx.mutual_info}"
    )
    part.cell.add(py_list(candidates, prefix="candidate_columns = "))
    rows = mi_rows(ctx, part.cell)
    part.cell.add(
        "# Rank by mutual information with the target, measured on training rows only.\n"
        f"numeric = {rows}[candidate_columns].astype(float)\n"
        "filled = numeric.fillna(numeric.median())\n"
        "informativeness = pd.Series(\n"
        f"    {ctx.mutual_info}(filled, {rows}[TARGET], random_state=SEED), "
        "index=candidate_columns\n"
        ")\n"
        f"main_columns = list(informativeness.nlargest({count}).index)\n"
        f"print({py_str(purpose + ':')}, main_columns)"
    )


def _ratios(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    _main_numeric(ctx, part, 4, continuous=True, purpose="ratios between")
    part.cell.imports("import numpy as np", "from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(source_of(add_ratios))
    part.front.append(
        ("ratios", 'FunctionTransformer(add_ratios, kw_args={"columns": main_columns})')
    )
    return part


def _products(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    _main_numeric(ctx, part, 4, continuous=False, purpose="products of")
    part.cell.imports("from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(source_of(add_products))
    part.front.append(
        ("products", 'FunctionTransformer(add_products, kw_args={"columns": main_columns})')
    )
    return part


def _group_deviation(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    levels = {c.name: c.unique for c in ctx.profile.columns if c.kind == CATEGORICAL}
    fitting = [name for name, n in levels.items() if 2 <= n <= 50]
    group = (
        max(fitting, key=lambda n: levels[n]) if fitting else min(levels, key=lambda n: levels[n])
    )
    _main_numeric(ctx, part, 3, continuous=True, purpose=f"gaps to the mean per {group}")
    part.cell.imports("from sklearn.base import BaseEstimator, TransformerMixin")
    part.cell.add(source_of(GroupDeviation))
    part.front.append(
        ("group_deviation", f"GroupDeviation(group={py_str(group)}, columns=main_columns)")
    )
    return part


def _category_crosses(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    levels = {c.name: c.unique for c in ctx.profile.columns if c.kind == CATEGORICAL}
    candidates = [name for name, n in levels.items() if n <= 50]
    if len(candidates) < 2:
        candidates = sorted(levels, key=lambda n: levels[n])[:2]
    part.cell.imports(
        "from itertools import combinations",
        "from sklearn.preprocessing import FunctionTransformer",
    )
    if len(candidates) <= 3:
        part.cell.add(py_list(candidates, prefix="main_columns = "))
    else:
        part.cell.imports(
            f"from sklearn.feature_selection import {ctx.mutual_info}", "import pandas as pd"
        )
        part.cell.add(py_list(candidates, prefix="candidate_columns = "))
        rows = mi_rows(ctx, part.cell)
        part.cell.add(
            "# Cross the three columns most informative about the target (on training rows).\n"
            f"codes = {rows}[candidate_columns].apply("
            'lambda column: column.astype("category").cat.codes)\n'
            "informativeness = pd.Series(\n"
            f"    {ctx.mutual_info}(codes, {rows}[TARGET], discrete_features=True, random_state=SEED),\n"
            "    index=candidate_columns,\n"
            ")\n"
            "main_columns = list(informativeness.nlargest(3).index)"
        )
    part.cell.add(
        "crossed_pairs = list(combinations(main_columns, 2))\n"
        'cross_columns = [f"{a} x {b}" for a, b in crossed_pairs]\n'
        'print("crossed:", cross_columns)'
    )
    part.cell.add(source_of(add_crosses))
    part.front.append(
        ("crosses", 'FunctionTransformer(add_crosses, kw_args={"pairs": crossed_pairs})')
    )
    part.branches.append(("crosses", target_encoder(ctx, part.cell), "cross_columns"))
    return part


def _splines(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports(
        "from sklearn.impute import SimpleImputer",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import SplineTransformer",
    )
    part.cell.add(py_list(ctx.informative_numeric, prefix="spline_columns = "))
    part.cell.add(
        "splines = make_pipeline(\n"
        '    SimpleImputer(strategy="median"), SplineTransformer(n_knots=5, degree=3)\n'
        ")"
    )
    part.branches.append(("splines", "splines", "spline_columns"))
    return part


def _category_frequency(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports(
        "import numpy as np",
        "import pandas as pd",
        "from sklearn.base import BaseEstimator, TransformerMixin",
    )
    part.cell.add(py_list(ctx.categorical, prefix="frequency_columns = "))
    part.cell.add(source_of(FrequencyEncoder))
    part.branches.append(("category_frequency", "FrequencyEncoder()", "frequency_columns"))
    return part


def _category_target_means(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.add(py_list(ctx.categorical, prefix="encoded_columns = "))
    part.cell.add(
        "# Cross-fitted: each training row is encoded by folds that did not see its target.\n"
        "target_means = " + target_encoder(ctx, part.cell)
    )
    part.branches.append(("category_target_means", "target_means", "encoded_columns"))
    return part


def _missing_count(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports("from sklearn.preprocessing import FunctionTransformer")
    part.cell.add(source_of(add_missing_count))
    part.front.append(("missing_count", "FunctionTransformer(add_missing_count)"))
    return part


def _polynomial(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports(
        "from sklearn.impute import SimpleImputer",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import PolynomialFeatures",
    )
    part.cell.add(py_list(ctx.informative_numeric, prefix="polynomial_columns = "))
    part.cell.add(
        "# degree=(2, 2): only the squares and pairwise products; the originals are already in.\n"
        "polynomial = make_pipeline(\n"
        '    SimpleImputer(strategy="median"), PolynomialFeatures(degree=(2, 2), include_bias=False)\n'
        ")"
    )
    part.branches.append(("polynomial", "polynomial", "polynomial_columns"))
    return part


def _select_model(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    trees = ctx.estimator("ExtraTreesRegressor", "ExtraTreesClassifier")
    part.cell.imports(
        f"from sklearn.ensemble import {trees}",
        "from sklearn.feature_selection import SelectFromModel",
    )
    part.cell.add(
        "selector = SelectFromModel(\n"
        f"    {trees}(n_estimators=100, min_samples_leaf=5, random_state=SEED, n_jobs=2),\n"
        '    threshold="median",\n'
        ")"
    )
    part.back.append(("select", "selector"))
    return part


def _select_mutual_info(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports(
        "from functools import partial",
        f"from sklearn.feature_selection import SelectPercentile, {ctx.mutual_info}",
    )
    part.cell.add(
        "selector = SelectPercentile(\n"
        f"    partial({ctx.mutual_info}, random_state=SEED), percentile=60\n"
        ")"
    )
    part.back.append(("select", "selector"))
    return part


def _pca_components(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    components = min(8, max(1, ctx.n_inputs // 2))
    part.cell.imports(
        "from sklearn.decomposition import PCA",
        "from sklearn.pipeline import FeatureUnion, make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    part.cell.add(
        "with_components = FeatureUnion(\n"
        "    [\n"
        '        ("inputs", "passthrough"),\n'
        f'        ("pca", make_pipeline(StandardScaler(), PCA(n_components={components}, '
        "random_state=SEED))),\n"
        "    ]\n"
        ")"
    )
    part.back.append(("pca", "with_components"))
    return part


def _kmeans_distances(ctx: Context) -> FeaturePart:
    part = FeaturePart()
    part.cell.imports(
        "from sklearn.cluster import KMeans",
        "from sklearn.pipeline import FeatureUnion, make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    part.cell.add(
        "# KMeans.transform gives each row's distance to every cluster centre.\n"
        "with_clusters = FeatureUnion(\n"
        "    [\n"
        '        ("inputs", "passthrough"),\n'
        '        ("clusters", make_pipeline(StandardScaler(), '
        "KMeans(n_clusters=8, n_init=3, random_state=SEED))),\n"
        "    ]\n"
        ")"
    )
    part.back.append(("clusters", "with_clusters"))
    return part


#: The renderer of each feature idea a catalog features spec names.
RENDERERS: Mapping[Feature, Callable[[Context], FeaturePart]] = {
    "date_parts": lambda ctx: _date_parts(ctx, rich=True),
    "text_tfidf": lambda ctx: _text_tfidf(ctx, "word"),
    "text_char_tfidf": lambda ctx: _text_tfidf(ctx, "char"),
    "text_stats": _text_stats,
    "ratios": _ratios,
    "products": _products,
    "polynomial": _polynomial,
    "group_deviation": _group_deviation,
    "category_crosses": _category_crosses,
    "splines": _splines,
    "category_frequency": _category_frequency,
    "category_target_means": _category_target_means,
    "missing_count": _missing_count,
    "select_model": _select_model,
    "select_mutual_info": _select_mutual_info,
    "pca_components": _pca_components,
    "kmeans_distances": _kmeans_distances,
}


def render(ctx: Context, spec: Mapping[str, Any] | None) -> Cell:
    """The features cell: the spec's idea, and date parts and text vectors the data needs."""
    feature = spec["feature"] if spec else None
    parts: list[FeaturePart] = []
    # Date and text columns are unusable raw; unless this idea handles them, use the defaults.
    if ctx.dates and feature != "date_parts":
        parts.append(_date_parts(ctx, rich=False))
    if ctx.text and feature not in ("text_tfidf", "text_char_tfidf"):
        parts.append(_text_tfidf(ctx, "default"))
    if feature is not None:
        parts.append(RENDERERS[feature](ctx))
    cell = Cell()
    if not parts:
        return cell
    for part in parts:
        cell.merge(part.cell)
    front = [step for part in parts for step in part.front]
    branches = [branch for part in parts for branch in part.branches]
    back = [step for part in parts for step in part.back]
    assembly = []
    if front:
        assembly.append(
            "# These steps work on the raw columns, before the preprocess step.\n"
            "steps = [\n"
            + "".join(f"    ({py_str(name)}, {expr}),\n" for name, expr in front)
            + "] + steps"
        )
    if branches:
        assembly.append(
            'preprocess = dict(steps)["preprocess"]\n'
            + "\n".join(
                f"preprocess.transformers.append(({py_str(name)}, {expr}, {columns}))"
                for name, expr, columns in branches
            )
        )
    if back:
        assembly.append("\n".join(f"steps.append(({py_str(name)}, {expr}))" for name, expr in back))
    cell.add("\n".join(assembly))
    return cell
