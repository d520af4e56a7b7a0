"""Logins under load against a real Redis and over real HTTP: the lockout holds against a burst of
concurrent guesses, and password hashing neither stalls the event loop nor runs unbounded."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import urllib.request
from collections import Counter
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from handoff.agents import HASH_CONCURRENCY, Agent, AgentDirectory
from handoff.auth import MAX_ADDRESS_FAILURES, MAX_FAILURES, MAX_NAME_FAILURES, ConsoleAuth, LockedOut
from handoff.keys import failures_key
from tests.handoff import test_service
from tests.handoff.test_service import PASSWORD, Served, add_agent

server = test_service.server
http = test_service.http
SECRET = b"0123456789abcdef0123456789abcdef"
BURST = 40


async def _auth(redis: aioredis.Redis) -> ConsoleAuth:
    directory = AgentDirectory(redis)
    await directory.add(Agent("ana", ("general",)), "pw")
    return ConsoleAuth(redis, SECRET, directory)


def _outcomes(results: list[Any]) -> Counter[str]:
    def kind(r: Any) -> str:
        if isinstance(r, LockedOut):
            return "locked"
        assert not isinstance(r, BaseException), r
        return "signed in" if r else "wrong"

    return Counter(kind(r) for r in results)


# -- the lockout against concurrent guesses ------------------------------------------------------------


async def test_a_burst_at_one_name_from_one_address_evaluates_only_the_pairs_limit(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    guesses = [auth.login("ana", "wrong", "203.0.113.9") for _ in range(BURST)]
    results = await asyncio.gather(*guesses, return_exceptions=True)
    assert _outcomes(results) == {"wrong": MAX_FAILURES, "locked": BURST - MAX_FAILURES}
    with pytest.raises(LockedOut):  # the right password, once the burst is over
        await auth.login("ana", "pw", "203.0.113.9")


async def test_a_burst_at_one_name_from_many_addresses_evaluates_only_the_names_limit(
    redis: aioredis.Redis,
) -> None:
    auth = await _auth(redis)
    guesses = [auth.login("ana", "wrong", f"203.0.113.{i}") for i in range(BURST)]
    assert _outcomes(await asyncio.gather(*guesses, return_exceptions=True)) == {
        "wrong": MAX_NAME_FAILURES, "locked": BURST - MAX_NAME_FAILURES}  # fmt: skip
    with pytest.raises(LockedOut):
        await auth.login("ana", "pw", "198.51.100.1")


async def test_a_burst_across_names_from_one_address_evaluates_only_the_addresss_limit(
    redis: aioredis.Redis,
) -> None:
    auth = await _auth(redis)
    burst = 2 * MAX_ADDRESS_FAILURES
    guesses = [auth.login(f"user{i}", "wrong", "203.0.113.9") for i in range(burst)]
    assert _outcomes(await asyncio.gather(*guesses, return_exceptions=True)) == {
        "wrong": MAX_ADDRESS_FAILURES, "locked": burst - MAX_ADDRESS_FAILURES}  # fmt: skip
    with pytest.raises(LockedOut):
        await auth.login("ana", "pw", "203.0.113.9")


async def test_a_good_login_leaves_the_address_count_as_it_was(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    for i in range(3):
        assert await auth.login(f"user{i}", "wrong", "10.0.0.1") is None
    logins = await asyncio.gather(*(auth.login("ana", "pw", "10.0.0.1") for _ in range(3)))
    assert all(logins)  # concurrent sign-ins under the limits are not refused
    assert await redis.get(failures_key("ip", "10.0.0.1")) == "3"
    assert not await redis.exists(failures_key("name", "ana"))


async def test_an_http_burst_gets_429_for_all_but_the_limit_the_right_password_too(
    server: Served, http: aiohttp.ClientSession
) -> None:
    await add_agent(server, "ana")

    async def attempt(password: str) -> int:
        async with http.post(server.url + "/api/login", json={"name": "ana", "password": password}) as r:
            return r.status

    statuses = await asyncio.gather(*(attempt("wrong") for _ in range(BURST)))
    assert Counter(statuses) == {401: MAX_FAILURES, 429: BURST - MAX_FAILURES}
    assert await attempt(PASSWORD) == 429


# -- password hashing off the event loop ---------------------------------------------------------------


async def test_the_server_answers_while_a_password_is_hashed(
    server: Served, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_agent(server, "ana")
    real = hashlib.scrypt
    answers: list[object] = []

    def scrypt_asking_healthz(*args: Any, **kwargs: Any) -> bytes:
        # Mid-hash, ask the same server: it answers only if the hash is not holding its event loop.
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=5) as r:
                answers.append(r.status)
        except OSError as e:
            answers.append(repr(e))
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", scrypt_asking_healthz)
    for name, password, status in [("ana", PASSWORD, 200), ("ana", "wrong", 401), ("nobody", "x", 401)]:
        async with http.post(server.url + "/api/login", json={"name": name, "password": password}) as r:
            assert r.status == status
    assert len(answers) >= 3 and set(answers) == {200}


async def test_only_a_few_hashes_run_at_once(redis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = AgentDirectory(redis)
    await directory.add(Agent("ana", ("general",)), "pw")
    real = hashlib.scrypt
    lock, go = threading.Lock(), threading.Event()
    running, most = [0], [0]

    def held_scrypt(*args: Any, **kwargs: Any) -> bytes:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        go.wait(3)  # held until the test has seen how many run together
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(hashlib, "scrypt", held_scrypt)
    checks = [asyncio.create_task(directory.check("ana", "wrong")) for _ in range(3 * HASH_CONCURRENCY)]
    for _ in range(500):
        if running[0] >= HASH_CONCURRENCY:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the chance for more to start, were they allowed to
    go.set()
    assert await asyncio.gather(*checks) == [None] * len(checks)
    assert most[0] == HASH_CONCURRENCY
