"""The curated built-in insight catalog.

Each :class:`CatalogEntry` is one idea for one stage: a stable key (the insight id), the sentence a
data scientist reads in the tree view, a predicate that says whether the idea applies to a data
profile and task, and a ``spec`` that tells the template coder (:mod:`.codegen`) what to render.
Estimator hyper-parameters live here, so tuning the catalog never touches the code templates.
Specs are typed per stage (:mod:`.specs`) and checked when an entry is defined.
:class:`BuiltinProposer` proposes the entries that apply to a data profile.

The entries are ordered: the proposer keeps catalog order, so proposals are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .insights import STAGES, Insight, InsightPool
from .specs import check_spec
from .task import CATEGORICAL, DATETIME, NUMERIC, TEXT, DataProfile, Task

Predicate = Callable[[DataProfile, Task], bool]

#: kNN and kNN stacking are only proposed up to this many rows (prediction cost grows with n).
SMALL_DATA_ROWS = 5000
#: Degree-2 polynomial features only for frames with at most this many numeric columns.
POLYNOMIAL_MAX_FEATURES = 12
#: Above this many rows, model specs apply their "large_data" settings (cheaper forests).
LARGE_DATA_ROWS = 3000
#: kNN is only proposed up to this many model inputs (distances lose meaning in many dimensions).
KNN_MAX_FEATURES = 30
#: Kernel SVMs are only proposed up to this many rows.
SVM_MAX_ROWS = 3000
#: The booster random search is only proposed up to this many rows (3-fold CV of 12 settings).
TUNED_MAX_ROWS = 20000
#: A categorical column with more levels than this counts as high-cardinality.
HIGH_CARDINALITY = 10


@dataclass(frozen=True)
class CatalogEntry:
    """One built-in insight: key, stage, text, applicability and what the coder renders."""

    key: str
    stage: str
    text: str
    applies: Predicate
    spec: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_spec(self.key, self.stage, self.spec)

    def insight(self, profile: DataProfile | None = None) -> Insight:
        """The :class:`Insight` for this entry, its text naming the profile's target."""
        target = profile.target if profile is not None else "the target"
        return Insight(self.key, self.stage, self.text.replace("{target}", str(target)))


# -- predicates --------------------------------------------------------------------------------


def always(profile: DataProfile, task: Task) -> bool:
    """Applies to every profile."""
    return True


def all_of(*predicates: Predicate) -> Predicate:
    """A predicate that holds when every one of ``predicates`` holds."""

    def check(profile: DataProfile, task: Task) -> bool:
        return all(p(profile, task) for p in predicates)

    return check


def numeric_at_least(n: int) -> Predicate:
    """At least ``n`` numeric feature columns."""
    return lambda profile, task: len(profile.names(NUMERIC)) >= n


def numeric_at_most(n: int) -> Predicate:
    """At most ``n`` numeric feature columns."""
    return lambda profile, task: len(profile.names(NUMERIC)) <= n


def categorical_at_least(n: int) -> Predicate:
    """At least ``n`` categorical feature columns."""
    return lambda profile, task: len(profile.names(CATEGORICAL)) >= n


def model_inputs_at_least(n: int) -> Predicate:
    """At least ``n`` numeric plus categorical columns (the ones the default preprocess keeps)."""
    return lambda profile, task: len(usable_columns(profile)) >= n


def model_inputs_at_most(n: int) -> Predicate:
    """At most ``n`` numeric plus categorical columns."""
    return lambda profile, task: len(usable_columns(profile)) <= n


def has_missing(profile: DataProfile, task: Task) -> bool:
    """Some feature column has missing values."""
    return bool(profile.missing_columns)


def has_missing_numeric(profile: DataProfile, task: Task) -> bool:
    """Some numeric feature column has missing values."""
    return bool(set(profile.missing_columns) & set(profile.names(NUMERIC)))


def has_missing_categorical(profile: DataProfile, task: Task) -> bool:
    """Some categorical feature column has missing values."""
    return bool(set(profile.missing_columns) & set(profile.names(CATEGORICAL)))


