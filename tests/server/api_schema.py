"""Checks REST exchanges and events against ``openapi.yaml`` and ``events/run.yaml``.

:class:`ApiSchema` finds the operation a request hit (path template and method), then validates
the reply body against the schema of its status code and content type, and a request body the
server accepted against the operation's ``requestBody``. A mismatch raises
:class:`SchemaMismatch` naming the route, the status and the JSON path of each error.
``tests/server/conftest.py`` wires this into ``jp_fetch``, so every test checks every reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012

SERVER_DIR = Path(__file__).resolve().parents[2] / "sela_jupyter" / "server"
OPENAPI_PATH = SERVER_DIR / "openapi.yaml"
EVENTS_PATH = SERVER_DIR / "events" / "run.yaml"
#: Where the REST API lives under the server's base URL.
API_PREFIX = "sela/api"
#: Errors listed in one mismatch message.
MAX_ERRORS = 12

_METHODS = ("get", "put", "post", "delete", "patch")


class SchemaMismatch(AssertionError):
    """A request, reply or event that its schema does not describe."""


@dataclass(frozen=True)
class Operation:
    """One documented route and verb."""

    method: str
    template: str
    spec: dict[str, Any]
    #: JSON pointer of ``spec`` in the OpenAPI document.
    pointer: str

    @property
    def name(self) -> str:
        """``GET /runs/{run_id}``."""
        return f"{self.method.upper()} {self.template}"


class ApiSchema:
    """The OpenAPI document and the event schema, ready to validate instances."""

    def __init__(self, openapi_path: Path = OPENAPI_PATH, events_path: Path = EVENTS_PATH) -> None:
        self.openapi = yaml.safe_load(openapi_path.read_text())
        self.events = yaml.safe_load(events_path.read_text())
        self.uri = openapi_path.as_uri()
        events = DRAFT7.create_resource(self.events)
        # openapi.yaml refers to run.yaml by its file name, run.yaml to itself by its $id.
        self.registry: Registry[Any] = Registry().with_resources(
            [
                (self.uri, Resource.from_contents(self.openapi, DRAFT202012)),
                (events_path.as_uri(), events),
                (self.events["$id"], events),
            ]
        )
        self.operations = [
            Operation(method, template, item[method], _pointer("paths", template, method))
            for template, item in self.openapi["paths"].items()
            for method in _METHODS
            if method in item
        ]

    # -- REST ---------------------------------------------------------------------------------
    def operation(self, method: str, path: str) -> Operation:
        """The operation that ``method path`` (under ``/sela/api``) hits."""
        for operation in self.operations:
            if operation.method == method.lower() and _matches(operation.template, path):
                return operation
        raise SchemaMismatch(f"{method.upper()} {path}: no such operation in openapi.yaml")

    def check_reply(
        self, operation: Operation, status: int, content_type: str | None, body: bytes
    ) -> None:
        """Validate a reply against the schema of its status code and content type."""
        where = f"{operation.name} -> {status}"
        responses = operation.spec["responses"]
        key = str(status) if str(status) in responses else "default"
        if key not in responses:
            raise SchemaMismatch(f"{where}: status {status} is not documented in openapi.yaml")
        response = self._deref(responses[key])
        content = response.get("content")
        if not content:
            if body:
                raise SchemaMismatch(f"{where}: documented without a body, got {body[:200]!r}")
            return
        media = (content_type or "").split(";")[0].strip()
        if media not in content:
            raise SchemaMismatch(f"{where}: content type {media!r} is not one of {list(content)}")
        ref = responses[key].get("$ref")  # a shared response's schema lives in components
        at = ref[1:] if ref else operation.pointer + _pointer("responses", key)
        where += f" ({media})"
        self.validate(_decode(where, media, body), at + _pointer("content", media, "schema"), where)

    def check_request(self, operation: Operation, body: bytes | str | None) -> None:
        """Validate a request body against the operation's ``requestBody``, when it has one."""
        request = operation.spec.get("requestBody")
        if request is None or body is None:
            return
        where = f"{operation.name} request body"
        at = operation.pointer + _pointer("requestBody", "content", "application/json", "schema")
        raw = body.encode() if isinstance(body, str) else body
        self.validate(_decode(where, "application/json", raw), at, where)

    # -- events -------------------------------------------------------------------------------
    def check_event(self, event: dict[str, Any]) -> None:
        """Validate an event's data against ``events/run.yaml``, as jupyter_events does."""
        where = f"event {event.get('type')!r}"
        _raise_errors(Draft7Validator(self.events, registry=self.registry), event, where)

    # -- any instance -------------------------------------------------------------------------
    def validate(self, instance: Any, pointer: str, where: str) -> None:
        """Validate ``instance`` against the schema at ``pointer`` in the OpenAPI document."""
        _raise_errors(self._validator(pointer), instance, where)

    def _validator(self, pointer: str) -> Draft202012Validator:
        return Draft202012Validator({"$ref": f"{self.uri}#{pointer}"}, registry=self.registry)

    def _deref(self, item: dict[str, Any]) -> dict[str, Any]:
        """``item``, or what its local ``$ref`` points at."""
        if "$ref" not in item:
            return item
        node: Any = self.openapi
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node


@cache
def api_schema() -> ApiSchema:
    """The repository's API schema, loaded once per test session."""
    return ApiSchema()


def api_path(url: str, base_url: str) -> str | None:
    """The path of ``url`` under ``<base_url>sela/api`` (``/runs/x``), or None when outside."""
    path = urlsplit(url).path
    prefix = base_url.rstrip("/") + "/" + API_PREFIX
    if path != prefix and not path.startswith(prefix + "/"):
        return None
    return path[len(prefix) :] or "/"


def describe(error: ValidationError) -> str:
    """``$.tree.nodes[2].status: 'paused' is not one of [...]``, shortened."""
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    if "propertyNames" in error.schema_path:
        message = f"unexpected property {error.instance!r}"
    return f"{error.json_path}: {message}"


def _raise_errors(validator: Any, instance: Any, where: str) -> None:
    errors = [leaf for e in validator.iter_errors(instance) for leaf in _leaves(e)]
    if any(e.validator != "unevaluatedProperties" for e in errors):
        # A failing allOf branch evaluates none of its properties: they would all be listed.
        errors = [e for e in errors if e.validator != "unevaluatedProperties"]
    if errors:
        errors.sort(key=lambda e: [str(p) for p in e.absolute_path])
        lines = [describe(e) for e in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            lines.append(f"... and {len(errors) - MAX_ERRORS} more")
        raise SchemaMismatch(f"{where} does not match its schema:\n  " + "\n  ".join(lines))


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The errors that say what is wrong: for a ``oneOf`` / ``anyOf`` failure, those of the one
    branch whose type the instance has (``Node`` rather than ``null``), when there is one."""
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    tried = [
        subs
        for subs in branches.values()
        if not any(e.validator == "type" and not e.relative_path for e in subs)
    ]
    if len(tried) != 1:
        yield error
        return
    for sub in tried[0]:
        yield from _leaves(sub)


def _decode(where: str, media: str, body: bytes) -> Any:
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SchemaMismatch(f"{where}: not JSON ({exc}): {body[:200]!r}") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaMismatch(f"{where}: not UTF-8 text ({exc})") from None


def _matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)
