"""Telegram inside `relevo serve`: the PTB Application, one poller per Redis (a lease), the webhook route."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError
from telegram import Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.bodies import read_bounded
from bot.channels.telegram import Retries, TelegramChannel
from bot.idle import LEASE_LUA, RELEASE_LUA
from bot.runtime import Runtime
from handoff import keys
from handoff.outage import REDIS as REDIS_OUTAGE

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 256 * 1024  # an update is a few KB; a 4096-character text with entities stays far below
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
POLL_LEASE = keys.lease("telegram-poll")
CANCEL_TRIES = 5
CANCEL_WAIT_S = 1.0
# Loggers that may see the token: PTB's own, and httpx, which logs every request URL (/bot<token>/...).
TOKEN_LOGGERS = ("telegram", "httpx", "httpcore", "bot.channels.telegram", __name__)

AnyApplication = Application[Any, Any, Any, Any, Any, Any]


class TelegramSetupError(RuntimeError):
    """Telegram is configured wrongly (the message says what, never the token)."""


@dataclass(frozen=True)
class Timing:
    lease_s: float = 30.0  # a poller that dies is replaced within this
    lease_retry_s: float = 5.0  # how often a non-polling worker tries to take the lease
    poll_timeout_s: float = 10.0  # getUpdates long-poll
    request_timeout_s: float = 10.0  # every other Bot API call
    connect_retry_s: float = 15.0  # Bot API unreachable at start: try again this often
    drain_s: float = 5.0  # deliveries under way get this long at shutdown
    store_retry_max_s: float = 10.0  # polling: an update the store could not take is tried again, backing off
    webhook_retry_s: float = 5.0  # setWebhook refused or unanswered: the first wait before trying again,
    webhook_retry_max_s: float = 300.0  # doubling up to this (an ERROR line at most this far apart)


class TokenFilter(logging.Filter):
    """Replaces the bot token in a log record (message, arguments, traceback) with a placeholder."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def redact(self, text: str) -> str:
        return text.replace(self.token, "<TELEGRAM_BOT_TOKEN>")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = self.redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self.token in text:
                record.exc_text, record.exc_info = self.redact(text), None
        return True


def file_url(base_url: str) -> str:
    """The file endpoint of a Bot API server: ".../bot" -> ".../file/bot"."""
    return base_url[: -len("bot")] + "file/bot" if base_url.endswith("/bot") else base_url


def build_application(runtime: Runtime, timing: Timing) -> AnyApplication:
    tg = runtime.settings.telegram
    builder = Application.builder().token(tg.token)
    if tg.base_url:
        builder = builder.base_url(tg.base_url).base_file_url(file_url(tg.base_url))
    builder = (builder.read_timeout(timing.request_timeout_s).write_timeout(timing.request_timeout_s)
               .connect_timeout(timing.request_timeout_s).get_updates_read_timeout(timing.request_timeout_s))
    if tg.mode == "webhook":
        # Relevo's own aiohttp server receives the updates: no PTB updater, no second web server.
        return builder.updater(None).build()
    return builder.build()


