"""The hidden kernel helpers, called directly against a stand-in IPython shell.

In a kernel the helpers are copies of this code (``cells.KERNEL_HELPERS``) that use the kernel's
``get_ipython``; here ``kernel_helpers.get_ipython`` returns a shell whose namespace each test
fills, and the copied source is checked to define the same helpers.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
import threadpoolctl
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline

from sela_jupyter.engine import cells, kernel_helpers
from sela_jupyter.engine.kernel_helpers import (
    HELPERS,
    WARM_MODULES,
    _sela_cv_predictions,
    _sela_fingerprint,
    _sela_limit_threads,
    _sela_reset,
    _sela_restore,
    _sela_save_predictions,
    _sela_snapshot,
    _sela_user_names,
    _sela_versions,
    _sela_warm,
    kernel_helpers_source,
    warmup_source,
)


class Shell:
    """What the helpers use of an IPython shell: its user namespace and the hidden names."""

    def __init__(self, **names: Any) -> None:
        self.user_ns: dict[str, Any] = dict(names)
        self.user_ns_hidden: dict[str, Any] = {}


@pytest.fixture
def shell(monkeypatch: pytest.MonkeyPatch) -> Shell:
    running = Shell()
    monkeypatch.setattr(kernel_helpers, "get_ipython", lambda: running)
    monkeypatch.setattr(kernel_helpers, "_SELA_BASES", {})  # a fresh kernel's
    return running


def _frames(classes: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=90), "b": rng.normal(size=90)})
    frame["y"] = (frame["a"] > 0).astype(int) if classes else 2 * frame["a"] + frame["b"]
    return frame.iloc[:60], frame.iloc[60:]


def _fitted_namespace(classes: bool) -> dict[str, Any]:
    train, dev = _frames(classes)
    model = LogisticRegression() if classes else LinearRegression()
    pipeline = Pipeline([("model", model)]).fit(train[["a", "b"]], train["y"])
    names = {"pipeline": pipeline, "train": train, "dev": dev, "TARGET": "y", "SEED": 0}
    names["TASK"] = "binary" if classes else "regression"
    if classes:
        names["CLASSES"] = [0, 1]
    return names


def test_versions_name_python_and_every_library():
    versions = _sela_versions()

    assert set(versions) == {"python", *kernel_helpers._SELA_LIBRARIES}
    assert versions["numpy"] == np.__version__
    assert {"sklearn", "xgboost"} <= set(versions)


def test_user_names_leave_out_private_and_hidden_names(shell):
    shell.user_ns.update(x=1, _private=2, In=[])
    shell.user_ns_hidden["In"] = []

    assert _sela_user_names() == ["x"]


def test_snapshot_and_restore_round_trip_values_and_modules(shell, tmp_path):
    shell.user_ns.update(x=[1, 2], np=np, square=lambda v: v * v, _private=3)
    path = str(tmp_path / "state.pkl")

    info = _sela_snapshot(path)
    _sela_reset()
    assert shell.user_ns == {"_private": 3}
    restored = _sela_restore(path)

    assert restored is True and info["skipped"] == [] and info["bytes"] > 0
    assert shell.user_ns["x"] == [1, 2] and shell.user_ns["np"] is np
    assert shell.user_ns["square"](3) == 9
    assert not Path(path + ".tmp").exists()


def test_snapshot_skips_values_that_cannot_be_pickled(shell, tmp_path):
    shell.user_ns.update(x=1, lines=(line for line in ["a"]))

    info = _sela_snapshot(str(tmp_path / "state.pkl"))

    assert info["skipped"] == ["lines"]


def _table(rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {"x": rng.normal(size=rows), "kind": rng.choice(["a", "b", None], size=rows)}
    )


def test_frames_no_stage_changed_are_stored_as_references_to_the_setup_snapshot(shell, tmp_path):
    train, dev = _table(), _table(500)
    shell.user_ns.update(train=train, dev=dev)
    base = str(tmp_path / "root.pkl")
    full = _sela_snapshot(base)
    _sela_reset()
    assert _sela_restore(base) is True
    # A stage changed dev (a new column) and added a model; train is as the setup left it.
    shell.user_ns["dev"] = shell.user_ns["dev"].assign(z=1.0)
    shell.user_ns["model"] = LinearRegression()
    child = str(tmp_path / "child.pkl")

    info = _sela_snapshot(child, base)
    _sela_reset()
    restored = _sela_restore(child)

    assert info["from_base"] == ["train"] and full["from_base"] == []
    assert info["bytes"] < full["bytes"] / 2
    assert restored is True
    pd.testing.assert_frame_equal(shell.user_ns["train"], train)
    pd.testing.assert_frame_equal(shell.user_ns["dev"], dev.assign(z=1.0))
    assert isinstance(shell.user_ns["model"], LinearRegression)


def test_a_frame_restored_from_the_base_is_a_copy_that_stages_may_change_in_place(shell, tmp_path):
    train = _table()
    shell.user_ns.update(train=train)
    base, child = str(tmp_path / "root.pkl"), str(tmp_path / "child.pkl")
    _sela_snapshot(base)
    _sela_snapshot(child, base)
    assert _sela_restore(child) is True
    shell.user_ns["train"].loc[0, "x"] = 1e9  # a stage edits the frame in place

    _sela_reset()
    assert _sela_restore(child) is True

    pd.testing.assert_frame_equal(shell.user_ns["train"], train)


def test_restore_refuses_a_snapshot_whose_base_is_gone(shell, tmp_path):
    shell.user_ns.update(train=_table())
    base, child = tmp_path / "root.pkl", str(tmp_path / "child.pkl")
    _sela_snapshot(str(base))
    _sela_snapshot(child, str(base))
    base.unlink()
    kernel_helpers._SELA_BASES.clear()  # another kernel, which never read the base
    _sela_reset()

    assert _sela_restore(child) is False
    assert "train" not in shell.user_ns


def test_restore_refuses_missing_files_and_other_library_versions(shell, tmp_path):
    stale = tmp_path / "stale.pkl"
    versions = {**_sela_versions(), "numpy": "0.0"}
    stale.write_bytes(cloudpickle.dumps({"versions": versions, "modules": {}, "state": {"x": 1}}))

    assert _sela_restore(str(tmp_path / "missing.pkl")) is False
    assert _sela_restore(str(stale)) is False
    assert "x" not in shell.user_ns


def test_limit_threads_caps_every_n_jobs_of_steps_and_model(shell, monkeypatch):
    calls: list[int] = []
    # The real call would cap this test process's thread pools for good.
    monkeypatch.setattr(threadpoolctl, "threadpool_limits", lambda limits: calls.append(limits))
    select = SelectFromModel(ExtraTreesRegressor(n_jobs=8))
    shell.user_ns.update(
        model=RandomForestRegressor(n_jobs=-1),
        steps=[("select", select), ("single", LinearRegression(n_jobs=1)), "not a step"],
    )

    _sela_limit_threads(2)

    assert calls == [2]
    assert shell.user_ns["model"].n_jobs == 2
    assert select.estimator.n_jobs == 2 and shell.user_ns["steps"][1][1].n_jobs == 1


def test_fingerprint_follows_the_pipeline_and_the_training_rows(shell):
    train, _ = _frames(classes=False)
    shell.user_ns.update(steps=[], model=LinearRegression(), train=train)
    first = _sela_fingerprint()
    same = _sela_fingerprint()
    shell.user_ns["train"] = train.iloc[1:]
    fewer_rows = _sela_fingerprint()
    del shell.user_ns["model"]

    assert first == same and first is not None and fewer_rows != first
    assert _sela_fingerprint() is None


@pytest.mark.parametrize("classes", [False, True])
def test_save_predictions_writes_dev_and_test_outputs(shell, tmp_path, classes):
    shell.user_ns.update(_fitted_namespace(classes))
    shell.user_ns["test"] = shell.user_ns["dev"].drop(columns=["y"]).iloc[:5]
    path = str(tmp_path / "predictions.pkl")

    _sela_save_predictions(path)

    saved = cloudpickle.loads(Path(path).read_bytes())
    assert set(saved) == {"dev", "test"}
    assert saved["dev"]["predict"].shape == (30,) and saved["test"]["predict"].shape == (5,)
    assert ("predict_proba" in saved["dev"]) is classes
    if classes:
        assert saved["dev"]["predict_proba"].shape == (30, 2)


@pytest.mark.parametrize("classes", [False, True])
def test_cv_predictions_cover_every_training_then_dev_row(shell, tmp_path, classes):
    names = _fitted_namespace(classes)
    shell.user_ns.update(names)
    train_path = tmp_path / "train.parquet"
    names["train"].to_parquet(train_path)
    path = str(tmp_path / "cv.pkl")

    rows = _sela_cv_predictions(path, str(train_path), 3)

    saved = cloudpickle.loads(Path(path).read_bytes())
    assert rows == 90 and saved["predict"].shape == (90,)
    assert ("predict_proba" in saved) is classes


def test_cv_predictions_take_dev_from_the_fitted_pipeline_and_never_see_a_held_row(shell, tmp_path):
    from sklearn.neighbors import KNeighborsRegressor

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=80), "y": rng.normal(size=80)})
    train, dev = frame.iloc[:60], frame.iloc[60:]
    pipeline = Pipeline([("model", KNeighborsRegressor(n_neighbors=1))]).fit(
        train[["a"]], train["y"]
    )
    shell.user_ns.update(
        pipeline=pipeline, train=train, dev=dev, TARGET="y", SEED=0, TASK="regression"
    )
    train_path = tmp_path / "train.parquet"
    train.to_parquet(train_path)
    path = str(tmp_path / "cv.pkl")

    assert _sela_cv_predictions(path, str(train_path), 3) == 80

    predict = cloudpickle.loads(Path(path).read_bytes())["predict"]
    # Dev is the fold the pipeline fitted on train already predicts.
    assert np.array_equal(predict[60:], pipeline.predict(dev[["a"]]))
    # A 1-nearest-neighbour model repeats the label of any row it was fitted on.
    assert (predict[:60] != train["y"].to_numpy()).all()
    assert np.isin(predict[:60], frame["y"].to_numpy()).all()


def test_cv_predictions_refuse_reshaped_columns(shell, tmp_path):
    names = _fitted_namespace(classes=False)
    names["dev"] = names["dev"].assign(extra=1.0)
    shell.user_ns.update(names)
    train_path = tmp_path / "train.parquet"
    names["train"].to_parquet(train_path)

    assert _sela_cv_predictions(str(tmp_path / "cv.pkl"), str(train_path), 3) == 0


def test_warm_imports_what_it_can():
    _sela_warm(["json", "a_module_that_does_not_exist"])


def test_warm_modules_are_the_templates_and_the_families():
    assert WARM_MODULES[:3] == ("numpy", "pandas", "sklearn")
    assert {"xgboost", "sklearn.svm", "sklearn.neighbors", "pyarrow"} <= set(WARM_MODULES)
    assert len(set(WARM_MODULES)) == len(WARM_MODULES)


def test_copied_sources_define_the_helpers_with_the_kernels_own_get_ipython():
    running = Shell(x=1, _private=2)
    namespace: dict[str, Any] = {"get_ipython": lambda: running}

    exec(compile(kernel_helpers_source(), "<kernel helpers>", "exec"), namespace)
    exec(compile(warmup_source(), "<warm-up>", "exec"), namespace)

    assert kernel_helpers_source() == cells.KERNEL_HELPERS
    assert warmup_source() == cells.WARMUP_SOURCE
    assert {helper.__name__ for helper in HELPERS} | {"_sela_warm"} <= set(namespace)
    assert namespace["_SELA_LIBRARIES"] == kernel_helpers._SELA_LIBRARIES
    assert namespace["_sela_user_names"]() == ["x"]
    assert all(isinstance(namespace[h.__name__], types.FunctionType) for h in HELPERS)
