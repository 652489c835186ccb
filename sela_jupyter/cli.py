"""The ``sela`` command line: headless runs, listing, resuming and exporting.

sela run data.csv --target price --rollouts 10 --parallel 2
sela list
sela show RUN
sela resume RUN
sela export RUN --format ipynb

Exit status: 0 when the run finished (or was stopped), 1 when it failed (no simulation
succeeded; one line says why, ``--debug`` or the run's ``run.log`` has the traceback), 2 for
unusable input or options, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from .engine.errors import SelaError, SelaInputError, SelaRunError
from .engine.runlog import log_to_console
from .engine.statuses import NodeStatus


def read_table(path: str) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet or JSON(L) file, with one clear error when it does not parse."""
    file = Path(path)
    if not file.is_file():
        raise SelaInputError(f"no such data file: {path}")
    suffix = "".join(file.suffixes[-2:]).lower()
    try:
        if suffix.endswith(".parquet") or suffix.endswith(".pq"):
            return pd.read_parquet(file)
        if suffix.endswith((".jsonl", ".ndjson")):
            return pd.read_json(file, lines=True)
        if suffix.endswith(".json"):
            return pd.read_json(file)
        sep = "\t" if suffix.endswith((".tsv", ".tab")) else ","
        frame = pd.read_csv(file, sep=sep)
        if len(frame.columns):
            # read_csv renames a repeated header to "a.1": check the header as written
            header = pd.read_csv(file, sep=sep, header=None, nrows=1).iloc[0].astype(str)
            if header.duplicated().any():
                repeated = ", ".join(repr(c) for c in header[header.duplicated()].unique())
                raise SelaInputError(
                    f"{path} has duplicated column names: {repeated}; "
                    "rename them so every column has its own name"
                )
    except (ValueError, UnicodeDecodeError, OSError, pd.errors.ParserError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SelaInputError(f"could not parse {path}: {detail}") from exc
    if frame.shape[1] == 1 and frame.shape[0] > 0 and sep == ",":
        only = str(frame.columns[0])
        if any(ch in only for ch in ";\t|"):
            raise SelaInputError(
                f"could not parse {path}: every row is a single field ({only[:60]!r}); "
                "is it separated by something other than commas?"
            )
    return frame


class ProgressPrinter:
    """Event listener that draws a progress bar and one line per finished simulation."""

    def __init__(
        self, total: int | None, budget: float | None, metric: str, stream: TextIO = sys.stderr
    ) -> None:
        self.total = total
        self.budget = budget
        self.metric = metric
        self.stream = stream
        self.done = 0
        self.best: float | None = None
        self.started = time.monotonic()
        self.tty = stream.isatty()

    def __call__(self, event: dict[str, Any]) -> None:
        """Handle one search event."""
        if event["type"] == "run_started":
            self.done = event["run"].get("simulations", 0)
        if event["type"] != "simulation_finished":
            return
        self.done += 1
        node = event["node"]
        best = event.get("best") or {}
        self.best = best.get("dev_score")
        insight = (node.get("insight") or {}).get("text", "built-in defaults")
        if node["status"] == NodeStatus.FAILED:
            result = f"failed: {node.get('error') or ''}"[:90]
        else:
            result = f"dev {self.metric} {node['dev_score']:.6g}"
        elapsed = time.monotonic() - self.started
        self._clear()
        print(
            f"  {node['id']:>5} {node['stage']:<10} {insight[:60]:<60} {result}", file=self.stream
        )
        self._bar(elapsed)

    def _clear(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")

    def _bar(self, elapsed: float) -> None:
        if self.total:
            width = 24
            filled = int(width * min(self.done, self.total) / self.total)
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
        else:
            bar = f"{self.done} simulations"
        budget = f" / {self.budget:.0f}s" if self.budget else ""
        best = f"{self.best:.6g}" if self.best is not None else "-"
        text = f"{bar}  best {self.metric} {best}  {elapsed:.0f}s{budget}"
        if self.tty:
            self.stream.write(text)
            self.stream.flush()
        else:
            print(text, file=self.stream)

    def close(self) -> None:
        """End the progress line."""
        if self.tty:
            self.stream.write("\n")


def _print_summary(run: Any, stream: TextIO = sys.stdout, *, error: bool = True) -> None:
    record = run.record
    task = run.task
    with pd.option_context("display.max_colwidth", 70, "display.width", 200):
        board = run.leaderboard(limit=10)
        # One line per node: its own insight (the path is printed for the best node below).
        board["insights"] = board["insights"].str.split(" > ").str[-1].str.slice(0, 60)
        board = board.rename(columns={"insights": "insight"})
        print(
            f"\nrun {run.id}: {record.status}, {record.simulations} simulations, "
            f"{record.timings.elapsed:.1f}s",
            file=stream,
        )
        print(
            f"task: {task.task_type}, target {task.target!r}, metric {task.metric} "
            f"({task.direction})\n",
            file=stream,
        )
        print(board.to_string() if len(board) else "(no simulations yet)", file=stream)
    best = run.best
    if best is not None:
        print(
            f"\nbest node {best.id}: dev {task.metric} {best.dev_score:.6g}"
            + (
                f", test {task.metric} {best.test_score:.6g}" if best.test_score is not None else ""
            ),
            file=stream,
        )
        for insight in run.tree.insights(best):
            print(f"  {insight.stage:<10} {insight.text}", file=stream)
    final = run.final
    if final is not None and final.shows_beside(best.id if best else None):
        what = final.label(weights=True)
        chosen = (
            f"chosen out of fold on train + dev (cv {task.metric} {final.cv_score:.6g})"
            if final.chosen_on == "cv" and final.cv_score is not None
            else "chosen on dev"
        )
        test = final.test_score
        print(
            f"\nfinal: {what}: dev {task.metric} {final.dev_score:.6g}"
            + (f", test {task.metric} {test:.6g}" if test is not None else "")
            + f"\n  {chosen}; sela export exports it, --node best the best node on dev",
            file=stream,
        )
    print(
        f"\nnotebooks: {run.path / 'nodes'}/<node>/notebook.ipynb ({len(run.notebooks())} written)",
        file=stream,
    )
    tokens = record.tokens
    if record.llm or tokens.calls:
        model = record.llm.model if record.llm else ""
        print(
            f"LLM {model}: {tokens.calls} calls, {tokens.prompt} prompt + "
            f"{tokens.completion} completion tokens, ~${tokens.cost:.4f}",
            file=stream,
        )
    for warning in record.warnings:
        print(f"warning: {warning}", file=stream)
    if error and record.error:
        print(f"error: {record.error}", file=stream)


def _cmd_run(args: argparse.Namespace) -> int:
    from .engine.new_run import create_run
    from .engine.options import USER_OPTIONS, build_options
    from .engine.store import RunStore

    frame = read_table(args.data)
    test = read_table(args.test) if args.test else None
    options = build_options({name: getattr(args, name, None) for name in USER_OPTIONS})
    store = RunStore(args.runs_dir)
    run_id = create_run(
        frame,
        args.target,
        store=store,
        options=options,
        test=test,
        task_type=args.task,
        metric=args.metric,
        name=args.name,
        description=args.description,
        source=str(Path(args.data).resolve()),
    )
    return _search(store, run_id)


def _search(store: Any, run_id: str) -> int:
    from .engine.api import Run, run_sync
    from .engine.search import Search

    run = Run(store, run_id)
    opts = run.record.options
    print(f"run {run_id} in {run.path}", file=sys.stderr)
    print(run.profile.summary(), file=sys.stderr)
    printer = ProgressPrinter(opts.rollouts, opts.time_budget, run.task.metric)
    search = Search(store, run_id, listeners=[printer])
    try:
        run_sync(search.run())
    except KeyboardInterrupt:
        printer.close()
        print("interrupted: `sela resume` finishes the run", file=sys.stderr)
        return 130
    printer.close()
    run.reload()
    if run.record.simulations:  # a run whose kernels never started has nothing to list
        _print_summary(run, error=False)
    if run.failure:  # one line from main(), exit status 1
        raise SelaRunError(run.failure, run_id=run.id, run_dir=str(run.path))
    return 0


def _store(args: argparse.Namespace) -> Any:
    """The runs directory, with runs that a killed process left searching marked interrupted."""
    from .engine.run_status import interrupt_orphaned_runs
    from .engine.store import RunStore

    store = RunStore(args.runs_dir)
    interrupt_orphaned_runs(store)
    return store


def _cmd_resume(args: argparse.Namespace) -> int:
    store = _store(args)
    return _search(store, store.resolve(args.run))


def _cmd_list(args: argparse.Namespace) -> int:
    store = _store(args)
    runs = store.list_runs()
    if not runs:
        print(f"no runs in {store.root}")
        return 0
    rows = []
    for r in runs:
        rows.append(
            {
                "id": r.id,
                "status": str(r.status),
                "target": r.task.target,
                "metric": r.task.metric,
                "best dev": r.best.dev_score if r.best else None,
                "best test": r.best.test_score if r.best else None,
                "sims": r.simulations,
                "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created)),
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from .engine.api import Run

    store = _store(args)
    run = Run(store, store.resolve(args.run))
    print(run.profile.summary())
    _print_summary(run)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .engine.api import open_run

    run = open_run(args.run, args.runs_dir)
    name = f"sela-{run.id}-{run.export_metadata(args.node)['node']}"
    if args.format == "py":
        text = run.export_code(args.node)
        out = Path(args.output) if args.output else Path(f"{name}.py")
        out.write_text(text, encoding="utf-8")
    else:
        out = run.export_notebook(args.output or f"{name}.ipynb", args.node)
    print(out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``sela`` argument parser."""
    from .engine.options import MAX_DEFAULT_PARALLEL
    from .engine.options import OPTION_DEFAULTS as _D

    parser = argparse.ArgumentParser(
        prog="sela", description="SELA-style ML pipeline search: insights + MCTS + child kernels."
    )
    parser.add_argument("--runs-dir", default=None, help="where runs live (default: ./.sela/runs)")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="print every log record and the traceback of a failure (always in the run's run.log)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="search for a pipeline predicting a column of a data file")
    p.add_argument("data", help="CSV, TSV, Parquet or JSON file")
    p.add_argument("--target", required=True, help="the column to predict")
    p.add_argument(
        "--rollouts",
        type=int,
        default=None,
        help=f"number of simulations (default {_D['rollouts']}, or unlimited with --time-budget)",
    )
    p.add_argument("--time-budget", default=None, help="wall-clock budget, e.g. 90s, 10m, 1h")
    p.add_argument(
        "--parallel",
        type=int,
        default=None,
        help=f"simulations at once (kernels; default one per core, at most {MAX_DEFAULT_PARALLEL}: {_D['parallel']} here)",
    )
    p.add_argument("--test", default=None, help="a separate test file (train/dev split only)")
    p.add_argument(
        "--metric",
        default=None,
        help="f1, f1_weighted, accuracy, roc_auc, rmse, "
        "mae, r2, rmsle (default: f1 / f1_weighted / rmse)",
    )
    p.add_argument("--task", default=None, choices=["regression", "binary", "multiclass"])
    p.add_argument("--seed", type=int, default=None, help=f"random seed (default {_D['seed']})")
    p.add_argument(
        "--max-depth",
        type=int,
        default=None,
        help=f"stages searched, 1-5 (default {_D['max_depth']})",
    )
    p.add_argument(
        "--cv-folds",
        type=int,
        default=None,
        help="folds scoring the best nodes out of fold for the final choice "
        f"(default {_D['cv_folds']}; 0: choose on dev)",
    )
    p.add_argument("--name", default=None, help="a name for the run")
    p.add_argument(
        "--cell-timeout",
        type=float,
        default=None,
        help=f"seconds per cell (default {_D['cell_timeout']:g})",
    )
    p.add_argument(
        "--simulation-timeout",
        type=float,
        default=None,
        help=f"seconds per simulation (default {_D['simulation_timeout']:g})",
    )
    p.add_argument("--description", default="", help="the task in words, for the LLM")
    p.add_argument(
        "--llm",
        default=None,
        help="model on an OpenAI-compatible endpoint, or 'off' "
        "(default: $SELA_MODEL when a key is set)",
    )
    p.add_argument("--insights", choices=["llm", "builtin", "both"], default=None)
    p.add_argument(
        "--fallback",
        choices=["builtin"],
        default=None,
        help="go on with the built-in catalog when the LLM fails",
    )
    p.add_argument("--token-budget", type=int, default=None, help="LLM tokens the run may use")
    p.add_argument("--base-url", default=None, help="endpoint (default: $OPENAI_BASE_URL)")
    p.add_argument(
        "--api-key-env",
        default=None,
        help="name of the environment variable holding the key (default: OPENAI_API_KEY)",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("list", help="list runs, newest first")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("show", help="a run's leaderboard and best pipeline")
    p.add_argument("run", nargs="?", default="last", help="run id, prefix or name (default: last)")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser("resume", help="finish a stopped or crashed run")
    p.add_argument("run", help="run id, prefix or name")
    p.set_defaults(func=_cmd_resume)

    p = sub.add_parser("export", help="export a node's pipeline as a notebook or script")
    p.add_argument("run", nargs="?", default="last")
    p.add_argument(
        "--node",
        default="final",
        help="final (the run's answer, a blend when dev chose one), best, or a node id"
        " (default: final)",
    )
    p.add_argument("--format", choices=["ipynb", "py"], default="ipynb")
    p.add_argument("-o", "--output", default=None, help="output path")
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sela`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_console(sys.stderr, debug=args.debug)
    try:
        return int(args.func(args))
    except SelaError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"sela: error: {exc}", file=sys.stderr)
        # 1: the run itself failed; 2: the input or options were unusable (argparse's code).
        return 1 if isinstance(exc, SelaRunError) else 2


if __name__ == "__main__":
    sys.exit(main())
