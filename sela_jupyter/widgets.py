"""The live view a ``%sela`` cell shows: progress, best score, the best frontier of the tree.

:class:`LiveView` knows nothing about where a run lives: it is given a :class:`RunSource` (REST on
a Jupyter server, or the run directory of an in-process search) and polls it from a background
thread, so the kernel stays free while the search runs. ``poke()`` makes it refresh at once (the
in-process backend pokes it on every engine event).

The tree shows the *best frontier*, never every node: the best node's path, the ``top_k`` best
nodes, and the running ones, with their ancestors (each ipytree node is its own comm model, so a
tree of hundreds would flood the frontend). Labels read ``stage · insight · score``.

The run line shows the LLM tokens used and their estimated cost once there are any (offline
runs show none); a selected node shows its own tokens.

Selecting a node shows its insights and stage code. "Insert below" cannot create a cell from a
widget click: IPython's ``set_next_input`` only reaches the frontend in the reply of a cell being
executed, and a click is a comm message, not an execution. So the button puts the node's whole
pipeline in the text box (ready to copy) and makes it the node that a plain ``%sela insert`` puts
in the next cell; the JupyterLab sidebar inserts cells directly.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import ipywidgets as widgets
from ipytree import Node as TreeNode
from ipytree import Tree

from .engine.records import FinalBlend
from .engine.statuses import LIVE_RUN_STATUSES, NodeStatus, RunStatus

log = logging.getLogger(__name__)


class RunSource(Protocol):
    """Where a live view reads a run from."""

    def snapshot(self, run_id: str) -> dict[str, Any]:
        """The run record with ``tree`` (as ``GET /sela/api/runs/{id}``) and ``active``."""

    def node(self, run_id: str, node_id: str) -> dict[str, Any]:
        """A node's detail (as ``GET /sela/api/runs/{id}/nodes/{node}``)."""

    def script(self, run_id: str, node_id: str) -> str:
        """The node's pipeline as one Python script."""


def frontier(tree: dict[str, Any], better: Callable[[float, float], bool], top_k: int) -> list[str]:
    """Ids of the nodes worth showing: best path, ``top_k`` best, running; closed under parents."""
    nodes = {n["id"]: n for n in tree.get("nodes", [])}
    scored = [
        n
        for n in nodes.values()
        if n["status"] == NodeStatus.DONE and n.get("dev_score") is not None
    ]
    ranked = sorted(scored, key=_rank_key(better))
    keep = {n["id"] for n in ranked[:top_k]}
    keep |= {n["id"] for n in nodes.values() if n["status"] == NodeStatus.RUNNING}
    closed: set[str] = set()
    for node_id in keep:
        current = nodes.get(node_id)
        while current is not None and current["id"] not in closed:
            closed.add(current["id"])
            current = nodes.get(current["parent"]) if current.get("parent") else None
    return [n for n in nodes if n in closed]


def _rank_key(better: Callable[[float, float], bool]) -> Callable[[dict[str, Any]], float]:
    maximize = better(1.0, 0.0)
    return lambda n: -n["dev_score"] if maximize else n["dev_score"]


def node_label(node: dict[str, Any], metric: str) -> str:
    """``stage · insight · score`` for one tree node."""
    insight = (node.get("insight") or {}).get("text") or "built-in defaults"
    if len(insight) > 60:
        insight = insight[:57] + "..."
    if node["status"] == NodeStatus.DONE and node.get("dev_score") is not None:
        score = f"{metric} {node['dev_score']:.5g}"
    elif node["status"] == NodeStatus.FAILED:
        score = "failed"
    else:
        score = node["status"]
    return f"{node['stage']} · {insight} · {score}"


def token_count(count: int) -> str:
    """A token count as ``950``, ``12.3k`` or ``1.2M``."""
    if count >= 999_950:
        return f"{count / 1e6:.1f}".removesuffix(".0") + "M"
    if count >= 1000:
        return f"{count / 1e3:.1f}".removesuffix(".0") + "k"
    return str(count)


def cost_text(cost: float | None) -> str:
    """An estimated cost in US dollars: ``$1.25``, ``$0.04``, ``$0.0005`` or ``$0``."""
    if not cost or cost <= 0:
        return "$0"
    if cost >= 0.01:
        return f"${cost:.2f}"
    return f"${cost:.4f}" if cost >= 0.0001 else "<$0.0001"


def token_text(tokens: dict[str, Any] | None) -> str | None:
    """``12.3k tokens, $0.04`` for a run's or node's ``tokens``; ``None`` when none were used."""
    tokens = tokens or {}
    total = int(tokens.get("prompt") or 0) + int(tokens.get("completion") or 0)
    if total <= 0:
        return None
    unit = "token" if total == 1 else "tokens"
    return f"{token_count(total)} {unit}, {cost_text(tokens.get('cost'))}"


