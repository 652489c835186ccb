"""Run options: the default ``parallel`` follows the cores on every surface."""

from __future__ import annotations

import pytest

from sela_jupyter.engine import options
from sela_jupyter.engine.options import (
    MAX_DEFAULT_PARALLEL,
    OPTION_DEFAULTS,
    SearchOptions,
    build_options,
    default_parallel,
)
from sela_jupyter.magics import START_OPTIONS
from sela_jupyter.server.app import SelaApp


@pytest.mark.parametrize(
    ("cores", "expected"), [(1, 1), (2, 2), (3, 3), (64, MAX_DEFAULT_PARALLEL)]
)
def test_parallel_defaults_to_one_simulation_per_core_up_to_a_cap(
    monkeypatch: pytest.MonkeyPatch, cores: int, expected: int
) -> None:
    monkeypatch.setattr(options, "available_cores", lambda: cores)

    assert default_parallel() == expected
    assert SearchOptions().parallel == expected
    assert build_options({"rollouts": 3}).parallel == expected
    assert build_options({"rollouts": 3, "parallel": 1}).parallel == 1


def test_every_surface_shows_the_same_parallel_default() -> None:
    assert OPTION_DEFAULTS["parallel"] == default_parallel()
    assert SelaApp().default_parallel == OPTION_DEFAULTS["parallel"]
    assert f"at most {MAX_DEFAULT_PARALLEL}" in START_OPTIONS["parallel"]
    assert f"at most {MAX_DEFAULT_PARALLEL}" in SelaApp.class_get_trait_help(
        SelaApp.default_parallel
    )
