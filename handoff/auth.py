"""Console authentication: signed session cookies kept in Redis, CSRF tokens, bearer tokens, lockout."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Literal, cast

import redis.asyncio as aioredis

from handoff.agents import NAME_RE, Agent, AgentDirectory, Role
from handoff.keys import (
    CONSOLE,
    TOKENS,
    agent_sessions_key,
    ended_session_key,
    failures_key,
    lock_key,
    login_pair,
    session_key,
)

logger = logging.getLogger(__name__)

COOKIE = "relevo_agent"
CSRF_HEADER = "X-Relevo-CSRF"
SESSION_TTL_S = 12 * 3600
# Login lockout, counted as the OWASP Authentication Cheat Sheet advises: against the account, not
# mainly against the source address, which a whole office shares behind one NAT. Within
# FAILURE_WINDOW_S of the first failure, each limit reached refuses (429) for LOCKOUT_S:
# - "pair", one login name at one client address: MAX_FAILURES, the tight limit for someone's typos;
#   it locks that person at that address only, never their colleagues there.
# - "name", one login name from any address: MAX_NAME_FAILURES. Tight too (one account's password is
#   guessed no faster from many addresses), and twice the pair's, so one person's typos at one desk
#   (stopped at MAX_FAILURES by their pair) never lock their name everywhere.
# - "ip", one client address over every name: MAX_ADDRESS_FAILURES, much higher, so an office's
#   agents each mistyping now and then do not lock each other out, while one address guessing across
#   many names is stopped after about six names' worth of tries.
MAX_FAILURES = 5
MAX_NAME_FAILURES = 10
MAX_ADDRESS_FAILURES = 30
FAILURE_WINDOW_S = 15 * 60
LOCKOUT_S = 15 * 60
TOKEN_PREFIX = "rlv_"
LOCK_KINDS = ("pair", "name", "ip")
FAILURE_LIMITS: dict[str, int] = {"pair": MAX_FAILURES, "name": MAX_NAME_FAILURES, "ip": MAX_ADDRESS_FAILURES}
ROLE_RANK: dict[str, int] = {"agent": 1, "supervisor": 2, "admin": 3}

def client_address(remote: str | None, forwarded_for: str, trusted: tuple[str, ...]) -> str:
    """The client's address: the socket's, or behind a trusted proxy the nearest untrusted hop.

    Walks X-Forwarded-For from the right, because only the hops our own proxies appended can be
    believed; anything further left was written by the client.
    """
    address = remote or ""
    if address not in trusted:
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if hop not in trusted:
            return hop[:64]
    return address


def role_allows(role: str, required: Role) -> bool:
    return ROLE_RANK.get(role, 0) >= ROLE_RANK[required]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class LockedOut(Exception):
    """Too many failed logins for this name, this name at this address, or this address: try again later."""


class AccountDisabled(Exception):
    """The right password of a disabled agent: the login page says so (never for a wrong password)."""


@dataclass(frozen=True)
class ConsoleSession:
    id: str
    agent: str
    csrf: str
    via: Literal["cookie", "bearer"] = "cookie"


class ConsoleAuth:
    """Issues and checks console sessions and script tokens."""

    def __init__(self, redis: aioredis.Redis, secret: bytes, directory: AgentDirectory,
                 ttl_s: int = SESSION_TTL_S) -> None:  # fmt: skip
        if len(secret) < 16:
            raise ValueError("the console secret must be at least 16 bytes")
        self.redis = redis
        self._secret = hashlib.sha256(b"relevo-console:" + secret).digest()
        self.directory = directory
        self.ttl_s = ttl_s

    # -- cookies -------------------------------------------------------------------------------

    def _mac(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()

    def cookie_value(self, session_id: str) -> str:
        return f"{session_id}.{self._mac(session_id)}"

    def session_id(self, cookie: str) -> str | None:
        sid, _, mac = cookie.partition(".")
        if not sid or len(cookie) > 200 or not sid.isalnum():
            return None
        return sid if hmac.compare_digest(mac, self._mac(sid)) else None

    # -- login ---------------------------------------------------------------------------------

    @staticmethod
    def _counted(name: str, address: str) -> list[tuple[str, str]]:
        """The (kind, who) a login attempt counts against, in LOCK_KINDS order."""
        return [("pair", login_pair(name, address)), ("name", name), ("ip", address)]

    async def _locked(self, name: str, address: str) -> bool:
        found = await self.redis.exists(*(lock_key(kind, who) for kind, who in self._counted(name, address)))
        return int(found) > 0

    async def _failed(self, name: str, address: str) -> None:
        counted = self._counted(name, address)
        pipe = self.redis.pipeline(transaction=True)
        for kind, who in counted:
            # The window starts at the first failure (SET NX EX: EXPIRE NX needs Redis 7).
            pipe.set(failures_key(kind, who), 0, nx=True, ex=FAILURE_WINDOW_S)
            pipe.incr(failures_key(kind, who))
        counts = (await pipe.execute())[1::2]
        for (kind, who), count in zip(counted, counts, strict=True):
            if int(count) >= FAILURE_LIMITS[kind]:
                await self.redis.set(lock_key(kind, who), "1", ex=LOCKOUT_S)
                shown = f"name {name} at {address}" if kind == "pair" else f"{kind} {who}"
                logger.warning("console login locked for %s after %d failures", shown, count)

    async def _scan(self, pattern: str) -> set[str]:
        return {str(k) async for k in self.redis.scan_iter(match=pattern, count=500)}

    async def unlock(self, name: str | None = None, address: str | None = None) -> int:
        """Lift login lockouts (`relevo agent unlock`, a new password); returns how many were in force.

        The keys, per kind "pair" (keys.login_pair: a login name at a client address), "name" (the
        login as typed, lowercased) and "ip" (the client address):
        - `relevo:console:lock:<kind>:<who>` (keys.lock_key): set for LOCKOUT_S once the kind's limit
          (FAILURE_LIMITS) is reached; while it exists every such login gets 429.
        - `relevo:console:fail:<kind>:<who>` (keys.failures_key): the failures counted in the window
          (FAILURE_WINDOW_S from the first). Deleted too, or the next typo would lock again at once.
        A name lifts that name's lockout and its lockouts at every address; an address lifts that
        address's lockout and every name's lockout there; both lift the two; neither lifts all.
        """
        wanted: list[tuple[str, str]] = []
        patterns: list[str] = []
        if name is not None:
            name = name.strip().lower()[:64]
            wanted.append(("name", name))
            patterns.append(login_pair(name, None))
        if address is not None:
            address = address.strip()[:64] or "unknown"
            wanted.append(("ip", address))
            patterns.append(login_pair(None, address))
        if wanted:
            locks = {lock_key(kind, who) for kind, who in wanted}
            fails = {failures_key(kind, who) for kind, who in wanted}
            for pattern in patterns:
                locks |= await self._scan(lock_key("pair", pattern))
                fails |= await self._scan(failures_key("pair", pattern))
        else:
            locks = await self._scan(f"{CONSOLE}:lock:*")
            fails = await self._scan(f"{CONSOLE}:fail:*")
        lifted = int(await self.redis.delete(*locks)) if locks else 0
        if fails:
            await self.redis.delete(*fails)
        if lifted:
            logger.warning("console login lockouts lifted: %d (%s)", lifted, wanted or "all")
        return lifted

    async def login(self, name: str, password: str, address: str) -> tuple[Agent, ConsoleSession] | None:
        """The agent and a new session, None for bad credentials; LockedOut after too many failures;
        AccountDisabled for the right password of a disabled agent."""
        name = name.strip().lower()[:64]
        address = address[:64] or "unknown"
        if await self._locked(name, address):
            raise LockedOut(name)
        agent = await self.directory.check(name, password) if NAME_RE.match(name) else None
        if agent is None:
            await self._failed(name, address)
            return None
        if agent.disabled:
            # Told only to whoever gave the right password. Not counted as a failure (nothing was
            # guessed wrong, and the person re-enabled later should not find themselves locked out),
            # nor as a success (no counter is reset by an account that cannot sign in).
            logger.info("console login refused: %s is disabled", agent.name)
            raise AccountDisabled(agent.name)
        # Their own counters start again; the address's does not (one good login must not clear the
        # failures of guesses at other names from the same address).
        await self.redis.delete(failures_key("pair", login_pair(name, address)), failures_key("name", name))
        session = ConsoleSession(secrets.token_hex(16), agent.name, secrets.token_urlsafe(24))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(session_key(session.id), mapping={"agent": agent.name, "csrf": session.csrf})
        pipe.expire(session_key(session.id), self.ttl_s)
        pipe.sadd(agent_sessions_key(agent.name), session.id)
        pipe.expire(agent_sessions_key(agent.name), self.ttl_s)
        await pipe.execute()
        logger.info("console login: %s", agent.name)
        return agent, session

    async def logout(self, session: ConsoleSession) -> None:
        if session.via != "cookie":
            return
        await self.redis.delete(session_key(session.id))
        await self.redis.srem(agent_sessions_key(session.agent), session.id)

    async def end_sessions(self, name: str) -> int:
        """Sign an agent out everywhere (disabled, new password).

        Each ended session leaves whose it was (keys.ended_session_key, for the session's lifetime), so
        the login page that console lands on can say "this account is disabled" (signed_out_reason).
        """
        ids = cast(set[str], await self.redis.smembers(agent_sessions_key(name)))
        pipe = self.redis.pipeline(transaction=True)
        for i in ids:
            pipe.set(ended_session_key(i), name, ex=self.ttl_s)
        if ids:
            pipe.delete(*(session_key(i) for i in ids))
        pipe.delete(agent_sessions_key(name))
        await pipe.execute()
        return len(ids)

    async def signed_out_reason(self, cookie: str) -> str | None:
        """Why the sign-in this browser's cookie held no longer works, when the login page may say so:
        "disabled" while its agent is disabled, else None. Only the holder of the signed cookie of
        that agent's own session learns it, so it tells nobody else whether an account is disabled."""
        sid = self.session_id(cookie)
        if sid is None:
            return None
        name = await self.redis.hget(session_key(sid), "agent") or await self.redis.get(ended_session_key(sid))
        agent = await self.directory.get(str(name)) if name and NAME_RE.match(str(name)) else None
        return "disabled" if agent is not None and agent.disabled else None

    # -- checking ------------------------------------------------------------------------------

    async def from_cookie(self, cookie: str) -> ConsoleSession | None:
        sid = self.session_id(cookie)
        if sid is None:
            return None
        data = cast(dict[str, str], await self.redis.hgetall(session_key(sid)))
        if not data.get("agent"):
            return None
        # Sliding expiry: a console in use stays signed in; an idle one signs out after the TTL.
        await self.redis.expire(session_key(sid), self.ttl_s)
        return ConsoleSession(sid, data["agent"], data.get("csrf", ""))

    async def from_bearer(self, token: str) -> ConsoleSession | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        name = await self.redis.hget(TOKENS, hash_token(token))
        return ConsoleSession("", str(name), "", via="bearer") if name else None

    async def agent_of(self, session: ConsoleSession) -> Agent | None:
        """The session's agent as it is now (None when deleted or disabled since)."""
        agent = await self.directory.get(session.agent)
        return agent if agent is not None and not agent.disabled else None

    # -- tokens --------------------------------------------------------------------------------

    async def new_token(self, name: str) -> str:
        """A bearer token for scripts; only its hash is stored, so it is shown once."""
        if await self.directory.get(name) is None:
            raise LookupError(f"agent '{name}' does not exist")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        await self.redis.hset(TOKENS, hash_token(token), name)
        return token

    async def revoke_tokens(self, name: str) -> int:
        found = cast(dict[str, str], await self.redis.hgetall(TOKENS))
        mine = [h for h, owner in found.items() if owner == name]
        if mine:
            await self.redis.hdel(TOKENS, *mine)
        return len(mine)
