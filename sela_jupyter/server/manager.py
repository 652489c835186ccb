"""Runs owned by one Jupyter server: start, stop, resume, delete and steer, with events.

:class:`RunManager` is the only place the server extension touches the engine. Each active run is a
:class:`~sela_jupyter.engine.search.Search` driven by an asyncio task on the server's event loop,
with kernels from the server's kernel manager (so a configured gateway makes them remote). Engine
events are re-emitted on the server's event bus under :data:`EVENT_SCHEMA_ID`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import logging
import os
import secrets
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from ..engine.errors import RunNotFoundError, SelaInputError
from ..engine.kernel_files import MAX_TRANSFER_BYTES
from ..engine.new_run import create_run
from ..engine.options import REQUEST_OPTIONS, SearchOptions, build_options
from ..engine.records import NodeDetail, RunEvent
from ..engine.run_status import interrupt_if_orphaned, interrupt_orphaned_runs
from ..engine.search import Search
from ..engine.statuses import RunStatus
from ..engine.store import RunStore, validate_id

EVENT_SCHEMA_ID = "https://events.sela-jupyter.org/sela_jupyter/run/v1"
EVENT_SCHEMA_PATH = Path(__file__).parent / "events" / "run.yaml"

#: Where a client on the same host drops a DataFrame's parquet file before starting a run.
INCOMING_DIR = ".incoming"

#: Keys of ``run.json`` carried by run summaries (lists, events); the profile stays in the detail.
SUMMARY_KEYS = (
    "id",
    "name",
    "created",
    "status",
    "source",
    "description",
    "options",
    "task",
    "simulations",
    "running",
    "best",
    "final",
    "timings",
    "tokens",
    "warnings",
    "error",
)


#: The fields of a start request (``POST /sela/api/runs``).
START_FIELDS = frozenset(
    {"target", "data", "test", "task", "metric", "name", "description", "source", "options"}
)


class RunBusyError(SelaInputError):
    """The run is active and the request needs it idle (or the other way round)."""


class TooManyRunsError(SelaInputError):
    """``max_concurrent_runs`` runs are searching and ``max_queued_runs`` more wait already."""


def summarize(record: dict[str, Any], *, active: bool) -> dict[str, Any]:
    """The compact form of a run record used by run lists and events."""
    out = {k: record.get(k) for k in SUMMARY_KEYS if k in record}
    out["active"] = active
    return out


@dataclass
class ActiveRun:
    """A run this server is searching right now."""

    search: Search
    task: asyncio.Task[Any] | None = None
    keepalive: asyncio.Task[Any] | None = None
    kernel_ids: set[str] = field(default_factory=set)


class RunManager:
    """Runs of one server: a :class:`RunStore` plus the searches currently running in it."""

    def __init__(
        self,
        store: RunStore,
        *,
        kernel_manager: Any = None,
        event_logger: Any = None,
        max_concurrent_runs: int = 2,
        max_queued_runs: int = 8,
        defaults: dict[str, Any] | None = None,
        keepalive_interval: float = 10.0,
        kernel_name: str = "python3",
        max_transfer_bytes: int = MAX_TRANSFER_BYTES,
        log: logging.Logger | None = None,
    ) -> None:
        self.store = store
        self.kernel_manager = kernel_manager
        self.kernel_name = kernel_name
        self.max_transfer_bytes = max_transfer_bytes
        self.event_logger = event_logger
        self.max_concurrent_runs = max(1, max_concurrent_runs)
        self.max_queued_runs = max(0, max_queued_runs)
        self.defaults = dict(defaults or {})
        self.keepalive_interval = keepalive_interval
        self.log = log or logging.getLogger(__name__)
        self.active: dict[str, ActiveRun] = {}
        #: Runs waiting for a free slot, oldest first.
        self.queue: deque[str] = deque()
        #: Start requests admitted whose run is still being created.
        self._admitted = 0
        interrupt_orphaned_runs(store)  # what a server that died left searching or queued

    # -- data handover ------------------------------------------------------------------------
    @property
    def incoming_dir(self) -> Path:
        """Where same-host clients write a frame's parquet file (inside the runs directory)."""
        return self.store.root / INCOMING_DIR

    def read_frame(self, spec: Any, what: str = "data") -> pd.DataFrame | None:
        """A DataFrame from a request's ``{"file": NAME}`` or ``{"parquet_base64": ...}``.

        ``file`` names a parquet file in :attr:`incoming_dir` (a bare, validated file name, never a
        path); it is removed once read. ``parquet_base64`` is an upload of the parquet bytes.
        """
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise SelaInputError(
                f"'{what}' must be an object with 'file' (a name in the server's incoming "
                "directory) or 'parquet_base64' (the parquet bytes, base64-encoded)"
            )
        if "file" in spec:
            name = validate_id(str(spec["file"]), f"{what} file name")
            path = self.incoming_dir / name
            if not path.is_file():
                raise SelaInputError(
                    f"no file {name!r} in the server's incoming directory {self.incoming_dir}; "
                    "upload the data as 'parquet_base64' when client and server do not share a disk"
                )
            try:
                return pd.read_parquet(path)
            finally:
                with contextlib.suppress(OSError):
                    path.unlink()
        if "parquet_base64" in spec:
            if not isinstance(spec["parquet_base64"], str):
                raise SelaInputError(f"'{what}.parquet_base64' must be a base64 string")
            try:
                raw = _b64decode(spec["parquet_base64"])
                return pd.read_parquet(io.BytesIO(raw))
            except (binascii.Error, ValueError, OSError) as exc:
                raise SelaInputError(
                    f"'{what}.parquet_base64' is not base64-encoded parquet: {exc}"
                ) from exc
        raise SelaInputError(f"'{what}' needs 'file' or 'parquet_base64'")

    def new_incoming_name(self) -> str:
        """A fresh file name for :attr:`incoming_dir`."""
        return f"frame-{secrets.token_hex(8)}.parquet"

    # -- options --------------------------------------------------------------------------------
    def search_options(self, given: dict[str, Any] | None) -> SearchOptions:
        """Request options over the server's defaults, validated (see
        :func:`~sela_jupyter.engine.options.build_options`)."""
        if given is not None and not isinstance(given, dict):
            raise SelaInputError("'options' must be an object, e.g. {\"rollouts\": 10}")
        return build_options(given or {}, self.defaults, allowed=REQUEST_OPTIONS)

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, body: dict[str, Any]) -> str:
        """Create a run from a request body (see the OpenAPI file) and start searching it, or
        queue it behind ``max_concurrent_runs`` runs. Everything is checked, and the request
        admitted or refused (:class:`TooManyRunsError`), before anything is written; the upload
        is decoded off the event loop."""
        if not isinstance(body, dict):
            raise SelaInputError("the request body must be a JSON object")
        unknown = sorted(set(body) - START_FIELDS)
        if unknown:
            raise SelaInputError(
                f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(START_FIELDS))}"
                " (search settings such as rollouts go in 'options')"
            )
        target = body.get("target")
        if not isinstance(target, str) or not target:
            raise SelaInputError("'target' is required: the name of the column to predict")
        for key in ("name", "task", "metric", "description", "source"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise SelaInputError(f"'{key}' must be a string")
        options = self.search_options(body.get("options"))
        if body.get("data") is None:
            raise SelaInputError("'data' is required: the DataFrame to search a pipeline for")
        try:
            self._admit()
        except TooManyRunsError:
            for what in ("data", "test"):
                self.discard_incoming(body.get(what))
            raise
        try:
            loop = asyncio.get_running_loop()
            frame = await loop.run_in_executor(None, self.read_frame, body.get("data"), "data")
            test = await loop.run_in_executor(None, self.read_frame, body.get("test"), "test")
            run_id = await loop.run_in_executor(
                None,
                partial(
                    create_run,
                    frame,
                    target,
                    store=self.store,
                    options=options,
                    test=test,
                    task_type=body.get("task") or None,
                    metric=body.get("metric") or None,
                    name=body.get("name") or None,
                    description=body.get("description") or "",
                    source=body.get("source") or "rest",
                ),
            )
        finally:
            self._admitted -= 1
        self._launch_or_queue(run_id)
        return run_id

    def _admit(self) -> None:
        """Count one more run to search or queue, or refuse it when every slot and queue place
        is taken. Synchronous, so requests that arrive together cannot all pass."""
        self._check_room()
        self._admitted += 1

    def _check_room(self) -> None:
        """:class:`TooManyRunsError` when every slot and queue place is taken."""
        taken = len(self.active) + len(self.queue) + self._admitted
        if taken >= self.max_concurrent_runs + self.max_queued_runs:
            raise TooManyRunsError(
                f"{len(self.active)} run(s) are searching (SelaApp.max_concurrent_runs is "
                f"{self.max_concurrent_runs}) and {len(self.queue) + self._admitted} wait "
                f"(SelaApp.max_queued_runs is {self.max_queued_runs}); stop one "
                "(POST /sela/api/runs/<id>/stop) or try again later"
            )

    def _launch_or_queue(self, run_id: str) -> None:
        """Search ``run_id`` now if a slot is free and nobody waits, else queue it."""
        if len(self.active) < self.max_concurrent_runs and not self.queue:
            self.launch(run_id)
            return
        self.queue.append(run_id)
        record = self.store.read_run(run_id)
        record.status, record.pid = RunStatus.QUEUED, os.getpid()  # this server holds it now
        self.store.write_run(record)
        self._emit(RunEvent("run_queued", run_id, run=record.to_dict()).to_dict())

    def _start_queued(self) -> None:
        """Launch queued runs, oldest first, while slots are free."""
        while self.queue and len(self.active) < self.max_concurrent_runs:
            run_id = self.queue.popleft()
            try:
                self.launch(run_id)
            except Exception:  # deleted meanwhile, say: the next one
                self.log.exception("could not start queued SELA run %s", run_id)

    def discard_incoming(self, spec: Any) -> None:
        """Remove the incoming file a refused request named, so it leaves nothing behind."""
        if isinstance(spec, dict) and isinstance(spec.get("file"), str):
            with contextlib.suppress(SelaInputError, OSError):
                (self.incoming_dir / validate_id(spec["file"], "file name")).unlink()

    def launch(self, run_id: str) -> ActiveRun:
        """Start (or resume) searching a stored run on this server's loop, now."""
        if run_id in self.active:
            raise RunBusyError(f"run {run_id} is already searching")
        search = Search(
            self.store,
            run_id,
            kernel_manager=self.kernel_manager,
            listeners=[self._emit],
            kernel_name=self.kernel_name,
            max_transfer_bytes=self.max_transfer_bytes,
        )
        active = ActiveRun(search=search)
        self.active[run_id] = active
        active.task = asyncio.ensure_future(self._drive(run_id, active))
        return active

    async def _drive(self, run_id: str, active: ActiveRun) -> None:
        active.keepalive = asyncio.ensure_future(self._keep_kernels_alive(active))
        try:
            record = await active.search.run()
            if record.status == RunStatus.FAILED:
                self.log.warning("SELA run %s failed: %s", run_id, record.error)
        except Exception:
            self.log.exception("SELA run %s failed", run_id)
        finally:
            active.keepalive.cancel()
            self.active.pop(run_id, None)
            self._start_queued()

    async def _keep_kernels_alive(self, active: ActiveRun) -> None:
        """Mark the run's kernels active so the server's idle culler leaves them alone mid-run.

        The culler (``MappingKernelManager.cull_idle_timeout``) shuts down kernels whose
        ``last_activity`` is old, unless they are busy (``cull_busy=False``, the default) or have
        connections (``cull_connected=False``). Our kernels have no websocket connections and sit
        idle in the pool between simulations, so without this a short ``cull_idle_timeout`` could
        cull them mid-run. A gateway culls on its own side; there the kernels' own traffic counts.
        """
        while True:
            pool = active.search.kernels
            if pool is not None:
                now = datetime.now(timezone.utc)
                for kernel_id in pool.kernel_ids:
                    active.kernel_ids.add(kernel_id)
                    with contextlib.suppress(Exception):
                        self.kernel_manager.get_kernel(kernel_id).last_activity = now
            await asyncio.sleep(self.keepalive_interval)

    async def stop(self, run_id: str, timeout: float = 60.0) -> None:
        """Stop an active run and wait until its kernels are shut down."""
        self.store.existing_run_dir(run_id)
        if run_id in self.queue:  # never started: it just leaves the queue
            self.queue.remove(run_id)
            record = self.store.read_run(run_id)
            record.status = RunStatus.STOPPED
            self.store.write_run(record)
            return
        active = self.active.get(run_id)
        if active is None:
            raise RunBusyError(
                f"run {run_id} is not searching on this server; nothing to stop "
                "(POST .../resume continues a stopped run)"
            )
        active.search.stop()
        if active.task is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(active.task), timeout)

    def resume(self, run_id: str) -> None:
        """Continue a stopped, finished-with-budget-left or interrupted run (queued behind
        others when every slot is taken)."""
        self.store.existing_run_dir(run_id)
        if run_id in self.active or run_id in self.queue:
            raise RunBusyError(f"run {run_id} is already searching or queued")
        self._check_room()
        self._launch_or_queue(run_id)

    async def delete(self, run_id: str) -> None:
        """Stop the run if it is active, then remove its directory."""
        self.store.existing_run_dir(run_id)
        if run_id in self.active or run_id in self.queue:
            await self.stop(run_id)
        self.store.delete_run(run_id)

    async def shutdown(self) -> None:
        """Stop every active run (the server is stopping); their kernels are shut down. Queued
        runs stay queued on disk: the next server finds them ``interrupted``."""
        self.queue.clear()
        for run_id in list(self.active):
            with contextlib.suppress(Exception):
                await self.stop(run_id, timeout=30.0)

    # -- reading --------------------------------------------------------------------------------
    def list_runs(self) -> list[dict[str, Any]]:
        """Summaries of every stored run, newest first."""
        out = []
        for stored in self.store.list_runs():
            active = self.active.get(stored.id)
            if active is not None:
                record = active.search.summary()
            elif stored.id not in self.queue:  # a killed `sela run` in the same directory, say
                record = interrupt_if_orphaned(self.store, stored).to_dict()
            else:
                record = stored.to_dict()
            out.append(summarize(record, active=active is not None))
        return out

    def get_run(self, run_id: str) -> dict[str, Any]:
        """The whole run record with the tree."""
        active = self.active.get(run_id)
        if active is not None:
            record = active.search.summary()
            tree = active.search.tree.to_dict()
        else:
            record = self.store.read_run(run_id).to_dict()
            tree = self.store.read_tree(run_id)
        return {**record, "active": active is not None, "tree": tree}

    def get_node(self, run_id: str, node_id: str) -> NodeDetail:
        """A node with its detail (insights, code per stage, output tail, error, timings)."""
        validate_id(node_id, "node id")
        tree = self.get_run(run_id)["tree"]
        result = self.store.read_node(run_id, node_id)
        detail = NodeDetail.from_tree(tree, node_id, result)
        if detail is None:
            raise RunNotFoundError(f"run {run_id} has no node {node_id!r}")
        return detail

    # -- steering -------------------------------------------------------------------------------
    def _steerable(self, run_id: str) -> Search:
        active = self.active.get(run_id)
        return active.search if active is not None else Search(self.store, run_id)

    def add_insight(self, run_id: str, parent_id: str, text: str) -> dict[str, Any]:
        """A user-written insight under ``parent_id``; the new child node."""
        if not isinstance(text, str):
            raise SelaInputError("'text' must be a string: the insight, in plain words")
        return (
            self._steerable(run_id).add_insight(validate_id(parent_id, "node id"), text).to_dict()
        )

    def prune(self, run_id: str, node_id: str) -> dict[str, Any]:
        """Exclude a node's subtree from the search."""
        return self._steerable(run_id).prune(validate_id(node_id, "node id")).to_dict()

    def pin(self, run_id: str, node_id: str) -> dict[str, Any]:
        """Simulate (or expand) ``node_id`` next."""
        return self._steerable(run_id).pin(validate_id(node_id, "node id")).to_dict()

    # -- events ---------------------------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        if self.event_logger is None:
            return
        data = {k: v for k, v in event.items() if k != "run"}
        if "run" in event:
            active = event["type"] != "run_finished" and event["run_id"] in self.active
            data["run"] = summarize(event["run"], active=active)
        try:
            self.event_logger.emit(schema_id=EVENT_SCHEMA_ID, data=data)
        except Exception:  # the event bus is a convenience; REST stays the source of truth
            self.log.exception("could not emit SELA event %s", event.get("type"))


def _b64decode(text: str, step: int = 4 << 20) -> bytes:
    """``base64.b64decode(text, validate=True)`` a few megabytes at a time, so that a thread
    decoding a large upload lets the event loop's thread run in between."""
    if len(text) <= step:
        return base64.b64decode(text, validate=True)
    return b"".join(
        base64.b64decode(text[i : i + step], validate=True) for i in range(0, len(text), step)
    )
