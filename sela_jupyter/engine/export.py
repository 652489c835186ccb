"""Export a node's pipeline as cells, a standalone notebook, or a Python script.

The exported cells need no ``sela_jupyter`` import: the setup cell loads the run's data and splits
it with the run's own seeded logic, one cell per stage follows, then the fixed evaluation cell. Run
top to bottom they reproduce the node's dev score and leave a fitted scikit-learn ``pipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .cells import EVALUATION_SOURCE, export_setup_source
from .errors import SelaInputError
from .insights import STAGES, Insight
from .mcts import DONE, Node


@dataclass
class ExportCell:
    """One exported cell: its role (markdown, setup, a stage, evaluation, ...) and source."""

    role: str
    source: str
    kind: str = "code"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form (what REST returns for "cells")."""
        return {"role": self.role, "kind": self.kind, "source": self.source}


def pipeline_cells(
    search: Any, node: Node, *, data_path: str, test_path: str | None, include_extras: bool = True
) -> list[ExportCell]:
    """The cells that rebuild ``node``'s pipeline (``search`` is a :class:`~.search.Search`)."""
    if node.status != DONE:
        raise SelaInputError(f"node {node.id} has no finished simulation to export")
    task = search.task
    record = search.state.record
    has_test = bool(record["data"].get("has_test_frame"))
    path = search.tree.path(node)
    insights: list[Insight] = [n.insight for n in path if n.insight is not None]
    header = (
        f"# SELA pipeline: run `{search.run_id}`, node `{node.id}`\n\n"
        f"Dev {task.metric}: **{node.dev_score:.6g}**"
        + (
            f", test {task.metric}: **{node.test_score:.6g}**"
            if node.test_score is not None
            else ""
        )
        + "\n\n"
        + ("\n".join(f"- **{i.stage}**: {i.text}" for i in insights) or "- built-in defaults")
    )
    cells = [ExportCell("title", header, kind="markdown")]
    cells.append(
        ExportCell(
            "setup",
            export_setup_source(task, data_path=data_path, has_test=has_test, test_path=test_path),
        )
    )
    for depth, path_node in enumerate(path, start=1):
        stage = STAGES[depth - 1]
        code = search.stage_code(stage, path_node.insight, insights[: depth - 1])
        if code.strip():
            cells.append(ExportCell(stage, code))
    for stage in STAGES[node.depth :]:
        code = search.stage_code(stage, None, insights)
        if code.strip():
            cells.append(ExportCell(stage, code))
    cells.append(ExportCell("evaluation", EVALUATION_SOURCE))
    if include_extras:
        if not has_test or record["data"].get("has_test_labels"):
            cells.append(
                ExportCell(
                    "test",
                    (
                        "test_score = evaluate(pipeline, test.drop(columns=[TARGET]), test[TARGET])\n"
                        'print(f"test {METRIC}: {test_score:.6g}")'
                    ),
                )
            )
        predict = (
            "# Predict new rows: any frame with the training feature columns\n"
            "new_rows = dev.drop(columns=[TARGET]).head()\n"
            "predictions = pipeline.predict(new_rows)\n"
        )
        if task.is_classification:
            predict += "[CLASSES[code] for code in predictions]"
        else:
            predict += "predictions"
        cells.append(ExportCell("predict", predict))
    return cells


def cells_to_notebook(cells: list[ExportCell], metadata: dict[str, Any] | None = None) -> Any:
    """A notebook of ``cells`` with a Python 3 kernelspec."""
    nb = new_notebook()
    nb.metadata.update(
        {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "sela": metadata or {},
        }
    )
    for cell in cells:
        meta = {"sela": {"role": cell.role}}
        if cell.kind == "markdown":
            nb.cells.append(new_markdown_cell(cell.source, metadata=meta))
        else:
            nb.cells.append(new_code_cell(cell.source, metadata=meta))
    return nb


def cells_to_script(cells: list[ExportCell]) -> str:
    """A Python script of ``cells``: markdown becomes comments, cells are ``# %%`` blocks."""
    parts = []
    for cell in cells:
        if cell.kind == "markdown":
            parts.append(
                "\n".join("# " + line if line else "#" for line in cell.source.splitlines())
            )
        else:
            parts.append(f"# %% {cell.role}\n{cell.source}")
    return "\n\n\n".join(parts) + "\n"


def notebook_text(cells: list[ExportCell], metadata: dict[str, Any] | None = None) -> str:
    """The notebook JSON text of ``cells``."""
    return nbformat.writes(cells_to_notebook(cells, metadata))
