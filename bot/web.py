"""The aiohttp application of `relevo serve`: demo shop page, widget files, widget WebSocket, health."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources

from aiohttp import web
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.channels.web import WebChannel
from bot.runtime import Runtime
from bot.sessions import signer_for
from bot.telegram_setup import TELEGRAM, add_telegram_routes, telegram_ctx
from handoff.api import setup_api
from handoff.outage import REDIS as REDIS_OUTAGE

logger = logging.getLogger(__name__)

RUNTIME = web.AppKey("runtime", Runtime)
WEB_CHANNEL = web.AppKey("web_channel", WebChannel)
STATIC = web.AppKey("static", dict[str, bytes])

HEALTH_TIMEOUT_S = 2.0
STATIC_FILES = {"widget.js": "text/javascript", "widget.css": "text/css"}

# Pages Relevo serves itself: no inline script or style, not framable (the widget is a script, not a frame).
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

DEMO_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "demo": "demo",
        "tagline": "Everyday things, delivered in 2–4 days.",
        "hero": "This is a demo shop page. Ask the assistant in the corner about shipping, returns, "
        "payments or your order.",
        "product1": "Canvas tote bag",
        "product2": "Ceramic mug",
        "product3": "Wool socks",
        "widget_title": "Support",
        "other_lang": "Español",
        "other_href": "/?lang=es",
        "footer": "Demo page served by Relevo. The chat widget is one script tag.",
    },
    "es": {
        "demo": "demostración",
        "tagline": "Cosas de cada día, en tu casa en 2 a 4 días.",
        "hero": "Esta es una tienda de demostración. Pregunta al asistente de la esquina por envíos, "
        "devoluciones, pagos o tu pedido.",
        "product1": "Bolsa de lona",
        "product2": "Taza de cerámica",
        "product3": "Calcetines de lana",
        "widget_title": "Atención al cliente",
        "other_lang": "English",
        "other_href": "/?lang=en",
        "footer": "Página de demostración servida por Relevo. El widget de chat es una etiqueta script.",
    },
}


def _static(name: str) -> bytes:
    return resources.files("bot").joinpath("static", name).read_bytes()


def page_lang(request: web.Request, default: str) -> str:
    """?lang=, else the browser's first supported language, else the configured default."""
    asked = request.query.get("lang", "")
    if asked in DEMO_TEXTS:
        return asked
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";")[0].strip()[:2].lower()
        if code in DEMO_TEXTS:
            return code
    return default if default in DEMO_TEXTS else "en"


def render_demo(template: str, lang: str, business_name: str) -> str:
    texts = {k: html.escape(v) for k, v in DEMO_TEXTS[lang].items()}
    texts["business"] = html.escape(business_name)
    return string.Template(template).substitute(texts, lang=lang)


async def demo_page(request: web.Request) -> web.Response:
    settings = request.app[RUNTIME].settings
    lang = page_lang(request, settings.conversation.default_lang)
    body = render_demo(request.app[STATIC]["demo.html"].decode("utf-8"), lang, settings.business_name)
    response = web.Response(text=body, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Vary"] = "Accept-Language"
    return response


def static_handler(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        response = web.Response(body=request.app[STATIC][name], content_type=STATIC_FILES[name])
        response.headers["Cache-Control"] = "public, max-age=300"
        # Shops embed the widget from Relevo's origin.
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return response

    return handler


async def no_favicon(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"Cache-Control": "public, max-age=86400"})


async def ws_handler(request: web.Request) -> web.StreamResponse:
    return await request.app[WEB_CHANNEL].handle(request)


async def healthz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_S):
            await runtime.redis.ping()
    except Exception as exc:
        if isinstance(exc, TimeoutError):  # our own timer: Redis took over HEALTH_TIMEOUT_S to answer
            exc = RedisTimeoutError(f"no answer to PING within {HEALTH_TIMEOUT_S:.0f} s")
        # A load balancer asks every few seconds: an outage is told once (and summarised), not per ask.
        if not REDIS_OUTAGE.failed("health check", exc):
            logger.warning("health check: Redis does not answer: %r", exc)
        return web.json_response({"ok": False, "redis": "down"}, status=503)
    REDIS_OUTAGE.ok()
    channel = request.app[WEB_CHANNEL]
    sockets = sum(map(len, channel.sockets.values()))
    body: dict[str, object] = {"ok": True, "redis": "up", "widget_sockets": sockets}
    telegram = request.app.get(TELEGRAM)
    # Telegram not ready (webhook refused, Bot API away) is reported, not failed: `ok` and the status
    # answer "should this process be restarted?", and a restart does not fix a secret Telegram refuses.
    body.update(telegram.health() if telegram is not None else {"telegram": "off"})
    # A knowledge base that does not load is reported the same way: the process still answers from
    # the last good version, and a restart would not fix the file, so `faq` is `stale`, not a 503.
    body.update(runtime.library.health())
    return web.json_response(body)


@web.middleware
async def nosniff(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    if not response.prepared:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


async def _outbox_pump(app: web.Application) -> AsyncIterator[None]:
    """Started with the app, cancelled before the runtime closes (cleanup runs in reverse order)."""
    runtime, channel = app[RUNTIME], app[WEB_CHANNEL]
    # This process's events reach its own sockets directly (one Redis round trip sooner, in the order
    # they were made); pub/sub brings those of other workers.
    stop_listening = runtime.outbox.add_listener(channel.deliver)
    task = asyncio.create_task(
        channel.pump(lambda: runtime.outbox.listen("web", skip_own=True)), name="web outbox pump"
    )
    yield
    stop_listening()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_sockets(app: web.Application) -> None:
    await app[WEB_CHANNEL].close_all()


def create_app(runtime: Runtime) -> web.Application:
    app = web.Application(middlewares=[nosniff])
    app[RUNTIME] = runtime
    signer = signer_for(runtime.settings, runtime.session_secret)
    app[WEB_CHANNEL] = WebChannel(runtime.engine, runtime.settings, signer)
    app[STATIC] = {name: _static(name) for name in (*STATIC_FILES, "demo.html")}
    if runtime.settings.server.demo_page:
        # Off, `/` is a 404 like any unknown path: the root of a support domain then shows nothing,
        # neither a fake shop nor which software answers there.
        app.router.add_get("/", demo_page)
    for name in STATIC_FILES:
        app.router.add_get(f"/{name}", static_handler(name))
    app.router.add_get("/favicon.ico", no_favicon)
    app.router.add_get("/ws", ws_handler)
    app.router.add_get("/healthz", healthz)
    app.cleanup_ctx.append(_outbox_pump)
    app.on_shutdown.append(_close_sockets)
    # The agent console, supervisor view and agent API share the server (and its Redis) with the widget.
    setup_api(app, runtime.handoff, runtime)
    # Telegram is one more channel on the same server: nothing happens without TELEGRAM_BOT_TOKEN.
    add_telegram_routes(app, runtime)
    app.cleanup_ctx.append(telegram_ctx)
    return app
