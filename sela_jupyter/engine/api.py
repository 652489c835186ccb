"""The Python API: ``sela_jupyter.run(df, target=...)`` and the :class:`Run` it returns.

>>> import sela_jupyter
>>> run = sela_jupyter.run(df, target="price", rollouts=10)
>>> run.leaderboard().head()
>>> run.predict(new_rows)
>>> run.export_notebook("best_pipeline.ipynb")
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
import warnings
from collections.abc import Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from .codegen import TemplateCoder
from .ensemble import WeightedEnsemble, positive_code
from .errors import SelaDataWarning, SelaInputError, SelaRunError
from .export import cells_to_script, ensemble_cells, notebook_text, pipeline_cells
from .mcts import Node, Tree
from .new_run import create_run
from .options import build_options, parse_duration
from .planning import Planner
from .records import FinalBlend, RunRecord
from .run_state import RunState
from .run_status import failure_message
from .runlog import RUN_LOG
from .search import Listener, Search
from .store import RunStore, atomic_write_text
from .task import DataProfile, Task

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion, also from inside a running event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="sela-run")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class Run:
    """A stored run: its tree, best node, leaderboard, fitted pipeline and exports."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.id = run_id
        self.reload()

    def __repr__(self) -> str:
        best = self.best
        score = f"{best.dev_score:.6g}" if best and best.dev_score is not None else "-"
        return (
            f"<Run {self.id} {self.record.status}: {self.record.simulations} simulations,"
            f" best dev {self.task.metric} {score}>"
        )

    def reload(self) -> Run:
        """Re-read the run from disk (after a resume or while another process runs it)."""
        self._state = RunState.load(self.store, self.id)
        self._planner = Planner(self._state, TemplateCoder())
        return self

    @property
    def profile(self) -> DataProfile:
        """The :class:`~.task.DataProfile` of the run's training rows."""
        return self._state.profile

    @property
    def record(self) -> RunRecord:
        """``run.json``: options, task, profile, status, timings, best."""
        return self._state.record

    @property
    def task(self) -> Task:
        """The run's :class:`~.task.Task`."""
        return self._state.task

    @property
    def path(self) -> Path:
        """The run directory."""
        return self._state.run_dir

    @property
    def tree(self) -> Tree:
        """The search :class:`~.mcts.Tree`."""
        return self._state.tree

    @property
    def best(self) -> Node | None:
        """The node with the best dev score (its test score is reported, never used to choose)."""
        return self.tree.best(self.task.better)

    @property
    def warnings(self) -> list[str]:
        """What the profile asks a person to look at, one line per column (a suspected leak)."""
        return list(self.record.warnings)

    @property
    def final(self) -> FinalBlend | None:
        """The run's final candidate, chosen when the run ended (out of fold over train + dev,
        or on dev): ``kind`` ``"ensemble"`` (a weighted blend of the best nodes' pipelines) or
        ``"node"``, with ``members`` (node and weight), ``dev_score``, ``test_score``,
        ``chosen_on``, ``cv_score`` and, for binary F1, ``threshold`` (``None`` when it predicts
        the most probable class). ``None`` while it runs."""
        final = self.record.final
        if final and all(node in self.tree.nodes for node in final.node_ids):
            return final
        return None

    def _blend(self, node_id: str | None) -> FinalBlend | None:
        """The final candidate when ``node_id`` asks for the final answer and it is more than one
        node's pipeline: a blend, or a node with its own decision threshold."""
        final = self.final if node_id in (None, "final") else None
        return final if final is not None and final.is_own_pipeline else None

    def node(self, node_id: str | None = None) -> Node:
        """A node by id; the best node when ``node_id`` is ``None``, ``"best"`` or ``"final"``
        (the final answer's best member)."""
        final = self.final if node_id in (None, "final") else None
        if final:
            return self.tree[final.node_ids[0]]
        if node_id in (None, "best", "final"):
            best = self.best
            if best is None:
                raise SelaInputError(f"run {self.id} has no successful simulation yet")
            return best
        if node_id not in self.tree.nodes:
            raise SelaInputError(f"run {self.id} has no node {node_id!r}")
        return self.tree[node_id]

    def leaderboard(self, limit: int | None = None) -> pd.DataFrame:
        """Simulated nodes ranked by dev score: stage, path insights, dev and test score, time."""
        rows = []
        for node in self.tree:
            if not node.simulated:
                continue
            insights = self.tree.insights(node)
            rows.append(
                {
                    "node": node.id,
                    "stage": node.stage,
                    "insights": " > ".join(i.text for i in insights) or "(built-in defaults)",
                    "dev_score": node.dev_score,
                    "test_score": node.test_score,
                    "status": node.status,
                    "seconds": round(node.timings.get("total", 0.0), 2),
                }
            )
        frame = pd.DataFrame(
            rows,
            columns=["node", "stage", "insights", "dev_score", "test_score", "status", "seconds"],
        )
        ascending = self.task.direction == "minimize"
        frame = frame.sort_values("dev_score", ascending=ascending, na_position="last")
        frame = frame.reset_index(drop=True)
        frame.index += 1
        frame.index.name = "rank"
        return frame.head(limit) if limit else frame

    def notebooks(self) -> list[Path]:
        """Every simulation's executed notebook."""
        return sorted(self.path.glob("nodes/*/notebook.ipynb"))

    # -- exports --------------------------------------------------------------------------------
    def _data_paths(self) -> tuple[str, str | None]:
        data = self.path / "data"
        test = data / "test_input.parquet"
        return str(data / "frame.parquet"), str(test) if test.is_file() else None

    def cells(self, node_id: str | None = None, *, include_extras: bool = True) -> list[Any]:
        """The exported cells (:class:`~.export.ExportCell`) of a node, or of the final answer
        (``None`` or ``"final"``: the blend when the run chose one, else the best node)."""
        data_path, test_path = self._data_paths()
        blend = self._blend(node_id)
        if blend:
            return ensemble_cells(
                self._planner,
                blend,
                data_path=data_path,
                test_path=test_path,
                include_extras=include_extras,
            )
        return pipeline_cells(
            self._planner,
            self.node(node_id),
            data_path=data_path,
            test_path=test_path,
            include_extras=include_extras,
        )

    def export_metadata(self, node_id: str | None = None) -> dict[str, Any]:
        """What an export is of: ``node`` (an id, or ``"final"`` for a blend), ``dev_score`` and,
        for a blend, its ``members``."""
        blend = self._blend(node_id)
        if blend:
            return {
                "run": self.id,
                "node": "final",
                "dev_score": blend.dev_score,
                "members": [asdict(m) for m in blend.members],
            }
        node = self.node(node_id)
        return {"run": self.id, "node": node.id, "dev_score": node.dev_score}

    def export_notebook(self, path: str | Path | None = None, node_id: str | None = None) -> Path:
        """Write a standalone notebook that rebuilds the pipeline (no sela import needed): the
        final answer by default, or the node ``node_id``."""
        metadata = self.export_metadata(node_id)
        target = Path(path) if path else self.path / f"pipeline-{metadata['node']}.ipynb"
        atomic_write_text(target, notebook_text(self.cells(node_id), metadata))
        return target

    def export_code(self, node_id: str | None = None) -> str:
        """The pipeline as a Python script (``# %%`` cells)."""
        return cells_to_script(self.cells(node_id))

    # -- the fitted pipeline --------------------------------------------------------------------
    def pipeline(self, node_id: str | None = None) -> Any:
        """The final answer's (or node ``node_id``'s) pipeline, refit on train + dev: a
        scikit-learn Pipeline, or a :class:`~.ensemble.WeightedEnsemble` of them for a blend.
        Classifiers predict class codes; :meth:`predict` maps them back to labels."""
        blend = self._blend(node_id)
        if blend:
            members = [(self.pipeline(m.node), m.weight) for m in blend.members]
            n_classes = len(self.task.classes) if self.task.is_classification else None
            threshold = blend.threshold
            positive = 1 if threshold is None else positive_code(self.task)
            return WeightedEnsemble(members, n_classes, threshold=threshold, positive=positive)
        namespace: dict[str, Any] = {"__name__": "__sela_pipeline__"}
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            for cell in self.cells(node_id, include_extras=False):
                if cell.kind == "code" and cell.role != "evaluation":
                    exec(compile(cell.source, f"<sela {cell.role}>", "exec"), namespace)
            exec(
                "from sklearn.pipeline import Pipeline\n"
                "full = pd.concat([train, dev])\n"
                'pipeline = Pipeline(steps + [("model", model)])\n'
                "pipeline.fit(full.drop(columns=[TARGET]), full[TARGET])\n",
                namespace,
            )
        return namespace["pipeline"]

    def predict(self, new_rows: pd.DataFrame, node_id: str | None = None) -> pd.Series:
        """Predictions for ``new_rows`` from :meth:`pipeline`, as labels for classification."""
        if not isinstance(new_rows, pd.DataFrame):
            raise SelaInputError(
                f"expected a DataFrame of rows to predict, got {type(new_rows).__name__}"
            )
        features = new_rows.rename(columns=str).drop(columns=[self.task.target], errors="ignore")
        predictions = self.pipeline(node_id).predict(features)
        if self.task.is_classification:
            classes = list(self.task.classes)
            predictions = [classes[int(code)] for code in predictions]
        return pd.Series(predictions, index=new_rows.index, name=self.task.target)

    # -- continuing ------------------------------------------------------------------------------
    def resume(self, *, listeners: list[Listener] | None = None, kernel_manager: Any = None) -> Run:
        """Finish a stopped or crashed run without redoing finished simulations; raises
        :class:`SelaRunError` when the run still has no successful simulation."""
        search = Search(self.store, self.id, listeners=listeners, kernel_manager=kernel_manager)
        run_sync(search.run())
        return self.reload().check()

    @property
    def failure(self) -> str | None:
        """Why the run ended ``failed`` (one line, with where its ``run.log`` is), or ``None``."""
        return failure_message(self.id, self.record.status, self.record.error, self.path / RUN_LOG)

    def check(self) -> Run:
        """This run, or :class:`SelaRunError` with the cause when it ended ``failed`` without a
        single successful simulation. A run that failed part-way (its kernels were lost, say)
        keeps its finished nodes: it is returned, with a warning that says why it stopped."""
        failure = self.failure
        if failure is not None and self.best is None:
            raise SelaRunError(failure, run_id=self.id, run_dir=str(self.path))
        if failure is not None:
            warnings.warn(
                f"{failure}; its {self.record.simulations} finished simulations are kept"
                " and resume continues it",
                RuntimeWarning,
                stacklevel=3,
            )
        return self


