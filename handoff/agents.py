"""Agents: who they are (departments, tier, role, capacity) and their password, kept in Redis."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar, cast

import redis.asyncio as aioredis

from handoff import keys

logger = logging.getLogger(__name__)

Role = Literal["agent", "supervisor", "admin"]
ROLES: tuple[Role, ...] = ("agent", "supervisor", "admin")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_TIER = 3
MAX_CAPACITY = 100
MAX_DISPLAY_NAME_CHARS = 100
# These accounts read transcripts and customers' e-mail addresses: no one-letter or blank password.
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 200
# scrypt cost: about 50 ms and 16 MiB per check on a small server; raise N as hardware allows.
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_LEN = 2**14, 8, 1, 32
# scrypt runs in worker threads, so the event loop serves sockets meanwhile; at most this many at once
# per directory (one per process), so a burst of logins waits here instead of piling up threads and
# 16 MiB each. Two keep a core free for the event loop on a small server; 20 agents signing in at the
# start of a shift then wait about half a second at most.
HASH_CONCURRENCY = 2

T = TypeVar("T")


def _decoded(data: Mapping[Any, Any]) -> dict[str, str]:
    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    return {text(k): text(v) for k, v in data.items()}


class AgentError(ValueError):
    """An agent record is invalid, or the agent exists / does not exist as the call requires."""


class AgentExists(AgentError):
    """An agent of that name is already there."""


class NoSuchAgent(AgentError):
    """No agent of that name."""


def check_new_password(password: str) -> str:
    """The password if it may be set (`relevo agent add|passwd`, the admin page, a self change); else
    AgentError saying why. Kept as typed: spaces at either end are part of it, as at login."""
    if len(password) < MIN_PASSWORD_CHARS or len(password) > MAX_PASSWORD_CHARS or not password.strip():
        raise AgentError(f"a password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, not only spaces")
    return password


def hash_password(password: str) -> str:
    """A self-describing scrypt hash: scrypt$N$r$p$salt$key (base64)."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=SCRYPT_LEN)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, key = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(key)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(want),
            maxmem=256 * 1024 * 1024,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, want)


