"""Child kernels: a warm pool, executing stage cells with timeouts, snapshots and node notebooks.

Kernels come from any ``jupyter_client`` ``AsyncMultiKernelManager`` (the server passes its own, so a
configured gateway makes them remote); the pool makes its own when given none (:func:`own_manager`).
Cells run through the plain execute / iopub loop, which works for local and gateway kernels alike.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import json
import logging
import os
import queue
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.multikernelmanager import AsyncMultiKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, output_from_msg
from traitlets.config import Config

from .cells import EVALUATION_SOURCE, KERNEL_HELPERS, WARMUP_SOURCE, call
from .errors import SelaError, SimulationError, describe
from .kernel_files import KernelFiles, SharedDisk, TransferError
from .kernel_helpers import KERNEL_REQUIREMENTS

log = logging.getLogger(__name__)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_POLL_S = 0.5
#: Longest Unix socket path every POSIX system accepts (macOS: 104 bytes with the terminator).
_SOCKET_PATH_MAX = 103


def connection_dir(preferred: str | None = None) -> tuple[str, bool]:
    """A private directory for the connection files and sockets of a pool's own kernels, and
    whether it is a scratch directory the pool must remove when it closes.

    ``preferred`` (Jupyter's runtime directory by default) is created when missing, owner-only
    (0700), as ``jupyter server`` creates it: nothing may assume a server ran on this machine
    before (a new container, VM or CI job has no such directory). When it cannot be created or
    written (a read-only home, say), a fresh owner-only temporary directory serves instead.
    """
    directory = preferred or jupyter_runtime_dir()
    try:
        Path(directory).mkdir(mode=0o700, parents=True, exist_ok=True)
        if not os.access(directory, os.W_OK | os.X_OK):
            raise PermissionError(f"{directory} is not writable")
    except OSError as exc:
        scratch = tempfile.mkdtemp(prefix="sela-kernels-")  # mkdtemp makes it 0700
        log.warning(
            "cannot keep kernel connection files in %s (%s); using %s", directory, exc, scratch
        )
        return scratch, True
    return directory, False


def own_manager(directory: str) -> AsyncMultiKernelManager:
    """The kernel manager a pool makes when it is given none, its connection files in
    ``directory`` (see :func:`connection_dir`).

    On POSIX its kernels talk over Unix sockets in that directory rather than TCP ports:
    nothing else on the machine can connect to them, two kernels starting at once cannot race
    for the same free port, and ipykernel does not print its "running over TCP without
    encryption" warning into the user's terminal. When the directory's socket paths would be
    too long for the system (or on Windows), TCP it is.
    """
    # The longest socket: <dir>/kernel-<uuid4>-ipc-<channel number>.
    longest = len(os.path.join(directory, f"kernel-{'0' * 36}-ipc-99"))
    transport = "ipc" if os.name == "posix" and longest <= _SOCKET_PATH_MAX else "tcp"
    config = Config({"KernelManager": {"transport": transport}})
    return AsyncMultiKernelManager(connection_dir=directory, config=config)


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes from a traceback."""
    return _ANSI.sub("", text)


#: Kernel states a server announces when the kernel process is gone.
_LOST_STATES = ("restarting", "dead")


class CellTimeout(SimulationError):
    """A cell ran past its time limit."""


class KernelDied(SimulationError):
    """The kernel process ended while a cell was running."""


class KernelStartError(SelaError):
    """No working kernel could be started for the pool; the message says which and why."""


class KernelLacksLibraries(KernelStartError):
    """The kernel spec starts kernels that cannot import what every simulation needs."""


@dataclass
class CellResult:
    """One executed cell: nbformat outputs, status and duration."""

    source: str
    outputs: list[Any] = field(default_factory=list)
    ok: bool = True
    error_name: str = ""
    error_value: str = ""
    traceback: str = ""
    duration: float = 0.0
    user_expressions: dict[str, Any] = field(default_factory=dict)

    @property
    def error_text(self) -> str:
        """``Name: value`` of the error this cell raised, or ``""``."""
        return f"{self.error_name}: {self.error_value}" if not self.ok else ""

    def text_output(self, limit: int = 4000) -> str:
        """The cell's printed text (streams and plain-text results), tail-trimmed to ``limit``."""
        chunks: list[str] = []
        for out in self.outputs:
            if out.get("output_type") == "stream":
                chunks.append(out.get("text", ""))
            elif out.get("output_type") in ("execute_result", "display_data"):
                chunks.append(str(out.get("data", {}).get("text/plain", "")) + "\n")
            elif out.get("output_type") == "error":
                chunks.append(strip_ansi("\n".join(out.get("traceback", []))) + "\n")
        text = "".join(chunks)
        return text[-limit:]


class ChildKernel:
    """One kernel of the pool: executes code and reports outputs, errors, timeouts and death."""

    def __init__(
        self, manager: AsyncMultiKernelManager, kernel_id: str, files: KernelFiles | None = None
    ) -> None:
        self.manager = manager
        self.kernel_id = kernel_id
        #: How the run's files reach this kernel (by path, or over its connection).
        self.files: KernelFiles = files or SharedDisk()
        self.client: Any = None
        self.simulations = 0
        #: The kernel process died under a cell: the pool replaces it rather than restart it
        #: (a gateway may be restarting it already, and a restart request would wait on that).
        self.lost = False
        self._pid: Any = None

    async def connect(self, timeout: float = 60.0) -> None:
        """Open channels to the kernel, wait until it answers, define the hidden helpers and
        prepare it for the run's files."""
        km = self.manager.get_kernel(self.kernel_id)
        self.client = km.client()
        await _maybe_await(self.client.start_channels())  # async on gateway kernel clients
        await self.client.wait_for_ready(timeout=timeout)
        self._pid = self._process_id()
        for source in (KERNEL_HELPERS, WARMUP_SOURCE):
            result = await self.execute(source, timeout=timeout, hidden=True)
            if not result.ok:
                raise SimulationError(f"kernel warm-up failed: {result.error_text}")
        required = KERNEL_REQUIREMENTS
        missing = await self.evaluate(call("_sela_missing", list(required.values())))
        if missing:
            names = ", ".join(pip for pip, module in required.items() if module in missing)
            raise KernelLacksLibraries(
                f"the kernel cannot import {names}: install them where it runs (for a gateway's"
                " kernel spec, in its image)"
            )
        await self.files.attach(self)

    def _process_id(self) -> Any:
        km = self.manager.get_kernel(self.kernel_id)
        provisioner = getattr(km, "provisioner", None)
        return getattr(provisioner, "pid", None) or id(provisioner)

    async def alive(self) -> bool:
        """True while the kernel process that started this simulation still runs."""
        try:
            if not await _maybe_await(self.manager.is_alive(self.kernel_id)):
                return False
        except Exception:
            return False
        # A server's restarter may have replaced a dead kernel under the same id.
        return self._process_id() == self._pid

    async def execute(
        self,
        source: str,
        *,
        timeout: float,
        hidden: bool = False,
        user_expressions: dict[str, str] | None = None,
    ) -> CellResult:
        """Run ``source``; raise :class:`CellTimeout` past ``timeout`` s, :class:`KernelDied` if it dies.

        ``hidden`` cells are harness plumbing: silent, not stored in history.
        """
        result = CellResult(source=source)
        started = time.perf_counter()
        msg_id = self.client.execute(
            source,
            silent=hidden,
            store_history=False,
            user_expressions=user_expressions or {},
            allow_stdin=False,
        )
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CellTimeout(f"cell timed out after {_seconds(timeout)}", kind="timeout")
            try:
                msg = await self._receive("iopub", timeout=min(_POLL_S, remaining))
            except (queue.Empty, asyncio.TimeoutError):
                if not await self.alive():
                    self.lost = True
                    raise KernelDied(
                        "the kernel died while running this cell", kind="kernel_died"
                    ) from None
                continue
            kind = msg["msg_type"]
            content = msg["content"]
            if kind == "status" and content.get("execution_state") in _LOST_STATES:
                # What a server (a gateway's too) tells its clients when the kernel process died
                # and is being restarted: the cell's own reply will never come.
                self.lost = True
                raise KernelDied(
                    "the kernel died while running this cell "
                    f"(its server reports it {content['execution_state']})",
                    kind="kernel_died",
                )
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if kind == "status" and content["execution_state"] == "idle":
                break
            if kind == "clear_output":
                result.outputs.clear()
            elif kind in ("stream", "display_data", "execute_result", "error"):
                _append_output(result.outputs, output_from_msg(msg))
                if kind == "error":
                    result.ok = False
                    result.error_name = content.get("ename", "")
                    result.error_value = content.get("evalue", "")
                    result.traceback = strip_ansi("\n".join(content.get("traceback", [])))
        reply = await self._shell_reply(msg_id, timeout=max(5.0, deadline - time.monotonic()))
        if reply is not None:
            content = reply["content"]
            if content.get("status") == "error" and result.ok:
                result.ok = False
                result.error_name = content.get("ename", "")
                result.error_value = content.get("evalue", "")
                result.traceback = strip_ansi("\n".join(content.get("traceback", [])))
            result.user_expressions = content.get("user_expressions", {}) or {}
        result.duration = time.perf_counter() - started
        return result

    async def _receive(self, channel: str, timeout: float) -> dict[str, Any]:
        """The next message on ``channel`` ("iopub" or "shell"); :class:`queue.Empty` when none
        comes within ``timeout`` seconds.

        A gateway kernel's client (jupyter_server's ``GatewayKernelClient``) keeps each channel
        in a plain queue that its ``get_*_msg`` waits on by spinning the event loop, which takes
        a whole core from the kernels for as long as a cell runs. Such a queue is read without
        blocking instead, with short sleeps in between.
        """
        messages = getattr(self.client, f"{channel}_channel", None)
        if not isinstance(messages, queue.Queue):  # a ZMQ channel waits on its socket
            return await getattr(self.client, f"get_{channel}_msg")(timeout=timeout)
        deadline = time.monotonic() + timeout
        pause = 0.001
        while True:
            try:
                msg = messages.get(block=False)
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.02)
                continue
            messages.task_done()
            return msg

    async def _shell_reply(self, msg_id: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = await self._receive("shell", timeout=min(_POLL_S, timeout))
            except (queue.Empty, asyncio.TimeoutError):
                continue
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply
        return None

    async def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """Evaluate a JSON-returning expression in the kernel and return its value."""
        wrapped = f"__import__('json').dumps({expression})"
        result = await self.execute(
            "", timeout=timeout, hidden=True, user_expressions={"value": wrapped}
        )
        value = result.user_expressions.get("value", {})
        if value.get("status") != "ok":
            raise SimulationError(
                f"{expression} failed: {value.get('ename', '')}: {value.get('evalue', '')}"
            )
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))

    async def interrupt_and_drain(self, timeout: float = 5.0) -> bool:
        """Interrupt the running cell; True if the kernel is idle again within ``timeout``."""
        with contextlib.suppress(Exception):
            await _maybe_await(self.manager.interrupt_kernel(self.kernel_id))
        try:
            result = await self.execute("pass", timeout=timeout, hidden=True)
        except SimulationError:
            return False
        return result.ok

    async def restart(self, timeout: float = 60.0) -> None:
        """Restart the kernel process (a cold start) and warm it up again."""
        self.close_channels()
        await _maybe_await(self.manager.restart_kernel(self.kernel_id, now=True))
        await self.connect(timeout=timeout)
        self.simulations = 0

    def close_channels(self) -> None:
        """Stop this client's channels (the kernel keeps running)."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.stop_channels()

    async def shutdown(self) -> None:
        """Shut the kernel down for good."""
        self.close_channels()
        with contextlib.suppress(Exception):
            await _maybe_await(self.manager.shutdown_kernel(self.kernel_id, now=True))


#: Tries to start a working kernel before the pool gives up.
START_ATTEMPTS = 3


class KernelPool:
    """Pre-started, pre-imported child kernels, handed out one simulation at a time.

    After a simulation a healthy kernel forgets its variables (modules stay imported, so the next
    simulation starts warm); a kernel that timed out or died is restarted before it is reused.
    """

    def __init__(
        self,
        kernel_manager: AsyncMultiKernelManager | None = None,
        *,
        size: int = 1,
        kernel_name: str = "python3",
        threads_per_kernel: int | None = None,
        recycle_after: int = 25,
        cwd: str | None = None,
        files: KernelFiles | None = None,
        recover_for: float = 0.0,
    ) -> None:
        self.owns_manager = kernel_manager is None
        self._scratch_dir: str | None = None
        if kernel_manager is None:
            directory, scratch = connection_dir()
            self._scratch_dir = directory if scratch else None
            kernel_manager = own_manager(directory)
        self.manager = kernel_manager
        self.size = max(1, size)
        self.kernel_name = kernel_name
        self.recycle_after = recycle_after
        self.cwd = cwd
        self.files: KernelFiles = files or SharedDisk()
        #: Seconds to keep trying to replace a lost kernel (see :meth:`_replace`).
        self.recover_for = recover_for
        cores = os.cpu_count() or 1
        self.threads = threads_per_kernel or max(1, cores // self.size)
        #: ``None`` in the queue: the pool has no kernel left and could not start another.
        self._idle: asyncio.Queue[ChildKernel | None] = asyncio.Queue()
        self._lost: KernelStartError | None = None
        self._kernels: list[ChildKernel] = []
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False

    def _env(self) -> dict[str, str]:
        threads = str(self.threads)
        return {
            **os.environ,
            "OMP_NUM_THREADS": threads,
            "OPENBLAS_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "JPY_PARENT_PID": str(os.getpid()),
        }

    async def start(self) -> None:
        """Start ``size`` kernels at once and return as soon as one is warm: the others join the
        pool as they come up (a gateway's kernel can take tens of seconds), and one that fails
        to start leaves the pool a kernel short. :class:`KernelStartError` if none starts
        (every kernel that did start stays with the pool, for :meth:`close`)."""
        pending = {asyncio.ensure_future(self._start_one()) for _ in range(self.size)}
        failure: BaseException | None = None
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task.exception() is None:
                    self._idle.put_nowait(task.result())
                else:
                    failure = failure or task.exception()
            if not self._idle.empty():
                break
        for task in pending:
            self._background.add(task)
            task.add_done_callback(self._joined)
        if self._idle.empty():
            assert failure is not None
            raise failure

    def _joined(self, task: asyncio.Task[Any]) -> None:
        """A kernel started after :meth:`start` returned joins the pool."""
        self._background.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            log.warning("the pool is a kernel short: %s", task.exception())
            return
        if not self._closed:  # once closed, close() shuts every kernel of the pool down
            self._idle.put_nowait(task.result())

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _start_one(self, attempts: int = START_ATTEMPTS) -> ChildKernel:
        """Start, connect and warm one kernel. A kernel that dies on start (two kernels raced for
        the same free port: seen under load) is shut down and another started in its place; after
        ``attempts`` failures, :class:`KernelStartError` names the kernel spec and the cause."""
        kwargs: dict[str, Any] = {"kernel_name": self.kernel_name, "env": self._env()}
        if self.cwd:
            kwargs["cwd"] = self.cwd
        for attempt in range(1, attempts + 1):
            kernel: ChildKernel | None = None
            try:
                kernel_id = await _maybe_await(self.manager.start_kernel(**kwargs))
                kernel = ChildKernel(self.manager, kernel_id, self.files)
                self._kernels.append(kernel)
                await kernel.connect()
                return kernel
            except Exception as exc:
                if kernel is not None:
                    await kernel.shutdown()
                    with contextlib.suppress(ValueError):
                        self._kernels.remove(kernel)
                if isinstance(exc, KernelLacksLibraries):  # another try would lack them too
                    raise KernelLacksLibraries(f"{self.kernel_name!r} kernel: {exc}") from None
                if attempt == attempts:
                    raise KernelStartError(self._start_failure(exc, attempts)) from exc
                log.info("a kernel failed to start (%s); starting another", describe(exc))
        raise AssertionError("unreachable")

    def _start_failure(self, exc: BaseException, attempts: int) -> str:
        """What to tell the user when no kernel of the pool's spec would start."""
        command = ""
        specs = getattr(self.manager, "kernel_spec_manager", None) or KernelSpecManager()
        with contextlib.suppress(Exception):
            spec = specs.get_kernel_spec(self.kernel_name)
            if inspect.iscoroutine(spec):  # a gateway's specs live on the gateway
                spec.close()
            else:
                command = f" (`{' '.join(spec.argv)}`)"
        return (
            f"could not start a {self.kernel_name!r} kernel{command} in {attempts} tries:"
            f" {describe(exc)}. Check that the kernel spec works (`jupyter kernelspec list`;"
            " `python -m pip install ipykernel` in the environment it names)"
        )

    @property
    def kernel_ids(self) -> list[str]:
        """Ids of the kernels this pool owns."""
        return [k.kernel_id for k in self._kernels]

    @property
    def connection_files(self) -> list[str]:
        """Connection files of this pool's local kernels (a gateway's kernels have none here),
        so that whoever finds the run's process dead can remove them."""
        files = []
        for kernel in self._kernels:
            with contextlib.suppress(Exception):
                path = self.manager.get_kernel(kernel.kernel_id).connection_file
                if path:
                    files.append(str(path))
        return files

    async def acquire(self) -> ChildKernel:
        """Wait for an idle, warm kernel; :class:`KernelStartError` once the pool has lost every
        kernel and could not start a new one (rather than waiting forever)."""
        kernel = await self._idle.get()
        if kernel is None:
            self._idle.put_nowait(None)  # and for every other waiter
            assert self._lost is not None
            raise self._lost
        return kernel

    def release(self, kernel: ChildKernel, *, healthy: bool) -> None:
        """Give ``kernel`` back: reset (healthy) or restarted (timed out / died) in the background."""
        kernel.simulations += 1
        self._track(asyncio.ensure_future(self._recycle(kernel, healthy=healthy)))

    async def _recycle(self, kernel: ChildKernel, *, healthy: bool) -> None:
        if self._closed:
            return
        try:
            if kernel.lost:
                raise KernelDied("it died", kind="kernel_died")
            if healthy and kernel.simulations < self.recycle_after and await kernel.alive():
                result = await kernel.execute("_sela_reset()", timeout=30, hidden=True)
                if result.ok:
                    self._idle.put_nowait(kernel)
                    return
            await kernel.restart()
            self._idle.put_nowait(kernel)
        except Exception as exc:  # a kernel that cannot come back is replaced by a new one
            log.warning("replacing kernel %s: %s", kernel.kernel_id, exc)
            await kernel.shutdown()
            with contextlib.suppress(ValueError):
                self._kernels.remove(kernel)
            await self._replace()

    async def _replace(self) -> None:
        """Start a kernel in place of a lost one. A gateway that restarts, or a cluster short of
        room, refuses for a while: tries go on, with a growing pause, for ``recover_for``
        seconds; then the pool goes on with the kernels it has left, or says it has none."""
        give_up = time.monotonic() + self.recover_for
        pause = 1.0
        while not self._closed:
            try:
                kernel = await self._start_one()
            except KernelStartError as lost:
                if time.monotonic() + pause <= give_up:
                    log.info("no kernel yet (%s); trying again in %.0f s", lost, pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 15.0)
                    continue
                log.warning("the pool is a kernel short: %s", lost)
                if not self._kernels:
                    self._lost = lost
                    self._idle.put_nowait(None)
                return
            if self._closed:
                await kernel.shutdown()
            else:
                self._idle.put_nowait(kernel)
            return

    def retire(self) -> None:
        """Recycle no kernel given back from now on: the pool is about to close, so a kernel whose
        simulation is being cancelled is shut down by :meth:`close` rather than first restarted
        (a cold start and warm-up of a second or two that nobody would use)."""
        self._closed = True

    async def close(self) -> None:
        """Shut down every kernel of the pool (and the manager, when the pool made it)."""
        self._closed = True
        # Let a kernel's reset or restart finish first: a restart cancelled half-way leaves a
        # kernel whose ``ready`` future never resolves, which its manager then cannot shut down.
        if self._background:
            await asyncio.wait(set(self._background), timeout=30)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*(k.shutdown() for k in self._kernels), return_exceptions=True)
        self._kernels.clear()
        if self.owns_manager:
            with contextlib.suppress(Exception):
                await _maybe_await(self.manager.shutdown_all(now=True))
        if self._scratch_dir:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# One simulation


