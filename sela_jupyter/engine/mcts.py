"""Monte Carlo tree search over pipeline stages: nodes, UCT-DP selection, expansion, backprop.

The tree's levels are the stages (depth 1 = ``eda`` ... depth 5 = ``ensemble``); each node carries one
insight for its stage, so a root-to-node path is a partial pipeline recipe. Selection follows SELA's
UCT-DP: an unvisited node counts as 0.8 visits instead of scoring infinity, so the search goes deep
early. Nodes that are being simulated carry a virtual loss, so parallel selections differ.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .insights import STAGES, Insight, InsightPool
from .statuses import WAITING_NODE_STATUSES, NodeStatus

EXPLORATION = 1.4
UNVISITED_COUNT = 0.8
WIDTH = 5

# Node statuses, in the order a node goes through them.


@dataclass
class Node:
    """One partial pipeline: the insight for ``stage`` below its parent's path."""

    id: str
    parent: str | None
    depth: int
    insight: Insight | None = None
    children: list[str] = field(default_factory=list)
    visits: int = 0
    value: float = 0.0
    status: NodeStatus = NodeStatus.QUEUED
    dev_score: float | None = None
    test_score: float | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    expanded: bool = False
    pruned: bool = False
    pinned: bool = False
    exhausted: bool = False
    in_flight: int = 0  # virtual loss: simulations currently running through this node

    @property
    def stage(self) -> str:
        """The stage this node decides (``"root"`` for the root)."""
        return STAGES[self.depth - 1] if self.depth else "root"

    @property
    def simulated(self) -> bool:
        """True once a simulation of this node finished, well or not."""
        return self.status in (NodeStatus.DONE, NodeStatus.FAILED)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form used by the store, REST and events alike."""
        data = asdict(self)
        data["insight"] = self.insight.to_dict() if self.insight else None
        data["stage"] = self.stage
        data.pop("in_flight")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Node:
        """Inverse of :meth:`to_dict`."""
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if data.get("insight"):
            data["insight"] = Insight.from_dict(data["insight"])
        if "status" in data:
            data["status"] = NodeStatus(data["status"])
        return cls(**data)


def uct_dp_score(node: Node, parent_visits: int) -> float:
    """SELA's UCT-DP: ``v/n + c*sqrt(ln N / n)``, unvisited nodes counted as 0.8 visits."""
    visits = node.visits + node.in_flight
    n = visits if visits > 0 else UNVISITED_COUNT
    exploit = node.value / n
    explore = EXPLORATION * math.sqrt(math.log(max(parent_visits, 1)) / n)
    return exploit + explore


