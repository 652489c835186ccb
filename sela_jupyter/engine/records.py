"""The records that cross a boundary (disk, REST, events, widgets), one JSON shape each.

- :class:`RunRecord` is ``run.json``: what a run is (options, task, profile, its data) and where
  it stands (status, simulations, best node, final candidate, timings, tokens, error).
- :class:`FinalBlend` is the run's final candidate, ``run.json``'s ``final``.
- :class:`NodeResult` is a simulated node's ``result.json``, the node detail REST serves.
- :class:`RunEvent` is one event to a run's listeners (and the server's event bus).

Each has ``to_dict()`` (the JSON shape, described in ``sela_jupyter/server/openapi.yaml`` and
``server/events/run.yaml``) and ``from_dict()`` (its inverse; unknown keys are ignored and
missing ones take their defaults, so records written by older versions still read).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .llm import TokenUsage
from .options import SearchOptions
from .statuses import RunStatus
from .task import DataProfile, Task


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls``."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass
class BlendMember:
    """One node of the final candidate and its weight (rounds it was picked)."""

    node: str
    weight: int


@dataclass
class FinalBlend:
    """The run's final candidate: a weighted blend of nodes' pipelines, or one node's.

    ``chosen_on`` is ``"cv"`` when the members were ranked and weighted on out-of-fold outputs
    over train + dev (then ``cv_score`` is that blend's score), else ``"dev"``. ``threshold``
    (binary F1 only) predicts the positive class at that blended probability or above;
    ``None`` predicts the most probable class. ``best_single`` is the best member alone.
    """

    kind: str  # "ensemble" (more than one member) or "node"
    members: list[BlendMember]
    dev_score: float
    test_score: float | None = None
    chosen_on: str = "dev"
    cv_score: float | None = None
    threshold: float | None = None
    best_single: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ensemble(self) -> bool:
        """True when more than one node contributes."""
        return self.kind == "ensemble"

    @property
    def is_own_pipeline(self) -> bool:
        """True when the answer is not simply one node's pipeline: a blend, or a single node
        with its own decision threshold (both export and refit as a ``WeightedEnsemble``)."""
        return self.is_ensemble or self.threshold is not None

    def shows_beside(self, best_node: str | None) -> bool:
        """Whether this final candidate earns a line of its own next to the best node on dev:
        it is its own pipeline (a blend, or a node with its own decision threshold), or a
        different node (chosen out of fold)."""
        return bool(self.members) and (self.is_own_pipeline or self.members[0].node != best_node)

    @property
    def node_ids(self) -> list[str]:
        """The members' node ids, heaviest first."""
        return [m.node for m in self.members]

    def label(self, *, weights: bool = False) -> str:
        """``"a blend of 3 nodes"`` (with ``weights``: ``"a blend of 3 nodes (n4 x2, ...)"``) or
        ``"node n7"``, then ``", threshold 0.41"`` when it has a decision threshold."""
        if self.is_ensemble:
            label = f"a blend of {len(self.members)} nodes"
            if weights:
                label += " (" + ", ".join(f"{m.node} x{m.weight}" for m in self.members) + ")"
        else:
            label = f"node {self.members[0].node}"
        if self.threshold is not None:
            label += f", threshold {self.threshold:.2f}"
        return label

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as ``run.json``'s ``final``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinalBlend:
        """Inverse of :meth:`to_dict`."""
        data = _known(cls, data)
        data["members"] = [BlendMember(**_known(BlendMember, m)) for m in data["members"]]
        return cls(**data)


@dataclass
class BestNode:
    """The node with the best dev score so far."""

    node: str
    dev_score: float | None
    test_score: float | None = None


@dataclass
class DataRows:
    """Rows in each part of the run's split."""

    train: int = 0
    dev: int = 0
    test: int = 0


@dataclass
class RunData:
    """The data a run was given: where its frame is, and what its test rows hold."""

    frame: str = "data/frame.parquet"
    has_test_frame: bool = False  # the user gave a separate test frame
    has_test_labels: bool = False  # the test rows have the target (a test score is reported)
    rows: DataRows = field(default_factory=DataRows)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunData:
        """Inverse of ``asdict``."""
        data = _known(cls, data)
        data["rows"] = DataRows(**_known(DataRows, data.get("rows") or {}))
        return cls(**data)


@dataclass
class RunLLM:
    """The LLM a run uses (its key stays in an environment variable, never here)."""

    model: str
    base_url: str = ""
    insights: str = "llm"


@dataclass
class RunTimings:
    """Wall-clock seconds searched over every session, and when the last session ended."""

    elapsed: float = 0.0
    finished: float | None = None  # time.time() at the end of the last session


@dataclass
class RunRecord:
    """``run.json``: one run's settings and state, as the store, REST and events carry it."""

    id: str
    options: SearchOptions
    task: Task
    profile: DataProfile
    data: RunData = field(default_factory=RunData)
    name: str = ""
    created: float = field(default_factory=time.time)
    status: RunStatus = RunStatus.CREATED
    pid: int | None = None  # the process searching (or holding) the run
    source: str = ""  # where the data came from: "python", a file path, "%sela df", ...
    description: str = ""  # the task in words, for the LLM
    warnings: list[str] = field(default_factory=list)
    simulations: int = 0
    best: BestNode | None = None
    final: FinalBlend | None = None
    timings: RunTimings = field(default_factory=RunTimings)
    tokens: TokenUsage = field(default_factory=TokenUsage)
    llm: RunLLM | None = None
    error: str | None = None  # one line: why the run failed
    kernel_files: list[str] = field(default_factory=list)  # live kernels' connection files
    llm_insights_proposed: bool = False

    @property
    def live(self) -> bool:
        """True while some process is (or should be) working on the run."""
        return self.status.live

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as stored in ``run.json``."""
        return {
            "id": self.id,
            "name": self.name,
            "created": self.created,
            "status": str(self.status),
            "pid": self.pid,
            "source": self.source,
            "description": self.description,
            "options": asdict(self.options),
            "task": self.task.to_dict(),
            "profile": self.profile.to_dict(),
            "warnings": list(self.warnings),
            "data": asdict(self.data),
            "simulations": self.simulations,
            "best": None if self.best is None else asdict(self.best),
            "final": None if self.final is None else self.final.to_dict(),
            "timings": asdict(self.timings),
            "tokens": self.tokens.to_dict(),
            "llm": None if self.llm is None else asdict(self.llm),
            "error": self.error,
            "kernel_files": list(self.kernel_files),
            "llm_insights_proposed": self.llm_insights_proposed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        """Inverse of :meth:`to_dict`."""
        data = _known(cls, data)
        data["status"] = RunStatus(data.get("status", RunStatus.CREATED))
        data["options"] = SearchOptions.from_dict(data["options"])
        data["task"] = Task.from_dict(data["task"])
        data["profile"] = DataProfile.from_dict(data["profile"])
        data["data"] = RunData.from_dict(data.get("data") or {})
        if data.get("best"):
            data["best"] = BestNode(**_known(BestNode, data["best"]))
        if data.get("final"):
            data["final"] = FinalBlend.from_dict(data["final"])
        data["timings"] = RunTimings(**_known(RunTimings, data.get("timings") or {}))
        data["tokens"] = TokenUsage.from_dict(data.get("tokens"))
        if data.get("llm"):
            data["llm"] = RunLLM(**_known(RunLLM, data["llm"]))
        data["warnings"] = list(data.get("warnings") or [])
        data["kernel_files"] = list(data.get("kernel_files") or [])
        return cls(**data)


@dataclass
class NodeResult:
    """A simulated node's ``result.json``: its code, output, error and costs.

    ``code`` maps each stage of the simulation to its source and ``code_roles`` to its role
    (``path``: the node's own or an ancestor's insight; ``default``: a stage after the node).
    ``restored`` says the kernel resumed from the parent's snapshot, ``reused_from`` names the
    node whose identical pipeline was not refitted. ``llm`` holds, per LLM-written stage, the
    replies and attempts it took.
    """

    node: dict[str, Any]  # the node as the tree stores it (mcts.Node.to_dict)
    insights: list[dict[str, Any]] = field(default_factory=list)
    code: dict[str, str] = field(default_factory=dict)
    code_roles: dict[str, str] = field(default_factory=dict)
    output_tail: str = ""
    error: str | None = None
    error_kind: str | None = None
    traceback: str | None = None
    restored: bool = False
    reused_from: str | None = None
    cv_rows: int | None = None
    cv_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notebook: str = ""  # the executed notebook's path on the server
    tokens: TokenUsage = field(default_factory=TokenUsage)
    llm: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as in ``result.json``."""
        data = asdict(self)
        data["tokens"] = self.tokens.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NodeResult:
        """Inverse of :meth:`to_dict`."""
        data = _known(cls, data)
        data["tokens"] = TokenUsage.from_dict(data.get("tokens"))
        return cls(**data)


@dataclass
class NodeDetail:
    """A node as REST serves it: the node as the tree has it now, its path from the root (each
    step's id, stage and insight), its :class:`NodeResult` once it ran, and its notebook's path
    under the server's root directory (``None`` when the runs live outside it)."""

    node: dict[str, Any]
    path: list[dict[str, Any]]
    result: NodeResult | None = None
    notebook_path: str | None = None

    @classmethod
    def from_tree(
        cls, tree: dict[str, Any], node_id: str, result: NodeResult | None
    ) -> NodeDetail | None:
        """Node ``node_id`` of ``tree`` (``tree.json``'s shape) with its path and ``result``;
        ``None`` when the tree has no such node."""
        nodes = {n["id"]: n for n in tree["nodes"]}
        node = nodes.get(node_id)
        if node is None:
            return None
        path = []
        current: dict[str, Any] | None = node
        while current is not None and current.get("parent") is not None:
            path.append(
                {"id": current["id"], "stage": current["stage"], "insight": current["insight"]}
            )
            current = nodes.get(current["parent"])
        return cls(node, path[::-1], result)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the result's fields (none before the node ran), then ``node``,
        ``path`` and ``notebook_path``."""
        result = self.result.to_dict() if self.result is not None else {}
        return {
            **result,
            "node": self.node,
            "path": self.path,
            "notebook_path": self.notebook_path,
        }


@dataclass
class RunEvent:
    """One event of a run, to its listeners and the server's event bus.

    ``type`` is one of ``run_started``, ``run_finished``, ``run_queued``, ``run_warning``,
    ``llm_started``, ``node_added``, ``node_updated``, ``simulation_started``,
    ``simulation_finished``. A run event carries ``run`` (the run summary), a node event
    ``node`` (and ``simulation_finished`` the run's ``best``); the others their own fields.
    """

    type: str
    run_id: str
    time: float = field(default_factory=time.time)
    run: dict[str, Any] | None = None
    node: dict[str, Any] | None = None
    best: dict[str, Any] | None = None
    message: str | None = None  # run_warning
    purpose: str | None = None  # llm_started: what the LLM is asked for
    model: str | None = None  # llm_started

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``type``, ``run_id``, ``time`` and the fields this event carries
        (``best`` always on ``simulation_finished``, ``null`` before any node succeeded)."""
        data = {"type": self.type, "run_id": self.run_id, "time": self.time}
        for name in ("run", "node", "message", "purpose", "model"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.type == "simulation_finished":
            data["best"] = self.best
        return data