@dataclass
class StageCell:
    """A cell of a simulation: a stage's code, whose node it belongs to and its role."""

    stage: str
    source: str
    role: str  # "path": a node's own stage code; "default": completes a partial pipeline
    node_id: str | None = None
    snapshot_path: str | None = None  # take a snapshot after this cell
    #: Hidden code run right after the cell; an error there fails the cell (a contract check).
    check: str | None = None
    #: Given the cell's error, new source to run in its place (the same kernel), or ``None`` to
    #: give up; an LLM coder's debug loop. ``attempts`` counts the sources that ran.
    repair: Callable[[SimulationError], Awaitable[str | None]] | None = None
    attempts: int = 0


@dataclass
class CrossValidation:
    """An optional step after the evaluation: out-of-fold outputs over train + dev, saved to
    ``path``, for the run's final choice. ``wants(dev_score, fit_seconds)`` returns the seconds
    the step may take for this node, or ``None`` to skip it. A failure or timeout here never
    fails the node: its dev score is already in."""

    path: str
    train_path: str
    folds: int
    wants: Callable[[float, float], float | None]


@dataclass
class SimulationPlan:
    """What to run for one node; built by the search from the coder and the store."""

    setup: str
    cells: list[StageCell]
    #: The server files the setup cell reads (by these very paths, quoted as Python does).
    data_files: tuple[str, ...] = ()
    replay: list[StageCell] = field(default_factory=list)  # ancestors' code, if no snapshot
    restore_from: str | None = None
    root_snapshot_path: str | None = None  # snapshot of the setup state (the root's)
    #: The root's snapshot, which a node's snapshot refers to for the frames no stage changed.
    base_snapshot: str | None = None
    predictions_path: str | None = None
    #: Given the fingerprint of the fitted-to-be pipeline, an earlier node that fitted the very
    #: same one, as ``(node id, dev score)``: its evaluation is reused instead of refitting.
    lookup: Callable[[str], tuple[str, float] | None] | None = None
    cross_validation: CrossValidation | None = None
    cell_timeout: float = 120.0
    #: A tighter limit for the stage and evaluation cells (not the out-of-fold step): a fit
    #: past it is stopped as hopeless; ``None``: ``cell_timeout`` alone.
    cell_cap: float | None = None
    simulation_timeout: float = 600.0
    #: Threads the simulation may use (its share of the process's cores); ``None``: no limit.
    threads: int | None = None


