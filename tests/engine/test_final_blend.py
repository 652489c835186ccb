"""A run's final candidate end to end: chosen when the run ends, exported as cells that run on
their own and reproduce its dev score, refit and used for predictions through the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from nbclient import NotebookClient
from sklearn.datasets import load_breast_cancer

import sela_jupyter
from sela_jupyter.engine.api import Run
from sela_jupyter.engine.cells import score_saved_predictions
from sela_jupyter.engine.ensemble import (
    CV_FILE,
    PREDICTIONS_FILE,
    WeightedEnsemble,
    load_outputs,
)
from sela_jupyter.engine.search import CV_MAX_ERROR_GAP

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    runs = tmp_path_factory.mktemp("runs")
    return sela_jupyter.run(
        pd.read_csv(EXAMPLES / "housing.csv"), target="price", rollouts=8, runs_dir=runs, seed=3
    )


def test_a_finished_run_records_a_final_candidate_chosen_out_of_fold(
    finished_run: Run,
) -> None:
    final = finished_run.final
    best = finished_run.best
    assert final is not None and best is not None
    # Eight nodes, each among the eight best when it finished: each has out-of-fold outputs
    # over train + dev unless its error was 15 % above the best's or its dev outputs are
    # another node's, so the final candidate is chosen on those, at least as good as its best
    # single node there (rmse: lower is better).
    assert final.chosen_on == "cv"
    assert final.cv_score <= final.best_single["cv_score"] + 1e-6
    rows = len(pd.read_parquet(finished_run.path / "data/train.parquet")) + len(
        pd.read_parquet(finished_run.path / "data/dev.parquet")
    )
    done = [node for node in finished_run.tree if node.status == "done"]
    folded = {n.id: load_outputs(finished_run.path / "nodes" / n.id / CV_FILE) for n in done}
    assert folded[best.id] is not None and folded[finished_run.tree.root.id] is not None

    def dev_outputs(node_id: str) -> np.ndarray:
        saved = load_outputs(finished_run.path / "nodes" / node_id / PREDICTIONS_FILE)
        return saved["dev"]["predict"]

    for node in done:
        if folded[node.id] is not None:
            assert len(folded[node.id]["predict"]) == rows
        else:
            twin = any(
                np.array_equal(dev_outputs(node.id), dev_outputs(other))
                for other, cv in folded.items()
                if cv is not None
            )
            assert twin or node.dev_score > (1 + CV_MAX_ERROR_GAP) * best.dev_score
    assert final.kind == ("ensemble" if len(final.members) > 1 else "node")
    for member in final.members:
        assert finished_run.tree[member.node].status == "done" and member.weight >= 1
    assert final.test_score is not None
    saved = load_outputs(finished_run.path / "nodes" / best.id / PREDICTIONS_FILE)
    assert saved is not None and set(saved) == {"dev", "test"}
    assert len(saved["dev"]["predict"]) == len(
        pd.read_parquet(finished_run.path / "data/dev.parquet")
    )


def _write_final(run: Run, final: dict) -> None:
    """Make ``final`` the run's recorded final candidate, as a finished run would."""
    record = json.loads((run.path / "run.json").read_text())
    record["final"] = final
    (run.path / "run.json").write_text(json.dumps(record))
    run.reload()


def _blend_of_two(run: Run) -> tuple[dict, float]:
    """Write a two-node final blend (weights 2 and 1) into the run; its dev score from the saved
    outputs, computed here independently of the selection code."""
    board = run.leaderboard()
    first, second = board["node"].iloc[0], board["node"].iloc[1]
    outputs = [
        load_outputs(run.path / "nodes" / node / PREDICTIONS_FILE)["dev"]["predict"]
        for node in (first, second)
    ]
    blended = (2 * np.asarray(outputs[0], float) + np.asarray(outputs[1], float)) / 3
    y_dev = pd.read_parquet(run.path / "data/dev.parquet")["price"].to_numpy()
    dev_score = score_saved_predictions(run.task, y_dev, {"predict": blended})
    final = {
        "kind": "ensemble",
        "members": [{"node": first, "weight": 2}, {"node": second, "weight": 1}],
        "dev_score": dev_score,
        "test_score": None,
        "best_single": {},
    }
    _write_final(run, final)
    return final, dev_score


