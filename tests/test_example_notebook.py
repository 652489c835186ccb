"""examples/house_prices.ipynb runs top to bottom, headless, with nbclient (no Jupyter server)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_house_prices_notebook_runs_headless(tmp_path: Path, monkeypatch) -> None:
    shutil.copy(EXAMPLES / "housing.csv", tmp_path / "housing.csv")
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    monkeypatch.delenv("SELA_SERVER_URL", raising=False)
    nb = nbformat.read(EXAMPLES / "house_prices.ipynb", as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env={k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"})

    outputs = "".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.outputs
    )
    assert "finished, 4 simulations" in outputs
    assert "predicted" in outputs and "actual" in outputs
    assert (tmp_path / "best_pipeline.py").is_file()
    assert len(list((tmp_path / ".sela" / "runs").glob("*/run.json"))) == 1