@dataclass
class ExecutedCell:
    """A cell as it ran, with the metadata the node notebook keeps."""

    role: str  # setup | path | default | evaluation | replay
    stage: str
    node_id: str | None
    result: CellResult


@dataclass
class SimulationResult:
    """What a simulation produced: cells, dev score or error, timings."""

    cells: list[ExecutedCell] = field(default_factory=list)
    dev_score: float | None = None
    error: str | None = None
    error_kind: str | None = None
    traceback: str = ""
    restored: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    fingerprint: str | None = None
    reused_from: str | None = None  # the node whose identical pipeline's evaluation was reused
    cv_rows: int | None = None  # rows with out-of-fold outputs, when cross-validation ran
    cv_error: str | None = None  # why cross-validation gave nothing (the node still counts)
    cv_broke_kernel: bool = False
    #: The cell that timed out was stopped by the plan's ``cell_cap`` (a hopeless fit), not by
    #: ``cell_timeout`` or the simulation's own deadline.
    stopped_at_cap: bool = False

    @property
    def kernel_healthy(self) -> bool:
        """False when the kernel must be restarted before it is reused."""
        return self.error_kind not in ("timeout", "kernel_died") and not self.cv_broke_kernel

    def output_tail(self, limit: int = 4000) -> str:
        """The printed text of the simulation's last cells, tail-trimmed."""
        return "".join(c.result.text_output() for c in self.cells)[-limit:]


