"""The OpenAPI document of the agent API, built from the route table so every route is described."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

PARAM_RE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Doc:
    """What the document says of one route: a summary, its JSON body, query parameters, responses."""

    summary: str
    body: dict[str, Any] | None = None  # JSON schema of the request body
    query: tuple[str, ...] = ()
    responses: dict[str, str] = field(default_factory=lambda: {"200": "OK"})


def _obj(**props: str) -> dict[str, Any]:
    return {"type": "object", "properties": {k: {"type": v} for k, v in props.items()}}


TEXT_BODY = _obj(text="string")
NOTE_BODY = _obj(note="string")


RouteDoc = tuple[str, str, str | None, Doc]


def build(routes: Iterable[RouteDoc], title: str = "Relevo agent API") -> dict[str, Any]:
    """routes: (method, path, required role or None, doc) of every /api route."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, role, doc in routes:
        op: dict[str, Any] = {
            "summary": doc.summary,
            "x-role": role or "public",
            "responses": {code: {"description": text} for code, text in doc.responses.items()},
        }
        if role is not None:
            op["security"] = [{"cookie": []}, {"bearer": []}]
            op["responses"].setdefault("401", {"description": "not logged in"})
            op["responses"].setdefault("403", {"description": "wrong role"})
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in PARAM_RE.findall(path)]
        params += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}}
                   for q in doc.query]
        if params:
            op["parameters"] = params
        if doc.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": doc.body}}}
        paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "components": {
            "securitySchemes": {
                "cookie": {"type": "apiKey", "in": "cookie", "name": "relevo_agent"},
                "bearer": {"type": "http", "scheme": "bearer"},
            }
        },
        "paths": paths,
    }
