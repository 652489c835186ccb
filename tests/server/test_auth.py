"""Every route refuses unauthenticated requests; ids cannot leave the runs directory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tornado.httpclient import HTTPClientError

from sela_jupyter.engine.new_run import create_run
from sela_jupyter.engine.options import SearchOptions
from sela_jupyter.engine.store import RunStore
from sela_jupyter.server.handlers import ROUTES, verbs


@pytest.fixture
def jp_server_config(runs_dir: Path) -> dict[str, Any]:
    """A server that requires auth for everything."""
    return {
        "ServerApp": {
            "jpserver_extensions": {"sela_jupyter": True},
            "allow_unauthenticated_access": False,
        },
        "SelaApp": {"runs_dir": str(runs_dir)},
    }


@pytest.fixture
def stored_run(runs_dir: Path, housing: pd.DataFrame) -> str:
    """A run on disk (never searched) that a request without auth must not touch."""
    return create_run(housing, "price", store=RunStore(runs_dir), options=SearchOptions(rollouts=1))


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


def concrete(pattern: str, run_id: str) -> str:
    return re.sub(r"\(\?P<node_id>[^)]*\)", "n0", re.sub(r"\(\?P<run_id>[^)]*\)", run_id, pattern))


async def test_every_route_and_verb_refuses_requests_without_a_token(
    jp_fetch: Any, stored_run: str, runs_dir: Path
) -> None:
    before = snapshot(runs_dir)
    walked = 0
    for pattern, handler in ROUTES:
        path = concrete(pattern, stored_run)
        for verb in verbs(handler):
            body = json.dumps({"target": "price", "text": "x"}) if verb in ("POST", "PUT") else None
            with pytest.raises(HTTPClientError) as refused:
                await jp_fetch(
                    "sela/api" + path,
                    method=verb,
                    body=body,
                    headers={"Authorization": ""},
                    follow_redirects=False,
                )
            assert refused.value.code in (401, 403), f"{verb} {path}: {refused.value.code}"
            walked += 1
    assert walked >= 13
    assert snapshot(runs_dir) == before
    # ... and with the token the same routes answer (so the 403s above are about auth).
    response = await jp_fetch("sela", "api", "runs", stored_run)
    assert json.loads(response.body)["id"] == stored_run


def test_every_handler_verb_is_decorated_with_authenticated(jp_serverapp: Any) -> None:
    # jupyter_server's own check: with allow_unauthenticated_access=False the core app refuses to
    # start on an undecorated core handler, but only warns about extension handlers.
    missing = [
        line
        for pattern, handler in ROUTES
        for line in jp_serverapp.web_app._check_handler_auth(pattern, handler)
    ]
    assert missing == []


TRAVERSALS = [
    "runs/..%2F..%2Fetc",
    "runs/%2Fetc%2Fpasswd",
    "runs/..",
    "runs/%2E%2E",
    "runs/{run}%2F..%2F..",
    "runs/{run}/nodes/..%2F..%2F..%2Frun.json",
    "runs/{run}/nodes/%2Ftmp",
    "runs/{run}/nodes/..",
    "runs/{run}/export?node=..%2F..%2Fx",
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
async def test_traversal_attempts_get_400_or_404_and_touch_nothing(
    http_server_client: Any,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    stored_run: str,
    runs_dir: Path,
    tmp_path: Path,
    path: str,
    method: str,
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    before = snapshot(tmp_path)
    url = jp_base_url + "sela/api/" + path.format(run=stored_run)
    with pytest.raises(HTTPClientError) as refused:
        await http_server_client.fetch(
            url,
            method=method,
            headers=jp_auth_header,
            body="{}" if method == "POST" else None,
            raise_error=True,
        )
    assert refused.value.code in (400, 404, 405), refused.value.code
    assert snapshot(tmp_path) == before
    assert outside.read_text() == "keep me"


def test_openapi_documents_every_route() -> None:
    import yaml

    spec = yaml.safe_load(
        (Path(__file__).parents[2] / "sela_jupyter/server/openapi.yaml").read_text()
    )
    for pattern, handler in ROUTES:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
        assert path in spec["paths"], path
        assert {v.lower() for v in verbs(handler)} <= set(spec["paths"][path]), path
