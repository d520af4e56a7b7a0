"""The messages that flow between channels and the engine: one Inbound in, Outbound events out."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import orjson

Channel = Literal["web", "telegram"]
Sender = Literal["customer", "bot", "agent", "system"]
State = Literal["bot", "queued", "assigned", "resolved", "closed"]
# Value prefix of the rating buttons: the handoff side offers them, the engine reads the choice.
RATE_PREFIX = "rate:"
# Value of the "No" under "Did this help?": the engine reads it, the handoff summary knows an answer
# the customer turned down is not one they got.
HELPFUL_NO = "helpful:no"


# Characters with no glyph of their own: Unicode's Default_Ignorable_Code_Point (zero-width space and
# joiners, BOM, bidi marks, variation selectors, tags, the Hangul fillers) plus the blank braille
# pattern, a favourite "empty" character. With a visible character they still do their work (a ZWJ in
# an emoji sequence); on their own they show nothing.
_NO_GLYPH = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x2800, 0x2800),
    (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
# Control, format and surrogate code points, and the separators (spaces, line and paragraph breaks).
_BLANK_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})


def _visible(ch: str) -> bool:
    if ch.isspace() or unicodedata.category(ch) in _BLANK_CATEGORIES:
        return False
    cp = ord(ch)
    return not any(lo <= cp <= hi for lo, hi in _NO_GLYPH)


def has_visible_text(text: str) -> bool:
    """Whether a customer's text shows anything: not only spaces, control characters, zero-width
    characters, a BOM and the like. Any letter of any script, digit, punctuation or emoji counts (so do
    code points newer than this Python's Unicode tables: they may be new emoji)."""
    return any(_visible(ch) for ch in text)


def well_formed(text: str) -> str:
    """`text` with each lone UTF-16 surrogate (half an emoji: a paste cut in the middle, JSON's "\\ud83d")
    replaced by U+FFFD, and a pair split in two code points joined. Such a string cannot be encoded to
    UTF-8, so Redis, JSON replies and Telegram would all fail on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


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


def eta_minutes(eta_s: float) -> int:
    """A wait in whole minutes as every channel shows it: halves round up (150 s is 3), as the widget's
    Math.round does; Python's round() would make it 2 in the same moment's notice."""
    return int(eta_s / 60 + 0.5)


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
