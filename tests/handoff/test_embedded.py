"""The embedded Redis's watch: a killed redis-server is started again on its data, within bounds."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from handoff import embedded
from handoff.store import EMBEDDED_LOG, Store, StoreError

WAIT_S = 30.0


def kill(store: Store) -> int:
    """SIGKILL the redis-server (as the OOM killer would) and wait until it is gone."""
    pid = embedded.server_pid(store.embedded_server)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + WAIT_S
    while embedded.alive(pid):
        assert time.monotonic() < deadline, "redis-server did not die"
        time.sleep(0.02)
    return pid


async def answers(store: Store, key: str) -> str | None:
    """The value of `key` once Redis answers again."""
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                return await store.redis.get(key)  # type: ignore[no-any-return]
            except RedisConnectionError:
                await asyncio.sleep(0.1)


async def test_a_killed_embedded_redis_is_started_again_on_its_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handoff.embedded")
    store = await Store.connect("", tmp_path / "data")
    watch = asyncio.create_task(embedded.watch(store, every_s=0.1))
    try:
        await store.redis.set("before", "kept")
        old = kill(store)
        assert await answers(store, "before") == "kept"  # the append-only file was replayed
        await store.redis.set("after", "written")
        assert await store.redis.get("after") == "written"
        for _ in range(600):  # Redis may answer a moment before the watch has said so
            if any("is back" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        assert embedded.server_pid(store.embedded_server) not in (0, old)
        lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "handoff.embedded"]
        assert [level for level, _ in lines] == [logging.WARNING, logging.INFO], lines
        assert f"pid {old}) died; restarting it" in lines[0][1]
        assert "is back" in lines[1][1]
        assert (tmp_path / "data" / EMBEDDED_LOG).stat().st_size > 0  # its own log is in the data folder
        assert not watch.done()
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await store.close()


async def test_a_redis_that_has_to_be_started_too_often_stops_the_watch_with_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.connect("", tmp_path / "data")
    watch = asyncio.create_task(embedded.watch(store, every_s=0.1, starts=embedded.Starts(limit=1)))
    try:
        kill(store)
        await answers(store, "x")  # the one start allowed
        kill(store)
        with pytest.raises(StoreError, match="giving up"):
            await asyncio.wait_for(watch, WAIT_S)
        assert any(r.levelno == logging.ERROR and r.name == "handoff.embedded" for r in caplog.records)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await store.close()


def test_the_start_bound_forgets_starts_older_than_its_window() -> None:
    starts = embedded.Starts(limit=2, window_s=60)
    assert starts.allow(0) and starts.allow(10)
    assert not starts.allow(30)
    assert starts.allow(70.5)  # the one at 0 is out of the window
