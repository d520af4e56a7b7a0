"""The session secret: the setting, else one in Redis that every worker on it shares (tester 21a, O5)."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.session_secret import SECRET_FILE, session_secret
from bot.settings import Settings, load_settings
from handoff import keys
from handoff.agents import Agent
from handoff.auth import COOKIE
from tests.bot.test_web import QUESTION_ES, ask, hello, serving
from tests.conftest import CONFIG_DIR

OLD_SECRET = "f" * 64  # a data folder's secret from before the upgrade
PASSWORD = "a long enough password"


def settings_for(redis_url: str, data_dir: Path, secret: str = "") -> Settings:
    return load_settings(CONFIG_DIR, env={}, server={"session_secret": secret},
                         store={"redis_url": redis_url, "data_dir": str(data_dir)})


async def test_a_new_secret_is_made_once_in_redis_and_copied_to_the_data_folder(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.session_secret")
    first = await session_secret(settings_for(redis_url, tmp_path / "a"), redis)
    second = await session_secret(settings_for(redis_url, tmp_path / "b"), redis)
    assert first == second and len(first) >= 32
    assert await redis.get(keys.SESSION_SECRET) == first.decode()
    copy = tmp_path / "a" / SECRET_FILE
    assert copy.read_text().strip() == first.decode()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert "a new one, made in Redis" in caplog.text and "the one in Redis" in caplog.text
    assert first.decode() not in caplog.text


async def test_workers_starting_together_end_with_one_secret(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    made = await asyncio.gather(*(session_secret(settings_for(redis_url, tmp_path / str(i)), redis)
                                  for i in range(8)))
    assert len(set(made)) == 1


async def test_an_existing_data_folder_secret_moves_into_an_empty_redis(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.session_secret")
    (tmp_path / SECRET_FILE).write_text(OLD_SECRET + "\n")
    assert await session_secret(settings_for(redis_url, tmp_path), redis) == OLD_SECRET.encode()
    assert await redis.get(keys.SESSION_SECRET) == OLD_SECRET
    assert "now kept in Redis" in caplog.text and not any(r.levelno >= logging.WARNING for r in caplog.records)


async def test_a_data_folder_secret_that_differs_from_redis_gives_way_with_a_warning(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = "s" * 64
    await redis.set(keys.SESSION_SECRET, shared)
    (tmp_path / SECRET_FILE).write_text(OLD_SECRET + "\n")
    assert await session_secret(settings_for(redis_url, tmp_path), redis) == shared.encode()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no longer valid" in warnings[0] and OLD_SECRET not in warnings[0]
    assert (tmp_path / SECRET_FILE).read_text().strip() == shared  # the next start does not warn again
    caplog.clear()
    await session_secret(settings_for(redis_url, tmp_path), redis)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


async def test_a_redis_that_lost_its_data_gets_the_same_secret_back_from_the_data_folder(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    before = await session_secret(settings_for(redis_url, tmp_path), redis)
    await redis.flushdb()
    assert await session_secret(settings_for(redis_url, tmp_path), redis) == before


async def test_a_configured_secret_wins_and_touches_neither_redis_nor_the_folder(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    settings = settings_for(redis_url, tmp_path, secret="configured-secret-value")
    assert await session_secret(settings, redis) == b"configured-secret-value"
    assert await redis.get(keys.SESSION_SECRET) is None
    assert not (tmp_path / SECRET_FILE).exists()


async def test_a_widget_session_and_a_console_cookie_from_one_worker_work_on_another(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """Two workers, each with its own data folder (one of them upgraded from its own file), on one Redis."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / SECRET_FILE).write_text(OLD_SECRET + "\n")
    async with serving(settings_for(redis_url, tmp_path / "a")) as a, \
            serving(settings_for(redis_url, tmp_path / "b")) as b, aiohttp.ClientSession() as http:
        ws, welcome = await hello(http, a)
        await ask(ws, "c-1", QUESTION_ES)
        await ws.close()
        ws, again = await hello(http, b, welcome["session"])  # expect() fails on a bad_session frame
        assert again["session"].split(".")[0] == welcome["session"].split(".")[0]
        assert QUESTION_ES in [m["text"] for m in again["history"]]
        await ws.close()

        await a.runtime.handoff.directory.add(Agent("ana", ("general",)), PASSWORD)
        async with http.post(a.url + "/api/login", json={"name": "ana", "password": PASSWORD}) as r:
            assert r.status == 200
            cookie = r.cookies[COOKIE].value
        async with http.get(b.url + "/api/me", headers={"Cookie": f"{COOKIE}={cookie}"}) as r:
            assert r.status == 200 and (await r.json())["agent"]["name"] == "ana"

