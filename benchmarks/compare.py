"""sela against AutoGluon, FLAML, default XGBoost and HistGradientBoosting at equal wall-clock budget.

    python benchmarks/compare.py [--budget 60] [--datasets all | small,mid,large | housing,...] \
        [--tools sela,autogluon,flaml,xgboost,hgb] [--seed 0 | --seeds 0,1,2] [--out DIR] \
        [--runs-dir DIR] [--carry-over results/EARLIER.json ...]
    python benchmarks/compare.py --summarise results/A.json results/B.json ...

Every tool sees the rows of sela's own seeded 60/20/20 split (stratified for classification),
fits its answer on train, chooses with dev (where it chooses anything: FLAML on dev, sela out of
fold over train + dev) and is scored on the held-out 20% with
the engine's scoring function and default metric (binary F1 with the minority class positive,
weighted F1 for multiclass, RMSE for regression). Prints a table of test scores, each tool's ratio
to the reference tool (FLAML by default; F1 ratio, reference RMSE / tool RMSE, so above 1 is
better either way), the geometric mean of the ratios, the mean rank, sela's normalised score
``1/(1+rmse)``, wall times, sela's simulations per minute and median per-simulation overhead, and
writes everything as JSON to ``<out>/<timestamp>.json``. With several seeds (or ``--summarise``)
it adds the geometric means per seed, per dataset over seeds, and over every (dataset, seed) pair,
and sela head to head against each other tool: the geometric mean over datasets of sela's ratio
to it (each dataset's ratio a geometric mean over seeds) and the datasets sela wins.

``--datasets`` takes names or the groups ``small`` (the six original tables, at most 1.3k rows),
``mid`` (2k to 10k rows), ``large`` (255k rows) and ``all``. AutoGluon runs in its own virtual
environment (``.venv-autogluon``, built by ``make bench``; see ``autogluon_runner.py``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import DATASETS, GROUPS
from bench_tools import CORES, TOOLS, make_split

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOOLS = ("sela", "autogluon", "flaml", "xgboost", "hgb")


def ratio(score: float | None, reference: float | None, direction: str) -> float | None:
    """Tool relative to the reference, above 1 is better: F1 ratio, or reference RMSE / RMSE."""
    if score is None or reference is None:
        return None
    if direction == "minimize":
        return reference / score if score > 0 else None
    return score / reference if reference > 0 else None


def summarise(results: list[dict[str, Any]], tools: list[str], reference: str | None) -> dict:
    """Per-dataset ratios and ranks (written into ``results``) and per-tool summaries."""
    for result in results:
        direction = result["direction"]
        scores = {t: result["tools"][t].get("test_score") for t in tools}
        ref = scores.get(reference) if reference else None
        for tool in tools:
            result["tools"][tool]["ratio"] = ratio(scores[tool], ref, direction)
        scored = pd.Series({t: s for t, s in scores.items() if s is not None}, dtype=float)
        ranks = scored.rank(ascending=direction == "minimize", method="average")
        for tool in tools:
            result["tools"][tool]["rank"] = None if tool not in ranks else float(ranks[tool])
    summary = {}
    for tool in tools:
        ratios = [r["tools"][tool]["ratio"] for r in results if r["tools"][tool]["ratio"]]
        ranks = [r["tools"][tool]["rank"] for r in results if r["tools"][tool]["rank"]]
        walls = [r["tools"][tool].get("wall_s") or 0.0 for r in results]
        summary[tool] = {
            "geomean_ratio": math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None,
            "datasets_with_ratio": len(ratios),
            "mean_rank": sum(ranks) / len(ranks) if ranks else None,
            "wall_s_total": sum(walls),
            "errors": sum(1 for r in results if r["tools"][tool].get("error")),
        }
    return summary


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:.1f}"
    return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:.{digits + 1}g}"


def format_table(report: dict[str, Any]) -> str:
    """The printed comparison."""
    tools, results, summary = report["tools"], report["results"], report["summary"]
    reference = report["reference"]
    w = max(12, *(len(t) + 2 for t in tools))
    name_w = max(14, *(len(r["dataset"]) + 2 for r in results)) if results else 14
    head = f"{'dataset':<{name_w}}{'metric':<13}" + "".join(f"{t:>{w}}" for t in tools)
    lines = [
        f"budget {report['budget']:g} s per tool and dataset, seed {report['seed']}, "
        f"{report['cores']} cores; test scores (rmse: lower is better, f1: higher)",
        head,
    ]
    for r in results:
        cells = "".join(f"{_fmt(r['tools'][t].get('test_score')):>{w}}" for t in tools)
        lines.append(f"{r['dataset']:<{name_w}}{r['metric']:<13}{cells}")
    if reference:
        lines += ["", f"ratio to {reference} (above 1 is better)", head]
        for r in results:
            cells = "".join(f"{_fmt(r['tools'][t]['ratio'], 3):>{w}}" for t in tools)
            lines.append(f"{r['dataset']:<{name_w}}{r['metric']:<13}{cells}")
        cells = "".join(f"{_fmt(summary[t]['geomean_ratio'], 3):>{w}}" for t in tools)
        lines.append(f"{'geometric mean':<{name_w + 13}}{cells}")
    cells = "".join(f"{_fmt(summary[t]['mean_rank'], 3):>{w}}" for t in tools)
    lines += ["", f"{'mean rank (1 best)':<{name_w + 13}}{cells}"]
    lines += ["", "wall time (s)", head]
    for r in results:
        cells = "".join(f"{r['tools'][t].get('wall_s', 0.0):>{w}.1f}" for t in tools)
        lines.append(f"{r['dataset']:<{name_w}}{r['metric']:<13}{cells}")
    cells = "".join(f"{summary[t]['wall_s_total']:>{w}.1f}" for t in tools)
    lines.append(f"{'total':<{name_w + 13}}{cells}")
    if "sela" in tools:
        lines += [
            "",
            "sela: simulations (failed), per minute of wall time, median per-simulation overhead,"
            " normalised score 1/(1+rmse)",
        ]
        for r in results:
            s = r["tools"]["sela"]
            if s.get("error"):
                lines.append(f"  {r['dataset']:<{name_w}}error: {s['error']}")
                continue
            overhead = s.get("median_overhead_s")
            norm = s.get("normalized_score")
            lines.append(
                f"  {r['dataset']:<{name_w}}{s['simulations']:>4} ({s['failed_simulations']})"
                f"  {s['simulations_per_minute']:6.1f}/min"
                f"  overhead {overhead * 1000 if overhead is not None else float('nan'):7.0f} ms"
                + (f"  1/(1+rmse) {norm:.4g}" if norm is not None else "")
            )
            members = s.get("final_members") or []
            single = s.get("best_node_test_score")
            if s.get("final_kind") == "ensemble" and single is not None:
                lines.append(
                    f"  {'':<{name_w}}final: blend of {len(members)} nodes, test"
                    f" {s['test_score']:.4g} (best node alone {single:.4g})"
                )
        agg = report.get("sela_overall") or {}
        if agg:
            lines.append(
                f"  {'all':<{name_w}}{agg['simulations']:>4}"
                f"       {agg['simulations_per_minute']:6.1f}/min"
                f"  overhead {agg['median_overhead_s'] * 1000:7.0f} ms (median over all simulations)"
            )
    if "sela" in tools and len(tools) > 1:
        lines += ["", *against_table([report], tools)]
    errors = [
        f"  {r['dataset']}/{t}: {r['tools'][t]['error']}"
        for r in results
        for t in tools
        if r["tools"][t].get("error") and t != "sela"
    ]
    if errors:
        lines += ["", "errors", *errors]
    if report.get("carried_over"):
        sources = sorted(
            {r["tools"][t]["carried_from"] for r in results for t in report["carried_over"]}
        )
        lines += [
            "",
            f"not run now: {', '.join(report['carried_over'])}, carried over from the same"
            f" split in {', '.join(sources)}",
        ]
    return "\n".join(lines)


def compare(
    datasets: list[str],
    tools: list[str],
    *,
    budget: float,
    seed: int,
    runs_dir: Path,
    log: Any = print,
) -> dict[str, Any]:
    """Run every tool on every dataset; the report (without the table)."""
    reference = _reference(tools)
    results, all_overheads = [], []
    for name in datasets:
        dataset = DATASETS[name]
        split = make_split(dataset.load(), dataset.target, seed)
        task = split.task
        result: dict[str, Any] = {
            "dataset": name,
            "source": dataset.source,
            "target": dataset.target,
            "task_type": task.task_type,
            "metric": task.metric,
            "direction": task.direction,
            "rows": {
                "train": len(split.X_train),
                "dev": len(split.X_dev),
                "test": len(split.X_test),
            },
            "tools": {},
        }
        for tool in tools:
            log(f"[{name}] {tool} ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            try:
                outcome = TOOLS[tool](split, budget=budget, seed=seed, runs_dir=runs_dir)
            except Exception as exc:  # one tool failing must not sink the table
                traceback.print_exc()
                outcome = {"test_score": None, "error": f"{type(exc).__name__}: {exc}"}
            outcome["wall_s"] = time.perf_counter() - started
            score = outcome.get("test_score")
            if tool == "sela" and task.metric == "rmse" and score is not None:
                outcome["normalized_score"] = 1.0 / (1.0 + score)
            if tool == "sela":
                all_overheads += outcome.pop("overheads_s", [])
            result["tools"][tool] = outcome
            log(
                f"[{name}] {tool}: test {task.metric} {_fmt(score)} in {outcome['wall_s']:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        results.append(result)
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "budget": budget,
        "seed": seed,
        "cores": CORES,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()),
            "python": platform.python_version(),
        },
        "versions": _versions(),
        "tools": tools,
        "reference": reference,
        "results": results,
    }
    report["summary"] = summarise(results, tools, reference)
    sela_runs = [r["tools"]["sela"] for r in results if "sela" in r["tools"]]
    sela_runs = [s for s in sela_runs if not s.get("error")]
    if sela_runs and all_overheads:
        sims = sum(s["simulations"] for s in sela_runs)
        wall = sum(s["wall_s"] for s in sela_runs)
        report["sela_overall"] = {
            "simulations": sims,
            "simulations_per_minute": sims / (wall / 60.0),
            "median_overhead_s": float(pd.Series(all_overheads).median()),
        }
    return report


def carry_over(report: dict[str, Any], earlier: dict[str, dict[str, Any]]) -> list[str]:
    """Fill in, from ``earlier`` reports (file name -> report), the tools ``report`` did not run:
    each dataset takes them from an earlier report of the same seed, budget and split sizes
    (splits are a function of the seed). Carried outcomes are marked ``carried_from``; ratios,
    ranks and the summary are recomputed. Returns the tools carried over.

    A change to sela alone need not rerun FLAML's minute per dataset: its earlier scores on the
    very same splits stand in, and the JSON says so.
    """
    carried: set[str] = set()
    for name, old in sorted(earlier.items()):
        if not _same_seed_and_budget(old, report["seed"], report["budget"]):
            continue
        prior = {r["dataset"]: r for r in old["results"]}
        for result in report["results"]:
            match = prior.get(result["dataset"])
            if match is None or match["rows"] != result["rows"]:
                continue
            for tool, outcome in match["tools"].items():
                if tool not in result["tools"]:
                    result["tools"][tool] = {**outcome, "carried_from": name}
                    carried.add(tool)
    if not carried:
        raise ValueError(
            f"seed {report['seed']}: no earlier report of the same split and budget has a tool"
            " this run did not run"
        )
    missing = [(r["dataset"], t) for r in report["results"] for t in carried if t not in r["tools"]]
    if missing:
        raise ValueError(
            f"seed {report['seed']}: no earlier report of the same split has "
            + ", ".join(f"{tool} on {dataset}" for dataset, tool in missing)
        )
    tools = [t for t in DEFAULT_TOOLS if t in report["tools"] or t in carried] + [
        t for t in report["tools"] if t not in DEFAULT_TOOLS
    ]
    report["tools"] = tools
    report["reference"] = _reference(tools)
    report["carried_over"] = sorted(carried)
    report["summary"] = summarise(report["results"], tools, report["reference"])
    return sorted(carried)


def _same_seed_and_budget(report: dict[str, Any], seed: int, budget: float) -> bool:
    """Whether ``report`` ran ``seed`` (hence the same splits) at ``budget`` seconds."""
    return report["seed"] == seed and report["budget"] == budget


def _reference(tools: list[str]) -> str | None:
    return "flaml" if "flaml" in tools else next((t for t in tools if t != "sela"), None)


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for package in ("sela_jupyter", "flaml", "xgboost", "lightgbm", "scikit-learn", "pandas"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


def seeds_table(reports: list[dict[str, Any]]) -> str:
    """Per-seed geometric means of the ratios to the reference, and the geometric mean over every
    (dataset, seed) pair; plus on how many pairs sela matched or beat default XGBoost."""
    tools = reports[0]["tools"]
    w = 12
    lines = [
        f"geometric mean of test-score ratios to {reports[0]['reference']} across seeds",
        f"{'seed':<8}" + "".join(f"{t:>{w}}" for t in tools),
    ]
    logs: dict[str, list[float]] = {t: [] for t in tools}
    for report in reports:
        cells = "".join(f"{_fmt(report['summary'][t]['geomean_ratio'], 3):>{w}}" for t in tools)
        lines.append(f"{report['seed']:<8}{cells}")
        for result in report["results"]:
            for tool in tools:
                ratio = result["tools"][tool].get("ratio")
                if ratio:
                    logs[tool].append(math.log(ratio))
    overall = {t: math.exp(sum(v) / len(v)) if v else None for t, v in logs.items()}
    lines.append(f"{'all':<8}" + "".join(f"{_fmt(overall[t], 3):>{w}}" for t in tools))
    lines += ["", *_datasets_table(reports, tools, w)]
    if "sela" in tools:
        lines += ["", *against_table(reports, tools)]
    if "sela" in tools and "xgboost" in tools:
        pairs = [
            r for report in reports for r in report["results"] if r["tools"]["sela"].get("ratio")
        ]
        matched = sum(
            1
            for r in pairs
            if _at_least(r["tools"]["sela"]["ratio"], r["tools"]["xgboost"].get("ratio"))
        )
        lines.append(
            f"\nsela at least as good as default XGBoost on {matched} of {len(pairs)}"
            " (dataset, seed) pairs"
        )
        means = dataset_means(reports, tools)
        ahead = [d for d, m in means.items() if _at_least(m.get("sela"), m.get("xgboost"))]
        lines.append(
            f"sela at least as good as default XGBoost on {len(ahead)} of {len(means)} datasets"
            " (geometric mean over seeds)"
        )
        lines += ["", *_head_to_head(pairs, "xgboost")]
    return "\n".join(lines)


def sela_against(reports: list[dict[str, Any]], other: str) -> dict[str, Any]:
    """sela against ``other`` over every dataset both scored: per dataset the geometric mean over
    seeds of sela's score ratio to ``other``'s (above 1: sela better), their geometric mean, and
    the datasets where it is above 1 (wins) or exactly 1 (ties)."""
    logs: dict[str, list[float]] = {}
    for report in reports:
        for result in report["results"]:
            tools = result["tools"]
            if "sela" not in tools or other not in tools:
                continue
            value = ratio(
                tools["sela"].get("test_score"), tools[other].get("test_score"), result["direction"]
            )
            if value:
                logs.setdefault(result["dataset"], []).append(math.log(value))
    per_dataset = {d: math.exp(sum(v) / len(v)) for d, v in logs.items()}
    values = list(per_dataset.values())
    return {
        "per_dataset": per_dataset,
        "geomean": math.exp(sum(map(math.log, values)) / len(values)) if values else None,
        "wins": sum(1 for v in values if v > 1 + 1e-12),
        "ties": sum(1 for v in values if abs(v - 1) <= 1e-12),
        "datasets": len(values),
    }


def against_table(reports: list[dict[str, Any]], tools: list[str]) -> list[str]:
    """One line per other tool: sela's geometric-mean ratio to it and its wins."""
    lines = [
        "sela against each tool (per-dataset geometric means over seeds; above 1: sela better)"
    ]
    for other in tools:
        if other == "sela":
            continue
        versus = sela_against(reports, other)
        lines.append(
            f"  vs {other:<10} geometric mean {_fmt(versus['geomean'], 4):>7}, wins"
            f" {versus['wins']} / ties {versus['ties']} of {versus['datasets']} datasets"
        )
    return lines


