"""Where replies go: published on Redis per channel, so whichever worker holds the socket delivers."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import fields
from typing import Any

import orjson
import redis.asyncio as aioredis

from bot.messages import Outbound, OutEvent, event_from_json
from handoff import keys

logger = logging.getLogger(__name__)

Listener = Callable[[OutEvent], object]  # what it returns is ignored


class Outbox:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._listeners: list[Listener] = []
        # Tags what this process publishes, so a listener that was told in process can skip the echo
        # without parsing it (see `listen`).
        self.origin = uuid.uuid4().hex[:16]
        self._tag = f'"origin":"{self.origin}",'

    async def emit(self, event: OutEvent) -> None:
        """Publish to relevo:out:<channel>; the event is in the transcript already, so a miss is not lost."""
        self.notify(event)
        await self.redis.publish(keys.out_channel(event.channel), "{" + self._tag + to_json(event)[1:])

    def announcement(self, message: Outbound) -> tuple[str, str]:
        """(pub/sub channel, the message as JSON without its opening brace and its id) for a store
        script that appends the message and publishes it, with its new stream id put first, in one step.
        The caller then calls `notify` with the stored message."""
        data = _as_dict(message)
        del data["id"]
        return keys.out_channel(message.channel), self._tag + orjson.dumps(data).decode()[1:]

    @property
    def listening(self) -> bool:
        """Whether `notify` has anyone to tell (so a caller can skip building the event)."""
        return bool(self._listeners)

    def notify(self, event: OutEvent) -> None:
        """Tell this process's listeners (the publishing is done by `emit`, or by the store)."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("outbox listener failed")

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with each event this process emits (tests, in-process use); returns a remover."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def listen(self, channel: str, skip_own: bool = False) -> AsyncIterator[OutEvent]:
        """Every event for `channel`, from any worker, from the moment of subscribing; until cancelled.

        With `skip_own`, not those this process published: for a caller that is also a listener
        (`add_listener`) and so has them already, sooner, and in the order they were made.
        """
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(keys.out_channel(channel))
        own = self._tag.encode()
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = message["data"]
                # The tag is near the start: after the stream id, if any (`{"id":"<id>","origin":...`).
                if skip_own and (own if isinstance(data, bytes) else self._tag) in data[:80]:
                    continue
                try:
                    yield event_from_json(data)
                except (ValueError, TypeError, KeyError):
                    logger.warning("outbox: dropped a malformed event on %s", channel)
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in fields(cls))
    return names


_FIELDS: dict[type, tuple[str, ...]] = {}


def _as_dict(event: OutEvent) -> dict[str, Any]:
    # dataclasses.asdict deep-copies every value; the events are flat but for their buttons.
    data = {name: getattr(event, name) for name in _field_names(type(event))}
    if isinstance(event, Outbound):
        data["buttons"] = [{"label": b.label, "value": b.value} for b in event.buttons]
    return data


def to_json(event: OutEvent) -> str:
    """The event as `event.to_json()` writes it (bot.messages.event_from_json reads it back)."""
    return orjson.dumps(_as_dict(event)).decode()
