"""REST handlers under ``<base_url>/sela/api/``; the API is written down in ``openapi.yaml``.

Every verb is ``@tornado.web.authenticated``. Errors are ``tornado.web.HTTPError`` with a message
that says what to do; jupyter_server's ``APIHandler`` turns them into a JSON body
``{"message": ..., "reason": ...}``. Live updates are not served here: they ride jupyter_server's
event bus (``/api/events/subscribe``) under the schema in ``events/run.yaml``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .._version import __version__
from ..engine.api import Run
from ..engine.errors import RunNotFoundError, SelaInputError
from ..engine.export import notebook_text
from .manager import EVENT_SCHEMA_ID, RunBusyError, RunManager, TooManyRunsError

_RUN = r"(?P<run_id>[^/]+)"
_NODE = r"(?P<node_id>[^/]+)"


class SelaHandler(APIHandler):
    """Base of every SELA handler: the run manager, JSON replies, engine errors as HTTP errors."""

    @property
    def manager(self) -> RunManager:
        """The server's :class:`RunManager`."""
        return self.settings["sela_run_manager"]

    def reply(self, data: Any, status: int = 200) -> None:
        """Finish with ``data`` as JSON."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def body(self) -> dict[str, Any]:
        """The request's JSON object body (``{}`` when empty)."""
        return parse_body(self.request.body)

    def open_run(self, run_id: str) -> Run:
        """The stored run as the Python API's :class:`Run` (for exports)."""
        self.manager.store.existing_run_dir(run_id)
        return Run(self.manager.store, run_id)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Engine errors become 400 / 404 / 409 / 429 with the engine's message."""
        exc_info = kwargs.get("exc_info")
        if exc_info:
            error = _as_http_error(exc_info[1])
            if error is not None:
                self.set_status(error.status_code)
                kwargs["exc_info"] = (type(error), error, exc_info[2])
                status_code = error.status_code
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        """Expected engine errors are the client's problem: no server traceback for them."""
        if _as_http_error(value) is not None:
            self.log.warning("%s %s: %s", self.request.method, self.request.uri, value)
            return
        super().log_exception(typ, value, tb)


def parse_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object (``{}`` when empty), or a 400 that says what is wrong."""
    if not raw:
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise web.HTTPError(400, "the request body is nested too deeply") from None
    except ValueError as exc:
        raise web.HTTPError(400, f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise web.HTTPError(400, "the request body must be a JSON object")
    return data


def _no_constant(name: str) -> Any:
    """``json.loads`` hook for ``NaN`` and ``Infinity``, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON number")


def _as_http_error(exc: BaseException) -> web.HTTPError | None:
    if isinstance(exc, TooManyRunsError):
        return web.HTTPError(429, str(exc))
    if isinstance(exc, RunBusyError):
        return web.HTTPError(409, str(exc))
    if isinstance(exc, RunNotFoundError):
        return web.HTTPError(404, str(exc))
    if isinstance(exc, SelaInputError):
        return web.HTTPError(400, str(exc))
    return None


class InfoHandler(SelaHandler):
    """``GET /sela/api/info``: version, runs directory, defaults and the event schema id."""

    @web.authenticated
    async def get(self) -> None:
        """Where this server keeps runs, how a client hands data over, and the defaults."""
        manager = self.manager
        self.reply(
            {
                "version": __version__,
                "runs_dir": str(manager.store.root),
                "incoming_dir": str(manager.incoming_dir),
                "defaults": manager.defaults,
                "max_concurrent_runs": manager.max_concurrent_runs,
                "active_runs": sorted(manager.active),
                "event_schema_id": EVENT_SCHEMA_ID,
                "model": self.settings.get("sela_model") or None,
            }
        )


