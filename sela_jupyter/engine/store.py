"""The run directory on disk: ``.sela/runs/<run-id>/`` with atomic writes, listing and reopening.

Layout (docs/architecture.md): ``run.json`` (options, status, timings, tokens), ``tree.json`` (nodes),
``insights.json`` and ``code.json`` (the insight pool and stage code cache), ``run.log`` (warnings and
failures' tracebacks), ``data/`` (the frame the run was given and its split), ``nodes/<node-id>/`` (stage code, notebook, snapshot, log). Every
write goes to a temporary file first and is renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import RunNotFoundError, SelaInputError
from .records import NodeResult, RunRecord

DEFAULT_RUNS_DIR = Path(".sela") / "runs"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def validate_id(value: str, what: str = "run id") -> str:
    """Return ``value`` if it is a safe single path component, else raise :class:`SelaInputError`."""
    if not isinstance(value, str) or not _ID.match(value) or ".." in value:
        raise SelaInputError(f"invalid {what} {value!r}: use letters, digits, '.', '_' and '-'")
    return value


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically."""
    atomic_write_text(path, json.dumps(data, indent=1, default=_json_default) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


class RunStore:
    """All runs under one directory (``.sela/runs`` of the working directory by default)."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else Path.cwd() / DEFAULT_RUNS_DIR
        self.root = self.root.resolve()

    def new_run_id(self, name: str | None = None) -> str:
        """A fresh, sortable id: ``YYYYmmdd-HHMMSS-<name>-<hex>``."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name or "run").strip("-")[:40] or "run"
        return f"{stamp}-{slug}-{secrets.token_hex(2)}"

    def run_dir(self, run_id: str) -> Path:
        """The directory of ``run_id`` (validated: never outside :attr:`root`)."""
        path = (self.root / validate_id(run_id)).resolve()
        if path.parent != self.root:
            raise SelaInputError(f"invalid run id {run_id!r}")
        return path

    def existing_run_dir(self, run_id: str) -> Path:
        """Like :meth:`run_dir`, raising :class:`RunNotFoundError` when there is no such run."""
        path = self.run_dir(run_id)
        if not (path / "run.json").is_file():
            raise RunNotFoundError(f"no run {run_id!r} in {self.root}")
        return path

    def node_dir(self, run_id: str, node_id: str) -> Path:
        """``nodes/<node-id>/`` of a run (validated)."""
        return self.run_dir(run_id) / "nodes" / validate_id(node_id, "node id")

    def list_runs(self) -> list[RunRecord]:
        """Every run's ``run.json``, newest first; unreadable directories are skipped."""
        runs: list[RunRecord] = []
        if not self.root.is_dir():
            return runs
        for path in self.root.iterdir():
            meta = path / "run.json"
            if meta.is_file():
                try:
                    runs.append(RunRecord.from_dict(read_json(meta)))
                except (OSError, ValueError, KeyError, TypeError):
                    continue
        runs.sort(key=lambda r: r.created, reverse=True)
        return runs

    def resolve(self, run_ref: str | None) -> str:
        """A run id from an id, a unique id prefix, a run name, or ``None``/``"last"`` (newest)."""
        return pick_run(
            [{"id": r.id, "name": r.name} for r in self.list_runs()],
            run_ref,
            no_runs=f"no runs in {self.root}",
            not_found=f"no run {run_ref!r} in {self.root}",
        )

    # -- records --------------------------------------------------------------------------------
    def read_run(self, run_id: str) -> RunRecord:
        """``run.json`` of a run."""
        return RunRecord.from_dict(read_json(self.existing_run_dir(run_id) / "run.json"))

    def write_run(self, record: RunRecord) -> None:
        """Replace the run's ``run.json`` atomically."""
        atomic_write_json(self.run_dir(record.id) / "run.json", record.to_dict())

    def read_tree(self, run_id: str) -> dict[str, Any]:
        """``tree.json`` of a run."""
        return read_json(self.existing_run_dir(run_id) / "tree.json")

    def write_tree(self, run_id: str, tree: dict[str, Any]) -> None:
        """Replace ``tree.json`` atomically."""
        atomic_write_json(self.run_dir(run_id) / "tree.json", tree)

    def read_part(self, run_id: str, name: str, default: Any = None) -> Any:
        """Another JSON file of the run (``insights``, ``code``, ...), or ``default``."""
        path = self.run_dir(run_id) / f"{validate_id(name, 'file name')}.json"
        return read_json(path) if path.is_file() else default

    def write_part(self, run_id: str, name: str, data: Any) -> None:
        """Replace another JSON file of the run atomically."""
        atomic_write_json(self.run_dir(run_id) / f"{validate_id(name, 'file name')}.json", data)

    def read_node(self, run_id: str, node_id: str) -> NodeResult | None:
        """A node's ``result.json`` (insights, code, output tail, error, timings) if it ran."""
        path = self.node_dir(run_id, node_id) / "result.json"
        return NodeResult.from_dict(read_json(path)) if path.is_file() else None

    def write_node(self, run_id: str, result: NodeResult) -> None:
        """Replace a node's ``result.json`` atomically."""
        node_dir = self.node_dir(run_id, str(result.node["id"]))
        atomic_write_json(node_dir / "result.json", result.to_dict())

    def delete_run(self, run_id: str) -> None:
        """Remove a run directory and everything in it."""
        shutil.rmtree(self.existing_run_dir(run_id))


def pick_run(
    runs: Sequence[Mapping[str, Any]], ref: str | None, *, no_runs: str, not_found: str
) -> str:
    """The id in ``runs`` (newest first) that ``ref`` names: an id, a unique id prefix, a run name,
    or ``None`` / ``""`` / ``"last"`` for the newest. The messages say what to do when none does."""
    if not runs:
        raise RunNotFoundError(no_runs)
    if ref in (None, "", "last"):
        return runs[0]["id"]
    if any(r["id"] == ref for r in runs):
        return ref
    matches = [r["id"] for r in runs if r["id"].startswith(ref) or r.get("name") == ref]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise SelaInputError(f"{ref!r} matches several runs: {', '.join(matches[:5])}")
    raise RunNotFoundError(not_found)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
