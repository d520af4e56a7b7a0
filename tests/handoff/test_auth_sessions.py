"""Console sessions against a real Redis over many hours of use: a new password or disable ends every one
of them however long ago it signed in, and none lives past the absolute limit however busy it is.

Hours are made to pass on Redis (expiries shortened, keys whose time is up deleted, the session's login
time moved back) instead of waited for."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.settings import ServerSettings, SettingsError, load_settings
from handoff.agents import Agent, AgentDirectory
from handoff.auth import SESSION_TTL_S, ConsoleAuth
from handoff.keys import agent_sessions_key, session_key
from tests.conftest import CONFIG_DIR

SECRET = b"0123456789abcdef0123456789abcdef"
HOUR = 3600


async def _auth(redis: aioredis.Redis, max_hours: int | None = None) -> ConsoleAuth:
    directory = AgentDirectory(redis)
    await directory.add(Agent("ana", ("general",)), "pw")
    server = ServerSettings() if max_hours is None else ServerSettings(console_session_max_hours=max_hours)
    return ConsoleAuth(redis, SECRET, directory, server=server)


def _cli(redis: aioredis.Redis) -> ConsoleAuth:
    """As `relevo agent passwd` / `disable` build it: another secret, default settings."""
    return ConsoleAuth(redis, b"relevo-cli-no-cookies-here", AgentDirectory(redis))


async def _signed_in(auth: ConsoleAuth) -> tuple[str, str]:
    found = await auth.login("ana", "pw", "10.0.0.1")
    assert found is not None
    return found[1].id, auth.cookie_value(found[1].id)


async def _hours_pass(redis: aioredis.Redis, hours: float, sid: str) -> None:
    """What `hours` do to the agent's session and its index: expiries run down, and the login recedes."""
    seconds = int(hours * HOUR)
    for key in (session_key(sid), agent_sessions_key("ana")):
        ttl = await redis.ttl(key)
        if 0 < ttl <= seconds:
            await redis.delete(key)
        elif ttl > seconds:
            await redis.expire(key, ttl - seconds)
    if await redis.exists(session_key(sid)):
        await redis.hincrby(session_key(sid), "created", -seconds)


async def test_a_new_password_ends_a_session_kept_in_use_past_the_idle_expiry(redis: aioredis.Redis) -> None:
    auth = await _auth(redis, max_hours=7 * 24)
    sid, cookie = await _signed_in(auth)
    for _ in range(3):  # 33 h of a console (or a copied cookie) in use: never idle for 12 h
        await _hours_pass(redis, 11, sid)
        assert await auth.from_cookie(cookie) is not None
        assert await redis.ttl(agent_sessions_key("ana")) >= await redis.ttl(session_key(sid))
    await auth.directory.set_password("ana", "new")
    assert await _cli(redis).end_sessions("ana") == 1
    assert await auth.from_cookie(cookie) is None


async def test_disable_then_enable_does_not_bring_an_old_session_back(redis: aioredis.Redis) -> None:
    auth = await _auth(redis, max_hours=7 * 24)
    sid, cookie = await _signed_in(auth)
    for _ in range(2):
        await _hours_pass(redis, 11, sid)
        assert await auth.from_cookie(cookie) is not None
    await auth.directory.disable("ana")
    assert await _cli(redis).end_sessions("ana") == 1
    await auth.directory.disable("ana", disabled=False)
    assert await auth.from_cookie(cookie) is None


async def test_a_session_in_use_ends_at_the_absolute_limit(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    assert auth.max_age_s == ServerSettings().console_session_max_hours * HOUR
    sid, cookie = await _signed_in(auth)
    await _hours_pass(redis, auth.max_age_s / HOUR - 1, sid)
    assert await auth.from_cookie(cookie) is not None
    # Renewed only up to the limit, not for a whole idle period more.
    assert 0 < await redis.ttl(session_key(sid)) <= HOUR
    await _hours_pass(redis, 0.5, sid)
    assert await auth.from_cookie(cookie) is not None
    await redis.hincrby(session_key(sid), "created", -HOUR)  # past the limit, whatever the key's TTL says
    assert await auth.from_cookie(cookie) is None
    assert not await redis.exists(session_key(sid))


async def test_a_session_from_before_the_absolute_limit_is_not_honoured(redis: aioredis.Redis) -> None:
    # Written without a login time (and maybe missing from its agent's index): end_sessions might not
    # find it, so it must not stay signed in.
    auth = await _auth(redis)
    await redis.hset(session_key("0123abcd"), mapping={"agent": "ana", "csrf": "x"})
    await redis.expire(session_key("0123abcd"), SESSION_TTL_S)
    assert await auth.from_cookie(auth.cookie_value("0123abcd")) is None


async def test_the_index_forgets_sessions_that_expired(redis: aioredis.Redis) -> None:
    auth = await _auth(redis, max_hours=7 * 24)
    old, _ = await _signed_in(auth)
    await redis.delete(session_key(old))  # expired
    new, _ = await _signed_in(auth)
    assert await redis.smembers(agent_sessions_key("ana")) == {new}


@pytest.mark.parametrize("hours", [0, -1])
def test_the_absolute_limit_is_at_least_an_hour(hours: int) -> None:
    with pytest.raises(SettingsError, match="console_session_max_hours"):
        load_settings(CONFIG_DIR, env={}, server={"console_session_max_hours": hours})

