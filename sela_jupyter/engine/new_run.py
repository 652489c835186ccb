"""A new run on disk: validate the frame, fix the task, split, propose insights, write the run.

:func:`create_run` is the only writer of a run's first ``run.json``; :class:`~.search.Search`
then runs (or resumes) it.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from .catalog import BuiltinProposer
from .codegen import StageCodeCache
from .insights import InsightPool
from .mcts import Tree
from .options import SearchOptions
from .records import DataRows, RunData, RunLLM, RunRecord
from .statuses import RunStatus
from .store import RunStore
from .task import prepare_data


def create_run(
    frame: Any,
    target: str,
    *,
    store: RunStore,
    options: SearchOptions,
    test: pd.DataFrame | None = None,
    task_type: str | None = None,
    metric: str | None = None,
    name: str | None = None,
    description: str = "",
    source: str = "",
) -> str:
    """Validate ``frame``, fix the task, split, propose insights and write a new run; its id.

    The caller's frame is never modified: everything downstream works on copies.
    """
    data = prepare_data(
        frame, target, test=test, task_type=task_type, metric=metric, seed=options.seed
    )
    frame, test, task, profile = data.frame, data.test, data.task, data.profile
    train, dev, held_out, target = data.train, data.dev, data.held_out, data.target

    run_id = store.new_run_id(name)
    run_dir = store.run_dir(run_id)
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True)
    frame.to_parquet(data_dir / "frame.parquet")
    train.to_parquet(data_dir / "train.parquet")
    dev.to_parquet(data_dir / "dev.parquet")
    test_frame = test if test is not None else held_out
    has_test_labels = False
    if test_frame is not None:
        if test is not None:
            test.to_parquet(data_dir / "test_input.parquet")
        features = test_frame.drop(columns=[target], errors="ignore")
        features.to_parquet(data_dir / "test_features.parquet")
        if target in test_frame.columns and test_frame[target].notna().all():
            test_frame[[target]].to_parquet(data_dir / "test_labels.parquet")
            has_test_labels = True

    # LLM insights are proposed when the search starts (it is async and may fail over).
    pool = InsightPool() if options.insights == "llm" else BuiltinProposer().propose(profile, task)
    store.write_part(run_id, "insights", pool.to_dict())
    store.write_part(run_id, "code", StageCodeCache().to_dict())
    tree = Tree(max_depth=options.max_depth, seed=options.seed)
    store.write_tree(run_id, tree.to_dict())
    record = RunRecord(
        id=run_id,
        name=name or "",
        status=RunStatus.CREATED,
        pid=os.getpid(),
        source=source,
        description=description,
        options=options,
        task=task,
        profile=profile,
        warnings=list(profile.warnings),
        data=RunData(
            has_test_frame=test is not None,
            has_test_labels=has_test_labels,
            rows=DataRows(
                train=len(train),
                dev=len(dev),
                test=0 if test_frame is None else len(test_frame),
            ),
        ),
        llm=RunLLM(options.llm, options.llm_base_url, options.insights) if options.llm else None,
    )
    store.write_run(record)
    return run_id
