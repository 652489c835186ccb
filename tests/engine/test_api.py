"""The Python API: sela_jupyter.run, the Run's leaderboard, pipeline, predictions and exports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.pipeline import Pipeline

import sela_jupyter
from sela_jupyter.engine.api import parse_duration
from sela_jupyter.engine.ensemble import WeightedEnsemble
from sela_jupyter.engine.errors import SelaError, SelaInputError
from sela_jupyter.engine.options import DEFAULT_ROLLOUTS


def test_run_returns_leaderboard_pipeline_and_predictions(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True).frame
    data["target"] = data["target"].map({0: "malignant", 1: "benign"})
    before = data.copy()
    run = sela_jupyter.run(data, target="target", rollouts=3, runs_dir=tmp_path, seed=1)

    pd.testing.assert_frame_equal(data, before)  # the caller's frame is untouched
    board = run.leaderboard()
    assert len(board) == 3 and board.index[0] == 1
    assert list(board["dev_score"]) == sorted(board["dev_score"], reverse=True)  # F1: higher
    assert run.task.positive_label == "malignant"  # the minority class
    # The final answer is one node's Pipeline, or a WeightedEnsemble when it blends nodes or
    # predicts at its own F1 threshold; the best node by id is always a Pipeline.
    own = run.final is not None and run.final.is_own_pipeline
    assert isinstance(run.pipeline(), WeightedEnsemble if own else Pipeline)
    assert isinstance(run.pipeline("best"), Pipeline)
    predictions = run.predict(data.head(20))
    assert set(predictions) <= {"malignant", "benign"}
    assert (predictions == data["target"].head(20)).mean() > 0.8
    assert run.best.test_score is not None
    path = run.export_notebook(tmp_path / "best.ipynb")
    assert path.is_file()
    assert "evaluate(pipeline" in run.export_code()
    assert sela_jupyter.open_run("last", runs_dir=tmp_path).id == run.id


def test_python_api_rejects_bad_input_before_starting(tmp_path: Path) -> None:
    with pytest.raises(SelaInputError, match="expected a pandas DataFrame"):
        sela_jupyter.run([[1, 2]], target="y", runs_dir=tmp_path)
    assert not tmp_path.exists() or not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("10m", 600), ("1.5h", 5400), (30, 30)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_integer_column_names_work_end_to_end(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True).frame.iloc[:, -6:]
    data.columns = [0, 1, 2, 3, 4, 5]  # five features and the target, named by position
    run = sela_jupyter.run(data, target=5, rollouts=2, max_depth=1, runs_dir=tmp_path)
    assert run.record.status == "finished"
    assert run.best is not None
    assert len(run.predict(data.head(3))) == 3
    assert list(data.columns) == [0, 1, 2, 3, 4, 5]  # the caller's frame keeps its names


def test_a_time_budget_alone_is_not_cut_short_by_the_default_rollout_count(
    tmp_path: Path,
) -> None:
    data = load_breast_cancer(as_frame=True).frame.iloc[:, -6:]
    run = sela_jupyter.run(data, target="target", time_budget=8, max_depth=3, runs_dir=tmp_path)
    assert run.record.options.rollouts is None
    # The search ran until the budget was spent (not until a count was reached); how many
    # simulations fit in 8 s depends on the machine, so the count itself is not pinned.
    assert run.record.timings.elapsed >= 0.9 * 8
    assert run.record.simulations > 0
    # Without a budget the default count applies, exactly.
    short = sela_jupyter.run(data, target="target", max_depth=1, runs_dir=tmp_path)
    assert short.record.options.rollouts == DEFAULT_ROLLOUTS


def test_a_suspected_leak_is_warned_about_before_the_search_and_kept_on_the_run(
    tmp_path: Path,
) -> None:
    data = load_breast_cancer(as_frame=True).frame.iloc[:, -4:]
    data["diagnosis_code"] = data["target"].map({0: "M", 1: "B"})  # the label under another name
    with pytest.warns(sela_jupyter.SelaDataWarning, match="diagnosis_code: predicts 'target'"):
        run = sela_jupyter.run(data, target="target", rollouts=1, max_depth=1, runs_dir=tmp_path)
    assert [line.split(":")[0] for line in run.warnings] == ["diagnosis_code"]
    assert sela_jupyter.open_run(run.id, runs_dir=tmp_path).warnings == run.warnings


def test_a_run_whose_kernels_cannot_start_raises_and_resumes_once_they_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken_kernel_spec: Path
) -> None:
    data = load_breast_cancer(as_frame=True).frame.iloc[:, -4:]
    monkeypatch.setenv("JUPYTER_PATH", str(broken_kernel_spec))
    with pytest.raises(sela_jupyter.SelaRunError, match="could not start a 'python3' kernel"):
        sela_jupyter.run(data, target="target", rollouts=2, max_depth=1, runs_dir=tmp_path)
    with pytest.raises(sela_jupyter.SelaRunError) as raised:  # resume: the same, loudly
        sela_jupyter.resume("last", runs_dir=tmp_path)
    error = raised.value
    assert isinstance(error, SelaError)
    assert str(error).startswith(f"run {error.run_id} failed: could not start a 'python3' kernel")
    record = json.loads((Path(error.run_dir) / "run.json").read_text())
    assert record["status"] == "failed" and record["simulations"] == 0

    monkeypatch.delenv("JUPYTER_PATH")  # the kernel spec is mended: the same run goes on
    run = sela_jupyter.resume(error.run_id, runs_dir=tmp_path)
    assert run.record.status == "finished" and run.record.error is None
    assert len(run.leaderboard()) == 2


def test_a_budget_too_short_for_a_single_simulation_raises(tmp_path: Path) -> None:
    data = load_breast_cancer(as_frame=True).frame.iloc[:, -4:]
    with pytest.raises(
        sela_jupyter.SelaRunError,
        match=r"time budget \(0.1 s\) ran out before the first simulation finished",
    ):
        sela_jupyter.run(data, target="target", time_budget=0.1, runs_dir=tmp_path)
