"""`relevo serve`: the whole product in one process, until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Coroutine
from typing import Any, cast

from aiohttp import web

from bot.settings import Settings, load_settings

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 10.0


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("serve", help="run widget, console and bot in one process")
    p.add_argument("--host", help="address to listen on (default: server.host)")
    p.add_argument("--port", type=int, help="port to listen on, 0 = any free port (default: server.port)")
    # SUPPRESS: "relevo --data DIR serve" keeps the top level's value (see bot/cli.py).
    p.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                   help="folder for the embedded Redis and local state")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Settings:
    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    store = {"data_dir": args.data} if args.data is not None else {}
    return load_settings(args.config, require_config=True, server=server, store=store)


def run(args: argparse.Namespace) -> int:
    from bot.mood import MoodConfigError
    from bot.telegram_setup import TelegramSetupError
    from faq.library import KnowledgeBaseError
    from handoff.store import prepare_data_dir

    settings = settings_from_args(args)
    # Before anything starts: the session secret and the last good knowledge base live there too,
    # with REDIS_URL as well (a StoreError, one line from bot/cli.py).
    prepare_data_dir(settings.data_dir)
    try:
        # Bound before anything starts: a busy port is a clear error, not a half-started server.
        sock = listen(settings.server.host, settings.server.port)
    except OSError as exc:
        print(f"relevo: cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return 1
    try:
        _run_loop(serve(settings, sock))
    except TelegramSetupError as exc:
        # Misconfigured webhook or a token Telegram rejects; the message never carries the token.
        print(f"relevo: telegram: {exc}", file=sys.stderr)
        return 1
    except MoodConfigError as exc:
        print(f"relevo: mood: {exc}", file=sys.stderr)
        print("relevo: not started: fix the mood lexicon file", file=sys.stderr)
        return 1
    except KnowledgeBaseError as exc:
        # No knowledge base and no last good copy: say which file and line to fix, and do not start.
        for problem in exc.problems:
            print(f"relevo: knowledge base: {problem}", file=sys.stderr)
        print("relevo: not started: fix the knowledge base (`relevo faq check`)", file=sys.stderr)
        return 1
    return 0


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on the first address of host (as asyncio's server would make it)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop where it is installed (it is a dependency on Linux/macOS), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


async def serve(settings: Settings, sock: socket.socket | None = None) -> None:
    # Imported here so `relevo faq ...` does not pay for the web stack.
    from bot.runtime import Runtime
    from bot.web import create_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runtime = await Runtime.start(settings)
    try:
        runner = web.AppRunner(create_app(runtime), shutdown_timeout=SHUTDOWN_TIMEOUT_S, access_log=None)
        await runner.setup()
        try:
            site: web.BaseSite = (
                web.SockSite(runner, sock) if sock is not None
                else web.TCPSite(runner, settings.server.host, settings.server.port)
            )
            await site.start()
            for address in runner.addresses:
                host, port = address[0], address[1]
                host = f"[{host}]" if ":" in host else host
                # One line on stdout that scripts (bench/, tests) read to find a port-0 server.
                print(f"relevo: serving on http://{host}:{port}", flush=True)
            await _until_stopped(stop, runtime.store_watch)
            logger.info("stopping")
        finally:
            # Stops listening, closes widget sockets, then the outbox pump (cleanup_ctx, reverse order).
            await runner.cleanup()
    finally:
        await runtime.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    watch = runtime.store_watch
    if watch is not None and watch.done() and not watch.cancelled() and watch.exception() is not None:
        raise cast(BaseException, watch.exception())  # StoreError: `relevo: ...` and exit status 1


async def _until_stopped(stop: asyncio.Event, store_watch: asyncio.Task[None] | None) -> None:
    """Until SIGINT/SIGTERM, or until the embedded Redis could not be kept running."""
    if store_watch is None:
        await stop.wait()
        return
    waiter = asyncio.create_task(stop.wait(), name="serve: wait for a signal")
    try:
        await asyncio.wait({waiter, store_watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
