"""Console authentication: signed session cookies kept in Redis, CSRF tokens, bearer tokens, lockout."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from aiohttp import web

from bot.settings import ServerSettings
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
from handoff.login_log import FailedLogins, shown

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

# Each attempt takes its place in the three failure counters BEFORE its password is checked, and is
# refused if that place is over a limit: a check made first and a count made after the slow hash would
# let a burst of concurrent guesses all pass the check. A place is given back when the attempt turns
# out not to be a failure (RELEASE_LUA).
# KEYS: the lock keys, then the failure counters, both in LOCK_KINDS order. ARGV: the window (s), then
# the limits. Returns each counter's count with this attempt, or {} when refused.
RESERVE_LUA = """
local n = #KEYS / 2
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {} end
end
local counts = {}
for i = 1, n do
  counts[i] = redis.call('INCR', KEYS[n + i])
  if counts[i] == 1 then redis.call('EXPIRE', KEYS[n + i], ARGV[1]) end
end
for i = 1, n do
  if counts[i] > tonumber(ARGV[1 + i]) then
    for j = 1, n do
      if redis.call('DECR', KEYS[n + j]) <= 0 then redis.call('DEL', KEYS[n + j]) end
    end
    return {}
  end
end
return counts
"""
# KEYS: failure counters to give a place back to. A counter whose window ended meanwhile is left
# alone (a DECR would recreate it at -1 with no expiry); one back at zero goes, so the next failure
# starts a window of its own.
RELEASE_LUA = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('DECR', KEYS[i]) <= 0 then
    redis.call('DEL', KEYS[i])
  end
end
return 0
"""


# Misconfigurations seen on every request are logged once per process, per kind.
_warned: set[str] = set()


def _warn_once(kind: str, message: str, *args: object) -> None:
    if kind not in _warned:
        _warned.add(kind)
        logger.warning(message, *args)


def client_address(remote: str | None, forwarded_for: str, trusted: tuple[str, ...]) -> str:
    """The client's address: the socket's, or behind a trusted proxy the nearest untrusted hop.

    Walks X-Forwarded-For from the right, because only the hops our own proxies appended can be
    believed; anything further left was written by the client.
    """
    address = remote or ""
    if address not in trusted:
        if forwarded_for:
            # Behind a proxy that is not listed, every client shares the proxy's address, so 30 bad
            # logins or new widget sessions from anyone lock out or turn away everyone.
            _warn_once(
                "untrusted_proxy",
                "requests from %s carry X-Forwarded-For but %s is not in server.trusted_proxies: if it is "
                "your reverse proxy, list it there, or every client counts as that one address for the "
                "login and new-session limits", address, address,
            )  # fmt: skip
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if hop not in trusted:
            return hop[:64]
    return address


def is_https(request: web.BaseRequest, trusted: tuple[str, ...]) -> bool:
    """Whether the client reached us over HTTPS: directly, or by a TLS-terminating proxy in `trusted`.

    X-Forwarded-Proto is believed only from a trusted proxy, like X-Forwarded-For (client_address).
    Its first value is the scheme the client used when proxies append theirs.
    """
    if request.secure:
        return True
    if (request.remote or "") not in trusted:
        return False
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0]
    return proto.strip().lower() == "https"