async def run_simulation(kernel: ChildKernel, plan: SimulationPlan) -> SimulationResult:
    """Execute ``plan`` in ``kernel``: restore or set up, run stage cells, snapshot, evaluate.

    Never raises for a failing stage: the error, its kind and traceback land in the result, with
    every cell that ran before it.
    """
    out = SimulationResult()
    started = time.perf_counter()
    deadline = time.monotonic() + plan.simulation_timeout
    timings = out.timings
    at_cap = False  # whether the limit budget() gave last is the plan's cell_cap

    def budget(capped: bool = True) -> float:
        nonlocal at_cap
        left = deadline - time.monotonic()
        if left <= 0:
            raise CellTimeout(
                f"simulation timed out after {_seconds(plan.simulation_timeout)}", kind="timeout"
            )
        limit = min(plan.cell_timeout, left)
        cap = plan.cell_cap if capped else None
        at_cap = cap is not None and cap < limit
        return limit if cap is None else min(cap, limit)

    async def visible(cell: StageCell | None, role: str, source: str, stage: str) -> CellResult:
        result = await kernel.execute(source, timeout=budget())
        out.cells.append(ExecutedCell(role, stage, cell.node_id if cell else None, result))
        timings["in_cells"] = timings.get("in_cells", 0.0) + result.duration
        if not result.ok:
            raise SimulationError(
                f"{stage} cell failed: {result.error_text}",
                kind="error",
                traceback=result.traceback,
            )
        return result

    async def hidden(source: str, key: str) -> Any:
        t0 = time.perf_counter()
        result = await kernel.execute(source, timeout=budget(), hidden=True)
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0
        if not result.ok:
            raise SimulationError(f"harness step failed: {result.error_text}", kind="harness")
        return result

    async def run_stage(cell: StageCell) -> None:
        while True:
            cell.attempts += 1
            try:
                if cell.source.strip():
                    await visible(cell, cell.role, cell.source, cell.stage)
                if cell.check:
                    check = await kernel.execute(cell.check, timeout=budget(), hidden=True)
                    if not check.ok:
                        raise SimulationError(
                            f"{cell.stage} cell failed: {check.error_text}",
                            kind="contract",
                            traceback=check.error_text,
                        )
                return
            except SimulationError as exc:
                if cell.repair is None or exc.kind not in ("error", "contract"):
                    raise
                source = await cell.repair(exc)
                if source is None:
                    raise
                if out.cells and out.cells[-1].role == cell.role and cell.source.strip():
                    out.cells[-1].role = "attempt"  # kept in the notebook, never exported
                cell.source = source

    files = kernel.files

    def transferred(seconds: float) -> None:
        if seconds:
            timings["transfer"] = timings.get("transfer", 0.0) + seconds

    async def restore(path: str) -> bool:
        try:  # a snapshot that cannot travel is replayed instead
            for needed in (plan.base_snapshot, path):
                if needed:
                    transferred(await files.send(kernel, needed))
        except TransferError as exc:
            log.info("replaying instead of restoring: %s", exc)
            return False
        return bool(await kernel.evaluate(call("_sela_restore", files.at(path)), timeout=budget()))

    async def snapshot(path: str, base: str | None = None) -> None:
        args = (files.at(path),) if base is None else (files.at(path), files.at(base))
        await hidden(call("_sela_snapshot", *args), "snapshot")
        try:  # without its snapshot on the server, a node's children replay its code
            transferred(await files.fetch(kernel, path))
        except TransferError as exc:
            log.info("keeping no snapshot: %s", exc)

    try:
        if plan.threads:
            await hidden(call("_sela_limit_threads", plan.threads), "threads")
        if plan.restore_from:
            t0 = time.perf_counter()
            out.restored = await restore(plan.restore_from)
            timings["restore"] = time.perf_counter() - t0
        if not out.restored:
            setup = plan.setup
            for path in plan.data_files:
                transferred(await files.send(kernel, path))
                setup = setup.replace(repr(path), repr(files.at(path)))
            await visible(None, "setup", setup, "setup")
            if plan.root_snapshot_path:
                await snapshot(plan.root_snapshot_path)
            for cell in plan.replay:
                await visible(cell, "replay", cell.source, cell.stage)
        for cell in plan.cells:
            await run_stage(cell)
            if cell.snapshot_path:
                await snapshot(cell.snapshot_path, plan.base_snapshot)
        if plan.lookup is not None:
            t0 = time.perf_counter()
            out.fingerprint = await kernel.evaluate("_sela_fingerprint()", timeout=budget())
            timings["fingerprint"] = time.perf_counter() - t0
            match = plan.lookup(out.fingerprint) if out.fingerprint else None
            if match is not None:
                out.reused_from, out.dev_score = match
                timings["total"] = time.perf_counter() - started
                return out
        if plan.threads:  # the estimators exist now: hold their n_jobs to the share too
            await hidden(call("_sela_limit_threads", plan.threads), "threads")
        evaluation = await visible(None, "evaluation", EVALUATION_SOURCE, "evaluation")
        timings["fit"] = evaluation.duration
        score = await kernel.evaluate("float(dev_score)", timeout=budget())
        out.dev_score = float(score) if score is not None else None
        if plan.predictions_path:
            await hidden(
                call("_sela_save_predictions", files.at(plan.predictions_path)), "predictions"
            )
            transferred(await files.fetch(kernel, plan.predictions_path))
        if plan.cross_validation is not None and out.dev_score is not None:
            await _cross_validate(kernel, plan.cross_validation, out, lambda: budget(capped=False))
    except SimulationError as exc:
        out.error = str(exc)
        out.error_kind = exc.kind
        out.traceback = exc.traceback
        if isinstance(exc, CellTimeout):
            out.stopped_at_cap = at_cap
            if await kernel.interrupt_and_drain():
                out.error_kind = "timeout_interrupted"
    timings["total"] = time.perf_counter() - started
    return out


