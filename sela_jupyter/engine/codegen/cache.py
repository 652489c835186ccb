"""The stage code cache: code by stage and insight path, so no stage is coded twice.

:class:`StageCodeCache` keeps the code a coder wrote per (stage, insight ids on the path up to and
including the stage), and round-trips through JSON with the rest of a run's state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..insights import Insight
from .coder import check_path

#: The ids of the insights on a path up to a stage, ``"default"`` where it has none.
CacheKey = tuple[str, ...]


class StageCodeCache:
    """Stage code by (stage, insight ids on the path up to and including the stage)."""

    def __init__(self) -> None:
        self._code: dict[tuple[str, CacheKey], str] = {}

    @staticmethod
    def key_for(stage: str, insight: Insight | None, path: Sequence[Insight]) -> CacheKey:
        """The ids of ``path`` then ``insight``; ``"default"`` for stages without an insight."""
        index = check_path(stage, path)
        ids = [i.id for i in path] + ["default"] * (index - len(path))
        return (*ids, insight.id if insight is not None else "default")

    def get(self, stage: str, key: CacheKey) -> str | None:
        """The cached code, or ``None`` when this stage and path were never coded."""
        return self._code.get((stage, tuple(key)))

    def put(self, stage: str, key: CacheKey, code: str) -> None:
        """Remember ``code`` for ``stage`` and ``key``."""
        self._code[(stage, tuple(key))] = code

    def __len__(self) -> int:
        return len(self._code)

    def __contains__(self, item: object) -> bool:
        return item in self._code

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        """JSON-ready form: ``{"entries": [{"stage", "path", "code"}, ...]}``, in insertion order."""
        return {
            "entries": [
                {"stage": stage, "path": list(key), "code": code}
                for (stage, key), code in self._code.items()
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageCodeCache:
        """Inverse of :meth:`to_dict`."""
        cache = cls()
        for item in data.get("entries", []):
            cache.put(item["stage"], tuple(item["path"]), item["code"])
        return cache