def run(
    df: pd.DataFrame,
    target: str,
    *,
    rollouts: int | None = None,
    time_budget: str | float | None = None,
    parallel: int | None = None,
    seed: int | None = None,
    test: pd.DataFrame | None = None,
    metric: str | None = None,
    task: str | None = None,
    max_depth: int | None = None,
    cv_folds: int | None = None,
    name: str | None = None,
    runs_dir: str | Path | None = None,
    listeners: list[Listener] | None = None,
    kernel_manager: Any = None,
    description: str = "",
    llm: str | None = None,
    insights: str | None = None,
    fallback: str | None = None,
    token_budget: int | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
) -> Run:
    """Search for a strong pipeline predicting ``target`` from ``df``; blocks until done.

    ``rollouts`` simulations (default 10, or as many as fit in ``time_budget`` when one is
    given; with both, whichever ends first). ``df`` is never modified. Returns the :class:`Run`
    with the leaderboard and best pipeline (failed simulations among its rows); raises
    :class:`SelaRunError` naming the cause when no simulation succeeded at all. A column that
    predicts the target almost alone (a suspected leak) raises a :class:`SelaDataWarning` before
    the search starts.
    ``llm`` names a model on an OpenAI-compatible endpoint (``None``: ``SELA_MODEL`` if a key is
    set; ``"off"``: the built-in catalog); ``insights`` is ``llm``, ``builtin`` or ``both``;
    ``fallback="builtin"`` keeps a run going on the built-in catalog when the LLM fails;
    ``token_budget`` caps the LLM tokens of the run; ``description`` is the task in words.
    ``cv_folds`` folds score the best nodes out of fold over train + dev for the final choice
    (``0``: choose on dev alone). Options left ``None`` take their defaults
    (:data:`~.options.OPTION_DEFAULTS`: one simulation per core, seed 0, all five stages, three
    folds).
    """
    store = RunStore(runs_dir)
    options = build_options(
        {
            "rollouts": rollouts,
            "time_budget": time_budget,
            "parallel": parallel,
            "seed": seed,
            "max_depth": max_depth,
            "cv_folds": cv_folds,
            "llm": llm,
            "insights": insights,
            "fallback": fallback,
            "token_budget": token_budget,
            "base_url": base_url,
            "api_key_env": api_key_env,
        }
    )
    run_id = create_run(
        df,
        target,
        store=store,
        options=options,
        test=test,
        task_type=task,
        metric=metric,
        name=name,
        description=description,
        source="python",
    )
    search = Search(store, run_id, listeners=listeners, kernel_manager=kernel_manager)
    for line in search.state.record.warnings:
        warnings.warn(f"{line} (run {run_id})", SelaDataWarning, stacklevel=2)
    run_sync(search.run())
    return Run(store, run_id).check()


def open_run(run_ref: str | None = None, runs_dir: str | Path | None = None) -> Run:
    """Reopen a stored run by id, unique prefix or name (the newest when ``None``)."""
    store = RunStore(runs_dir)
    return Run(store, store.resolve(run_ref))


def resume(run_ref: str, runs_dir: str | Path | None = None, **kwargs: Any) -> Run:
    """Resume a stopped or crashed run; see :meth:`Run.resume`."""
    return open_run(run_ref, runs_dir).resume(**kwargs)


__all__ = ["Run", "open_run", "parse_duration", "resume", "run", "run_sync"]
