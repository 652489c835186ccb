"""The jupyter_server extension: ``SelaApp`` serves the engine under ``<base_url>/sela/api/``.

Enabled on install by ``jupyter-config/server-config/sela_jupyter.json``. Every setting is a
traitlet (``c.SelaApp.<name>`` in ``jupyter_server_config.py`` or ``--SelaApp.<name>=...``) and is
listed with its help by ``jupyter server --help-all``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Int, Unicode, default

from ..engine.options import MAX_DEFAULT_PARALLEL, OPTION_DEFAULTS
from ..engine.runlog import ENGINE_LOGGER, ForwardHandler
from ..engine.store import DEFAULT_RUNS_DIR, RunStore
from .handlers import handler_list
from .manager import EVENT_SCHEMA_PATH, RunManager


class SelaApp(ExtensionApp):
    """SELA pipeline search for Jupyter: REST over the engine, live events on the event bus."""

    name = "sela_jupyter"
    load_other_extensions = True

    runs_dir = Unicode(
        "",
        config=True,
        help=(
            "Directory that holds the runs (one sub-directory per run). Relative paths are taken "
            "from the server's root_dir; empty means <root_dir>/.sela/runs, the same place the "
            "`sela` command and the Python API use when started in root_dir."
        ),
    )
    default_rollouts = Int(
        OPTION_DEFAULTS["rollouts"],
        config=True,
        help="Simulations a run performs when the request gives neither rollouts nor a time budget.",
    )
    default_time_budget = Unicode(
        "",
        config=True,
        help=(
            "Wall-clock budget of a run when the request gives none: seconds or '90s', '10m', "
            "'1h'. Empty means no time limit (the rollout count ends the run)."
        ),
    )
    default_parallel = Int(
        OPTION_DEFAULTS["parallel"],
        config=True,
        help=(
            "Simulations a run executes at once (one child kernel each) unless the request says;"
            f" by default one per core, at most {MAX_DEFAULT_PARALLEL}."
        ),
    )
    default_max_depth = Int(
        OPTION_DEFAULTS["max_depth"],
        config=True,
        help="Pipeline stages searched (1 = eda only ... 5 = up to ensemble) unless the request says.",
    )
    max_concurrent_runs = Int(
        2,
        config=True,
        help=(
            "Runs this server searches at the same time; more wait in a queue (status 'queued') "
            "and start in order as runs end. Every run's kernels share the machine's cores, so "
            "two runs at once each take about twice as long as one alone."
        ),
    )
    max_queued_runs = Int(
        8,
        config=True,
        help=(
            "Runs that may wait for a free slot; starting or resuming one more answers 429 (and "
            "leaves nothing on disk) until a run ends or is stopped. 0: no queue."
        ),
    )
    simulation_timeout = Float(
        OPTION_DEFAULTS["simulation_timeout"],
        config=True,
        help="Seconds one simulation (all its cells) may take before it is stopped and scores 0.",
    )
    cell_timeout = Float(
        OPTION_DEFAULTS["cell_timeout"],
        config=True,
        help="Seconds one stage cell may run before its simulation is stopped and scores 0.",
    )
    model = Unicode(
        "",
        config=True,
        help=(
            "Model name for LLM-proposed insights and LLM-written stage code on an "
            "OpenAI-compatible endpoint (default: the SELA_MODEL environment variable). The key "
            "is read from the variable named by api_key_env and never stored. Empty (or no key "
            "and no base_url) means the built-in insight catalog and template coder, offline."
        ),
    )
    base_url = Unicode(
        "",
        config=True,
        help=(
            "Base URL of the OpenAI-compatible endpoint used with `model` (OpenAI, Azure, vLLM, "
            "Ollama, llama.cpp). Empty means the OPENAI_BASE_URL environment variable, if set."
        ),
    )
    api_key_env = Unicode(
        "OPENAI_API_KEY",
        config=True,
        help=(
            "Name of the environment variable that holds the LLM endpoint's API key (the key "
            "itself is never configured, stored, logged or sent in a REST response)."
        ),
    )
    token_budget = Int(
        0,
        config=True,
        help="LLM tokens (prompt + completion) one run may use; 0 means no limit.",
    )
    kernel_name = Unicode(
        "python3",
        config=True,
        help=(
            "The kernel spec simulations run in. With a gateway (GatewayClient.url) it names one "
            "of the gateway's kernel specs, e.g. the image with the run's libraries."
        ),
    )
    max_transfer_mb = Int(
        1024,
        config=True,
        help=(
            "The largest file (a frame, a snapshot, predictions) sent to or fetched from a "
            "simulation kernel with no shared disk, in MB. A larger snapshot is replayed instead; "
            "larger frames fail the run's simulations with a message that says so."
        ),
    )
    kernel_keepalive_interval = Float(
        10.0,
        config=True,
        help=(
            "Seconds between marking a running search's child kernels as active, so the server's "
            "idle-kernel culler (MappingKernelManager.cull_idle_timeout) never culls them mid-run. "
            "Keep it below cull_idle_timeout."
        ),
    )

    @default("model")
    def _default_model(self) -> str:
        return os.environ.get("SELA_MODEL", "")

    @default("base_url")
    def _default_base_url(self) -> str:
        return os.environ.get("OPENAI_BASE_URL", "")

    def resolved_runs_dir(self) -> Path:
        """The runs directory as an absolute path."""
        root = Path(self.serverapp.root_dir).expanduser()
        if not self.runs_dir:
            return root / DEFAULT_RUNS_DIR
        path = Path(self.runs_dir).expanduser()
        return path if path.is_absolute() else root / path

    def initialize_settings(self) -> None:
        """Create the run manager, register the event schema on the server's event bus, and show
        the engine's warnings in the server's log."""
        self._engine_log = ForwardHandler(self.log)
        logging.getLogger(ENGINE_LOGGER).addHandler(self._engine_log)
        event_logger = getattr(self.serverapp, "event_logger", None)
        if event_logger is not None:
            event_logger.register_event_schema(EVENT_SCHEMA_PATH)
        self.run_manager = RunManager(
            RunStore(self.resolved_runs_dir()),
            kernel_manager=self.serverapp.kernel_manager,
            event_logger=event_logger,
            max_concurrent_runs=self.max_concurrent_runs,
            max_queued_runs=self.max_queued_runs,
            defaults={
                "rollouts": self.default_rollouts,
                "time_budget": self.default_time_budget or None,
                "parallel": self.default_parallel,
                "max_depth": self.default_max_depth,
                "simulation_timeout": self.simulation_timeout,
                "cell_timeout": self.cell_timeout,
                "llm": self.model,
                "llm_base_url": self.base_url,
                "llm_key_env": self.api_key_env,
                "token_budget": self.token_budget or None,
            },
            keepalive_interval=self.kernel_keepalive_interval,
            kernel_name=self.kernel_name,
            max_transfer_bytes=self.max_transfer_mb * 2**20,
            log=self.log,
        )
        self.settings.update({"sela_run_manager": self.run_manager, "sela_model": self.model})
        self.log.info("SELA runs directory: %s", self.run_manager.store.root)

    def initialize_handlers(self) -> None:
        """Declare the REST routes (one list, in :mod:`.handlers`)."""
        self.handlers.extend(handler_list())

    async def stop_extension(self) -> None:
        """Stop every running search so its child kernels are shut down with the server."""
        manager = getattr(self, "run_manager", None)
        if manager is not None:
            await manager.shutdown()
        handler = getattr(self, "_engine_log", None)
        if handler is not None:
            logging.getLogger(ENGINE_LOGGER).removeHandler(handler)
