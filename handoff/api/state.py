"""What every route shares: the API's state on the app, the request's signed-in caller, the Handler type."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from handoff.agents import Agent
from handoff.auth import COOKIE, ConsoleAuth, ConsoleSession
from handoff.service import HandoffService

if TYPE_CHECKING:
    from handoff.api.live import LiveHub

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Library(Protocol):
    """What the API needs of faq.library.Library (canned replies; what it answers by now)."""

    @property
    def kb(self) -> Any: ...

    def match(self, text: str, lang: str | None = None, limit: int = 5) -> Any: ...

    def decide(self, text: str, lang: str | None = None) -> Any: ...


@dataclass
class ApiState:
    service: HandoffService
    auth: ConsoleAuth
    library: Library
    hub: LiveHub


STATE = web.AppKey("handoff_api", ApiState)
# The caller of the request being handled (set by `guard`; each request runs in its own task).
CURRENT: contextvars.ContextVar[tuple[Agent, ConsoleSession]] = contextvars.ContextVar("console_caller")


def api_state(request: web.Request) -> ApiState:
    return request.app[STATE]


def request_agent(request: web.Request) -> Agent:
    return CURRENT.get()[0]


def request_session(request: web.Request) -> ConsoleSession:
    return CURRENT.get()[1]


async def authenticate(request: web.Request) -> ConsoleSession | None:
    auth = api_state(request).auth
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        return await auth.from_bearer(token.strip()) if scheme.lower() == "bearer" else None
    cookie = request.cookies.get(COOKIE)
    return await auth.from_cookie(cookie) if cookie else None