def has_high_cardinality(profile: DataProfile, task: Task) -> bool:
    """Some categorical column has more than :data:`HIGH_CARDINALITY` levels."""
    return any(c.kind == CATEGORICAL and c.unique > HIGH_CARDINALITY for c in profile.columns)


def has_text(profile: DataProfile, task: Task) -> bool:
    """Some feature column holds free text."""
    return bool(profile.names(TEXT))


def no_text(profile: DataProfile, task: Task) -> bool:
    """No free-text column (their SVD components would swamp distance-based models)."""
    return not profile.names(TEXT)


def has_datetime(profile: DataProfile, task: Task) -> bool:
    """Some feature column holds dates or timestamps."""
    return bool(profile.names(DATETIME))


def is_regression(profile: DataProfile, task: Task) -> bool:
    """The task is regression."""
    return task.task_type == "regression"


def is_classification(profile: DataProfile, task: Task) -> bool:
    """The task is binary or multiclass classification."""
    return task.is_classification


def is_imbalanced(profile: DataProfile, task: Task) -> bool:
    """A classification task whose rarest class is under a third of the largest."""
    return task.is_classification and profile.imbalanced


def wants_target_transform(profile: DataProfile, task: Task) -> bool:
    """A skewed non-negative regression target, or a metric on the log scale."""
    return task.task_type == "regression" and (profile.skewed_target or task.metric == "rmsle")


def metric_is(*metrics: str) -> Predicate:
    """The task is scored with one of ``metrics``."""
    return lambda profile, task: task.metric in metrics


def rows_at_least(n: int) -> Predicate:
    """At least ``n`` labelled rows."""
    return lambda profile, task: profile.n_rows >= n


def rows_at_most(n: int) -> Predicate:
    """At most ``n`` labelled rows."""
    return lambda profile, task: profile.n_rows <= n


def small_data(profile: DataProfile, task: Task) -> bool:
    """At most :data:`SMALL_DATA_ROWS` rows, where kNN prediction stays fast."""
    return profile.n_rows <= SMALL_DATA_ROWS


def usable_columns(profile: DataProfile) -> list[str]:
    """Numeric and categorical feature columns: what the default preprocess feeds the model."""
    return [c.name for c in profile.columns if c.kind in (NUMERIC, CATEGORICAL)]


# -- the catalog -------------------------------------------------------------------------------

_EDA = [
    CatalogEntry(
        "eda.data_overview",
        "eda",
        "Overview the training data: column kinds, constant columns and duplicated rows",
        always,
        {"analysis": "data_overview"},
    ),
    CatalogEntry(
        "eda.target_distribution",
        "eda",
        "Describe the distribution of {target}: quantiles, skew and extreme values",
        is_regression,
        {"analysis": "target_distribution"},
    ),
    CatalogEntry(
        "eda.class_balance",
        "eda",
        "Report the class balance of {target} and what predicting the majority class would score",
        is_classification,
        {"analysis": "class_balance"},
    ),
    CatalogEntry(
        "eda.target_correlations",
        "eda",
        "Rank numeric features by how strongly they relate to {target} (Spearman or ANOVA F)",
        numeric_at_least(1),
        {"analysis": "target_correlations"},
    ),
    CatalogEntry(
        "eda.mutual_information",
        "eda",
        "Rank every feature, categoricals included, by its mutual information with {target}",
        model_inputs_at_least(1),
        {"analysis": "mutual_information"},
    ),
    CatalogEntry(
        "eda.skew_outliers",
        "eda",
        "Report skew and the share of outliers beyond 1.5 IQR for each numeric feature",
        numeric_at_least(1),
        {"analysis": "skew_outliers"},
    ),
    CatalogEntry(
        "eda.feature_redundancy",
        "eda",
        "Find pairs of nearly collinear numeric features (|Pearson r| above 0.9)",
        numeric_at_least(2),
        {"analysis": "feature_redundancy"},
    ),
    CatalogEntry(
        "eda.missing_report",
        "eda",
        "Report missing values per column and whether missingness relates to {target}",
        has_missing,
        {"analysis": "missing_report"},
    ),
    CatalogEntry(
        "eda.cardinality_report",
        "eda",
        "Report categorical cardinality, rare levels and how {target} varies by level",
        categorical_at_least(1),
        {"analysis": "cardinality_report"},
    ),
    CatalogEntry(
        "eda.text_report",
        "eda",
        "Summarise text columns: length, vocabulary size and the most frequent words",
        has_text,
        {"analysis": "text_report"},
    ),
    CatalogEntry(
        "eda.datetime_report",
        "eda",
        "Summarise date columns: time range, parse rate and how {target} moves over time",
        has_datetime,
        {"analysis": "datetime_report"},
    ),
    CatalogEntry(
        "eda.quick_baselines",
        "eda",
        "Compare a linear and a gradient-boosting baseline by 3-fold cross-validation on train",
        model_inputs_at_least(1),
        {"analysis": "quick_baselines"},
    ),
]

