"""The widget's WebSocket channel: JSON frames <-> Inbound / Outbound / StatusUpdate, nothing more."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from bot.messages import Inbound, Outbound, OutEvent, StatusUpdate, Stored, has_visible_text, well_formed
from bot.ratelimit import RateLimiter, TokenBucket
from bot.sessions import BadSession, Session, SessionSigner
from bot.settings import ServerSettings, Settings
from handoff.auth import client_address, same_origin
from handoff.outage import REDIS as REDIS_OUTAGE

logger = logging.getLogger(__name__)

HEARTBEAT_S = 30.0
HELLO_TIMEOUT_S = 15.0
CLOSE_TIMEOUT_S = 5.0
MAX_ID_CHARS = 100
MAX_VALUE_CHARS = 200  # the engine's limits: refused here rather than cut there
LANGS = frozenset({"en", "es"})
# Frames a slow reader may have waiting before it is dropped; it reconnects and reads history.
SEND_QUEUE = 500
RECENT_IDS = 20
# Engine calls in flight from this channel at once. A turn holds one Redis connection at a time and
# the store's pool (handoff.store.MAX_CONNECTIONS) waits rather than fails when all are busy, but its
# waiters are not served in order (one can starve for seconds under load): turns queue here, in order.
MAX_TURNS_IN_FLIGHT = 48
# Rejected frames in a row before a flooding client is disconnected.
MAX_STRIKES = 50
# Close code of a widget socket from a page whose origin is not allowed (application range 4000-4999):
# the widget stops retrying and says chat is not available on that page.
ORIGIN_REFUSED = 4403
# Origins whose refusal was logged as a warning (the admin's fix named once); later ones go to INFO.
MAX_WARNED_ORIGINS = 100


class ConversationEngine(Protocol):
    """What this channel needs of bot.engine.Engine."""

    async def receive(self, inbound: Inbound) -> Stored: ...
    async def process(self, stored: Stored) -> None: ...
    async def history(self, conversation_key: str, limit: int = 200) -> list[Outbound]: ...
    async def status(self, conversation_key: str) -> StatusUpdate | None: ...
    async def open(self, conversation_key: str, channel: Any, lang: str | None) -> None: ...


class FrameError(Exception):
    """A client frame the protocol refuses; becomes an `error` frame."""

    def __init__(self, code: str, message: str, frame_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_id = frame_id


def error_frame(code: str, message: str, frame_id: str | None = None) -> str:
    data: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if frame_id is not None:
        # Not in the fixed contract, an addition: lets the widget tell which message was refused.
        data["id"] = frame_id
    return json.dumps(data, ensure_ascii=False)


def message_frame(out: Outbound) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "message",
        "id": out.id,
        "from": out.sender,
        "text": out.text,
        "buttons": [{"label": b.label, "value": b.value} for b in out.buttons],
    }
    if out.author:
        frame["author"] = out.author
    if out.lang:
        frame["lang"] = out.lang  # the widget's own words follow the conversation's language
    return frame


def status_frame(status: StatusUpdate) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "status",
        "state": status.state,
        "position": status.position,
        "eta_s": status.eta_s,
    }
    if status.agent:
        frame["agent"] = status.agent
    return frame


# An escaped UTF-16 surrogate, \uD800 to \uDFFF.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(raw: str) -> Any:
    try:
        return orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError, also for nesting too deep
        # orjson refuses a lone surrogate ("\ud83d", half of a pasted emoji) that JavaScript's
        # JSON.stringify writes: the rest of such a frame is fine, so it is read again, leniently.
        if not _SURROGATE_ESCAPE.search(raw):
            raise
    try:
        return _well_formed(json.loads(raw, parse_constant=_no_constant))
    except RecursionError:
        raise ValueError("nested too deep") from None


def _well_formed(data: Any) -> Any:
    if isinstance(data, str):
        return well_formed(data)
    if isinstance(data, list):
        return [_well_formed(v) for v in data]
    if isinstance(data, dict):
        return {well_formed(k): _well_formed(v) for k, v in data.items()}
    return data


def parse_frame(raw: str) -> dict[str, Any]:
    try:
        data = _loads(raw)
    except ValueError:
        raise FrameError("bad_json", "frames must be JSON objects") from None
    if not isinstance(data, dict):
        raise FrameError("bad_json", "frames must be JSON objects")
    if not isinstance(data.get("type"), str):
        raise FrameError("missing_field", "frame has no type")
    return data


def _string(frame: dict[str, Any], name: str, limit: int, frame_id: str | None = None) -> str:
    value = frame.get(name)
    # Only spaces, control or zero-width characters ("\u0000\u200b") say nothing: refused like "".
    if not isinstance(value, str) or not has_visible_text(value):
        message = f"{frame['type']} frame needs a non-empty string '{name}'"
        raise FrameError("missing_field", message, frame_id)
    if len(value) > limit:
        raise FrameError("too_long", f"'{name}' is longer than {limit} characters", frame_id)
    return value


def origin_allowed(origin: str | None, request: web.BaseRequest, server: ServerSettings) -> bool:
    """Browsers always send Origin on a WebSocket: a page of server.allowed_origins, or this server's own."""
    if origin is not None and origin.rstrip("/").lower() in {a.rstrip("/").lower() for a in server.allowed_origins}:
        return True
    return same_origin(origin, request, server.trusted_proxies)


