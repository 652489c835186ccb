"""``%sela`` / ``%%sela``: search a pipeline for a live DataFrame and watch it in the cell.

    %load_ext sela_jupyter
    %sela df target=price [rollouts=N] [budget=10m] [parallel=2] [metric=...] [task=...]
          [llm=...] [name=...] [test=test_df] [max_depth=N] [seed=N] [cv_folds=N]
    %%sela df target=price          (the cell body is the free-text task description)
    %sela runs                      list runs
    %sela wait [RUN]                block until a run ends, then show its leaderboard
    %sela stop [RUN]                stop a run (it stays resumable)
    %sela resume RUN                continue a stopped run
    %sela export RUN [PATH]         write the final pipeline as .ipynb (or .py)
    %sela insert [RUN] [NODE|best]  put the final (or a node's) pipeline into the next cell

RUN is a run id, a unique prefix, a run name, or ``last`` (the default). Where the search runs is
found once per kernel:

1. ``c.SelaMagics.server_url`` / ``token`` (or ``SELA_SERVER_URL`` / ``SELA_SERVER_TOKEN``);
2. the Jupyter server that started this kernel (``JPY_PARENT_PID`` -> ``jpserver-<pid>.json`` in
   the runtime directory), when its ``sela_jupyter`` extension answers;
3. otherwise the engine runs in this process, in a background thread with its own event loop.

Data goes to a server as a parquet file dropped in the server's incoming directory when both share
a disk (the server was found through its runtime file), else as an upload in the request.
The magic returns as soon as the run starts; a live view in the output follows it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import shlex
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class
from traitlets import Bool, Enum, Float, Int, Unicode, default

from .engine.errors import RunNotFoundError, SelaError, SelaInputError, SelaRunError

#: Options of ``%sela DF target=...`` and what each one means.
START_OPTIONS = {
    "target": "column to predict (required)",
    "rollouts": "number of simulations",
    "budget": "time budget: seconds or 90s / 10m / 1h",
    "parallel": "simulations at once (one kernel each; default one per core, at most 4)",
    "metric": "rmse, mae, r2, rmsle, f1, f1_weighted, accuracy, roc_auc",
    "task": "regression, binary or multiclass (inferred by default)",
    "llm": "model on an OpenAI-compatible endpoint (key in OPENAI_API_KEY), or off",
    "insights": "llm, builtin or both (default: llm when an LLM is configured)",
    "fallback": "builtin: keep going on the built-in catalog when the LLM fails",
    "token_budget": "LLM tokens the run may use (prompt + completion)",
    "name": "a name for the run",
    "test": "a variable holding a separate test DataFrame",
    "max_depth": "pipeline stages searched, 1-5",
    "seed": "random seed",
    "cv_folds": "folds of the out-of-fold judge of the final choice (0: choose on dev)",
}
_INT_OPTIONS = ("rollouts", "parallel", "max_depth", "seed", "cv_folds")


class SelaUsageError(SelaInputError):
    """A ``%sela`` line that cannot be understood; the message says how to write it."""


def parse_line(line: str) -> tuple[list[str], dict[str, str]]:
    """Split a magic line into positional words and ``key=value`` options."""
    try:
        tokens = shlex.split(line)
    except ValueError as exc:
        raise SelaUsageError(f"cannot read the line: {exc}") from exc
    words, options = [], {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if sep and key.isidentifier():
            if key in options:
                raise SelaUsageError(f"option {key!r} is given twice")
            options[key] = value
        else:
            words.append(token)
    return words, options


# ---------------------------------------------------------------------------------------------
# Backends: a Jupyter server over REST, or the engine in this process


class ServerBackend:
    """Runs on a Jupyter server's ``sela_jupyter`` extension, over REST."""

    kind = "server"

    def __init__(self, url: str, token: str = "", *, same_host: bool = False) -> None:
        self.url = url.rstrip("/") + "/"
        self.token = token
        self.same_host = same_host
        self._info: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<ServerBackend {self.url} same_host={self.same_host}>"

    # -- HTTP -----------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        raw: bool = False,
        timeout: float = 120.0,
    ) -> Any:
        """One REST call under ``sela/api``; JSON answer (or bytes with ``raw``)."""
        url = self.url + "sela/api/" + path.lstrip("/")
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            message = exc.reason
            with contextlib.suppress(Exception):
                message = json.loads(exc.read()).get("message") or message
            if exc.code == 404:
                raise RunNotFoundError(message) from None
            raise SelaInputError(f"{message} (HTTP {exc.code})") from None
        except urllib.error.URLError as exc:
            raise SelaError(
                f"cannot reach the Jupyter server at {self.url}: {exc.reason}"
            ) from None
        if raw:
            return payload
        return json.loads(payload) if payload else None

    def info(self) -> dict[str, Any]:
        """``GET /sela/api/info`` (cached)."""
        if self._info is None:
            self._info = self.request("GET", "info", timeout=10)
        return self._info

    # -- runs -----------------------------------------------------------------------------------
    def _handover(self, frame: Any) -> dict[str, str]:
        if self.same_host:
            incoming = Path(self.info()["incoming_dir"])
            try:
                incoming.mkdir(parents=True, exist_ok=True)
                name = f"frame-{os.getpid()}-{time.time_ns()}.parquet"
                frame.to_parquet(incoming / name)
                return {"file": name}
            except OSError:
                pass  # not writable from here after all: upload instead
        buffer = io.BytesIO()
        frame.to_parquet(buffer)
        return {"parquet_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}

    def start(self, frame: Any, target: str, *, test: Any = None, **fields: Any) -> str:
        """Hand the frame over and start a run; its id."""
        body = {"target": target, "data": self._handover(frame), **fields}
        if test is not None:
            body["test"] = self._handover(test)
        return self.request("POST", "runs", body)["id"]

    def list_runs(self) -> list[dict[str, Any]]:
        """Run summaries, newest first."""
        return self.request("GET", "runs")["runs"]

    def snapshot(self, run_id: str) -> dict[str, Any]:
        """The run with its tree."""
        return self.request("GET", f"runs/{_q(run_id)}", timeout=30)

    def node(self, run_id: str, node_id: str) -> dict[str, Any]:
        """A node's detail."""
        return self.request("GET", f"runs/{_q(run_id)}/nodes/{_q(node_id)}", timeout=30)

    def script(self, run_id: str, node_id: str = "final") -> str:
        """A pipeline (the run's final one by default) as a script."""
        raw = self.request(
            "GET", f"runs/{_q(run_id)}/export", params={"format": "py", "node": node_id}, raw=True
        )
        return raw.decode("utf-8")

    def notebook(self, run_id: str, node_id: str = "final") -> str:
        """A pipeline (the run's final one by default) as notebook JSON."""
        raw = self.request(
            "GET",
            f"runs/{_q(run_id)}/export",
            params={"format": "ipynb", "node": node_id},
            raw=True,
        )
        return raw.decode("utf-8")

    def stop(self, run_id: str) -> None:
        """Stop a run."""
        self.request("POST", f"runs/{_q(run_id)}/stop", {})

    def resume(self, run_id: str) -> None:
        """Resume a run."""
        self.request("POST", f"runs/{_q(run_id)}/resume", {})

    def poke(self, run_id: str) -> None:
        """Nothing to do: the live view polls REST."""


class LocalBackend:
    """The engine in this process: each run searches in its own thread with its own event loop."""

    kind = "in-process"

    def __init__(self, runs_dir: str | None = None) -> None:
        from .engine.run_status import interrupt_orphaned_runs
        from .engine.store import RunStore

        self.store = RunStore(runs_dir or None)
        interrupt_orphaned_runs(self.store)  # what a killed kernel or `sela run` left running
        self.threads: dict[str, threading.Thread] = {}
        self.searches: dict[str, Any] = {}
        self.loops: dict[str, asyncio.AbstractEventLoop] = {}
        self.views: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<LocalBackend {self.store.root}>"

    def start(self, frame: Any, target: str, *, test: Any = None, **fields: Any) -> str:
        """Create the run here and search it in a background thread."""
        from .engine.new_run import create_run
        from .engine.options import build_options

        manager_options = build_options(fields.pop("options", {}))
        run_id = create_run(
            frame,
            target,
            store=self.store,
            options=manager_options,
            test=test,
            task_type=fields.get("task"),
            metric=fields.get("metric"),
            name=fields.get("name"),
            description=fields.get("description", ""),
            source=fields.get("source", "magic"),
        )
        self._launch(run_id)
        return run_id

    def _launch(self, run_id: str) -> None:
        from .engine.search import Search

        if run_id in self.threads and self.threads[run_id].is_alive():
            raise SelaInputError(f"run {run_id} is already searching")
        search = Search(self.store, run_id, listeners=[lambda event: self.poke(run_id)])
        ready = threading.Event()

        def target() -> None:
            loop = asyncio.new_event_loop()
            self.loops[run_id] = loop
            ready.set()
            try:
                loop.run_until_complete(search.run())
            finally:
                loop.close()
                self.poke(run_id)

        thread = threading.Thread(target=target, name=f"sela-run-{run_id}", daemon=True)
        self.threads[run_id] = thread
        self.searches[run_id] = search
        thread.start()
        ready.wait(5)

    def poke(self, run_id: str) -> None:
        """Wake the run's live view (called from the search thread on every event)."""
        view = self.views.get(run_id)
        if view is not None:
            view.poke()

    def active(self, run_id: str) -> bool:
        """True while the run's search thread runs."""
        thread = self.threads.get(run_id)
        return thread is not None and thread.is_alive()

    def list_runs(self) -> list[dict[str, Any]]:
        """Stored runs, newest first."""
        return [{**r.to_dict(), "active": self.active(r.id)} for r in self.store.list_runs()]

    def snapshot(self, run_id: str) -> dict[str, Any]:
        """The run with its tree, read from the run directory (written atomically)."""
        record = self.store.read_run(run_id).to_dict()
        return {**record, "active": self.active(run_id), "tree": self.store.read_tree(run_id)}

    def node(self, run_id: str, node_id: str) -> dict[str, Any]:
        """A node's detail from its ``result.json``."""
        from .engine.records import NodeDetail

        tree = self.store.read_tree(run_id)
        detail = NodeDetail.from_tree(tree, node_id, self.store.read_node(run_id, node_id))
        if detail is None:
            raise RunNotFoundError(f"run {run_id} has no node {node_id!r}")
        return detail.to_dict()

    def _run(self, run_id: str) -> Any:
        from .engine.api import Run

        return Run(self.store, run_id)

    def script(self, run_id: str, node_id: str = "final") -> str:
        """A pipeline (the run's final one by default) as a script."""
        return self._run(run_id).export_code(node_id)

    def notebook(self, run_id: str, node_id: str = "final") -> str:
        """A pipeline (the run's final one by default) as notebook JSON."""
        from .engine.export import notebook_text

        run = self._run(run_id)
        return notebook_text(run.cells(node_id), run.export_metadata(node_id))

    def stop(self, run_id: str) -> None:
        """Stop a run searching in this process and wait for its kernels to shut down."""
        search, loop = self.searches.get(run_id), self.loops.get(run_id)
        if search is None or loop is None or not self.active(run_id):
            raise SelaInputError(f"run {run_id} is not searching in this kernel")
        loop.call_soon_threadsafe(search.stop)
        self.threads[run_id].join(60)

    def resume(self, run_id: str) -> None:
        """Resume a run in a new background thread."""
        self.store.existing_run_dir(run_id)
        self._launch(run_id)

    def shutdown(self) -> None:
        """Stop every search of this process (at interpreter exit)."""
        for run_id in list(self.threads):
            if self.active(run_id):
                with contextlib.suppress(Exception):
                    self.stop(run_id)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def find_runtime_server(pid: str | int | None = None) -> dict[str, Any] | None:
    """The ``jpserver-<pid>.json`` of the server that started this kernel, if there is one."""
    from jupyter_core.paths import jupyter_runtime_dir

    pid = pid or os.environ.get("JPY_PARENT_PID")
    if not pid:
        return None
    path = Path(jupyter_runtime_dir()) / f"jpserver-{pid}.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------
# The magics


@magics_class
class SelaMagics(Magics):
    """``%sela`` and ``%%sela``: start, watch, stop, resume, export and insert SELA runs."""

    server_url = Unicode(
        config=True,
        help=(
            "URL of a Jupyter server with the sela_jupyter extension (e.g. http://host:8888/). "
            "Empty: the SELA_SERVER_URL environment variable, then the server that started "
            "this kernel, then the engine in this process."
        ),
    )
    token = Unicode(
        config=True,
        help="Token for server_url (default: the SELA_SERVER_TOKEN environment variable).",
    )
    mode = Enum(
        ["auto", "server", "local"],
        default_value="auto",
        config=True,
        help=(
            "auto: discover a server, else run in this process; server: require a server; "
            "local: always run the engine in this process."
        ),
    )
    upload = Bool(
        False,
        config=True,
        help=(
            "Always upload the DataFrame in the request, even when the server shares this "
            "machine's disk (by default a same-host server gets a parquet file in its runs dir)."
        ),
    )
    runs_dir = Unicode(
        "",
        config=True,
        help="Runs directory for in-process runs (default: ./.sela/runs).",
    )
    poll_interval = Float(
        1.0, config=True, help="Seconds between live-view refreshes while a run searches."
    )
    top_k = Int(8, config=True, help="Best nodes the live view's tree shows (with their paths).")

    @default("server_url")
    def _default_server_url(self) -> str:
        return os.environ.get("SELA_SERVER_URL", "")

    @default("token")
    def _default_token(self) -> str:
        return os.environ.get("SELA_SERVER_TOKEN", "")

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._backend: ServerBackend | LocalBackend | None = None
        self.views: dict[str, Any] = {}
        self.selected: tuple[str, str] | None = None
        self.last_run: str | None = None

    # -- discovery ------------------------------------------------------------------------------
    @property
    def backend(self) -> ServerBackend | LocalBackend:
        """Where runs go, found once (see the module docstring)."""
        if self._backend is None:
            self._backend = self.discover()
        return self._backend

    def discover(self) -> ServerBackend | LocalBackend:
        """Explicit setting, then the server that launched this kernel, then in-process."""
        if self.mode != "local":
            if self.server_url:
                backend = ServerBackend(self.server_url, self.token, same_host=False)
                backend.info()  # fail now, with a clear message, if it does not answer
                return backend
            info = find_runtime_server()
            if info is not None:
                backend = ServerBackend(
                    info["url"], info.get("token", ""), same_host=not self.upload
                )
                try:
                    backend.info()
                    return backend
                except SelaError as exc:
                    if self.mode == "server":
                        raise
                    print(
                        f"sela: the Jupyter server at {info['url']} has no working sela_jupyter "
                        f"extension ({exc}); searching in this kernel instead"
                    )
            elif self.mode == "server":
                raise SelaUsageError(
                    "no Jupyter server found: set c.SelaMagics.server_url (or SELA_SERVER_URL)"
                )
        backend = LocalBackend(self.runs_dir or None)
        import atexit

        atexit.register(backend.shutdown)
        return backend

    # -- entry point ----------------------------------------------------------------------------
    @line_cell_magic
    def sela(self, line: str = "", cell: str | None = None) -> Any:
        """Search a pipeline for a DataFrame, or manage runs.

        ::

          %sela DF target=COLUMN [rollouts=N] [budget=10m] [parallel=2] [metric=M] [task=T]
                [llm=MODEL|off] [insights=llm|builtin|both] [fallback=builtin]
                [token_budget=N] [name=NAME] [test=TEST_DF] [max_depth=N] [seed=N]
                [cv_folds=N]
          %%sela DF target=COLUMN ...   (the cell body describes the task in free text)
          %sela runs
          %sela wait [RUN]
          %sela stop [RUN]
          %sela resume RUN
          %sela export RUN [PATH]        (.ipynb by default, .py by extension)
          %sela insert [RUN] [NODE|best|final]

        RUN: an id, a unique prefix, a name, or ``last``. The search runs on the Jupyter server
        that started this kernel (or ``c.SelaMagics.server_url``), else in this process; the
        cell returns at once and shows a live view of the search.
        """
        try:
            return self._dispatch(line, cell)
        except SelaError as exc:
            print(f"sela: {exc}")
            return None

    def _dispatch(self, line: str, cell: str | None) -> Any:
        words, options = parse_line(line)
        if not words:
            raise SelaUsageError(
                "give a DataFrame and a target (%sela df target=price) or a command "
                "(runs, wait, stop, resume, export, insert); %sela? shows the help"
            )
        command = words[0]
        commands = {
            "runs": self.cmd_runs,
            "wait": self.cmd_wait,
            "stop": self.cmd_stop,
            "resume": self.cmd_resume,
            "export": self.cmd_export,
            "insert": self.cmd_insert,
            "help": self.cmd_help,
        }
        if command in commands and command not in self.shell.user_ns:
            return commands[command](words[1:], options)
        return self.cmd_start(words, options, cell)

    # -- commands -------------------------------------------------------------------------------
    def cmd_help(self, words: list[str], options: dict[str, str]) -> None:
        """Print the usage."""
        print(self.sela.__doc__)

    def start_fields(
        self, words: list[str], options: dict[str, str], cell: str | None
    ) -> tuple[Any, str, dict[str, Any]]:
        """Validate a start line: the frame, the target and the request fields."""
        import pandas as pd

        if len(words) != 1:
            raise SelaUsageError(
                f"expected one DataFrame variable before the options, got {' '.join(words)!r}"
            )
        unknown = sorted(set(options) - set(START_OPTIONS))
        if unknown:
            raise SelaUsageError(
                f"unknown option(s) {', '.join(unknown)}; known: {', '.join(START_OPTIONS)}"
            )
        name = words[0]
        frame = self._variable(name)
        if not isinstance(frame, pd.DataFrame):
            raise SelaUsageError(
                f"{name} is a {type(frame).__name__}, not a pandas DataFrame; "
                f"use pd.DataFrame({name}) first"
            )
        target = options.get("target")
        if not target:
            raise SelaUsageError(f"missing target: %sela {name} target=COLUMN")
        if target not in frame.columns:
            import difflib

            close = difflib.get_close_matches(target, [str(c) for c in frame.columns], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SelaUsageError(f"target {target!r} is not a column of {name}{hint}")
        run_options: dict[str, Any] = {}
        for key in _INT_OPTIONS:
            if key in options:
                try:
                    run_options[key] = int(options[key])
                except ValueError:
                    raise SelaUsageError(
                        f"{key} must be a whole number, got {options[key]!r}"
                    ) from None
        if "budget" in options:
            from .engine.options import parse_duration

            run_options["time_budget"] = parse_duration(options["budget"])
        for key in ("llm", "insights", "fallback", "token_budget"):
            if key in options:
                run_options[key] = options[key]
        test = None
        if "test" in options:
            test = self._variable(options["test"])
            if not isinstance(test, pd.DataFrame):
                raise SelaUsageError(f"test={options['test']} is not a pandas DataFrame")
        fields = {
            "options": run_options,
            "task": options.get("task"),
            "metric": options.get("metric"),
            "name": options.get("name") or None,
            "description": (cell or "").strip(),
            "source": f"%sela {name}",
            "test": test,
        }
        return frame, target, fields

    def _variable(self, name: str) -> Any:
        if name not in self.shell.user_ns:
            raise SelaUsageError(f"no variable {name!r} in this notebook")
        return self.shell.user_ns[name]

    def cmd_start(self, words: list[str], options: dict[str, str], cell: str | None) -> None:
        """Profile the frame, start a run, show the live view and return."""
        from IPython.display import display

        frame, target, fields = self.start_fields(words, options, cell)
        profile_text = self.profile(frame, target, fields)
        print(profile_text)
        backend = self.backend
        test = fields.pop("test")
        run_id = backend.start(frame, target, test=test, **fields)
        self.last_run = run_id
        where = backend.url if isinstance(backend, ServerBackend) else "this kernel"
        print(f"run {run_id} searching on {where}")
        view = self.live_view(run_id)
        display(view)
        return None

    def profile(self, frame: Any, target: str, fields: dict[str, Any]) -> str:
        """The compact profile shown before a run: shape, task, metric, columns with problems,
        from the very split the run will use (its seed, and its test frame if given)."""
        from .engine.options import OPTION_DEFAULTS
        from .engine.task import prepare_data

        data = prepare_data(
            frame,
            target,
            test=fields.get("test"),
            task_type=fields.get("task"),
            metric=fields.get("metric"),
            seed=int(fields["options"].get("seed") or OPTION_DEFAULTS["seed"]),
        )
        profile, task = data.profile, data.task
        return f"{profile.summary()}\nmetric: {task.metric} ({task.direction})"

    def live_view(self, run_id: str) -> Any:
        """A started :class:`~sela_jupyter.widgets.LiveView` of ``run_id``."""
        from .widgets import LiveView

        backend = self.backend
        view = LiveView(
            backend,
            run_id,
            interval=self.poll_interval,
            top_k=self.top_k,
            on_select=self._remember_selection,
        )
        self.views[run_id] = view
        if isinstance(backend, LocalBackend):
            backend.views[run_id] = view
        return view.start()

    def _remember_selection(self, run_id: str, node_id: str) -> None:
        self.selected = (run_id, node_id)

    def resolve(self, ref: str | None) -> str:
        """A run id from an id, prefix, name or ``last``."""
        from .engine.store import pick_run

        return pick_run(
            self.backend.list_runs(),
            ref,
            no_runs="no runs yet: start one with %sela df target=COLUMN",
            not_found=f"no run {ref!r}; %sela runs lists them",
        )

    def cmd_runs(self, words: list[str], options: dict[str, str]) -> Any:
        """A table of runs."""
        import pandas as pd

        rows = []
        for r in self.backend.list_runs():
            best = r.get("best") or {}
            rows.append(
                {
                    "run": r["id"],
                    "name": r.get("name", ""),
                    "status": r.get("status"),
                    "active": r.get("active", False),
                    "simulations": r.get("simulations", 0),
                    "metric": (r.get("task") or {}).get("metric"),
                    "best_dev": best.get("dev_score"),
                }
            )
        return pd.DataFrame(
            rows, columns=["run", "name", "status", "active", "simulations", "metric", "best_dev"]
        )

    def cmd_wait(self, words: list[str], options: dict[str, str]) -> dict[str, Any]:
        """Block until the run ends; print its result and return its record."""
        from .engine.statuses import LIVE_RUN_STATUSES, RunStatus

        run_id = self.resolve(words[0] if words else self.last_run)
        timeout = float(options.get("timeout", "0") or 0) or None
        started = time.monotonic()
        while True:
            record = self.backend.snapshot(run_id)
            status = record.get("status")
            # A queued run is not active yet; a live view of any other status is.
            if status not in LIVE_RUN_STATUSES or (
                status != RunStatus.QUEUED and not record.get("active", True)
            ):
                break
            if timeout is not None and time.monotonic() - started > timeout:
                raise SelaError(f"run {run_id} still searching after {timeout:.0f} s")
            time.sleep(min(self.poll_interval, 1.0))
        view = self.views.get(run_id)
        if view is not None:
            view.refresh()
        from .engine.records import RunRecord
        from .engine.run_status import failure_message

        ended = RunRecord.from_dict(record)
        # The run may live on another machine: no log to point at.
        failure = failure_message(run_id, ended.status, ended.error)
        if failure is not None:
            raise SelaRunError(failure, run_id=run_id)
        best = ended.best
        print(
            f"run {run_id}: {ended.status}, {ended.simulations} simulations"
            + (
                f", best node {best.node} dev {ended.task.metric} {best.dev_score:.6g}"
                if best is not None and best.dev_score is not None
                else ""
            )
            + (f"\nerror: {ended.error}" if ended.error else "")
        )
        return {k: v for k, v in record.items() if k != "tree"}

    def cmd_stop(self, words: list[str], options: dict[str, str]) -> None:
        """Stop a run."""
        run_id = self.resolve(words[0] if words else self.last_run)
        self.backend.stop(run_id)
        print(f"run {run_id} stopped; %sela resume {run_id} continues it")

    def cmd_resume(self, words: list[str], options: dict[str, str]) -> None:
        """Resume a run and show its live view."""
        from IPython.display import display

        if not words:
            raise SelaUsageError("which run? %sela resume RUN")
        run_id = self.resolve(words[0])
        self.backend.resume(run_id)
        self.last_run = run_id
        print(f"run {run_id} resumed")
        display(self.live_view(run_id))

    def cmd_export(self, words: list[str], options: dict[str, str]) -> str:
        """Write the run's final pipeline (or ``node=``'s) as .ipynb or .py; the path."""
        if not words:
            raise SelaUsageError("which run? %sela export RUN [PATH] [node=final|best|ID]")
        run_id = self.resolve(words[0])
        node = options.get("node", "final")
        path = Path(words[1]) if len(words) > 1 else Path(f"sela-{run_id}-{node}.ipynb")
        if path.suffix == ".py":
            text = self.backend.script(run_id, node)
        elif path.suffix == ".ipynb":
            text = self.backend.notebook(run_id, node)
        else:
            raise SelaUsageError(f"export to .ipynb or .py, not {path.suffix or 'no extension'!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
        return str(path)

    def cmd_insert(self, words: list[str], options: dict[str, str]) -> None:
        """Put a node's pipeline into the next cell (``set_next_input``)."""
        if not words and self.selected is not None:
            run_id, node = self.selected
        else:
            run_id = self.resolve(words[0] if words else self.last_run)
            node = words[1] if len(words) > 1 else "final"
        code = self.backend.script(run_id, node)
        self.shell.set_next_input(code, replace=False)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext sela_jupyter``)."""
    ipython.register_magics(SelaMagics(shell=ipython))