def _head_to_head(results: list[dict[str, Any]], other: str) -> list[str]:
    """Per dataset, on how many seeds sela's test score beat, tied or lost to ``other``'s: a
    mean ratio hides whether a gap is one bad split or every split, and a tie (the same score,
    common for F1 on a hundred rows) is neither."""
    counts: dict[str, list[int]] = {}
    for r in results:
        sela, theirs = r["tools"]["sela"].get("ratio"), r["tools"][other].get("ratio")
        if sela is None or theirs is None:
            continue
        tally = counts.setdefault(r["dataset"], [0, 0, 0])
        tally[0 if not _at_least(theirs, sela) else 1 if _at_least(sela, theirs) else 2] += 1
    lines = [f"sela against {other} per dataset, seeds won / tied / lost"]
    lines += [f"{d:<14}{w:>4} /{t:>3} /{lost:>3}" for d, (w, t, lost) in counts.items()]
    return lines


def _at_least(score: float | None, other: float | None) -> bool:
    return score is not None and (other is None or score >= other - 1e-12)


def dataset_means(reports: list[dict[str, Any]], tools: list[str]) -> dict[str, dict[str, float]]:
    """Per dataset, each tool's geometric mean over seeds of its ratio to the reference: one
    held-out split of a hundred rows moves a score by a row or two, the mean over splits does not."""
    logs: dict[str, dict[str, list[float]]] = {}
    for report in reports:
        for result in report["results"]:
            per_tool = logs.setdefault(result["dataset"], {t: [] for t in tools})
            for tool in tools:
                if ratio := result["tools"].get(tool, {}).get("ratio"):
                    per_tool[tool].append(math.log(ratio))
    return {
        dataset: {t: math.exp(sum(v) / len(v)) for t, v in per_tool.items() if v}
        for dataset, per_tool in logs.items()
    }


