"""The model stage's templates: ``model``, an unfitted estimator of the path's model family.

Which template renders a family is the family's own setting (:attr:`.ModelFamily.template`, see
:mod:`..families`); :data:`TEMPLATES` maps each template to its renderer. A plain estimator
family (XGBoost, HistGradientBoosting, the forests, and any family added like them) needs no
template of its own. A regression target transform wraps the model in a
``TransformedTargetRegressor`` (:data:`TARGET_TRANSFORMS`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..catalog import LARGE_DATA_ROWS, entry_for
from ..families import DEFAULT_FAMILY, ModelFamily, family
from ..insights import Insight
from ..specs import TargetTransform
from .context import Context
from .source import Cell, kwargs, py_call, py_value

#: The model a node gets before it reaches the model stage: the default family's defaults.
DEFAULT_MODEL: Mapping[str, Any] = family(DEFAULT_FAMILY).spec()


def model_family_of(path: Iterable[Insight]) -> str:
    """The kind of model a path's pipeline fits: the catalog family of its model-stage insight
    (``"xgb"``, ``"linear"``, ...), that insight's id when it is not from the catalog (an LLM's),
    or the default model's family when the path has no model stage yet."""
    for insight in path:
        if insight.stage != "model":
            continue
        try:
            return str(entry_for(insight.id).spec.get("family", insight.id))
        except KeyError:
            return insight.id
    return DEFAULT_FAMILY


def task_params(ctx: Context, spec: Mapping[str, Any]) -> dict[str, Any]:
    """A spec's estimator settings for this task: shared, per task, then for large data."""
    params = dict(spec.get("params", {}))
    params.update(spec.get("regression" if ctx.regression else "classification", {}))
    if ctx.profile.n_rows > LARGE_DATA_ROWS:
        params.update(spec.get("large_data", {}))
    if not ctx.regression:
        params.pop("loss", None)
    return params


def estimator_expression(
    ctx: Context, model: ModelFamily, params: Mapping[str, Any], cell: Cell
) -> str:
    """Render ``Class(params..., random_state=SEED[, n_jobs=2])`` and register its import."""
    name = model.estimator(ctx.regression)
    cell.imports(f"from {model.module} import {name}")
    args = [*kwargs(params), "random_state=SEED"]
    if model.takes_n_jobs:
        args.append("n_jobs=2")
    return py_call(name, args)


