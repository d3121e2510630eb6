"""The OpenAPI description says what every route answers and what its ids may be.

Read from the real app's `app.openapi()` (no server started): each JSON operation's success
answer (200 or 201) has a typed schema, a model with named fields, never `{}` or a bare
`object`; each operation that answers something else (a stream, a text format) names its
media types and is listed below with the reason; every id in a path is bounded as
web/ids.py's `PathId` (1 to 2**31 - 1), every other integer in a path bounded too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from casescope.config import Settings
from casescope.web.app import create_app
from casescope.web.ids import MAX_ID

Spec = dict[str, Any]

JSON = "application/json"
#: Operations that answer something other than JSON: their media types, and why.
NOT_JSON: dict[tuple[str, str], tuple[set[str], str]] = {
    ("get", "/api/cases/{case_id}/export"): (
        {"text/csv", "application/x-ndjson"},
        "every matching event, streamed as CSV or JSON lines",
    ),
    ("get", "/api/cases/{case_id}/operations/{operation_id}/events"): (
        {"text/event-stream"},
        "Server-Sent Events: the operation's progress, live",
    ),
    ("get", "/api/cases/{case_id}/report"): (
        {"text/markdown", "text/html", "text/csv"},
        "the case story as a report: a Markdown, HTML or CSV download",
    ),
    ("get", "/metrics"): ({"text/plain"}, "the Prometheus text format"),
}
SCALARS = {"string", "integer", "number", "boolean"}


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> Spec:
    home = tmp_path_factory.mktemp("openapihome")
    settings = Settings(home=Path(home), secret_key=secrets.token_urlsafe(48))
    return create_app(settings).openapi()


def operations(spec: Spec) -> Iterator[tuple[str, str, Spec]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


def success(operation: Spec) -> Spec | None:
    responses = operation.get("responses", {})
    return responses.get("200") or responses.get("201")


def untyped(schema: Spec, spec: Spec) -> str | None:
    """Why `schema` does not say what comes back (None: it does)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = spec["components"]["schemas"][name]
        if target.get("type") == "object" and not target.get("properties"):
            return f"model {name} has no fields"
        return None
    if "anyOf" in schema or "oneOf" in schema:
        options = schema.get("anyOf") or schema.get("oneOf")
        reasons = [r for r in (untyped(s, spec) for s in options) if r]
        return reasons[0] if reasons else None
    kind = schema.get("type")
    if kind == "array":
        inner = untyped(schema.get("items", {}), spec)
        return f"a list of {inner}" if inner else None
    if kind in SCALARS or kind == "null":
        return None
    if kind == "object" and schema.get("properties"):
        return None
    return "an empty schema" if not schema else "an object without fields"


def test_every_json_answer_has_a_typed_schema(spec: Spec) -> None:
    missing = []
    for method, path, operation in operations(spec):
        if (method, path) in NOT_JSON:
            continue
        answer = success(operation)
        if answer is None:
            missing.append(f"{method.upper()} {path}: no 200/201 response")
            continue
        content = answer.get("content", {})
        if JSON not in content:
            missing.append(f"{method.upper()} {path}: answers {sorted(content)}, not JSON")
            continue
        reason = untyped(content[JSON].get("schema", {}), spec)
        if reason:
            missing.append(f"{method.upper()} {path}: {reason}")
    assert not missing, "\n".join(missing)


def test_other_answers_name_their_media_types(spec: Spec) -> None:
    paths = spec["paths"]
    for (method, path), (media, why) in NOT_JSON.items():
        assert method in paths.get(path, {}), f"stale exemption: {method} {path} ({why})"
        answer = success(paths[path][method])
        assert answer is not None, path
        assert set(answer.get("content", {})) == media, (path, why)


def test_path_ids_are_bounded(spec: Spec) -> None:
    unbounded = []
    for method, path, operation in operations(spec):
        for param in operation.get("parameters", []):
            if param["in"] != "path":
                continue
            schema, name = param["schema"], param["name"]
            if name.endswith("_id"):
                bounds = (schema.get("type"), schema.get("minimum"), schema.get("maximum"))
                if bounds != ("integer", 1, MAX_ID):
                    unbounded.append(f"{method.upper()} {path}: {name} {schema}")
            elif schema.get("type") == "integer" and (
                "minimum" not in schema or "maximum" not in schema
            ):
                unbounded.append(f"{method.upper()} {path}: {name} {schema}")
    assert not unbounded, "\n".join(unbounded)


def test_the_check_sees_untyped_schemas(spec: Spec) -> None:
    """The checks above can fail: a bare dict, `{}` and a list of dicts are untyped."""
    assert untyped({}, spec) == "an empty schema"
    assert untyped({"type": "object", "additionalProperties": True}, spec)
    assert untyped({"type": "array", "items": {"type": "object"}}, spec)
    assert untyped({"type": "array", "items": {"type": "string"}}, spec) is None
