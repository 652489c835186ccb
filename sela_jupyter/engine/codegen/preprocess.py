"""The preprocess stage's templates: the ``ColumnTransformer`` that turns raw columns into inputs.

A preprocess spec sets one concern at a time over ``catalog.PREPROCESS_DEFAULTS``; each concern
has a registry of renderers keyed by its option (:data:`IMPUTERS`, :data:`NUMERIC_TRANSFORMS`,
:data:`ENCODERS`, :data:`CATEGORICAL_LAYOUTS`, :data:`ROW_FILTERS`, :data:`TARGET_NOTES`).
The cell builds ``preprocess`` and ``steps = [("preprocess", preprocess)]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..catalog import HIGH_CARDINALITY
from ..specs import Encoding, NumericImpute, NumericTransform, RowFilter, TargetTransform
from ..task import CATEGORICAL, ID_LIKE
from .context import Context
from .source import Cell, py_call, py_list, py_str, regex_literal
from .transformers import FrequencyEncoder, QuantileClipper, as_objects, signed_log, source_of

#: Column dtypes the imputers and encoders take as they are; others are converted first.
_PLAIN_CATEGORICAL_DTYPES = {"object", "str", "string"}

# -- numeric columns -----------------------------------------------------------------------------


def _median(ctx: Context, cell: Cell) -> list[str]:
    indicator = ", add_indicator=True" if ctx.preprocess["missing_indicator"] else ""
    cell.imports("from sklearn.impute import SimpleImputer")
    return [f'SimpleImputer(strategy="median"{indicator})']


def _knn(ctx: Context, cell: Cell) -> list[str]:
    cell.imports(
        "from sklearn.impute import KNNImputer",
        "from sklearn.preprocessing import StandardScaler",
    )
    return ["StandardScaler()", "KNNImputer(n_neighbors=5)"]


def _iterative(ctx: Context, cell: Cell) -> list[str]:
    cell.imports(
        "from sklearn.experimental import enable_iterative_imputer  # noqa: F401",
        "from sklearn.impute import IterativeImputer",
    )
    return ["IterativeImputer(max_iter=10, random_state=SEED)"]


#: The numeric pipeline's first steps for each ``numeric_impute``.
IMPUTERS: Mapping[NumericImpute, Callable[[Context, Cell], list[str]]] = {
    "median": _median,
    "knn": _knn,
    "iterative": _iterative,
}


def _standard(ctx: Context, cell: Cell) -> str | None:
    if ctx.preprocess["numeric_impute"] == "knn":
        return None  # the kNN imputer's steps standardise already
    cell.imports("from sklearn.preprocessing import StandardScaler")
    return "StandardScaler()"


def _quantile(ctx: Context, cell: Cell) -> str | None:
    cell.imports("from sklearn.preprocessing import QuantileTransformer")
    return py_call(
        "QuantileTransformer",
        [
            'output_distribution="normal"',
            "n_quantiles=min(1000, len(train))",
            "random_state=SEED",
        ],
    )


def _power(ctx: Context, cell: Cell) -> str | None:
    cell.imports("from sklearn.preprocessing import PowerTransformer")
    return 'PowerTransformer(method="yeo-johnson")'


def _winsorize(ctx: Context, cell: Cell) -> str | None:
    cell.imports("import numpy as np", "from sklearn.base import BaseEstimator, TransformerMixin")
    cell.add(source_of(QuantileClipper))
    return "QuantileClipper(lower=0.01, upper=0.99)"


def _signed_log(ctx: Context, cell: Cell) -> str | None:
    cell.imports("import numpy as np", "from sklearn.preprocessing import FunctionTransformer")
    cell.add(source_of(signed_log))
    return "FunctionTransformer(signed_log)"


#: The numeric pipeline's last step for each ``numeric_transform`` (``None``: no step).
NUMERIC_TRANSFORMS: Mapping[NumericTransform, Callable[[Context, Cell], str | None]] = {
    "standard": _standard,
    "quantile": _quantile,
    "power": _power,
    "winsorize": _winsorize,
    "signed_log": _signed_log,
}


def _numeric_branch(ctx: Context, cell: Cell) -> str:
    """Render the numeric pipeline's definition; return the name of its variable."""
    steps = IMPUTERS[ctx.preprocess["numeric_impute"]](ctx, cell)
    transform = ctx.preprocess["numeric_transform"]
    last = NUMERIC_TRANSFORMS[transform](ctx, cell) if transform is not None else None
    if last is not None:
        steps.append(last)
    cell.imports("from sklearn.pipeline import make_pipeline")
    return py_call("make_pipeline", steps, prefix="numeric_pipeline = ")


# -- categorical columns -------------------------------------------------------------------------


def _onehot(ctx: Context, cell: Cell) -> str:
    cell.imports("from sklearn.preprocessing import OneHotEncoder")
    # Dense output keeps every model (HistGradientBoosting included) usable downstream.
    return (
        'OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=30, '
        "sparse_output=False)"
    )


def _onehot_rare(ctx: Context, cell: Cell) -> str:
    cell.imports("from sklearn.preprocessing import OneHotEncoder")
    return (
        'OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.01, '
        "sparse_output=False)"
    )


