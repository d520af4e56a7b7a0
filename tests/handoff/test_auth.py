"""Console sessions and tokens against a real Redis: signed cookies, revocation, hashed tokens."""

from __future__ import annotations

import redis.asyncio as aioredis

from handoff.agents import Agent, AgentDirectory
from handoff.auth import TOKENS, ConsoleAuth, hash_token, role_allows, session_key

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
