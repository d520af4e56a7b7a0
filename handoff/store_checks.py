"""Start-up checks of the Redis Relevo keeps everything in: settings that can lose data, and a store
that has lost it.

Agents, queues, transcripts and the audit record live only in Redis. A Redis without persistence, or
one that evicts keys when full, loses them silently; these checks put that in the log at start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from bot.settings import redact_url
from handoff import keys
from handoff.store import Store

logger = logging.getLogger(__name__)

# Commands Relevo uses since Redis 6.2: ZADD GT, SET … GET, ZMSCORE.
MIN_VERSION = (6, 2)
CHECKED = ("appendonly", "appendfsync", "save", "maxmemory-policy")
# In the data folder: the id of the store (keys.STORE_CREATED) this folder's Relevo last ran on.
STORE_ID_FILE = "store_id"
README_PART = "see 'Redis requirements' in the README"


async def check_store(store: Store, data_dir: Path) -> None:
    """Log a WARNING per risky setting of an external Redis, and one when the store lost its data."""
    where = redact_url(store.url)
    if not store.embedded:  # the embedded server is started with the settings it needs
        await _check_version(store.redis, where)
        await _check_config(store.redis, where)
    await check_marker(store.redis, data_dir, where)


async def _check_version(redis: aioredis.Redis, where: str) -> None:
    try:
        version = str((await redis.info("server")).get("redis_version", ""))
    except ResponseError as exc:
        logger.info("store: could not read the version of Redis at %s (%s)", where, exc)
        return
    numbers = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if len(numbers) == 2 and numbers < MIN_VERSION:
        logger.warning("store: Redis at %s is version %s; Relevo needs 6.2 or later (ZADD GT, SET GET, "
                       "ZMSCORE): upgrade it", where, version)


async def _check_config(redis: aioredis.Redis, where: str) -> None:
    # One CONFIG GET per name: several names in one call need Redis 7.
    config: dict[str, str] = {}
    try:
        for name in CHECKED:
            config.update({str(k): str(v) for k, v in (await redis.config_get(name)).items()})
    except ResponseError as exc:  # hosted Redis often refuses or renames CONFIG
        logger.info("store: could not check the persistence and eviction settings of Redis at %s "
                    "(CONFIG GET: %s); %s", where, exc, README_PART)
        return
    problems = risky_settings(config)
    for problem in problems:
        logger.warning("store: Redis at %s: %s", where, problem)
    if not problems:
        logger.info("store: Redis at %s: %s", where, ", ".join(f"{k} {config.get(k)!r}" for k in CHECKED))


def risky_settings(config: dict[str, str]) -> list[str]:
    """One message per setting that can lose Relevo's data, naming it and what to set instead."""
    problems = []
    if config.get("appendonly", "no") != "yes":
        if config.get("save", ""):
            problems.append(f"appendonly no, only snapshots (save {config['save']!r}): a crash loses what was "
                            "written since the last one; set appendonly yes (appendfsync everysec or always)")
        else:
            problems.append("appendonly no and save '': nothing is kept on disk, a restart loses every agent, "
                            "queue and transcript; set appendonly yes (appendfsync everysec or always)")
    elif config.get("appendfsync") == "no":
        problems.append("appendfsync no: the system writes the append-only file when it likes, a machine "
                        "crash loses up to ~30 s; set appendfsync everysec or always")
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        # volatile-* too: Relevo's keys with a time to live include claim leases and console sign-ins.
        problems.append(f"maxmemory-policy {policy}: when full, Redis deletes Relevo's keys (agents, queues, "
                        "transcripts, sign-ins); set maxmemory-policy noeviction")
    return problems


async def check_marker(redis: aioredis.Redis, data_dir: Path, where: str) -> str:
    """Make the store's marker if it has none, compare it with the one the data folder remembers, and
    remember the current one. Returns the store's id."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.STORE_CREATED, uuid.uuid4().hex, nx=True)
        pipe.get(keys.STORE_CREATED)
        created, store_id = await pipe.execute()
    path = data_dir / STORE_ID_FILE
    seen = await asyncio.to_thread(_read, path)
    if seen is not None and seen != store_id:
        # The marker was missing (this worker made it anew) or another worker made it since: either way
        # the store this folder's Relevo ran on is gone. Also when REDIS_URL now names another store.
        logger.warning("store: the store is empty: Redis at %s lost Relevo's data (agents, queues, transcripts) "
                       "since this data folder last used it, or REDIS_URL names another store (%s %s, was %s%s); "
                       "add the agents again (relevo agent add), and %s", where, keys.STORE_CREATED, store_id, seen,
                       ", made now" if created else "", README_PART)
    if seen != store_id:
        await asyncio.to_thread(_write, path, store_id)
    return str(store_id)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def _write(path: Path, store_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(store_id + "\n", encoding="ascii")
    tmp.replace(path)
