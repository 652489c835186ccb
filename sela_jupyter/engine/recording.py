"""What a finished simulation leaves behind: the node's scores in the tree, and its directory.

:meth:`Recorder.record` scores the saved test predictions, finishes the node in the tree and
writes ``nodes/<id>/``: the executed notebook (a resumed node's notebook starts with its parent's
cells), the stage code, the log and ``result.json`` (the node detail that REST and the sidebar
show). It also remembers which pipeline each node fitted, so an identical pipeline is not fitted
twice in a session (:meth:`Recorder.evaluated`).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any

import cloudpickle
import nbformat

from .cells import score_saved_predictions
from .ensemble import CV_FILE, PREDICTIONS_FILE
from .llm import TokenUsage
from .mcts import Node
from .records import NodeResult
from .run_state import RunState
from .runner import SimulationPlan, SimulationResult, build_notebook
from .store import atomic_write_text

log = logging.getLogger(__name__)


class Recorder:
    """Records a run's finished simulations (one recorder per search session)."""

    def __init__(self, state: RunState) -> None:
        self.state = state
        #: pipeline fingerprint -> the node that evaluated it (this session's simulations)
        self._fitted: dict[str, str] = {}

    def evaluated(self, fingerprint: str) -> tuple[str, float] | None:
        """The finished node that evaluated the pipeline with ``fingerprint``, and its dev score."""
        node_id = self._fitted.get(fingerprint)
        if node_id is None:
            return None
        node = self.state.tree[node_id]
        saved = self.state.node_dir(node_id) / PREDICTIONS_FILE
        if node.dev_score is None or not saved.is_file():
            return None
        return node_id, node.dev_score

    def record(
        self,
        node: Node,
        plan: SimulationPlan,
        result: SimulationResult,
        started: float,
        llm: dict[str, Any] | None = None,
    ) -> None:
        """Finish ``node`` with ``result`` (run from ``plan`` since ``started``) and write its
        directory; ``llm`` is the tokens and attempts of its LLM-written cells."""
        s = self.state
        task = s.task
        node_dir = s.node_dir(node.id)
        test_score = None
        predictions = Path(plan.predictions_path) if plan.predictions_path else None
        if result.reused_from and predictions is not None:
            source = s.node_dir(result.reused_from) / PREDICTIONS_FILE
            shutil.copyfile(source, predictions)  # the same pipeline: the same outputs
            source_cv = source.with_name(CV_FILE)
            if source_cv.is_file():
                shutil.copyfile(source_cv, node_dir / CV_FILE)
        elif result.fingerprint and result.error is None:
            self._fitted.setdefault(result.fingerprint, node.id)
        if result.error is None and predictions and predictions.is_file():
            test_labels = s.test_labels
            if test_labels is not None:
                try:
                    with predictions.open("rb") as f:
                        saved = cloudpickle.load(f)["test"]
                    test_score = score_saved_predictions(task, test_labels.to_numpy(), saved)
                except Exception as exc:  # a test score is a report, never a reason to fail
                    log.warning("test scoring failed for %s: %s", node.id, exc)
        node.timings = {
            "started": started,
            "finished": time.time(),
            **{k: round(v, 4) for k, v in result.timings.items()},
        }
        reward = 0.0 if result.error else task.reward(result.dev_score)
        s.tree.finish(
            node,
            reward=reward,
            dev_score=None if result.error else result.dev_score,
            test_score=test_score,
            error=result.error,
        )
        ancestors = self._ancestor_cells(node) if result.restored else []
        insights = s.tree.insights(node)
        title = (
            f"# SELA node {node.id}: {node.stage}\n\n"
            + "\n".join(f"- **{i.stage}**: {i.text}" for i in insights)
            + (f"\n\nResumed from node {node.parent}'s kernel state." if result.restored else "")
        )
        notebook = build_notebook(
            result,
            title=title,
            ancestor_cells=ancestors,
            metadata={
                "run": s.run_id,
                "node": node.id,
                "dev_score": node.dev_score,
                "restored_from": node.parent if result.restored else None,
            },
        )
        atomic_write_text(node_dir / "notebook.ipynb", nbformat.writes(notebook))
        for cell in plan.cells:
            if cell.role == "path":
                atomic_write_text(node_dir / f"{cell.stage}.py", cell.source + "\n")
        atomic_write_text(
            node_dir / "log.txt",
            result.output_tail(20000) + (f"\n{result.traceback}\n" if result.traceback else ""),
        )
        detail = NodeResult(
            node=node.to_dict(),
            insights=[i.to_dict() for i in insights],
            code={c.stage: c.source for c in plan.replay + plan.cells},
            code_roles={c.stage: c.role for c in plan.replay + plan.cells},
            output_tail=result.output_tail(4000),
            error=result.error,
            error_kind=result.error_kind,
            traceback=result.traceback,
            restored=result.restored,
            reused_from=result.reused_from,
            cv_rows=result.cv_rows,
            cv_error=result.cv_error,
            timings=node.timings,
            notebook=str(node_dir / "notebook.ipynb"),
            tokens=(llm or {}).get("tokens") or TokenUsage(),
            llm=(llm or {}).get("cells"),
        )
        s.store.write_node(s.run_id, detail)

    def _ancestor_cells(self, node: Node) -> list[Any]:
        """The parent's setup and path cells, outputs included, for a node that resumed."""
        if node.parent is None:
            return []
        parent_nb = self.state.node_dir(node.parent) / "notebook.ipynb"
        if not parent_nb.is_file():
            return []
        nb = nbformat.read(parent_nb, as_version=4)
        keep = []
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("sela", {})
            if cell.cell_type == "code" and meta.get("role") in ("setup", "path", "replay"):
                cell.metadata["sela"] = {**meta, "from": node.parent}
                keep.append(cell)
        return keep
