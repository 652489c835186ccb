"""A brand-new user's environment, for tests that start ``sela`` as such a user would."""

from __future__ import annotations

import os
from pathlib import Path


def new_user_env(home: Path, **extra: str) -> dict[str, str]:
    """This process's environment as a brand-new user's machine has it: ``home`` (made here,
    empty) as HOME, and no ``JUPYTER_*``, ``XDG_*`` or ``IPYTHONDIR`` pointing at directories
    that earlier work left behind."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("JUPYTER_", "XDG_", "JPY_")) and key != "IPYTHONDIR"
    }
    return {**env, "HOME": str(home), **extra}
