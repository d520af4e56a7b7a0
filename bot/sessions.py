"""Signed widget session tokens: a session id and an expiry, HMAC-SHA256 with the server's secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.settings import Settings

logger = logging.getLogger(__name__)

SECRET_FILE = "session_secret"
_SECRET_BYTES = 32


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


def load_secret(settings: Settings) -> bytes:
    """settings.server.session_secret, else a random secret created once in the data folder."""
    if settings.server.session_secret:
        return settings.server.session_secret.encode("utf-8")
    path = settings.data_dir / SECRET_FILE
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together on one data folder must end with one secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secrets.token_hex(_SECRET_BYTES) + "\n")
    logger.info("created a session secret in %s", path)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise ValueError(f"{path}: session secret is too short; delete the file to create a new one")
    return text.encode("ascii")


def signer_for(settings: Settings) -> SessionSigner:
    return SessionSigner(load_secret(settings), settings.server.session_ttl_days * 86400)
