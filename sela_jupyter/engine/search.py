"""The search loop: select -> expand -> simulate -> backprop, under rollout and time budgets.

:func:`create_run` validates the data, fixes the task, profiles and splits the frame, proposes the
insight pool and writes a new run directory. :class:`Search` then runs (or resumes) it: ``parallel``
simulations at once in a warm kernel pool, each one's result saved the moment it finishes, so a
crash never loses a finished node. Listeners receive events (``run_started``, ``node_added``,
``simulation_started``, ``simulation_finished``, ``run_finished``) as plain JSON-ready dicts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cloudpickle
import nbformat
import pandas as pd

from .catalog import entry_for
from .cells import score_saved_predictions, setup_source
from .coder import DEFAULT_MODEL, StageCodeCache, TemplateCoder
from .cpu import CpuBudget, budget_for
from .ensemble import CV_FILE, PREDICTIONS_FILE, final_blend
from .errors import SelaError, SelaInputError, describe
from .insights import STAGES, BuiltinProposer, Insight, InsightPool
from .llm import DEFAULT_KEY_ENV, LLMBudgetExhausted, LLMClient, LLMConfig, LLMError, TokenUsage
from .mcts import DONE, FAILED, Node, Tree
from .runlog import RUN_LOG, run_log, trace
from .runner import (
    ChildKernel,
    CrossValidation,
    KernelPool,
    SimulationPlan,
    SimulationResult,
    StageCell,
    build_notebook,
    run_simulation,
)
from .store import RunStore, atomic_write_json, atomic_write_text
from .task import DataProfile, Task, prepare_data

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]

# Run statuses. ``queued``: waiting for a server's free slot; ``interrupted``: the process that
# searched it died (resumable, like ``stopped``).
CREATED, QUEUED_RUN, RUNNING, FINISHED, STOPPED, FAILED_RUN, INTERRUPTED = (
    "created",
    "queued",
    "running",
    "finished",
    "stopped",
    "failed",
    "interrupted",
)
#: Statuses of a run that some process is (or should be) working on.
LIVE_STATUSES = (CREATED, QUEUED_RUN, RUNNING)


#: Folds of the out-of-fold judge of the final choice. Three halve the cost of five (each
#: refit sees as many rows as train) and judged as well on the benchmark's runs.
DEFAULT_CV_FOLDS = 3

#: Simulations of a run given neither a rollout count nor a time budget.
DEFAULT_ROLLOUTS = 10


def default_rollouts(
    rollouts: int | None, time_budget: float | None, default: int = DEFAULT_ROLLOUTS
) -> int | None:
    """The rollout count to run with: as given; else ``default`` without a time budget, and no
    count (as many as fit) with one, so a budget alone is never cut short."""
    if rollouts is not None:
        return rollouts
    return None if time_budget else default


@dataclass
class SearchOptions:
    """How long and how wide a run searches; stored in ``run.json`` and reused on resume."""

    rollouts: int | None = DEFAULT_ROLLOUTS
    time_budget: float | None = None  # seconds of wall clock for the whole search
    parallel: int = 1
    seed: int = 0
    max_depth: int = len(STAGES)
    cell_timeout: float = 120.0
    simulation_timeout: float = 300.0
    insights: str = "builtin"  # builtin | llm | both
    reuse_state: bool = True  # resume children from their parent's snapshot (else replay code)
    reuse_fits: bool = True  # a pipeline identical to one already evaluated is not refitted
    #: Out-of-fold outputs over train + dev, for nodes among the ``cv_top`` best on dev when they
    #: finish or best of their model family so far; the final candidate is then chosen on them
    #: (0 folds: choose on dev alone).
    cv_folds: int = DEFAULT_CV_FOLDS
    cv_top: int = 8
    llm: str = ""  # model name on an OpenAI-compatible endpoint; "" = no LLM
    llm_base_url: str = ""  # "" = the openai package's default (api.openai.com)
    llm_key_env: str = DEFAULT_KEY_ENV  # the NAME of the key's environment variable
    llm_timeout: float = 120.0  # seconds per request
    llm_retries: int = 3  # retries on 429, 5xx, timeouts and lost connections
    token_budget: int | None = None  # LLM tokens (prompt + completion) the whole run may use
    fallback: str = ""  # "builtin": LLM insights failing -> the built-in catalog; "" = fail

    def __post_init__(self) -> None:
        if self.rollouts is None and self.time_budget is None:
            raise SelaInputError("give a rollout count, a time budget, or both")
        if self.rollouts is not None and self.rollouts < 1:
            raise SelaInputError(f"rollouts must be at least 1, got {self.rollouts}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise SelaInputError(f"the time budget must be positive, got {self.time_budget}")
        if self.parallel < 1:
            raise SelaInputError(f"parallel must be at least 1, got {self.parallel}")
        if not 1 <= self.max_depth <= len(STAGES):
            raise SelaInputError(f"max_depth must be between 1 and {len(STAGES)}")
        if self.insights not in ("builtin", "llm", "both"):
            raise SelaInputError(f"insights must be llm, builtin or both, got {self.insights!r}")
        if self.insights != "builtin" and not self.llm:
            raise SelaInputError(
                f"insights={self.insights} needs an LLM: give llm=MODEL (or set SELA_MODEL and "
                "an API key), or use insights=builtin"
            )
        if self.fallback not in ("", "builtin"):
            raise SelaInputError(f"fallback must be builtin or empty, got {self.fallback!r}")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise SelaInputError(f"cv_folds must be 0 (off) or at least 2, got {self.cv_folds}")
        if self.cv_top < 1:
            raise SelaInputError(f"cv_top must be at least 1, got {self.cv_top}")
        if self.token_budget is not None and self.token_budget < 1:
            raise SelaInputError(f"the token budget must be positive, got {self.token_budget}")

    def llm_config(self) -> LLMConfig | None:
        """The run's LLM settings (the key stays in its environment variable), or ``None``."""
        if not self.llm:
            return None
        return LLMConfig(
            model=self.llm,
            base_url=self.llm_base_url,
            api_key_env=self.llm_key_env or DEFAULT_KEY_ENV,
            timeout=self.llm_timeout,
            max_retries=self.llm_retries,
            token_budget=self.token_budget,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchOptions:
        """Inverse of ``asdict``, ignoring unknown keys."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def create_run(
    frame: Any,
    target: str,
    *,
    store: RunStore,
    options: SearchOptions,
    test: pd.DataFrame | None = None,
    task_type: str | None = None,
    metric: str | None = None,
    name: str | None = None,
    description: str = "",
    source: str = "",
) -> str:
    """Validate ``frame``, fix the task, split, propose insights and write a new run; its id.

    The caller's frame is never modified: everything downstream works on copies.
    """
    data = prepare_data(
        frame, target, test=test, task_type=task_type, metric=metric, seed=options.seed
    )
    frame, test, task, profile = data.frame, data.test, data.task, data.profile
    train, dev, held_out, target = data.train, data.dev, data.held_out, data.target

    run_id = store.new_run_id(name)
    run_dir = store.run_dir(run_id)
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True)
    frame.to_parquet(data_dir / "frame.parquet")
    train.to_parquet(data_dir / "train.parquet")
    dev.to_parquet(data_dir / "dev.parquet")
    test_frame = test if test is not None else held_out
    has_test_labels = False
    if test_frame is not None:
        if test is not None:
            test.to_parquet(data_dir / "test_input.parquet")
        features = test_frame.drop(columns=[target], errors="ignore")
        features.to_parquet(data_dir / "test_features.parquet")
        if target in test_frame.columns and test_frame[target].notna().all():
            test_frame[[target]].to_parquet(data_dir / "test_labels.parquet")
            has_test_labels = True

    # LLM insights are proposed when the search starts (it is async and may fail over).
    pool = InsightPool() if options.insights == "llm" else BuiltinProposer().propose(profile, task)
    store.write_part(run_id, "insights", pool.to_dict())
    store.write_part(run_id, "code", StageCodeCache().to_dict())
    tree = Tree(max_depth=options.max_depth, seed=options.seed)
    store.write_tree(run_id, tree.to_dict())
    record = {
        "id": run_id,
        "name": name or "",
        "created": time.time(),
        "status": CREATED,
        "pid": os.getpid(),
        "source": source,
        "description": description,
        "options": asdict(options),
        "task": task.to_dict(),
        "profile": profile.to_dict(),
        "warnings": profile.warnings,
        "data": {
            "frame": "data/frame.parquet",
            "has_test_frame": test is not None,
            "has_test_labels": has_test_labels,
            "rows": {
                "train": len(train),
                "dev": len(dev),
                "test": 0 if test_frame is None else len(test_frame),
            },
        },
        "simulations": 0,
        "best": None,
        "timings": {"elapsed": 0.0},
        "tokens": TokenUsage().to_dict(),
        "llm": (
            {"model": options.llm, "base_url": options.llm_base_url, "insights": options.insights}
            if options.llm
            else None
        ),
        "error": None,
    }
    store.write_run(run_id, record)
    return run_id


@dataclass
class _RunState:
    record: dict[str, Any]
    task: Task
    profile: DataProfile
    options: SearchOptions
    tree: Tree
    pool: InsightPool
    code: StageCodeCache
    test_labels: Any = None
    dev_labels: Any = None
    cv_labels: Any = None  # the original training rows' labels, then dev's
    node_started: dict[str, float] = field(default_factory=dict)


def failure_message(run_id: str, record: dict[str, Any], log: Path | None = None) -> str | None:
    """``run X failed: <why>`` for a ``failed`` run record (with where its ``log`` is, when it
    exists), else ``None``."""
    if record.get("status") != FAILED_RUN:
        return None
    where = f" (details in {log})" if log is not None and log.is_file() else ""
    return f"run {run_id} failed: {record.get('error') or 'no simulation succeeded'}{where}"


def mark_interrupted(store: RunStore, run_id: str) -> None:
    """Record that the process searching ``run_id`` died: the run is ``interrupted``
    (resumable) and the nodes it was simulating are cancelled."""
    tree = Tree.from_dict(store.read_tree(run_id))  # running nodes come back cancelled
    store.write_tree(run_id, tree.to_dict())
    record = store.read_run(run_id)
    for name in record.get("kernel_files") or []:  # the dead kernels' connection files
        path = Path(name)
        if path.name.startswith("kernel-") and path.suffix == ".json":
            path.unlink(missing_ok=True)
    record.update(status=INTERRUPTED, simulations=tree.simulations, kernel_files=[])
    record.pop("status_requested", None)
    store.write_run(run_id, record)


def interrupt_orphaned_runs(store: RunStore) -> list[str]:
    """Mark ``interrupted`` every run that a process now gone left searching, queued or just
    created (a server or ``sela run`` that was killed); their ids."""
    return [
        record["id"]
        for record in store.list_runs()
        if interrupt_if_orphaned(store, record) is not record
    ]


def interrupt_if_orphaned(store: RunStore, record: dict[str, Any]) -> dict[str, Any]:
    """``record``, or the run's record re-read after :func:`mark_interrupted` when its process
    is gone (an unreadable run stays as it is)."""
    if not is_orphaned(record):
        return record
    try:
        mark_interrupted(store, record["id"])
        return store.read_run(record["id"])
    except Exception:
        return record


def is_orphaned(record: dict[str, Any]) -> bool:
    """True when the run of ``record`` should be searching (or queued) but its process is gone."""
    return record.get("status") in LIVE_STATUSES and not process_alive(record.get("pid"))


def process_alive(pid: Any) -> bool:
    """True when ``pid`` names a live process (this one included)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


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
    ) -> None:
        self.store = store
        #: The cores this run shares with every other run of the process.
        self.budget = budget or budget_for(kernel_manager)
        self.run_id = run_id
        self.run_dir = store.existing_run_dir(run_id)
        self.kernel_manager = kernel_manager
        self.listeners: list[Listener] = list(listeners or [])
        self.coder = coder or TemplateCoder()
        self.state = self._load()
        self._tasks: dict[asyncio.Task[None], Node] = {}
        self.kernels: KernelPool | None = None
        self.llm: LLMClient | None = None
        self._llm_coder: Any = None
        self._coding: dict[tuple[str, tuple[str, ...]], asyncio.Future[str]] = {}
        self._coding_failed: dict[tuple[str, tuple[str, ...]], str] = {}
        #: pipeline fingerprint -> the node that evaluated it (this session's simulations)
        self._fitted: dict[str, str] = {}
        self._deadline: float | None = None  # time.monotonic() when this session's budget ends
        #: (elapsed before this session, its time.monotonic() start) while a session runs
        self._clock: tuple[float, float] | None = None

    # -- loading and saving ---------------------------------------------------------------------
    def _load(self) -> _RunState:
        record = self.store.read_run(self.run_id)
        task = Task.from_dict(record["task"])
        data = self.run_dir / "data"
        test_labels = _labels(data / "test_labels.parquet", task)
        dev_labels = _labels(data / "dev.parquet", task)
        train_labels = _labels(data / "train.parquet", task)
        cv_labels = (
            None
            if train_labels is None or dev_labels is None
            else pd.concat([train_labels, dev_labels], ignore_index=True)
        )
        return _RunState(
            record=record,
            task=task,
            profile=DataProfile.from_dict(record["profile"]),
            options=SearchOptions.from_dict(record["options"]),
            tree=Tree.from_dict(self.store.read_tree(self.run_id)),
            pool=InsightPool.from_dict(self.store.read_part(self.run_id, "insights")),
            code=StageCodeCache.from_dict(self.store.read_part(self.run_id, "code", {})),
            test_labels=test_labels,
            dev_labels=dev_labels,
            cv_labels=cv_labels,
        )

    @property
    def tree(self) -> Tree:
        """The live search tree."""
        return self.state.tree

    @property
    def task(self) -> Task:
        """The run's task."""
        return self.state.task

    def _save(self) -> None:
        s = self.state
        if self._clock is not None:  # kept current, so a killed session's time still counts
            before, started = self._clock
            s.record["timings"]["elapsed"] = before + time.monotonic() - started
        best = s.tree.best(s.task.better)
        s.record["simulations"] = s.tree.simulations
        s.record["best"] = (
            {"node": best.id, "dev_score": best.dev_score, "test_score": best.test_score}
            if best
            else None
        )
        if self.llm is not None:
            s.record["tokens"] = self.llm.usage.to_dict()
        live = self._clock is not None and self.kernels is not None
        s.record["kernel_files"] = self.kernels.connection_files if live else []
        self.store.write_tree(self.run_id, s.tree.to_dict())
        self.store.write_part(self.run_id, "code", s.code.to_dict())
        self.store.write_run(self.run_id, s.record)

    def _emit(self, kind: str, **payload: Any) -> None:
        event = {"type": kind, "run_id": self.run_id, "time": time.time(), **payload}
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the search
                log.exception("event listener failed on %s", kind)

    # -- steering -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Start no more simulations and cancel the running ones; the run ends as ``stopped``."""
        self.state.record["status_requested"] = STOPPED
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
        self.store.write_part(self.run_id, "insights", self.state.pool.to_dict())
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
    async def run(self) -> dict[str, Any]:
        """Search until the rollouts or the time budget are spent (or ``stop()``); the run record.

        A session that ends with no successful simulation in the whole run (no kernel would
        start, every simulation failed, or the budget ran out before the first finished) marks
        the run ``failed`` with one line in ``error`` naming the cause and what to do; a stopped
        run stays ``stopped``. Warnings and the failure's traceback go to the run's ``run.log``.
        """
        with run_log(self.run_dir / RUN_LOG, self.run_id):
            return await self._run_session()

    async def _run_session(self) -> dict[str, Any]:
        s = self.state
        opts = s.options
        s.record.pop("status_requested", None)
        s.record.pop("final", None)  # chosen again when this session ends
        s.record.update(status=RUNNING, pid=os.getpid(), error=None)
        elapsed_before = float(s.record["timings"].get("elapsed", 0.0))
        started = time.monotonic()
        self._clock = (elapsed_before, started)
        deadline = (
            started + max(0.0, opts.time_budget - elapsed_before) if opts.time_budget else None
        )
        self._deadline = deadline
        self._save()
        self._emit("run_started", run=self.summary())
        share = self.budget.join(opts.parallel)
        self.kernels = KernelPool(
            self.kernel_manager,
            size=self.budget.kernels_for(opts.parallel),
            cwd=str(self.run_dir),
            threads_per_kernel=self.budget.threads(),
        )
        failure: Exception | None = None
        try:
            await self._start_llm()
            await self.kernels.start()
            await self._loop(deadline)
            status = STOPPED if s.record.get("status_requested") == STOPPED else FINISHED
        except asyncio.CancelledError:
            status = STOPPED
        except Exception as exc:
            failure = exc
            s.record["error"] = str(exc) if isinstance(exc, SelaError) else describe(exc)
            status = FAILED_RUN
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
            if self.llm is not None:
                await self.llm.close()
        if status == FINISHED and s.tree.best(s.task.better) is None:
            s.record["error"] = self._no_result_reason()
            status = FAILED_RUN
        if status == FAILED_RUN:  # the surfaces show the one line; the run log keeps the rest
            trace.error("run %s failed: %s", self.run_id, s.record["error"], exc_info=failure)
        self._finalize()
        s.record["status"] = status
        s.record.pop("status_requested", None)
        s.record["timings"]["finished"] = time.time()
        self._save()
        self._clock = None
        self._emit("run_finished", run=self.summary())
        return s.record

    def _no_result_reason(self) -> str:
        """Why a run that searched to its end has no successful node, and what to do about it."""
        failed = [n for n in self.tree if n.status == FAILED]
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
                lambda node_id: self.store.node_dir(self.run_id, node_id),
                s.dev_labels.to_numpy(),
                None if s.test_labels is None else s.test_labels.to_numpy(),
                y_cv=None if s.cv_labels is None else s.cv_labels.to_numpy(),
            )
        except Exception:  # the best node stays the answer; a blend is a bonus
            log.exception("final ensemble selection failed for run %s", self.run_id)
            return
        if blend is not None:
            s.record["final"] = blend.to_dict()

    def _rollouts_left(self) -> int | None:
        target = self.state.options.rollouts
        if target is None:
            return None
        return target - self.tree.simulations - len(self._tasks)

    async def _loop(self, deadline: float | None) -> None:
        s = self.state
        while True:
            stopping = s.record.get("status_requested") == STOPPED
            out_of_time = deadline is not None and time.monotonic() >= deadline
            while not stopping and not out_of_time and len(self._tasks) < s.options.parallel:
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
        s = self.state
        assert self.kernels is not None
        t0 = time.time()
        jobs: list[_LLMCell] = []
        try:
            pending: list[tuple[StageCell, Insight, list[Insight]]] = []
            plan = self.plan(node, pending=pending)
            await self._write_llm_cells(plan, pending, jobs)
        except asyncio.CancelledError:
            self._settle_llm_cells(jobs, ran=False)
            s.tree.cancel(node)
            self._emit("node_updated", node=node.to_dict())
            raise
        except Exception as exc:  # no code for this node: it fails, the search goes on
            log.warning("no code for node %s: %s", node.id, exc)
            self._settle_llm_cells(jobs, ran=False)
            plan = SimulationPlan(setup="", cells=[])
            result = SimulationResult(error=f"no stage code: {_reason(exc)}", error_kind="coder")
            self._record(node, plan, result, started=t0, llm=self._llm_detail(jobs))
            return
        kernel: ChildKernel | None = None
        healthy = False
        try:
            kernel = await self.kernels.acquire()
            async with self.budget.slot() as threads:
                plan.threads = threads
                if deadline is not None:
                    plan.simulation_timeout = max(
                        1.0, min(plan.simulation_timeout, deadline - time.monotonic())
                    )
                result = await run_simulation_guarded(kernel, plan)
            healthy = result.kernel_healthy
        except BaseException:  # cancelled (stop, budget spent), or the pool lost its kernels
            self._settle_llm_cells(jobs, ran=False)
            s.tree.cancel(node)
            self._emit("node_updated", node=node.to_dict())
            raise
        finally:
            if kernel is not None:
                self.kernels.release(kernel, healthy=healthy)
        self._settle_llm_cells(jobs, ran=True)
        self._record(node, plan, result, started=t0, llm=self._llm_detail(jobs))

    # -- the LLM ----------------------------------------------------------------------------------
    async def _start_llm(self) -> None:
        """Open the run's LLM client and, the first time, have it propose the run's insights.

        Without a usable LLM (no key, endpoint down, unreadable replies) the run fails with the
        reason, or with ``fallback=builtin`` goes on with the built-in catalog.
        """
        s = self.state
        opts = s.options
        config = opts.llm_config()
        if config is None:
            return
        from .llm_coder import LLMCoder
        from .llm_insights import LLMProposer

        self.llm = LLMClient(config, used=TokenUsage.from_dict(s.record.get("tokens")))
        try:
            if not config.enabled:
                raise LLMError(
                    f"model {config.model}: no API key in the environment variable "
                    f"{config.api_key_env} and no base URL"
                )
            if opts.insights != "builtin" and not s.record.get("llm_insights_proposed"):
                self._emit("llm_started", purpose="insights", model=config.model)
                await LLMProposer(self.llm).propose(
                    s.profile,
                    s.task,
                    description=str(s.record.get("description") or ""),
                    stages=STAGES[: opts.max_depth],
                    pool=s.pool,
                )
                s.record["llm_insights_proposed"] = True
                self.store.write_part(self.run_id, "insights", s.pool.to_dict())
        except LLMError as exc:
            if opts.fallback != "builtin":
                raise
            self._warn(f"{exc}; the search uses the built-in insight catalog")
            if not any(i.source == "builtin" for i in s.pool):
                for insight in BuiltinProposer().propose(s.profile, s.task):
                    if insight.id not in s.pool:
                        s.pool.add(insight)
                self.store.write_part(self.run_id, "insights", s.pool.to_dict())
            s.record["llm_insights_proposed"] = True
            if not config.enabled:
                self.llm = None
        if self.llm is not None:
            description = str(s.record.get("description") or "")
            self._llm_coder = LLMCoder(self.llm, s.profile, s.task, description)
        self._save()

    def _warn(self, message: str) -> None:
        log.warning("run %s: %s", self.run_id, message)
        self.state.record.setdefault("warnings", []).append(message)
        self._emit("run_warning", message=message)

    def _wants_llm(self, insight: Insight | None) -> bool:
        """True when ``insight`` is coded by the LLM coder: a user or LLM insight, with an LLM
        configured and tokens left. Built-in insights and defaults keep the template coder."""
        return (
            insight is not None
            and insight.source in ("llm", "user")
            and self._llm_coder is not None
            and self.llm is not None
            and self.llm.budget_left != 0
        )

    async def _write_llm_cells(
        self,
        plan: SimulationPlan,
        pending: list[tuple[StageCell, Insight, list[Insight]]],
        jobs: list[_LLMCell],
    ) -> None:
        """Ask the LLM coder for the plan's uncached stage cells, in path order.

        A cell some other simulation is writing right now is awaited, not asked again; a cell
        whose writing failed in this session fails this node too (it is never asked twice).
        """
        from .llm_coder import contract_check_source

        s = self.state
        ordered = plan.replay + plan.cells
        for cell, insight, earlier in pending:
            key = (cell.stage, s.code.key_for(cell.stage, insight, earlier))
            while key in self._coding:
                await self._coding[key].wait()
            code = s.code.get(*key)
            if code is not None:
                cell.source = code
                continue
            if key in self._coding_failed:
                raise LLMError(self._coding_failed[key])
            done = asyncio.Event()
            self._coding[key] = done
            entry = _LLMCell(cell=cell, key=key, done=done)
            jobs.append(entry)
            before = ordered[: ordered.index(cell)]
            entry.job = self._llm_coder.job(
                cell.stage, insight, [(c.stage, c.source) for c in before]
            )
            try:
                cell.source = await entry.job.first()
            except LLMBudgetExhausted:
                entry.job = None
                cell.source = self.stage_code(cell.stage, insight, earlier)  # closest built-in
                continue
            except LLMError as exc:
                self._coding_failed[key] = f"the LLM coder failed on {cell.stage}: {exc}"
                raise LLMError(self._coding_failed[key]) from None
            finally:
                self._save()
            cell.repair = entry.job.repair
            cell.check = contract_check_source(cell.stage, s.record["data"]["rows"]["dev"])

    def _settle_llm_cells(self, jobs: list[_LLMCell], *, ran: bool) -> None:
        """Cache what the LLM wrote (the last version, working or not) and wake waiters."""
        for entry in jobs:
            if entry.job is not None and (ran or entry.job.replies):
                self.state.code.put(entry.key[0], entry.key[1], entry.cell.source)
            self._coding.pop(entry.key, None)
            entry.done.set()
        jobs_done = [e for e in jobs if e.job is not None]
        if jobs_done:
            self._save()

    @staticmethod
    def _llm_detail(jobs: list[_LLMCell]) -> dict[str, Any] | None:
        """Tokens and attempts of a node's LLM-written cells, for its ``result.json``."""
        used = [e for e in jobs if e.job is not None]
        if not used:
            return None
        tokens = TokenUsage()
        for entry in used:
            tokens.add(entry.job.usage)
        return {
            "tokens": tokens.to_dict(),
            "cells": {
                e.cell.stage: {"replies": e.job.replies, "ran": e.cell.attempts, "log": e.job.log}
                for e in used
            },
        }

    # -- planning and recording -----------------------------------------------------------------
    def stage_code(self, stage: str, insight: Insight | None, earlier: list[Insight]) -> str:
        """Code for ``stage`` given the path's earlier insights; asked of the coder at most once."""
        cache = self.state.code
        key = cache.key_for(stage, insight, earlier)
        code = cache.get(stage, key)
        if code is None:
            code = self.coder.stage_code(stage, insight, earlier, self.state.profile, self.task)
            cache.put(stage, key, code)
        return code

    def plan(
        self,
        node: Node,
        *,
        pending: list[tuple[StageCell, Insight, list[Insight]]] | None = None,
    ) -> SimulationPlan:
        """The cells that simulate ``node``: its path's stage code, defaults after it, evaluation.

        With a ``pending`` list, path cells that the LLM coder must write (not cached yet) are
        left empty and listed there as ``(cell, insight, earlier insights)``.
        """
        s = self.state
        tree = s.tree
        data = self.run_dir / "data"
        test_path = data / "test_features.parquet"
        setup = setup_source(
            self.task,
            train_path=str(data / "train.parquet"),
            dev_path=str(data / "dev.parquet"),
            test_path=str(test_path) if test_path.is_file() else None,
        )
        path = tree.path(node)
        insights = [n.insight for n in path if n.insight is not None]
        node_dir = self.store.node_dir(self.run_id, node.id)
        node_dir.mkdir(parents=True, exist_ok=True)
        cells: list[StageCell] = []
        replay: list[StageCell] = []
        for depth, path_node in enumerate(path, start=1):
            stage = STAGES[depth - 1]
            earlier = insights[: depth - 1]
            llm_cell = (
                pending is not None
                and self._wants_llm(path_node.insight)
                and s.code.get(stage, s.code.key_for(stage, path_node.insight, earlier)) is None
            )
            code = "" if llm_cell else self.stage_code(stage, path_node.insight, earlier)
            own = path_node is node
            cell = StageCell(
                stage=stage,
                source=code,
                role="path",
                node_id=path_node.id,
                snapshot_path=str(node_dir / "snapshot.pkl")
                if own and s.options.reuse_state
                else None,
            )
            (cells if own else replay).append(cell)
            if llm_cell:
                assert pending is not None and path_node.insight is not None
                pending.append((cell, path_node.insight, earlier))
        for stage in STAGES[node.depth :]:
            code = self.stage_code(stage, None, insights)
            if code.strip():
                cells.append(StageCell(stage=stage, source=code, role="default"))
        restore_from = None
        if node.parent is not None and s.options.reuse_state:
            parent_snapshot = self.store.node_dir(self.run_id, node.parent) / "snapshot.pkl"
            if parent_snapshot.is_file():
                restore_from = str(parent_snapshot)
        return SimulationPlan(
            setup=setup,
            cells=cells,
            replay=replay,
            restore_from=restore_from,
            root_snapshot_path=str(node_dir / "snapshot.pkl")
            if node.parent is None and s.options.reuse_state
            else None,
            predictions_path=str(node_dir / PREDICTIONS_FILE),
            lookup=self._evaluated if s.options.reuse_fits else None,
            cross_validation=CrossValidation(
                path=str(node_dir / CV_FILE),
                train_path=str(data / "train.parquet"),
                folds=s.options.cv_folds,
                wants=functools.partial(self._cv_time_limit, node),
            )
            if s.options.cv_folds
            else None,
            cell_timeout=s.options.cell_timeout,
            simulation_timeout=s.options.simulation_timeout,
        )

    def _evaluated(self, fingerprint: str) -> tuple[str, float] | None:
        """The finished node that evaluated the pipeline with ``fingerprint``, and its dev score."""
        node_id = self._fitted.get(fingerprint)
        if node_id is None:
            return None
        node = self.tree[node_id]
        saved = self.store.node_dir(self.run_id, node_id) / PREDICTIONS_FILE
        if node.dev_score is None or not saved.is_file():
            return None
        return node_id, node.dev_score

    def _cv_time_limit(self, node: Node, dev_score: float, fit_seconds: float) -> float | None:
        """Seconds ``node`` may spend on out-of-fold outputs, or ``None`` to skip them.

        Only nodes that rank among the ``cv_top`` best on dev so far, or that beat every earlier
        node of their model family there (ties count against them either way), and only if the
        folds, estimated from the evaluation's own time, fit before the deadline. The family
        rule lets the final blend mix a linear model or an SVM with the boosters: on a few
        hundred rows their dev scores rarely make the overall top, though the blend gains most
        from models whose errors differ.
        """
        opts = self.state.options
        task = self.task
        as_good = [
            n
            for n in self.tree.nodes.values()
            if n is not node
            and n.status == DONE
            and n.dev_score is not None
            and not task.better(dev_score, n.dev_score)
        ]
        family = self._model_family(node)
        if len(as_good) >= opts.cv_top and any(self._model_family(n) == family for n in as_good):
            return None
        # Each fold refits on (k-1)/k of train + dev: about as many rows as train alone at k=3.
        estimate = opts.cv_folds * fit_seconds + 0.5
        limit = min(opts.cell_timeout, max(10.0, 3 * estimate))
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left < estimate:
                return None
            limit = min(limit, left)
        return limit

    def _model_family(self, node: Node) -> str:
        """The kind of model ``node``'s pipeline fits: the catalog family of its model-stage
        insight (``"xgb"``, ``"linear"``, ...), that insight's id when it is not from the catalog
        (an LLM's), or the default model's family when the path has no model stage yet."""
        for path_node in self.tree.path(node):
            insight = path_node.insight
            if insight is None or insight.stage != "model":
                continue
            try:
                return str(entry_for(insight.id).spec.get("family", insight.id))
            except KeyError:
                return insight.id
        return str(DEFAULT_MODEL["family"])

    def _record(
        self,
        node: Node,
        plan: SimulationPlan,
        result: SimulationResult,
        started: float,
        llm: dict[str, Any] | None = None,
    ) -> None:
        s = self.state
        node_dir = self.store.node_dir(self.run_id, node.id)
        test_score = None
        predictions = Path(plan.predictions_path) if plan.predictions_path else None
        if result.reused_from and predictions is not None:
            source = self.store.node_dir(self.run_id, result.reused_from) / PREDICTIONS_FILE
            shutil.copyfile(source, predictions)  # the same pipeline: the same outputs
            source_cv = source.with_name(CV_FILE)
            if source_cv.is_file():
                shutil.copyfile(source_cv, node_dir / CV_FILE)
        elif result.fingerprint and result.error is None:
            self._fitted.setdefault(result.fingerprint, node.id)
        has_labels = s.test_labels is not None
        if result.error is None and has_labels and predictions and predictions.is_file():
            try:
                with predictions.open("rb") as f:
                    saved = cloudpickle.load(f)["test"]
                test_score = score_saved_predictions(self.task, s.test_labels.to_numpy(), saved)
            except Exception as exc:  # a test score is a report, never a reason to fail a node
                log.warning("test scoring failed for %s: %s", node.id, exc)
        node.timings = {
            "started": started,
            "finished": time.time(),
            **{k: round(v, 4) for k, v in result.timings.items()},
        }
        reward = 0.0 if result.error else self.task.reward(result.dev_score)
        s.tree.finish(
            node,
            reward=reward,
            dev_score=None if result.error else result.dev_score,
            test_score=test_score,
            error=result.error,
        )
        ancestors = self._ancestor_cells(node) if result.restored else []
        insights = self.tree.insights(node)
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
                "run": self.run_id,
                "node": node.id,
                "dev_score": node.dev_score,
                "restored_from": node.parent if result.restored else None,
            },
        )
        atomic_write_text(node_dir / "notebook.ipynb", nbformat.writes(notebook))
        own = [c for c in plan.cells if c.role == "path"]
        for cell in own:
            atomic_write_text(node_dir / f"{cell.stage}.py", cell.source + "\n")
        atomic_write_text(
            node_dir / "log.txt",
            result.output_tail(20000) + (f"\n{result.traceback}\n" if result.traceback else ""),
        )
        detail = {
            "node": node.to_dict(),
            "insights": [i.to_dict() for i in insights],
            "code": {c.stage: c.source for c in plan.replay + plan.cells},
            "code_roles": {c.stage: c.role for c in plan.replay + plan.cells},
            "output_tail": result.output_tail(4000),
            "error": result.error,
            "error_kind": result.error_kind,
            "traceback": result.traceback,
            "restored": result.restored,
            "reused_from": result.reused_from,
            "cv_rows": result.cv_rows,
            "cv_error": result.cv_error,
            "timings": node.timings,
            "notebook": str(node_dir / "notebook.ipynb"),
            "tokens": (llm or {}).get("tokens", TokenUsage().to_dict()),
            "llm": (llm or {}).get("cells"),
        }
        atomic_write_json(node_dir / "result.json", detail)
        self._save()
        self._emit("simulation_finished", node=node.to_dict(), best=s.record["best"])

    def _ancestor_cells(self, node: Node) -> list[Any]:
        """The parent's setup and path cells, outputs included, for a node that resumed."""
        if node.parent is None:
            return []
        parent_nb = self.store.node_dir(self.run_id, node.parent) / "notebook.ipynb"
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

    # -- reporting ------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """The run record with live counts (what REST and events carry)."""
        record = dict(self.state.record)
        record["simulations"] = self.tree.simulations
        record["running"] = len(self._tasks)
        return record


@dataclass
class _LLMCell:
    """A stage cell the LLM coder writes for one simulation."""

    cell: StageCell
    key: tuple[str, tuple[str, ...]]
    done: asyncio.Event
    job: Any = None  # llm_coder.StageJob; None when the budget sent it to the template coder


def _labels(path: Path, task: Task) -> pd.Series | None:
    """The target column of a stored frame, as class codes for classification."""
    if not path.is_file():
        return None
    y = pd.read_parquet(path, columns=[task.target])[task.target]
    if task.is_classification:
        y = y.map({label: code for code, label in enumerate(task.classes)})
    return y


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