class Tree:
    """The search tree: nodes by id, selection, expansion and backpropagation."""

    def __init__(self, max_depth: int = len(STAGES), seed: int = 0) -> None:
        if not 1 <= max_depth <= len(STAGES):
            raise ValueError(f"max_depth must be between 1 and {len(STAGES)}, got {max_depth}")
        self.max_depth = max_depth
        self.seed = seed
        self.nodes: dict[str, Node] = {}
        self._counter = 0
        self.root = self._new_node(parent=None, depth=0, insight=None)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def path(self, node: Node) -> list[Node]:
        """Nodes from the root's first child down to ``node`` (the root itself is left out)."""
        out: list[Node] = []
        current: Node | None = node
        while current is not None and current.parent is not None:
            out.append(current)
            current = self.nodes[current.parent]
        return out[::-1]

    def insights(self, node: Node) -> list[Insight]:
        """The insights on the root-to-node path, one per stage."""
        return [n.insight for n in self.path(node) if n.insight is not None]

    def is_terminal(self, node: Node) -> bool:
        """True when ``node`` is at ``max_depth`` and can have no children."""
        return node.depth >= self.max_depth

    # -- selection ---------------------------------------------------------------------------
    def select(self, pool: InsightPool) -> Node | None:
        """Pick the next node to simulate, expanding along the way; ``None`` when nothing is left.

        A pinned node that has not run yet goes first. Otherwise descend by UCT-DP from the root;
        a simulated, unexpanded node is expanded and the descent goes on into its new children.
        """
        pinned = [n for n in self.nodes.values() if n.pinned and self._available(n)]
        if pinned:
            node = pinned[0]
            node.pinned = False
            if node.status in WAITING_NODE_STATUSES:
                return node
            if not node.expanded and not self.is_terminal(node):
                self.expand(node, pool)
        blocked: set[str] = set()  # nodes whose every child is busy, for this call only
        node = self.root
        while True:
            if node.status in WAITING_NODE_STATUSES:
                return node
            if (
                not node.expanded
                and not self.is_terminal(node)
                and node.status != NodeStatus.RUNNING
            ):
                self.expand(node, pool)
            candidates = [
                self.nodes[c]
                for c in node.children
                if c not in blocked and self._available(self.nodes[c])
            ]
            if not candidates:
                if any(self.nodes[c].in_flight for c in node.children):
                    blocked.add(node.id)
                else:
                    node.exhausted = True
                if node is self.root:
                    return None
                node = self.root
                continue
            parent_visits = node.visits + node.in_flight
            node = max(candidates, key=lambda c: uct_dp_score(c, parent_visits))

    def _available(self, node: Node) -> bool:
        """Can the descent go into ``node`` (or simulate it) right now?"""
        if node.pruned or node.exhausted or node.status == NodeStatus.RUNNING:
            return False
        # A failed node's children would inherit its broken stage: do not grow below it.
        if node.status == NodeStatus.FAILED or (node.simulated and self.is_terminal(node)):
            node.exhausted = True
            return False
        return True

    def expand(self, node: Node, pool: InsightPool) -> list[Node]:
        """Give ``node`` up to :data:`WIDTH` children, insights of the next stage.

        The insights simulated least often at that depth so far come first (then those the tree
        holds least often), ties in an order drawn at random, seeded by the run seed and the node
        id. Unvisited siblings are simulated in that order, so a few expansions try every insight
        of the stage, every model family included. Drawn purely at random, a 60-second run on
        breast cancer simulated one histogram booster six times and the linear model never.
        """
        if node.expanded or self.is_terminal(node):
            return [self.nodes[c] for c in node.children]
        stage = STAGES[node.depth]
        taken = {self.nodes[c].insight.id for c in node.children if self.nodes[c].insight}
        choices = [i for i in pool.for_stage(stage) if i.id not in taken]
        random.Random(f"{self.seed}:{node.id}").shuffle(choices)
        level = [n for n in self.nodes.values() if n.depth == node.depth + 1 and n.insight]
        tried = Counter(
            n.insight.id for n in level if n.simulated or n.status == NodeStatus.RUNNING
        )
        held = Counter(n.insight.id for n in level)
        # A stable sort: ties keep the shuffle's order.
        choices.sort(key=lambda insight: (tried[insight.id], held[insight.id]))
        for insight in choices[:WIDTH]:
            self.add_child(node, insight)
        node.expanded = True
        return [self.nodes[c] for c in node.children]

    def add_child(self, parent: Node, insight: Insight) -> Node:
        """Add one child of ``parent`` for ``insight`` (also how users steer the search)."""
        if self.is_terminal(parent):
            raise ValueError(
                f"node {parent.id} is at max depth {self.max_depth}; it has no children"
            )
        expected = STAGES[parent.depth]
        if insight.stage != expected:
            raise ValueError(
                f"a child of {parent.id} decides stage {expected!r}, not {insight.stage!r}"
            )
        child = self._new_node(parent=parent.id, depth=parent.depth + 1, insight=insight)
        parent.children.append(child.id)
        self._reopen(parent)
        return child

    def prune(self, node_id: str) -> None:
        """Exclude ``node_id`` and everything under it from further selection."""
        if node_id == self.root.id:
            raise ValueError("the root cannot be pruned; stop the run instead")
        self.nodes[node_id].pruned = True

    def pin(self, node_id: str) -> None:
        """Make ``node_id`` the next node selected (simulated, or expanded if already simulated)."""
        node = self.nodes[node_id]
        if node.pruned:
            raise ValueError(f"node {node_id} is pruned")
        node.pinned = True
        self._reopen(node)

    # -- simulation bookkeeping --------------------------------------------------------------
    def begin(self, node: Node) -> None:
        """Mark ``node`` running and put a virtual loss on its path."""
        node.status = NodeStatus.RUNNING
        for n in [self.root, *self.path(node)]:
            n.in_flight += 1

    def finish(
        self,
        node: Node,
        *,
        reward: float,
        dev_score: float | None,
        test_score: float | None = None,
        error: str | None = None,
    ) -> None:
        """Record a simulation's result on ``node`` and backpropagate ``reward`` to the root."""
        node.status = NodeStatus.FAILED if error else NodeStatus.DONE
        node.dev_score = dev_score
        node.test_score = test_score
        node.error = error
        for n in [self.root, *self.path(node)]:
            n.in_flight = max(0, n.in_flight - 1)
            n.visits += 1
            n.value += reward

    def cancel(self, node: Node) -> None:
        """Undo :meth:`begin` for a simulation that was abandoned (budget over, run stopped): the
        node is ``cancelled``, and may be simulated again when the run resumes."""
        node.status = NodeStatus.CANCELLED
        for n in [self.root, *self.path(node)]:
            n.in_flight = max(0, n.in_flight - 1)

    # -- answers -----------------------------------------------------------------------------
    def best(self, better: Any) -> Node | None:
        """The simulated node whose dev score wins under ``better(a, b)``.

        A tie goes to the shallower node: the pipeline that departs least from the defaults, so a
        saturated dev score (F1 = 1.0 on a small dev set) does not pick the most elaborate one.
        """
        best: Node | None = None
        for node in self.nodes.values():
            if node.status != NodeStatus.DONE or node.dev_score is None:
                continue
            if (
                best is None
                or better(node.dev_score, best.dev_score)
                or (node.dev_score == best.dev_score and node.depth < best.depth)
            ):
                best = node
        return best

    @property
    def simulations(self) -> int:
        """Number of finished simulations (rollouts) in the tree."""
        return sum(1 for n in self.nodes.values() if n.simulated)

    # -- persistence -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as ``tree.json``."""
        return {
            "max_depth": self.max_depth,
            "seed": self.seed,
            "counter": self._counter,
            "root": self.root.id,
            "nodes": [n.to_dict() for n in self.nodes.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tree:
        """Rebuild a tree from :meth:`to_dict`; nodes left running (their process died) are
        ``cancelled``."""
        tree = cls.__new__(cls)
        tree.max_depth = int(data["max_depth"])
        tree.seed = int(data["seed"])
        tree._counter = int(data["counter"])
        tree.nodes = {}
        for raw in data["nodes"]:
            node = Node.from_dict(raw)
            if node.status == NodeStatus.RUNNING:
                node.status = NodeStatus.CANCELLED
            tree.nodes[node.id] = node
        tree.root = tree.nodes[data["root"]]
        return tree

    def _new_node(self, *, parent: str | None, depth: int, insight: Insight | None) -> Node:
        node = Node(id=f"n{self._counter}", parent=parent, depth=depth, insight=insight)
        self._counter += 1
        self.nodes[node.id] = node
        return node

    def _reopen(self, node: Node) -> None:
        """New work below ``node``: it and its ancestors are no longer exhausted."""
        current: Node | None = node
        while current is not None:
            current.exhausted = False
            current = self.nodes[current.parent] if current.parent else None