async def _cross_validate(
    kernel: ChildKernel, cv: CrossValidation, out: SimulationResult, budget: Callable[[], float]
) -> None:
    """Run the out-of-fold step if ``cv.wants`` it, within its time limit; never raises for it."""
    fit_seconds = out.timings.get("fit", 0.0)
    assert out.dev_score is not None
    limit = cv.wants(out.dev_score, fit_seconds)
    if limit is None:
        return
    try:
        timeout = min(limit, budget())
    except CellTimeout:
        return
    t0 = time.perf_counter()
    files = kernel.files
    try:
        await files.send(kernel, cv.train_path)
        rows = await kernel.evaluate(
            call("_sela_cv_predictions", files.at(cv.path), files.at(cv.train_path), cv.folds),
            timeout=timeout,
        )
        if rows:
            await files.fetch(kernel, cv.path)
        out.cv_rows = int(rows) or None
        if not out.cv_rows:
            out.cv_error = "the stage code reshaped the training rows or columns"
    except CellTimeout as exc:
        out.cv_error = f"cross-validation: {exc}"
        out.cv_broke_kernel = not await kernel.interrupt_and_drain()
    except KernelDied as exc:
        out.cv_error = f"cross-validation: {exc}"
        out.cv_broke_kernel = True
    except SimulationError as exc:
        out.cv_error = f"cross-validation: {exc}"
    out.timings["cv"] = time.perf_counter() - t0


