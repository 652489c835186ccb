"""A run's options: :class:`SearchOptions`, their defaults (in one place), and the one builder
every surface (Python API, CLI, ``%sela``, the server) turns what it was given into options with.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .contract import STAGES
from .cpu import available_cores
from .errors import SelaInputError
from .llm import DEFAULT_KEY_ENV, LLMConfig, llm_options

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600}


def parse_duration(value: str | float | int | None) -> float | None:
    """Seconds from ``90``, ``"90s"``, ``"10m"``, ``"1.5h"``; ``None`` stays ``None``."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise SelaInputError(
            f"cannot read the time budget {value!r}: use seconds or a number with s, m or h "
            "(e.g. 90s, 10m, 1h)"
        )
    number, unit = match.groups()
    return float(number) * _UNIT_SECONDS[(unit or "s").lower()]


#: Folds of the out-of-fold judge of the final choice. Three halve the cost of five (each
#: refit sees as many rows as train) and judged as well on the benchmark's runs.
DEFAULT_CV_FOLDS = 3

#: Simulations of a run given neither a rollout count nor a time budget.
DEFAULT_ROLLOUTS = 10


def default_rollouts(
    rollouts: int | None, time_budget: float | None, default: int = DEFAULT_ROLLOUTS
) -> int | None:
    """The rollout count to run with: as given; else ``default`` without a time budget, and no
    count (as many as fit) with one, so a budget alone is never cut short."""
    if rollouts is not None:
        return rollouts
    return None if time_budget else default


#: The most simulations a run starts at once unless asked for more: each one's kernel holds its
#: own copy of the data, so a many-core machine should not fill its memory by default.
MAX_DEFAULT_PARALLEL = 4


def default_parallel() -> int:
    """Simulations at once when a run names no ``parallel``: one per core this process may use
    (each then fits with one thread), at most :data:`MAX_DEFAULT_PARALLEL`."""
    return max(1, min(available_cores(), MAX_DEFAULT_PARALLEL))


