"""The API's errors: ApiError, raised by a handler, and the JSON error answer."""

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
