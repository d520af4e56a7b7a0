"""The messages that flow between channels and the engine: one Inbound in, Outbound events out."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

Channel = Literal["web", "telegram"]
Sender = Literal["customer", "bot", "agent", "system"]
State = Literal["bot", "queued", "assigned", "resolved", "closed"]
# Value prefix of the rating buttons: the handoff side offers them, the engine reads the choice.
RATE_PREFIX = "rate:"


@dataclass(frozen=True)
class Button:
    label: str
    value: str


@dataclass(frozen=True)
class Attachment:
    """A file the customer sent that the bot cannot read; agents see that it came."""

    kind: str  # photo, document, voice, sticker, location, ...
    caption: str = ""
    ref: str = ""  # the channel's file id, for agents


@dataclass(frozen=True)
class Inbound:
    """One thing a customer did, already translated out of the channel's own types.

    `conversation_key` names the customer on the channel ("web:<session id>", "telegram:<chat id>");
    the engine maps it to the current conversation. `client_id` is the channel's id of this message,
    used to drop duplicates (a widget resend after reconnect, a repeated Telegram update).
    """

    conversation_key: str
    channel: Channel
    kind: Literal["message", "choose", "start"] = "message"
    text: str = ""
    value: str = ""  # the button value, for kind="choose"
    client_id: str = ""
    lang: str | None = None  # the customer's language when the channel knows it
    customer: str = ""  # display name, when the channel knows it
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Outbound:
    """A message for the customer, on the channel their conversation lives on."""

    conversation_id: str
    conversation_key: str
    channel: Channel
    id: str  # stream id of the transcript entry: the widget de-duplicates on it
    text: str
    sender: Sender = "bot"
    buttons: tuple[Button, ...] = ()
    lang: str = "en"
    author: str = ""  # agent display name, for sender="agent"
    kind: Literal["message"] = "message"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass(frozen=True)
class StatusUpdate:
    """Where the conversation stands: with the bot, queued (position, wait), with an agent, resolved."""

    conversation_id: str
    conversation_key: str
    channel: Channel
    state: State
    position: int | None = None
    eta_s: int | None = None
    agent: str = ""  # display name of the agent who joined
    kind: Literal["status"] = "status"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


OutEvent = Outbound | StatusUpdate


def event_from_json(raw: str | bytes) -> OutEvent:
    data: dict[str, Any] = orjson.loads(raw)
    data.pop("origin", None)  # the publishing process (bot.outbox)
    if data.get("kind") == "status":
        return StatusUpdate(**data)
    data["buttons"] = tuple(Button(**b) for b in data.get("buttons", ()))
    return Outbound(**data)


@dataclass(frozen=True)
class Stored:
    """What `Engine.receive` returns once a customer message is safely in Redis."""

    conversation_id: str
    message_id: str  # transcript stream id
    inbound: Inbound
    duplicate: bool = False  # the same client_id was stored before: ack again, do not process again
    extra: dict[str, Any] = field(default_factory=dict)
