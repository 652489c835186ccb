"""Out-of-fold outputs in a real child kernel: the very folds and refits scikit-learn would do
(dev one of them), rows dropped by stage code predicted but never fitted, and a slow or failing
step that costs the node nothing."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from kernel_helpers import simulate
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from sela_jupyter.engine.cells import setup_source
from sela_jupyter.engine.runner import (
    CrossValidation,
    KernelPool,
    SimulationPlan,
    StageCell,
)
from sela_jupyter.engine.task import prepare_data

STEPS = "from sklearn.preprocessing import StandardScaler\nsteps = [('scale', StandardScaler())]"
MODEL = "from sklearn.linear_model import LogisticRegression\nmodel = LogisticRegression()"


@pytest.fixture
def data(tmp_path: Path) -> tuple:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=300), "b": rng.normal(size=300)})
    frame["label"] = np.where(frame["a"] + 0.5 * rng.normal(size=300) > 0.4, "yes", "no")
    prepared = prepare_data(frame, "label", seed=4)
    prepared.train.to_parquet(tmp_path / "train.parquet")
    prepared.dev.to_parquet(tmp_path / "dev.parquet")
    setup = setup_source(
        prepared.task,
        train_path=str(tmp_path / "train.parquet"),
        dev_path=str(tmp_path / "dev.parquet"),
        test_path=None,
    )
    return prepared, setup, tmp_path


def cv_plan(setup: str, folder: Path, *cells: StageCell, limit: float | None = 60.0):
    asked: list[tuple[float, float]] = []

    def wants(dev_score: float, fit_seconds: float) -> float | None:
        asked.append((dev_score, fit_seconds))
        return limit

    cv = CrossValidation(
        path=str(folder / "cv.pkl"), train_path=str(folder / "train.parquet"), folds=5, wants=wants
    )
    return SimulationPlan(setup=setup, cells=list(cells), cross_validation=cv), asked


def slow_model(seconds: float) -> StageCell:
    """A model stage whose every fit sleeps ``seconds`` first."""
    slow = (
        "import time\nclass Slow(LogisticRegression):\n"
        "    def fit(self, X, y):\n"
        f"        time.sleep({seconds})\n"
        "        return super().fit(X, y)\n"
    )
    return StageCell("model", f"{STEPS}\n{MODEL}\n{slow}model = Slow()", "path")


def expected_out_of_fold(prepared, keep: pd.Index | None = None) -> np.ndarray:
    """What the kernel should produce, computed here with scikit-learn alone: dev is one of the
    5 folds (predicted by the pipeline fitted on train), train's 4 stratified slices the others."""
    codes = {label: code for code, label in enumerate(prepared.task.classes)}
    train, dev = prepared.train, prepared.dev
    own = train if keep is None else train[train.index.isin(keep)]

    def fitted(rows: pd.DataFrame) -> Pipeline:
        model = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
        return model.fit(rows[["a", "b"]], rows["label"].map(codes))

    y = train["label"].map(codes).to_numpy()
    proba = np.zeros((len(train) + len(dev), 2))
    proba[len(train) :] = fitted(own).predict_proba(dev[["a", "b"]])
    for _, held_at in StratifiedKFold(4, shuffle=True, random_state=4).split(train, y):
        rest = own[~own.index.isin(train.index[held_at])]
        proba[held_at] = fitted(pd.concat([rest, dev])).predict_proba(
            train.iloc[held_at][["a", "b"]]
        )
    return proba


async def test_out_of_fold_outputs_match_scikit_learns_own_folds(pool: KernelPool, data) -> None:
    prepared, setup, folder = data
    plan, asked = cv_plan(
        setup, folder, StageCell("preprocess", STEPS, "path"), StageCell("model", MODEL, "path")
    )
    result = await simulate(pool, plan)
    assert result.error is None and result.cv_error is None
    assert len(asked) == 1 and asked[0][0] == result.dev_score and asked[0][1] > 0
    assert result.cv_rows == len(prepared.train) + len(prepared.dev)
    with open(folder / "cv.pkl", "rb") as f:
        saved = cloudpickle.load(f)
    np.testing.assert_allclose(saved["predict_proba"], expected_out_of_fold(prepared), atol=1e-9)
    assert (saved["predict"] == saved["predict_proba"].argmax(axis=1)).all()
    assert "cv" in result.timings


async def test_rows_dropped_by_stage_code_are_predicted_but_never_fitted(
    pool: KernelPool, data
) -> None:
    prepared, setup, folder = data
    drop = "train = train[train['b'] < 1.0]  # e.g. an outlier filter"
    plan, _ = cv_plan(
        setup,
        folder,
        StageCell("preprocess", STEPS + "\n" + drop, "path"),
        StageCell("model", MODEL, "path"),
    )
    result = await simulate(pool, plan)
    assert result.cv_error is None
    keep = prepared.train.index[prepared.train["b"] < 1.0]
    assert len(keep) < len(prepared.train)
    with open(folder / "cv.pkl", "rb") as f:
        saved = cloudpickle.load(f)
    np.testing.assert_allclose(saved["predict_proba"], expected_out_of_fold(prepared, keep))


async def test_a_node_that_is_not_wanted_skips_the_step(pool: KernelPool, data) -> None:
    _, setup, folder = data
    plan, asked = cv_plan(
        setup, folder, StageCell("model", STEPS + "\n" + MODEL, "path"), limit=None
    )
    result = await simulate(pool, plan)
    assert asked and result.cv_rows is None and result.cv_error is None
    assert not (folder / "cv.pkl").exists() and "cv" not in result.timings


async def test_a_step_past_its_limit_costs_the_node_nothing(pool: KernelPool, data) -> None:
    _, setup, folder = data
    plan, _ = cv_plan(setup, folder, slow_model(0.3), limit=0.5)
    result = await simulate(pool, plan)
    assert result.error is None and result.dev_score is not None
    assert result.cv_error and "timed out" in result.cv_error
    assert result.kernel_healthy  # interrupted, idle again, reusable
    assert not (folder / "cv.pkl").exists()


async def test_reshaped_columns_give_no_folds_but_keep_the_node(pool: KernelPool, data) -> None:
    _, setup, folder = data
    added = "train['c'] = train['a'] * 2\ndev['c'] = dev['a'] * 2"
    plan, _ = cv_plan(
        setup, folder, StageCell("model", STEPS + "\n" + MODEL + "\n" + added, "path")
    )
    result = await simulate(pool, plan)
    assert result.error is None and result.dev_score is not None
    assert result.cv_rows is None and "reshaped" in (result.cv_error or "")


async def test_a_cell_cap_stops_slow_stages_but_not_the_folds(pool: KernelPool, data) -> None:
    _, setup, folder = data
    plan, _ = cv_plan(setup, folder, slow_model(0.4))
    plan.cell_cap = 1.0  # one fit takes 0.4 s, the five folds 2 s
    result = await simulate(pool, plan)
    assert result.error is None and result.cv_error is None and result.cv_rows
    assert 0.4 < result.timings["fit"] < 1.0 < result.timings["cv"]

    hang, _ = cv_plan(setup, folder, StageCell("model", "import time\ntime.sleep(60)", "path"))
    hang.cell_cap = 1.0
    result = await simulate(pool, hang)
    assert result.error_kind == "timeout_interrupted" and "timed out after 1 s" in result.error
