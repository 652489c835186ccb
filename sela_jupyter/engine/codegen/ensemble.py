"""The ensemble stage's templates: a new ``model`` that combines the chosen one with others.

:data:`RENDERERS` holds one renderer per ensemble kind (stack, vote, bagging, seed average).
The estimators a stack or vote adds are complementary members: each member kind names the
families it may be drawn from (:data:`MEMBER_CANDIDATES`), and the first that differs from the
chosen model's family is rendered with that family's ensemble settings (:data:`MEMBER_TEMPLATES`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..families import REGISTRY, ModelFamily, family
from ..specs import EnsembleKind, Member
from .context import Context
from .model import estimator_expression, knn_grid, linear_model, target_wrapper, task_params
from .source import Cell, indent_continuation, py_call, py_str, py_value
from .transformers import source_of, with_seed

#: Boosters with ensemble settings, in registry order: a "booster" member is the first of these
#: that is not the chosen model's family.
_BOOSTERS = tuple(f.name for f in REGISTRY.values() if f.booster and f.complement is not None)

#: The families each member kind may be drawn from, in order of preference.
MEMBER_CANDIDATES: Mapping[Member, tuple[str, ...]] = {
    "booster": _BOOSTERS,
    "trees": ("et", "rf"),
    "forest": ("rf", "et"),
    "linear": ("linear", *_BOOSTERS),
    "knn": ("knn", "et", "rf"),
}


def _linear_member(
    ctx: Context, member: ModelFamily, settings: Mapping[str, Any], cell: Cell
) -> str:
    return linear_model(ctx, member, settings, cell, tuned=False)


def _knn_member(ctx: Context, member: ModelFamily, settings: Mapping[str, Any], cell: Cell) -> str:
    neighbours = member.estimator(ctx.regression)
    cell.imports(
        f"from {member.module} import {neighbours}",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import StandardScaler",
    )
    k = knn_grid(ctx, [settings["n_neighbors"]])[0]
    return f'make_pipeline(StandardScaler(), {neighbours}(n_neighbors={k}, weights="distance"))'


#: Renders a family as an ensemble member from its ensemble settings (resolved for the task).
MemberTemplate = Callable[[Context, ModelFamily, Mapping[str, Any], Cell], str]

#: The member renderer of each :attr:`.ModelFamily.template` whose families join ensembles.
MEMBER_TEMPLATES: Mapping[str, MemberTemplate] = {
    "estimator": estimator_expression,
    "linear": _linear_member,
    "knn": _knn_member,
}


def _complement(ctx: Context, member: Member, cell: Cell) -> tuple[str, str]:
    """(name, expression) of a complementary estimator that differs from the chosen model."""
    chosen = REGISTRY[ctx.model_family].base
    candidates = (family(name) for name in MEMBER_CANDIDATES[member])
    pick = next(f for f in candidates if f.base != chosen)
    settings = task_params(ctx, pick.complement.as_spec()) if pick.complement else {}
    return pick.label, MEMBER_TEMPLATES[pick.template](ctx, pick, settings, cell)


def _members(ctx: Context, names: Iterable[Member], cell: Cell) -> list[tuple[str, str]]:
    members = [("chosen", "model")]
    for name in names:
        label, expression = _complement(ctx, name, cell)
        if ctx.target_transform is not None:
            expression = f"on_target_scale({expression})"
        members.append((label, expression))
    return members


def _target_scale_helper(ctx: Context, cell: Cell) -> None:
    """Define ``on_target_scale`` so the new members fit on the same target scale as ``model``."""
    if ctx.target_transform is None:
        return
    cell.add(
        "def on_target_scale(regressor):\n"
        '    """Fit on the transformed target, like the chosen model, and predict on the original."""\n'
        "    return " + target_wrapper(ctx, cell, "regressor")
    )


def _probability_fix(ctx: Context, cell: Cell) -> None:
    """Give a chosen model without class probabilities (an SVM) some: soft voting averages them."""
    chosen = REGISTRY[ctx.model_family]
    if not ctx.regression and not chosen.probabilities and ctx.task.metric != "roc_auc":
        cell.imports("from sklearn.calibration import CalibratedClassifierCV")
        cell.add(
            "# The SVM gives no class probabilities: calibrate its decision function by 3-fold CV.\n"
            "model = CalibratedClassifierCV(model, ensemble=False, cv=3)"
        )


def _cv_folds(ctx: Context) -> int:
    # Stacking fits every member once per fold: 5 folds where data is small, 3 beyond.
    return 5 if ctx.profile.n_rows <= 1000 else 3


def _member_list(members: Sequence[tuple[str, str]]) -> str:
    lines = []
    for name, expression in members:
        lines.append(f"        ({py_str(name)}, {indent_continuation(expression, 8)}),")
    return "[\n" + "\n".join(lines) + "\n    ]"


def _stack(ctx: Context, spec: Mapping[str, Any], cell: Cell) -> None:
    _target_scale_helper(ctx, cell)
    members = _members(ctx, spec["members"], cell)
    folds = ctx.estimator("KFold", "StratifiedKFold")
    cell.imports(f"from sklearn.model_selection import {folds}")
    if ctx.regression:
        cell.imports(
            "import numpy as np",
            "from sklearn.ensemble import StackingRegressor",
            "from sklearn.linear_model import RidgeCV",
        )
        stack, final = "StackingRegressor", "RidgeCV(alphas=np.logspace(-3, 3, 13))"
    else:
        cell.imports(
            "from sklearn.ensemble import StackingClassifier",
            "from sklearn.linear_model import LogisticRegression",
        )
        stack, final = "StackingClassifier", "LogisticRegression(max_iter=2000)"
    cell.add(
        "# The meta-learner is fitted on out-of-fold predictions of the members.\n"
        f"model = {stack}(\n"
        f"    {_member_list(members)},\n"
        f"    final_estimator={final},\n"
        f"    cv={folds}({_cv_folds(ctx)}, shuffle=True, random_state=SEED),\n"
        ")"
    )


def _vote(ctx: Context, spec: Mapping[str, Any], cell: Cell) -> None:
    _target_scale_helper(ctx, cell)
    if spec.get("voting") == "soft":
        _probability_fix(ctx, cell)
    members = _members(ctx, spec["members"], cell)
    weights = spec.get("weights")
    extra = [f"weights={py_value(list(weights))}"] if weights else []
    if ctx.regression:
        cell.imports("from sklearn.ensemble import VotingRegressor")
        head = "VotingRegressor"
    else:
        cell.imports("from sklearn.ensemble import VotingClassifier")
        head = "VotingClassifier"
        extra.insert(0, f"voting={py_str(spec.get('voting', 'soft'))}")
    cell.add(
        f"model = {head}(\n"
        f"    {_member_list(members)},\n" + "".join(f"    {arg},\n" for arg in extra) + ")"
    )


def _bagging(ctx: Context, spec: Mapping[str, Any], cell: Cell) -> None:
    bagging = ctx.estimator("BaggingRegressor", "BaggingClassifier")
    cell.imports(f"from sklearn.ensemble import {bagging}")
    cell.add(
        py_call(
            bagging,
            [
                "estimator=model",
                f"n_estimators={spec.get('n_estimators', 5)}",
                f"max_samples={spec.get('max_samples', 0.8)}",
                "random_state=SEED",
            ],
            prefix="model = ",
        )
    )


def _seed_average(ctx: Context, spec: Mapping[str, Any], cell: Cell) -> None:
    _probability_fix(ctx, cell)
    voting = ctx.estimator("VotingRegressor", "VotingClassifier")
    cell.imports("from sklearn.base import clone", f"from sklearn.ensemble import {voting}")
    cell.add(source_of(with_seed))
    voting_arg = "" if ctx.regression else ', voting="soft"'
    cell.add(
        f"model = {voting}(\n"
        f'    [(f"seed_{{i}}", with_seed(model, SEED + i)) for i in range({spec["seeds"]})]'
        f"{voting_arg}\n)"
    )


#: The renderer of each ensemble kind a catalog ensemble spec names.
RENDERERS: Mapping[EnsembleKind, Callable[[Context, Mapping[str, Any], Cell], None]] = {
    "stack": _stack,
    "vote": _vote,
    "bagging": _bagging,
    "seed_average": _seed_average,
}


def render(ctx: Context, spec: Mapping[str, Any] | None) -> Cell:
    """The ensemble cell; none by default (the chosen model alone is the ensemble)."""
    cell = Cell()
    if spec is not None:
        RENDERERS[spec["ensemble"]](ctx, spec, cell)
    return cell
