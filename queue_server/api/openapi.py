"""The OpenAPI 3.1 document, built from the route table and the pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from queue_server.api.feed_schemas import FEEDS
from queue_server.api.http import Endpoint, json_response
from queue_server.api.schemas import ErrorBody

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "Malformed request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Unknown branch, service, counter or ticket",
    409: "Not possible in the current state",
    413: "Body too large",
    422: "Invalid fields",
    429: "Too many requests",
}


def build_openapi(endpoints: tuple[Endpoint, ...]) -> dict[str, Any]:
    components: dict[str, Any] = {}

    def schema_of(annotation: Any) -> dict[str, Any]:
        schema = TypeAdapter(annotation).json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        if "title" in schema and schema.get("type") == "object":
            name = schema["title"]
            components[name] = schema
            return {"$ref": REF.format(model=name)}
        return schema

    error_ref = schema_of(ErrorBody)
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.name,
            "summary": endpoint.summary,
            "tags": list(endpoint.tags),
            "parameters": [
                {"name": name, "in": "path", "required": True,
                 "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}
                for name in re.findall(r"{(\w+)}", endpoint.path)
            ] + [
                {"name": header, "in": "header", "required": False,
                 "schema": {"type": "string", "minLength": 1, "maxLength": 128}}
                for header in endpoint.headers
            ],
            "responses": {},
        }  # fmt: skip
        if endpoint.query is not None:
            query_schema = endpoint.query.model_json_schema()
            required = set(query_schema.get("required", ()))
            for name, prop in query_schema["properties"].items():
                operation["parameters"].append(
                    {"name": name, "in": "query", "required": name in required, "schema": prop}
                )
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": schema_of(endpoint.body)}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if endpoint.response is not None:
            ok["content"] = {"application/json": {"schema": schema_of(endpoint.response)}}
        elif endpoint.media_type != "application/json":
            ok["content"] = {
                endpoint.media_type: {"schema": {"type": "string", "format": "binary"}}
            }
        operation["responses"][str(endpoint.status)] = ok
        if endpoint.status == 201:
            operation["responses"]["200"] = ok | {"description": "Replayed (same Idempotency-Key)"}
        statuses = set(endpoint.errors) | {400, 422} if endpoint.body else set(endpoint.errors)
        if endpoint.method == "POST":
            statuses |= {400, 413}
        if endpoint.access != "public" or endpoint.method == "POST":
            statuses |= {401, 403, 429}
        for status in sorted(statuses):
            operation["responses"][str(status)] = {
                "description": ERROR_TEXT.get(status, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    feeds = {}
    for path, (name, frame) in FEEDS.items():
        schema = TypeAdapter(frame).json_schema(ref_template=REF)
        components.update(schema.pop("$defs", {}))
        components[name] = schema | {"title": name}
        feeds[path] = {
            "description": "WebSocket: JSON text frames from the server (docs/protocol.md)",
            "frame": {"$ref": REF.format(model=name)},
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Rigi queue server",
            "version": "1",
            "description": "Tickets, counters and branch views for public service halls.",
        },
        "paths": paths,
        "components": {"schemas": components},
        "x-feeds": feeds,  # OpenAPI cannot describe a WebSocket: each feed's frames
    }


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rigi API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="ui"></div><script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>"""


def openapi_routes(endpoints: tuple[Endpoint, ...]) -> list[Route | Mount]:
    """`/openapi.json` and `/docs`, served from the package: no CDN on a closed network."""
    document = build_openapi(endpoints)

    async def openapi(request: Request) -> Response:
        return json_response(document)

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_PAGE)

    return [
        Route("/openapi.json", openapi, include_in_schema=False),
        Route("/docs", docs, include_in_schema=False),
        Mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets"),
    ]
