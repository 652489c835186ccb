"""How a simulation's files reach its kernel and come back: by path, or over the connection.

A run keeps everything on the server, in its run directory: the train/dev/test frames, each
node's snapshot, predictions and out-of-fold outputs. A kernel on this machine reads and writes
them in place (:class:`SharedDisk`). A kernel on a gateway's host (a Kubernetes pod, say) has no
such directory, so :class:`OverConnection` gives each kernel a scratch directory of its own,
sends it the files a simulation reads, in checked chunks over the kernel's own messages, and
fetches back those it writes. Either way the harness names a file by its server path and asks
:meth:`KernelFiles.at` where the kernel sees it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path
from typing import Any, Protocol

from .cells import call
from .errors import SimulationError


class ChildKernel(Protocol):
    """What moving files needs of a kernel (:class:`.runner.ChildKernel` has it)."""

    kernel_id: str

    async def execute(self, source: str, *, timeout: float, hidden: bool = False) -> Any:
        """Run ``source``; a result with ``ok`` and ``error_text``."""

    async def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """The JSON value of ``expression`` in the kernel."""


#: Bytes per message: well under the 10 MiB a websocket to a gateway carries by default, once
#: base64 has added its third.
CHUNK_BYTES = 2 << 20
#: The largest file sent or fetched by default (``c.SelaApp.max_transfer_mb``).
MAX_TRANSFER_BYTES = 1 << 30


class TransferError(SimulationError):
    """A file could not be moved between the server and a kernel (too large, damaged, gone)."""


class KernelFiles(Protocol):
    """Where a kernel finds the run's files, and how they get there and back."""

    async def attach(self, kernel: ChildKernel) -> None:
        """Prepare a freshly started (or restarted) kernel; it has received nothing yet."""

    def at(self, path: str) -> str:
        """The name under which the kernel sees the server file ``path``."""

    async def send(self, kernel: ChildKernel, path: str) -> float:
        """Make the server file ``path`` readable in ``kernel``; returns the seconds it took."""

    async def fetch(self, kernel: ChildKernel, path: str) -> float:
        """Bring the file ``kernel`` wrote at :meth:`at` ``(path)`` back to ``path`` on the
        server; returns the seconds it took."""


def remote_kernels(kernel_manager: object) -> bool:
    """Whether ``kernel_manager`` starts its kernels through a gateway (so, maybe elsewhere)."""
    return kernel_manager is not None and "gateway" in type(kernel_manager).__module__.lower()


def kernel_files_for(
    kernel_manager: object, run_dir: str | Path, max_bytes: int = MAX_TRANSFER_BYTES
) -> KernelFiles:
    """Files by path for kernels on this machine, over the connection for a gateway's."""
    if remote_kernels(kernel_manager):
        return OverConnection(run_dir, max_bytes=max_bytes)
    return SharedDisk()


class SharedDisk:
    """A kernel that sees the server's disk: every file stays where it is."""

    async def attach(self, kernel: ChildKernel) -> None:
        """Nothing to prepare."""

    def at(self, path: str) -> str:
        """The very path."""
        return path

    async def send(self, kernel: ChildKernel, path: str) -> float:
        """Nothing to send."""
        return 0.0

    async def fetch(self, kernel: ChildKernel, path: str) -> float:
        """Nothing to fetch."""
        return 0.0


class OverConnection:
    """A kernel with no shared disk: files travel in base64 chunks over its execute messages.

    Each kernel works in a scratch directory of its own (``_sela_workdir``), where a file of the
    run directory lives under the same relative name. A file is sent to a kernel once (the frames,
    a parent's snapshot) until the kernel restarts; what it writes (snapshots, predictions,
    out-of-fold outputs) is fetched as soon as it is written, so a kernel lost later loses
    nothing. Every file is checked by size and SHA-256 on arrival; one larger than
    ``max_bytes`` fails its node with a :class:`TransferError` that says so.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        max_bytes: int = MAX_TRANSFER_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
        timeout: float = 120.0,
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self.timeout = timeout
        #: The files each kernel holds, by kernel id.
        self._held: dict[str, set[str]] = {}

    async def attach(self, kernel: ChildKernel) -> None:
        """Give the kernel its scratch directory; it holds no file yet."""
        self._held[kernel.kernel_id] = set()
        await kernel.evaluate(call("_sela_workdir", self.run_dir.name), timeout=self.timeout)

    def at(self, path: str) -> str:
        """``path`` relative to the run directory (where the kernel's scratch directory has it)."""
        return Path(path).resolve().relative_to(self.run_dir).as_posix()

    def _check_size(self, path: str, size: int) -> None:
        if size > self.max_bytes:
            raise TransferError(
                f"{self.at(path)} is {_megabytes(size)}, more than the {_megabytes(self.max_bytes)}"
                " a file may take over the kernel connection (c.SelaApp.max_transfer_mb)",
                kind="transfer",
            )

    async def send(self, kernel: ChildKernel, path: str) -> float:
        """Send ``path`` in chunks unless the kernel holds it already."""
        held = self._held.setdefault(kernel.kernel_id, set())
        name = self.at(path)
        if name in held:
            return 0.0
        payload = Path(path).read_bytes()
        self._check_size(path, len(payload))
        started = time.perf_counter()
        offsets = range(0, max(len(payload), 1), self.chunk_bytes)
        for offset in offsets:
            chunk = base64.b64encode(payload[offset : offset + self.chunk_bytes]).decode("ascii")
            await self._run(kernel, call("_sela_put", name, offset, chunk), f"sending {name}")
        digest = hashlib.sha256(payload).hexdigest()
        await self._run(
            kernel, call("_sela_put_done", name, len(payload), digest), f"sending {name}"
        )
        held.add(name)
        return time.perf_counter() - started

    async def fetch(self, kernel: ChildKernel, path: str) -> float:
        """Fetch ``path`` in chunks, check it, and write it in place on the server."""
        name = self.at(path)
        started = time.perf_counter()
        info = await kernel.evaluate(call("_sela_file_info", name), timeout=self.timeout)
        if info is None:
            raise TransferError(f"the kernel wrote no {name}", kind="transfer")
        size, digest = int(info[0]), str(info[1])
        self._check_size(path, size)
        parts = []
        for offset in range(0, size, self.chunk_bytes):
            chunk = await kernel.evaluate(
                call("_sela_get", name, offset, self.chunk_bytes), timeout=self.timeout
            )
            parts.append(base64.b64decode(chunk))
        payload = b"".join(parts)
        if len(payload) != size or hashlib.sha256(payload).hexdigest() != digest:
            raise TransferError(f"{name} arrived damaged from the kernel", kind="transfer")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        partial.write_bytes(payload)
        os.replace(partial, target)
        self._held.setdefault(kernel.kernel_id, set()).add(name)
        return time.perf_counter() - started

    async def _run(self, kernel: ChildKernel, source: str, doing: str) -> None:
        result = await kernel.execute(source, timeout=self.timeout, hidden=True)
        if not result.ok:
            raise TransferError(f"{doing} failed: {result.error_text}", kind="transfer")


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
