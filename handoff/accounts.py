"""Managing agents: the one implementation behind `relevo agent` and the admin page (/admin, /api/agents).

Whoever asks (a shell on the server, an admin in a browser), a disabled agent is signed out everywhere
and their API tokens revoked, a new password does the same, and the same rules hold for names,
departments and passwords.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from typing import Any

from handoff.agents import Agent, AgentDirectory, AgentError, NoSuchAgent, check_new_password
from handoff.auth import ConsoleAuth
from handoff.presence import Presence
from handoff.queues import HandoffQueues

logger = logging.getLogger(__name__)

# What `relevo agent set` and POST /api/agents/{name} may change (disabled has calls of its own).
CHANGEABLE = ("display_name", "departments", "tier", "role", "capacity")


class AgentInUse(AgentError):
    """The agent may not be deleted yet: still enabled, or still holding conversations."""


@dataclass(frozen=True)
class SignedOut:
    """What signing an agent out everywhere ended."""

    sessions: int = 0
    tokens: int = 0
    lockout_lifted: bool = False
    given_back: int = 0  # conversations a disabled agent held, back at the front of their queues


def check_departments(departments: Iterable[str], known: Collection[str], where: str = "the handoff rules") -> None:
    """Only departments of the handoff rules: an agent of any other sees no queue, and nothing says why."""
    unknown = [d for d in departments if d not in known]
    if unknown:
        raise AgentError(f"unknown department{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                         f"(known in {where}: {', '.join(sorted(known))})")  # fmt: skip


class AgentAdmin:
    """Add, change, disable, enable, re-password and delete agents, signing them out where that is due."""

    def __init__(self, auth: ConsoleAuth, queues: HandoffQueues | None = None) -> None:
        self.auth = auth
        self.directory: AgentDirectory = auth.directory
        self.queues = queues  # for delete (does the agent still hold conversations?) and disable (give them back)

    async def get(self, name: str) -> Agent:
        agent = await self.directory.get(name)
        if agent is None:
            raise NoSuchAgent(f"agent '{name}' does not exist")
        return agent

    async def add(self, agent: Agent, password: str) -> Agent:
        return await self.directory.add(agent, check_new_password(password))

    async def change(self, name: str, **changes: Any) -> Agent:
        """Change what was given and keep the rest; through the constructor again, so a bad value (a
        capacity of 0, no departments) is refused as at add."""
        unknown = sorted(set(changes) - set(CHANGEABLE))
        if unknown:
            raise AgentError(f"cannot change {', '.join(unknown)} (only {', '.join(CHANGEABLE)})")
        agent = await self.get(name)
        return await self.directory.update(replace(agent, **changes)) if changes else agent

    async def disable(self, name: str) -> SignedOut:
        """Disabled, and signed out at once: their open consoles and scripts stop working now, not at
        their next login. With the queues at hand, what they held goes back to the front of its queue now
        (the customers are told) and they are offline: nobody is there to answer, so neither waits out
        the claim lease."""
        await self.directory.disable(name)
        ended = await self.auth.end_sessions(name)
        revoked = await self.auth.revoke_tokens(name)
        given: list[str] = []
        if self.queues is not None:
            given = await self.queues.release_all(await self.get(name))
            await Presence(self.queues.redis, 0).heartbeat(name, "offline")
        logger.info("agent %s disabled (%d sessions ended, %d tokens revoked, %d conversations given back)",
                    name, ended, revoked, len(given))  # fmt: skip
        return SignedOut(ended, revoked, given_back=len(given))

    async def enable(self, name: str) -> Agent:
        # Tokens revoked at disable stay revoked: a script gets a new one with `relevo agent token`.
        return await self.directory.disable(name, False)

    async def set_password(self, name: str, password: str, *, keep: str = "", lift_lockout: bool = False) -> SignedOut:
        """A new password closes every way in: other sessions (all but `keep`, the browser that changed
        its own) and the API tokens. `lift_lockout`: a reset is usually for someone who locked
        themselves out, so their name may sign in at once; an address lockout stays (it may be an
        attacker's)."""
        await self.directory.set_password(name, check_new_password(password))
        ended = await self.auth.end_sessions(name, keep=keep)
        revoked = await self.auth.revoke_tokens(name)
        lifted = bool(await self.auth.unlock(name=name)) if lift_lockout else False
        logger.info("password of %s changed (%d sessions ended, %d tokens revoked)", name, ended, revoked)
        return SignedOut(ended, revoked, lifted)

    async def delete(self, name: str) -> SignedOut:
        """Remove an agent who is disabled and holds no conversation. Disabled first, because a disabled
        agent can neither claim nor be assigned one (handoff/queues.py): nothing can reach them between
        the check and the removal. The audit stream and the records keep the name as text."""
        if self.queues is None:
            raise RuntimeError("AgentAdmin.delete needs the handoff queues")
        agent = await self.get(name)
        if not agent.disabled:
            raise AgentInUse(f"disable '{name}' before deleting them")
        held = await self.queues.assigned_to(name)
        if held:
            count = f"{len(held)} conversation{'s' if len(held) != 1 else ''}"
            raise AgentInUse(f"'{name}' still holds {count}: a supervisor takes them over, or they go back "
                             "to the queue when the claim lapses")  # fmt: skip
        await self.directory.delete(name)
        # Disabling ended these already; a session or token made since (by a script) ends here too.
        ended = await self.auth.end_sessions(name)
        revoked = await self.auth.revoke_tokens(name)
        return SignedOut(ended, revoked)
