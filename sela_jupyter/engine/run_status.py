"""What a stored run's status says: why a run failed, and which runs a dead process left behind.

A run whose status is live (created, queued, running) but whose process is gone was orphaned by
a killed server or ``sela run``: it is marked ``interrupted`` (resumable), and the nodes it was
simulating come back cancelled.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .mcts import Tree
from .records import RunRecord
from .statuses import RunStatus
from .store import RunStore


def failure_message(
    run_id: str, status: str, error: str | None, log: Path | None = None
) -> str | None:
    """``run X failed: <why>`` for a run whose ``status`` is ``failed`` (with where its ``log``
    is, when it exists), else ``None``."""
    if status != RunStatus.FAILED:
        return None
    where = f" (details in {log})" if log is not None and log.is_file() else ""
    return f"run {run_id} failed: {error or 'no simulation succeeded'}{where}"


def mark_interrupted(store: RunStore, run_id: str) -> None:
    """Record that the process searching ``run_id`` died: the run is ``interrupted``
    (resumable) and the nodes it was simulating are cancelled."""
    tree = Tree.from_dict(store.read_tree(run_id))  # running nodes come back cancelled
    store.write_tree(run_id, tree.to_dict())
    record = store.read_run(run_id)
    for name in record.kernel_files:  # the dead kernels' connection files
        path = Path(name)
        if path.name.startswith("kernel-") and path.suffix == ".json":
            path.unlink(missing_ok=True)
    record.status = RunStatus.INTERRUPTED
    record.simulations = tree.simulations
    record.kernel_files = []
    store.write_run(record)


def interrupt_orphaned_runs(store: RunStore) -> list[str]:
    """Mark ``interrupted`` every run that a process now gone left searching, queued or just
    created (a server or ``sela run`` that was killed); their ids."""
    return [
        record.id
        for record in store.list_runs()
        if interrupt_if_orphaned(store, record) is not record
    ]


def interrupt_if_orphaned(store: RunStore, record: RunRecord) -> RunRecord:
    """``record``, or the run's record re-read after :func:`mark_interrupted` when its process
    is gone (an unreadable run stays as it is)."""
    if not is_orphaned(record):
        return record
    try:
        mark_interrupted(store, record.id)
        return store.read_run(record.id)
    except Exception:
        return record


def is_orphaned(record: RunRecord) -> bool:
    """True when the run of ``record`` should be searching (or queued) but its process is gone."""
    return record.live and not process_alive(record.pid)


def process_alive(pid: Any) -> bool:
    """True when ``pid`` names a live process (this one included)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
