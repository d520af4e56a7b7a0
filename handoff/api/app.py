"""setup_api: the console pages, the agent API and /api/ws mounted on an aiohttp app."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from handoff.api.live import LiveHub, close_sockets, live_tasks
from handoff.api.routes import ROUTES, guard, security_headers
from handoff.api.state import STATE, ApiState
from handoff.auth import ConsoleAuth
from handoff.service import HandoffService


class RuntimeLike(Protocol):
    @property
    def library(self) -> Any: ...

    @property
    def session_secret(self) -> bytes: ...


def setup_api(app: web.Application, service: HandoffService, runtime: RuntimeLike) -> None:
    """Mount the console pages, the agent API and /api/ws on `app` (before it starts)."""
    auth = ConsoleAuth(service.redis, runtime.session_secret, service.directory, server=service.settings.server)
    app[STATE] = ApiState(service, auth, runtime.library, LiveHub(service))
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guard(route))
    app.on_response_prepare.append(security_headers)
    app.cleanup_ctx.append(live_tasks)
    app.on_shutdown.append(close_sockets)
