"""Redis outages: the log tells start, a summary a minute and the end; the API answers 503 JSON meanwhile."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from handoff import embedded, outage
from handoff.outage import Outage
from tests.handoff.test_embedded import kill
from tests.handoff.test_service import add_agent, login, make_settings, serving


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_one_warning_a_summary_a_minute_and_one_line_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="handoff.outage")
    clock = Clock()
    tracked = Outage(clock=clock)
    for _ in range(3 * 60 * 10):  # ten failures a second for three minutes
        assert tracked.failed("console events", RedisConnectionError("Error 111 connecting"))
        clock.now += 0.1
    tracked.ok()
    tracked.ok()
    lines = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert lines[0][0] == logging.WARNING and "Redis unreachable (console events: ConnectionError" in lines[0][1]
    assert [level for level, _ in lines[1:-1]] == [logging.WARNING] * 2, lines  # at 60 and 120 s
    assert "still unreachable after 60 s" in lines[1][1]
    assert lines[-1] == (logging.INFO, "Redis reachable again after 180 s (1800 failed attempts)")
    assert not any(r.exc_info for r in caplog.records)


def test_an_unexpected_error_is_left_to_the_caller() -> None:
    tracked = Outage()
    assert not tracked.failed("console events", ValueError("a bug"))
    assert not tracked.down


@pytest.fixture
def outage_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    outage.REDIS.ok()  # the process-wide view starts from "reachable"
    caplog.set_level(logging.INFO)
    return caplog


async def _get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any], str]:
    async with http.get(url) as r:
        body = await r.json() if r.content_type == "application/json" else {}
        return r.status, body, r.headers.get("Retry-After", "")


async def test_the_api_answers_503_json_while_redis_is_away_and_works_when_it_is_back(
    tmp_path: Path, outage_log: pytest.LogCaptureFixture
) -> None:
    async with serving(make_settings("", tmp_path / "data")) as served, aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        await add_agent(served, "ana")
        await login(http, served)
        assert (await asyncio.gather(*(_get(http, served.url + "/api/queues") for _ in range(8))))[0][0] == 200
        store = served.runtime.store
        kill(store)

        for _ in range(5):
            status, body, retry_after = await _get(http, served.url + "/api/queues")
            assert (status, body["error"], retry_after) == (503, "unavailable", "5")
            assert body["message"]
        await asyncio.sleep(1.5)  # the console and handoff loops retry meanwhile
        status, _, _ = await _get(http, served.url + "/api/me")
        assert status == 503

        problems = [r for r in outage_log.records if r.levelno >= logging.WARNING]
        assert not [r for r in problems if r.exc_info], "a known outage is logged without tracebacks"
        assert len(problems) <= 3, [r.getMessage() for r in problems]  # the start (+ a line or two of others)
        assert any("Redis unreachable" in r.getMessage() for r in problems)

        await asyncio.to_thread(embedded.restart, store.embedded_server)
        results = await asyncio.gather(*(_get(http, served.url + "/api/queues") for _ in range(8)))
        assert [status for status, _, _ in results] == [200] * 8
        for _ in range(300):  # the loops' next success says so
            if any("Redis reachable again after" in r.getMessage() for r in outage_log.records):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no 'reachable again' line")
