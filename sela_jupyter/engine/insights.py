"""Insights: one idea per pipeline stage, and the pool that holds them.

An insight is a sentence a data scientist reads in the tree view ("Log-transform the skewed target
and fit on log1p(price)") plus a stable id. The tree search draws a node's children from the pool
entries of the child's stage; a coder turns the insights on a root-to-node path into stage code.
The built-in proposer (:class:`.catalog.BuiltinProposer`) picks the applicable entries of the
curated catalog for a data profile, so a search works offline with no LLM.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from .contract import STAGES

__all__ = ["SOURCES", "STAGES", "Insight", "InsightPool"]

#: Where an insight came from.
SOURCES = ("builtin", "llm", "user")


@dataclass(frozen=True)
class Insight:
    """One idea for one stage, e.g. ``Insight("model.xgb_shallow", "model", "Use XGBoost ...")``."""

    id: str
    stage: str
    text: str
    source: str = "builtin"

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r}; expected one of {', '.join(STAGES)}")
        if self.source not in SOURCES:
            raise ValueError(
                f"unknown insight source {self.source!r}; expected one of {', '.join(SOURCES)}"
            )
        if not self.id:
            raise ValueError("an insight needs a non-empty id")

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form, as stored in ``tree.json`` and sent over REST."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Insight:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id=str(data["id"]),
            stage=str(data["stage"]),
            text=str(data["text"]),
            source=str(data.get("source", "builtin")),
        )


class InsightPool:
    """Insights grouped by stage, in insertion order, each id at most once."""

    def __init__(self, insights: list[Insight] | None = None) -> None:
        self._by_stage: dict[str, list[Insight]] = {stage: [] for stage in STAGES}
        self._by_id: dict[str, Insight] = {}
        for insight in insights or ():
            self.add(insight)

    def add(self, insight: Insight) -> Insight:
        """Add ``insight``; raise :class:`ValueError` if its id is already in the pool."""
        if insight.id in self._by_id:
            raise ValueError(f"insight id {insight.id!r} is already in the pool")
        self._by_stage[insight.stage].append(insight)
        self._by_id[insight.id] = insight
        return insight

    def add_text(self, stage: str, text: str, *, source: str = "user") -> Insight:
        """Add a user or LLM insight for ``stage`` under the next free id ``<source>.<stage>.<n>``."""
        n = 1
        while f"{source}.{stage}.{n}" in self._by_id:
            n += 1
        return self.add(Insight(f"{source}.{stage}.{n}", stage, text, source))

    def for_stage(self, stage: str) -> list[Insight]:
        """The insights of one stage, in the order they were added."""
        if stage not in self._by_stage:
            raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
        return list(self._by_stage[stage])

    def get(self, insight_id: str) -> Insight:
        """The insight with id ``insight_id``; :class:`KeyError` if there is none."""
        return self._by_id[insight_id]

    def __contains__(self, insight_id: object) -> bool:
        return insight_id in self._by_id

    def __iter__(self) -> Iterator[Insight]:
        for stage in STAGES:
            yield from self._by_stage[stage]

    def __len__(self) -> int:
        return len(self._by_id)

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        """JSON-ready form: ``{stage: [insight, ...]}`` with every stage present."""
        return {stage: [i.to_dict() for i in self._by_stage[stage]] for stage in STAGES}

    @classmethod
    def from_dict(cls, data: dict[str, list[dict[str, Any]]]) -> InsightPool:
        """Inverse of :meth:`to_dict`."""
        pool = cls()
        for stage in STAGES:
            for item in data.get(stage, []):
                insight = Insight.from_dict(item)
                if insight.stage != stage:
                    raise ValueError(f"insight {insight.id!r} is listed under stage {stage!r}")
                pool.add(insight)
        return pool


# -- comparing insight texts -------------------------------------------------------------------

_STOP = {
    "a", "an", "the", "and", "or", "of", "to", "for", "with", "on", "in", "by", "as", "use",
    "using", "apply", "its", "it", "is", "be", "then", "into", "from", "each", "all", "that",
    "try", "add", "model", "data", "feature", "features", "column", "columns", "target",
}  # fmt: skip


def content_words(text: str) -> set[str]:
    """The lower-cased words of ``text`` that carry meaning: no stop words, each cut to its first
    six letters as a crude stem ("duplicated" and "duplicates" are both "duplic")."""
    words = set(re.findall(r"[a-z0-9]+", text.lower())) - _STOP
    return {(w[:-1] if len(w) > 3 and w.endswith("s") else w)[:6] for w in words}


def similarity(a: str, b: str) -> float:
    """How alike two insight texts read, 0..1: the larger of word overlap and character match."""
    wa, wb = content_words(a), content_words(b)
    jaccard = len(wa & wb) / len(wa | wb) if wa and wb else 0.0
    ratio = difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio()
    return max(jaccard, ratio)


def is_near_duplicate(text: str, others: Iterable[str], threshold: float = 0.8) -> bool:
    """True when ``text`` says what one of ``others`` already says."""
    return any(similarity(text, other) >= threshold for other in others)


def relevance(query: str, text: str) -> float:
    """How much of ``query``'s meaning ``text`` covers, 0..1 (for mapping a short user insight
    onto a longer catalog text): the share of the query's words found in the text, damped by
    the overall word overlap."""
    wq, wt = content_words(query), content_words(text)
    if not wq or not wt:
        return 0.0
    shared = len(wq & wt)
    return 0.75 * shared / len(wq) + 0.25 * shared / len(wq | wt)
