"""The API's errors: ApiError, raised by a handler, the JSON error answer, and the answer while Redis is away."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str = "") -> web.Response:
    body: dict[str, Any] = {"error": code}
    if message:
        body["message"] = message
    return web.json_response(body, status=status)


# Long enough for a restart of the embedded Redis (watched every second), short enough for a person waiting.
RETRY_AFTER_S = 5
UNAVAILABLE_MESSAGE = "the store (Redis) cannot be reached right now; nothing was changed, try again in a moment"


def unavailable_response(page: bool = False) -> web.Response:
    """503 while Redis is unreachable: JSON for the API and its clients, a line of text for a page."""
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if page:
        return web.Response(status=503, text="Relevo cannot reach its database right now; try again in a moment.",
                            headers=headers)
    response = error_response(503, "unavailable", UNAVAILABLE_MESSAGE)
    response.headers.update(headers)
    return response
