"""The search loop: select -> expand -> simulate -> backprop, under rollout and time budgets.

:class:`Search` runs (or resumes) one stored run (see :mod:`.new_run`): ``parallel``
simulations at once in a warm kernel pool, each one's result saved the moment it finishes, so a
crash never loses a finished node. It steers (stop, pin, prune, add an insight) while it runs.
The pieces it drives each live in their own module: the stored run (:mod:`.run_state`), stage
code and simulation plans (:mod:`.planning`), what a finished simulation leaves behind
(:mod:`.recording`) and the LLM (:mod:`.llm_session`). Listeners receive events
(``run_started``, ``node_added``, ``simulation_started``, ``simulation_finished``,
``run_finished``) as plain JSON-ready dicts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from .codegen import TemplateCoder, model_family_of
from .cpu import CpuBudget, budget_for
from .ensemble import PREDICTIONS_FILE, dev_judges_alone, final_blend, load_outputs
from .errors import SelaError, SelaInputError, describe
from .insights import STAGES, Insight
from .kernel_files import MAX_TRANSFER_BYTES, kernel_files_for, remote_kernels
from .llm import LLMClient
from .llm_session import LLMCell, LLMSession
from .mcts import Node, Tree
from .planning import PendingCell, Planner
from .recording import Recorder
from .records import BestNode, RunEvent, RunRecord
from .run_state import RunState
from .runlog import RUN_LOG, run_log, trace
from .runner import ChildKernel, KernelPool, SimulationPlan, SimulationResult, run_simulation
from .statuses import NodeStatus, RunStatus
from .store import RunStore
from .task import Task

log = logging.getLogger(__name__)

#: Seconds a run keeps trying to replace a lost gateway kernel before it gives up on it.
REMOTE_RECOVERY_S = 180.0

#: A node with this much more error than the run's best so far (see :meth:`Task.error_gap`)
#: gets no out-of-fold outputs: the final blend would hardly weigh it, and the folds cost three
#: fits.
CV_MAX_ERROR_GAP = 0.15
#: Under a time budget, out-of-fold outputs estimated to take more than this share of the run's
#: simulation time (the budget times ``parallel``) go only to a node that beats every other.
CV_MAX_BUDGET_SHARE = 0.1
#: Under a time budget, a stage or evaluation cell of any node but the root is stopped as a
#: hopeless fit past this multiple of the run's median fit time or of its parent's fit time,
#: or past this share of the budget, whichever is longest; only once this many fits are timed.
CELL_CAP_FIT_MULTIPLE = 5.0
CELL_CAP_BUDGET_SHARE = 0.1
CELL_CAP_MIN_FITS = 3

Listener = Callable[[dict[str, Any]], None]


class Search:
    """Runs (or resumes) one stored run to completion; ``stop()`` ends it early."""

    def __init__(
        self,
        store: RunStore,
        run_id: str,
        *,
        kernel_manager: Any = None,
        listeners: list[Listener] | None = None,
        coder: TemplateCoder | None = None,
        budget: CpuBudget | None = None,
        kernel_name: str = "python3",
        max_transfer_bytes: int = MAX_TRANSFER_BYTES,
    ) -> None:
        self.store = store
        #: The kernel spec simulations run in.
        self.kernel_name = kernel_name
        #: The largest file sent to or fetched from a kernel with no shared disk.
        self.max_transfer_bytes = max_transfer_bytes
        #: The cores this run shares with every other run of the process.
        self.budget = budget or budget_for(kernel_manager)
        self.run_id = run_id
        self.kernel_manager = kernel_manager
        self.listeners: list[Listener] = list(listeners or [])
        self.state = RunState.load(store, run_id)
        self.run_dir = self.state.run_dir
        self.planner = Planner(self.state, coder or TemplateCoder())
        self.recorder = Recorder(self.state)
        self.llm_session = LLMSession(self.state, self.planner, emit=self._emit, warn=self._warn)
        self._tasks: dict[asyncio.Task[None], Node] = {}
        #: Finished nodes' saved dev outputs, read once each (see :meth:`_dev_outputs`).
        self._saved_dev: dict[str, dict[str, np.ndarray] | None] = {}
        self.kernels: KernelPool | None = None
        self._stopping = False  # stop() was called: start no more simulations
        self._deadline: float | None = None  # time.monotonic() when this session's budget ends
        #: (elapsed before this session, its time.monotonic() start) while a session runs
        self._clock: tuple[float, float] | None = None

    @property
    def tree(self) -> Tree:
        """The live search tree."""
        return self.state.tree

    @property
    def task(self) -> Task:
        """The run's task."""
        return self.state.task

    @property
    def llm(self) -> LLMClient | None:
        """The run's LLM client while a session with an LLM runs, else ``None``."""
        return self.llm_session.client

    def stage_code(self, stage: str, insight: Insight | None, earlier: list[Insight]) -> str:
        """Code for ``stage`` given the path's earlier insights (see :meth:`Planner.stage_code`)."""
        return self.planner.stage_code(stage, insight, earlier)

    def _save(self) -> None:
        s = self.state
        if self._clock is not None:  # kept current, so a killed session's time still counts
            before, started = self._clock
            s.record.timings.elapsed = before + time.monotonic() - started
        best = s.tree.best(s.task.better)
        s.record.simulations = s.tree.simulations
        s.record.best = BestNode(best.id, best.dev_score, best.test_score) if best else None
        if self.llm is not None:
            s.record.tokens = replace(self.llm.usage)  # a copy: the client keeps counting
        live = self._clock is not None and self.kernels is not None
        s.record.kernel_files = list(self.kernels.connection_files) if live else []
        s.save()

    def _emit(self, kind: str, **payload: Any) -> None:
        event = RunEvent(kind, self.run_id, **payload).to_dict()
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the search
                log.exception("event listener failed on %s", kind)

    def _warn(self, message: str) -> None:
        log.warning("run %s: %s", self.run_id, message)
        self.state.record.warnings.append(message)
        self._emit("run_warning", message=message)

    # -- steering -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Start no more simulations and cancel the running ones; the run ends as ``stopped``."""
        self._stopping = True
        if self.kernels is not None:  # the cancelled simulations' kernels need no restart
            self.kernels.retire()
        for task in list(self._tasks):
            task.cancel()

    def add_insight(self, parent_id: str, text: str) -> Node:
        """Add a user-written insight for the next stage under ``parent_id`` as a new child."""
        parent = self._node(parent_id)
        if self.tree.is_terminal(parent):
            raise SelaInputError(f"node {parent_id} is at max depth; it can have no children")
        if not text.strip():
            raise SelaInputError("an insight needs some text")
        insight = self.state.pool.add_text(STAGES[parent.depth], text.strip(), source="user")
        child = self.tree.add_child(parent, insight)
        self.state.save_insights()
        self._save()
        self._emit("node_added", node=child.to_dict())
        return child

    def prune(self, node_id: str) -> Node:
        """Exclude a node and its subtree from further selection."""
        return self._steer(node_id, self.tree.prune)

    def pin(self, node_id: str) -> Node:
        """Make a node the next one simulated (or expanded, when it already ran)."""
        return self._steer(node_id, self.tree.pin)

    def _steer(self, node_id: str, action: Callable[[str], None]) -> Node:
        node = self._node(node_id)
        try:
            action(node_id)
        except ValueError as exc:
            raise SelaInputError(str(exc)) from exc
        self._save()
        self._emit("node_updated", node=node.to_dict())
        return node

    def _node(self, node_id: str) -> Node:
        if node_id not in self.tree.nodes:
            raise SelaInputError(f"run {self.run_id} has no node {node_id!r}")
        return self.tree[node_id]

    # -- the loop -------------------------------------------------------------------------------
    async def run(self) -> RunRecord:
        """Search until the rollouts or the time budget are spent (or ``stop()``); the run record.

        A session that ends with no successful simulation in the whole run (no kernel would
        start, every simulation failed, or the budget ran out before the first finished) marks
        the run ``failed`` with one line in ``error`` naming the cause and what to do; a stopped
        run stays ``stopped``. Warnings and the failure's traceback go to the run's ``run.log``.
        """
        with run_log(self.run_dir / RUN_LOG, self.run_id):
            return await self._run_session()

    async def _run_session(self) -> RunRecord:
        s = self.state
        opts = s.options
        self._stopping = False
        s.record.final = None  # chosen again when this session ends
        s.record.status = RunStatus.RUNNING
        s.record.pid = os.getpid()
        s.record.error = None
        elapsed_before = s.record.timings.elapsed
        started = time.monotonic()
        self._clock = (elapsed_before, started)
        deadline = (
            started + max(0.0, opts.time_budget - elapsed_before) if opts.time_budget else None
        )
        self._deadline = deadline
        self._save()
        self._emit("run_started", run=self.summary())
        share = self.budget.join(opts.parallel)
        remote = remote_kernels(self.kernel_manager)
        self.kernels = KernelPool(
            self.kernel_manager,
            size=self.budget.kernels_for(opts.parallel),
            kernel_name=self.kernel_name,
            # A gateway's kernel starts on another host, where the run directory does not exist.
            cwd=None if remote else str(self.run_dir),
            files=kernel_files_for(self.kernel_manager, self.run_dir, self.max_transfer_bytes),
            # A gateway's kernels come back after a gateway restart or a lost pod; local ones
            # that will not start are a broken kernel spec, said at once.
            recover_for=REMOTE_RECOVERY_S if remote else 0.0,
            threads_per_kernel=self.budget.threads(),
        )
        failure: Exception | None = None
        try:
            await self.llm_session.start()
            self._save()
            await self.kernels.start()
            await self._loop(deadline)
            status = RunStatus.STOPPED if self._stopping else RunStatus.FINISHED
        except asyncio.CancelledError:
            status = RunStatus.STOPPED
        except Exception as exc:
            failure = exc
            s.record.error = str(exc) if isinstance(exc, SelaError) else describe(exc)
            status = RunStatus.FAILED
        finally:
            # Abandon what still runs (those nodes are cancelled; a spent budget ends here too), and
            # let their kernels go down with the pool instead of restarting first.
            self.kernels.retire()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
                self._tasks.clear()
            await self.kernels.close()
            self.budget.leave(share)
            await self.llm_session.close()
        if status == RunStatus.FINISHED and s.tree.best(s.task.better) is None:
            s.record.error = self._no_result_reason()
            status = RunStatus.FAILED
        if status == RunStatus.FAILED:  # the surfaces show the one line; the run log the rest
            trace.error("run %s failed: %s", self.run_id, s.record.error, exc_info=failure)
        self._finalize()
        s.record.status = status
        s.record.timings.finished = time.time()
        self._save()
        self._clock = None
        self._emit("run_finished", run=self.summary())
        return s.record

    def _no_result_reason(self) -> str:
        """Why a run that searched to its end has no successful node, and what to do about it."""
        failed = [n for n in self.tree if n.status == NodeStatus.FAILED]
        budget = self.state.options.time_budget
        if not failed:
            if budget is not None:
                return (
                    f"the time budget ({budget:g} s) ran out before the first simulation"
                    " finished; give a longer time budget"
                )
            return "no simulation ran: every node of the tree is pruned or exhausted"
        error, count = Counter(n.error or "unknown error" for n in failed).most_common(1)[0]
        if count == len(failed):
            what = f"all {count} simulations failed with: {error}"
        else:
            what = (
                f"all {len(failed)} simulations failed; the most common error"
                f" ({count} of them): {error}"
            )
        return (
            f"{what}; each node's notebook in {self.run_dir / 'nodes'} shows the cell that failed"
        )

    def _finalize(self) -> None:
        """Choose the run's final candidate on dev: a blend of the best nodes, or the best node."""
        s = self.state
        if s.dev_labels is None:
            return
        try:
            blend = final_blend(
                s.task,
                s.tree,
                s.node_dir,
                s.dev_labels.to_numpy(),
                None if s.test_labels is None else s.test_labels.to_numpy(),
                y_cv=None if s.cv_labels is None else s.cv_labels.to_numpy(),
            )
        except Exception:  # the best node stays the answer; a blend is a bonus
            log.exception("final ensemble selection failed for run %s", self.run_id)
            return
        if blend is not None:
            s.record.final = blend.to_record()

    def _rollouts_left(self) -> int | None:
        target = self.state.options.rollouts
        if target is None:
            return None
        return target - self.tree.simulations - len(self._tasks)

    async def _loop(self, deadline: float | None) -> None:
        s = self.state
        while True:
            out_of_time = deadline is not None and time.monotonic() >= deadline
            while not self._stopping and not out_of_time and len(self._tasks) < s.options.parallel:
                left = self._rollouts_left()
                if left is not None and left <= 0:
                    break
                before = set(s.tree.nodes)
                node = s.tree.select(s.pool)
                for new_id in s.tree.nodes.keys() - before:
                    self._emit("node_added", node=s.tree[new_id].to_dict())
                if node is None:
                    break
                s.tree.begin(node)
                task = asyncio.ensure_future(self._simulate(node, deadline))
                self._tasks[task] = node
                self._emit("simulation_started", node=node.to_dict())
                self._save()
            if not self._tasks:
                return
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait(
                set(self._tasks), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                self._tasks.pop(task, None)
                if not task.cancelled() and task.exception():
                    raise task.exception()  # type: ignore[misc]
            if deadline is not None and time.monotonic() >= deadline and self._tasks:
                return  # the budget is spent: run() abandons what still runs

    async def _simulate(self, node: Node, deadline: float | None) -> None:
        assert self.kernels is not None
        t0 = time.time()
        jobs: list[LLMCell] = []
        try:
            pending: list[PendingCell] = []
            plan = self.planner.plan(
                node,
                pending=pending,
                wants_llm=self.llm_session.wants,
                lookup=self.recorder.evaluated,
                cv_time_limit=self._cv_time_limit,
            )
            await self.llm_session.write_cells(plan, pending, jobs, self._save)
        except asyncio.CancelledError:
            self._settle(jobs, ran=False)
            self.tree.cancel(node)
            self._emit("node_updated", node=node.to_dict())
            raise
        except Exception as exc:  # no code for this node: it fails, the search goes on
            log.warning("no code for node %s: %s", node.id, exc)
            self._settle(jobs, ran=False)
            plan = SimulationPlan(setup="", cells=[])
            result = SimulationResult(error=f"no stage code: {_reason(exc)}", error_kind="coder")
            self._finish(node, plan, result, started=t0, jobs=jobs)
            return
        kernel: ChildKernel | None = None
        healthy = False
        try:
            kernel = await self.kernels.acquire()
            plan.cell_cap = self._cell_cap(node)
            # The root runs alone (every other node waits for it): it gets the run's cores.
            async with self.budget.slot(alone=node.parent is None) as threads:
                plan.threads = threads
                if deadline is not None:
                    plan.simulation_timeout = max(
                        1.0, min(plan.simulation_timeout, deadline - time.monotonic())
                    )
                result = await run_simulation_guarded(kernel, plan)
            healthy = result.kernel_healthy
            if result.stopped_at_cap:
                result.error = (
                    f"{result.error}: stopped as a hopeless fit (under a time budget a cell may"
                    f" take {CELL_CAP_FIT_MULTIPLE:g}x the run's median fit time or its parent's,"
                    f" or {CELL_CAP_BUDGET_SHARE:.0%} of the budget, whichever is longest)"
                )
        except BaseException:  # cancelled (stop, budget spent), or the pool lost its kernels
            self._settle(jobs, ran=False)
            self.tree.cancel(node)
            self._emit("node_updated", node=node.to_dict())
            raise
        finally:
            if kernel is not None:
                self.kernels.release(kernel, healthy=healthy)
        self._settle(jobs, ran=True)
        self._finish(node, plan, result, started=t0, jobs=jobs)

    def _settle(self, jobs: list[LLMCell], *, ran: bool) -> None:
        if self.llm_session.settle(jobs, ran=ran):
            self._save()

    def _finish(
        self,
        node: Node,
        plan: SimulationPlan,
        result: SimulationResult,
        *,
        started: float,
        jobs: list[LLMCell],
    ) -> None:
        """Record a finished simulation, save the run and tell the listeners."""
        self.recorder.record(node, plan, result, started, llm=LLMSession.detail(jobs))
        self._save()
        best = self.state.record.best
        self._emit("simulation_finished", node=node.to_dict(), best=best and asdict(best))

    # -- out-of-fold outputs ----------------------------------------------------------------------
    def _cv_time_limit(self, node: Node, dev_score: float, fit_seconds: float) -> float | None:
        """Seconds ``node`` may spend on out-of-fold outputs, or ``None`` to skip them.

        Only nodes that rank among the ``cv_top`` best on dev so far, or that beat every earlier
        node of their model family there (ties count against them either way), and only if the
        folds, estimated from the evaluation's own time, fit before the deadline. The family
        rule lets the final blend mix a linear model or an SVM with the boosters: on a few
        hundred rows their dev scores rarely make the overall top, though the blend gains most
        from models whose errors differ. A node with more than :data:`CV_MAX_ERROR_GAP` more
        error than the best so far is skipped whatever its rank or family, and so is one whose
        dev outputs are an earlier node's (a scaling before trees, say): the blend has them.
        Under a time budget, folds that would take more than :data:`CV_MAX_BUDGET_SHARE` of the
        run's simulation time go only to a node that beats every other. With a dev of at least
        :data:`~.ensemble.DEV_ROWS_TO_JUDGE` rows no node gets them: dev alone judges the final.
        """
        opts = self.state.options
        task = self.task
        dev = self.state.dev_labels
        if dev is not None and dev_judges_alone(len(dev)):
            return None
        as_good = [
            n
            for n in self.tree.nodes.values()
            if n is not node
            and n.status == NodeStatus.DONE
            and n.dev_score is not None
            and not task.better(dev_score, n.dev_score)
        ]
        ties = [n for n in as_good if n.dev_score == dev_score]
        if ties and self._repeats_dev_outputs(node, ties):
            return None
        family = self._model_family(node)
        if len(as_good) >= opts.cv_top and any(self._model_family(n) == family for n in as_good):
            return None
        best = self.tree.best(task.better)
        if (
            best is not None
            and best.dev_score is not None
            and task.error_gap(dev_score, best.dev_score) > CV_MAX_ERROR_GAP
        ):
            return None
        # Dev is one fold (the pipeline fitted on train predicts it already); each of the other
        # k-1 refits fits dev and all but one slice of train: about train's rows at k=3.
        estimate = (opts.cv_folds - 1) * fit_seconds + 0.5
        if (
            opts.time_budget is not None
            and estimate > CV_MAX_BUDGET_SHARE * opts.time_budget * opts.parallel
            and best is not None
            and not task.better(dev_score, best.dev_score)
        ):
            return None
        limit = min(opts.cell_timeout, max(10.0, 3 * estimate))
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left < estimate:
                return None
            limit = min(limit, left)
        return limit

    def _repeats_dev_outputs(self, node: Node, others: list[Node]) -> bool:
        """True when ``node`` saved the very same dev outputs as one of ``others``."""
        mine = self._dev_outputs(node)
        if mine is None:
            return False
        for other in others:
            theirs = self._dev_outputs(other)
            if theirs is None:
                continue
            key = (
                "predict_proba"
                if "predict_proba" in mine and "predict_proba" in theirs
                else "predict"
            )
            if mine[key].shape == theirs[key].shape and np.array_equal(mine[key], theirs[key]):
                return True
        return False

    def _dev_outputs(self, node: Node) -> dict[str, np.ndarray] | None:
        """``node``'s saved dev outputs; a finished node's are read once (they never change)."""
        if node.id in self._saved_dev:
            return self._saved_dev[node.id]
        found = load_outputs(self.state.node_dir(node.id) / PREDICTIONS_FILE)
        outputs = None if found is None else found.get("dev")
        if node.status == NodeStatus.DONE:
            self._saved_dev[node.id] = outputs
        return outputs

    def _cell_cap(self, node: Node) -> float | None:
        """Seconds a stage or evaluation cell of ``node`` may run before it is stopped as a
        hopeless fit, or ``None`` for no limit beyond ``cell_timeout``.

        Only under a time budget, never for the root (it sets the pace), and only once
        :data:`CELL_CAP_MIN_FITS` fits have been timed: :data:`CELL_CAP_FIT_MULTIPLE` times their
        median or the nearest ancestor's fit (a child refits what its parent's stages fit, so a
        slow feature step must not doom the models below it), or
        :data:`CELL_CAP_BUDGET_SHARE` of the budget, whichever is longest. On a 6,000-row table
        a 300-tree random forest took 31 s where the boosters fit in about a second: half a
        60-second run's slot for a model that scored 20 % worse.
        """
        budget = self.state.options.time_budget
        if budget is None or node.parent is None:
            return None
        fits = [n.timings["fit"] for n in self.tree if n.timings.get("fit")]
        if len(fits) < CELL_CAP_MIN_FITS:
            return None
        ancestors = [self.tree.root, *self.tree.path(node)[:-1]]
        inherited = next(
            (n.timings["fit"] for n in reversed(ancestors) if n.timings.get("fit")), 0.0
        )
        typical = max(statistics.median(fits), inherited)
        return max(CELL_CAP_FIT_MULTIPLE * typical, CELL_CAP_BUDGET_SHARE * budget)

    def _model_family(self, node: Node) -> str:
        """The kind of model ``node``'s pipeline fits: the catalog family of its model-stage
        insight (``"xgb"``, ``"linear"``, ...), that insight's id when it is not from the catalog
        (an LLM's), or the default model's family when the path has no model stage yet."""
        return model_family_of(n.insight for n in self.tree.path(node) if n.insight is not None)

    # -- reporting ------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The run record with live counts (what REST and events carry)."""
        return {
            **self.state.record.to_dict(),
            "simulations": self.tree.simulations,
            "running": len(self._tasks),
        }


def _reason(exc: Exception) -> str:
    # str(KeyError) quotes its message; say it plainly.
    return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)


async def run_simulation_guarded(kernel: Any, plan: SimulationPlan) -> SimulationResult:
    """:func:`runner.run_simulation`, turning unexpected harness errors into a failed result."""
    try:
        return await run_simulation(kernel, plan)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return SimulationResult(error=f"{type(exc).__name__}: {exc}", error_kind="kernel_died")
