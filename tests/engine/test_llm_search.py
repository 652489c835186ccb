"""Runs with an LLM: real child kernels, the real ``openai`` client, a real local chat server."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from llm_server import ChatServer, last_user, stage_of

import sela_jupyter
from sela_jupyter.engine.insights import Insight, InsightPool
from sela_jupyter.engine.new_run import create_run
from sela_jupyter.engine.options import SearchOptions
from sela_jupyter.engine.search import Search
from sela_jupyter.engine.store import RunStore

KEY = "sk-test-SECRET-5f2c9a7e1b"


@pytest.fixture(scope="module")
def housing_small() -> pd.DataFrame:
    frame = pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "housing.csv")
    return frame.head(300)


@pytest.fixture(scope="module")
def llm_run(
    tmp_path_factory: pytest.TempPathFactory, housing_small: pd.DataFrame
) -> Iterator[tuple[Any, ChatServer]]:
    """One run of 6 rollouts whose insights and non-default code come from the LLM."""
    runs = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp, ChatServer() as server:
        mp.setenv("OPENAI_API_KEY", KEY)
        run = sela_jupyter.run(
            housing_small,
            target="price",
            rollouts=6,
            max_depth=3,
            llm="gpt-4o-mini",
            base_url=server.url,
            runs_dir=runs,
            description="Price houses in Windsor for an estate agent",
        )
        yield run, server


def coder_keys(server: ChatServer) -> Counter[tuple[str, str]]:
    """(stage, insight) of every first coder request (fix requests are not new asks)."""
    keys: Counter[tuple[str, str]] = Counter()
    for body in server.requests:
        users = [m["content"] for m in body["messages"] if m["role"] == "user"]
        stage = stage_of(users[0])
        if stage is not None and len(users) == 1:
            previous = users[0].split("Code of the earlier stage cells")[1]
            keys[(stage, previous)] += 1
    return keys


def test_llm_run_proposes_codes_and_scores_end_to_end(llm_run: tuple[Any, ChatServer]) -> None:
    run, server = llm_run
    assert run.record.status == "finished" and run.record.simulations == 6
    assert "Price houses in Windsor" in last_user(server.requests[0])
    simulated = [n for n in run.tree if n.simulated and n.insight is not None]
    assert simulated and all(n.insight.source == "llm" for n in simulated)
    assert all(n.status == "done" and n.dev_score is not None for n in simulated)
    tokens = run.record.tokens
    assert tokens.calls == len(server.requests) and tokens.prompt > 0
    assert tokens.cost == pytest.approx(
        (tokens.prompt * 0.15 + tokens.completion * 0.6) / 1e6, abs=1e-6
    )
    node_dir = run.path / "nodes" / simulated[0].id
    detail = json.loads((node_dir / "result.json").read_text())
    assert detail["tokens"]["calls"] == 1 and detail["llm"][simulated[0].stage]["replies"] == 1
    assert run.predict(pd.read_parquet(run.path / "data" / "dev.parquet")).notna().all()


def test_coder_is_asked_once_per_stage_and_insight_path(llm_run: tuple[Any, ChatServer]) -> None:
    run, server = llm_run
    asks = coder_keys(server)
    assert asks and max(asks.values()) == 1
    llm_nodes = [n for n in run.tree if n.simulated and n.insight is not None]
    assert sum(asks.values()) == len(llm_nodes)  # one ask per LLM-coded node, none on replay


def test_the_key_is_nowhere_in_the_run_directory(llm_run: tuple[Any, ChatServer]) -> None:
    run, server = llm_run
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"  # it was really used
    files = [p for p in run.path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".ipynb" for p in files) and any(p.name == "log.txt" for p in files)
    leaked = [p for p in files if KEY.encode() in p.read_bytes()]
    assert leaked == []


def only(store: RunStore, run_id: str, insights: list[Insight]) -> None:
    store.write_part(run_id, "insights", InsightPool(insights).to_dict())


def test_buggy_code_is_fixed_in_the_same_kernel_and_unmet_contracts_count_as_errors(
    tmp_path: Path, housing_small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    store = RunStore(tmp_path)
    with ChatServer() as server:
        options = SearchOptions(
            rollouts=3, max_depth=2, llm="m", llm_base_url=server.url, insights="both"
        )
        run_id = create_run(housing_small, "price", store=store, options=options)
        only(
            store,
            run_id,
            [
                Insight("llm.eda.1", "eda", "BUGGY summary of the numbers", "llm"),
                Insight("llm.preprocess.1", "preprocess", "NOSTEPS scale the numbers", "llm"),
            ],
        )
        stored = store.read_run(run_id)
        stored.llm_insights_proposed = True
        store.write_run(stored)
        record = asyncio.run(Search(store, run_id).run())
    assert record.status == "finished"
    tree = {n["id"]: n for n in store.read_tree(run_id)["nodes"]}
    eda = next(n for n in tree.values() if n["stage"] == "eda")
    pre = next(n for n in tree.values() if n["stage"] == "preprocess")
    assert eda["status"] == "done" and pre["status"] == "done"
    eda_detail = store.read_node(run_id, eda["id"])
    assert eda_detail.llm["eda"]["replies"] == 2
    assert "NameError" in eda_detail.llm["eda"]["log"][0]
    assert store.read_node(run_id, pre["id"]).llm["preprocess"]["replies"] == 2
    fix_prompts = [p for p in server.user_prompts() if "Running that cell failed" in p]
    assert any("stage contract unmet" in p for p in fix_prompts)
    nb = nbformat.read(store.node_dir(run_id, eda["id"]) / "notebook.ipynb", as_version=4)
    roles = [c.metadata["sela"]["role"] for c in nb.cells if c.cell_type == "code"]
    assert roles.count("attempt") == 1 and "path" in roles
    cached = {e["stage"]: e["code"] for e in store.read_part(run_id, "code")["entries"]}
    assert "undefined_name" not in cached["eda"]  # the working code is what is kept


def test_server_down_falls_back_to_the_builtin_catalog_or_fails_clearly(
    tmp_path: Path, housing_small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    down = ChatServer()
    url = down.url
    down.stop()
    store = RunStore(tmp_path)
    common = {"max_depth": 1, "llm": "m", "llm_base_url": url, "llm_retries": 0, "insights": "llm"}
    failing = create_run(
        housing_small, "price", store=store, options=SearchOptions(rollouts=2, **common)
    )
    record = asyncio.run(Search(store, failing).run())
    assert record.status == "failed"
    assert "is the endpoint up" in record.error and url in record.error
    assert record.simulations == 0

    options = SearchOptions(rollouts=2, fallback="builtin", **common)
    falling_back = create_run(housing_small, "price", store=store, options=options)
    record = asyncio.run(Search(store, falling_back).run())
    assert record.status == "finished" and record.simulations == 2
    assert "built-in insight catalog" in record.warnings[0]
    sources = {
        n["insight"]["source"] for n in store.read_tree(falling_back)["nodes"] if n["insight"]
    }
    assert sources == {"builtin"}


def test_user_insights_are_coded_by_the_llm_or_mapped_to_the_closest_builtin(
    tmp_path: Path, housing_small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    store = RunStore(tmp_path)
    offline = create_run(
        housing_small, "price", store=store, options=SearchOptions(rollouts=3, max_depth=1)
    )
    search = Search(store, offline)
    mapped = search.add_insight("n0", "show the distribution of the price and its skew")
    unmappable = search.add_insight("n0", "consult the oracle of Delphi")
    search.pin(mapped.id)
    asyncio.run(search.run())
    tree = {n["id"]: n for n in store.read_tree(offline)["nodes"]}
    assert tree[mapped.id]["status"] == "done"
    assert "closest built-in insight eda.target_distribution" in (
        store.read_node(offline, mapped.id).output_tail
    )
    with pytest.raises(KeyError, match="no built-in eda insight is close"):
        search.stage_code("eda", unmappable.insight, [])

    with ChatServer() as server:
        options = SearchOptions(rollouts=2, max_depth=1, llm="m", llm_base_url=server.url)
        online = create_run(housing_small, "price", store=store, options=options)
        only(store, online, [])
        stored = store.read_run(online)
        stored.llm_insights_proposed = True
        store.write_run(stored)
        search = Search(store, online)
        user = search.add_insight("n0", "consult the oracle of Delphi")
        asyncio.run(search.run())
    assert {n["id"]: n for n in store.read_tree(online)["nodes"]}[user.id]["status"] == "done"
    assert any("consult the oracle of Delphi" in p for p in server.user_prompts())


def test_magic_runs_with_an_llm_in_process(
    tmp_path: Path, housing_small: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from sela_jupyter.magics import SelaMagics

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("JPY_PARENT_PID", raising=False)
    monkeypatch.delenv("SELA_SERVER_URL", raising=False)
    shell = InteractiveShell.instance()
    shell.user_ns["houses"] = housing_small
    magics = SelaMagics(shell=shell, mode="local", runs_dir=str(tmp_path))
    with ChatServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        magics.sela(
            "houses target=price rollouts=3 max_depth=2 llm=gpt-4o-mini token_budget=100000",
            "Estimate sale prices; the agent cares about typical homes.",
        )
        magics.sela("wait")
    out = capsys.readouterr().out
    record = json.loads(next(tmp_path.glob("*/run.json")).read_text())
    assert record["status"] == "finished", out
    assert record["tokens"]["calls"] >= 2 and record["options"]["token_budget"] == 100000
    assert "typical homes" in last_user(server.requests[0])
    texts = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    assert not any(KEY.encode() in t for t in texts)
    assert not re.search(KEY, out)
