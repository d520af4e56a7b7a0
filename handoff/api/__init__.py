"""The agent API under /api/, the console pages, and the live console WebSocket (/api/ws)."""

# A setting a test patches is patched in the module that reads it (handoff.api.live.SESSION_CHECK_S), not here.
from handoff.api.app import setup_api
from handoff.api.errors import ApiError, error_response
from handoff.api.live import RIGHTS_CHANGED, SIGNED_OUT, AgentSocket, LiveHub
from handoff.api.records import records_csv_text, safe_cell
from handoff.api.routes import API_CSP, PAGE_CSP, ROUTES, Route, openapi_document
from handoff.api.state import STATE, ApiState
from handoff.api.unanswered import UNANSWERED_TOP

__all__ = [
    "API_CSP",
    "PAGE_CSP",
    "RIGHTS_CHANGED",
    "ROUTES",
    "SIGNED_OUT",
    "STATE",
    "UNANSWERED_TOP",
    "AgentSocket",
    "ApiError",
    "ApiState",
    "LiveHub",
    "Route",
    "error_response",
    "openapi_document",
    "records_csv_text",
    "safe_cell",
    "setup_api",
]
