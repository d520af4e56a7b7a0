"""The supervisor's floor (/api/floor): queues, agents, SLA breaches, the knowledge base's state."""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from handoff import keys
from handoff.api.state import api_state
from handoff.api.views import AT_RISK_SHARE, agent_view, deadline_of
from handoff.presence import now_ms
from handoff.queues import HandoffState
from handoff.service import HandoffService


def _overdue(service: HandoffService, st: HandoffState, now: int) -> list[dict[str, Any]]:
    out = []
    deadline, _ = deadline_of(service, st)
    if deadline and now > deadline:
        out.append({"conversation_id": st.conversation_id, "kind": "first_reply",
                    "overdue_s": (now - deadline) // 1000})
    resolve_by = st.queued_at + service.rules.priority(st.priority).resolution_s * 1000
    if now > resolve_by:
        out.append({"conversation_id": st.conversation_id, "kind": "resolution",
                    "overdue_s": (now - resolve_by) // 1000})
    return out


async def floor(request: web.Request) -> web.StreamResponse:
    service, now = api_state(request).service, now_ms()
    raw = cast(dict[str, str], await service.redis.hgetall(keys.STATES))
    states = [HandoffState.from_json(v) for v in raw.values()]
    rows = []
    for department, tier in service.rules.queues():
        waiting = [s for s in states if s.state == "queued" and s.queue == (department, tier)]
        risk = [deadline_of(service, s) for s in waiting]
        rows.append({
            "department": department, "tier": tier, "length": len(waiting),
            "oldest_wait_s": max(((now - s.queued_at) // 1000 for s in waiting), default=0),
            "breached": sum(1 for d, _ in risk if d and now > d),
            "at_risk": sum(1 for d, span in risk if d and d - span * AT_RISK_SHARE <= now <= d),
        })  # fmt: skip
    agents = []
    for agent in await service.directory.all():
        view = await agent_view(service, agent)
        view["disabled"] = agent.disabled
        view["conversations"] = [s.conversation_id for s in states if s.agent == agent.name]
        agents.append(view)
    breaches = [b for s in states for b in _overdue(service, s, now)]
    # An edit that does not load leaves the bot answering from the version before (and every later edit
    # unread until it is fixed): the supervisor sees it here, not only in the log and /healthz.
    knowledge = service.library.health()
    return web.json_response({"queues": rows, "agents": agents, "breaches": breaches, "knowledge_base": knowledge})
