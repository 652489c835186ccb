"""The template coder: one notebook cell per stage, rendered from the built-in catalog.

:class:`TemplateCoder` follows the stage contract (:mod:`..contract`, ``docs/architecture.md``): cells run in order after the
harness's setup cell, each imports what it uses, the preprocess cell builds ``preprocess`` and
``steps``, the features cell extends ``steps``, the model cell builds ``model`` and the ensemble
cell builds a new ``model`` from it. Everything the coder can decide from the path and the data
profile is decided here, so the cells hold concrete code (no branching on ``notes``), and the same
inputs always give the same text. Each stage's templates live in their own module
(:data:`STAGE_RENDERERS`).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..catalog import CatalogEntry, applicable_entries, entry_for
from ..insights import STAGES, Insight, relevance
from ..task import DataProfile, Task
from . import eda, ensemble, features, model, preprocess
from .context import Context
from .source import LINE, Cell, py_str, reflow_line

#: Each stage's cell renderer, given the path's context and the stage insight's spec (or
#: ``None`` for the stage's default).
STAGE_RENDERERS: Mapping[str, Callable[[Context, Mapping[str, Any] | None], Cell]] = {
    "eda": eda.render,
    "preprocess": preprocess.render,
    "features": features.render,
    "model": model.render,
    "ensemble": ensemble.render,
}

#: How relevant (:func:`.insights.relevance`) a catalog entry must be to code a user insight
#: in its place when no LLM is configured.
CLOSEST_ENTRY_MIN = 0.25


class TemplateCoder:
    """Renders stage cells for built-in catalog insights (and the defaults) along a path.

    A user or LLM insight, when no LLM is there to code it, is coded as the closest applicable
    built-in insight of its stage by text similarity, and the cell says so.
    """

    def stage_code(
        self,
        stage: str,
        insight: Insight | None,
        path: Sequence[Insight],
        profile: DataProfile,
        task: Task,
    ) -> str:
        """The source of one notebook cell for ``stage``; ``""`` means no cell.

        ``path`` holds the insights of the earlier stages on the root-to-node path
        (``path[i].stage == STAGES[i]``); it may stop short of ``stage`` when the node has not
        reached it, and then ``insight`` is ``None`` and the stage's default is rendered.
        Raises :class:`KeyError` when ``insight`` is neither a built-in catalog entry nor close
        to one.
        """
        index = check_path(stage, path)
        entry = None
        mapped = ""
        if insight is not None:
            if insight.source != "builtin":
                entry, mapped = self._closest(stage, insight, profile, task)
            else:
                entry = entry_for(insight.id)
            if entry.stage != stage:
                raise ValueError(
                    f"insight {insight.id!r} belongs to stage {entry.stage!r}, not {stage!r}"
                )
            if len(path) != index:
                raise ValueError(
                    f"stage {stage!r} needs the {index} earlier insights on the path, "
                    f"got {len(path)}"
                )
        ctx = Context.build(profile, task, path)
        cell = STAGE_RENDERERS[stage](ctx, entry.spec if entry is not None else None)
        source = cell.render()
        if mapped:
            source = f"{mapped}\n{source}"
        return source + "\n" if source else ""

    def _closest(
        self, stage: str, insight: Insight, profile: DataProfile, task: Task
    ) -> tuple[CatalogEntry, str]:
        """The applicable catalog entry of ``stage`` whose text is closest to a user or LLM
        insight, and the lines that say so in the cell; :class:`KeyError` when none is close."""
        candidates = [e for e in applicable_entries(profile, task) if e.stage == stage]
        scored = sorted(
            ((relevance(insight.text, e.insight(profile).text), e) for e in candidates),
            key=lambda pair: -pair[0],
        )
        if not scored or scored[0][0] < CLOSEST_ENTRY_MIN:
            raise KeyError(
                f"no LLM is configured to code the {insight.source} insight {insight.text!r} "
                f"and no built-in {stage} insight is close to it; configure an LLM "
                "(llm=MODEL, see the README) or word it like a catalog entry"
            )
        score, entry = scored[0]
        text = entry.insight(profile).text
        comment = (
            f"{insight.source.capitalize()} insight: {insight.text}. No LLM coded it; this cell "
            f"is the closest built-in insight ({entry.key}, similarity {score:.2f}): {text}"
        )
        lines = textwrap.wrap(comment, LINE - 2, initial_indent="# ", subsequent_indent="# ")
        lines.append(f"print({py_str(f'SELA: coded as the closest built-in insight {entry.key}')})")
        return entry, "\n".join(reflow_line(line) for line in lines)


def check_path(stage: str, path: Sequence[Insight]) -> int:
    """The index of ``stage``; :class:`ValueError` unless ``path`` holds the insights of the
    earlier stages in order (it may stop short)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    index = STAGES.index(stage)
    if len(path) > index:
        raise ValueError(
            f"the path to stage {stage!r} holds {len(path)} insights; "
            f"at most {index} come before it"
        )
    for i, insight in enumerate(path):
        if insight.stage != STAGES[i]:
            raise ValueError(f"path[{i}] is a {insight.stage!r} insight; expected {STAGES[i]!r}")
    return index