def same_origin(origin: str | None, request: web.BaseRequest, trusted: tuple[str, ...]) -> bool:
    """Whether a browser's Origin is this server as the browser reached it: scheme, host and port.

    A client without Origin is not a browser page (a script with a token, a widget test): nothing to
    check. The scheme counts too: a page served over plain HTTP is not the HTTPS site of the same name.
    """
    if origin is None:
        return True
    parts = urlsplit(origin.lower())
    scheme = "https" if is_https(request, trusted) else "http"
    same_host = bool(request.host) and parts.netloc == request.host.lower()
    if same_host and parts.scheme == "https" and scheme == "http":
        # A TLS-terminating proxy left out of trusted_proxies: every browser request is then refused.
        _warn_once(
            "plain_http_behind_tls",
            "a page at https://... was refused: requests reach Relevo over plain HTTP from %s; if that is "
            "your TLS-terminating proxy, list it in server.trusted_proxies and have it send "
            "X-Forwarded-Proto: https", request.remote or "",
        )  # fmt: skip
    return same_host and parts.scheme == scheme


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
                 ttl_s: int = SESSION_TTL_S, *, server: ServerSettings | None = None) -> None:  # fmt: skip
        if len(secret) < 16:
            raise ValueError("the console secret must be at least 16 bytes")
        server = server or ServerSettings()
        self.redis = redis
        self._secret = hashlib.sha256(b"relevo-console:" + secret).digest()
        self.directory = directory
        self.ttl_s = ttl_s
        self.max_age_s = server.console_session_max_hours * 3600
        self.trusted_proxies = server.trusted_proxies
        self.always_secure = server.console_cookie_secure
        self._reserve = redis.register_script(RESERVE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self.failed_logins = FailedLogins()

    def secure_cookie(self, request: web.BaseRequest) -> bool:
        """Whether the session cookie set in answer to `request` is marked Secure."""
        return self.always_secure or is_https(request, self.trusted_proxies)

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

    async def _reserved(self, name: str, address: str) -> list[int] | None:
        """This attempt's count in each of its failure counters (LOCK_KINDS order), counted as a failure
        until released; None when a lockout is in force or a limit is already taken up."""
        counted = self._counted(name, address)
        keys = [lock_key(kind, who) for kind, who in counted] + [failures_key(kind, who) for kind, who in counted]
        limits = [FAILURE_LIMITS[kind] for kind, _ in counted]
        counts = await self._reserve(keys=keys, args=[FAILURE_WINDOW_S, *limits])
        return [int(c) for c in counts] if counts else None

    async def _failed(self, name: str, address: str, counts: list[int]) -> None:
        """Lock what this failure's place brought to its limit. The places before it include attempts
        still being checked: when one of those turns out right it signs in, but the lock stays."""
        for (kind, who), count in zip(self._counted(name, address), counts, strict=True):
            if count >= FAILURE_LIMITS[kind]:
                await self.redis.set(lock_key(kind, who), "1", ex=LOCKOUT_S)
                locked = f"name {shown(name)} at {shown(address)}" if kind == "pair" else f"{kind} {shown(who)}"
                logger.warning("console login locked for %s after %d failures", locked, count)

    async def _scan(self, pattern: str) -> set[str]:
        return {str(k) async for k in self.redis.scan_iter(match=pattern, count=500)}

    async def locked_names(self) -> set[str]:
        """The login names whose lockouts are in force: a "name" lock, or a "pair" lock of the name at one
        address (an address's own "ip" lock is nobody's name); one SCAN of the lock keys."""
        by_name, by_pair = lock_key("name", ""), lock_key("pair", "")
        names: set[str] = set()
        for key in await self._scan(lock_key("*", "*")):
            if key.startswith(by_name):
                names.add(key[len(by_name) :])
            elif key.startswith(by_pair):
                names.add(unquote(key[len(by_pair) :].split(":", 1)[0]))  # login_pair: "name:address"
        return names

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

    async def _attempt(self, name: str, password: str, address: str) -> tuple[str, str, Agent | None]:
        """One counted password attempt, of a login or of a password change: the name and address as
        counted, and the agent when the password is right (else it is counted as a failure). LockedOut
        while a lockout is in force."""
        name = name.strip().lower()[:64]
        address = address[:64] or "unknown"
        counts = await self._reserved(name, address)
        if counts is None:
            raise LockedOut(name)
        # Should the check fail with an error, the attempt stays counted as a failure: the safe side.
        agent = await self.directory.check(name, password) if NAME_RE.match(name) else None
        if agent is None:
            self.failed_logins.failed(name, address)
            await self._failed(name, address, counts)
        return name, address, agent

    async def login(self, name: str, password: str, address: str) -> tuple[Agent, ConsoleSession] | None:
        """The agent and a new session, None for bad credentials; LockedOut after too many failures;
        AccountDisabled for the right password of a disabled agent."""
        name, address, agent = await self._attempt(name, password, address)
        if agent is None:
            return None
        own = [failures_key("pair", login_pair(name, address)), failures_key("name", name)]
        if agent.disabled:
            # Told only to whoever gave the right password. Not counted as a failure (nothing was
            # guessed wrong, and the person re-enabled later should not find themselves locked out),
            # nor as a success (no counter is reset by an account that cannot sign in).
            await self._release(keys=[*own, failures_key("ip", address)])
            logger.info("console login refused: %s is disabled", agent.name)
            raise AccountDisabled(agent.name)
        # Their own counters start again; the address's only gets this attempt's place back (one good
        # login must not clear the failures of guesses at other names from the same address).
        await self.redis.delete(*own)
        await self._release(keys=[failures_key("ip", address)])
        session = ConsoleSession(secrets.token_hex(16), agent.name, secrets.token_urlsafe(24))
        await self._forget_expired(agent.name)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(session_key(session.id), mapping={
            "agent": agent.name, "csrf": session.csrf, "created": str(int(time.time()))})  # fmt: skip
        pipe.expire(session_key(session.id), min(self.ttl_s, self.max_age_s))
        pipe.sadd(agent_sessions_key(agent.name), session.id)
        pipe.expire(agent_sessions_key(agent.name), self._index_ttl_s)
        await pipe.execute()
        logger.info("console login: %s", agent.name)
        return agent, session

    @property
    def _index_ttl_s(self) -> int:
        """The agent's session index outlives every session it lists: none is given more than this."""
        return max(self.ttl_s, self.max_age_s)

    async def _forget_expired(self, name: str) -> None:
        """Drop the ids of sessions that expired from the agent's index, which a console in daily use
        keeps alive: it would otherwise gather one dead id per sign-in."""
        ids = sorted(cast(set[str], await self.redis.smembers(agent_sessions_key(name))))
        if not ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for i in ids:
            pipe.exists(session_key(i))
        dead = [i for i, alive in zip(ids, await pipe.execute(), strict=True) if not alive]
        if dead:
            await self.redis.srem(agent_sessions_key(name), *dead)

    async def logout(self, session: ConsoleSession) -> None:
        if session.via != "cookie":
            return
        await self.redis.delete(session_key(session.id))
        await self.redis.srem(agent_sessions_key(session.agent), session.id)

    async def end_sessions(self, name: str, keep: str = "") -> int:
        """Sign an agent out everywhere (disabled, new password), but for the session `keep` (the
        browser that changed its own password stays signed in).

        Each ended session leaves whose it was (keys.ended_session_key, for the session's lifetime), so
        the login page that console lands on can say "this account is disabled" (signed_out_reason).
        """
        ids = cast(set[str], await self.redis.smembers(agent_sessions_key(name))) - {keep}
        pipe = self.redis.pipeline(transaction=True)
        for i in ids:
            pipe.set(ended_session_key(i), name, ex=self.ttl_s)
        if ids:
            pipe.delete(*(session_key(i) for i in ids))
            pipe.srem(agent_sessions_key(name), *ids)
        if not keep:
            pipe.delete(agent_sessions_key(name))
        await pipe.execute()
        return len(ids)

    async def confirm_password(self, name: str, password: str, address: str) -> bool:
        """Whether `password` is the agent's own (a password change asks for the current one), counted
        as a login is: a wrong one is a failed login of that name at that address, so a console left
        open is no way round the lockout. LockedOut while a lockout is in force."""
        name, address, agent = await self._attempt(name, password, address)
        if agent is None:
            return False
        counted = [failures_key(kind, who) for kind, who in self._counted(name, address)]
        await self._release(keys=counted)
        return True

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
        # Sliding expiry: a console in use stays signed in; an idle one signs out after the TTL. Never
        # past max_age_s from the login, though, so a cookie kept busy does not live for ever. A session
        # from before that limit (no "created") is not known to the index end_sessions reads: it ends.
        left = int(data.get("created") or 0) + self.max_age_s - int(time.time())
        if left <= 0:
            await self.redis.delete(session_key(sid))
            return None
        pipe = self.redis.pipeline(transaction=True)
        pipe.expire(session_key(sid), min(self.ttl_s, left))
        # Renewed with the session, in one transaction: the index must not expire while a session it
        # lists lives, or a new password or disable would leave that session signed in.
        pipe.expire(agent_sessions_key(data["agent"]), self._index_ttl_s)
        await pipe.execute()
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
