"""Handoff latency: customer asks for a person -> the agent console's `queued` event; prints one JSON object.

    python bench/handoff_latency.py --customers 200 --concurrency 1 --seconds 60

Adds an agent (`relevo agent add`, department general, tier 1) in a temporary data folder, starts
`relevo serve --port 0` on it, logs the agent in (POST /api/login) and opens the console socket
/api/ws with the cookie and the server's own Origin. Then customers, `--concurrency` at a time, each
open the widget socket /ws, say hello and ask for a person. Measured from the moment the customer's
message frame is sent to (a) the agent socket receiving {"type":"queue","event":"queued"} for that
conversation and (b) the customer's own {"type":"status","state":"queued"} frame. The customer does
not learn its conversation id, so events are paired afterwards: GET /api/conversations/{id} names
the customer by its key "web:<session id>", and the session id is the first part of the token the
welcome frame carried.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from serving import pct, stop_server

ROOT = Path(__file__).resolve().parent.parent
AGENT, PASSWORD = "bench", "bench handoff pass"
ASK = "quiero hablar con una persona"
WAIT_S = 10.0  # a customer waits this long for its queued status / the agent for its event
HEARTBEAT_S = 10.0  # the console contract: a heartbeat every 10 s keeps the agent online
DRAINS: set[asyncio.Task[bytes]] = set()


@dataclass
class Customer:
    index: int
    key: str = ""  # "web:<session id>", how the agent API names a widget customer
    sent_at: float | None = None
    status_ms: float | None = None
    error: str = ""


@dataclass
class Console:
    """What the agent socket saw: first `queued` receipt time per conversation id."""

    queued_at: dict[str, float] = field(default_factory=dict)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    other: dict[str, int] = field(default_factory=dict)


def relevo_env() -> dict[str, str]:
    # Every simulated customer comes from 127.0.0.1: no limits per address.
    return {k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("RELEVO_")} | {
        "RELEVO_FAQ_RELOAD": "false", "RELEVO_SERVER_NEW_SESSIONS_PER_MINUTE": "0",
        "RELEVO_SERVER_SOCKETS_PER_ADDRESS": "0",
    }


def relevo_argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bot", "--config", str(config), *args]


async def add_agent(config: Path, data: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *relevo_argv(config, "agent", "--data", str(data), "add", AGENT, "--departments", "general",
                     "--tier", "1", "--capacity", "50", "--password-stdin"),
        cwd=ROOT, env=relevo_env(), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        _out, err = await proc.communicate(f"{PASSWORD}\n".encode())
    if proc.returncode != 0:
        raise SystemExit(f"bench: relevo agent add failed ({proc.returncode}): {err.decode()[-500:]}")


async def start_server(config: Path, data: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        *relevo_argv(config, "serve", "--host", "127.0.0.1", "--port", "0", "--data", str(data)),
        cwd=ROOT, env=relevo_env(), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(60):
        while b"serving on" not in (line := await proc.stdout.readline()):
            if not line:
                raise SystemExit(f"bench: relevo serve exited with {await proc.wait()}")
    # "relevo: serving on http://127.0.0.1:PORT ..."
    base = line.decode().split("serving on", 1)[1].split()[0].rstrip("/")
    drain = asyncio.get_running_loop().create_task(proc.stdout.read())  # a full pipe would stall the server
    DRAINS.add(drain)
    drain.add_done_callback(DRAINS.discard)
    return proc, base


async def console_reader(ws: aiohttp.ClientWebSocketResponse, console: Console) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        now = time.perf_counter()
        frame = json.loads(msg.data)
        kind = f"{frame.get('type')}/{frame.get('event', '')}"
        if kind == "queue/queued":
            cid = str(frame.get("conversation_id"))
            if cid not in console.queued_at:
                console.queued_at[cid] = now
                async with console.arrived:
                    console.arrived.notify_all()
        else:
            console.other[kind] = console.other.get(kind, 0) + 1


async def heartbeats(ws: aiohttp.ClientWebSocketResponse) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_S)
        await ws.send_str(json.dumps({"type": "heartbeat"}))


async def customer_run(
    http: aiohttp.ClientSession, ws_url: str, c: Customer, open_sockets: list[aiohttp.ClientWebSocketResponse]
) -> None:
    try:
        ws = await http.ws_connect(ws_url, heartbeat=None, max_msg_size=0)
        open_sockets.append(ws)  # kept open until the end: a customer leaving is not what we measure
        await ws.send_str(json.dumps({"type": "hello", "session": None, "lang": "es"}))
        async with asyncio.timeout(WAIT_S):
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"closed before welcome: {msg.type.name}")
                frame = json.loads(msg.data)
                if frame.get("type") == "welcome":
                    break
        c.key = "web:" + str(frame["session"]).split(".", 1)[0]
        body = json.dumps({"type": "message", "id": uuid.uuid4().hex, "text": ASK})
        c.sent_at = time.perf_counter()
        await ws.send_str(body)
        async with asyncio.timeout(WAIT_S):
            while True:
                msg = await ws.receive()
                now = time.perf_counter()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    raise ConnectionError(f"closed before queued: {msg.type.name}")
                frame = json.loads(msg.data)
                if frame.get("type") == "status" and frame.get("state") == "queued":
                    c.status_ms = (now - c.sent_at) * 1000
                    return
                if frame.get("type") == "error":
                    raise RuntimeError(f"error frame {frame.get('code')}")
    except TimeoutError:
        c.error = "customer: no queued status" if c.key else "customer: no welcome"
    except Exception as exc:
        c.error = f"customer: {type(exc).__name__}: {str(exc)[:80]}"


async def wait_for_events(console: Console, count: int) -> None:
    """Until the console has heard of `count` handoffs, or WAIT_S passed."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_S), console.arrived:
            await console.arrived.wait_for(lambda: len(console.queued_at) >= count)


