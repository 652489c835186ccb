"""The node detail names its notebook relative to the server root, so JupyterLab can open it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rest_helpers import fetch_json, frame_upload, wait_for_run

HOUSING = Path(__file__).resolve().parents[2] / "examples" / "housing.csv"


@pytest.fixture
def runs_dir(jp_root_dir: Path) -> Path:
    """Runs inside the server root, where a user's notebooks live."""
    return jp_root_dir / ".sela" / "runs"


async def test_node_detail_gives_the_notebook_path_relative_to_the_server_root(
    jp_fetch: Any, jp_root_dir: Path
) -> None:
    frame = pd.read_csv(HOUSING).head(200)
    body = {
        "target": "price",
        "options": {"rollouts": 1, "max_depth": 1},
        "data": frame_upload(frame),
    }
    started = await fetch_json(jp_fetch, "runs", method="POST", body=json.dumps(body))
    run = await wait_for_run(jp_fetch, started["id"])

    detail = await fetch_json(jp_fetch, "runs", run["id"], "nodes", run["best"]["node"])

    assert detail["notebook_path"] == (
        f".sela/runs/{run['id']}/nodes/{run['best']['node']}/notebook.ipynb"
    )
    assert (jp_root_dir / detail["notebook_path"]).is_file()
