"""Fixtures for the code generator's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _single_threaded_math() -> Iterator[None]:
    # HistGradientBoosting's OpenMP threads thrash on a busy 2-core machine; XGBoost and the
    # forests keep their own n_jobs.
    with threadpool_limits(limits=1):
        yield
