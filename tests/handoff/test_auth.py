"""Console sessions and tokens against a real Redis: signed cookies, revocation, hashed tokens."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from handoff.agents import Agent, AgentDirectory
from handoff.auth import MAX_FAILURES, TOKENS, ConsoleAuth, LockedOut, hash_token, role_allows, session_key
from handoff.keys import failures_key, lock_key

SECRET = b"0123456789abcdef0123456789abcdef"


async def _auth(redis: aioredis.Redis) -> ConsoleAuth:
    directory = AgentDirectory(redis)
    await directory.add(Agent("ana", ("general",)), "pw")
    return ConsoleAuth(redis, SECRET, directory)


async def test_cookie_is_signed_and_session_revocable(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    found = await auth.login("ana", "pw", "127.0.0.1")
    assert found is not None
    _, session = found
    cookie = auth.cookie_value(session.id)
    assert (await auth.from_cookie(cookie)) == session
    assert await auth.from_cookie(session.id + ".0000") is None
    other = ConsoleAuth(redis, b"another-secret-of-enough-bytes!!", auth.directory)
    assert await other.from_cookie(cookie) is None
    assert 0 < await redis.ttl(session_key(session.id)) <= auth.ttl_s
    assert await auth.end_sessions("ana") == 1
    assert await auth.from_cookie(cookie) is None


async def test_tokens_are_stored_hashed(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    token = await auth.new_token("ana")
    assert await redis.hgetall(TOKENS) == {hash_token(token): "ana"}
    session = await auth.from_bearer(token)
    assert session is not None and session.agent == "ana" and session.via == "bearer"
    assert await auth.revoke_tokens("ana") == 1
    assert await auth.from_bearer(token) is None


def test_role_ranks() -> None:
    assert role_allows("admin", "supervisor") and role_allows("supervisor", "agent")
    assert not role_allows("agent", "supervisor") and not role_allows("nobody", "agent")


async def _lock_out(auth: ConsoleAuth, name: str, address: str) -> None:
    for _ in range(MAX_FAILURES):
        assert await auth.login(name, "wrong", address) is None
    with pytest.raises(LockedOut):
        await auth.login(name, "pw", address)


async def test_unlock_lifts_a_name_an_address_or_every_lockout(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    await auth.directory.add(Agent("bob", ("general",)), "pw")

    # Cat's typos at the office address lock the name "cat" and the address, so Ana is locked out too.
    await _lock_out(auth, "cat", "10.0.0.1")
    with pytest.raises(LockedOut):
        await auth.login("ana", "pw", "10.0.0.1")
    assert await auth.unlock(address="10.0.0.1") == 1
    assert await auth.login("ana", "pw", "10.0.0.1") is not None
    # The name is still locked, from anywhere; lifted by name, with its failures forgotten.
    with pytest.raises(LockedOut):
        await auth.login("cat", "pw", "10.0.0.2")
    assert await auth.unlock(name=" CAT ") == 1
    assert not await redis.exists(lock_key("name", "cat"), failures_key("name", "cat"))

    # Neither: every lockout and every failure count goes.
    await _lock_out(auth, "ana", "10.0.0.3")
    await _lock_out(auth, "bob", "10.0.0.4")
    assert await auth.unlock() == 4
    assert [k async for k in redis.scan_iter(match="relevo:console:*")] == [
        k async for k in redis.scan_iter(match="relevo:console:session*")
    ]  # fmt: skip
    assert await auth.login("bob", "pw", "10.0.0.4") is not None
    assert await auth.unlock() == 0