async def customers_of(http: aiohttp.ClientSession, base: str, ids: list[str]) -> dict[str, str]:
    """conversation id -> the customer key the agent API shows for it."""
    gate = asyncio.Semaphore(8)

    async def one(cid: str) -> tuple[str, str]:
        async with gate, http.get(f"{base}/api/conversations/{cid}") as r:
            if r.status != 200:
                return cid, ""
            return cid, str((await r.json()).get("customer", ""))

    return dict(await asyncio.gather(*(one(cid) for cid in ids)))


async def drive(args: argparse.Namespace, base: str) -> dict[str, Any]:
    console = Console()
    customers = [Customer(i) for i in range(args.customers)]
    errors: list[str] = []
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    jar = aiohttp.CookieJar(unsafe=True)  # the cookie is for 127.0.0.1, an IP address
    async with aiohttp.ClientSession(cookie_jar=jar, connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(f"{base}/api/login", json={"name": AGENT, "password": PASSWORD}) as r:
            if r.status != 200:
                raise SystemExit(f"bench: login failed: {r.status} {await r.text()}")
        agent_ws = await http.ws_connect(
            base.replace("http", "ws", 1) + "/api/ws", headers={"Origin": base}, heartbeat=None
        )
        reader = asyncio.create_task(console_reader(agent_ws, console))
        beats = asyncio.create_task(heartbeats(agent_ws))
        await agent_ws.send_str(json.dumps({"type": "heartbeat"}))
        await asyncio.sleep(0.5)  # the hub's subscription is up before the first handoff
        began = time.perf_counter()
        deadline = began + args.seconds
        gate = asyncio.Semaphore(args.concurrency)
        ws_url = base.replace("http", "ws", 1) + "/ws"

        async def one(c: Customer) -> None:
            async with gate:
                if time.perf_counter() >= deadline:
                    c.error = "skipped: out of time"
                    return
                await customer_run(http, ws_url, c, sockets)
                if args.concurrency == 1 and c.sent_at is not None:
                    # one at a time: the next customer only after the agent heard of this one
                    await wait_for_events(console, sum(1 for x in customers if x.sent_at))

        await asyncio.gather(*(one(c) for c in customers))
        await wait_for_events(console, sum(1 for c in customers if c.status_ms is not None))
        elapsed = time.perf_counter() - began
        owners = await customers_of(http, base, list(console.queued_at))
        beats.cancel()
        await agent_ws.close()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
            await beats
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    by_key = {c.key: c for c in customers if c.key}
    notify_ms: list[float] = []  # in the order customers were sent, i.e. growing queue length
    unmatched = 0
    for cid, at in sorted(console.queued_at.items(), key=lambda kv: kv[1]):
        c = by_key.get(owners.get(cid, ""))
        if c is None or c.sent_at is None:
            unmatched += 1
            continue
        notify_ms.append((at - c.sent_at) * 1000)
    quarter = max(1, len(notify_ms) // 4)
    errors = [c.error for c in customers if c.error]
    kinds: dict[str, int] = {}
    for e in errors:
        kinds[e] = kinds.get(e, 0) + 1
    status_ms = [c.status_ms for c in customers if c.status_ms is not None]
    return {
        "customers": sum(1 for c in customers if c.sent_at is not None),
        "concurrency": args.concurrency,
        "window_s": round(elapsed, 2),
        "notified": len(notify_ms),
        "p50_ms": pct(notify_ms, 0.50),
        "p99_ms": pct(notify_ms, 0.99),
        "max_ms": round(max(notify_ms), 2) if notify_ms else None,
        # A gap between these says the cost grows with the number already waiting in the queue.
        "first_quarter_p50_ms": pct(notify_ms[:quarter], 0.50),
        "last_quarter_p50_ms": pct(notify_ms[-quarter:], 0.50),
        "customer_status_p50_ms": pct(status_ms, 0.50),
        "customer_status_p99_ms": pct(status_ms, 0.99),
        "customer_status_max_ms": round(max(status_ms), 2) if status_ms else None,
        "customer_status_seen": len(status_ms),
        "unmatched_events": unmatched,
        "other_console_frames": console.other,
        "errors": len(errors),
        "error_kinds": kinds,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="relevo-handoff-bench-") as tmp:
        data = Path(tmp)
        await add_agent(args.config, data)
        proc, base = await start_server(args.config, data)
        try:
            async with asyncio.timeout(args.seconds + 90):
                result = await drive(args, base)
        finally:
            await stop_server(proc)
    result["server_exit"] = proc.returncode
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=1, help="customers in flight at once")
    parser.add_argument("--seconds", type=float, default=60.0, help="no new customer starts after this long")
    parser.add_argument("--config", type=Path, default=ROOT / "config")
    args = parser.parse_args()
    if not (0 < args.customers <= 2000 and 0 < args.concurrency <= 100 and 0 < args.seconds <= 300):
        parser.error("bounded: customers 1..2000, concurrency 1..100, seconds up to 300")
    print(json.dumps(asyncio.run(main_async(args)), indent=2))


if __name__ == "__main__":
    main()