@web.stream_request_body
class RunsHandler(SelaHandler):
    """``GET /sela/api/runs`` lists runs; ``POST`` creates one from a DataFrame and starts it.

    The body is streamed: an upload of tens of megabytes arrives chunk by chunk with other
    requests served in between, and is parsed and decoded off the event loop."""

    def prepare(self) -> Any:
        """Collect the body's chunks from here on."""
        self._chunks: list[bytes] = []
        return super().prepare()

    async def data_received(self, chunk: bytes) -> None:
        """One more chunk of the body; the event loop serves others before the next."""
        self._chunks.append(chunk)
        await asyncio.sleep(0)

    @web.authenticated
    async def get(self) -> None:
        """Run summaries, newest first."""
        self.reply({"runs": self.manager.list_runs()})

    @web.authenticated
    async def post(self) -> None:
        """Start a run (or queue it); 201 with its summary and ``Location``."""
        raw = b"".join(self._chunks)
        self._chunks.clear()
        body = await asyncio.get_running_loop().run_in_executor(None, parse_body, raw)
        run_id = await self.manager.start(body)
        self.set_header("Location", url_path_join(self.base_url, "sela", "api", "runs", run_id))
        self.reply(self.manager.get_run(run_id), status=201)


class RunHandler(SelaHandler):
    """``GET /sela/api/runs/{run_id}`` (record with the whole tree), ``DELETE`` (stop + remove)."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        """The run record with its tree."""
        self.reply(self.manager.get_run(run_id))

    @web.authenticated
    async def delete(self, run_id: str) -> None:
        """Stop the run if it searches, then delete its directory."""
        await self.manager.delete(run_id)
        self.set_status(204)
        self.finish()


class StopHandler(SelaHandler):
    """``POST /sela/api/runs/{run_id}/stop``: stop searching (the run stays resumable)."""

    @web.authenticated
    async def post(self, run_id: str) -> None:
        """Stop and wait until the run's kernels are shut down."""
        await self.manager.stop(run_id)
        self.reply(self.manager.get_run(run_id))


class ResumeHandler(SelaHandler):
    """``POST /sela/api/runs/{run_id}/resume``: continue a stopped or interrupted run."""

    @web.authenticated
    async def post(self, run_id: str) -> None:
        """Resume searching; finished simulations are kept."""
        self.manager.resume(run_id)
        self.reply(self.manager.get_run(run_id), status=202)


class NodeHandler(SelaHandler):
    """``GET /sela/api/runs/{run_id}/nodes/{node_id}``: a node with its detail."""

    @web.authenticated
    async def get(self, run_id: str, node_id: str) -> None:
        """Insights, stage code, output tail, error, traceback, timings, notebook path.

        ``notebook_path`` is the notebook's path relative to the server's root directory (what
        the Contents API and JupyterLab open), or null when the runs live outside the root.
        """
        detail = self.manager.get_node(run_id, node_id)
        if detail.result is not None:
            detail.notebook_path = self.contents_path(detail.result.notebook)
        self.reply(detail.to_dict())

    def contents_path(self, path: str | None) -> str | None:
        """``path`` relative to the server's root directory, as a Contents API path."""
        root = self.settings.get("server_root_dir")
        if not path or not root:
            return None
        try:
            relative = Path(path).resolve().relative_to(Path(root).expanduser().resolve())
        except ValueError:
            return None
        return relative.as_posix()


class NodeCodeHandler(SelaHandler):
    """``GET /sela/api/runs/{run_id}/nodes/{node_id}/code``: the node's pipeline as cells."""

    @web.authenticated
    async def get(self, run_id: str, node_id: str) -> None:
        """Exported cells (``role``, ``kind``, ``source``) and the same as one script."""
        run = self.open_run(run_id)
        cells = run.cells(node_id)
        self.reply(
            {
                "run": run_id,
                "node": run.node(node_id).id,
                "cells": [c.to_dict() for c in cells],
                "script": run.export_code(node_id),
            }
        )