class TelegramService:
    """One worker's Telegram: the Application, the channel, and the tasks that poll and deliver."""

    def __init__(self, runtime: Runtime, *, timing: Timing | None = None, retries: Retries | None = None,
                 worker: str = "") -> None:
        self.runtime = runtime
        self.settings = runtime.settings.telegram
        self.timing = timing or Timing()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._filter = TokenFilter(self.settings.token)
        self._install_filter()  # PTB logs its URLs, token included, as soon as the Bot is built
        self.application = build_application(runtime, self.timing)
        self.channel = TelegramChannel(self.application.bot, runtime.engine, runtime.redis, runtime.settings,
                                       retries, self.worker)
        self.ready = asyncio.Event()  # the bot is known to Telegram and the channel runs
        # For /healthz: starting | connecting (Bot API unreachable) | not_registered (webhook mode,
        # setWebhook not taken yet) | up | off (token rejected after start); `error` says why not up.
        self.state = "starting"
        self.error = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._hold = runtime.redis.register_script(LEASE_LUA)
        self._release = runtime.redis.register_script(RELEASE_LUA)

    @property
    def polling(self) -> bool:
        updater = self.application.updater
        return updater is not None and updater.running

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the Bot API and start; a wrong token stops Relevo, an unreachable API does not."""
        self._install_filter()  # again: loggers PTB created since
        rejected = False
        try:
            await self.application.initialize()
        except InvalidToken:
            rejected = True
        except TelegramError as exc:
            logger.error("telegram: the Bot API does not answer (%s); trying again every %.0f s",
                         exc, self.timing.connect_retry_s)
            self._set_state("connecting", exc)
            self._spawn(self._connect_later(), "telegram connect")
            return
        if rejected:
            # Raised outside the except block: PTB's InvalidToken quotes the token, and must not ride
            # along as __context__ into a traceback or an error reporter.
            await self.application.bot.shutdown()  # its HTTP clients are open even though getMe failed
            self._remove_filter()
            raise TelegramSetupError("Telegram rejected the bot token (TELEGRAM_BOT_TOKEN)")
        await self._run()

    async def _connect_later(self) -> None:
        while True:
            await asyncio.sleep(self.timing.connect_retry_s)
            try:
                await self.application.initialize()
            except InvalidToken:
                logger.error("telegram: Telegram rejected the bot token (TELEGRAM_BOT_TOKEN); "
                             "Telegram is off")  # no exc_info: PTB's message quotes the token
                self._set_state("off", "Telegram rejected the bot token (TELEGRAM_BOT_TOKEN)")
                return
            except TelegramError as exc:
                logger.warning("telegram: the Bot API still does not answer (%s)", exc)
                self._set_state("connecting", exc)
                continue
            await self._run()
            return

    async def _run(self) -> None:
        self.application.add_handler(TypeHandler(Update, self._dispatch))
        self.application.add_error_handler(self._on_error)
        await self.application.start()
        listen = self.runtime.outbox.listen
        self._spawn(self.channel.pump(lambda: listen("telegram")), "telegram outbox pump")
        self._spawn(self.channel.run_pending(), "telegram pending")
        self._spawn(self.channel.keep_leases(), "telegram chat leases")
        # Updates are taken from here on: a webhook registered by an earlier run keeps delivering
        # while this run's setWebhook is refused.
        self.ready.set()
        if self.settings.mode == "webhook":
            self._set_state("not_registered", "")
            self._spawn(self._register_webhook(), "telegram webhook registration")
            return
        self._spawn(self._poll_with_lease(), "telegram polling lease")
        self._set_state("up", "")
        logger.info("telegram: @%s on %s", self.application.bot.username, self.settings.mode)

    def _set_state(self, state: str, error: BaseException | str) -> None:
        self.state, self.error = state, self._filter.redact(str(error))

    def health(self) -> dict[str, str]:
        """The /healthz fields: `telegram` (a state, see __init__) and, when not up, `telegram_error`."""
        found = {"telegram": self.state}
        if self.error:
            found["telegram_error"] = self.error
        return found

    async def stop(self) -> None:
        """Stop polling (giving the lease back), stop delivering, then shut the Application down."""
        self.channel.closing = True
        for task in reversed(self._tasks):
            await _cancel(task)
        self._tasks.clear()
        await self.channel.drain(self.timing.drain_s)
        try:
            await self.channel.disown()
        except RedisError as exc:  # the leases run out by themselves
            logger.warning("telegram: could not give up this worker's chats: %s", exc)
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
        await self.application.bot.shutdown()  # a no-op unless initialize() failed half way
        self.ready.clear()
        self._remove_filter()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_report)
        self._tasks.append(task)

    def _install_filter(self) -> None:
        httpx_logger = logging.getLogger("httpx")
        if httpx_logger.level == logging.NOTSET:
            httpx_logger.setLevel(logging.WARNING)  # a line per request, the token in each
        for name in self._token_loggers():
            logging.getLogger(name).addFilter(self._filter)

    def _remove_filter(self) -> None:
        for name in self._token_loggers():
            logging.getLogger(name).removeFilter(self._filter)

    @staticmethod
    def _token_loggers() -> list[str]:
        # A logger's filters see only its own records, not its children's: every one by name.
        known = list(logging.root.manager.loggerDict)
        return [n for n in known if any(n == p or n.startswith(p + ".") for p in TOKEN_LOGGERS)] + list(
            TOKEN_LOGGERS)

    # -- updates -------------------------------------------------------------------------------------

    async def _dispatch(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A polled update, handled until it is stored: getUpdates has already moved past it, so Telegram
        will not deliver it again (the webhook answers 500 instead and Telegram retries)."""
        delay = 0.25
        while True:
            try:
                await self.channel.on_update(update)
                return
            except (RedisError, OSError) as exc:
                # The store is away (a Redis restart): updates wait in order, none is dropped.
                logger.warning("telegram: update %s from chat %s not stored yet (%s); trying again in %.1f s",
                               update.update_id, _chat_of(update), exc, delay)
            except asyncio.CancelledError:
                logger.error("telegram: stopping with update %s from chat %s not stored", update.update_id,
                             _chat_of(update))
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.timing.store_retry_max_s)

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = _chat_of(update) if isinstance(update, Update) else None
        logger.error("telegram: an update from chat %s could not be handled", chat, exc_info=context.error)

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """POST /telegram/webhook: Telegram's secret header, then the update, then 200 once stored."""
        expected = self.settings.secret_token.encode("utf-8")
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not expected or not hmac.compare_digest(given, expected):
            logger.warning("telegram: webhook request without the right secret from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if not self.ready.is_set():
            return web.Response(status=503, text="not ready")  # Telegram delivers again later
        # Read whole: a cut body would be refused as "not an update", which Telegram does not deliver again.
        body = await read_bounded(request, MAX_UPDATE_BYTES)
        if body is None:
            return web.Response(status=413, text="too large")
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            update = Update.de_json(data, self.application.bot)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400, text="not an update")
        try:
            await self.channel.on_update(update)
        except Exception as exc:
            if not REDIS_OUTAGE.failed("telegram webhook", exc):
                logger.exception("telegram: update %s could not be stored; Telegram will deliver it again",
                                 update.update_id)
            return web.Response(status=500, text="try again")
        return web.Response(text="ok")

    async def _register_webhook(self) -> None:
        """setWebhook until Telegram takes it, backing off; the web server and the rest run meanwhile (a
        refusal such as a bad secret needs an operator: the log and /healthz say so until then)."""
        delay, tries = self.timing.webhook_retry_s, 0
        while True:
            tries += 1
            try:
                await self.application.bot.set_webhook(
                    url=self.settings.webhook_url, secret_token=self.settings.secret_token,
                    allowed_updates=list(ALLOWED_UPDATES),
                )
                break
            except TelegramError as exc:
                self._set_state("not_registered", exc)
                logger.error("telegram: webhook not registered, Telegram sends no updates (try %d): %s; "
                             "trying again in %.1f s", tries, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.timing.webhook_retry_max_s)
        self._set_state("up", "")
        logger.info("telegram: @%s on webhook", self.application.bot.username)

    # -- polling, by one worker at a time ------------------------------------------------------------

    async def _poll_with_lease(self) -> None:
        try:
            while True:
                try:
                    if await self._hold_lease():
                        await self._poll_while_leased()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not REDIS_OUTAGE.failed("telegram polling", exc):
                        logger.exception("telegram: polling stopped; trying again")
                await asyncio.sleep(self.timing.lease_retry_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._release(keys=[POLL_LEASE], args=[self.worker]))

    async def _hold_lease(self) -> bool:
        return bool(await self._hold(keys=[POLL_LEASE], args=[self.worker, int(self.timing.lease_s * 1000)]))

    async def _poll_while_leased(self) -> None:
        updater = self.application.updater
        assert updater is not None  # polling mode builds one
        try:
            await updater.start_polling(timeout=dt.timedelta(seconds=self.timing.poll_timeout_s),
                                        allowed_updates=list(ALLOWED_UPDATES), error_callback=_poll_error)
        except TelegramError as exc:
            logger.error("telegram: could not start polling: %s", exc)
            await self._release(keys=[POLL_LEASE], args=[self.worker])
            return
        logger.info("telegram: worker %s polls for updates", self.worker)
        try:
            while True:
                await asyncio.sleep(self.timing.lease_s / 3)
                if not await self._hold_lease():
                    logger.warning("telegram: worker %s lost the polling lease; stops polling", self.worker)
                    return
        finally:
            if updater.running:
                await updater.stop()


