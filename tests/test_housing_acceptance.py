"""Issue acceptance on the housing data: 10 offline rollouts beat default XGBoost on test."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from baseline import compare


def test_ten_rollouts_beat_default_xgboost_on_housing(
    tmp_path: Path, housing: pd.DataFrame
) -> None:
    result = compare(housing, "price", rollouts=10, parallel=2, seed=0, runs_dir=str(tmp_path))
    run = result["run"]
    assert run.record.status == "finished"
    assert run.record.simulations == 10
    assert len(run.notebooks()) == 10
    assert result["direction"] == "minimize"
    assert result["sela_test"] < result["xgboost_test"], result