def linear_model(
    ctx: Context, model: ModelFamily, params: Mapping[str, Any], cell: Cell, tuned: bool
) -> str:
    """A scaled RidgeCV, or a scaled logistic regression (its C chosen by CV when ``tuned``)."""
    cell.imports(
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    if ctx.regression:
        cell.imports("import numpy as np", f"from {model.module} import {model.regressor}")
        return f"make_pipeline(StandardScaler(), {model.regressor}(alphas=np.logspace(-3, 3, 13)))"
    cell.imports(f"from {model.module} import {model.classifier}")
    logistic = py_call(model.classifier, ["max_iter=3000", *kwargs(params)])
    if not tuned:
        return f"make_pipeline(StandardScaler(), {logistic})"
    cell.imports("from sklearn.model_selection import GridSearchCV")
    return (
        "GridSearchCV(\n"
        f"    make_pipeline(StandardScaler(), {logistic}),\n"
        '    {"logisticregression__C": [0.03, 0.3, 3.0]},\n'
        "    cv=3,\n"
        ")"
    )


def knn_grid(ctx: Context, grid: Sequence[int]) -> list[int]:
    """The ``k`` of ``grid`` that a 3-fold CV fit has enough training rows for."""
    # Each 3-fold CV fit sees about two thirds of the training rows.
    limit = max(1, int(ctx.train_rows * 2 / 3) - 1)
    return [k for k in grid if k <= limit] or [min(5, limit)]


def _estimator(ctx: Context, model: ModelFamily, spec: Mapping[str, Any], cell: Cell) -> str:
    return estimator_expression(ctx, model, task_params(ctx, spec), cell)


def _linear(ctx: Context, model: ModelFamily, spec: Mapping[str, Any], cell: Cell) -> str:
    return linear_model(ctx, model, task_params(ctx, spec), cell, tuned=True)


def _knn(ctx: Context, model: ModelFamily, spec: Mapping[str, Any], cell: Cell) -> str:
    neighbours = model.estimator(ctx.regression)
    cell.imports(
        "from sklearn.model_selection import GridSearchCV",
        f"from {model.module} import {neighbours}",
        "from sklearn.pipeline import Pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    grid = knn_grid(ctx, spec.get("grid", model.settings["grid"]))
    return (
        "GridSearchCV(\n"
        f'    Pipeline([("scale", StandardScaler()), ("knn", {neighbours}(weights="distance"))]),\n'
        f'    {{"knn__n_neighbors": {py_value(grid)}}},\n'
        "    cv=3,\n"
        ")"
    )


def _svm(ctx: Context, model: ModelFamily, spec: Mapping[str, Any], cell: Cell) -> str:
    grid = py_value(list(spec.get("grid", model.settings["grid"])))
    cell.imports(
        "from sklearn.model_selection import GridSearchCV",
        "from sklearn.pipeline import Pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    if ctx.regression:
        cell.imports(
            "from sklearn.compose import TransformedTargetRegressor",
            f"from {model.module} import {model.regressor}",
        )
        svr = f'Pipeline([("scale", StandardScaler()), ("svr", {model.regressor}())])'
        cell.add(
            "# SVR's epsilon and C assume a unit-scale target, so the target is standardised too.\n"
            "svr = TransformedTargetRegressor(\n"
            f"    regressor={svr},\n"
            "    transformer=StandardScaler(),\n"
            ")"
        )
        return f'GridSearchCV(svr, {{"regressor__svr__C": {grid}}}, cv=3)'
    cell.imports(f"from {model.module} import {model.classifier}")
    search = (
        "GridSearchCV(\n"
        f'    Pipeline([("scale", StandardScaler()), ("svc", {model.classifier}())]),\n'
        f'    {{"svc__C": {grid}}},\n'
        "    cv=3,\n"
        ")"
    )
    if ctx.task.metric != "roc_auc":
        return search
    cell.imports("from sklearn.calibration import CalibratedClassifierCV")
    cell.add(f"svm = {search}")
    return "CalibratedClassifierCV(svm, ensemble=False, cv=3)  # ROC AUC needs class probabilities"


def _xgb_early_stopping(
    ctx: Context, model: ModelFamily, spec: Mapping[str, Any], cell: Cell
) -> str:
    params = {k: v for k, v in task_params(ctx, spec).items() if k != "n_estimators"}
    max_rounds = spec.get("params", {}).get("n_estimators", model.defaults.params["n_estimators"])
    booster = model.estimator(ctx.regression)
    cell.imports(
        "from sklearn.base import clone",
        "from sklearn.model_selection import train_test_split",
        "from sklearn.pipeline import Pipeline",
        f"from {model.module} import {booster}",
    )
    split_args = [
        "train.drop(columns=[TARGET])",
        "train[TARGET]",
        "test_size=0.2",
        "random_state=SEED",
    ]
    counts = ctx.profile.target_summary.get("counts", {})
    if counts and min(counts.values()) * 0.6 >= 5:  # every class keeps rows on both sides
        split_args.append("stratify=train[TARGET]")
    fit_y, stop_y = "y_fit", "y_stop"
    if ctx.target_transform == "log1p":
        cell.imports("import numpy as np")
        fit_y, stop_y = "np.log1p(y_fit)", "np.log1p(y_stop)"
    cell.add(
        "xgb_params = dict(\n"
        + "".join(f"    {arg},\n" for arg in kwargs(params))
        + "    random_state=SEED,\n    n_jobs=2,\n)"
    )
    cell.add(
        "# Choose the number of boosting rounds by early stopping on 20% of the training rows.\n"
        + py_call("train_test_split", split_args, prefix="X_fit, X_stop, y_fit, y_stop = ")
        + "\n"
        "inputs = clone(Pipeline(steps)).fit(X_fit, y_fit)\n"
        f"probe = {booster}(n_estimators={max_rounds}, early_stopping_rounds=100, **xgb_params)\n"
        "probe.fit(\n"
        f"    inputs.transform(X_fit), {fit_y},\n"
        f"    eval_set=[(inputs.transform(X_stop), {stop_y})], verbose=False,\n"
        ")\n"
        "# The final fit sees 25% more rows than the probe, so allow a few more rounds.\n"
        "n_rounds = int((probe.best_iteration + 1) * 1.1) + 1\n"
        'print(f"early stopping: best round {probe.best_iteration + 1}, fitting {n_rounds}")'
    )
    return f"{booster}(n_estimators=n_rounds, **xgb_params)"


#: The engine's metric -> the scikit-learn ``scoring`` that ranks configurations the same way.
_CV_SCORING = {
    "rmse": '"neg_root_mean_squared_error"',
    "rmsle": '"neg_root_mean_squared_error"',  # a negative CV prediction would break RMSLE
    "mae": '"neg_mean_absolute_error"',
    "r2": '"r2"',
    "accuracy": '"accuracy"',
    "f1_weighted": '"f1_weighted"',
    "f1": "make_scorer(f1_score, pos_label=POSITIVE)",
}


def _cv_scoring(ctx: Context, cell: Cell) -> str:
    """The ``scoring=`` argument for a CV search that optimises the run's metric."""
    metric = ctx.task.metric
    if metric == "roc_auc":
        return '"roc_auc"' if ctx.task.task_type == "binary" else '"roc_auc_ovr_weighted"'
    if metric == "f1":
        cell.imports("from sklearn.metrics import f1_score, make_scorer")
    return _CV_SCORING[metric]


def _xgb_tuned(ctx: Context, model: ModelFamily, spec: Mapping[str, Any], cell: Cell) -> str:
    """A random search over booster settings, run in the model cell (on train, by 3-fold CV):
    the cell leaves a plain booster with the winning settings, so children that resume from this
    node's kernel state (an ensemble stage, a stack) never search again."""
    booster = model.estimator(ctx.regression)
    cell.imports(
        "from scipy.stats import loguniform, randint, uniform",
        "from sklearn.base import clone",
        "from sklearn.model_selection import RandomizedSearchCV",
        "from sklearn.pipeline import Pipeline",
        f"from {model.module} import {booster}",
    )
    large = ctx.profile.n_rows > LARGE_DATA_ROWS
    setting = "n_iter_large" if large else "n_iter"
    n_iter = spec.get(setting, model.settings[setting])
    y = "train[TARGET]"
    if ctx.target_transform == "log1p":
        cell.imports("import numpy as np")
        y = "np.log1p(train[TARGET])"
    cell.add(
        "# Sample booster settings at random and rank them by 3-fold CV on the training rows\n"
        "# alone, a steadier judge than one small validation split.\n"
        "xgb_space = {\n"
        '    "n_estimators": randint(50, 500),\n'
        '    "learning_rate": loguniform(0.02, 0.3),\n'
        '    "max_depth": randint(2, 9),\n'
        '    "min_child_weight": loguniform(0.05, 10),\n'
        '    "subsample": uniform(0.5, 0.5),\n'
        '    "colsample_bytree": uniform(0.5, 0.5),\n'
        '    "reg_lambda": loguniform(0.01, 10),\n'
        "}\n"
        "search = RandomizedSearchCV(\n"
        f"    {booster}(random_state=SEED, n_jobs=2),\n"
        "    xgb_space,\n"
        f"    n_iter={n_iter},\n"
        "    cv=3,\n"
        f"    scoring={_cv_scoring(ctx, cell)},\n"
        "    random_state=SEED,\n"
        ")\n"
        "inputs = clone(Pipeline(steps)).fit(train.drop(columns=[TARGET]), train[TARGET])\n"
        f"search.fit(inputs.transform(train.drop(columns=[TARGET])), {y})\n"
        "xgb_best = search.best_params_\n"
        'print(f"random search: best 3-fold CV score {search.best_score_:.4g} (higher is better)")\n'
        'print("settings:", xgb_best)'
    )
    return f"{booster}(**xgb_best, random_state=SEED, n_jobs=2)"


#: Renders a family's model expression from a model spec, registering what the cell needs.
ModelTemplate = Callable[[Context, ModelFamily, Mapping[str, Any], Cell], str]

#: The renderer of each :attr:`.ModelFamily.template`.
TEMPLATES: Mapping[str, ModelTemplate] = {
    "estimator": _estimator,
    "linear": _linear,
    "knn": _knn,
    "svm": _svm,
    "xgb_early_stopping": _xgb_early_stopping,
    "xgb_tuned": _xgb_tuned,
}


@dataclass(frozen=True)
class _TargetTransform:
    """How the model is wrapped for a target transform: its comment, imports and arguments."""

    comment: str
    imports: tuple[str, ...]
    arguments: tuple[str, ...]


#: The ``TransformedTargetRegressor`` for each ``target_transform`` of the preprocess stage.
TARGET_TRANSFORMS: Mapping[TargetTransform, _TargetTransform] = {
    "log1p": _TargetTransform(
        "# Fit on log1p(target) and predict back on the original scale.",
        ("import numpy as np",),
        ("func=np.log1p", "inverse_func=np.expm1"),
    ),
    "power": _TargetTransform(
        "# Fit on a Yeo-Johnson transform of the target and invert it for predictions.",
        ("from sklearn.preprocessing import PowerTransformer",),
        ("transformer=PowerTransformer()",),
    ),
}


def target_wrapper(ctx: Context, cell: Cell, inner: str) -> str:
    """``inner`` wrapped so it fits on the transformed target (or ``inner`` unchanged)."""
    transform = ctx.target_transform
    if transform is None:
        return inner
    wrapper = TARGET_TRANSFORMS[transform]
    cell.imports("from sklearn.compose import TransformedTargetRegressor", *wrapper.imports)
    return py_call("TransformedTargetRegressor", [f"regressor={inner}", *wrapper.arguments])


def render(ctx: Context, spec: Mapping[str, Any] | None) -> Cell:
    """The model cell: ``spec``'s model, or the path's (the default model before the stage)."""
    if spec is not None:
        ctx.model = spec
    spec = ctx.model or DEFAULT_MODEL
    model = family(spec["family"])
    cell = Cell()
    expression = TEMPLATES[model.template](ctx, model, spec, cell)
    transform = ctx.target_transform
    if transform is None:
        cell.add(f"model = {expression}")
        return cell
    cell.add(f"base_model = {expression}")
    comment = TARGET_TRANSFORMS[transform].comment
    cell.add(comment + "\n" + target_wrapper(ctx, cell, "base_model").join(["model = ", ""]))
    return cell