# Preprocess specs override the defaults below, one concern at a time.
PREPROCESS_DEFAULTS: Mapping[str, Any] = {
    "numeric_impute": "median",  # median | knn | iterative
    "missing_indicator": False,
    "numeric_transform": None,  # None | standard | quantile | power | winsorize | signed_log
    "categorical_impute": "most_frequent",  # most_frequent | none (missing is a level)
    "encoding": "onehot",  # onehot | onehot_rare | ordinal | target | frequency | mixed_target
    "row_filter": None,  # None | isolation_forest | duplicates
    "target_transform": None,  # None | log1p | power
}
check_spec("preprocess defaults", "preprocess", PREPROCESS_DEFAULTS)

_PREPROCESS = [
    CatalogEntry(
        "preprocess.median_onehot",
        "preprocess",
        "Impute numbers with the median and categories with the most frequent level, then one-hot",
        has_missing,
        {},
    ),
    CatalogEntry(
        "preprocess.median_indicator",
        "preprocess",
        "Impute with the median and add a missing-value indicator for each incomplete feature",
        has_missing_numeric,
        {"missing_indicator": True},
    ),
    CatalogEntry(
        "preprocess.knn_impute",
        "preprocess",
        "Impute numeric gaps from the 5 nearest neighbours on standardised features",
        has_missing_numeric,
        {"numeric_impute": "knn"},
    ),
    CatalogEntry(
        "preprocess.iterative_impute",
        "preprocess",
        "Impute numeric gaps iteratively, modelling each incomplete feature from the others",
        all_of(has_missing_numeric, numeric_at_least(2)),
        {"numeric_impute": "iterative"},
    ),
    CatalogEntry(
        "preprocess.missing_category",
        "preprocess",
        "Keep missing categorical values as a level of their own instead of imputing them",
        has_missing_categorical,
        {"categorical_impute": "none"},
    ),
    CatalogEntry(
        "preprocess.log_target",
        "preprocess",
        "Log-transform the skewed target and fit on log1p({target})",
        wants_target_transform,
        {"target_transform": "log1p"},
    ),
    CatalogEntry(
        "preprocess.power_target",
        "preprocess",
        "Fit on a Yeo-Johnson power transform of {target} and invert it for predictions",
        wants_target_transform,
        {"target_transform": "power"},
    ),
    CatalogEntry(
        "preprocess.standard_scale",
        "preprocess",
        "Standardise numeric features to zero mean and unit variance after imputation",
        numeric_at_least(1),
        {"numeric_transform": "standard"},
    ),
    CatalogEntry(
        "preprocess.quantile_normal",
        "preprocess",
        "Map numeric features onto a normal distribution with a quantile transform fitted on train",
        all_of(numeric_at_least(1), rows_at_least(100)),
        {"numeric_transform": "quantile"},
    ),
    CatalogEntry(
        "preprocess.power_transform",
        "preprocess",
        "Make numeric features more Gaussian with a Yeo-Johnson power transform",
        numeric_at_least(1),
        {"numeric_transform": "power"},
    ),
    CatalogEntry(
        "preprocess.winsorize",
        "preprocess",
        "Clip numeric features to their 1st and 99th training percentiles to tame outliers",
        numeric_at_least(1),
        {"numeric_transform": "winsorize"},
    ),
    CatalogEntry(
        "preprocess.signed_log",
        "preprocess",
        "Compress heavy tails of numeric features with a signed log, sign(x) * log1p(|x|)",
        numeric_at_least(1),
        {"numeric_transform": "signed_log"},
    ),
    CatalogEntry(
        "preprocess.drop_outlier_rows",
        "preprocess",
        "Drop the 1% most anomalous training rows, as scored by an isolation forest",
        all_of(numeric_at_least(2), rows_at_least(200)),
        {"row_filter": "isolation_forest"},
    ),
    CatalogEntry(
        "preprocess.drop_duplicate_rows",
        "preprocess",
        "Drop exact duplicate training rows so repeated records do not outweigh the rest",
        always,
        {"row_filter": "duplicates"},
    ),
    CatalogEntry(
        "preprocess.onehot_rare",
        "preprocess",
        "One-hot encode, grouping levels seen in under 1% of training rows into one 'infrequent'",
        categorical_at_least(1),
        {"encoding": "onehot_rare"},
    ),
    CatalogEntry(
        "preprocess.ordinal_encode",
        "preprocess",
        "Encode categories as integer codes, compact and tree-friendly, instead of one-hot",
        categorical_at_least(1),
        {"encoding": "ordinal"},
    ),
    CatalogEntry(
        "preprocess.target_encode",
        "preprocess",
        "Target-encode categorical columns with scikit-learn's cross-fitted TargetEncoder",
        categorical_at_least(1),
        {"encoding": "target"},
    ),
    CatalogEntry(
        "preprocess.mixed_target_encode",
        "preprocess",
        "One-hot encode low-cardinality columns and target-encode those with more than 10 levels",
        has_high_cardinality,
        {"encoding": "mixed_target"},
    ),
    CatalogEntry(
        "preprocess.frequency_encode",
        "preprocess",
        "Replace each category by how often it occurs in the training rows",
        categorical_at_least(1),
        {"encoding": "frequency"},
    ),
]

