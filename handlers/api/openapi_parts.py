"""The pieces every part of the OpenAPI document is written with (handlers/api/openapi.py and
openapi_chat.py): a schema reference, a JSON body of a schema, an error answer."""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    """A reference to the component schema `name`."""
    return {"$ref": f"#/components/schemas/{name}"}


def _body(name: str) -> dict[str, Any]:
    """A JSON request or answer body of the component schema `name`."""
    return {"content": {JSON: {"schema": _ref(name)}}}


def _error(description: str, **headers: Any) -> dict[str, Any]:
    """An error answer (an Error body), with its response headers if given."""
    answer = {"description": description, **_body("Error")}
    if headers:
        answer["headers"] = headers
    return answer
