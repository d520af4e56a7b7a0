"""The Telegram channel: PTB updates -> Inbound, Outbound / StatusUpdate -> Bot API calls, nothing more."""

# What other code uses of the channel; the rest is reached in its module (bot.channels.telegram.delivery ...).
# A setting a test patches is patched in the module that reads it, not here.
from bot.channels.telegram.channel import UNREACHABLE_FIELD, TelegramChannel
from bot.channels.telegram.delivery import Retries
from bot.channels.telegram.inbound import command_of, lang_of, translate
from bot.channels.telegram.render import chunks, keyboard, status_text
from handoff.keys import TELEGRAM_PENDING as PENDING
from handoff.keys import telegram_parked as parked_key

__all__ = [
    "PENDING",
    "UNREACHABLE_FIELD",
    "Retries",
    "TelegramChannel",
    "chunks",
    "command_of",
    "keyboard",
    "lang_of",
    "parked_key",
    "status_text",
    "translate",
]