def test_an_exported_blend_runs_on_its_own_and_reproduces_its_dev_score(
    finished_run: Run, tmp_path: Path
) -> None:
    final, dev_score = _blend_of_two(finished_run)
    path = finished_run.export_notebook(tmp_path / "final.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["sela"]["node"] == "final"
    assert "sela_jupyter" not in "\n".join(c.source for c in nb.cells)
    roles = [c.metadata["sela"]["role"] for c in nb.cells]
    assert roles.count("member-fit") == 2 and roles.count("member") == 2
    NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    evaluation = next(c for c in nb.cells if c.metadata["sela"]["role"] == "evaluation")
    printed = evaluation.outputs[0]["text"]
    assert printed.startswith("dev rmse: ")
    assert float(printed.split(":")[1]) == pytest.approx(dev_score, rel=1e-5)
    for member in final["members"]:  # each member rebuilt its own pipeline exactly
        node = finished_run.tree[member["node"]]
        out = next(
            c.outputs[0]["text"]
            for c in nb.cells
            if c.metadata["sela"]["role"] == "member-fit" and repr(node.id) in c.source
        )
        assert float(out.split(":")[1]) == pytest.approx(node.dev_score, rel=1e-5)
    assert "test rmse:" in "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )

    script = finished_run.export_code()
    assert "class WeightedEnsemble" in script and "fitted[" in script
    assert finished_run.export_code("best").count("class WeightedEnsemble") == 0


def test_the_api_refits_the_blend_and_predicts(finished_run: Run) -> None:
    final, _ = _blend_of_two(finished_run)
    pipeline = finished_run.pipeline()
    assert isinstance(pipeline, WeightedEnsemble) and len(pipeline.members) == 2
    new_rows = pd.read_parquet(finished_run.path / "data/dev.parquet").head(5)
    predictions = finished_run.predict(new_rows)
    members = [finished_run.predict(new_rows, m["node"]) for m in final["members"]]
    np.testing.assert_allclose(predictions, (2 * members[0] + members[1]) / 3, rtol=1e-5)
    assert finished_run.node("final").id == final["members"][0]["node"]
    assert finished_run.export_metadata("best")["node"] == finished_run.best.id


@pytest.fixture(scope="module")
def binary_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    frame = load_breast_cancer(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    runs = tmp_path_factory.mktemp("binary-runs")
    return sela_jupyter.run(frame, target="target", rollouts=3, runs_dir=runs, seed=2)


def _thresholded_node(run: Run, threshold: float) -> tuple[dict, float]:
    """Make the best node, at ``threshold`` on the positive class's probability, the run's
    final; its dev F1 computed here from the node's saved probabilities."""
    best = run.best
    assert best is not None
    saved = load_outputs(run.path / "nodes" / best.id / PREDICTIONS_FILE)["dev"]
    positive = list(run.task.classes).index(run.task.positive_label)
    predicted = np.where(saved["predict_proba"][:, positive] >= threshold, positive, 1 - positive)
    labels = pd.read_parquet(run.path / "data/dev.parquet")["target"]
    y_dev = labels.map({c: i for i, c in enumerate(run.task.classes)}).to_numpy()
    dev_score = score_saved_predictions(run.task, y_dev, {"predict": predicted})
    final = {
        "kind": "node",
        "members": [{"node": best.id, "weight": 1}],
        "dev_score": dev_score,
        "test_score": None,
        "chosen_on": "cv",
        "threshold": threshold,
        "best_single": {},
    }
    _write_final(run, final)
    return final, dev_score


def test_a_node_with_its_own_threshold_exports_and_refits_with_it(
    binary_run: Run, tmp_path: Path
) -> None:
    # A threshold far from 0.5 changes predictions, so a dropped threshold cannot pass.
    final, dev_score = _thresholded_node(binary_run, 0.1)
    assert abs(dev_score - binary_run.best.dev_score) > 1e-3  # the threshold matters here
    path = binary_run.export_notebook(tmp_path / "final.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["sela"]["node"] == "final"
    assert "threshold 0.10" in nb.cells[0].source
    NotebookClient(nb, timeout=180, kernel_name="python3").execute()
    evaluation = next(c for c in nb.cells if c.metadata["sela"]["role"] == "evaluation")
    assert "threshold=0.1, positive=POSITIVE" in evaluation.source
    printed = evaluation.outputs[0]["text"]
    assert float(printed.split(":")[1]) == pytest.approx(dev_score, rel=1e-5)

    pipeline = binary_run.pipeline()
    assert isinstance(pipeline, WeightedEnsemble) and pipeline.threshold == 0.1
    member = binary_run.pipeline(final["members"][0]["node"])
    rows = pd.read_parquet(binary_run.path / "data/dev.parquet").drop(columns=["target"])
    positive = list(binary_run.task.classes).index("malignant")
    expected = np.where(member.predict_proba(rows)[:, positive] >= 0.1, "malignant", "benign")
    assert (binary_run.predict(rows).to_numpy() == expected).all()
