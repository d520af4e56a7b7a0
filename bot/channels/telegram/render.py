"""Outbound -> Telegram: message texts cut to size, inline keyboards, the queue status message's text."""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import InlineKeyboardButtonLimit, MessageLimit

from bot.channels.telegram.texts import say
from bot.messages import Button, Outbound, StatusUpdate
from handoff.notify import eta_text

# One logger for the whole channel, named as before the split: bot.telegram_setup.TOKEN_LOGGERS names it
# (the bot token is redacted in its records), and operators' logging configuration may too.
logger = logging.getLogger("bot.channels.telegram")

MAX_TEXT = int(MessageLimit.MAX_TEXT_LENGTH)
MAX_CALLBACK_BYTES = int(InlineKeyboardButtonLimit.MAX_CALLBACK_DATA)


# -- Outbound -> Telegram -----------------------------------------------------------------------------

def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """One button a row (FAQ titles are long); a value Telegram cannot carry is left out, loudly."""
    rows = []
    for b in buttons:
        if len(b.value.encode("utf-8")) > MAX_CALLBACK_BYTES:
            logger.warning("telegram: button value longer than %d bytes left out: %r", MAX_CALLBACK_BYTES,
                           b.value[:80])
            continue
        rows.append([InlineKeyboardButton(b.label, callback_data=b.value)])
    return InlineKeyboardMarkup(rows) if rows else None


def message_text(event: Outbound) -> str:
    if event.sender == "agent" and event.author:
        return f"{event.author}: {event.text}"
    return event.text


def chunks(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Text cut to Telegram's message size, at a line break or space when there is one."""
    parts: list[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n", 0, limit), text.rfind(" ", 0, limit))
        cut = cut if cut > limit // 2 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip()
    return [*parts, text or " "]


def status_text(status: StatusUpdate, lang: str) -> str | None:
    """The status message's text; None for states that end the status message (assigned, bot, resolved,
    closed)."""
    if status.state == "queued":
        text = (say("queued_at", lang, position=status.position) if status.position
                else say("queued", lang))
        if status.eta_s is not None:
            # In the words of the handoff's notices ("less than a minute", "about 3 minutes", "8 h 16 min"
            # out of hours), so the two never read differently: not "about 1 min." under "less than a minute".
            text += say("eta", lang, wait=eta_text(status.eta_s, lang))
        return text
    return None


def states_position(text: str, position: int | None) -> bool:
    """Whether a notice's text gives this place in the queue ("You are number 2 in the queue; …")."""
    return position is not None and re.search(rf"(?<!\w){position}(?!\w)", text) is not None

