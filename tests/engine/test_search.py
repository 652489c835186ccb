"""The search loop end to end, in real child kernels: notebooks, failures, snapshots, resume."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import cloudpickle
import nbformat
import numpy as np
import pandas as pd
import pytest

from sela_jupyter.engine.api import Run
from sela_jupyter.engine.catalog import entry_for
from sela_jupyter.engine.codegen import TemplateCoder
from sela_jupyter.engine.ensemble import DEV_ROWS_TO_JUDGE, PREDICTIONS_FILE
from sela_jupyter.engine.errors import SelaRunError
from sela_jupyter.engine.insights import Insight, InsightPool
from sela_jupyter.engine.new_run import create_run
from sela_jupyter.engine.options import SearchOptions
from sela_jupyter.engine.run_status import interrupt_orphaned_runs
from sela_jupyter.engine.runner import ChildKernel
from sela_jupyter.engine.search import Search
from sela_jupyter.engine.statuses import RunStatus
from sela_jupyter.engine.store import RunStore


class ScriptedCoder(TemplateCoder):
    """The template coder, except for test insights whose code is given verbatim."""

    def __init__(self, scripts: dict[str, str]) -> None:
        super().__init__()
        self.scripts = scripts
        self.calls: list[tuple[str, str | None]] = []

    def stage_code(self, stage, insight, path, profile, task):  # type: ignore[override]
        self.calls.append((stage, insight.id if insight else None))
        if insight is not None and insight.id in self.scripts:
            return self.scripts[insight.id]
        return super().stage_code(stage, None, path, profile, task)


def new_run(store: RunStore, frame: pd.DataFrame, target: str, **options: Any) -> str:
    return create_run(frame, target, store=store, options=SearchOptions(**options))


def only_insights(store: RunStore, run_id: str, insights: list[Insight]) -> None:
    store.write_part(run_id, "insights", InsightPool(insights).to_dict())


def test_search_writes_a_notebook_per_simulation(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    run_id = new_run(store, small_regression, "y", rollouts=5, parallel=2)
    events: list[dict[str, Any]] = []
    record = asyncio.run(Search(store, run_id, listeners=[events.append]).run())

    assert record.status == "finished"
    assert record.simulations == 5
    tree = store.read_tree(run_id)
    simulated = [n for n in tree["nodes"] if n["status"] in ("done", "failed")]
    assert len(simulated) == 5
    for node in simulated:
        node_dir = store.node_dir(run_id, node["id"])
        nb = nbformat.read(node_dir / "notebook.ipynb", as_version=4)
        roles = [c.metadata.get("sela", {}).get("role") for c in nb.cells if c.cell_type == "code"]
        detail = json.loads((node_dir / "result.json").read_text())
        assert detail["node"]["id"] == node["id"]
        assert roles[0] == "setup"
        # The last cell fits and scores, unless the node's pipeline is one already evaluated.
        assert (roles[-1] == "evaluation") != bool(detail["reused_from"])
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("simulation_finished") == 5
    assert "node_added" in kinds
    assert record.best.test_score is not None


def test_failing_stages_fail_their_nodes_and_the_search_finishes(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    run_id = new_run(store, small_regression, "y", rollouts=6, max_depth=1, cell_timeout=3)
    scripts = {
        "eda.raise": "raise ValueError('bad stage')",
        "eda.hang": "import time\ntime.sleep(120)",
        "eda.exit": "import os\nos._exit(3)",
        "eda.ok1": "print('fine')",
        "eda.ok2": "print('also fine')",
    }
    only_insights(store, run_id, [Insight(k, "eda", k) for k in scripts])
    record = asyncio.run(Search(store, run_id, coder=ScriptedCoder(scripts)).run())

    assert record.status == "finished"
    nodes = {n["insight"]["id"]: n for n in store.read_tree(run_id)["nodes"] if n["insight"]}
    assert nodes["eda.raise"]["status"] == "failed"
    assert "ValueError: bad stage" in nodes["eda.raise"]["error"]
    assert "timed out" in nodes["eda.hang"]["error"]
    assert "died" in nodes["eda.exit"]["error"]
    assert nodes["eda.ok1"]["status"] == nodes["eda.ok2"]["status"] == "done"
    detail = store.read_node(run_id, nodes["eda.raise"]["id"])
    assert "raise ValueError" in detail.traceback
    run = Run(store, run_id)
    assert run.check() is run  # some nodes succeeded: the run stands, its failures listed
    assert (run.leaderboard()["status"] == "failed").sum() == 3


class BrokenModelCoder(TemplateCoder):
    """Writes a model stage that always raises: no simulation can succeed."""

    def stage_code(self, stage, insight, path, profile, task):  # type: ignore[override]
        if stage == "model":
            return "raise RuntimeError('no model today')"
        return super().stage_code(stage, insight, path, profile, task)


def test_a_run_whose_every_simulation_fails_is_failed_with_the_common_error(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    run_id = new_run(store, small_regression, "y", rollouts=3, max_depth=2)
    record = asyncio.run(Search(store, run_id, coder=BrokenModelCoder()).run())

    assert record.status == "failed"
    assert record.error.startswith(
        "all 3 simulations failed with: model cell failed: RuntimeError: no model today;"
    )
    assert str(store.run_dir(run_id) / "nodes") in record.error
    assert "no model today" in (store.run_dir(run_id) / "run.log").read_text()
    with pytest.raises(SelaRunError, match=f"run {run_id} failed: all 3 simulations failed"):
        Run(store, run_id).check()


def test_a_pipeline_already_evaluated_is_not_refitted(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    run_id = new_run(store, small_regression, "y", rollouts=4, max_depth=2)
    scripts = {
        "eda.look": "print(train.shape)",  # analysis only: the root's pipeline, unchanged
        "preprocess.drop": (  # fewer training rows: a different pipeline
            "train = train.iloc[10:]\n"
            + TemplateCoder().stage_code("preprocess", None, [], *_profile_task(store, run_id))
        ),
    }
    only_insights(
        store,
        run_id,
        [Insight("eda.look", "eda", "look"), Insight("preprocess.drop", "preprocess", "drop")],
    )
    asyncio.run(Search(store, run_id, coder=ScriptedCoder(scripts)).run())

    tree = store.read_tree(run_id)
    by_depth = {n["depth"]: n for n in tree["nodes"] if n["status"] == "done"}
    root, eda, preprocess = by_depth[0], by_depth[1], by_depth[2]
    eda_detail = store.read_node(run_id, eda["id"])
    assert eda_detail.reused_from == root["id"]
    assert eda["dev_score"] == root["dev_score"] and eda["test_score"] == root["test_score"]
    nb = nbformat.read(store.node_dir(run_id, eda["id"]) / "notebook.ipynb", as_version=4)
    roles = [c.metadata.get("sela", {}).get("role") for c in nb.cells if c.cell_type == "code"]
    assert "evaluation" not in roles and ", 4)" in eda_detail.output_tail  # its print ran
    assert "Not refitted" in nb.cells[-1].source
    assert (store.node_dir(run_id, eda["id"]) / "predictions.pkl").is_file()
    # Dropping rows changes the pipeline: it is fitted and scored on its own.
    assert store.read_node(run_id, preprocess["id"]).reused_from is None
    assert preprocess["dev_score"] != root["dev_score"]


def test_child_does_not_rerun_ancestor_code(tmp_path: Path, small_regression: pd.DataFrame) -> None:
    store = RunStore(tmp_path)
    marker = tmp_path / "eda-ran.txt"
    run_id = new_run(store, small_regression, "y", rollouts=3, max_depth=2)
    scripts = {
        "eda.count": f"with open({str(marker)!r}, 'a') as f:\n    f.write('x')\nnotes['eda'] = 1",
        "preprocess.check": (
            "assert notes == {'eda': 1}\n"
            + TemplateCoder().stage_code("preprocess", None, [], *_profile_task(store, run_id))
        ),
    }
    only_insights(
        store,
        run_id,
        [Insight("eda.count", "eda", "count"), Insight("preprocess.check", "preprocess", "check")],
    )
    asyncio.run(Search(store, run_id, coder=ScriptedCoder(scripts)).run())

    tree = store.read_tree(run_id)
    child = next(n for n in tree["nodes"] if n["depth"] == 2)
    assert child["status"] == "done", child["error"]
    assert marker.read_text() == "x"  # the eda code ran once: in its own simulation
    detail = store.read_node(run_id, child["id"])
    assert detail.restored is True
    nb = nbformat.read(store.node_dir(run_id, child["id"]) / "notebook.ipynb", as_version=4)
    assert nb.metadata["sela"]["restored_from"] == child["parent"]
    copied = [c for c in nb.cells if c.metadata.get("sela", {}).get("from") == child["parent"]]
    assert [c.metadata["sela"]["role"] for c in copied] == ["setup", "path"]


def test_stopped_run_resumes_without_redoing_finished_nodes(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    run_id = new_run(store, small_regression, "y", rollouts=5)
    search = Search(store, run_id)

    def stop_after_two(event: dict[str, Any]) -> None:
        if event["type"] == "simulation_finished" and search.tree.simulations >= 2:
            search.stop()

    search.listeners.append(stop_after_two)
    record = asyncio.run(search.run())
    assert record.status == "stopped"
    first = {n["id"]: n for n in store.read_tree(run_id)["nodes"] if n["status"] == "done"}
    stamps = {i: store.read_node(run_id, i).timings["finished"] for i in first}
    assert len(first) == 2

    resumed = Search(store, run_id)
    calls: list[str] = []
    resumed.listeners.append(
        lambda e: calls.append(e["node"]["id"]) if e["type"] == "simulation_started" else None
    )
    record = asyncio.run(resumed.run())
    assert record.status == "finished"
    assert record.simulations == 5
    assert not set(calls) & set(first)
    for node_id, stamp in stamps.items():
        assert store.read_node(run_id, node_id).timings["finished"] == stamp


def test_stop_mid_simulation_shuts_the_busy_kernel_down_without_restarting_it(
    tmp_path: Path, small_regression: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    restarted: list[str] = []
    restart = ChildKernel.restart

    async def counting_restart(kernel: ChildKernel, timeout: float = 60.0) -> None:
        restarted.append(kernel.kernel_id)
        await restart(kernel, timeout)

    monkeypatch.setattr(ChildKernel, "restart", counting_restart)
    store = RunStore(tmp_path)
    run_id = new_run(store, small_regression, "y", rollouts=3, max_depth=1, cell_timeout=60)
    scripts = {"eda.hang": "import time\ntime.sleep(60)"}
    only_insights(store, run_id, [Insight(k, "eda", k) for k in scripts])
    search = Search(store, run_id, coder=ScriptedCoder(scripts))

    def stop_once_it_hangs(event: dict[str, Any]) -> None:
        if event["type"] == "simulation_started":
            asyncio.get_running_loop().call_later(1.0, search.stop)

    search.listeners.append(stop_once_it_hangs)
    started = time.monotonic()
    record = asyncio.run(search.run())
    assert record.status == "stopped"
    assert time.monotonic() - started < 30  # not the 60 s of the hanging cell
    assert restarted == []  # the pool closed: nobody would have used a restarted kernel


def test_runs_are_deterministic_for_a_seed(tmp_path: Path, small_regression: pd.DataFrame) -> None:
    def grow(where: Path) -> list[tuple[str, float | None]]:
        store = RunStore(where)
        run_id = new_run(store, small_regression, "y", rollouts=4, seed=5, parallel=1)
        asyncio.run(Search(store, run_id).run())
        return [
            ((n["insight"] or {}).get("id", "root"), n["dev_score"])
            for n in store.read_tree(run_id)["nodes"]
        ]

    assert grow(tmp_path / "a") == grow(tmp_path / "b")


def _profile_task(store: RunStore, run_id: str) -> tuple[Any, Any]:
    search = Search(store, run_id)
    return search.state.profile, search.task


@pytest.mark.parametrize("budget", [12.0])  # kernel start-up counts: leave room on a busy box
def test_time_budget_stops_the_search(
    tmp_path: Path, small_regression: pd.DataFrame, budget: float
) -> None:
    store = RunStore(tmp_path)
    run_id = new_run(store, small_regression, "y", rollouts=None, time_budget=budget)
    record = asyncio.run(Search(store, run_id).run())
    assert record.status == "finished"
    assert record.simulations >= 1
    # the budget covers kernel start-up too; in-flight simulations are cut at the deadline
    assert record.timings.elapsed < budget + 10


def test_out_of_fold_outputs_go_to_the_top_nodes_and_to_each_model_familys_best(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    search = Search(store, new_run(store, small_regression, "y", cv_top=2))
    tree = search.tree

    def child(parent, insight: Insight, dev_rmse: float | None = None):
        node = tree.add_child(parent, insight)
        if dev_rmse is not None:
            tree.begin(node)
            tree.finish(node, reward=0.5, dev_score=dev_rmse)
        return node

    tree.begin(tree.root)
    tree.finish(tree.root, reward=0.5, dev_score=1.0)  # the default booster
    child(tree.root, Insight("eda.a", "eda", "a"), 1.04)  # the default booster too
    features = child(
        child(
            child(tree.root, Insight("eda.b", "eda", "b")),
            Insight("preprocess.b", "preprocess", "b"),
        ),
        Insight("features.b", "features", "b"),
    )
    child(features, entry_for("model.random_forest").insight(), 1.1)

    def judged(insight: Insight, dev_rmse: float, parent=features) -> bool:
        return search._cv_time_limit(child(parent, insight), dev_rmse, 0.1) is not None

    # Outside the two best on dev, a node is judged only as its model family's best so far.
    assert judged(entry_for("model.linear").insight(), 1.12)
    assert not judged(entry_for("model.rf_balanced").insight(), 1.12)
    assert judged(entry_for("model.rf_balanced").insight(), 1.08)
    assert not judged(Insight("eda.c", "eda", "c"), 1.05, tree.root)
    assert judged(Insight("eda.d", "eda", "d"), 0.9, tree.root)

    # A tie with an earlier node's score is skipped only when the dev outputs are the same too.
    def saves(node, dev: list[float]) -> None:
        folder = search.state.node_dir(node.id)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / PREDICTIONS_FILE).open("wb") as f:
            cloudpickle.dump({"dev": {"predict": np.array(dev)}}, f)

    saves(tree.root, [1.0, 2.0, 3.0])
    twin, other = (child(features, entry_for("model.svm").insight()) for _ in "ab")
    saves(twin, [1.0, 2.0, 3.0])
    saves(other, [3.0, 2.0, 1.0])  # as good on dev, with other errors: worth its folds
    assert search._cv_time_limit(twin, 1.0, 0.1) is None
    assert search._cv_time_limit(other, 1.0, 0.1) is not None
    # Whatever its rank or family, a node with 15 % more error than the best gets no folds.
    assert not judged(entry_for("model.svm").insight(), 1.16)
    assert judged(entry_for("model.svm").insight(), 1.14)


def test_under_a_time_budget_costly_folds_go_only_to_a_new_best_node(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    options = {"rollouts": None, "time_budget": 60, "parallel": 2}
    search = Search(store, new_run(store, small_regression, "y", **options))
    tree = search.tree
    tree.begin(tree.root)
    tree.finish(tree.root, reward=0.5, dev_score=1.0)
    node = tree.add_child(tree.root, Insight("eda.a", "eda", "a"))
    # 2 refits (dev is the third fold) of a 6 s fit: over a tenth of 60 s times 2 at once.
    assert search._cv_time_limit(node, 1.01, 6.0) is None
    assert search._cv_time_limit(node, 0.99, 6.0) is not None
    assert search._cv_time_limit(node, 1.01, 1.0) is not None


def test_a_dev_of_enough_rows_judges_alone_so_no_node_gets_folds(tmp_path: Path) -> None:
    rows = 5 * DEV_ROWS_TO_JUDGE + 50  # a fifth of the rows go to dev
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=rows), "y": rng.normal(size=rows)})
    store = RunStore(tmp_path)
    search = Search(store, new_run(store, frame, "y", rollouts=4, parallel=1))
    assert search.state.dev_labels is not None
    assert len(search.state.dev_labels) >= DEV_ROWS_TO_JUDGE
    tree = search.tree
    tree.begin(tree.root)
    tree.finish(tree.root, reward=0.5, dev_score=1.0)
    node = tree.add_child(tree.root, Insight("eda.a", "eda", "a"))
    assert search._cv_time_limit(node, 0.5, 0.1) is None  # not even a new best


def test_under_a_time_budget_cells_slower_than_the_runs_fits_are_capped(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    timed = Search(store, new_run(store, small_regression, "y", rollouts=None, time_budget=60))
    untimed = Search(store, new_run(store, small_regression, "y", rollouts=10))
    for search in (timed, untimed):
        tree = search.tree
        nodes = [tree.add_child(tree.root, Insight(f"eda.{i}", "eda", str(i))) for i in "abc"]
        assert search._cell_cap(nodes[0]) is None  # not even the root has a timed fit
        for node, fit in zip([tree.root, *nodes[:2]], [0.5, 1.0, 4.0], strict=True):
            node.timings = {"fit": fit}
        # The median fit is 1 s: five times that, or a tenth of the 60 s budget if longer.
        assert search._cell_cap(nodes[2]) == (6.0 if search is timed else None)
        nodes[0].timings = {"fit": 3.0}
        assert search._cell_cap(nodes[2]) == (15.0 if search is timed else None)
        assert search._cell_cap(tree.root) is None  # the root sets the pace
        # A child refits its ancestors' steps: a slower parent's fit counts instead.
        below = tree.add_child(nodes[1], Insight("preprocess.a", "preprocess", "a"))
        assert search._cell_cap(below) == (20.0 if search is timed else None)


def test_a_hopeless_fit_is_stopped_at_the_cap_and_the_search_goes_on(
    tmp_path: Path, small_regression: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    run_id = new_run(
        store, small_regression, "y", rollouts=6, time_budget=90, max_depth=1, parallel=1, seed=5
    )
    # Each of these drops training rows, so each fits anew and its fit is timed.
    scripts = {f"eda.fit{i}": f"train = train.iloc[{i}:]" for i in range(1, 5)}
    scripts["eda.slow"] = "import time\ntime.sleep(60)"
    only_insights(store, run_id, [Insight(k, "eda", k) for k in scripts])
    search = Search(store, run_id, coder=ScriptedCoder(scripts))
    order: list[str] = []
    search.listeners.append(
        lambda e: e["type"] == "simulation_started" and order.append(e["node"]["id"])
    )
    started = time.monotonic()
    record = asyncio.run(search.run())

    assert record.status == "finished" and record.simulations == 6
    nodes = {n["insight"]["id"]: n for n in store.read_tree(run_id)["nodes"] if n["insight"]}
    slow = nodes["eda.slow"]
    assert order.index(slow["id"]) >= 4, "seeded order: three fits are timed before it"
    assert slow["status"] == "failed" and "stopped as a hopeless fit" in slow["error"]
    assert "timed out after 9 s" in slow["error"]  # a tenth of the 90 s budget
    assert all(nodes[k]["status"] == "done" for k in scripts if k != "eda.slow")
    assert time.monotonic() - started < 50


def test_only_a_dead_process_leaves_its_runs_interrupted(
    tmp_path: Path, housing: pd.DataFrame
) -> None:
    store = RunStore(tmp_path)
    mine, gone = (create_run(housing, "price", store=store, options=SearchOptions()) for _ in "ab")
    record = store.read_run(gone)
    record.status, record.pid = RunStatus.RUNNING, 2**22 + 12345  # beyond pid_max: none such
    store.write_run(record)
    assert interrupt_orphaned_runs(store) == [gone]
    assert store.read_run(gone).status == RunStatus.INTERRUPTED
    assert store.read_run(mine).status == RunStatus.CREATED  # this live process made it
