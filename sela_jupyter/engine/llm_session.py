"""A run's LLM for one search session: proposing the insights, and writing stage cells.

:meth:`LLMSession.start` opens the client and, the first time a run starts, has the LLM propose
its insights (falling back to the built-in catalog with ``fallback=builtin``).
:meth:`LLMSession.write_cells` has the LLM coder write the uncached cells of a simulation plan:
a cell another simulation is writing is awaited, not asked twice; a cell whose writing failed in
this session fails every node that needs it. :meth:`LLMSession.settle` caches what was written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .catalog import BuiltinProposer
from .insights import STAGES, Insight
from .llm import LLMBudgetExhausted, LLMClient, LLMError, TokenUsage
from .planning import PendingCell, Planner
from .run_state import RunState
from .runner import SimulationPlan, StageCell

log = logging.getLogger(__name__)

#: ``(kind, payload)`` -> an event to the run's listeners.
Emit = Callable[..., None]
#: A line for the run's warnings (kept in ``run.json`` and sent as an event).
Warn = Callable[[str], None]


@dataclass
class LLMCell:
    """A stage cell the LLM coder writes for one simulation."""

    cell: StageCell
    key: tuple[str, tuple[str, ...]]
    done: asyncio.Event
    job: Any = None  # llm_coder.StageJob; None when the budget sent it to the template coder


class LLMSession:
    """The LLM of one search session of a run (``client`` is ``None`` without one)."""

    def __init__(self, state: RunState, planner: Planner, *, emit: Emit, warn: Warn) -> None:
        self.state = state
        self.planner = planner
        self._emit = emit
        self._warn = warn
        self.client: LLMClient | None = None
        self._coder: Any = None  # llm_coder.LLMCoder
        self._coding: dict[tuple[str, tuple[str, ...]], asyncio.Event] = {}
        self._coding_failed: dict[tuple[str, tuple[str, ...]], str] = {}

    async def start(self) -> None:
        """Open the run's LLM client and, the first time, have it propose the run's insights.

        Without a usable LLM (no key, endpoint down, unreadable replies) this raises the reason,
        or with ``fallback=builtin`` the run goes on with the built-in catalog.
        """
        s = self.state
        opts = s.options
        config = opts.llm_config()
        if config is None:
            return
        from .llm_coder import LLMCoder
        from .llm_insights import LLMProposer

        self.client = LLMClient(config, used=replace(s.record.tokens))
        try:
            if not config.enabled:
                raise LLMError(
                    f"model {config.model}: no API key in the environment variable "
                    f"{config.api_key_env} and no base URL"
                )
            if opts.insights != "builtin" and not s.record.llm_insights_proposed:
                self._emit("llm_started", purpose="insights", model=config.model)
                await LLMProposer(self.client).propose(
                    s.profile,
                    s.task,
                    description=s.record.description,
                    stages=STAGES[: opts.max_depth],
                    pool=s.pool,
                )
                s.record.llm_insights_proposed = True
                s.save_insights()
        except LLMError as exc:
            if opts.fallback != "builtin":
                raise
            self._warn(f"{exc}; the search uses the built-in insight catalog")
            if not any(i.source == "builtin" for i in s.pool):
                for insight in BuiltinProposer().propose(s.profile, s.task):
                    if insight.id not in s.pool:
                        s.pool.add(insight)
                s.save_insights()
            s.record.llm_insights_proposed = True
            if not config.enabled:
                self.client = None
        if self.client is not None:
            self._coder = LLMCoder(self.client, s.profile, s.task, s.record.description)

    async def close(self) -> None:
        """Close the client (the session is over)."""
        if self.client is not None:
            await self.client.close()

    def wants(self, insight: Insight | None) -> bool:
        """True when ``insight`` is coded by the LLM coder: a user or LLM insight, with an LLM
        configured and tokens left. Built-in insights and defaults keep the template coder."""
        return (
            insight is not None
            and insight.source in ("llm", "user")
            and self._coder is not None
            and self.client is not None
            and self.client.budget_left != 0
        )

    async def write_cells(
        self,
        plan: SimulationPlan,
        pending: list[PendingCell],
        jobs: list[LLMCell],
        save: Callable[[], None],
    ) -> None:
        """Ask the LLM coder for the plan's uncached stage cells, in path order, listing each
        job in ``jobs`` (for :meth:`settle`) and calling ``save`` after each reply.

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
            entry = LLMCell(cell=cell, key=key, done=done)
            jobs.append(entry)
            before = ordered[: ordered.index(cell)]
            entry.job = self._coder.job(cell.stage, insight, [(c.stage, c.source) for c in before])
            try:
                cell.source = await entry.job.first()
            except LLMBudgetExhausted:
                entry.job = None
                cell.source = self.planner.stage_code(cell.stage, insight, earlier)  # built-in
                continue
            except LLMError as exc:
                self._coding_failed[key] = f"the LLM coder failed on {cell.stage}: {exc}"
                raise LLMError(self._coding_failed[key]) from None
            finally:
                save()
            cell.repair = entry.job.repair
            cell.check = contract_check_source(cell.stage, s.record.data.rows.dev)

    def settle(self, jobs: list[LLMCell], *, ran: bool) -> bool:
        """Cache what the LLM wrote (the last version, working or not) and wake waiters; True
        when something was written (the caller saves the run)."""
        for entry in jobs:
            if entry.job is not None and (ran or entry.job.replies):
                self.state.code.put(entry.key[0], entry.key[1], entry.cell.source)
            self._coding.pop(entry.key, None)
            entry.done.set()
        return any(e.job is not None for e in jobs)

    @staticmethod
    def detail(jobs: list[LLMCell]) -> dict[str, Any] | None:
        """Tokens and attempts of a node's LLM-written cells, for its ``result.json``."""
        used = [e for e in jobs if e.job is not None]
        if not used:
            return None
        tokens = TokenUsage()
        for entry in used:
            tokens.add(entry.job.usage)
        return {
            "tokens": tokens,
            "cells": {
                e.cell.stage: {"replies": e.job.replies, "ran": e.cell.attempts, "log": e.job.log}
                for e in used
            },
        }