class LiveView:
    """Progress bar, best score and best-frontier tree of one run, refreshed in the background."""

    def __init__(
        self,
        source: RunSource,
        run_id: str,
        *,
        interval: float = 1.0,
        top_k: int = 8,
        on_select: Callable[[str, str], None] | None = None,
    ) -> None:
        self.source = source
        self.run_id = run_id
        self.interval = interval
        self.top_k = top_k
        self.on_select = on_select
        self.selected: str | None = None
        self.record: dict[str, Any] = {}
        self.updates = 0
        self._items: dict[str, TreeNode] = {}
        self._running_since: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

        self.title = widgets.HTML(f"<b>SELA</b> run <code>{html.escape(run_id)}</code>")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="")
        self.progress_text = widgets.HTML("starting...")
        self.best = widgets.HTML("best: -")
        self.tree = Tree(multiple_selection=False)
        self.tree.observe(self._on_tree_selection, names="selected_nodes")
        self.detail = widgets.HTML("<i>Select a node to see its insights and code.</i>")
        self.code = widgets.Textarea(
            value="", layout=widgets.Layout(width="100%", height="14em"), disabled=False
        )
        self.insert = widgets.Button(
            description="Insert below", icon="plus", disabled=True, tooltip="Insert this pipeline"
        )
        self.insert.on_click(self._on_insert)
        self.widget = widgets.VBox(
            [
                self.title,
                widgets.HBox([self.progress, self.progress_text]),
                self.best,
                self.tree,
                self.detail,
                self.insert,
                self.code,
            ]
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def start(self) -> LiveView:
        """Refresh once now, then keep refreshing in a daemon thread until the run ends."""
        self.refresh()
        if self._thread is None and self._is_active():
            self._thread = threading.Thread(target=self._poll, name=f"sela-view-{self.run_id}")
            self._thread.daemon = True
            self._thread.start()
        return self

    def poke(self) -> None:
        """Refresh as soon as possible (called on engine events)."""
        self._wake.set()

    def close(self) -> None:
        """Stop refreshing."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the polling thread to end (the run ended or :meth:`close`)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _is_active(self) -> bool:
        return bool(self.record.get("active")) or self.record.get("status") in LIVE_RUN_STATUSES

    def _poll(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.refresh()
                failures = 0
            except Exception as exc:  # a server restart or a network blip: keep trying a while
                failures += 1
                self.progress_text.value = f"cannot reach the run: {html.escape(str(exc))}"
                if failures > 30:
                    return
                continue
            if not self._is_active():
                return

    # -- drawing --------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the run once and redraw progress, best score and the tree."""
        record = self.source.snapshot(self.run_id)
        with self._lock:
            self.record = record
            self._draw_progress(record)
            self._draw_tree(record)
            self.updates += 1

    def _draw_progress(self, record: dict[str, Any]) -> None:
        options = record.get("options") or {}
        rollouts = options.get("rollouts")
        budget = options.get("time_budget")
        done = int(record.get("simulations") or 0)
        running = int(record.get("running") or 0)
        status = record.get("status", "?")
        elapsed = float((record.get("timings") or {}).get("elapsed") or 0.0)
        if status == RunStatus.RUNNING:
            if self._running_since is None:
                self._running_since = time.monotonic()
            elapsed += time.monotonic() - self._running_since
        if rollouts:
            self.progress.max = int(rollouts)
            self.progress.value = min(done, int(rollouts))
            count = f"{done}/{rollouts} simulations"
        elif budget:
            self.progress.max = 1000
            self.progress.value = int(1000 * min(1.0, elapsed / float(budget)))
            count = f"{done} simulations"
        else:
            count = f"{done} simulations"
        timing = f"{elapsed:.0f}s" + (f" / {float(budget):.0f}s budget" if budget else "")
        extra = f", {running} running" if running else ""
        self.progress.bar_style = {RunStatus.FINISHED: "success", RunStatus.FAILED: "danger"}.get(
            status, "info"
        )
        error = record.get("error")
        used = token_text(record.get("tokens"))
        llm = f" · LLM: {used}" if used else ""
        self.progress_text.value = html.escape(f"{count}{extra} · {timing}{llm} · {status}") + (
            f" · <span style='color:var(--jp-error-color1)'>{html.escape(error)}</span>"
            if error
            else ""
        )
        task = record.get("task") or {}
        best = record.get("best") or {}
        metric = task.get("metric", "score")
        if best.get("dev_score") is not None:
            test = best.get("test_score")
            final = FinalBlend.from_dict(record["final"]) if record.get("final") else None
            blend = ""
            if final is not None and final.shows_beside(best["node"]):
                blend = (
                    f" · final: {final.label()}, dev <b>{final.dev_score:.6g}</b>"
                    + (f", test {final.test_score:.6g}" if final.test_score is not None else "")
                    + (" (chosen out of fold)" if final.chosen_on == "cv" else "")
                )
            self.best.value = (
                f"best dev {metric}: <b>{best['dev_score']:.6g}</b> (node {best['node']})"
                + (f", test {test:.6g}" if test is not None else "")
                + blend
            )

    def _draw_tree(self, record: dict[str, Any]) -> None:
        tree = record.get("tree") or {}
        task = record.get("task") or {}
        metric = task.get("metric", "score")
        maximize = task.get("metric") not in ("rmse", "mae", "rmsle")
        nodes = {n["id"]: n for n in tree.get("nodes", [])}
        better = (lambda a, b: a > b) if maximize else (lambda a, b: a < b)
        wanted = frontier(tree, better, self.top_k)
        wanted_set = set(wanted)
        # Remove nodes that left the frontier (children before parents).
        for node_id in sorted(self._items, key=lambda i: -nodes.get(i, {}).get("depth", 0)):
            if node_id not in wanted_set:
                self._detach(node_id, nodes)
        for node_id in sorted(wanted, key=lambda i: nodes[i]["depth"]):
            node = nodes[node_id]
            label = node_label(node, metric)
            item = self._items.get(node_id)
            if item is None:
                item = TreeNode(label, opened=True, show_icon=False)
                item._sela_id = node_id
                parent = self._items.get(node.get("parent") or "")
                if parent is not None:
                    parent.add_node(item)
                else:
                    self.tree.add_node(item)
                self._items[node_id] = item
            elif item.name != label:
                item.name = label

    def _detach(self, node_id: str, nodes: dict[str, Any]) -> None:
        item = self._items.pop(node_id)
        parent = self._items.get((nodes.get(node_id) or {}).get("parent") or "")
        try:
            if parent is not None and item in parent.nodes:
                parent.remove_node(item)
            elif item in self.tree.nodes:
                self.tree.remove_node(item)
        except Exception:
            log.debug("could not remove tree item %s", node_id, exc_info=True)

    # -- selection ------------------------------------------------------------------------------
    def _on_tree_selection(self, change: dict[str, Any]) -> None:
        selected = change.get("new") or ()
        if not selected:
            return
        node_id = getattr(selected[0], "_sela_id", None)
        if node_id:
            self.select(node_id)

    def select(self, node_id: str) -> None:
        """Show one node's insights and stage code."""
        self.selected = node_id
        try:
            detail = self.source.node(self.run_id, node_id)
        except Exception as exc:
            self.detail.value = (
                f"<i>cannot read node {html.escape(node_id)}: {html.escape(str(exc))}</i>"
            )
            return
        node = detail.get("node", {})
        insights = detail.get("insights") or [
            p["insight"] for p in detail.get("path", []) if p.get("insight")
        ]
        items = "".join(
            f"<li><b>{html.escape(i['stage'])}</b>: {html.escape(i['text'])}</li>" for i in insights
        )
        score = node.get("dev_score")
        error = detail.get("error") or node.get("error")
        tokens = detail.get("tokens") or {}
        used = token_text(tokens)
        self.detail.value = (
            f"<b>node {html.escape(node_id)}</b> ({html.escape(node.get('stage', ''))}, "
            f"{html.escape(node.get('status', ''))}"
            + (f", dev {score:.6g}" if score is not None else "")
            + ")"
            + (f"<ul>{items}</ul>" if items else "<br><i>built-in defaults</i>")
            + (
                f"<br>LLM: {html.escape(used)} ({int(tokens.get('prompt') or 0)} prompt + "
                f"{int(tokens.get('completion') or 0)} completion tokens)"
                if used
                else ""
            )
            + (
                f"<br><span style='color:var(--jp-error-color1)'>{html.escape(error)}</span>"
                if error
                else ""
            )
        )
        code = detail.get("code") or {}
        self.code.value = "\n\n".join(f"# --- {stage}\n{src}" for stage, src in code.items())
        self.insert.disabled = node.get("status") != NodeStatus.DONE

    def _on_insert(self, _button: Any = None) -> None:
        if not self.selected:
            return
        try:
            script = self.source.script(self.run_id, self.selected)
        except Exception as exc:
            self.detail.value += f"<br><i>cannot export: {html.escape(str(exc))}</i>"
            return
        self.code.value = script
        if self.on_select is not None:
            self.on_select(self.run_id, self.selected)
        self.detail.value += (
            "<br>The whole pipeline is in the box below; run <code>%sela insert</code> to put it "
            "in a new cell."
        )
