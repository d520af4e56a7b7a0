import pytest
import redis.asyncio as aioredis

from handoff import keys
from handoff.agents import Agent, AgentDirectory, AgentError, check_password, hash_password
from handoff.presence import Presence
from tests.handoff.queue_helpers import T0


def test_password_hash_is_salted_self_describing_and_checks() -> None:
    a, b = hash_password("s3cret"), hash_password("s3cret")
    assert a != b and a.startswith("scrypt$16384$8$1$")
    assert check_password("s3cret", a) and not check_password("s3cret!", a)
    assert not check_password("s3cret", "md5$abc") and not check_password("x", "garbage")


async def test_add_get_verify_update_disable(redis: aioredis.Redis) -> None:
    d = AgentDirectory(redis)
    ana = Agent("ana", ("general", "billing"), tier=2, role="agent", capacity=4, display_name="Ana P.")
    await d.add(ana, "pw-ana")
    assert await d.get("ana") == ana
    stored = await redis.hget(keys.agent("ana"), "password")
    assert stored and "pw-ana" not in stored
    with pytest.raises(AgentError):
        await d.add(ana, "again")
    assert await d.verify("ana", "pw-ana") == ana
    assert await d.verify("ana", "wrong") is None and await d.verify("nobody", "pw") is None
    assert await d.verify("BAD NAME", "pw") is None
    await d.update(Agent("ana", ("general",), tier=3, role="supervisor"))
    assert (await d.get("ana")).role == "supervisor"  # type: ignore[union-attr]
    assert await d.verify("ana", "pw-ana") is not None  # the password survives an update
    await d.disable("ana")
    assert await d.verify("ana", "pw-ana") is None
    await d.set_password("ana", "new")
    await d.disable("ana", False)
    assert await d.verify("ana", "new") is not None
    await d.add(Agent("bob", ("returns",)), "pw")
    assert [a.name for a in await d.all()] == ["ana", "bob"]
    with pytest.raises(AgentError):
        await d.update(Agent("zed", ("general",)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "Ana"},
        {"name": "a b"},
        {"tier": 0},
        {"tier": 4},
        {"role": "boss"},
        {"capacity": 0},
        {"departments": ("a|b",)},
    ],
)
def test_invalid_agents_are_refused(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"name": "ana", "departments": ("general",)}
    with pytest.raises(AgentError):
        Agent(**{**base, **kwargs})  # type: ignore[arg-type]


def test_who_may_take_which_queue() -> None:
    t2 = Agent("ana", ("billing",), tier=2)
    assert t2.may_take("billing", 1) and t2.may_take("billing", 2)
    assert not t2.may_take("billing", 3) and not t2.may_take("general", 1)
    boss = Agent("sam", ("general",), tier=1, role="supervisor")
    assert boss.may_take("billing", 3) and boss.sees_all
    assert t2.queues([("billing", 1), ("billing", 3), ("general", 1)]) == [("billing", 1)]


async def test_presence_online_away_offline_with_ttl(redis: aioredis.Redis) -> None:
    p = Presence(redis, ttl_s=30)
    await p.heartbeat("ana", now=T0)
    await p.heartbeat("bob", "away", now=T0)
    assert await p.status("ana", now=T0 + 1000) == "online"
    assert await p.status("bob", now=T0 + 1000) == "away"
    assert await p.status("cat", now=T0) == "offline"
    assert await p.online(now=T0 + 1000) == ["ana"]
    assert await p.status("ana", now=T0 + 30_001) == "offline"  # heartbeat lapsed
    await p.heartbeat("ana", now=T0 + 25_000)
    assert await p.online(now=T0 + 50_000) == ["ana"]
    await p.heartbeat("ana", "offline", now=T0 + 50_000)
    assert await p.status("ana", now=T0 + 50_001) == "offline" and await p.online(now=T0 + 50_001) == []