_FEATURES = [
    CatalogEntry(
        "features.date_parts",
        "features",
        "Expand dates into year, month, day, weekday, day of year, days since 1970 and cycles",
        has_datetime,
        {"feature": "date_parts"},
    ),
    CatalogEntry(
        "features.text_tfidf",
        "features",
        "Represent text by word 1-2-gram TF-IDF compressed to up to 100 SVD components",
        has_text,
        {"feature": "text_tfidf"},
    ),
    CatalogEntry(
        "features.text_char_tfidf",
        "features",
        "Represent text by character 2-5-gram TF-IDF (robust to typos) compressed by SVD",
        has_text,
        {"feature": "text_char_tfidf"},
    ),
    CatalogEntry(
        "features.text_stats",
        "features",
        "Add length, word count and digit, uppercase and punctuation shares of each text",
        has_text,
        {"feature": "text_stats"},
    ),
    CatalogEntry(
        "features.ratios",
        "features",
        "Add ratios between the four numeric features most informative about {target}",
        numeric_at_least(2),
        {"feature": "ratios"},
    ),
    CatalogEntry(
        "features.products",
        "features",
        "Add pairwise products of the four numeric features most informative about {target}",
        numeric_at_least(2),
        {"feature": "products"},
    ),
    CatalogEntry(
        "features.polynomial",
        "features",
        "Add degree-2 terms (squares and pairwise products) of the numeric features",
        all_of(numeric_at_least(1), numeric_at_most(POLYNOMIAL_MAX_FEATURES)),
        {"feature": "polynomial"},
    ),
    CatalogEntry(
        "features.group_deviation",
        "features",
        "Add each main numeric feature's gap to its training mean within a categorical group",
        all_of(numeric_at_least(1), categorical_at_least(1)),
        {"feature": "group_deviation"},
    ),
    CatalogEntry(
        "features.category_crosses",
        "features",
        "Cross pairs of the main categorical columns into combined levels and target-encode them",
        categorical_at_least(2),
        {"feature": "category_crosses"},
    ),
    CatalogEntry(
        "features.splines",
        "features",
        "Add a cubic spline basis (5 knots) of each numeric feature so linear models can bend",
        numeric_at_least(1),
        {"feature": "splines"},
    ),
    CatalogEntry(
        "features.category_frequency",
        "features",
        "Add how often each category occurs in the training rows next to its encoding",
        categorical_at_least(1),
        {"feature": "category_frequency"},
    ),
    CatalogEntry(
        "features.category_target_means",
        "features",
        "Add out-of-fold target encodings of the categorical columns next to their encoding",
        categorical_at_least(1),
        {"feature": "category_target_means"},
    ),
    CatalogEntry(
        "features.missing_count",
        "features",
        "Add the number of missing values in each row as a feature",
        has_missing,
        {"feature": "missing_count"},
    ),
    CatalogEntry(
        "features.select_model",
        "features",
        "Keep only the features an extra-trees model ranks above median importance",
        model_inputs_at_least(4),
        {"feature": "select_model"},
    ),
    CatalogEntry(
        "features.select_mutual_info",
        "features",
        "Keep the 60% of model inputs with the highest mutual information with {target}",
        model_inputs_at_least(4),
        {"feature": "select_mutual_info"},
    ),
    CatalogEntry(
        "features.pca_components",
        "features",
        "Append the leading principal components of the standardised model inputs",
        model_inputs_at_least(2),
        {"feature": "pca_components"},
    ),
    CatalogEntry(
        "features.kmeans_distances",
        "features",
        "Append distances to 8 k-means cluster centres of the standardised model inputs",
        all_of(model_inputs_at_least(2), rows_at_least(50)),
        {"feature": "kmeans_distances"},
    ),
]

