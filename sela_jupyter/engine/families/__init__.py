"""The model families the template coder can build, one module per family, and their registry.

Each family module defines one :class:`~.base.ModelFamily` (in the spirit of AutoGluon's model
folders and FLAML's learner classes): its estimator classes, how it is threaded, its default and
ensemble-member settings, and the libraries a kernel needs for it. The code generator, the
search's notion of "model family", the kernel's library list and the LLM prompts all read this
registry, so adding a family is one module plus one line in :data:`REGISTRY` (and its test).
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import ModelFamily, TaskParams, Threading
from .extra_trees import EXTRA_TREES
from .hist_gradient_boosting import HIST_GRADIENT_BOOSTING
from .knn import KNN
from .linear import LINEAR
from .random_forest import RANDOM_FOREST
from .svm import SVM
from .xgb_early_stopping import XGB_EARLY_STOPPING
from .xgb_tuned import XGB_TUNED
from .xgboost import XGBOOST

__all__ = [
    "DEFAULT_FAMILY",
    "REGISTRY",
    "ModelFamily",
    "TaskParams",
    "Threading",
    "family",
    "import_name",
    "model_libraries",
    "model_modules",
    "prose_list",
]

#: Every family by name, in order of preference (the first booster is the default complement).
REGISTRY: dict[str, ModelFamily] = {
    f.name: f
    for f in (
        XGBOOST,
        XGB_EARLY_STOPPING,
        XGB_TUNED,
        HIST_GRADIENT_BOOSTING,
        RANDOM_FOREST,
        EXTRA_TREES,
        LINEAR,
        KNN,
        SVM,
    )
}

#: The family of the model a node fits before it reaches the model stage.
DEFAULT_FAMILY = XGBOOST.name

# Distributions whose import name is not their pip name.
_IMPORT_NAMES = {"scikit-learn": "sklearn"}


def family(name: str) -> ModelFamily:
    """The registered family called ``name``; :class:`KeyError` naming the known ones if none."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise KeyError(f"unknown model family {name!r}; registered: {known}") from None


def model_libraries() -> tuple[str, ...]:
    """The distributions (pip names) the registered families need, in registry order."""
    return tuple(dict.fromkeys(lib for f in REGISTRY.values() for lib in f.libraries))


def import_name(library: str) -> str:
    """The name ``library`` is imported by (``"scikit-learn"`` -> ``"sklearn"``)."""
    return _IMPORT_NAMES.get(library, library)


def model_modules() -> tuple[str, ...]:
    """The modules the registered families' estimators are imported from, in registry order."""
    return tuple(dict.fromkeys(f.module for f in REGISTRY.values()))


def prose_list(words: Iterable[str]) -> str:
    """``"a, b and c"``: words joined for a sentence (in an LLM prompt), each once."""
    items = list(dict.fromkeys(words))
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)
