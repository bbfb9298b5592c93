"""GET /api/v1/openapi.json: a valid OpenAPI 3.1 document, in step with the route table and
with what the server really answers."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from tornado.routing import PathMatches, Rule

from chat_server import ChatApplication
from handlers.api.base import ApiNotFound
from handlers.api.openapi import OPENAPI
from handlers.httpserver import ChatHTTPServer
from tests.apiclient import Answer, Api

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


@pytest.fixture
def api(http_server: ChatHTTPServer, http_port: int) -> Api:
    return Api(http_port)


def api_rules(app: ChatApplication) -> list[tuple[re.Pattern[str], set[str]]]:
    """Each /api/v1 route of the app: its path pattern and its methods (lower case)."""
    found = []
    for rule in app.wildcard_router.rules:
        assert isinstance(rule, Rule)
        matcher = rule.matcher
        if not isinstance(matcher, PathMatches) or rule.target is ApiNotFound:
            continue
        if matcher.regex.pattern.startswith(("/api/", "/hooks/")):  # webhooks' too
            methods = {method.lower() for method in rule.target.SUPPORTED_METHODS}
            found.append((matcher.regex, methods))
    return found


def sample_path(path: str, operations: dict[str, Any]) -> str:
    """A documented path with each {parameter} replaced by its documented example."""
    for operation in operations.values():
        for parameter in operation.get("parameters", []):
            path = path.replace(f"{{{parameter['name']}}}", parameter["example"])
    return path


def test_the_document_is_valid_openapi() -> None:
    """The document passes openapi-spec-validator (OpenAPI 3.1)."""
    validate_spec(OPENAPI)


def test_every_route_and_method_is_documented_and_nothing_else(app: ChatApplication) -> None:
    """Every /api/v1 route and method of the route table is in the document, and vice versa."""
    rules = api_rules(app)
    assert len(rules) >= 6
    documented = {sample_path(path, ops): set(ops) & set(METHODS)
                  for path, ops in OPENAPI["paths"].items()}
    for regex, methods in rules:
        matching = [path for path in documented if regex.fullmatch(path)]
        assert matching, f"route {regex.pattern} is not documented"
        assert methods == {m for path in matching for m in documented[path]}, regex.pattern
    for path, methods in documented.items():
        routes = [regex for regex, _ in rules if regex.fullmatch(path)]
        assert routes, f"documented {path} is no route"
        first = next(m for regex, m in rules if regex.fullmatch(path))  # Tornado's first match
        assert methods <= first, path


def response_schema(path: str, method: str, status: int) -> dict[str, Any] | None:
    """The documented schema of an answer (None: documented without a body); fails if absent."""
    responses = OPENAPI["paths"][path][method]["responses"]
    assert str(status) in responses, f"{method.upper()} {path} {status} is not documented"
    content = responses[str(status)].get("content")
    return None if content is None else content["application/json"]["schema"]


def check(answer: Answer, path: str, method: str) -> None:
    """The answer is documented for this route, and its body fits the documented schema."""
    schema = response_schema(path, method, answer.status)
    if schema is None:
        assert answer.body is None
        return
    registry: Registry[Any] = Registry().with_resource(
        "urn:api", Resource.from_contents(OPENAPI, default_specification=DRAFT202012))
    ref = schema["$ref"].replace("#", "urn:api#") if "$ref" in schema else None
    validator = Draft202012Validator({"$ref": ref} if ref else schema, registry=registry)
    validator.validate(answer.body)


@pytest.mark.settings(login_throttle_after=1, login_throttle_first=60, login_throttle_max=60)
@pytest.mark.gen_test(timeout=30)
async def test_real_answers_fit_the_documented_schemas(api: Api) -> None:
    """Success and error answers of every route validate against the documented schemas."""
    s, me, one = "/api/v1/sessions", "/api/v1/me", "/api/v1/sessions/{id}"
    check(await api.register("alice", email="a@example.org"), "/api/v1/accounts", "post")
    check(await api.register("ALICE"), "/api/v1/accounts", "post")  # 409
    check(await api.register("bob", "short"), "/api/v1/accounts", "post")  # 400
    check(await api.call("POST", "/api/v1/accounts", raw=b"{}", content_type="text/plain"),
          "/api/v1/accounts", "post")  # 415
    signed = await api.login("alice")
    check(signed, s, "post")
    token = signed.body["token"]
    check(await api.call("GET", s, token=token), s, "get")
    check(await api.call("GET", s), s, "get")  # 401
    check(await api.call("GET", me, token=token), me, "get")
    check(await api.call("DELETE", "/api/v1/sessions/AAAAAAAA", token=token), one, "delete")
    other = (await api.login("alice")).body["session"]["id"]
    check(await api.call("DELETE", f"/api/v1/sessions/{other}", token=token), one, "delete")
    check(await api.call("DELETE", "/api/v1/sessions/current", cookie=token,
                         Origin="https://evil.example"), "/api/v1/sessions/current", "delete")
    check(await api.call("DELETE", "/api/v1/sessions/current", token=token),
          "/api/v1/sessions/current", "delete")
    check(await api.login("alice", "wrong wrong wrong"), s, "post")  # 401
    throttled = await api.login("alice")
    assert throttled.status == 429
    check(throttled, s, "post")
    check(await api.call("GET", "/api/v1/openapi.json"), "/api/v1/openapi.json", "get")


@pytest.mark.gen_test(timeout=30)
async def test_the_server_serves_the_document(api: Api) -> None:
    """GET /api/v1/openapi.json answers the document itself."""
    answer = await api.call("GET", "/api/v1/openapi.json")
    assert answer.status == 200
    assert answer.body == OPENAPI