def _ordinal(ctx: Context, cell: Cell) -> str:
    cell.imports("from sklearn.preprocessing import OrdinalEncoder")
    return py_call(
        "OrdinalEncoder",
        ['handle_unknown="use_encoded_value"', "unknown_value=-1", "encoded_missing_value=-1"],
    )


def target_encoder(ctx: Context, cell: Cell) -> str:
    """A cross-fitted TargetEncoder with seeded, shuffled folds."""
    folds = ctx.estimator("KFold", "StratifiedKFold")
    cell.imports(
        "from sklearn.model_selection import " + folds,
        "from sklearn.preprocessing import TargetEncoder",
    )
    return py_call(
        "TargetEncoder",
        [
            f'target_type="{ctx.target_type}"',
            f"cv={folds}(5, shuffle=True, random_state=SEED)",
        ],
    )


def _frequency(ctx: Context, cell: Cell) -> str:
    cell.imports(
        "import numpy as np",
        "import pandas as pd",
        "from sklearn.base import BaseEstimator, TransformerMixin",
    )
    cell.add(source_of(FrequencyEncoder))
    return "FrequencyEncoder()"


#: The categorical encoder expression for each single-encoder ``encoding``.
ENCODERS: Mapping[str, Callable[[Context, Cell], str]] = {
    "onehot": _onehot,
    "onehot_rare": _onehot_rare,
    "ordinal": _ordinal,
    "target": target_encoder,
    "frequency": _frequency,
}


def categorical_pipeline(ctx: Context, cell: Cell, encoding: str) -> str:
    """The categorical pipeline's expression: dtype fix and imputation as needed, then encoding."""
    encoder = ENCODERS[encoding](ctx, cell)
    steps = []
    if any(
        c.kind == CATEGORICAL and c.dtype not in _PLAIN_CATEGORICAL_DTYPES
        for c in ctx.profile.columns
    ):
        # SimpleImputer rejects bool columns and mixes of category and boolean dtypes.
        cell.imports("import numpy as np", "from sklearn.preprocessing import FunctionTransformer")
        cell.add(source_of(as_objects))
        steps.append('FunctionTransformer(as_objects, feature_names_out="one-to-one")')
    if ctx.preprocess["categorical_impute"] != "none":
        # (Without an imputer the encoders treat a missing value as one more level.)
        cell.imports("from sklearn.impute import SimpleImputer")
        steps.append('SimpleImputer(strategy="most_frequent")')
    if not steps:
        return encoder
    cell.imports("from sklearn.pipeline import make_pipeline")
    return py_call("make_pipeline", [*steps, encoder])


#: One categorical branch of the ColumnTransformer: its column list's line, its pipeline's line
#: and its ``(name, pipeline, columns)`` entry.
Branch = tuple[str, str, str]


def _single_encoder(encoding: str) -> Callable[[Context, Cell], list[Branch]]:
    def branches(ctx: Context, cell: Cell) -> list[Branch]:
        """One branch encoding every categorical column."""
        columns = py_list(ctx.categorical, prefix="categorical_columns = ")
        pipeline = "categorical_pipeline = " + categorical_pipeline(ctx, cell, encoding)
        return [(columns, pipeline, '("categorical", categorical_pipeline, categorical_columns)')]

    return branches


def _mixed_target(ctx: Context, cell: Cell) -> list[Branch]:
    high = [
        c.name for c in ctx.profile.columns if c.kind == CATEGORICAL and c.unique > HIGH_CARDINALITY
    ]
    low = [c for c in ctx.categorical if c not in high]
    branches = []
    if low:
        columns = py_list(low, prefix="low_cardinality_columns = ")
        pipeline = "onehot_pipeline = " + categorical_pipeline(ctx, cell, "onehot")
        branches.append(
            (columns, pipeline, '("one_hot", onehot_pipeline, low_cardinality_columns)')
        )
    columns = py_list(high, prefix="high_cardinality_columns = ")
    pipeline = "target_pipeline = " + categorical_pipeline(ctx, cell, "target")
    branches.append(
        (columns, pipeline, '("target_encoded", target_pipeline, high_cardinality_columns)')
    )
    return branches


#: The categorical branches for each ``encoding``: one encoder over every categorical column, or
#: one-hot for low-cardinality columns and target encoding for the rest.
CATEGORICAL_LAYOUTS: Mapping[Encoding, Callable[[Context, Cell], list[Branch]]] = {
    "onehot": _single_encoder("onehot"),
    "onehot_rare": _single_encoder("onehot_rare"),
    "ordinal": _single_encoder("ordinal"),
    "target": _single_encoder("target"),
    "frequency": _single_encoder("frequency"),
    "mixed_target": _mixed_target,
}


# -- rows and target -----------------------------------------------------------------------------


def _drop_duplicates(ctx: Context, cell: Cell) -> None:
    cell.add(
        "n_before = len(train)\n"
        "train = train.drop_duplicates()\n"
        'print(f"dropped {n_before - len(train)} duplicate training rows of {n_before}")'
    )


