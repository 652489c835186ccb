"""Fixtures for the engine's tests that need real child kernels."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sela_jupyter.engine.runner import KernelPool


@pytest.fixture
async def pool() -> AsyncIterator[KernelPool]:
    """A warm pool of one real child kernel, closed after the test."""
    kernels = KernelPool(size=1)
    await kernels.start()
    yield kernels
    await kernels.close()