def _datasets_table(reports: list[dict[str, Any]], tools: list[str], w: int) -> list[str]:
    lines = [
        f"per dataset, geometric mean over {len(reports)} seeds",
        f"{'dataset':<14}" + "".join(f"{t:>{w}}" for t in tools),
    ]
    for dataset, means in dataset_means(reports, tools).items():
        cells = "".join(f"{_fmt(means.get(t), 3):>{w}}" for t in tools)
        lines.append(f"{dataset:<14}{cells}")
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse options, run, print the table and write the JSON (one file per seed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per tool and dataset")
    parser.add_argument(
        "--datasets", default="all", help="comma-separated names or groups: small, mid, large, all"
    )
    parser.add_argument("--tools", default=",".join(DEFAULT_TOOLS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds (each its own split); overrides --seed"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--runs-dir", default=None, help="keep sela's runs here (default: temp)")
    parser.add_argument(
        "--summarise",
        nargs="+",
        metavar="JSON",
        help="run nothing: print the across-seeds table of reports written earlier",
    )
    parser.add_argument(
        "--carry-over",
        nargs="+",
        default=[],
        metavar="JSON",
        help="earlier reports whose scores stand in for tools not run now (same seed and split)",
    )
    args = parser.parse_args(argv)
    if args.summarise:
        saved = [json.loads(Path(path).read_text()) for path in args.summarise]
        print(seeds_table(saved))
        return {"reports": saved}
    datasets = [
        name
        for word in args.datasets.split(",")
        if word.strip()
        for name in GROUPS.get(word.strip(), [word.strip()])
    ]
    tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [d for d in datasets if d not in DATASETS] + [t for t in tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown dataset or tool: {', '.join(unknown)}")
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    earlier = {Path(path).name: json.loads(Path(path).read_text()) for path in args.carry_over}
    # Checked before any run: a seed with nothing to carry over would fail after its minutes.
    bare = [
        seed
        for seed in seeds
        if not any(_same_seed_and_budget(r, seed, args.budget) for r in earlier.values())
    ]
    if earlier and bare:
        parser.error(f"--carry-over has no report of seed(s) {bare} at budget {args.budget:g}")
    reports = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tmp)
            report = compare(datasets, tools, budget=args.budget, seed=seed, runs_dir=runs_dir)
        if args.carry_over:
            carry_over(report, earlier)
        table = format_table(report)
        report["table"] = table
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-seed{seed}.json"
        path.write_text(json.dumps(report, indent=1, default=str))
        print(table)
        print(f"\nJSON: {path}\n", flush=True)
        report["json_path"] = str(path)
        reports.append(report)
    if len(reports) > 1:
        print(seeds_table(reports))
    return reports[-1] if len(reports) == 1 else {"reports": reports}


if __name__ == "__main__":
    main()
