"""Console sessions and tokens against a real Redis: signed cookies, revocation, hashed tokens, lockouts,
and a disabled account told why."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from handoff.agents import Agent, AgentDirectory
from handoff.auth import (
    MAX_ADDRESS_FAILURES,
    MAX_FAILURES,
    MAX_NAME_FAILURES,
    TOKENS,
    AccountDisabled,
    ConsoleAuth,
    LockedOut,
    hash_token,
    role_allows,
    session_key,
)
from handoff.keys import failures_key, lock_key, login_pair

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


async def _lock_out(auth: ConsoleAuth, name: str, address: str, times: int = MAX_FAILURES) -> None:
    for _ in range(times):
        assert await auth.login(name, "wrong", address) is None
    with pytest.raises(LockedOut):
        await auth.login(name, "pw", address)


async def test_typos_behind_an_office_nat_lock_only_that_name_there(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    await auth.directory.add(Agent("cat", ("general",)), "pw")

    # Cat's five typos at the office lock Cat at the office, not Ana at the same address ...
    await _lock_out(auth, "cat", "10.0.0.1")
    assert await redis.exists(lock_key("pair", login_pair("cat", "10.0.0.1")))
    assert await auth.login("ana", "pw", "10.0.0.1") is not None
    # ... nor Cat elsewhere: five failures stay under the name's own limit.
    assert not await redis.exists(lock_key("name", "cat"), lock_key("ip", "10.0.0.1"))
    assert await auth.login("cat", "pw", "10.0.0.2") is not None
    # A good login clears the name's and the pair's counts, not the address's.
    assert not await redis.exists(failures_key("name", "cat"), failures_key("pair", login_pair("cat", "10.0.0.2")))
    assert int(await redis.get(failures_key("ip", "10.0.0.1")) or 0) == MAX_FAILURES


async def test_guessing_one_name_from_many_addresses_locks_the_name(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    for i in range(MAX_NAME_FAILURES):
        assert await auth.login("ana", "wrong", f"203.0.113.{i}") is None
    with pytest.raises(LockedOut):
        await auth.login("ana", "pw", "198.51.100.1")  # the right password, from a fresh address
    assert not await redis.exists(*(lock_key("ip", f"203.0.113.{i}") for i in range(MAX_NAME_FAILURES)))


async def test_guessing_across_names_from_one_address_locks_the_address(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    assert MAX_FAILURES < MAX_NAME_FAILURES < MAX_ADDRESS_FAILURES
    for i in range(MAX_ADDRESS_FAILURES - 1):
        assert await auth.login(f"user{i}", "wrong", "203.0.113.9") is None
    assert await auth.login("ana", "pw", "203.0.113.9") is not None  # 29 failures: still open
    assert await auth.login("nobody", "wrong", "203.0.113.9") is None
    with pytest.raises(LockedOut):
        await auth.login("ana", "pw", "203.0.113.9")
    assert await auth.login("ana", "pw", "10.0.0.1") is not None  # only that address


async def test_pair_keys_cannot_be_forged_by_the_typed_name(redis: aioredis.Redis) -> None:
    # The name is typed by anyone: "x:10.0.0.1" at 10.0.0.2 is not the pair ("x", ...), nor a SCAN wildcard.
    assert login_pair("x:10.0.0.1", "10.0.0.2") != login_pair("x", "10.0.0.1:10.0.0.2")
    assert login_pair("a*", "[1]") == "a%2A:%5B1%5D"
    auth = await _auth(redis)
    await _lock_out(auth, "*", "10.0.0.1")
    await _lock_out(auth, "ana", "10.0.0.2")
    assert await auth.unlock(name="*") == 1  # the name "*", not every name
    assert await redis.exists(lock_key("pair", login_pair("ana", "10.0.0.2")))


async def test_unlock_lifts_a_name_an_address_or_every_lockout(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    await auth.directory.add(Agent("bob", ("general",)), "pw")

    # Cat's typos at two addresses: two pair lockouts, and the name itself once over its own limit.
    await _lock_out(auth, "cat", "10.0.0.1")
    await _lock_out(auth, "cat", "10.0.0.2", times=MAX_NAME_FAILURES - MAX_FAILURES)
    assert await redis.exists(lock_key("name", "cat"))
    assert await auth.unlock(name=" CAT ") == 3  # the name and its two pairs, with their counts
    assert [k async for k in redis.scan_iter(match="relevo:console:*cat*")] == []
    assert await auth.login("cat", "pw", "10.0.0.1") is None  # no such agent, but not locked any more

    # An address: its own lockout and every name's there; other addresses keep theirs.
    for i in range(MAX_ADDRESS_FAILURES):  # five tries at each of six names
        assert await auth.login(f"user{i // MAX_FAILURES}", "wrong", "10.0.0.3") is None
    await _lock_out(auth, "bob", "10.0.0.4")
    with pytest.raises(LockedOut):
        await auth.login("ana", "pw", "10.0.0.3")
    assert await auth.unlock(address="10.0.0.3") == 1 + 6  # the address, and user0 … user5 there
    assert await auth.login("ana", "pw", "10.0.0.3") is not None
    with pytest.raises(LockedOut):
        await auth.login("bob", "pw", "10.0.0.4")

    # Neither: every lockout and every failure count goes.
    await _lock_out(auth, "ana", "10.0.0.5")
    assert await auth.unlock() == 2  # bob at .4, ana at .5
    assert [k async for k in redis.scan_iter(match="relevo:console:*")] == [
        k async for k in redis.scan_iter(match="relevo:console:session*")
    ]  # fmt: skip
    assert await auth.login("bob", "pw", "10.0.0.4") is not None
    assert await auth.unlock() == 0


async def test_a_disabled_account_is_told_only_with_the_right_password(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    found = await auth.login("ana", "pw", "10.0.0.1")
    assert found is not None
    cookie = auth.cookie_value(found[1].id)
    assert await auth.signed_out_reason(cookie) is None

    await auth.directory.disable("ana")
    # Still signed in (nobody ended the session yet): the reason is told already.
    assert await auth.signed_out_reason(cookie) == "disabled"
    assert await auth.end_sessions("ana") == 1
    assert await auth.from_cookie(cookie) is None
    assert await auth.signed_out_reason(cookie) == "disabled"
    # Nothing for a forged cookie, a stranger's cookie, or once the agent is enabled again.
    assert await auth.signed_out_reason(found[1].id + ".00") is None
    other = ConsoleAuth(redis, b"another-secret-of-enough-bytes!!", auth.directory)
    assert await other.signed_out_reason(cookie) is None

    # A wrong password is the generic failure and counts; the right one says "disabled" and does not.
    assert await auth.login("ana", "wrong", "10.0.0.1") is None
    assert int(await redis.get(failures_key("name", "ana")) or 0) == 1
    for _ in range(MAX_FAILURES + 1):
        with pytest.raises(AccountDisabled):
            await auth.login("ana", "pw", "10.0.0.1")
    assert int(await redis.get(failures_key("name", "ana")) or 0) == 1
    assert not await redis.exists(lock_key("pair", login_pair("ana", "10.0.0.1")))

    await auth.directory.disable("ana", disabled=False)
    assert await auth.signed_out_reason(cookie) is None
    assert await auth.login("ana", "pw", "10.0.0.1") is not None


async def test_a_new_password_signs_out_without_a_reason(redis: aioredis.Redis) -> None:
    auth = await _auth(redis)
    found = await auth.login("ana", "pw", "10.0.0.1")
    assert found is not None
    await auth.directory.set_password("ana", "new")
    await auth.end_sessions("ana")
    assert await auth.signed_out_reason(auth.cookie_value(found[1].id)) is None
