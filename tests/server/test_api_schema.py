"""The schema checks themselves: they catch bad replies and events, and the schemas agree with the
server's own lists of statuses, stages, options and summary keys."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import api_schema
import pytest
import yaml
from api_schema import ApiSchema, SchemaMismatch

from sela_jupyter.engine.insights import SOURCES, STAGES
from sela_jupyter.engine.options import REQUEST_OPTIONS
from sela_jupyter.engine.statuses import NodeStatus, RunStatus
from sela_jupyter.engine.task import METRICS, TASK_TYPES
from sela_jupyter.server.manager import EVENT_SCHEMA_ID, SUMMARY_KEYS

RUN_ID = "20260101-120000-demo-abcd"


def node(node_id: str = "n0", **changes: Any) -> dict[str, Any]:
    """A root node as the server sends it."""
    data = {
        "id": node_id,
        "parent": None,
        "depth": 0,
        "stage": "root",
        "insight": None,
        "children": [],
        "visits": 0,
        "value": 0.0,
        "status": "queued",
        "dev_score": None,
        "test_score": None,
        "error": None,
        "timings": {},
        "expanded": False,
        "pruned": False,
        "pinned": False,
        "exhausted": False,
    }
    return {**data, **changes}


def summary(**changes: Any) -> dict[str, Any]:
    """A run summary as the server sends it."""
    options = {
        "rollouts": 2,
        "time_budget": None,
        "parallel": 1,
        "seed": 0,
        "max_depth": 2,
        "cell_timeout": 120.0,
        "simulation_timeout": 300.0,
        "insights": "builtin",
        "reuse_state": True,
        "reuse_fits": True,
        "cv_folds": 3,
        "cv_top": 8,
        "llm": "",
        "llm_base_url": "",
        "llm_key_env": "OPENAI_API_KEY",
        "llm_timeout": 120.0,
        "llm_retries": 3,
        "token_budget": None,
        "fallback": "",
    }
    task = {
        "target": "price",
        "task_type": "regression",
        "metric": "rmse",
        "seed": 0,
        "positive_label": None,
        "classes": [],
        "score_scale": 1.0,
        "direction": "minimize",
    }
    data = {
        "id": RUN_ID,
        "name": "",
        "created": 1.0,
        "status": "created",
        "source": "rest",
        "description": "",
        "options": options,
        "task": task,
        "simulations": 0,
        "best": None,
        "timings": {"elapsed": 0.0},
        "tokens": {"prompt": 0, "completion": 0, "cost": 0.0, "calls": 0},
        "warnings": [],
        "error": None,
        "active": False,
    }
    return {**data, **changes}


def run_record(**changes: Any) -> dict[str, Any]:
    """A whole run record with a one-node tree, as ``GET /runs/{run_id}`` sends it."""
    data = {
        **summary(),
        "pid": 1,
        "profile": {},
        "data": {
            "frame": "data/frame.parquet",
            "has_test_frame": False,
            "has_test_labels": True,
            "rows": {"train": 10, "dev": 5, "test": 5},
        },
        "llm": None,
        "tree": {"max_depth": 2, "seed": 0, "counter": 1, "root": "n0", "nodes": [node()]},
    }
    return {**data, **changes}


def reply_errors(schema: ApiSchema, method: str, path: str, status: int, body: Any) -> str:
    """The mismatch message for a JSON reply (fails when there is none)."""
    operation = schema.operation(method, path)
    with pytest.raises(SchemaMismatch) as mismatch:
        schema.check_reply(operation, status, "application/json", json.dumps(body).encode())
    return str(mismatch.value)


@pytest.fixture(scope="module")
def schema() -> ApiSchema:
    return api_schema.api_schema()


def test_well_formed_replies_pass(schema: ApiSchema) -> None:
    get_run = schema.operation("GET", f"/runs/{RUN_ID}")
    schema.check_reply(get_run, 200, "application/json", json.dumps(run_record()).encode())
    listing = schema.operation("GET", "/runs")
    body = {"runs": [summary(), summary(status="running", active=True, running=1)]}
    schema.check_reply(listing, 200, "application/json; charset=UTF-8", json.dumps(body).encode())
    error = {"message": "run x not found", "reason": None}
    schema.check_reply(get_run, 404, "application/json", json.dumps(error).encode())
    delete = schema.operation("DELETE", f"/runs/{RUN_ID}")
    schema.check_reply(delete, 204, None, b"")


def test_a_bad_reply_fails_naming_route_status_and_json_path(schema: ApiSchema) -> None:
    record = run_record()
    record["tree"]["nodes"][0]["status"] = "paused"
    message = reply_errors(schema, "GET", f"/runs/{RUN_ID}", 200, record)
    assert message.startswith("GET /runs/{run_id} -> 200 (application/json) does not match")
    assert "$.tree.nodes[0].status: 'paused' is not one of" in message


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda r: r.pop("status"), "'status' is a required property"),
        (lambda r: r.update(simulations="2"), "$.simulations: '2' is not of type 'integer'"),
        (lambda r: r.update(secret=1), "Unevaluated properties are not allowed ('secret'"),
        (lambda r: r["tree"]["nodes"][0].pop("visits"), "$.tree.nodes[0]: 'visits' is a required"),
        (lambda r: r["tree"]["nodes"][0].update(colour="red"), "$.tree.nodes[0]: Additional"),
        (lambda r: r["task"].update(direction="up"), "$.task.direction: 'up' is not one of"),
        (lambda r: r.update(best={"node": "n1"}), "$.best: 'dev_score' is a required property"),
    ],
)
def test_missing_mistyped_and_unknown_fields_fail(
    schema: ApiSchema, change: Any, where: str
) -> None:
    record = copy.deepcopy(run_record())
    change(record)
    assert where in reply_errors(schema, "GET", f"/runs/{RUN_ID}", 200, record)


def test_undocumented_routes_statuses_and_content_types_fail(schema: ApiSchema) -> None:
    with pytest.raises(SchemaMismatch, match=r"PATCH /runs/x: no such operation"):
        schema.operation("PATCH", "/runs/x")
    with pytest.raises(SchemaMismatch, match=r"no such operation"):
        schema.operation("GET", "/runs/x/nodes")
    get_run = schema.operation("GET", "/runs/x")
    with pytest.raises(SchemaMismatch, match=r"GET /runs/\{run_id\} -> 500: status 500 is not"):
        schema.check_reply(get_run, 500, "application/json", b"{}")
    with pytest.raises(SchemaMismatch, match=r"content type 'text/html' is not one of"):
        schema.check_reply(get_run, 200, "text/html", b"<html/>")


def test_a_bad_request_body_fails(schema: ApiSchema) -> None:
    start = schema.operation("POST", "/runs")
    schema.check_request(start, json.dumps({"target": "y", "data": {"file": "f.parquet"}}))
    with pytest.raises(
        SchemaMismatch,
        match=r"(?s)POST /runs request body .*\$.data: {} should be non-empty.*\$.options: Add",
    ):
        schema.check_request(start, json.dumps({"target": "y", "data": {}, "options": {"x": 1}}))


def test_a_bad_event_fails(schema: ApiSchema) -> None:
    schema.check_event({"type": "node_added", "run_id": RUN_ID, "time": 1.0, "node": node()})
    schema.check_event({"type": "run_started", "run_id": RUN_ID, "time": 1.0, "run": summary()})
    with pytest.raises(SchemaMismatch, match=r"\$.node.status: 'paused' is not one of"):
        schema.check_event({"type": "node_added", "run_id": RUN_ID, "node": node(status="paused")})
    with pytest.raises(SchemaMismatch, match=r"\$.type: 'node_moved' is not one of"):
        schema.check_event({"type": "node_moved", "run_id": RUN_ID})
    with pytest.raises(SchemaMismatch, match=r"\$.run: unexpected property 'pid'"):
        schema.check_event({"type": "run_started", "run_id": RUN_ID, "run": summary(pid=1)})


def test_the_event_bus_refuses_an_event_the_schema_refuses() -> None:
    # jupyter_events validates each event against run.yaml itself, $refs included.
    from jsonschema import ValidationError
    from jupyter_events import EventLogger

    from sela_jupyter.server.manager import EVENT_SCHEMA_PATH

    bus = EventLogger()
    bus.register_event_schema(EVENT_SCHEMA_PATH)
    bus.schemas.validate_event(
        EVENT_SCHEMA_ID, {"type": "node_added", "run_id": "r", "node": node()}
    )
    with pytest.raises(ValidationError):
        bus.schemas.validate_event(
            EVENT_SCHEMA_ID, {"type": "node_added", "run_id": "r", "node": node(depth="0")}
        )


async def test_jp_fetch_checks_replies(
    jp_fetch: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await jp_fetch("sela", "api", "info")  # the real schema: passes
    # A schema whose Info needs one more field: the same reply now fails the test.
    (tmp_path / "events").mkdir()
    shutil.copy(api_schema.EVENTS_PATH, tmp_path / "events" / "run.yaml")
    spec = yaml.safe_load(api_schema.OPENAPI_PATH.read_text())
    spec["components"]["schemas"]["Info"]["required"].append("colour")
    (tmp_path / "openapi.yaml").write_text(yaml.safe_dump(spec))
    stricter = ApiSchema(tmp_path / "openapi.yaml", tmp_path / "events" / "run.yaml")
    monkeypatch.setattr(api_schema, "api_schema", lambda: stricter)
    with pytest.raises(
        SchemaMismatch,
        match=r"(?s)GET /info -> 200 \(application/json\) .*\$: 'colour' is a required",
    ):
        await jp_fetch("sela", "api", "info")


def test_events_the_server_emits_are_checked(
    jp_serverapp: Any, sela_event_mismatches: list[str]
) -> None:
    bad = {"type": "node_added", "run_id": RUN_ID, "node": node(status="paused")}
    jp_serverapp.event_logger.emit(schema_id=EVENT_SCHEMA_ID, data=bad)
    assert len(sela_event_mismatches) == 1
    assert "$.node.status: 'paused' is not one of" in sela_event_mismatches[0]
    sela_event_mismatches.clear()  # else this test fails as it ends, as it should


# -- the schemas list what the server's code does ------------------------------------------------
def definitions(schema: ApiSchema) -> dict[str, Any]:
    return schema.events["definitions"]


def test_statuses_stages_and_sources_match_the_engine(schema: ApiSchema) -> None:
    defs = definitions(schema)
    assert defs["RunStatus"]["enum"] == [s.value for s in RunStatus]
    assert defs["NodeStatus"]["enum"] == [s.value for s in NodeStatus]
    assert defs["Stage"]["enum"] == list(STAGES)
    assert defs["Node"]["properties"]["stage"]["enum"] == ["root", *STAGES]
    assert defs["Insight"]["properties"]["source"]["enum"] == list(SOURCES)
    assert defs["Task"]["properties"]["task_type"]["enum"] == list(TASK_TYPES)
    assert set(defs["Task"]["properties"]["metric"]["enum"]) == set(METRICS)


def test_summaries_and_start_requests_list_the_servers_keys(schema: ApiSchema) -> None:
    defs = definitions(schema)
    assert set(defs["RunSummary"]["propertyNames"]["enum"]) == {*SUMMARY_KEYS, "active"}
    assert set(defs["RunFields"]["properties"]) == {*SUMMARY_KEYS, "active"}
    start = schema.openapi["components"]["schemas"]["StartRequest"]
    assert set(start["properties"]["options"]["properties"]) == set(REQUEST_OPTIONS)
    assert start["properties"]["task"]["enum"] == list(TASK_TYPES)
    assert set(start["properties"]["metric"]["enum"]) == set(METRICS)
