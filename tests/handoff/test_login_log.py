"""Failed console logins over real HTTP: one WARNING each, with the name and address (control characters
escaped) and never the password; past a ceiling per process, counted and said in the next line."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from handoff.auth import MAX_ADDRESS_FAILURES
from handoff.login_log import LINES_PER_MINUTE, FailedLogins
from tests.handoff import test_service
from tests.handoff.test_service import PASSWORD, Served, add_agent

server = test_service.server
http = test_service.http
WRONG = "wrongwrong-s3cret"


def failed_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    warnings = [r for r in caplog.records if r.name == "handoff.auth" and r.levelno == logging.WARNING]
    return [r.getMessage() for r in warnings if "login failed" in r.getMessage()]


async def test_each_failed_login_is_one_warning_without_the_password(
    server: Served, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    await add_agent(server, "ana")
    caplog.set_level(logging.INFO, logger="handoff.auth")
    for name, password, status in [("ana", WRONG, 401), ("nosuchuser", WRONG, 401),
                                   ("eve\nWARNING handoff.auth: console login: boss\x1b[2J", WRONG, 401),
                                   ("ana", PASSWORD, 200)]:  # fmt: skip
        async with http.post(server.url + "/api/login", json={"name": name, "password": password}) as r:
            assert r.status == status
    assert failed_lines(caplog) == [
        "console login failed for name ana at 127.0.0.1",
        "console login failed for name nosuchuser at 127.0.0.1",
        "console login failed for name eve\\nwarning handoff.auth: console login: boss\\x1b[2j at 127.0.0.1",
    ]
    assert all(WRONG not in r.getMessage() and PASSWORD not in r.getMessage() for r in caplog.records)


async def test_a_spray_from_one_address_is_logged_up_to_its_lockout(
    server: Served, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="handoff.auth")
    statuses = []
    for i in range(MAX_ADDRESS_FAILURES + 10):  # a name each: only the address's limit applies
        async with http.post(server.url + "/api/login", json={"name": f"user{i}", "password": WRONG}) as r:
            statuses.append(r.status)
    assert statuses.count(401) == MAX_ADDRESS_FAILURES and statuses.count(429) == 10
    # The refused ones are not logged one by one: the lockout's own line says it.
    assert len(failed_lines(caplog)) == MAX_ADDRESS_FAILURES
    assert any("console login locked for ip 127.0.0.1" in r.getMessage() for r in caplog.records)


def test_past_the_ceiling_failures_are_counted_and_said_in_the_next_line(caplog: pytest.LogCaptureFixture) -> None:
    """Many addresses each under their limits (a botnet): at most LINES_PER_MINUTE lines a minute."""
    now = [0.0]
    log = FailedLogins(clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="handoff.auth")
    for i in range(LINES_PER_MINUTE + 500):
        log.failed(f"user{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(failed_lines(caplog)) == LINES_PER_MINUTE
    now[0] += 1.0  # one line's worth of the ceiling back
    log.failed("ana", "10.9.9.9")
    log.failed("bob", "10.9.9.9")
    last = failed_lines(caplog)[LINES_PER_MINUTE:]
    assert last == ["console login failed for name ana at 10.9.9.9 "
                    f"(500 earlier failed logins not logged: over {LINES_PER_MINUTE} a minute)"]  # fmt: skip
