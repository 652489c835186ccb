"""The eda stage's templates: one renderer per analysis, and the default summary.

Each renderer prints what an analysis finds on the training rows and records it in ``notes``
for later stages; none of them builds ``steps`` or ``model``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..catalog import HIGH_CARDINALITY
from ..specs import EdaAnalysis
from ..task import ID_LIKE
from .context import Context, mi_rows
from .preprocess import categorical_pipeline
from .source import Cell, py_list, py_str


def _eda_default(ctx: Context) -> Cell:
    cell = Cell()
    cell.add(
        'print(f"train: {len(train)} rows, dev: {len(dev)} rows, '
        '{train.shape[1] - 1} feature columns")'
    )
    if ctx.regression:
        cell.add(
            "print(train[TARGET].describe().round(3).to_string())\n"
            'notes["target_skew"] = float(train[TARGET].skew())'
        )
    else:
        cell.add(
            "class_shares = train[TARGET].value_counts(normalize=True).sort_index()\n"
            "class_shares.index = [CLASSES[code] for code in class_shares.index]\n"
            'print("class shares:", class_shares.round(3).to_dict())\n'
            'notes["class_shares"] = {str(k): float(v) for k, v in class_shares.items()}'
        )
    cell.add(
        "missing_share = train.drop(columns=[TARGET]).isna().mean()\n"
        "missing_share = missing_share[missing_share > 0].sort_values(ascending=False)\n"
        'print("missing values:", "none" if missing_share.empty else '
        "missing_share.round(3).to_dict())"
    )
    return cell


def _eda_data_overview(ctx: Context) -> Cell:
    kinds = {
        "numeric": ctx.numeric,
        "categorical": ctx.categorical,
        "text": ctx.text,
        "datetime": ctx.dates,
        "id-like (not used)": ctx.profile.names(ID_LIKE),
    }
    kind_lines = [
        "    " + py_list(cols, prefix=f"{py_str(k)}: ", indent=4) + ","
        for k, cols in kinds.items()
        if cols
    ]
    cell = Cell()
    cell.add("features = train.drop(columns=[TARGET])")
    cell.add(
        "column_kinds = {\n" + "\n".join(kind_lines) + "\n}\n"
        "for kind, columns in column_kinds.items():\n"
        '    shown = ", ".join(map(str, columns[:10])) + (" ..." if len(columns) > 10 else "")\n'
        '    print(f"{kind} ({len(columns)}): {shown}")'
    )
    cell.add(
        "constant_columns = [c for c in features.columns if features[c].nunique(dropna=False) <= 1]\n"
        "duplicate_rows = int(train.duplicated().sum())\n"
        "# Rows with identical features but different targets cap what any model can reach.\n"
        "conflicting_rows = int(features.duplicated(keep=False).sum() - "
        "train.duplicated(keep=False).sum())\n"
        'print(f"train: {len(train)} rows; dev: {len(dev)} rows")\n'
        "print(f\"constant columns: {constant_columns or 'none'}\")\n"
        'print(f"duplicate training rows: {duplicate_rows}")\n'
        'print(f"rows whose duplicated features disagree on the target: {conflicting_rows}")'
    )
    cell.add(
        'notes["constant_columns"] = constant_columns\nnotes["duplicate_rows"] = duplicate_rows'
    )
    return cell


def _eda_target_distribution(ctx: Context) -> Cell:
    cell = Cell().imports("import numpy as np")
    log_line = ""
    if ctx.profile.target_summary.get("min", -1) >= 0:
        log_line = '\nprint(f"skew after log1p: {np.log1p(target).skew():.2f}")'
    cell.add(
        "target = train[TARGET]\n"
        "print(target.describe(percentiles=[0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).round(3)"
        ".to_string())\n"
        "q1, q3 = target.quantile([0.25, 0.75])\n"
        "extreme = (target < q1 - 3 * (q3 - q1)) | (target > q3 + 3 * (q3 - q1))\n"
        'print(f"skew {target.skew():.2f}; {extreme.mean():.1%} of rows beyond 3 IQR from the '
        'quartiles")' + log_line
    )
    cell.add(
        'notes["target_skew"] = float(target.skew())\n'
        'notes["target_extreme_share"] = float(extreme.mean())\n'
        'notes["target_summary"] = target.describe().round(6).to_dict()'
    )
    return cell


def _eda_class_balance(ctx: Context) -> Cell:
    cell = Cell().imports("import pandas as pd")
    cell.add(
        "counts = train[TARGET].value_counts().sort_index()\n"
        "balance = pd.DataFrame(\n"
        "    {\n"
        '        "class": [CLASSES[code] for code in counts.index],\n'
        '        "rows": counts.to_numpy(),\n'
        '        "share": (counts / counts.sum()).round(3).to_numpy(),\n'
        "    }\n"
        ")\n"
        "print(balance.to_string(index=False))\n"
        'print(f"imbalance ratio (largest / smallest class): {counts.max() / counts.min():.1f}")\n'
        'print(f"always predicting {CLASSES[counts.idxmax()]!r}: accuracy '
        '{counts.max() / counts.sum():.3f}")'
    )
    if ctx.task.task_type == "binary":
        cell.add(
            "positive_share = counts[POSITIVE] / counts.sum()\n"
            "positive_f1 = 2 * positive_share / (1 + positive_share)\n"
            'print(f"always predicting the positive class {CLASSES[POSITIVE]!r}: '
            'F1 {positive_f1:.3f}")'
        )
    cell.add(
        'notes["class_counts"] = {str(CLASSES[code]): int(n) for code, n in counts.items()}\n'
        'notes["imbalance_ratio"] = float(counts.max() / counts.min())'
    )
    return cell


def _eda_target_correlations(ctx: Context) -> Cell:
    cell = Cell()
    cell.add(py_list(ctx.informative_numeric or ctx.numeric, prefix="numeric_columns = "))
    if ctx.task.task_type == "multiclass":
        cell.imports("import pandas as pd", "from sklearn.feature_selection import f_classif")
        cell.add(
            "numeric = train[numeric_columns].astype(float)\n"
            "filled = numeric.fillna(numeric.median())\n"
            "f_scores, p_values = f_classif(filled, train[TARGET])\n"
            'ranking = pd.DataFrame({"F": f_scores, "p": p_values}, index=numeric_columns)\n'
            'ranking = ranking.sort_values("F", ascending=False)\n'
            'print("ANOVA F of each numeric feature across the classes:")\n'
            "print(ranking.head(15).round(4).to_string())\n"
            "class_means = train.groupby(TARGET)[list(ranking.index[:5])].mean()\n"
            "class_means.index = [CLASSES[code] for code in class_means.index]\n"
            'print("\\nclass means of the top features:")\n'
            "print(class_means.round(3).to_string())\n"
            'notes["target_correlations"] = ranking["F"].round(4).to_dict()'
        )
    else:
        cell.add(
            'correlations = train[numeric_columns].corrwith(train[TARGET], method="spearman")\n'
            "ranking = correlations.reindex(correlations.abs().sort_values(ascending=False).index)\n"
            'print(f"Spearman correlation with {TARGET}:")\n'
            "print(ranking.head(15).round(3).to_string())\n"
            'notes["target_correlations"] = ranking.round(4).to_dict()'
        )
    return cell


def _eda_mutual_information(ctx: Context) -> Cell:
    cell = Cell().imports(
        "import pandas as pd", f"from sklearn.feature_selection import {ctx.mutual_info}"
    )
    numeric, categorical = ctx.informative_numeric, ctx.categorical
    lines = []
    if numeric:
        lines.append(py_list(numeric, prefix="numeric_columns = "))
    if categorical:
        lines.append(py_list(categorical, prefix="categorical_columns = "))
    cell.add("\n".join(lines))
    rows = mi_rows(ctx, cell)
    body = [
        f"inputs = {rows}["
        + " + ".join(
            n
            for n, cols in (("numeric_columns", numeric), ("categorical_columns", categorical))
            if cols
        )
        + "].copy()"
    ]
    if numeric:
        body.append(
            "numeric = inputs[numeric_columns].astype(float)\n"
            "inputs[numeric_columns] = numeric.fillna(numeric.median())"
        )
    if categorical:
        body.append(
            "for column in categorical_columns:\n"
            '    inputs[column] = inputs[column].astype("category").cat.codes  # missing -> -1'
        )
    discrete = (
        "[column in categorical_columns for column in inputs.columns]" if categorical else "False"
    )
    body.append(
        f"scores = {ctx.mutual_info}(inputs, {rows}[TARGET], discrete_features={discrete}, "
        "random_state=SEED)\n"
        "ranking = pd.Series(scores, index=inputs.columns).sort_values(ascending=False)\n"
        'print(f"mutual information with {TARGET} (nats):")\n'
        "print(ranking.head(20).round(4).to_string())\n"
        'print("features with no detectable information:", list(ranking.index[ranking <= 0]))\n'
        'notes["mutual_information"] = ranking.round(4).to_dict()'
    )
    cell.add("\n".join(body))
    return cell


def _eda_skew_outliers(ctx: Context) -> Cell:
    cell = Cell().imports("import pandas as pd")
    cell.add(py_list(ctx.numeric, prefix="numeric_columns = "))
    cell.add(
        "numeric = train[numeric_columns]\n"
        "q1, q3 = numeric.quantile(0.25), numeric.quantile(0.75)\n"
        "iqr = q3 - q1\n"
        "outside = ((numeric < q1 - 1.5 * iqr) | (numeric > q3 + 1.5 * iqr)).mean()\n"
        "report = pd.DataFrame(\n"
        "    {\n"
        '        "skew": numeric.skew(),\n'
        '        "kurtosis": numeric.kurt(),\n'
        '        "outlier_share": outside,\n'
        '        "min": numeric.min(),\n'
        '        "max": numeric.max(),\n'
        "    }\n"
        ').sort_values("skew", key=abs, ascending=False)\n'
        "print(report.head(20).round(3).to_string())\n"
        'notes["skewed_features"] = list(report.index[report["skew"].abs() > 1])\n'
        'print("skewed (|skew| > 1):", notes["skewed_features"])'
    )
    return cell


def _eda_feature_redundancy(ctx: Context) -> Cell:
    cell = Cell().imports("import numpy as np")
    cell.add(py_list(ctx.numeric, prefix="numeric_columns = "))
    cell.add(
        "correlation = train[numeric_columns].corr().abs()\n"
        "upper = correlation.where(np.triu(np.ones(correlation.shape, dtype=bool), k=1))\n"
        "pairs = upper.stack()\n"
        "pairs = pairs[pairs > 0.9].sort_values(ascending=False)\n"
        'print(f"{len(pairs)} numeric feature pairs with |r| > 0.9")\n'
        "print(pairs.head(20).round(3).to_string())\n"
        'notes["collinear_pairs"] = [[str(a), str(b)] for a, b in pairs.index]'
    )
    return cell


def _eda_missing_report(ctx: Context) -> Cell:
    cell = Cell()
    if ctx.regression:
        outcome, label = "train[TARGET]", "mean target"
    elif ctx.task.task_type == "binary":
        outcome, label = "train[TARGET] == POSITIVE", "positive rate"
    else:
        outcome, label = "train[TARGET] == train[TARGET].mode()[0]", "majority-class share"
    cell.add(
        "missing_share = train.drop(columns=[TARGET]).isna().mean()\n"
        "missing_share = missing_share[missing_share > 0].sort_values(ascending=False)\n"
        'print("share of missing values per column:")\n'
        "print(missing_share.round(3).to_string())\n"
        'print(f"rows with any missing value: {train.isna().any(axis=1).mean():.1%}")'
    )
    cell.add(
        "# Informative missingness favours a missing-value indicator over plain imputation.\n"
        f"outcome = {outcome}\n"
        "for column in missing_share.index[:15]:\n"
        "    is_missing = train[column].isna()\n"
        "    print(\n"
        f'        f"{{column}}: {label} {{outcome[is_missing].mean():.3f}} when missing, "\n'
        '        f"{outcome[~is_missing].mean():.3f} when present"\n'
        "    )\n"
        'notes["missing_share"] = missing_share.round(4).to_dict()'
    )
    return cell


def _eda_cardinality_report(ctx: Context) -> Cell:
    cell = Cell().imports("import pandas as pd")
    cell.add(py_list(ctx.categorical, prefix="categorical_columns = "))
    cell.add(
        "cardinality = pd.DataFrame(\n"
        "    {\n"
        '        "levels": [train[c].nunique() for c in categorical_columns],\n'
        '        "rare_levels": [\n'
        "            int((train[c].value_counts() < 0.01 * len(train)).sum()) "
        "for c in categorical_columns\n"
        "        ],\n"
        '        "missing": [int(train[c].isna().sum()) for c in categorical_columns],\n'
        "    },\n"
        "    index=categorical_columns,\n"
        ').sort_values("levels", ascending=False)\n'
        "print(cardinality.to_string())\n"
        f'notes["high_cardinality"] = list(cardinality.index[cardinality["levels"] > '
        f"{HIGH_CARDINALITY}])"
    )
    if ctx.regression:
        per_level = 'train.groupby(column, observed=True)[TARGET].agg(["mean", "count"])'
        title = "mean target"
    elif ctx.task.task_type == "binary":
        per_level = (
            "(train[TARGET] == POSITIVE).groupby(train[column], observed=True)"
            '.agg(["mean", "count"])'
        )
        title = "positive rate"
    else:
        per_level = 'pd.crosstab(train[column], train[TARGET], normalize="index")'
        title = "class shares"
    cell.add(
        "for column in categorical_columns[:6]:\n"
        f'    print(f"\\n{title} by {{column}}:")\n'
        f"    print({per_level}.round(3).head(12).to_string())"
    )
    return cell


def _eda_text_report(ctx: Context) -> Cell:
    cell = Cell()
    cell.add(py_list(ctx.text, prefix="text_columns = "))
    cell.add(
        "for column in text_columns:\n"
        '    texts = train[column].fillna("").astype(str)\n'
        '    words = texts.str.lower().str.findall(r"\\w+")\n'
        "    vocabulary = words.explode().value_counts()\n"
        '    empty_share = (texts == "").mean()\n'
        "    print(\n"
        '        f"{column}: median {texts.str.len().median():.0f} characters, "\n'
        '        f"{words.str.len().median():.0f} words, vocabulary {len(vocabulary)}, "\n'
        '        f"{empty_share:.1%} empty"\n'
        "    )\n"
        '    print("  most frequent words:", ", ".join(vocabulary.index[:15].astype(str)))\n'
        '    notes[f"text_vocabulary_{column}"] = int(len(vocabulary))'
    )
    return cell


def _eda_datetime_report(ctx: Context) -> Cell:
    cell = Cell().imports("import pandas as pd")
    cell.add(py_list(ctx.dates, prefix="date_columns = "))
    if ctx.regression:
        outcome = "train[TARGET]"
    elif ctx.task.task_type == "binary":
        outcome = "train[TARGET] == POSITIVE"
    else:
        outcome = "train[TARGET] == train[TARGET].mode()[0]"
    cell.add(
        "for column in date_columns:\n"
        '    dates = pd.to_datetime(train[column], errors="coerce", format="mixed", utc=True)\n'
        '    print(f"{column}: {dates.min()} .. {dates.max()}, {dates.notna().mean():.1%} parsed")\n'
        "    period = dates.dt.year if dates.dt.year.nunique() > 1 else dates.dt.month\n"
        f"    trend = ({outcome}).groupby(period).mean()\n"
        '    print(f"  {TARGET} (mean) over time:", trend.round(3).to_dict())\n'
        '    notes[f"date_range_{column}"] = [str(dates.min()), str(dates.max())]'
    )
    return cell


def _eda_quick_baselines(ctx: Context) -> Cell:
    cell = Cell().imports(
        "from sklearn.compose import ColumnTransformer",
        "from sklearn.impute import SimpleImputer",
        "from sklearn.model_selection import cross_val_score",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    branches = []
    lists = []
    if ctx.numeric:
        lists.append(py_list(ctx.numeric, prefix="numeric_columns = "))
        branches.append('("numeric", SimpleImputer(strategy="median"), numeric_columns)')
    categorical = None
    if ctx.categorical:
        lists.append(py_list(ctx.categorical, prefix="categorical_columns = "))
        categorical = categorical_pipeline(ctx, cell, "onehot")
        branches.append('("categorical", categorical_pipeline, categorical_columns)')
    cell.add("\n".join(lists))
    if categorical:
        cell.add(f"categorical_pipeline = {categorical}")
    if ctx.regression:
        cell.imports(
            "import numpy as np",
            "from sklearn.ensemble import HistGradientBoostingRegressor",
            "from sklearn.linear_model import RidgeCV",
        )
        linear = "RidgeCV(alphas=np.logspace(-3, 3, 13))"
        booster = "HistGradientBoostingRegressor(random_state=SEED)"
        scoring = "r2"
    else:
        cell.imports(
            "from sklearn.ensemble import HistGradientBoostingClassifier",
            "from sklearn.linear_model import LogisticRegression",
        )
        linear = "LogisticRegression(max_iter=2000)"
        booster = "HistGradientBoostingClassifier(random_state=SEED)"
        scoring = "balanced_accuracy"
    cell.add(
        "baseline_inputs = ColumnTransformer(\n    [\n"
        + "".join(f"        {b},\n" for b in branches)
        + "    ]\n)\n"
        "baselines = {\n"
        f'    "linear": make_pipeline(baseline_inputs, StandardScaler(), {linear}),\n'
        f'    "gradient boosting": make_pipeline(baseline_inputs, {booster}),\n'
        "}\n"
        "X, y = train.drop(columns=[TARGET]), train[TARGET]\n"
        "for name, baseline in baselines.items():\n"
        f'    scores = cross_val_score(baseline, X, y, cv=3, scoring="{scoring}")\n'
        f'    print(f"{{name:>17}}: {scoring} {{scores.mean():.3f}} +/- {{scores.std():.3f}}")\n'
        f'    notes[f"baseline_{scoring}_{{name}}"] = float(scores.mean())'
    )
    return cell


#: The renderer of each analysis a catalog eda spec names.
RENDERERS: Mapping[EdaAnalysis, Callable[[Context], Cell]] = {
    "data_overview": _eda_data_overview,
    "target_distribution": _eda_target_distribution,
    "class_balance": _eda_class_balance,
    "target_correlations": _eda_target_correlations,
    "mutual_information": _eda_mutual_information,
    "skew_outliers": _eda_skew_outliers,
    "feature_redundancy": _eda_feature_redundancy,
    "missing_report": _eda_missing_report,
    "cardinality_report": _eda_cardinality_report,
    "text_report": _eda_text_report,
    "datetime_report": _eda_datetime_report,
    "quick_baselines": _eda_quick_baselines,
}


def render(ctx: Context, spec: Mapping[str, Any] | None) -> Cell:
    """The eda cell: the spec's analysis, or a short summary of the data by default."""
    return RENDERERS[spec["analysis"]](ctx) if spec else _eda_default(ctx)