_MODEL = [
    CatalogEntry(
        "model.xgb_shallow_slow",
        "model",
        "XGBoost with many shallow trees: 600 rounds, learning rate 0.03, depth 4, subsampling",
        always,
        {
            "family": "xgb",
            "params": {
                "n_estimators": 600,
                "learning_rate": 0.03,
                "max_depth": 4,
                "subsample": 0.8,
                "colsample_bytree": 0.8,
                "min_child_weight": 1,
            },
        },
    ),
    CatalogEntry(
        "model.xgb_deep_colsample",
        "model",
        "XGBoost with deeper trees (depth 6) and strong row and column subsampling",
        always,
        {
            "family": "xgb",
            "params": {
                "n_estimators": 800,
                "learning_rate": 0.025,
                "max_depth": 6,
                "subsample": 0.7,
                "colsample_bytree": 0.6,
                "min_child_weight": 1,
            },
        },
    ),
    CatalogEntry(
        "model.xgb_depth3",
        "model",
        "XGBoost with 1000 depth-3 trees at learning rate 0.03: mostly low-order interactions",
        always,
        {
            "family": "xgb",
            "params": {
                "n_estimators": 1000,
                "learning_rate": 0.03,
                "max_depth": 3,
                "subsample": 0.8,
                "colsample_bytree": 0.8,
                "min_child_weight": 1,
            },
        },
    ),
    CatalogEntry(
        "model.xgb_regularised",
        "model",
        "Heavily regularised XGBoost (L1/L2 penalties, min child weight 5) for small noisy data",
        always,
        {
            "family": "xgb",
            "params": {
                "n_estimators": 800,
                "learning_rate": 0.02,
                "max_depth": 5,
                "subsample": 0.7,
                "colsample_bytree": 0.7,
                "min_child_weight": 5,
                "reg_alpha": 0.5,
                "reg_lambda": 5.0,
                "gamma": 0.0,
            },
        },
    ),
    CatalogEntry(
        "model.xgb_early_stopping",
        "model",
        "XGBoost whose number of rounds is chosen by early stopping on a 20% slice of train",
        always,
        {
            "family": "xgb_early_stopping",
            "params": {
                "n_estimators": 2000,
                "learning_rate": 0.03,
                "max_depth": 5,
                "subsample": 0.8,
                "colsample_bytree": 0.8,
                "min_child_weight": 2,
            },
        },
    ),
    CatalogEntry(
        "model.xgb_random_search",
        "model",
        "XGBoost tuned by a quick random search (depth, rate, rounds, sampling) with 3-fold CV",
        rows_at_most(TUNED_MAX_ROWS),
        {"family": "xgb_tuned", "n_iter": 12, "n_iter_large": 6},
    ),
    CatalogEntry(
        "model.hgb_early_stopping",
        "model",
        "HistGradientBoosting with early stopping on 15% of train, up to 1000 rounds",
        always,
        {
            "family": "hgb",
            "params": {
                "learning_rate": 0.05,
                "max_iter": 1000,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 10,
                "l2_regularization": 1.0,
                "early_stopping": True,
                "validation_fraction": 0.15,
                "n_iter_no_change": 30,
            },
        },
    ),
    CatalogEntry(
        "model.hgb_small_leaves",
        "model",
        "HistGradientBoosting without early stopping: 500 rounds of small 15-leaf trees at rate 0.04",
        always,
        {
            "family": "hgb",
            "params": {
                "learning_rate": 0.04,
                "max_iter": 500,
                "max_leaf_nodes": 15,
                "min_samples_leaf": 8,
                "l2_regularization": 0.5,
                "early_stopping": False,
            },
        },
    ),
    CatalogEntry(
        "model.hgb_absolute_error",
        "model",
        "HistGradientBoosting trained on absolute error, matching the MAE metric",
        all_of(is_regression, metric_is("mae")),
        {
            "family": "hgb",
            "params": {
                "loss": "absolute_error",
                "learning_rate": 0.05,
                "max_iter": 600,
                "max_leaf_nodes": 31,
                "min_samples_leaf": 10,
                "early_stopping": False,
            },
        },
    ),
    CatalogEntry(
        "model.hgb_balanced",
        "model",
        "HistGradientBoosting with balanced class weights for the imbalanced classes",
        is_imbalanced,
        {
            "family": "hgb",
            "params": {
                "learning_rate": 0.05,
                "max_iter": 400,
                "max_leaf_nodes": 15,
                "min_samples_leaf": 10,
                "l2_regularization": 1.0,
                "early_stopping": False,
                "class_weight": "balanced",
            },
        },
    ),
    CatalogEntry(
        "model.random_forest",
        "model",
        "Random forest of 300 fully grown trees, each split from a random subset of features",
        always,
        {
            "family": "rf",
            "regression": {"n_estimators": 300, "max_features": 0.6, "min_samples_leaf": 1},
            "classification": {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 1},
            # Past a few thousand rows fully grown trees get slow: subsample and stop earlier.
            "large_data": {"min_samples_leaf": 3, "max_samples": 0.5},
        },
    ),
    CatalogEntry(
        "model.rf_balanced",
        "model",
        "Random forest with class weights balanced per bootstrap sample",
        is_imbalanced,
        {
            "family": "rf",
            "classification": {
                "n_estimators": 300,
                "max_features": "sqrt",
                "min_samples_leaf": 2,
                "class_weight": "balanced_subsample",
            },
            "large_data": {"min_samples_leaf": 3, "max_samples": 0.5},
        },
    ),
    CatalogEntry(
        "model.extra_trees",
        "model",
        "Extremely randomised trees (300), smoother than a random forest on small data",
        always,
        {
            "family": "et",
            "regression": {"n_estimators": 300, "max_features": 0.7, "min_samples_leaf": 1},
            "classification": {"n_estimators": 300, "max_features": "sqrt", "min_samples_leaf": 1},
            "large_data": {"min_samples_leaf": 3},
        },
    ),
    CatalogEntry(
        "model.linear",
        "model",
        "A scaled linear model with tuned regularisation (RidgeCV, or logistic regression with C by CV)",
        always,
        {"family": "linear"},
    ),
    CatalogEntry(
        "model.linear_balanced",
        "model",
        "A scaled logistic regression with balanced class weights",
        is_imbalanced,
        {"family": "linear", "classification": {"class_weight": "balanced"}},
    ),
    CatalogEntry(
        "model.knn",
        "model",
        "k-nearest neighbours on standardised inputs, k chosen by 3-fold cross-validation",
        all_of(small_data, no_text, model_inputs_at_most(KNN_MAX_FEATURES)),
        {"family": "knn", "grid": [5, 10, 20, 40]},
    ),
    CatalogEntry(
        "model.svm",
        "model",
        "An RBF-kernel support vector machine on standardised inputs, C chosen by 3-fold CV",
        rows_at_most(SVM_MAX_ROWS),
        {"family": "svm", "grid": [0.3, 1.0, 3.0, 10.0, 30.0]},
    ),
]

