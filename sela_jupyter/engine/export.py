"""Export a node's pipeline (or the run's final blend) as cells, a standalone notebook, or a script.

The exported cells need no ``sela_jupyter`` import: the setup cell loads the run's data and splits
it with the run's own seeded logic, one cell per stage follows, then the fixed evaluation cell. Run
top to bottom they reproduce the node's dev score and leave a fitted scikit-learn ``pipeline``. A
blend repeats the stage cells and a fit for each member, then defines ``WeightedEnsemble`` and
leaves the weighted average of the members as ``pipeline``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .cells import EVALUATION_SOURCE, export_setup_source
from .ensemble import ensemble_class_source
from .errors import SelaInputError
from .mcts import Node
from .planning import Planner, pipeline_steps
from .records import FinalBlend
from .run_state import RunState
from .statuses import NodeStatus


@dataclass
class ExportCell:
    """One exported cell: its role (markdown, setup, a stage, evaluation, ...) and source."""

    role: str
    source: str
    kind: str = "code"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form (what REST returns for "cells")."""
        return {"role": self.role, "kind": self.kind, "source": self.source}


def _stage_cells(planner: Planner, node: Node) -> list[ExportCell]:
    """One cell per stage of ``node``'s path, then the defaults for the stages after it."""
    cells = []
    for step in pipeline_steps(planner.state.tree, node):
        code = planner.stage_code(step.stage, step.insight, step.earlier)
        if code.strip():
            cells.append(ExportCell(step.stage, code))
    return cells


def _insight_list(run: RunState, node: Node) -> str:
    insights = run.tree.insights(node)
    return "\n".join(f"- **{i.stage}**: {i.text}" for i in insights) or "- built-in defaults"


def _scores(task: Any, dev: float, test: float | None) -> str:
    text = f"Dev {task.metric}: **{dev:.6g}**"
    return text + (f", test {task.metric}: **{test:.6g}**" if test is not None else "")


def _setup_cell(run: RunState, data_path: str, test_path: str | None) -> ExportCell:
    has_test = run.record.data.has_test_frame
    return ExportCell(
        "setup",
        export_setup_source(run.task, data_path=data_path, has_test=has_test, test_path=test_path),
    )


def _extra_cells(run: RunState) -> list[ExportCell]:
    """The test score (when the test rows have labels) and a prediction example."""
    task = run.task
    data = run.record.data
    cells = []
    if not data.has_test_frame or data.has_test_labels:
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
    predict += (
        "[CLASSES[code] for code in predictions]" if task.is_classification else "predictions"
    )
    cells.append(ExportCell("predict", predict))
    return cells


def pipeline_cells(
    planner: Planner,
    node: Node,
    *,
    data_path: str,
    test_path: str | None,
    include_extras: bool = True,
) -> list[ExportCell]:
    """The cells that rebuild ``node``'s pipeline, its stage code from ``planner``."""
    run = planner.state
    if node.status != NodeStatus.DONE:
        raise SelaInputError(f"node {node.id} has no finished simulation to export")
    header = (
        f"# SELA pipeline: run `{run.run_id}`, node `{node.id}`\n\n"
        + _scores(run.task, node.dev_score, node.test_score)  # type: ignore[arg-type]
        + "\n\n"
        + _insight_list(run, node)
    )
    cells = [
        ExportCell("title", header, kind="markdown"),
        _setup_cell(run, data_path, test_path),
    ]
    cells += _stage_cells(planner, node)
    cells.append(ExportCell("evaluation", EVALUATION_SOURCE))
    return cells + (_extra_cells(run) if include_extras else [])


def ensemble_cells(
    planner: Planner,
    final: FinalBlend,
    *,
    data_path: str,
    test_path: str | None,
    include_extras: bool = True,
) -> list[ExportCell]:
    """The cells that rebuild a final candidate that is more than one node's pipeline: each
    member's stages and fit, then the weighted average, with the final's decision threshold
    where it has one."""
    run = planner.state
    task = run.task
    members = [(run.tree[m.node], int(m.weight)) for m in final.members]
    total = sum(weight for _, weight in members)
    threshold = final.threshold
    if len(members) > 1:
        title = f"a blend of {len(members)} nodes"
        what = "the weighted average of these nodes' pipelines" + (
            " (weights chosen by greedy ensemble selection on their out-of-fold outputs over"
            " train + dev)"
            if final.chosen_on == "cv"
            else " (weights chosen on dev by greedy ensemble selection)"
        )
    else:
        title = f"node {members[0][0].id}"
        what = f"node `{members[0][0].id}`'s pipeline"
    if threshold is not None:
        title += f" at threshold {threshold:.2f}"
        what += (
            f", predicting `{task.positive_label}` when its probability is at least"
            f" {threshold:.2f}, the threshold with the best F1 out of fold over train + dev"
        )
    header = (
        f"# SELA pipeline: run `{run.run_id}`, {title}\n\n"
        + _scores(task, final.dev_score, final.test_score)
        + f"\n\nThe run's final candidate: {what}."
    )
    cells = [
        ExportCell("title", header, kind="markdown"),
        _setup_cell(run, data_path, test_path),
    ]
    cells.append(
        ExportCell(
            "members",
            "from sklearn.pipeline import Pipeline\n\n"
            "original_train = train  # every member's stages start from the same training rows\n"
            "fitted = {}  # node id -> that member's fitted pipeline",
        )
    )
    for number, (node, weight) in enumerate(members, start=1):
        cells.append(
            ExportCell(
                "member",
                f"## Member {number}: node `{node.id}`, weight {weight}/{total}\n\n"
                + _scores(task, node.dev_score, node.test_score)  # type: ignore[arg-type]
                + "\n\n"
                + _insight_list(run, node),
                kind="markdown",
            )
        )
        stages = _stage_cells(planner, node)
        restart = "train, notes = original_train.copy(), {}\n\n"
        if stages:
            stages[0].source = restart + stages[0].source
        else:
            stages = [ExportCell("preprocess", restart.strip())]
        cells += stages
        cells.append(
            ExportCell(
                "member-fit",
                'pipeline = Pipeline(steps + [("model", model)])\n'
                "pipeline.fit(train.drop(columns=[TARGET]), train[TARGET])\n"
                f"fitted[{node.id!r}] = pipeline\n"
                "member_score = evaluate(pipeline, dev.drop(columns=[TARGET]), dev[TARGET])\n"
                f'print(f"member {node.id} dev {{METRIC}}: {{member_score:.6g}}")',
            )
        )
    cells.append(ExportCell("ensemble-class", ensemble_class_source().strip()))
    blend = ", ".join(f"(fitted[{node.id!r}], {weight})" for node, weight in members)
    n_classes = "len(CLASSES)" if task.is_classification else "None"
    if threshold is not None:
        n_classes += f", threshold={threshold!r}, positive=POSITIVE"
    cells.append(
        ExportCell(
            "evaluation",
            "train = original_train\n"
            f"pipeline = WeightedEnsemble([{blend}], n_classes={n_classes})\n"
            "dev_score = evaluate(pipeline, dev.drop(columns=[TARGET]), dev[TARGET])\n"
            'print(f"dev {METRIC}: {dev_score:.6g}")',
        )
    )
    return cells + (_extra_cells(run) if include_extras else [])


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
