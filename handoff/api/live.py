"""The live console WebSocket (/api/ws): each agent's socket and this process's hub of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import WSCloseCode, WSMsgType, web

from handoff import keys
from handoff.agents import Agent
from handoff.api.errors import ApiError
from handoff.api.inputs import MAX_BODY, MAX_NAME_CHARS
from handoff.api.state import STATE, ApiState, api_state, authenticate, request_agent
from handoff.api.views import may_view, transcript_item
from handoff.auth import same_origin
from handoff.conversations import LogEntry
from handoff.outage import REDIS as REDIS_OUTAGE
from handoff.outage import REDIS_DOWN
from handoff.service import HandoffService

logger = logging.getLogger(__name__)

WS_HEARTBEAT_S = 30.0
WS_SEND_QUEUE = 500
# How often a console socket checks that its sign-in still holds (logout, new password, disabled agent,
# revoked token): what an agent may no longer read stops reaching them within this time.
SESSION_CHECK_S = 10.0
SIGNED_OUT = 4401  # close code of a console socket whose sign-in ended
RIGHTS_CHANGED = 4409  # close code of a console socket whose agent's role, tier or departments changed
XREAD_BLOCK_MS = 1000


@dataclass(eq=False)
class AgentSocket:
    ws: web.WebSocketResponse
    agent: Agent
    queue: asyncio.Queue[str]
    current: Callable[[], Awaitable[Agent | None]]  # the agent as now; None once signed out or disabled

    def send(self, frame: dict[str, Any]) -> bool:
        try:
            self.queue.put_nowait(json.dumps(frame, ensure_ascii=False))
            return True
        except asyncio.QueueFull:
            return False

    def sees(self, event: dict[str, Any]) -> bool:
        a = self.agent
        if a.sees_all or event.get("agent") == a.name or a.name in (event.get("from"), event.get("to")):
            return True
        try:
            return a.may_take(str(event.get("department", "")), int(event.get("tier") or 0))
        except (TypeError, ValueError):
            return False


def _conv_of_stream(stream: str) -> str:
    return stream[stream.index("{") + 1 : stream.index("}")]


class LiveHub:
    """This process's console sockets: handoff events and the transcripts they watch, fanned out."""

    def __init__(self, service: HandoffService) -> None:
        self.service = service
        self.sockets: set[AgentSocket] = set()
        self.watchers: dict[str, set[AgentSocket]] = {}
        self.cursor: dict[str, str] = {}
        self.changed = asyncio.Event()
        self.subscribed = asyncio.Event()
        self._adding: set[asyncio.Task[None]] = set()

    def add(self, sock: AgentSocket) -> None:
        self.sockets.add(sock)

    def drop(self, sock: AgentSocket) -> None:
        self.sockets.discard(sock)
        for cid in [c for c, held in self.watchers.items() if sock in held]:
            self.watchers[cid].discard(sock)
            if not self.watchers[cid]:
                del self.watchers[cid]
                self.cursor.pop(cid, None)

    async def watch(self, sock: AgentSocket, conversation_id: str) -> None:
        if conversation_id not in self.cursor:
            last = await self.service.redis.xrevrange(keys.conv_log(conversation_id), count=1)
            self.cursor[conversation_id] = str(last[0][0]) if last else "0-0"
        self.watchers.setdefault(conversation_id, set()).add(sock)
        self.changed.set()

    def watch_for(self, agent_name: str, conversation_id: str) -> None:
        """Stream a conversation to every socket of this agent on this process (after a claim)."""
        for sock in [s for s in self.sockets if s.agent.name == agent_name]:
            self._later(self.watch(sock, conversation_id))

    def deliver_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "presence":
            frame = {"type": "presence", "agent": event.get("agent"), "state": event.get("state")}
            for sock in self.sockets:
                sock.send(frame)
            return
        frame = {
            "type": "queue", "event": event.get("event"), "conversation_id": event.get("conv"),
            "department": event.get("department"), "tier": event.get("tier"), "state": event.get("state"),
            "agent": event.get("agent") or None, "priority": event.get("priority"), "from": event.get("from"),
            "to": event.get("to"), "ts": event.get("ts"),
        }  # fmt: skip
        if frame["agent"]:
            # Consoles say who in words ("Ana claimed this conversation"), not by login name.
            label = self.service.known_label(str(frame["agent"]))
            frame["agent_label"] = label or frame["agent"]
            if label is None:
                self._later(self._learn_labels())
        for sock in list(self.sockets):
            if sock.sees(event):
                sock.send(frame)
        if event.get("event") in ("claimed", "assigned") and event.get("agent"):
            self.watch_for(str(event["agent"]), str(event.get("conv", "")))
        cid = str(event.get("conv", ""))
        if cid in self.watchers:
            # Claimed by someone else, transferred, escalated, given back: a watcher may have lost the
            # right to read it, and must stop getting its messages.
            self._later(self._recheck(cid))

    async def _learn_labels(self) -> None:
        with contextlib.suppress(Exception):  # the store is away: login names until it is back
            await self.service.agent_list()

    def _later(self, step: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(step)
        self._adding.add(task)
        task.add_done_callback(self._adding.discard)

    async def _recheck(self, conversation_id: str) -> None:
        for sock in list(self.watchers.get(conversation_id, ())):
            try:
                allowed = await may_view(self.service, sock.agent, conversation_id)
            except Exception as exc:
                if not REDIS_OUTAGE.failed("console recheck", exc):
                    logger.exception("console: could not recheck %s for %s", conversation_id, sock.agent.name)
                allowed = False  # unsure: stop sending; the console can ask to watch again
            if not allowed:
                self.unwatch(sock, conversation_id)
                sock.send({"type": "unwatched", "conversation_id": conversation_id})

    def unwatch(self, sock: AgentSocket, conversation_id: str) -> None:
        held = self.watchers.get(conversation_id)
        if held is None:
            return
        held.discard(sock)
        if not held:
            del self.watchers[conversation_id]
            self.cursor.pop(conversation_id, None)

    async def run_events(self) -> None:
        delay = 0.1
        while True:
            pubsub = self.service.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.EVENTS)
                self.subscribed.set()
                REDIS_OUTAGE.ok()
                delay = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    with contextlib.suppress(ValueError):
                        event = json.loads(message["data"])
                        if isinstance(event, dict):
                            self.deliver_event(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not REDIS_OUTAGE.failed("console events", exc):
                    logger.exception("console events: subscription failed; retrying in %.1fs", delay)
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def run_transcripts(self) -> None:
        while True:
            if not self.cursor:
                self.changed.clear()
                await self.changed.wait()
                continue
            streams: dict[Any, Any] = {keys.conv_log(c): i for c, i in self.cursor.items()}
            try:
                found = await self.service.redis.xread(streams, count=100, block=XREAD_BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not REDIS_OUTAGE.failed("console transcripts", exc):
                    logger.exception("console transcripts: read failed")
                await asyncio.sleep(1.0)
                continue
            REDIS_OUTAGE.ok()
            for stream, entries in cast(list[tuple[str, list[Any]]], found or []):
                self._deliver_entries(_conv_of_stream(stream), entries)

    def _deliver_entries(self, cid: str, entries: list[Any]) -> None:
        for entry_id, fields in entries:
            if cid in self.cursor:
                self.cursor[cid] = str(entry_id)
            item = transcript_item(LogEntry.from_stream(str(entry_id), fields))
            for sock in list(self.watchers.get(cid, ())):
                sock.send({"type": "message", "conversation_id": cid, "message": item})


async def live(request: web.Request) -> web.StreamResponse:
    state, agent = api_state(request), request_agent(request)
    if not same_origin(request.headers.get("Origin"), request, state.auth.trusted_proxies):
        raise ApiError(403, "forbidden", "origin not allowed")
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_S, max_msg_size=MAX_BODY)
    sock = AgentSocket(ws, agent, asyncio.Queue(WS_SEND_QUEUE), current=lambda: _current_agent(request))
    state.hub.add(sock)
    tasks: list[asyncio.Task[None]] = []
    try:
        # The agent's own conversations are watched before the handshake ends: once the client is
        # connected, nothing written to them is missed (frames wait in the queue for the writer).
        for cid in await state.service.queues.assigned_to(agent.name):
            await state.hub.watch(sock, cid)
        await ws.prepare(request)
        tasks += [asyncio.create_task(_write(sock), name=f"console-ws {agent.name}"),
                  asyncio.create_task(_check_sign_in(sock), name=f"console-ws check {agent.name}")]
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                break
            await _client_frame(state, sock, msg.data)
    except REDIS_DOWN as exc:
        if not ws.prepared:
            raise  # the route's guard answers 503
        # Upgraded already: a 503 cannot be sent any more; the console reconnects with backoff.
        REDIS_OUTAGE.failed("console socket", exc)
        with contextlib.suppress(Exception):
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"store unavailable")
    finally:
        state.hub.drop(sock)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return ws


