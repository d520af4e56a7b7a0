import asyncio
from pathlib import Path

import pytest

from handoff.store import MAX_CONNECTIONS, QueueingPool, Store, StoreError


async def test_embedded_redis_keeps_an_append_only_file_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await Store.connect("", data)
    try:
        assert store.embedded and store.url.startswith("unix://")
        assert (await store.redis.config_get("appendonly"))["appendonly"] == "yes"
        await store.redis.xadd("conv:{x}:log", {"sender": "customer", "text": "¿dónde está mi pedido?"})
    finally:
        await store.close()
    aof = data / "appendonly.aof"
    assert aof.is_file() and b"XADD" in aof.read_bytes()
    # Transcripts and password hashes: the folder is its user's alone (redis-server's files are 0644).
    assert data.stat().st_mode & 0o777 == 0o700

    again = await Store.connect("", data)
    try:
        entries = await again.redis.xrange("conv:{x}:log")
        assert [e[1]["text"] for e in entries] == ["¿dónde está mi pedido?"]
    finally:
        await again.close()


async def test_embedded_redis_is_stopped_on_close(tmp_path: Path) -> None:
    store = await Store.connect("", tmp_path)
    url = store.url
    await store.close()
    with pytest.raises(StoreError):
        await (await Store.connect(url, tmp_path)).close()


async def test_connects_to_the_given_url(redis_url: str, tmp_path: Path) -> None:
    async with await Store.connect(redis_url, tmp_path / "unused") as store:
        assert not store.embedded and await store.redis.ping()
    assert not (tmp_path / "unused").exists()


async def test_more_concurrent_commands_than_connections_wait_for_one(redis_url: str, tmp_path: Path) -> None:
    async with await Store.connect(redis_url, tmp_path / "unused") as store:
        pool = store.redis.connection_pool
        assert isinstance(pool, QueueingPool) and pool.max_connections == MAX_CONNECTIONS
        # Each BLPOP holds its connection until it times out: the ones past the limit must wait their
        # turn instead of failing with "Too many connections".
        many = MAX_CONNECTIONS + 40
        waits = [store.redis.blpop([f"relevo:test:none:{i}"], timeout=0.1) for i in range(many)]
        assert await asyncio.gather(*waits) == [None] * many
        assert len(pool._in_use_connections) + len(pool._available_connections) <= MAX_CONNECTIONS


async def test_a_command_waits_for_a_connection_only_up_to_the_pool_timeout(redis_url: str) -> None:
    import redis.asyncio as aioredis

    pool = QueueingPool.from_url(redis_url, decode_responses=True, max_connections=1, timeout=0.2)
    client = aioredis.Redis.from_pool(pool)
    try:
        held = await pool.get_connection()
        with pytest.raises(aioredis.ConnectionError, match="No connection available"):
            await client.ping()
        waiting = asyncio.create_task(client.ping())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # queued behind the held connection, not failed
        await pool.release(held)
        assert await waiting is True
        with pytest.raises(KeyError):  # redis-py refuses a stray second release; it frees no second slot
            await pool.release(held)
        assert len(pool._in_use_connections) + len(pool._available_connections) == 1
        first = await pool.get_connection()
        with pytest.raises(aioredis.ConnectionError):
            await client.ping()
        await pool.release(first)
    finally:
        await client.aclose()


async def test_a_command_after_a_redis_restart_goes_on_a_fresh_connection_and_runs_once(tmp_path: Path) -> None:
    """Pooled connections to a Redis that restarted are replaced before a command is written to them,
    so nothing fails after the restart, and nothing runs twice."""
    from handoff import embedded
    from tests.handoff.test_embedded import kill

    store = await Store.connect("", tmp_path / "data")
    try:
        redis = store.redis
        await asyncio.gather(*(redis.incr(f"n{i}") for i in range(8)))  # eight connections in the pool
        kill(store)
        # Blocking on purpose: the event loop has not read the old connections' end when the commands go.
        embedded.restart(store.embedded_server)
        assert await asyncio.gather(*(redis.incr(f"n{i}") for i in range(8))) == [2] * 8
    finally:
        await store.close()