def _chat_of(update: Update) -> int | None:
    chat = update.effective_chat
    return chat.id if chat is not None else None


async def _cancel(task: asyncio.Task[None]) -> None:
    # One cancel is not always enough: a Redis read inside a zero timeout can swallow it (redis-py on
    # Python 3.11), and the task goes on. Cancel until it ends, within bounds.
    for _ in range(CANCEL_TRIES):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=CANCEL_WAIT_S)
        if done:
            return
    logger.error("telegram: task %s does not stop", task.get_name())


def _poll_error(exc: TelegramError) -> None:
    logger.warning("telegram: polling: %s", exc)


def _report(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("telegram: task %s stopped", task.get_name(), exc_info=task.exception())


# -- aiohttp wiring ---------------------------------------------------------------------------------

TELEGRAM = web.AppKey("telegram", TelegramService)


def add_telegram_routes(app: web.Application, runtime: Runtime, *, timing: Timing | None = None,
                        retries: Retries | None = None) -> TelegramService | None:
    """When TELEGRAM_BOT_TOKEN is set: the service (started by `telegram_ctx`) and, for webhook mode,
    POST /telegram/webhook. Raises TelegramSetupError for a webhook mode without its URL or secret."""
    tg = runtime.settings.telegram
    if not tg.token:
        logger.info("telegram: off (no TELEGRAM_BOT_TOKEN)")
        return None
    if tg.mode == "webhook":
        if not tg.webhook_url.startswith(("https://", "http://")):
            raise TelegramSetupError("telegram.webhook_url must be set to a public URL in webhook mode")
        # ASCII only, as Telegram checks it: "señal" would pass str.isalnum() and then be refused by setWebhook.
        allowed = all((c.isascii() and c.isalnum()) or c in "_-" for c in tg.secret_token)
        if not 1 <= len(tg.secret_token) <= 256 or not allowed:
            raise TelegramSetupError("telegram.secret_token must be 1-256 characters A-Z a-z 0-9 _ - "
                                     "in webhook mode")
    service = TelegramService(runtime, timing=timing, retries=retries)
    app[TELEGRAM] = service
    if tg.mode == "webhook":
        app.router.add_post(WEBHOOK_PATH, service.handle_webhook)
    return service


async def telegram_ctx(app: web.Application) -> AsyncIterator[None]:
    """For `app.cleanup_ctx`: starts Telegram with the server and stops it before the runtime closes."""
    service = app.get(TELEGRAM)
    if service is None:
        yield
        return
    await service.start()
    try:
        yield
    finally:
        await service.stop()