_ENSEMBLE = [
    CatalogEntry(
        "ensemble.stack_linear",
        "ensemble",
        "Stack the chosen model with a linear model and extra trees under a linear meta-learner",
        always,
        {"ensemble": "stack", "members": ("linear", "trees")},
    ),
    CatalogEntry(
        "ensemble.stack_boosters",
        "ensemble",
        "Stack the chosen model with a second gradient booster and a random forest",
        always,
        {"ensemble": "stack", "members": ("booster", "forest")},
    ),
    CatalogEntry(
        "ensemble.vote_soft",
        "ensemble",
        "Average the predictions (class probabilities) of the chosen model, a booster and trees",
        always,
        {"ensemble": "vote", "members": ("booster", "trees"), "voting": "soft"},
    ),
    CatalogEntry(
        "ensemble.vote_hard",
        "ensemble",
        "Majority vote of the chosen model, a second booster and extra trees",
        all_of(is_classification, lambda profile, task: task.metric != "roc_auc"),
        {"ensemble": "vote", "members": ("booster", "trees"), "voting": "hard"},
    ),
    CatalogEntry(
        "ensemble.vote_weighted_linear",
        "ensemble",
        "Blend the chosen model (weight 3) with a scaled linear model (weight 1)",
        always,
        {"ensemble": "vote", "members": ("linear",), "voting": "soft", "weights": (3, 1)},
    ),
    CatalogEntry(
        "ensemble.bagging",
        "ensemble",
        "Bag the chosen model: 5 copies on 80% subsamples of the training rows, averaged",
        always,
        {"ensemble": "bagging", "n_estimators": 5, "max_samples": 0.8},
    ),
    CatalogEntry(
        "ensemble.seed_average",
        "ensemble",
        "Average 5 copies of the chosen model that differ only in their random seed",
        always,
        {"ensemble": "seed_average", "seeds": 5},
    ),
    CatalogEntry(
        "ensemble.stack_neighbours",
        "ensemble",
        "Stack the chosen model with k-nearest neighbours and a linear model (diverse errors)",
        small_data,
        {"ensemble": "stack", "members": ("knn", "linear")},
    ),
]

#: Every built-in entry, in proposal order.
CATALOG: dict[str, CatalogEntry] = {
    entry.key: entry for entry in [*_EDA, *_PREPROCESS, *_FEATURES, *_MODEL, *_ENSEMBLE]
}


def applicable_entries(profile: DataProfile, task: Task) -> list[CatalogEntry]:
    """The catalog entries that apply to ``profile`` and ``task``, stage by stage, in order."""
    entries = [e for e in CATALOG.values() if e.applies(profile, task)]
    return sorted(entries, key=lambda e: STAGES.index(e.stage))


def entry_for(insight_id: str) -> CatalogEntry:
    """The catalog entry with key ``insight_id``; :class:`KeyError` when there is none."""
    try:
        return CATALOG[insight_id]
    except KeyError:
        raise KeyError(f"no built-in catalog entry {insight_id!r}") from None


class BuiltinProposer:
    """Proposes the catalog insights that apply to a data profile and task (no LLM needed)."""

    def propose(self, profile: DataProfile, task: Task) -> InsightPool:
        """An insight pool with every applicable catalog entry, in catalog order."""
        return InsightPool([entry.insight(profile) for entry in applicable_entries(profile, task)])
