"""Smoke test of the benchmark harness (benchmarks/compare.py): one small real dataset, a tiny
budget, sela against default XGBoost. The real comparison runs with ``make bench``, never here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sela_jupyter.engine.options import OPTION_DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def run_script(
    name: str, *args: str, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<name>`` with ``args`` in this Python; its exit code, stdout, stderr."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def test_compare_harness_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = run_script(
        "compare.py",
        *("--budget", "8", "--datasets", "boston", "--tools", "sela,xgboost", "--out", str(out)),
        timeout=150,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    for expected in ("boston", "rmse", "sela", "xgboost", "ratio to xgboost", "geometric mean"):
        assert expected in table
    assert "mean rank" in table and "1/(1+rmse)" in table and "/min" in table
    assert "vs xgboost" in table  # sela head to head, with its wins

    [path] = out.glob("*.json")
    report = json.loads(path.read_text())
    assert report["tools"] == ["sela", "xgboost"] and report["reference"] == "xgboost"
    assert report["budget"] == 8 and report["table"] in table
    [result] = report["results"]
    assert result["dataset"] == "boston" and result["metric"] == "rmse"
    assert sum(result["rows"].values()) == 506
    assert result["rows"]["test"] == 102
    sela, xgb = result["tools"]["sela"], result["tools"]["xgboost"]
    assert not sela.get("error") and not xgb.get("error")
    # medv is in thousands of dollars (sd ~9): any working model is well under 10 RMSE
    assert 0 < sela["test_score"] < 10 and 0 < xgb["test_score"] < 10
    assert xgb["ratio"] == 1.0 and 0.3 < sela["ratio"] < 3
    assert sorted([sela["rank"], xgb["rank"]]) in ([1.0, 2.0], [1.5, 1.5])
    assert sela["normalized_score"] == 1 / (1 + sela["test_score"])
    assert sela["simulations"] >= 1 and sela["simulations_per_minute"] > 0
    assert 0 <= sela["median_overhead_s"] < 30
    assert sela["leaderboard"] and sela["wall_s"] < 100
    # What the run cost: its kernels' memory (above the 100 MB any Python holds) and its files.
    assert sela["parallel"] == OPTION_DEFAULTS["parallel"]  # as a new user runs it
    assert 100 < sela["peak_memory_mb"] < 8000 and 0 < sela["run_dir_mb"] < 200
    summary = report["summary"]
    assert summary["xgboost"]["geomean_ratio"] == 1.0
    assert summary["sela"]["geomean_ratio"] == sela["ratio"]
    assert sela["final_kind"] in ("ensemble", "node") and sela["best_node_test_score"] > 0

    # Several seeds: one line per seed and the geometric mean over every (dataset, seed) pair.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from compare import seeds_table

    other = json.loads(json.dumps(report))
    other["seed"] = 1
    other["results"][0]["tools"]["sela"]["ratio"] = 1.0
    text = seeds_table([report, other])
    assert "ratios to xgboost across seeds" in text
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines()[2:5]}
    assert float(lines["all"][0]) == pytest.approx(sela["ratio"] ** 0.5, abs=5e-3)
    pairs = 1 + int(sela["ratio"] >= 1.0)  # seed 1's sela ties XGBoost by construction
    assert f"as good as default XGBoost on {pairs} of 2 (dataset, seed) pairs" in text
    # Per dataset: the geometric mean over seeds, and whether sela matched XGBoost on it.
    row = next(line.split() for line in text.splitlines() if line.startswith("boston"))
    assert float(row[1]) == pytest.approx(sela["ratio"] ** 0.5, abs=5e-3) and row[2] == "1"
    matched = int(sela["ratio"] ** 0.5 >= 1.0)
    assert f"on {matched} of 1 datasets (geometric mean over seeds)" in text
    # Head to head: seed 1 ties by construction, seed 0 is won or lost on its own ratio.
    tally = text.splitlines()[-1].split()
    won, lost = int(sela["ratio"] > 1.0), int(sela["ratio"] < 1.0)
    assert tally == ["boston", str(won), "/", str(2 - won - lost), "/", str(lost)]

    # Carried over: an earlier report of the same split lends FLAML's score, which becomes the
    # reference; a report of another split lends nothing and the gap is an error.
    from compare import carry_over, format_table

    earlier = json.loads(json.dumps(report))
    earlier["results"][0]["tools"]["flaml"] = {"test_score": sela["test_score"] / 2}
    now = json.loads(json.dumps(report))
    assert carry_over(now, {"earlier.json": earlier}) == ["flaml"]
    assert now["tools"] == ["sela", "flaml", "xgboost"] and now["reference"] == "flaml"
    flaml = now["results"][0]["tools"]["flaml"]
    assert flaml["carried_from"] == "earlier.json" and flaml["ratio"] == 1.0
    assert now["results"][0]["tools"]["sela"]["ratio"] == pytest.approx(0.5)
    assert "carried over from the same split in earlier.json" in format_table(now)
    earlier["results"][0]["rows"]["test"] += 1
    with pytest.raises(ValueError, match="no earlier report of the same split"):
        carry_over(json.loads(json.dumps(report)), {"earlier.json": earlier})


def test_the_hgb_baseline_uses_native_categoricals_and_scores_the_split() -> None:
    """The default-HistGradientBoosting baseline on a table of categorical columns."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_data import DATASETS, GROUPS
    from bench_tools import make_split, run_hgb

    assert {"small", "mid", "large", "all"} <= set(GROUPS) and "fertility" in GROUPS["large"]
    titanic = DATASETS["titanic"]
    split = make_split(titanic.load(), titanic.target, seed=0)
    assert 0.4 < run_hgb(split, budget=5, seed=0, runs_dir=ROOT)["test_score"] <= 1.0


def test_throughput_harness_smoke() -> None:
    done = run_script(
        "throughput.py", "--datasets", "boston", "--budget", "5", "--json", timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = json.loads(done.stdout)
    assert row["dataset"] == "boston" and row["rows"] == 506 and row["seed"] == 0
    assert row["simulations"] >= 1 and row["per_minute"] > 0
    assert row["parallel"] == OPTION_DEFAULTS["parallel"]
    assert row["peak_memory_mb"] > 100 and row["run_dir_mb"] > 0
    assert Path(row["engine"]) == ROOT  # this checkout's engine, not another installed one
    assert "boston" in done.stderr and "simulations" in done.stderr
