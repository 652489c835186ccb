"""From a node to code: the stages of its pipeline and the cells that simulate or export it.

:func:`pipeline_steps` walks a node's path (one stage per path node, then the default stages
after it); both :meth:`Planner.plan` (a simulation) and :mod:`.export` (a notebook) build on it,
so a simulated pipeline and its export are the same code. :meth:`Planner.stage_code` asks the
coder for a stage's code at most once per run: the answer is kept in the run's code cache.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from .cells import setup_source
from .codegen import TemplateCoder
from .ensemble import CV_FILE, PREDICTIONS_FILE
from .insights import STAGES, Insight
from .mcts import Node, Tree
from .run_state import RunState
from .runner import CrossValidation, SimulationPlan, StageCell

#: A path cell the LLM coder must write: the cell, its insight, the earlier insights.
PendingCell = tuple[StageCell, Insight, list[Insight]]
#: Whether an insight's code is the LLM coder's to write.
WantsLLM = Callable[[Insight | None], bool]
#: Seconds a node may spend on out-of-fold outputs given its dev score and fit time, or ``None``.
CvTimeLimit = Callable[[Node, float, float], float | None]
#: The node that already evaluated a pipeline fingerprint, and its dev score, or ``None``.
FitLookup = Callable[[str], tuple[str, float] | None]


@dataclass(frozen=True)
class PipelineStep:
    """One stage of a node's pipeline: the insight deciding it (``None``: the default code),
    the path's earlier insights, and the path node it belongs to (``None`` after the node)."""

    stage: str
    insight: Insight | None
    earlier: list[Insight]
    node: Node | None


def pipeline_steps(tree: Tree, node: Node) -> list[PipelineStep]:
    """Every stage of ``node``'s pipeline: its path's stages, then the defaults after it."""
    path = tree.path(node)
    insights = [n.insight for n in path if n.insight is not None]
    steps = [
        PipelineStep(STAGES[depth - 1], path_node.insight, insights[: depth - 1], path_node)
        for depth, path_node in enumerate(path, start=1)
    ]
    steps += [PipelineStep(stage, None, insights, None) for stage in STAGES[node.depth :]]
    return steps


class Planner:
    """Stage code for a run's nodes (through its code cache) and their simulation plans."""

    def __init__(self, state: RunState, coder: TemplateCoder) -> None:
        self.state = state
        self.coder = coder

    def stage_code(self, stage: str, insight: Insight | None, earlier: list[Insight]) -> str:
        """Code for ``stage`` given the path's earlier insights; asked of the coder at most once."""
        cache = self.state.code
        key = cache.key_for(stage, insight, earlier)
        code = cache.get(stage, key)
        if code is None:
            code = self.coder.stage_code(
                stage, insight, earlier, self.state.profile, self.state.task
            )
            cache.put(stage, key, code)
        return code

    def plan(
        self,
        node: Node,
        *,
        pending: list[PendingCell] | None = None,
        wants_llm: WantsLLM | None = None,
        lookup: FitLookup | None = None,
        cv_time_limit: CvTimeLimit | None = None,
    ) -> SimulationPlan:
        """The cells that simulate ``node``: its path's stage code, defaults after it, evaluation.

        With a ``pending`` list, path cells whose insight ``wants_llm`` and that are not cached
        yet are left empty and listed there for the LLM coder. ``lookup`` finds an identical
        pipeline already evaluated (when the run reuses fits); ``cv_time_limit`` decides whether
        the node computes out-of-fold outputs (when the run has folds; without it, none).
        """
        s = self.state
        options = s.options
        data = s.data_dir
        test_path = data / "test_features.parquet"
        data_files = [str(data / "train.parquet"), str(data / "dev.parquet")]
        if test_path.is_file():
            data_files.append(str(test_path))
        setup = setup_source(
            s.task,
            train_path=data_files[0],
            dev_path=data_files[1],
            test_path=data_files[2] if len(data_files) > 2 else None,
        )
        node_dir = s.node_dir(node.id)
        node_dir.mkdir(parents=True, exist_ok=True)
        cells: list[StageCell] = []
        replay: list[StageCell] = []
        for step in pipeline_steps(s.tree, node):
            if step.node is None:
                code = self.stage_code(step.stage, None, step.earlier)
                if code.strip():
                    cells.append(StageCell(stage=step.stage, source=code, role="default"))
                continue
            llm_cell = (
                pending is not None
                and wants_llm is not None
                and wants_llm(step.insight)
                and s.code.get(step.stage, s.code.key_for(step.stage, step.insight, step.earlier))
                is None
            )
            code = "" if llm_cell else self.stage_code(step.stage, step.insight, step.earlier)
            own = step.node is node
            cell = StageCell(
                stage=step.stage,
                source=code,
                role="path",
                node_id=step.node.id,
                snapshot_path=str(node_dir / "snapshot.pkl")
                if own and options.reuse_state
                else None,
            )
            (cells if own else replay).append(cell)
            if llm_cell:
                assert pending is not None and step.insight is not None
                pending.append((cell, step.insight, step.earlier))
        restore_from = base_snapshot = None
        if node.parent is not None and options.reuse_state:
            parent_snapshot = s.node_dir(node.parent) / "snapshot.pkl"
            if parent_snapshot.is_file():
                restore_from = str(parent_snapshot)
            root_snapshot = s.node_dir(s.tree.root.id) / "snapshot.pkl"
            if root_snapshot.is_file():
                base_snapshot = str(root_snapshot)
        return SimulationPlan(
            setup=setup,
            data_files=tuple(data_files),
            cells=cells,
            replay=replay,
            restore_from=restore_from,
            root_snapshot_path=str(node_dir / "snapshot.pkl")
            if node.parent is None and options.reuse_state
            else None,
            base_snapshot=base_snapshot,
            predictions_path=str(node_dir / PREDICTIONS_FILE),
            lookup=lookup if options.reuse_fits else None,
            cross_validation=CrossValidation(
                path=str(node_dir / CV_FILE),
                train_path=str(data / "train.parquet"),
                folds=options.cv_folds,
                wants=functools.partial(cv_time_limit, node),
            )
            if options.cv_folds and cv_time_limit is not None
            else None,
            cell_timeout=options.cell_timeout,
            simulation_timeout=options.simulation_timeout,
        )
