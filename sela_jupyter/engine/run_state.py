"""A stored run loaded into memory: the read model that the search, ``Run``, export and the CLI use.

:meth:`RunState.load` reads ``run.json``, the tree, the insight pool and the stage-code cache. The
labels the search scores against (dev, test, and train + dev for out-of-fold outputs) are read
from the run's parquet files only when first asked for, so opening a run to export or show it
reads no data.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .codegen import StageCodeCache
from .insights import InsightPool
from .mcts import Tree
from .options import SearchOptions
from .records import RunRecord
from .store import RunStore
from .task import DataProfile, Task


@dataclass
class RunState:
    """One run as stored: its record, task, profile, options, tree, insight pool and code cache."""

    store: RunStore
    run_dir: Path
    record: RunRecord
    tree: Tree
    pool: InsightPool
    code: StageCodeCache

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> RunState:
        """Read the run ``run_id`` from ``store`` (:class:`RunNotFoundError` when it is not there)."""
        run_dir = store.existing_run_dir(run_id)
        return cls(
            store=store,
            run_dir=run_dir,
            record=store.read_run(run_id),
            tree=Tree.from_dict(store.read_tree(run_id)),
            pool=InsightPool.from_dict(store.read_part(run_id, "insights")),
            code=StageCodeCache.from_dict(store.read_part(run_id, "code", {})),
        )

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self.record.id

    @property
    def task(self) -> Task:
        """The run's task."""
        return self.record.task

    @property
    def profile(self) -> DataProfile:
        """The profile of the run's training rows."""
        return self.record.profile

    @property
    def options(self) -> SearchOptions:
        """How the run searches."""
        return self.record.options

    @property
    def data_dir(self) -> Path:
        """The run's ``data/`` folder: the frame it was given and its split."""
        return self.run_dir / "data"

    def node_dir(self, node_id: str) -> Path:
        """Where node ``node_id`` keeps its notebook, code, outputs and snapshot."""
        return self.store.node_dir(self.run_id, node_id)

    @functools.cached_property
    def dev_labels(self) -> pd.Series | None:
        """The dev rows' target (class codes for classification); ``None`` without dev rows."""
        return _labels(self.data_dir / "dev.parquet", self.task)

    @functools.cached_property
    def test_labels(self) -> pd.Series | None:
        """The test rows' target, or ``None`` when the test rows have no labels."""
        return _labels(self.data_dir / "test_labels.parquet", self.task)

    @functools.cached_property
    def cv_labels(self) -> pd.Series | None:
        """Train's then dev's target: what out-of-fold outputs over train + dev are scored on."""
        train = _labels(self.data_dir / "train.parquet", self.task)
        dev = self.dev_labels
        return None if train is None or dev is None else pd.concat([train, dev], ignore_index=True)

    def save(self) -> None:
        """Write the tree, the code cache and the record (in that order: the record last)."""
        self.store.write_tree(self.run_id, self.tree.to_dict())
        self.store.write_part(self.run_id, "code", self.code.to_dict())
        self.store.write_run(self.record)

    def save_insights(self) -> None:
        """Write the insight pool (after a user, an LLM or a fallback added to it)."""
        self.store.write_part(self.run_id, "insights", self.pool.to_dict())


def _labels(path: Path, task: Task) -> pd.Series | None:
    """The target column of a stored frame, as class codes for classification."""
    if not path.is_file():
        return None
    y = pd.read_parquet(path, columns=[task.target])[task.target]
    if task.is_classification:
        y = y.map({label: code for code, label in enumerate(task.classes)})
    return y
