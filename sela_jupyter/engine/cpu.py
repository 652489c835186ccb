"""One CPU budget per process: the runs searching in a process share the machine's cores.

Without it each run sized its kernels' thread pools from the cores alone, so two runs on a
2-core machine put four busy OpenMP threads on two cores and every fit ran tens of times slower
(threads spinning against each other). :class:`CpuBudget` hands out simulation slots (at most
one per core at once, over every run) and says how many threads a simulation may use: the
cores divided by what the active runs ask for together, so a run alone gets the whole machine
and two runs get half each; a run's root simulation, which every other node of the run waits
for, gets the run's whole share. The numbers are read at every simulation, so they follow runs
as they start and end.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import count

from .kernel_files import remote_kernels


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the system tells, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class CpuBudget:
    """The cores of this process, shared by every run searching in it.

    A run :meth:`join`\\ s with the simulations it wants at once (its ``parallel``) and
    :meth:`leave`\\ s when it ends. Each simulation holds a :meth:`slot` while it runs: at most
    ``cores`` slots are out at once, over all runs, given first come first served. A slot comes
    with the threads its simulation may use, ``cores // demand`` (at least 1), where demand is
    the runs' wishes summed and capped at the cores: slots times threads never exceed the cores.
    Thread-safe, and usable from several event loops (``%sela`` searches each run in a thread of
    its own).
    """

    _shared: CpuBudget | None = None
    _shared_lock = threading.Lock()

    def __init__(self, cores: int | None = None) -> None:
        self.cores = max(1, cores or available_cores())
        self._lock = threading.Lock()
        self._wishes: dict[int, int] = {}
        self._tokens = count()
        self._busy = 0
        self._waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = deque()

    @classmethod
    def shared(cls) -> CpuBudget:
        """The budget of this process, made on first use."""
        with cls._shared_lock:
            if cls._shared is None:
                cls._shared = cls()
            return cls._shared

    # -- runs -----------------------------------------------------------------------------------
    def join(self, parallel: int) -> int:
        """Count a run that wants ``parallel`` simulations at once; a token for :meth:`leave`."""
        with self._lock:
            token = next(self._tokens)
            self._wishes[token] = max(1, parallel)
            return token

    def leave(self, token: int) -> None:
        """The run of ``token`` ended: the others get its share from their next simulation."""
        with self._lock:
            self._wishes.pop(token, None)

    @property
    def runs(self) -> int:
        """Runs counted now."""
        with self._lock:
            return len(self._wishes)

    def kernels_for(self, parallel: int) -> int:
        """Kernels worth starting for a run that wants ``parallel`` simulations at once: no more
        than the slots, since a kernel past them could only wait (and hold memory)."""
        return max(1, min(parallel, self.cores))

    def threads(self, alone: bool = False) -> int | None:
        """Threads one simulation may use now; ``alone``: its run can have no other simulation
        at the same time (the root's, which every other node waits for), so it may use the
        run's whole share instead of one simulation's."""
        with self._lock:
            wishes = [1] * len(self._wishes) if alone else list(self._wishes.values())
            demand = min(self.cores, max(1, sum(wishes)))
        return max(1, self.cores // demand)

    # -- simulations ----------------------------------------------------------------------------
    @asynccontextmanager
    async def slot(self, alone: bool = False) -> AsyncIterator[int | None]:
        """Hold one of the ``cores`` simulation slots (waiting in line for it); yields the
        threads the simulation may use (see :meth:`threads` for ``alone``)."""
        await self._acquire()
        try:
            yield self.threads(alone)
        finally:
            self._release()

    async def _acquire(self) -> None:
        with self._lock:
            if self._busy < self.cores and not self._waiters:
                self._busy += 1
                return
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            with self._lock:
                queued = (loop, waiter) in self._waiters
                if queued:
                    self._waiters.remove((loop, waiter))
            if not queued and not waiter.cancelled():
                self._release()  # the slot was handed over just as we gave up: pass it on
            raise

    def _release(self) -> None:
        """Hand the slot to the next waiter, or free it."""
        with self._lock:
            while self._waiters:
                loop, waiter = self._waiters.popleft()
                try:
                    loop.call_soon_threadsafe(self._hand_over, waiter)
                except RuntimeError:  # that loop is closed: its waiter is gone
                    continue
                return
            self._busy -= 1

    def _hand_over(self, waiter: asyncio.Future[None]) -> None:
        """On the waiter's loop: wake it with the slot, or pass the slot on if it gave up."""
        if waiter.done():
            self._release()
        else:
            waiter.set_result(None)


class RemoteKernels(CpuBudget):
    """The budget of runs whose kernels live elsewhere (on a gateway's hosts): their cores are
    not this machine's, so nothing is counted, no slot is waited for and no thread limit set."""

    def kernels_for(self, parallel: int) -> int:
        """As many kernels as the run asks for."""
        return max(1, parallel)

    def threads(self, alone: bool = False) -> int | None:
        """No limit: the kernel's host decides."""
        return None

    @asynccontextmanager
    async def slot(self, alone: bool = False) -> AsyncIterator[int | None]:
        """Never waits."""
        yield None


def budget_for(kernel_manager: object) -> CpuBudget:
    """The process's shared budget for local kernels (a pool's own, or a server's), or a
    :class:`RemoteKernels` one when ``kernel_manager`` starts them on a gateway."""
    if remote_kernels(kernel_manager):
        return RemoteKernels()
    return CpuBudget.shared()
