"""Widget WebSocket load: N simulated customers against `relevo serve` on 127.0.0.1; prints one JSON object.

    python bench/ws_load.py --customers 1000 --rate 2 --messages 20 --seconds 20

Starts `relevo serve` as a subprocess (embedded Redis in a temporary data folder, the shipped config),
connects every customer first (half say hello in Spanish, half in English), then each sends FAQ
questions of its language, reworded, at `--rate` messages/s (random phase, waiting for each answer
before the next question) until it has sent `--messages` or
`--seconds` have passed. Latencies: send -> ack (stored) and
send -> the bot's reply. At the end every customer reconnects with its session and the history is
checked: an acknowledged message missing from it is "lost".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import sys
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from serving import pct, stop_server  # noqa: E402

from faq.loader import load_dir  # noqa: E402

CONNECT_CONCURRENCY = 100
REPLY_TIMEOUT_S = 10.0  # a customer gives up waiting for an answer after this long


def questions(config: Path) -> list[tuple[str, str]]:
    """(language, question) of the entries the bot answers itself (no handoff), both languages."""
    result = load_dir(config / "faq")
    if result.kb is None:
        raise SystemExit(f"bench: the knowledge base in {config / 'faq'} does not load")
    return [(lang, q) for e in result.kb.entries if e.handoff is None for lang, qs in e.questions.items() for q in qs]


COURTESIES = {
    "en": ("please", "thanks", "hi", "ok", "pls", "quick question"),
    "es": ("por favor", "gracias", "hola", "vale", "porfa", "una pregunta"),
}


def reworded(lang: str, question: str) -> str:
    """The question as one customer might type it: most add a courtesy, drop the capital or the '?'.

    Real customers rarely type the same text twice; nor should the simulated ones, or any per-text
    cache of the server (the mood detector's memory of earlier messages) would look better than it is.
    """
    roll = random.random()
    if roll < 0.3:
        question = f"{random.choice(COURTESIES[lang])}, {question[:1].lower()}{question[1:]}"
    elif roll < 0.6:
        question = f"{question.rstrip('?')} {random.choice(COURTESIES[lang])}"
    if random.random() < 0.3:
        question = question.lower()
    return question + "?" * random.randint(0, 2) if random.random() < 0.5 else question


@dataclass
class Customer:
    lang: str = "es"  # a customer writes in one language; half the customers in each
    session: str = ""
    sent: dict[str, float] = field(default_factory=dict)  # client id -> send time
    acked: dict[str, str] = field(default_factory=dict)  # client id -> text
    texts: dict[str, str] = field(default_factory=dict)
    waiting: deque[float] = field(default_factory=deque)  # send times of acked, unanswered messages
    ack_ms: list[float] = field(default_factory=list)
    reply_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    extra_replies: int = 0
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # every message acked and answered
    handed_off: bool = False  # queued for a person: the bot then stays silent, by design


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_server(config: Path, data: Path, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("RELEVO_")}
    env["RELEVO_FAQ_RELOAD"] = "false"
    # Every simulated customer comes from 127.0.0.1: no limits per address.
    env["RELEVO_SERVER_NEW_SESSIONS_PER_MINUTE"] = env["RELEVO_SERVER_SOCKETS_PER_ADDRESS"] = "0"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "--config", str(config), "serve", "--host", "127.0.0.1",
        "--port", str(port), "--data", str(data), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while b"serving on" not in (line := await proc.stdout.readline()):
            if not line:
                raise SystemExit(f"bench: relevo serve exited with {await proc.wait()}")
    return proc


def check_settled(c: Customer) -> None:
    # Queued for a person the bot stays silent: the ack is all a customer waits for then.
    if len(c.acked) == len(c.sent) and (not c.waiting or c.handed_off):
        c.settled.set()
    else:
        c.settled.clear()


async def reader(ws: aiohttp.ClientWebSocketResponse, c: Customer) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        now = time.perf_counter()
        frame = orjson.loads(msg.data)
        kind = frame.get("type")
        if kind == "ack":
            sent = c.sent.get(frame["id"])
            if sent is not None and frame["id"] not in c.acked:
                c.acked[frame["id"]] = c.texts[frame["id"]]
                c.ack_ms.append((now - sent) * 1000)
                c.waiting.append(sent)
        elif kind == "message" and frame.get("from") in ("bot", "system", "agent"):
            if c.waiting:
                c.reply_ms.append((now - c.waiting.popleft()) * 1000)
            else:
                c.extra_replies += 1
        elif kind == "status" and frame.get("state") in ("queued", "assigned"):
            c.handed_off = True
        elif kind == "error":
            c.errors.append(frame.get("code", "?"))
        check_settled(c)


async def hello(
    http: aiohttp.ClientSession, url: str, session: str | None, lang: str
) -> tuple[Any, dict[str, Any]]:
    ws = await http.ws_connect(url, heartbeat=None, max_msg_size=0)
    await ws.send_str(json.dumps({"type": "hello", "session": session, "lang": lang}))
    while True:
        msg = await ws.receive(timeout=30)
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"closed before welcome: {msg.type.name} {msg.data}")
        welcome = json.loads(msg.data)
        if welcome.get("type") == "welcome":
            return ws, welcome


async def connect(
    http: aiohttp.ClientSession, url: str, c: Customer, gate: asyncio.Semaphore
) -> tuple[aiohttp.ClientWebSocketResponse, asyncio.Task[None]] | None:
    try:
        async with gate:
            ws, welcome = await hello(http, url, None, c.lang)
    except Exception as exc:
        c.errors.append(f"connect: {type(exc).__name__}")
        return None
    c.session = welcome["session"]
    return ws, asyncio.create_task(reader(ws, c))


async def send_loop(
    ws: aiohttp.ClientWebSocketResponse,
    c: Customer,
    args: argparse.Namespace,
    pool: dict[str, list[str]],
    deadline: float,
) -> None:
    """A customer waits for the answer before asking again, and asks at most `rate` times a second."""
    interval = 1.0 / args.rate
    next_at = time.perf_counter() + random.random() * interval
    try:
        for _ in range(args.messages):
            await asyncio.sleep(max(0.0, min(next_at, deadline) - time.perf_counter()))
            if time.perf_counter() >= deadline:
                break
            cid = uuid.uuid4().hex
            text = reworded(c.lang, random.choice(pool[c.lang]))
            c.texts[cid] = text
            c.sent[cid] = time.perf_counter()
            c.settled.clear()
            await ws.send_str(orjson.dumps({"type": "message", "id": cid, "text": text}).decode())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(c.settled.wait(), REPLY_TIMEOUT_S)
            next_at = max(next_at + interval, time.perf_counter())
    except Exception as exc:
        c.errors.append(f"send: {type(exc).__name__}")


async def count_lost(http: aiohttp.ClientSession, url: str, c: Customer, gate: asyncio.Semaphore) -> int:
    """Acknowledged messages that the customer's history does not show; -1 if it could not be read."""
    if not c.session:
        return 0
    for attempt in range(5):
        try:
            async with gate:
                ws, welcome = await hello(http, url, c.session, c.lang)
                await ws.close()
            break
        except (ConnectionError, aiohttp.ClientError, TimeoutError):
            await asyncio.sleep(0.5 * 2**attempt)
    else:
        return -1
    shown: dict[str, int] = {}
    for m in welcome["history"]:
        if m["from"] == "customer":
            shown[m["text"]] = shown.get(m["text"], 0) + 1
    lost = 0
    for text in c.acked.values():
        if shown.get(text, 0) > 0:
            shown[text] -= 1
        else:
            lost += 1
    return lost


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


async def drive(args: argparse.Namespace, url: str, pool: dict[str, list[str]], server_pid: int) -> dict[str, Any]:
    customers = [Customer(lang=random.choice(sorted(pool))) for _ in range(args.customers)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        t0 = time.perf_counter()
        links = await asyncio.gather(*(connect(http, url, c, gate) for c in customers))
        connect_s = time.perf_counter() - t0
        cpu0, client0 = cpu_seconds(server_pid), client_cpu()
        began = time.perf_counter()
        deadline = began + args.seconds
        pairs = [(link[0], c) for link, c in zip(links, customers, strict=True) if link]
        await asyncio.gather(*(send_loop(ws, c, args, pool, deadline) for ws, c in pairs))
        elapsed = time.perf_counter() - began
        cpu1 = cpu_seconds(server_pid)
        for link in links:
            if link:
                await link[0].close()
                with contextlib.suppress(Exception):
                    await link[1]
        checked = await asyncio.gather(*(count_lost(http, url, c, gate) for c in customers))
    sent = sum(len(c.sent) for c in customers)
    acked = sum(len(c.acked) for c in customers)
    ack_ms = [v for c in customers for v in c.ack_ms]
    reply_ms = [v for c in customers for v in c.reply_ms]
    errors: dict[str, int] = {}
    for c in customers:
        for e in c.errors:
            errors[e] = errors.get(e, 0) + 1
    window = elapsed
    server_cpu = round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None
    return {
        "customers": args.customers,
        "connected": sum(1 for link in links if link),
        "connect_s": round(connect_s, 2),
        "offered_rate_per_s": round(args.customers * args.rate, 1),
        "window_s": round(window, 2),
        "messages_sent": sent,
        "messages_acked": acked,
        "replies": len(reply_ms),
        "unanswered": sum(len(c.waiting) for c in customers),
        "unanswered_handed_off": sum(len(c.waiting) for c in customers if c.handed_off),
        "customers_handed_off": sum(1 for c in customers if c.handed_off),
        "extra_replies": sum(c.extra_replies for c in customers),
        "messages_per_s": round(acked / window, 1) if window else None,
        "ack_p50_ms": pct(ack_ms, 0.50),
        "ack_p99_ms": pct(ack_ms, 0.99),
        "reply_p50_ms": pct(reply_ms, 0.50),
        "reply_p99_ms": pct(reply_ms, 0.99),
        "reply_max_ms": round(max(reply_ms), 2) if reply_ms else None,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "messages_lost": sum(n for n in checked if n > 0),
        "histories_unread": sum(1 for n in checked if n < 0),
        "server_cpu_s": server_cpu,
        "client_cpu_s": round(client_cpu() - client0, 2),
        # CPU per acknowledged message: comparable across runs on a machine whose other load varies.
        "server_cpu_ms_per_msg": round(1000 * server_cpu / acked, 3) if server_cpu and acked else None,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    pool: dict[str, list[str]] = {}
    for lang, q in questions(args.config):
        pool.setdefault(lang, []).append(q)
    if args.url:
        async with asyncio.timeout(args.seconds + 120):
            return await drive(args, args.url, pool, args.server_pid)
    with tempfile.TemporaryDirectory(prefix="relevo-bench-") as data:
        port = free_port()
        proc = await start_server(args.config, Path(data), port)
        try:
            async with asyncio.timeout(args.seconds + 120):
                result = await drive(args, f"ws://127.0.0.1:{port}/ws", pool, proc.pid)
        finally:
            await stop_server(proc)
    result["server_exit"] = proc.returncode
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=20, help="messages per customer at most")
    parser.add_argument("--seconds", type=float, default=20.0, help="sending stops after this long")
    parser.add_argument("--rate", type=float, default=2.0, help="messages per second per customer")
    parser.add_argument("--config", type=Path, default=ROOT / "config")
    parser.add_argument("--url", help="drive a running server (ws://host:port/ws) instead of starting one")
    parser.add_argument("--server-pid", type=int, default=0, help="with --url: the server, for its CPU time")
    args = parser.parse_args()
    if not (0 < args.customers <= 5000 and 0 < args.messages <= 1000 and 0 < args.seconds <= 300):
        parser.error("bounded: customers 1..5000, messages 1..1000, seconds up to 300")
    if not 0 < args.rate <= 4.0:
        parser.error("--rate must be in (0, 4]: the server allows 5 messages/s per session")
    # The load generator shares the machine's cores with the server: uvloop and orjson keep its share small.
    print(json.dumps(uvloop.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
