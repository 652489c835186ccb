"""The LLM client, proposer and coder pieces against a real local chat-completions server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from llm_server import INSIGHTS, ChatServer, Reply

from sela_jupyter.engine.errors import SelaInputError
from sela_jupyter.engine.insights import Insight, InsightPool
from sela_jupyter.engine.llm import (
    LLMBudgetExhausted,
    LLMClient,
    LLMConfig,
    LLMError,
    llm_options,
    resolve_llm,
)
from sela_jupyter.engine.llm_coder import extract_code, static_violations
from sela_jupyter.engine.llm_insights import LLMProposer, ParseError, parse_json_reply
from sela_jupyter.engine.task import make_task, profile_frame

KEY = "sk-test-KEY-0123456789abcdef"


@pytest.fixture
def server() -> Iterator[ChatServer]:
    with ChatServer() as srv:
        yield srv


def client_for(server: ChatServer, **config: object) -> LLMClient:
    settings = {"model": "gpt-4o-mini", "base_url": server.url, "backoff": 0.01, **config}
    return LLMClient(LLMConfig(**settings))  # type: ignore[arg-type]


def chat(client: LLMClient, text: str = "hi") -> str:
    async def go() -> str:
        try:
            return (await client.chat([{"role": "user", "content": text}])).text
        finally:
            await client.close()

    return asyncio.run(go())


# -- JSON from replies -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply",
    [
        '{"eda": ["a"]}',
        'Sure! Here you go:\n```json\n{"eda": ["a"]}\n```\nHope that helps.',
        'The insights are {"eda": ["a",],} as asked.',
        '```json\n{"eda": ["a", "b is cut',
    ],
)
def test_json_is_read_from_fences_prose_trailing_commas_and_truncation(reply: str) -> None:
    assert parse_json_reply(reply)["eda"][0] == "a"


def test_unreadable_reply_raises_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_json_reply("I cannot help with that.")


# -- the client ------------------------------------------------------------------------------------
def test_429_then_success_is_retried_and_counted(server: ChatServer) -> None:
    server.script = [Reply(status=429, headers={"retry-after": "0"}), Reply(status=503), "done"]
    client = client_for(server)
    assert chat(client) == "done"
    assert len(server.requests) == 3
    assert client.usage.calls == 1 and client.usage.prompt > 0 and client.usage.completion > 0
    assert client.usage.cost == pytest.approx(
        (client.usage.prompt * 0.15 + client.usage.completion * 0.6) / 1e6
    )


def test_a_request_timeout_is_a_clear_error(server: ChatServer) -> None:
    server.script = [Reply(text="late", delay=3)]
    client = client_for(server, timeout=0.5, max_retries=0)
    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        chat(client)
    assert time.monotonic() - started < 2.5


def test_server_down_is_a_clear_error_naming_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    down = ChatServer()
    url = down.url
    down.stop()
    client = LLMClient(LLMConfig(model="m", base_url=url, max_retries=1, backoff=0.01))
    with pytest.raises(LLMError, match="is the endpoint up") as error:
        chat(client)
    assert url in str(error.value) and KEY not in str(error.value)


def test_client_errors_are_not_retried(server: ChatServer) -> None:
    server.script = [Reply(status=401)]
    with pytest.raises(LLMError, match="check the key in \\$OPENAI_API_KEY"):
        chat(client_for(server))
    assert len(server.requests) == 1


def test_no_calls_once_the_token_budget_is_spent(server: ChatServer) -> None:
    client = client_for(server, token_budget=10)
    chat(client, "x" * 200)  # ~50 prompt tokens: over budget after this call
    with pytest.raises(LLMBudgetExhausted):
        chat(client)
    assert len(server.requests) == 1


def test_the_key_goes_in_the_header_from_its_variable(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    chat(client_for(server, api_key_env="MY_LLM_KEY"))
    assert server.headers[-1]["authorization"] == f"Bearer {KEY}"
    assert KEY not in json.dumps(LLMConfig(api_key_env="MY_LLM_KEY").describe())


def test_config_comes_from_environment_and_explicit_models_need_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SELA_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert resolve_llm() is None and llm_options() == {"insights": "builtin"}
    monkeypatch.setenv("SELA_MODEL", "deepseek-chat")
    assert resolve_llm() is None  # a model but no key: offline, quietly
    with pytest.raises(SelaInputError, match="no API key in the environment variable"):
        resolve_llm("gpt-4o")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.deepseek.com")
    options = llm_options(fallback="builtin", token_budget="50_000")
    assert options["llm"] == "deepseek-chat" and options["insights"] == "llm"
    assert options["llm_base_url"] == "https://api.deepseek.com"
    assert options["token_budget"] == 50000 and KEY not in json.dumps(options)
    assert llm_options("off") == {"insights": "builtin"}


# -- the proposer ----------------------------------------------------------------------------------
@pytest.fixture
def profile_task(small_regression: pd.DataFrame) -> tuple[object, object]:
    task = make_task(small_regression, "y")
    return profile_frame(small_regression, task), task


def propose(
    server: ChatServer, profile_task: tuple[object, object], **kwargs: object
) -> InsightPool:
    profile, task = profile_task
    client = client_for(server)

    async def go() -> InsightPool:
        try:
            return await LLMProposer(client).propose(profile, task, **kwargs)  # type: ignore[arg-type]
        finally:
            await client.close()

    return asyncio.run(go())


def test_proposer_sends_description_and_profile_never_the_data(
    server: ChatServer, profile_task: tuple[object, object], small_regression: pd.DataFrame
) -> None:
    pool = propose(server, profile_task, description="Forecast y for the lab")
    assert all(len(pool.for_stage(s)) >= 5 for s in INSIGHTS)
    assert {i.source for i in pool} == {"llm"}
    prompt = server.user_prompts()[0]
    assert "Forecast y for the lab" in prompt and "120 rows" in prompt and "colour" in prompt
    all_values = small_regression["x1"].round(6).astype(str)
    assert sum(v in prompt for v in all_values) < 10  # a few rows, not the frame


def test_malformed_json_gets_one_retry_with_the_parse_error(
    server: ChatServer, profile_task: tuple[object, object]
) -> None:
    server.script = ["Here are my ideas: eda - look at stuff."]
    pool = propose(server, profile_task, stages=("eda",))
    assert len(pool.for_stage("eda")) == 5
    assert len(server.requests) == 2
    assert "could not be used" in server.user_prompts()[1]


def test_two_unreadable_replies_are_an_llm_error(
    server: ChatServer, profile_task: tuple[object, object]
) -> None:
    server.script = ["no json", "still no json"]
    with pytest.raises(LLMError, match="could not be read twice"):
        propose(server, profile_task, stages=("eda",))


def test_near_duplicates_are_dropped_against_the_pool_and_each_other(
    server: ChatServer, profile_task: tuple[object, object]
) -> None:
    server.script = [
        json.dumps(
            {
                "model": [
                    "Random forest of 300 fully grown trees, each split from a random subset "
                    "of features.",
                    "Use a gradient boosting machine with 200 trees",
                    "Use a gradient boosting machine with 200 trees.",
                    "A linear support vector machine",
                ]
            }
        )
    ]
    pool = InsightPool(
        [
            Insight(
                "model.random_forest",
                "model",
                "Random forest of 300 fully grown trees, each split from a random subset of "
                "features",
            )
        ]
    )
    propose(server, profile_task, stages=("model",), pool=pool)
    texts = [i.text for i in pool.for_stage("model") if i.source == "llm"]
    assert texts == [
        "Use a gradient boosting machine with 200 trees",
        "A linear support vector machine",
    ]


# -- coder pieces ----------------------------------------------------------------------------------
def test_code_is_taken_from_fences_even_when_cut_off() -> None:
    assert extract_code("Sure:\n```python\nx = 1\n```\nDone") == "x = 1\n"
    assert extract_code("```python\nx = 1\ny = 2") == "x = 1\ny = 2\n"
    assert extract_code("x = 1") == "x = 1\n"


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("model.fit(dev.drop(columns=[TARGET]), dev[TARGET])", "fits on dev"),
        ("y = pd.read_parquet('data/test_labels.parquet')", "test labels"),
        ("train = pd.read_csv('x.csv')", "reloads train"),
        ("def f(:\n  pass", "SyntaxError"),
    ],
)
def test_static_contract_violations_are_found(code: str, problem: str) -> None:
    assert any(problem in p for p in static_violations("model", code))
