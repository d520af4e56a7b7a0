"""A local stand-in for the Telegram Bot API (aiohttp): the methods Relevo calls, recorded, with faults."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = "123456789:AAE-standin-Secret-Token_abcdefghijklm"
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Relevo", "username": "relevo_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
MAX_POLL_WAIT_S = 1.0  # shorter than Telegram's long poll, so stopping a poller is quick


@dataclass
class Call:
    method: str
    params: dict[str, Any]


@dataclass
class Fault:
    status: int
    description: str
    retry_after: int | None = None
    delay_s: float = 0.0  # answer this late (a read timeout on the client)


@dataclass
class StandIn:
    """State of the fake Bot API: what was called, what is queued for getUpdates, what to fail."""

    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, list[Fault | None]] = field(default_factory=dict)  # None: that call goes through
    blocked: set[int] = field(default_factory=set)
    messages: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    webhook: dict[str, Any] = field(default_factory=dict)
    polls_in_flight: int = 0
    unauthorized: int = 0
    max_polls_in_flight: int = 0
    url: str = ""
    # How long each sendMessage takes to reach Telegram (seconds; a real network's varying latency).
    send_latency_s: Callable[[], float] | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _update_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    # Set and replaced on every change; waiters re-check. (An asyncio.Condition can lose a wakeup when a
    # waiter is cancelled on Python 3.11, and then a test hangs past its own timeout.)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    # -- for tests ------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    def fail_next(self, method: str, fault: Fault, times: int = 1, after: int = 0) -> None:
        """The next `times` calls of `method` fail, once `after` more calls have gone through."""
        self.faults.setdefault(method, []).extend([None] * after + [fault] * times)

    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method]

    def sent(self, chat_id: int) -> list[dict[str, Any]]:
        """sendMessage calls that succeeded for the chat, in order (params plus the message id)."""
        return [m for (chat, _), m in sorted(self.messages.items()) if chat == chat_id]

    async def wait_for(self, predicate: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
        """Wait until `predicate()` is truthy (the stand-in changed); a bound only against hanging."""
        try:
            async with asyncio.timeout(timeout_s):
                while not (result := predicate()):
                    await self._changed.wait()
                return result
        except TimeoutError:
            raise AssertionError(f"the stand-in never saw: {what}") from None

    def next_update_id(self) -> int:
        return next(self._update_ids)

    async def push(self, update: dict[str, Any]) -> int | None:
        """Hand an update to Relevo: by webhook when one is set (returns the HTTP status), else getUpdates."""
        if self.webhook.get("url"):
            headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook.get("secret_token", "")}
            async with aiohttp.ClientSession() as session, \
                    session.post(self.webhook["url"], json=update, headers=headers) as response:
                return response.status
        self.updates.append(update)
        await self._notify()
        return None

    # -- the Bot API ----------------------------------------------------------------------------------

    async def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            self.unauthorized += 1
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        self.calls.append(Call(method, params))
        await self._notify()
        faults = self.faults.get(method)
        fault = faults.pop(0) if faults else None
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            return _error(fault.status, fault.description, fault.retry_after)
        handler = getattr(self, f"api_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        response: web.StreamResponse = await handler(params)
        await self._notify()
        return response

    async def api_getMe(self, params: dict[str, Any]) -> web.Response:
        return _ok(BOT_USER)

    async def api_getUpdates(self, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        self.polls_in_flight += 1
        self.max_polls_in_flight = max(self.max_polls_in_flight, self.polls_in_flight)
        try:
            wait_s = min(float(params.get("timeout") or 0), MAX_POLL_WAIT_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    while not self.updates:
                        await self._changed.wait()
        finally:
            self.polls_in_flight -= 1
        return _ok(list(self.updates))

    async def api_setWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token", "")}
        return _ok(True)

    async def api_deleteWebhook(self, params: dict[str, Any]) -> web.Response:
        self.webhook = {}
        return _ok(True)

    async def api_sendMessage(self, params: dict[str, Any]) -> web.Response:
        if self.send_latency_s is not None:
            await asyncio.sleep(self.send_latency_s())
        chat_id = int(params["chat_id"])
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        message_id = next(self._ids)
        message = {"message_id": message_id, "date": int(time.time()), "chat": _chat(chat_id),
                   "from": BOT_USER, "text": params["text"]}
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message_id)] = message
        return _ok(message)

    async def api_editMessageText(self, params: dict[str, Any]) -> web.Response:
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self.messages.get(key)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        if message["text"] == params["text"]:
            return _error(400, "Bad Request: message is not modified: specified new message content and "
                               "reply markup are exactly the same")
        message["text"] = params["text"]
        message["edits"] = message.get("edits", 0) + 1
        return _ok({**message, "edit_date": int(time.time())})

    async def api_answerCallbackQuery(self, params: dict[str, Any]) -> web.Response:
        return _ok(True)


# -- updates as Telegram sends them -----------------------------------------------------------------

def user(user_id: int, lang: str | None = "en", first_name: str = "Ana") -> dict[str, Any]:
    found: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
    if lang:
        found["language_code"] = lang
    return found


def _chat(chat_id: int, kind: str = "private") -> dict[str, Any]:
    return {"id": chat_id, "type": kind, **({"title": "Group"} if kind != "private" else {})}


def message_update(standin: StandIn, chat_id: int, text: str = "", *, lang: str | None = "en",
                   message_id: int | None = None, chat_type: str = "private", edited: bool = False,
                   **content: Any) -> dict[str, Any]:
    """An update with a message (or an edited one) from user `chat_id` (private chats: chat id = user id)."""
    message: dict[str, Any] = {
        "message_id": message_id or next(standin._ids), "date": int(time.time()),
        "chat": _chat(chat_id, chat_type), "from": user(chat_id if chat_type == "private" else 77, lang),
        **content,
    }
    if text:
        message["text"] = text
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if edited:
        message["edit_date"] = int(time.time()) + 1
    return {"update_id": standin.next_update_id(), ("edited_message" if edited else "message"): message}


def press_update(standin: StandIn, chat_id: int, message: dict[str, Any], data: str,
                 lang: str | None = "en") -> dict[str, Any]:
    """An update for a press of the button with callback data `data` on a message the bot sent."""
    return {"update_id": standin.next_update_id(), "callback_query": {
        "id": f"cb{standin.next_update_id()}", "from": user(chat_id, lang), "chat_instance": "ci",
        "data": data, "message": {**message, "reply_markup": _markup(message.get("reply_markup"))},
    }}


def buttons_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, callback data) of each inline button of a sent message."""
    markup = _markup(message.get("reply_markup")) or {"inline_keyboard": []}
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


def _markup(raw: Any) -> dict[str, Any] | None:
    return json.loads(raw) if isinstance(raw, str) else raw


# -- plumbing -------------------------------------------------------------------------------------

async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        data = await request.json()
        return dict(data) if isinstance(data, dict) else {}
    form = await request.post()
    params = {**request.query, **{k: v for k, v in form.items() if isinstance(v, str)}}
    for name in ("reply_markup", "allowed_updates"):
        if isinstance(params.get(name), str):
            params[name] = json.loads(params[name])
    return params


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


@asynccontextmanager
async def running_standin(token: str = TOKEN) -> AsyncIterator[StandIn]:
    """The stand-in serving on 127.0.0.1 (a free port) until the block ends."""
    standin = StandIn(token=token)
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", standin.handle)
    # No access log: it would show the token (it is Telegram's log, not Relevo's). Handlers stop when
    # their client goes, so an abandoned long poll does not count as a poller.
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    standin.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield standin
    finally:
        await runner.cleanup()
