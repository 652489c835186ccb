"""What a run costs besides time: peak memory of a process tree and the size of a directory."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

import psutil


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its descendants (child kernels included) now."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:  # it ended between listing and reading
            continue
    return total


class PeakMemory:
    """Samples the resident memory of this process and its descendants every ``interval``
    seconds while the ``with`` block runs; :attr:`peak` is the largest total seen, in bytes."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak = 0
        self._process = psutil.Process()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self.peak = tree_rss(self._process)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss(self._process))

    def _sample(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, tree_rss(self._process))


def directory_bytes(path: Path) -> int:
    """Bytes of every file under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