class ExportHandler(SelaHandler):
    """``GET /sela/api/runs/{run_id}/export?format=cells|ipynb|py&node=final``."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        """A pipeline as cells JSON, a notebook or a script: the run's final answer by default
        (``node=final``: its blend of the best nodes, or the best node), ``node=best`` for the
        best single node, or any node id."""
        fmt = self.get_argument("format", "cells")
        node_id = self.get_argument("node", "final")
        run = self.open_run(run_id)
        metadata = run.export_metadata(node_id)
        name = f"sela-{run_id}-{metadata['node']}"
        if fmt == "cells":
            self.reply({**metadata, "cells": [c.to_dict() for c in run.cells(node_id)]})
        elif fmt == "ipynb":
            # APIHandler.finish sets the Content-Type itself (JSON unless told otherwise).
            self.set_header("Content-Disposition", f'attachment; filename="{name}.ipynb"')
            self.finish(
                notebook_text(run.cells(node_id), metadata),
                set_content_type="application/x-ipynb+json",
            )
        elif fmt == "py":
            self.set_header("Content-Disposition", f'attachment; filename="{name}.py"')
            self.finish(run.export_code(node_id), set_content_type="text/x-python; charset=utf-8")
        else:
            raise web.HTTPError(400, f"unknown format {fmt!r}: use cells, ipynb or py")


class InsightHandler(SelaHandler):
    """``POST /sela/api/runs/{run_id}/nodes/{node_id}/insights``: a user-written child insight."""

    @web.authenticated
    async def post(self, run_id: str, node_id: str) -> None:
        """Body ``{"text": "..."}``; 201 with the new child node."""
        self.manager.store.existing_run_dir(run_id)
        text = self.body().get("text")
        self.reply({"node": self.manager.add_insight(run_id, node_id, text)}, status=201)


class PruneHandler(SelaHandler):
    """``POST /sela/api/runs/{run_id}/nodes/{node_id}/prune``: exclude the node's subtree."""

    @web.authenticated
    async def post(self, run_id: str, node_id: str) -> None:
        """The pruned node."""
        self.manager.store.existing_run_dir(run_id)
        self.reply({"node": self.manager.prune(run_id, node_id)})


class PinHandler(SelaHandler):
    """``POST /sela/api/runs/{run_id}/nodes/{node_id}/pin``: simulate or expand the node next."""

    @web.authenticated
    async def post(self, run_id: str, node_id: str) -> None:
        """The pinned node."""
        self.manager.store.existing_run_dir(run_id)
        self.reply({"node": self.manager.pin(run_id, node_id)})


#: Every route, relative to ``<base_url>/sela/api``: (pattern, handler).
ROUTES: list[tuple[str, type[SelaHandler]]] = [
    (r"/info", InfoHandler),
    (r"/runs", RunsHandler),
    (rf"/runs/{_RUN}", RunHandler),
    (rf"/runs/{_RUN}/stop", StopHandler),
    (rf"/runs/{_RUN}/resume", ResumeHandler),
    (rf"/runs/{_RUN}/export", ExportHandler),
    (rf"/runs/{_RUN}/nodes/{_NODE}", NodeHandler),
    (rf"/runs/{_RUN}/nodes/{_NODE}/code", NodeCodeHandler),
    (rf"/runs/{_RUN}/nodes/{_NODE}/insights", InsightHandler),
    (rf"/runs/{_RUN}/nodes/{_NODE}/prune", PruneHandler),
    (rf"/runs/{_RUN}/nodes/{_NODE}/pin", PinHandler),
]


def handler_list(prefix: str = "/sela/api") -> list[tuple[str, type[SelaHandler]]]:
    """The routes with their prefix, as an ExtensionApp's ``handlers``."""
    return [(prefix + pattern, handler) for pattern, handler in ROUTES]


def verbs(handler: type[SelaHandler]) -> list[str]:
    """The HTTP verbs a handler implements itself."""
    return [v for v in ("GET", "POST", "PUT", "PATCH", "DELETE") if v.lower() in handler.__dict__]


__all__ = ["ROUTES", "SelaHandler", "handler_list", "verbs"]
