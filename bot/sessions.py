"""Signed widget session tokens: a session id and an expiry, HMAC-SHA256 with the server's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.settings import Settings

logger = logging.getLogger(__name__)


class BadSession(ValueError):
    """A token that is malformed, forged or expired; the reason is for the log, not the customer."""


@dataclass(frozen=True)
class Session:
    id: str
    token: str
    expires: int  # unix seconds


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class SessionSigner:
    """Issues and checks tokens "<session id>.<expiry>.<signature>"."""

    def __init__(self, secret: bytes, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < 16:
            raise ValueError("session secret must be at least 16 bytes")
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock

    def _sign(self, session_id: str, expires: int) -> str:
        mac = hmac.new(self._secret, f"{session_id}.{expires}".encode("ascii"), hashlib.sha256)
        return _b64(mac.digest())

    def issue(self, session_id: str | None = None) -> Session:
        """A token for a new session, or a renewed one (fresh expiry) for an existing session id."""
        sid = session_id or secrets.token_urlsafe(16)
        expires = int(self._clock()) + self._ttl_s
        return Session(sid, f"{sid}.{expires}.{self._sign(sid, expires)}", expires)

    def verify(self, token: str) -> Session:
        """The session a token names, or BadSession if it is not one this server signed and still valid."""
        parts = token.split(".") if isinstance(token, str) and len(token) <= 200 else []
        if len(parts) != 3 or not all(parts) or not parts[1].isdigit():
            raise BadSession("malformed token")
        sid, expires_s, signature = parts
        if not sid.isascii() or not hmac.compare_digest(signature, self._sign(sid, int(expires_s))):
            raise BadSession("bad signature")
        expires = int(expires_s)
        if expires < self._clock():
            raise BadSession("expired")
        return Session(sid, token, expires)


def signer_for(settings: Settings, secret: bytes) -> SessionSigner:
    """The widget's signer; `secret` from bot.session_secret (the setting, else the one in Redis)."""
    return SessionSigner(secret, settings.server.session_ttl_days * 86400)