def build_notebook(
    result: SimulationResult,
    *,
    title: str,
    ancestor_cells: Sequence[Any] = (),
    metadata: dict[str, Any] | None = None,
) -> nbformat.NotebookNode:
    """The node's notebook: a header, (ancestors' cells when resumed), its cells with outputs."""
    nb = new_notebook()
    nb.metadata.update(
        {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "sela": metadata or {},
        }
    )
    nb.cells.append(new_markdown_cell(title))
    for cell in ancestor_cells:
        nb.cells.append(cell)
    for count, executed in enumerate(result.cells, start=len(ancestor_cells) + 1):
        cell = new_code_cell(
            executed.result.source,
            outputs=executed.result.outputs,
            execution_count=count,
            metadata={
                "sela": {
                    "role": executed.role,
                    "stage": executed.stage,
                    "node": executed.node_id,
                    "duration_s": round(executed.result.duration, 4),
                }
            },
        )
        nb.cells.append(cell)
    if result.reused_from:
        nb.cells.append(
            new_markdown_cell(
                f"**Not refitted.** These cells leave the very pipeline node {result.reused_from}"
                " fitted (the same steps, model and training rows), so its evaluation, dev score"
                f" {result.dev_score:.6g}, is reused."
            )
        )
    if result.error:
        nb.cells.append(
            new_markdown_cell(f"**Simulation failed** ({result.error_kind}): `{result.error}`")
        )
    return nb


def _append_output(outputs: list[Any], output: Any) -> None:
    """Add an output, merging consecutive stream text of the same stream as Jupyter does."""
    if (
        output.get("output_type") == "stream"
        and outputs
        and outputs[-1].get("output_type") == "stream"
        and outputs[-1].get("name") == output.get("name")
    ):
        outputs[-1]["text"] += output["text"]
        return
    outputs.append(output)


def _seconds(value: float) -> str:
    """``120 s``, or ``0.05 s`` for a limit under a second (not ``0 s``)."""
    return f"{value:.0f} s" if value >= 1 else f"{value:.2g} s"


async def _maybe_await(value: Any) -> Any:
    if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
        return await value
    return value
