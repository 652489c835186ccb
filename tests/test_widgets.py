"""The live view: progress, best score, a capped best-frontier tree, node detail and insert."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from sela_jupyter.engine.llm import TokenUsage
from sela_jupyter.engine.new_run import create_run
from sela_jupyter.engine.options import SearchOptions
from sela_jupyter.engine.records import NodeResult
from sela_jupyter.engine.store import RunStore
from sela_jupyter.magics import LocalBackend
from sela_jupyter.widgets import LiveView, cost_text, frontier, token_count


def make_tree(n_children: int) -> dict[str, Any]:
    nodes = [
        {
            "id": "n0",
            "parent": None,
            "depth": 0,
            "stage": "root",
            "insight": None,
            "status": "done",
            "dev_score": 20.0,
        }
    ]
    for i in range(1, n_children + 1):
        nodes.append(
            {
                "id": f"n{i}",
                "parent": "n0",
                "depth": 1,
                "stage": "eda",
                "insight": {"stage": "eda", "text": f"idea {i}"},
                "status": "done" if i % 3 else "running",
                "dev_score": float(i) if i % 3 else None,
            }
        )
    return {"root": "n0", "nodes": nodes}


class FakeSource:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def snapshot(self, run_id: str) -> dict[str, Any]:
        return self.record

    def node(self, run_id: str, node_id: str) -> dict[str, Any]:
        node = next(n for n in self.record["tree"]["nodes"] if n["id"] == node_id)
        return {"node": node, "insights": [node["insight"]], "code": {"eda": "print('eda')"}}

    def script(self, run_id: str, node_id: str) -> str:
        return f"# pipeline of {node_id}"


def record(tree: dict[str, Any], status: str = "running") -> dict[str, Any]:
    return {
        "id": "r1",
        "status": status,
        "active": status == "running",
        "simulations": 3,
        "running": 1,
        "options": {"rollouts": 10, "time_budget": None},
        "task": {"metric": "rmse"},
        "best": {"node": "n1", "dev_score": 1.0, "test_score": 1.5},
        "timings": {"elapsed": 0.0},
        "tree": tree,
    }


def test_frontier_keeps_the_best_and_running_nodes_with_their_ancestors() -> None:
    tree = make_tree(60)
    kept = frontier(tree, lambda a, b: a < b, top_k=5)
    running = [n["id"] for n in tree["nodes"] if n["status"] == "running"]
    assert {"n0", "n1", "n2", "n4", "n5", "n7"} <= set(kept)
    assert set(running) <= set(kept)
    assert len(kept) == 1 + 5 + len(running)


def test_live_view_draws_progress_best_score_and_a_capped_tree() -> None:
    view = LiveView(FakeSource(record(make_tree(30))), "r1", top_k=4)
    view.refresh()
    assert (view.progress.value, view.progress.max) == (3, 10)
    assert "3/10 simulations" in view.progress_text.value
    assert "1" in view.best.value and "n1" in view.best.value
    assert len(view._items) < 31  # not every node becomes a widget
    root = view.tree.nodes[0]
    assert root.name.startswith("root")
    labels = [child.name for child in root.nodes]
    assert "eda · idea 1 · rmse 1" in labels


def test_selecting_a_node_shows_insights_and_code_and_insert_fills_the_pipeline() -> None:
    picked: list[tuple[str, str]] = []
    view = LiveView(
        FakeSource(record(make_tree(3), "finished")),
        "r1",
        on_select=lambda r, n: picked.append((r, n)),
    )
    view.start()
    view.select("n1")
    assert "idea 1" in view.detail.value and "print('eda')" in view.code.value
    assert not view.insert.disabled
    view.insert.click()
    assert view.code.value == "# pipeline of n1" and picked == [("r1", "n1")]
    assert view._thread is None  # a finished run is not polled


def test_token_counts_and_costs_read_short() -> None:
    assert [token_count(n) for n in (950, 12_000, 12_345, 999_990, 1_234_567)] == [
        "950",
        "12k",
        "12.3k",
        "1M",
        "1.2M",
    ]
    assert [cost_text(c) for c in (0.0412, 1.5, 0.00052, 0.00001, 0.0, None)] == [
        "$0.04",
        "$1.50",
        "$0.0005",
        "<$0.0001",
        "$0",
        "$0",
    ]


def test_llm_tokens_and_cost_show_on_the_run_line_and_in_node_detail(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    """A real run directory, read through the in-process backend the ``%sela`` magic uses."""
    store = RunStore(tmp_path)
    run_id = create_run(small_regression, "y", store=store, options=SearchOptions(rollouts=2))
    store.write_node(run_id, NodeResult(node={"id": "n0"}))  # an offline node: no tokens
    view = LiveView(LocalBackend(str(tmp_path)), run_id)

    view.refresh()
    view.select("n0")
    assert "LLM" not in view.progress_text.value  # an offline run shows no tokens
    assert "LLM" not in view.detail.value

    tokens = {"prompt": 10_000, "completion": 2_345, "cost": 0.0412, "calls": 7}
    stored = store.read_run(run_id)
    stored.tokens = TokenUsage.from_dict(tokens)
    store.write_run(stored)
    node_tokens = TokenUsage(prompt=900, completion=300, cost=0.00052, calls=1)
    store.write_node(run_id, NodeResult(node={"id": "n0"}, tokens=node_tokens))
    view.refresh()
    view.select("n0")
    assert "LLM: 12.3k tokens, $0.04" in view.progress_text.value
    assert "LLM: 1.2k tokens, $0.0005 (900 prompt + 300 completion tokens)" in view.detail.value
