"""What a model family is: :class:`ModelFamily`, and the :class:`TaskParams` it is set up with.

A family is plain data (no code templates), so the catalog, the kernel cells and the LLM prompts
can read it without importing the code generator; :mod:`..codegen.model` renders a family by its
:attr:`ModelFamily.template`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

#: How a family's estimators use threads: an ``n_jobs`` argument (rendered as ``n_jobs=2``),
#: OpenMP threads (held by threadpoolctl in the kernel), or none worth limiting.
Threading = Literal["n_jobs", "openmp", "single"]


@dataclass(frozen=True)
class TaskParams:
    """Estimator settings: shared ``params``, overridden per task, then for large data.

    The same shape as a catalog model spec's ``params``, ``regression``, ``classification`` and
    ``large_data`` keys (see :mod:`..specs`).
    """

    params: Mapping[str, Any] = field(default_factory=dict)
    regression: Mapping[str, Any] = field(default_factory=dict)
    classification: Mapping[str, Any] = field(default_factory=dict)
    large_data: Mapping[str, Any] = field(default_factory=dict)

    def as_spec(self) -> dict[str, Any]:
        """The non-empty settings as model-spec keys, e.g. ``{"params": {...}}``."""
        parts = {
            "params": self.params,
            "regression": self.regression,
            "classification": self.classification,
            "large_data": self.large_data,
        }
        return {key: dict(value) for key, value in parts.items() if value}


@dataclass(frozen=True)
class ModelFamily:
    """One kind of model the template coder can build (one module per family, see the registry).

    ``name`` is the id catalog model specs use (``"family": "xgb"``) and the search compares;
    ``label`` names the family's estimator where it joins an ensemble (``"xgboost"``).
    """

    name: str
    label: str
    #: The module the estimator classes are imported from, e.g. ``"sklearn.ensemble"``.
    module: str
    regressor: str
    classifier: str
    #: Which model template of :mod:`..codegen.model` renders it; ``"estimator"`` is a plain
    #: ``Class(params..., random_state=SEED)``.
    template: str
    #: A one-line description of the family.
    description: str
    #: The distributions (pip names) a kernel needs to fit it, e.g. ``("xgboost",)``.
    libraries: tuple[str, ...]
    threading: Threading = "single"
    #: A gradient-boosted tree ensemble (a "booster" ensemble member comes from these).
    booster: bool = False
    #: Whether its classifier gives class probabilities (soft voting needs them).
    probabilities: bool = True
    #: The family this one is a variant of (same estimator, another way to set it up).
    variant_of: str | None = None
    #: The settings it gets when a path asks for it without a catalog spec (the default model).
    defaults: TaskParams = field(default_factory=TaskParams)
    #: Its settings as a complementary ensemble member, or ``None`` when it never is one.
    complement: TaskParams | None = None
    #: Template settings used when a spec gives none, e.g. a search grid.
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def takes_n_jobs(self) -> bool:
        """Its estimators take an ``n_jobs`` argument."""
        return self.threading == "n_jobs"

    @property
    def base(self) -> str:
        """The family this one is a variant of, or its own name."""
        return self.variant_of or self.name

    def estimator(self, regression: bool) -> str:
        """The estimator class name for the task."""
        return self.regressor if regression else self.classifier

    def spec(self) -> dict[str, Any]:
        """A model spec for this family with its defaults (what the default model renders)."""
        return {"family": self.name, **self.defaults.as_spec(), **self.settings}
