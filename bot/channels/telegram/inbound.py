"""Telegram -> Inbound: a PTB update as what Relevo acts on, and chat ids as conversation keys."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from telegram import CallbackQuery, Message, Update

from bot.messages import Attachment, Inbound, has_visible_text

KEY_PREFIX = "telegram:"
LANGS = frozenset({"en", "es"})
# Content a customer can send that is not text; the first one a message has names its kind.
ATTACHMENT_KINDS = ("animation", "photo", "video", "video_note", "voice", "audio", "document", "sticker",
                    "venue", "location", "contact", "poll", "dice", "story")
AGENT_COMMAND_VALUE = "human"  # bot.engine.HUMAN: the "talk to a person" button


# -- Telegram -> Inbound ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Translated:
    """One update, translated: an Inbound for the engine, or a /help to answer here."""

    inbound: Inbound | None = None
    help_chat: int | None = None
    lang: str | None = None
    unknown_command: bool = False  # the /help is the answer to a command this bot does not have


def conversation_key(chat_id: int) -> str:
    return f"{KEY_PREFIX}{chat_id}"


def chat_of(key: str) -> int | None:
    if not key.startswith(KEY_PREFIX):
        return None
    try:
        return int(key[len(KEY_PREFIX) :])
    except ValueError:
        return None


def lang_of(language_code: str | None) -> str | None:
    """Telegram's IETF tag ("es-AR") as a language Relevo speaks, or None."""
    code = (language_code or "").split("-")[0].lower()
    return code if code in LANGS else None


def command_of(text: str, bot_username: str) -> str | None:
    """"/start", "/start@this_bot payload" -> "start"; None for text and for other bots' commands."""
    if not text.startswith("/"):
        return None
    name, _, target = text.split(maxsplit=1)[0][1:].partition("@")
    if target and target.lower() != bot_username.lower():
        return None
    return name.lower() or None


def attachments_of(message: Message) -> tuple[Attachment, ...]:
    """What the message carries besides text: kind, a caption for the agent, the file id."""
    for kind in ATTACHMENT_KINDS:
        item = getattr(message, kind, None)
        if item:
            return (Attachment(kind, _caption(message, kind, item), _file_id(item)),)
    return ()


def _caption(message: Message, kind: str, item: object) -> str:
    if message.caption and has_visible_text(message.caption):
        return message.caption
    if message.location is not None and kind == "location":
        return f"{message.location.latitude:.6f},{message.location.longitude:.6f}"
    if message.venue is not None and kind == "venue":
        return f"{message.venue.title}, {message.venue.address}"
    if message.contact is not None and kind == "contact":
        c = message.contact
        return " ".join(p for p in (c.first_name, c.last_name or "", c.phone_number) if p)
    if message.sticker is not None and kind == "sticker":
        return message.sticker.emoji or ""
    if message.poll is not None and kind == "poll":
        return message.poll.question
    if message.document is not None and kind == "document":
        return message.document.file_name or ""
    return ""


def _file_id(item: object) -> str:
    if isinstance(item, tuple | list):  # photo: sizes, smallest first
        item = item[-1] if item else None
    return str(getattr(item, "file_id", "") or "")


def translate(update: Update, *, allow_groups: bool, bot_username: str) -> Translated | None:
    """The update as something Relevo acts on, or None for what it ignores (groups, service messages)."""
    if update.callback_query is not None:
        return _translate_press(update.callback_query, allow_groups)
    message = update.message or update.edited_message
    if message is None or not _chat_allowed(message.chat.type, allow_groups):
        return None
    user = message.from_user
    lang = lang_of(user.language_code if user else None)
    key = conversation_key(message.chat.id)
    customer = user.full_name if user else ""
    edited = message.edit_date is not None and update.edited_message is not None
    client_id = f"m{message.message_id}" + (f"e{_epoch(message.edit_date)}" if edited else "")
    base = Inbound(conversation_key=key, channel="telegram", client_id=client_id, lang=lang,
                   customer=customer)
    text = message.text or ""
    command = None if edited else command_of(text, bot_username)
    if command == "start":
        return Translated(Inbound(conversation_key=key, channel="telegram", kind="start", lang=lang,
                                  customer=customer))
    if command == "help":
        return Translated(help_chat=message.chat.id, lang=lang)
    if command == "agent":
        return Translated(_replace(base, kind="choose", value=AGENT_COMMAND_VALUE, text=text))
    if command is not None:  # "/settings", "/menu": not a question (nor a misunderstanding) but a command
        return Translated(help_chat=message.chat.id, lang=lang, unknown_command=True)
    if text:
        if not has_visible_text(text):
            # Only zero-width or control characters: nothing to read, answer or count as a question the
            # bot did not understand (the widget refuses the same text).
            return None
        return Translated(_replace(base, text=text))
    attachments = attachments_of(message)
    if attachments:
        # A caption is the customer's words ("me llegó roto el paquete, ¿qué hago?" under the photo of it):
        # the text of the message, the file with it. Without one, the bot says what it can read.
        caption = message.caption or ""
        said = caption if has_visible_text(caption) else ""
        return Translated(_replace(base, text=said, attachments=attachments))
    return None


def _translate_press(query: CallbackQuery, allow_groups: bool) -> Translated | None:
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    chat_type = message.chat.type if message is not None else "private"
    if not query.data or not _chat_allowed(chat_type, allow_groups):
        return None
    label = ""
    if isinstance(message, Message) and message.reply_markup is not None:
        label = next((b.text for row in message.reply_markup.inline_keyboard for b in row
                      if b.callback_data == query.data), "")
    user = query.from_user
    return Translated(Inbound(
        conversation_key=conversation_key(chat_id), channel="telegram", kind="choose", value=query.data,
        text=label, client_id=f"q{query.id}", lang=lang_of(user.language_code), customer=user.full_name,
    ))


def _chat_allowed(chat_type: str, allow_groups: bool) -> bool:
    return chat_type == "private" or (allow_groups and chat_type in ("group", "supergroup"))


def _epoch(when: dt.datetime | None) -> int:
    return int(when.timestamp()) if when else 0


def _replace(inbound: Inbound, **changes: object) -> Inbound:
    return dataclasses.replace(inbound, **changes)  # type: ignore[arg-type]