def _isolation_forest(ctx: Context, cell: Cell) -> None:
    cell.imports("from sklearn.ensemble import IsolationForest")
    cell.add(py_list(ctx.informative_numeric, prefix="outlier_columns = "))
    cell.add(
        "# Only training rows are dropped: rows to predict are never filtered.\n"
        "numeric = train[outlier_columns].astype(float)\n"
        "filled = numeric.fillna(numeric.median())\n"
        "detector = IsolationForest(contamination=0.01, random_state=SEED, n_jobs=2)\n"
        "is_inlier = detector.fit_predict(filled) == 1\n"
        'print(f"dropping {(~is_inlier).sum()} anomalous training rows of {len(train)}")\n'
        "train = train[is_inlier]"
    )


#: The training-row filter for each ``row_filter`` (``None``: keep every row).
ROW_FILTERS: Mapping[RowFilter, Callable[[Context, Cell], None]] = {
    "duplicates": _drop_duplicates,
    "isolation_forest": _isolation_forest,
}


def _log1p_note(ctx: Context, cell: Cell) -> None:
    cell.imports("import numpy as np")
    cell.add(
        "# The model cell fits on log1p(target) and maps predictions back with expm1.\n"
        "log_skew = np.log1p(train[TARGET]).skew()\n"
        'print(f"skew of {TARGET}: {train[TARGET].skew():.2f}, after log1p: {log_skew:.2f}")\n'
        'notes["target_transform"] = "log1p"'
    )


def _power_note(ctx: Context, cell: Cell) -> None:
    cell.imports("from sklearn.preprocessing import PowerTransformer")
    cell.add(
        "# The model cell fits on a Yeo-Johnson transform of the target and inverts it.\n"
        "transformed = PowerTransformer().fit_transform(train[[TARGET]])\n"
        "transformed_skew = pd.Series(transformed[:, 0]).skew()\n"
        'print(f"skew of {TARGET}: {train[TARGET].skew():.2f}, after Yeo-Johnson: '
        '{transformed_skew:.2f}")\n'
        'notes["target_transform"] = "yeo-johnson"'
    )
    cell.imports("import pandas as pd")


#: What the preprocess cell reports for each ``target_transform`` (the model cell applies it).
TARGET_NOTES: Mapping[TargetTransform, Callable[[Context, Cell], None]] = {
    "log1p": _log1p_note,
    "power": _power_note,
}


# -- the cell ------------------------------------------------------------------------------------


def _regex_escape(text: str) -> str:
    """Escape regex metacharacters only (``re.escape`` also escapes spaces and the like)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _id_exclusion_pattern(names: Sequence[str]) -> str:
    """A regex matching every column name except ``names`` (for make_column_selector)."""
    alternatives = "|".join(_regex_escape(n) for n in names)
    return f"^(?!(?:{alternatives})$)"


def _numeric_selector(ctx: Context) -> str:
    ids = ctx.numeric_ids
    if not ids:
        return (
            "# Every numeric column, those added by feature steps included.\n"
            'numeric_columns = make_column_selector(dtype_include="number")'
        )
    return (
        "# Every numeric column, those added by feature steps included, except the id-like "
        + ", ".join(py_str(i) for i in ids)
        + ".\n"
        + py_call(
            "make_column_selector",
            [f"pattern={regex_literal(_id_exclusion_pattern(ids))}", 'dtype_include="number"'],
            prefix="numeric_columns = ",
        )
    )


def render(ctx: Context, spec: Mapping[str, Any] | None) -> Cell:
    """The preprocess cell for the path's settings, ``spec`` applied over them."""
    if spec is not None:
        ctx.preprocess.update(spec)
    cell = Cell().imports("from sklearn.compose import ColumnTransformer, make_column_selector")
    row_filter, target_transform = ctx.preprocess["row_filter"], ctx.target_transform
    if row_filter is not None:
        ROW_FILTERS[row_filter](ctx, cell)
    if target_transform is not None:
        TARGET_NOTES[target_transform](ctx, cell)

    column_lines = [_numeric_selector(ctx)]
    branches = ['("numeric", numeric_pipeline, numeric_columns)']
    pipelines = [_numeric_branch(ctx, cell)]
    if ctx.categorical:
        for columns, pipeline, branch in CATEGORICAL_LAYOUTS[ctx.preprocess["encoding"]](ctx, cell):
            column_lines.append(columns)
            pipelines.append(pipeline)
            branches.append(branch)

    cell.add("\n".join(column_lines))
    cell.add("\n".join(pipelines))
    excluded = [*ctx.profile.names(ID_LIKE), *ctx.text, *ctx.dates]
    comment = ""
    if excluded:
        comment = (
            '# Id-like, text and date columns are left out here (remainder="drop").\n'
            if len(", ".join(excluded)) > 60
            else f'# Left out: {", ".join(py_str(c) for c in excluded)} (remainder="drop").\n'
        )
    cell.add(
        comment
        + "preprocess = ColumnTransformer(\n    [\n"
        + "".join(f"        {b},\n" for b in branches)
        + '    ],\n    remainder="drop",\n)\n'
        'steps = [("preprocess", preprocess)]'
    )
    return cell
