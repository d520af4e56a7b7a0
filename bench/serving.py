"""What the benchmarks that drive a `relevo serve` subprocess share: stopping it, percentiles."""

from __future__ import annotations

import asyncio
import signal


async def stop_server(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (Relevo's clean stop, so its exit code is reported), then SIGKILL after 30 s."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(30):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)