@dataclass
class SearchOptions:
    """How long and how wide a run searches; stored in ``run.json`` and reused on resume."""

    rollouts: int | None = DEFAULT_ROLLOUTS
    time_budget: float | None = None  # seconds of wall clock for the whole search
    parallel: int = field(default_factory=default_parallel)
    seed: int = 0
    max_depth: int = len(STAGES)
    cell_timeout: float = 120.0
    simulation_timeout: float = 300.0
    insights: str = "builtin"  # builtin | llm | both
    reuse_state: bool = True  # resume children from their parent's snapshot (else replay code)
    reuse_fits: bool = True  # a pipeline identical to one already evaluated is not refitted
    #: Out-of-fold outputs over train + dev, for nodes among the ``cv_top`` best on dev when they
    #: finish or best of their model family so far; the final candidate is then chosen on them
    #: (0 folds: choose on dev alone).
    cv_folds: int = DEFAULT_CV_FOLDS
    cv_top: int = 8
    llm: str = ""  # model name on an OpenAI-compatible endpoint; "" = no LLM
    llm_base_url: str = ""  # "" = the openai package's default (api.openai.com)
    llm_key_env: str = DEFAULT_KEY_ENV  # the NAME of the key's environment variable
    llm_timeout: float = 120.0  # seconds per request
    llm_retries: int = 3  # retries on 429, 5xx, timeouts and lost connections
    token_budget: int | None = None  # LLM tokens (prompt + completion) the whole run may use
    fallback: str = ""  # "builtin": LLM insights failing -> the built-in catalog; "" = fail

    def __post_init__(self) -> None:
        if self.rollouts is None and self.time_budget is None:
            raise SelaInputError("give a rollout count, a time budget, or both")
        if self.rollouts is not None and self.rollouts < 1:
            raise SelaInputError(f"rollouts must be at least 1, got {self.rollouts}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise SelaInputError(f"the time budget must be positive, got {self.time_budget}")
        if self.parallel < 1:
            raise SelaInputError(f"parallel must be at least 1, got {self.parallel}")
        if not 1 <= self.max_depth <= len(STAGES):
            raise SelaInputError(f"max_depth must be between 1 and {len(STAGES)}")
        if self.insights not in ("builtin", "llm", "both"):
            raise SelaInputError(f"insights must be llm, builtin or both, got {self.insights!r}")
        if self.insights != "builtin" and not self.llm:
            raise SelaInputError(
                f"insights={self.insights} needs an LLM: give llm=MODEL (or set SELA_MODEL and "
                "an API key), or use insights=builtin"
            )
        if self.fallback not in ("", "builtin"):
            raise SelaInputError(f"fallback must be builtin or empty, got {self.fallback!r}")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise SelaInputError(f"cv_folds must be 0 (off) or at least 2, got {self.cv_folds}")
        if self.cv_top < 1:
            raise SelaInputError(f"cv_top must be at least 1, got {self.cv_top}")
        if self.token_budget is not None and self.token_budget < 1:
            raise SelaInputError(f"the token budget must be positive, got {self.token_budget}")

    def llm_config(self) -> LLMConfig | None:
        """The run's LLM settings (the key stays in its environment variable), or ``None``."""
        if not self.llm:
            return None
        return LLMConfig(
            model=self.llm,
            base_url=self.llm_base_url,
            api_key_env=self.llm_key_env or DEFAULT_KEY_ENV,
            timeout=self.llm_timeout,
            max_retries=self.llm_retries,
            token_budget=self.token_budget,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchOptions:
        """Inverse of ``asdict``, ignoring unknown keys."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


#: Every option's default, by name: what a surface shows and falls back to.
OPTION_DEFAULTS: dict[str, Any] = {
    f.name: f.default_factory() if f.default is MISSING else f.default
    for f in fields(SearchOptions)
}

#: Options a run request may give (the server's REST start and resume bodies).
REQUEST_OPTIONS = frozenset(
    {
        "rollouts",
        "time_budget",
        "parallel",
        "seed",
        "max_depth",
        "cv_folds",
        "cell_timeout",
        "simulation_timeout",
        "llm",
        "insights",
        "fallback",
        "token_budget",
    }
)
#: Options the Python API, the CLI and ``%sela`` may give: a request's, plus the endpoint.
USER_OPTIONS = REQUEST_OPTIONS | {"base_url", "api_key_env"}

_NUMBERS: dict[str, type] = {
    "parallel": int,
    "seed": int,
    "max_depth": int,
    "cv_folds": int,
    "cell_timeout": float,
    "simulation_timeout": float,
}


def build_options(
    given: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    *,
    allowed: Collection[str] = USER_OPTIONS,
) -> SearchOptions:
    """A new run's :class:`SearchOptions` from what a surface was given.

    ``given`` holds any of :data:`USER_OPTIONS` (``None`` or ``""``: not given): ``rollouts``,
    ``time_budget`` (seconds or ``"90s"``, ``"10m"``, ``"1h"``), ``parallel``, ``seed``,
    ``max_depth``, ``cv_folds``, ``cell_timeout``, ``simulation_timeout``, ``llm`` (a model,
    ``"off"``, or not given for ``SELA_MODEL``), ``insights``, ``fallback``, ``token_budget``,
    ``base_url``, ``api_key_env``. What is not given comes from ``defaults`` (a server's
    configuration, keyed the same, with ``llm_base_url`` / ``llm_key_env`` for the endpoint),
    then from :data:`OPTION_DEFAULTS`. With neither a rollout count nor a time budget given, the
    default count and the default budget both apply; with a budget alone, the search runs as
    many simulations as fit. A default model without a usable key quietly means the built-in
    catalog; a model that ``given`` names must be usable. Unknown names and bad values raise
    :class:`SelaInputError` saying which.
    """
    given = {k: v for k, v in given.items() if v is not None and v != ""}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise SelaInputError(
            f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )
    defaults = {k: v for k, v in (defaults or {}).items() if v is not None and v != ""}
    budget = parse_duration(given.get("time_budget"))
    if "rollouts" in given:
        rollouts = given["rollouts"]
    else:
        rollouts = default_rollouts(
            None, budget, default=defaults.get("rollouts", OPTION_DEFAULTS["rollouts"])
        )
        if budget is None:
            budget = parse_duration(defaults.get("time_budget"))
    try:
        numbers = {}
        for name, kind in _NUMBERS.items():
            value = given.get(name, defaults.get(name))
            if value is not None:
                numbers[name] = kind(value)
        return SearchOptions(
            rollouts=None if rollouts is None else int(rollouts),
            time_budget=budget,
            **numbers,
            **_llm_fields(given, defaults),
        )
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, SelaInputError):
            raise
        raise SelaInputError(f"bad option value: {exc}") from exc


def _llm_fields(given: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The LLM fields: the model ``given`` names, else the default model if it is usable."""
    kwargs = {
        "insights": given.get("insights"),
        "fallback": given.get("fallback"),
        "token_budget": given.get("token_budget", defaults.get("token_budget")),
        "base_url": given.get("base_url", defaults.get("llm_base_url")),
        "api_key_env": given.get("api_key_env", defaults.get("llm_key_env")),
    }
    if "llm" in given or "llm" not in defaults:
        return llm_options(given.get("llm"), **kwargs)
    try:
        return llm_options(str(defaults["llm"]), **kwargs)
    except SelaInputError:
        if kwargs["insights"] in ("llm", "both"):
            raise
        log.warning(
            "the default model %s has no API key: using the built-in catalog", defaults["llm"]
        )
        return llm_options("off")
