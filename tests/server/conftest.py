"""Fixtures for the server extension: pytest-jupyter's jp_* fixtures with sela_jupyter enabled.

Every reply a test gets through ``jp_fetch`` under ``/sela/api`` is checked against
``openapi.yaml``, and every SELA event the server emits against ``events/run.yaml`` (see
``api_schema.py``): a mismatch fails the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import api_schema
import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403 (jp_fetch, jp_serverapp, jp_ws_fetch, ...)

# pytest-jupyter's jp_fetch under a second fixture name, for the checking jp_fetch below to wrap.
from pytest_jupyter.jupyter_server import jp_fetch as jp_fetch_unchecked  # noqa: F401
from tornado.httpclient import HTTPClientError, HTTPResponse

from sela_jupyter.server.manager import EVENT_SCHEMA_ID


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    """Where the server keeps runs in a test."""
    return tmp_path / "runs"


@pytest.fixture
def jp_server_config(runs_dir: Path) -> dict[str, Any]:
    """A server with the extension on, runs in ``runs_dir``, small defaults."""
    return {
        "ServerApp": {"jpserver_extensions": {"sela_jupyter": True}},
        "SelaApp": {"runs_dir": str(runs_dir), "default_rollouts": 2, "max_concurrent_runs": 2},
    }


@pytest.fixture
async def jp_asyncio_loop():
    """pytest-asyncio's loop, so the server and the async test share one loop."""
    return asyncio.get_running_loop()


@pytest.fixture
def jp_fetch(jp_fetch_unchecked: Any, jp_base_url: str) -> Any:  # noqa: F811
    """pytest-jupyter's ``jp_fetch`` that also checks each SELA exchange against openapi.yaml:
    the reply (error replies too) against its status's schema, and the body of a request the
    server accepted against the operation's request schema."""

    async def fetch(*parts: str, **kwargs: Any) -> HTTPResponse:
        try:
            response = await jp_fetch_unchecked(*parts, **kwargs)
        except HTTPClientError as error:
            if error.response is not None:
                check_exchange(error.response, kwargs.get("body"), jp_base_url)
            raise
        check_exchange(response, kwargs.get("body"), jp_base_url)
        return response

    return fetch


def check_exchange(response: HTTPResponse, body: Any, base_url: str) -> None:
    """Check one request and its reply, when it went to the SELA API."""
    path = api_schema.api_path(response.effective_url, base_url)
    if path is None:
        return
    schema = api_schema.api_schema()
    operation = schema.operation(response.request.method, path)
    schema.check_reply(
        operation, response.code, response.headers.get("Content-Type"), response.body
    )
    if 200 <= response.code < 300:
        schema.check_request(operation, body)


@pytest.fixture(autouse=True)
def sela_event_mismatches(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """In a test with a server, check every SELA event it emits against events/run.yaml.

    The run manager logs and drops an event the event bus refuses, so mismatches are collected
    here (the list this fixture gives) and fail the test when it ends."""
    mismatches: list[str] = []
    if "jp_serverapp" not in request.fixturenames:
        yield mismatches
        return
    logger = request.getfixturevalue("jp_serverapp").event_logger
    emit = logger.emit

    def checked_emit(*, schema_id: str, data: dict[str, Any], **kwargs: Any) -> Any:
        if schema_id == EVENT_SCHEMA_ID:
            try:
                api_schema.api_schema().check_event(data)
            except api_schema.SchemaMismatch as mismatch:
                mismatches.append(str(mismatch))
        return emit(schema_id=schema_id, data=data, **kwargs)

    logger.emit = checked_emit
    try:
        yield mismatches
    finally:
        del logger.emit
    if mismatches:
        pytest.fail("\n".join(mismatches), pytrace=False)