async def _current_agent(request: web.Request) -> Agent | None:
    """The agent the socket's cookie or token signs in now (None: signed out, disabled or deleted)."""
    session = await authenticate(request)
    return None if session is None else await api_state(request).auth.agent_of(session)


def _rights(agent: Agent) -> tuple[str, int, tuple[str, ...]]:
    """What decides which events and conversations a console socket is sent (AgentSocket.sees)."""
    return agent.role, agent.tier, agent.departments


async def _check_sign_in(sock: AgentSocket) -> None:
    while not sock.ws.closed:
        await asyncio.sleep(SESSION_CHECK_S)
        await _close_if_access_changed(sock)


async def _close_if_access_changed(sock: AgentSocket) -> bool:
    try:
        agent = await sock.current()
    except Exception as exc:
        if not REDIS_OUTAGE.failed("console sign-in check", exc):
            logger.exception("console: could not check the sign-in of %s", sock.agent.name)
        return False  # the store is away: keep the socket; the next check decides
    if agent is None:
        logger.info("console socket of %s closed: signed out", sock.agent.name)
        await sock.ws.close(code=SIGNED_OUT, message=b"signed out")
        return True
    if _rights(agent) != _rights(sock.agent):
        # The socket's events and watches were chosen by the old rights: a supervisor made an agent
        # must stop seeing every queue now, not at their next login. The console reloads its page.
        logger.info("console socket of %s closed: their role, tier or departments changed", agent.name)
        await sock.ws.close(code=RIGHTS_CHANGED, message=b"access changed")
        return True
    return False


