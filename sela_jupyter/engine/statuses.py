"""The statuses a run and a node can be in: one enum each, shared by store, REST, events and UI.

Both are ``StrEnum``: a member compares equal to its string and serialises as it, so the JSON on
disk and on the wire reads ``"finished"``, ``"done"``, ... as before.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run is in its life."""

    #: Written to disk, not yet searched.
    CREATED = "created"
    #: Waiting for a server's free slot.
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    #: Stopped on request; resumable.
    STOPPED = "stopped"
    #: Ended without a single successful simulation, or on an error; ``error`` says why.
    FAILED = "failed"
    #: The process that searched it died; resumable, like ``stopped``.
    INTERRUPTED = "interrupted"

    @property
    def live(self) -> bool:
        """True while some process is (or should be) working on the run."""
        return self in LIVE_RUN_STATUSES


#: Statuses of a run that some process is (or should be) working on.
LIVE_RUN_STATUSES = frozenset({RunStatus.CREATED, RunStatus.QUEUED, RunStatus.RUNNING})


class NodeStatus(StrEnum):
    """Where a node of the search tree is: waiting, simulating, or simulated."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    #: A simulation that was abandoned (the run stopped, its budget was spent, its process
    #: died): a final state on disk, and like ``queued`` the node may be simulated again.
    CANCELLED = "cancelled"


#: Statuses of a node that waits for a simulation.
WAITING_NODE_STATUSES = frozenset({NodeStatus.QUEUED, NodeStatus.CANCELLED})
