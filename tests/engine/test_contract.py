"""The stage contract is one constant: the harness, the LLM prompt and the docs all say it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sela_jupyter.engine import llm_coder
from sela_jupyter.engine.cells import EVALUATION_SOURCE, setup_source
from sela_jupyter.engine.contract import CONTRACT, SETUP_VARIABLES, STAGE_OUTPUTS, STAGES
from sela_jupyter.engine.insights import STAGES as TREE_LEVELS
from sela_jupyter.engine.task import Task

ROOT = Path(__file__).resolve().parents[2]

TASKS = {
    "regression": Task(target="y", task_type="regression", metric="rmse", score_scale=1.0),
    "binary": Task(
        target="y", task_type="binary", metric="f1", positive_label="b", classes=("a", "b")
    ),
    "multiclass": Task(
        target="y", task_type="multiclass", metric="f1_weighted", classes=("a", "b", "c")
    ),
}


def test_the_docs_quote_the_contract_word_for_word() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert CONTRACT in doc


def test_the_llm_coder_is_told_the_contract() -> None:
    assert llm_coder.CONTRACT is CONTRACT
    assert ", ".join(STAGES) in CONTRACT and TREE_LEVELS == STAGES


@pytest.mark.parametrize("kind", sorted(TASKS))
def test_the_setup_cell_defines_the_contracts_variables(kind: str) -> None:
    task = TASKS[kind]
    source = setup_source(task, train_path="t.parquet", dev_path="d.parquet", test_path="x.parquet")
    # Names on the left of a top-level assignment (``a = ...`` or ``a, b = ...``).
    targets = re.findall(r"^(\w+(?:\s*,\s*\w+)*)\s*=[^=]", source, re.MULTILINE)
    assigned = {name.strip() for target in targets for name in target.split(",")}
    wanted = set(SETUP_VARIABLES)
    if not task.is_classification:
        wanted -= {"CLASSES", "POSITIVE"}
    elif task.task_type != "binary":
        wanted -= {"POSITIVE"}
    assert wanted <= assigned, f"the setup cell does not define {sorted(wanted - assigned)}"


def test_the_evaluation_cell_reads_what_the_stages_leave_behind() -> None:
    for name in STAGE_OUTPUTS:
        assert re.search(rf"\b{name}\b", EVALUATION_SOURCE), name
