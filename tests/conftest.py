"""Shared fixtures: real datasets shipped in pip packages, and small synthetic frames."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from server_process import JupyterServer, start_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def housing() -> pd.DataFrame:
    """The Windsor house-price data (Ecdat Housing): 546 rows, target ``price``."""
    return pd.read_csv(EXAMPLES / "housing.csv")


@pytest.fixture
def small_regression() -> pd.DataFrame:
    """A quick synthetic regression frame with a categorical column and a few missing values."""
    rng = np.random.default_rng(0)
    n = 120
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0, 10, size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    y = 3 * x1 + 0.5 * x2 + (colour == "red") * 2 + rng.normal(scale=0.3, size=n)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "y": y})
    frame.loc[::17, "x2"] = np.nan
    return frame


@pytest.fixture
def broken_kernel_spec(tmp_path: Path) -> Path:
    """A Jupyter data directory (for ``JUPYTER_PATH``) whose ``python3`` kernel spec names a
    program that does not exist: no kernel can start."""
    root = tmp_path / "broken-jupyter"
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = ["/nonexistent/python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
    )
    return root


@pytest.fixture
def jupyter_server(tmp_path: Path) -> Iterator[JupyterServer]:
    """A real ``jupyter server`` subprocess on 127.0.0.1 with a token; stopped afterwards."""
    server = start_server(tmp_path, "--SelaApp.default_max_depth=2")
    yield server
    server.stop()