async def _write(sock: AgentSocket) -> None:
    while True:
        data = await sock.queue.get()
        try:
            await sock.ws.send_str(data)
        except ConnectionError:
            return


async def _client_frame(state: ApiState, sock: AgentSocket, raw: str) -> None:
    try:
        frame = json.loads(raw)
    except ValueError:
        frame = None
    if not isinstance(frame, dict):
        sock.send({"type": "error", "code": "bad_json", "message": "frames must be JSON objects"})
        return
    kind = frame.get("type")
    if kind == "heartbeat":
        if await _close_if_access_changed(sock):
            return  # a disabled or signed-out agent renews no presence and no claim
        presence_state = await state.service.heartbeat(sock.agent)
        sock.send({"type": "heartbeat", "presence": presence_state})
    elif kind == "watch":
        cid = frame.get("conversation_id")
        if not isinstance(cid, str) or len(cid) > MAX_NAME_CHARS or not await may_view(
            state.service, sock.agent, cid
        ):
            sock.send({"type": "error", "code": "forbidden", "message": "not your conversation"})
            return
        await state.hub.watch(sock, cid)
        sock.send({"type": "watching", "conversation_id": cid})
    elif kind == "unwatch":
        cid = frame.get("conversation_id")
        if not isinstance(cid, str) or len(cid) > MAX_NAME_CHARS:
            return
        st = await state.service.queues.state(cid)
        if st is not None and st.agent == sock.agent.name:
            return  # an agent's own conversations keep streaming: their list shows what is new
        state.hub.unwatch(sock, cid)
        sock.send({"type": "unwatched", "conversation_id": cid})
    else:
        sock.send({"type": "error", "code": "unknown_type", "message": "unknown frame type"})


async def live_tasks(app: web.Application) -> AsyncIterator[None]:
    hub = app[STATE].hub
    tasks = [
        asyncio.create_task(hub.run_events(), name="console events"),
        asyncio.create_task(hub.run_transcripts(), name="console transcripts"),
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def close_sockets(app: web.Application) -> None:
    hub = app[STATE].hub
    await asyncio.gather(*(s.ws.close() for s in list(hub.sockets)), return_exceptions=True)