@dataclass(frozen=True)
class Agent:
    name: str
    departments: tuple[str, ...]
    tier: int = 1
    role: Role = "agent"
    capacity: int = 3
    display_name: str = ""
    disabled: bool = False

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name):
            raise AgentError(
                f"agent name '{self.name}' may hold lower-case letters, digits, '-', '_', '.' (64 at most)"
            )
        if not 1 <= self.tier <= MAX_TIER:
            raise AgentError(f"agent '{self.name}': tier must be 1 to {MAX_TIER}, got {self.tier}")
        if self.role not in ROLES:
            raise AgentError(
                f"agent '{self.name}': role must be one of {', '.join(ROLES)}, got {self.role!r}"
            )
        if not 1 <= self.capacity <= MAX_CAPACITY:
            raise AgentError(
                f"agent '{self.name}': capacity must be 1 to {MAX_CAPACITY}, got {self.capacity}"
            )
        if any(keys.SEP in d or ":" in d or not d for d in self.departments):
            raise AgentError(f"agent '{self.name}': bad department name in {self.departments!r}")

    @property
    def sees_all(self) -> bool:
        """Supervisors and admins may take conversations from every queue."""
        return self.role in ("supervisor", "admin")

    @property
    def label(self) -> str:
        return self.display_name or self.name

    def may_take(self, department: str, tier: int) -> bool:
        """An agent takes its departments' queues at its tier or below; supervisors see all."""
        return self.sees_all or (department in self.departments and tier <= self.tier)

    def queues(self, all_queues: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
        return [(d, t) for d, t in all_queues if self.may_take(d, t)]

    def to_hash(self) -> dict[str, str]:
        return {
            "name": self.name,
            "display_name": self.display_name,
            "departments": ",".join(self.departments),
            "tier": str(self.tier),
            "role": self.role,
            "capacity": str(self.capacity),
            "disabled": "1" if self.disabled else "0",
        }

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Agent:
        return cls(
            name=data["name"],
            display_name=data.get("display_name", ""),
            departments=tuple(d for d in data.get("departments", "").split(",") if d),
            tier=int(data.get("tier", "1")),
            role=cast(Role, data.get("role", "agent")),
            capacity=int(data.get("capacity", "3")),
            disabled=data.get("disabled") == "1",
        )


class AgentDirectory:
    """Agent records in Redis: add, update, look up, check a password."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._hashing = asyncio.Semaphore(HASH_CONCURRENCY)

    async def _hashed(self, work: Callable[[], T]) -> T:
        """`work` (a scrypt hash or check) in a worker thread: hashlib releases the GIL while it runs."""
        async with self._hashing:
            return await asyncio.to_thread(work)

    async def add(self, agent: Agent, password: str) -> Agent:
        if not password:
            raise AgentError(f"agent '{agent.name}': a password is required")
        hashed = await self._hashed(lambda: hash_password(password))
        record: dict[Any, Any] = {**agent.to_hash(), "password": hashed}
        if not await self.redis.hsetnx(keys.agent(agent.name), "name", agent.name):
            raise AgentExists(f"agent '{agent.name}' already exists")
        await self.redis.hset(keys.agent(agent.name), mapping=record)
        await self.redis.sadd(keys.AGENTS, agent.name)
        logger.info(
            "agent %s added (%s, tier %d, %s)",
            agent.name,
            agent.role,
            agent.tier,
            ",".join(agent.departments),
        )
        return agent

    async def update(self, agent: Agent) -> Agent:
        """Replace an agent's record, keeping its password."""
        if not await self.redis.exists(keys.agent(agent.name)):
            raise NoSuchAgent(f"agent '{agent.name}' does not exist")
        fields: dict[Any, Any] = dict(agent.to_hash())
        await self.redis.hset(keys.agent(agent.name), mapping=fields)
        return agent

    async def set_password(self, name: str, password: str) -> None:
        if not password:
            raise AgentError(f"agent '{name}': a password is required")
        if not await self.redis.exists(keys.agent(name)):
            raise NoSuchAgent(f"agent '{name}' does not exist")
        hashed = await self._hashed(lambda: hash_password(password))
        await self.redis.hset(keys.agent(name), "password", hashed)

    async def disable(self, name: str, disabled: bool = True) -> Agent:
        agent = await self.get(name)
        if agent is None:
            raise NoSuchAgent(f"agent '{name}' does not exist")
        return await self.update(replace(agent, disabled=disabled))

    async def delete(self, name: str) -> bool:
        """Remove the record and the name from the directory; False when there was none. What the agent
        did stays in the audit stream and the records, which keep the name as text."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.agent(name))
        pipe.srem(keys.AGENTS, name)
        removed, _ = await pipe.execute()
        if removed:
            logger.info("agent %s deleted", name)
        return bool(removed)

    async def get(self, name: str) -> Agent | None:
        data = _decoded(await self.redis.hgetall(keys.agent(name)))
        return Agent.from_hash(data) if data else None

    async def all(self) -> list[Agent]:
        names = sorted(_decoded({n: n for n in await self.redis.smembers(keys.AGENTS)}))
        found = [await self.get(n) for n in names]
        return [a for a in found if a is not None]

    async def verify(self, name: str, password: str) -> Agent | None:
        """The agent if the password is right and the agent is enabled, else None."""
        agent = await self.check(name, password)
        return agent if agent is not None and not agent.disabled else None

    async def check(self, name: str, password: str) -> Agent | None:
        """The agent if the password is right, disabled or not (the login tells a disabled agent
        why they cannot sign in, but only once they gave the right password); else None."""
        data = _decoded(await self.redis.hgetall(keys.agent(name))) if NAME_RE.match(name) else {}
        if not data:
            # Same work as a real check, so timing does not tell which names exist.
            await self._hashed(lambda: check_password(password, _dummy_hash()))
            return None
        stored = data.get("password", "")
        ok = await self._hashed(lambda: check_password(password, stored))
        return Agent.from_hash(data) if ok else None


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(8))