@dataclass(eq=False)
class Connection:
    """One widget socket after its hello."""

    ws: web.WebSocketResponse
    session: Session
    lang: str | None = None
    ready: bool = False
    backlog: list[tuple[str, str]] = field(default_factory=list)  # (event id, frame) before welcome
    # The newest ids the welcome's history carried: a live copy of one arriving just after is dropped.
    recent: frozenset[str] = frozenset()
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(SEND_QUEUE))
    writer: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return f"web:{self.session.id}"


class WebChannel:
    """Holds this process's widget sockets and speaks the widget protocol on them."""

    def __init__(self, engine: ConversationEngine, settings: Settings, signer: SessionSigner) -> None:
        self.engine = engine
        self.settings = settings
        self.signer = signer
        self.limiter = RateLimiter(settings.server.messages_per_second, settings.server.message_burst)
        per_minute = settings.server.new_sessions_per_minute
        self.new_sessions = RateLimiter(per_minute / 60, max(1, int(per_minute)))
        self.sockets: dict[str, set[Connection]] = {}
        self._per_address: dict[str, int] = {}  # sockets open, hello or not
        self._all: set[web.WebSocketResponse] = set()
        self._turns = asyncio.Semaphore(MAX_TURNS_IN_FLIGHT)
        self._warned_origins: set[str | None] = set()
        server = settings.server
        # Worst case a character is twelve bytes of JSON (an emoji escaped as "\\ud83d\\ude00"): a message
        # within max_message_chars always fits; frames above this are closed with 1009.
        self.max_msg_size = server.max_message_chars * 12 + 4096

    # -- sockets ------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """GET /ws."""
        server = self.settings.server
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, request, server):
            return await self._refuse_origin(request, origin)
        address = client_address(request.remote, request.headers.get("X-Forwarded-For", ""),
                                 server.trusted_proxies)
        # Each socket holds memory and, until its hello, a 15 s wait: one address opening hundreds would
        # crowd out everyone else. A customer has a tab or two; an office behind one NAT, a few dozen.
        if server.sockets_per_address and self._per_address.get(address, 0) >= server.sockets_per_address:
            logger.info("refused widget socket: %s has %d open", address, self._per_address[address])
            raise web.HTTPTooManyRequests(text="too many chat connections from this address")
        ws = web.WebSocketResponse(
            timeout=CLOSE_TIMEOUT_S, heartbeat=HEARTBEAT_S, max_msg_size=self.max_msg_size, compress=False
        )
        self._per_address[address] = self._per_address.get(address, 0) + 1
        try:
            await ws.prepare(request)
            await self._run(ws, address)
        finally:
            left = self._per_address.pop(address) - 1
            if left:
                self._per_address[address] = left
        return ws

    async def _refuse_origin(self, request: web.Request, origin: str | None) -> web.StreamResponse:
        """A page Relevo does not serve: a browser cannot read an HTTP 403 on a WebSocket (the widget would
        only see the socket fail and retry for ever), so the socket is opened to say why and closed."""
        if origin not in self._warned_origins and len(self._warned_origins) < MAX_WARNED_ORIGINS:
            self._warned_origins.add(origin)
            logger.warning("refused widget socket from origin %r: to put the widget on that page, add %r to "
                           "server.allowed_origins", origin, (origin or "").rstrip("/"))
        else:
            logger.info("refused widget socket from origin %r", origin)
        ws = web.WebSocketResponse(timeout=CLOSE_TIMEOUT_S, autoping=False, compress=False, max_msg_size=1024)
        await ws.prepare(request)
        with contextlib.suppress(Exception):
            await ws.send_str(error_frame("origin_not_allowed", "chat is not enabled on this site"))
            await ws.close(code=ORIGIN_REFUSED, message=b"origin not allowed")
        return ws

    async def _run(self, ws: web.WebSocketResponse, address: str) -> None:
        self._all.add(ws)
        conn: Connection | None = None
        try:
            conn = await self._before_hello(ws, address)
            if conn is not None:
                await self._serve(conn)
        except asyncio.CancelledError:
            raise
        except ConnectionError:
            logger.debug("widget socket went away mid-frame")
        except Exception as exc:
            # Typically the store is unreachable or saturated: the widget comes back with backoff.
            if not REDIS_OUTAGE.failed("widget socket", exc):
                logger.exception("widget socket failed")
            with contextlib.suppress(Exception):
                await ws.send_str(error_frame("unavailable", "the service is busy; reconnecting"))
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"try again later")
        finally:
            self._all.discard(ws)
            if conn is not None:
                self._deregister(conn)

    async def _before_hello(self, ws: web.WebSocketResponse, address: str) -> Connection | None:
        bucket = TokenBucket(self.settings.server.messages_per_second, self.settings.server.message_burst)
        strikes = 0
        while True:
            try:
                msg = await ws.receive(timeout=HELLO_TIMEOUT_S)
            except TimeoutError:
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"hello expected")
                return None
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return None
            try:
                if not bucket.allow():
                    raise FrameError("rate_limited", "too many frames; slow down")
                frame = self._decode(msg)
                if frame["type"] != "hello":
                    raise FrameError("hello_required", "the first frame must be a hello")
                return await self._hello(ws, frame, address)
            except FrameError as exc:
                strikes += 1
                if strikes > MAX_STRIKES:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many bad frames")
                    return None
                await ws.send_str(error_frame(exc.code, exc.message, exc.frame_id or _peek_id(msg)))

    def _decode(self, msg: Any) -> dict[str, Any]:
        if msg.type != WSMsgType.TEXT:
            raise FrameError("bad_json", "frames must be JSON text")
        return parse_frame(msg.data)

    async def _hello(self, ws: web.WebSocketResponse, frame: dict[str, Any], address: str) -> Connection | None:
        token = frame.get("session")
        session: Session | None = None
        if token is not None:
            try:
                session = self.signer.verify(token)
            except BadSession as exc:
                logger.info("widget session refused: %s", exc)
                await ws.send_str(error_frame("bad_session", "session is not valid; a new one was started"))
        # Each new session is a conversation in Redis: a script opening them in a loop would fill it.
        if session is None and not self.new_sessions.allow(address):
            logger.info("too many new widget sessions from %s", address)
            await ws.send_str(error_frame("rate_limited", "too many new conversations from this address; "
                                                          "try again in a minute"))
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many new sessions")
            return None
        # A valid session gets a renewed expiry; anything else a brand-new session, never someone else's.
        session = self.signer.issue(session.id if session else None)
        raw_lang = frame.get("lang")
        lang = raw_lang if isinstance(raw_lang, str) and raw_lang in LANGS else None
        conn = Connection(ws, session, lang)
        # Registered before reading history, so nothing emitted in between is missed (see _welcome).
        self._register(conn)
        try:
            async with self._turns:
                await self.engine.open(conn.key, "web", lang)
                history = await self.engine.history(conn.key, limit=self.settings.conversation.history_limit)
                status = await self.engine.status(conn.key)
            await self._welcome(conn, history, status)
        except Exception:
            self._deregister(conn)
            raise
        return conn

    async def _welcome(self, conn: Connection, history: list[Outbound], status: StatusUpdate | None) -> None:
        frames = [message_frame(out) for out in history]
        # The end of the conversation before this one (after "adiós"): marked, so the widget can show
        # where the new one starts. Ids stay on the server.
        current = history[-1].conversation_id if history else ""
        for out, frame in zip(history, frames, strict=True):
            if out.conversation_id != current:
                frame["earlier"] = True
        welcome = {
            "type": "welcome",
            "session": conn.session.token,
            "history": frames,
            "max_chars": self.settings.server.max_message_chars,
        }
        await conn.ws.send_str(json.dumps(welcome, ensure_ascii=False))
        if status is not None:
            await conn.ws.send_str(json.dumps(status_frame(status), ensure_ascii=False))
        seen = {f["id"] for f in frames}
        conn.recent = frozenset(f["id"] for f in frames[-RECENT_IDS:])
        for event_id, data in conn.backlog:
            if not event_id or event_id not in seen:
                await conn.ws.send_str(data)
        conn.backlog.clear()
        conn.ready = True
        conn.writer = asyncio.create_task(self._write(conn), name=f"ws-writer {conn.key}")

    async def _serve(self, conn: Connection) -> None:
        strikes = 0
        while True:
            msg = await conn.ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            try:
                if not self.limiter.allow(conn.session.id):
                    raise FrameError("rate_limited", "too many messages; slow down", _peek_id(msg))
                await self._frame(conn, self._decode(msg))
                strikes = 0
            except FrameError as exc:
                strikes += 1
                if strikes > MAX_STRIKES:
                    await conn.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many bad frames")
                    return
                # With the id of any frame that has one: the widget sends one message at a time and
                # waits for the answer about it, an error without an id would leave it waiting.
                await conn.ws.send_str(error_frame(exc.code, exc.message, exc.frame_id or _peek_id(msg)))

    async def _frame(self, conn: Connection, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "hello":  # the session and language are fixed for the connection's life
            raise FrameError("hello_repeated", "hello was already received; reconnect to start another session")
        if kind not in ("message", "choose"):
            raise FrameError("unknown_type", f"unknown frame type {kind[:40]!r}")
        client_id = _string(frame, "id", MAX_ID_CHARS)
        if kind == "message":
            text = _string(frame, "text", self.settings.server.max_message_chars, client_id)
            inbound = Inbound(conn.key, "web", "message", text=text, client_id=client_id, lang=conn.lang)
        else:
            value = _string(frame, "value", MAX_VALUE_CHARS, client_id)
            inbound = Inbound(conn.key, "web", "choose", value=value, client_id=client_id, lang=conn.lang)
        try:
            async with self._turns:
                stored = await self.engine.receive(inbound)
        except Exception as exc:
            if not REDIS_OUTAGE.failed("widget message", exc):
                logger.exception("could not store a widget message")
            raise FrameError("unavailable", "the message was not stored; send it again", client_id) from None
        ack = {"type": "ack", "id": client_id, "msg": stored.message_id, "duplicate": stored.duplicate}
        await conn.ws.send_frame(orjson.dumps(ack), WSMsgType.TEXT)
        try:
            async with self._turns:
                await self.engine.process(stored)
        except Exception as exc:
            # Stored already: an agent or the idle sweep sees it; the operator gets the traceback of a bug.
            if not REDIS_OUTAGE.failed("widget turn", exc):
                logger.exception("engine failed on message %s of %s", stored.message_id, conn.key)

    async def _write(self, conn: Connection) -> None:
        while True:
            data = await conn.queue.get()
            try:
                await conn.ws.send_str(data)
            except ConnectionError:
                return

    # -- registry and delivery ----------------------------------------------------------------------

    def _register(self, conn: Connection) -> None:
        self.sockets.setdefault(conn.key, set()).add(conn)

    def _deregister(self, conn: Connection) -> None:
        if conn.writer is not None:
            conn.writer.cancel()
        held = self.sockets.get(conn.key)
        if held is not None:
            held.discard(conn)
            if not held:
                del self.sockets[conn.key]

    def deliver(self, event: OutEvent) -> int:
        """Send an engine event to this process's sockets of its conversation; how many got it."""
        if event.channel != "web":
            return 0
        held = self.sockets.get(event.conversation_key)
        if not held:
            return 0
        if isinstance(event, Outbound):
            if event.sender == "customer":
                return 0  # the widget shows its own messages; they come back only in history
            event_id, frame = event.id, message_frame(event)
        else:
            event_id, frame = "", status_frame(event)
        data = orjson.dumps(frame).decode()
        for conn in list(held):
            if not conn.ready:
                conn.backlog.append((event_id, data))
                continue
            if event_id and event_id in conn.recent:
                continue
            try:
                conn.queue.put_nowait(data)
            except asyncio.QueueFull:
                logger.warning("widget socket of %s is not reading; dropped it", conn.key)
                self._deregister(conn)
                asyncio.get_running_loop().create_task(
                    conn.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                )
        return len(held)

    async def pump(self, events: Callable[[], AsyncIterator[OutEvent]]) -> None:
        """Deliver engine events until cancelled; a broken subscription is opened again."""
        delay = 0.1
        while True:
            stream = events()
            try:
                async for event in stream:
                    delay = 0.1
                    try:
                        self.deliver(event)
                    except Exception:
                        logger.exception("could not deliver %r", event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not REDIS_OUTAGE.failed("widget outbox subscription", exc):
                    logger.exception("outbox subscription failed; retrying in %.1f s", delay)
            finally:
                # Unsubscribe now, not when the generator is collected: the store closes right after us.
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close_all(self) -> None:
        """Server shutdown: tell every widget to come back later (it reconnects with backoff)."""
        closing = [ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in self._all]
        # Each close waits for the client's reply (at most CLOSE_TIMEOUT_S): all at once, not in turn.
        await asyncio.gather(*closing, return_exceptions=True)


def _peek_id(msg: Any) -> str | None:
    """The client id of a refused frame, when it has one, so the widget can resend that message later."""
    if msg.type != WSMsgType.TEXT or len(msg.data) > 100_000:
        return None
    with contextlib.suppress(ValueError, RecursionError):
        data = json.loads(msg.data)
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            return well_formed(str(data["id"])[:MAX_ID_CHARS])
    return None
