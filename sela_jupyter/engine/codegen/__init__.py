"""Code generation: turn the insights on a root-to-node path into stage code.

One module per job: :mod:`.source` (Python source helpers and the cell builder), :mod:`.context`
(what the templates know about the data and the path), one module of templates per stage
(:mod:`.eda`, :mod:`.preprocess`, :mod:`.features`, :mod:`.model`, :mod:`.ensemble`),
:mod:`.transformers` (the helper code cells copy), :mod:`.coder` (:class:`TemplateCoder`) and
:mod:`.cache` (:class:`StageCodeCache`). The model families the model and ensemble templates
build are registered in :mod:`..families`.
"""

from __future__ import annotations

from .cache import CacheKey, StageCodeCache
from .coder import CLOSEST_ENTRY_MIN, STAGE_RENDERERS, TemplateCoder, check_path
from .context import MI_SAMPLE_ROWS, Context
from .model import DEFAULT_MODEL, model_family_of
from .source import LINE, Cell, kwargs, py_call, py_list, py_str, py_value, reflow_line

__all__ = [
    "CLOSEST_ENTRY_MIN",
    "DEFAULT_MODEL",
    "LINE",
    "MI_SAMPLE_ROWS",
    "STAGE_RENDERERS",
    "CacheKey",
    "Cell",
    "Context",
    "StageCodeCache",
    "TemplateCoder",
    "check_path",
    "kwargs",
    "model_family_of",
    "py_call",
    "py_list",
    "py_str",
    "py_value",
    "reflow_line",
]
