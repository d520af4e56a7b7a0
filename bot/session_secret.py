"""Which secret signs widget session tokens and console cookies.

`server.session_secret` when set; else one secret kept in Redis, so that every worker on one Redis
accepts the sessions the others issued (a secret per worker's data folder made a customer who reached
another worker lose their conversation). The data folder keeps a copy: an older install's file seeds
Redis on upgrade, and a Redis that lost its data gets the same secret back from the first worker to
start, so widget sessions stay valid.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import tempfile
from pathlib import Path

import redis.asyncio as aioredis

from bot.settings import Settings
from handoff import keys
from handoff.store import StoreError

logger = logging.getLogger(__name__)

SECRET_FILE = "session_secret"
_SECRET_BYTES = 32
MIN_CHARS = 32


async def session_secret(settings: Settings, redis: aioredis.Redis) -> bytes:
    """The signing secret for this worker; logs once (INFO) where it came from, never the secret."""
    if settings.server.session_secret:
        logger.info("session secret: the setting server.session_secret")
        return settings.server.session_secret.encode("utf-8")
    path = settings.data_dir / SECRET_FILE
    local = await asyncio.to_thread(_read, path)
    # SET NX and GET in one transaction: workers starting together on an empty Redis end with one secret.
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.SESSION_SECRET, local or secrets.token_hex(_SECRET_BYTES), nx=True)
        pipe.get(keys.SESSION_SECRET)
        created, shared = await pipe.execute()
    if not isinstance(shared, str) or len(shared) < MIN_CHARS:
        raise StoreError(f"Redis key {keys.SESSION_SECRET} holds no usable session secret; delete it "
                         "for a new one (widget sessions and console sign-ins from before end)")
    if created and local:
        logger.info("session secret: %s, now kept in Redis (%s) for every worker on it", path, keys.SESSION_SECRET)
    elif created:
        logger.info("session secret: a new one, made in Redis (%s) for every worker on it", keys.SESSION_SECRET)
    elif local and local != shared:
        # The upgrade of a second worker, each of which had made its own: the sessions it issued end once.
        logger.warning("session secret: %s differs from the one in Redis (%s) that the workers on it share; "
                       "using Redis's, so widget sessions and console sign-ins this worker issued before are no "
                       "longer valid (the file now holds Redis's)", path, keys.SESSION_SECRET)
    else:
        logger.info("session secret: the one in Redis (%s), shared by every worker on it", keys.SESSION_SECRET)
    if local != shared:
        await asyncio.to_thread(_write, path, shared)
    return shared.encode("ascii")


def _read(path: Path) -> str | None:
    """The data folder's secret; None when there is none (or a short one, which is replaced)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    if len(text) < MIN_CHARS:
        logger.warning("session secret: %s is too short to use; it is replaced", path)
        return None
    return text


def _write(path: Path, secret: str) -> None:
    """Replace the file at once (a reader never sees half a secret), readable by this user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{SECRET_FILE}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secret + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
