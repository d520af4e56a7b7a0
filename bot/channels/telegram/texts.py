"""What the Telegram channel says by itself (/help, the queue status message), in English and Spanish."""

from __future__ import annotations

from bot.texts import pick

TEXTS: dict[str, dict[str, str]] = {
    "unknown_command": {"en": "I don't know that command.", "es": "No conozco esa orden."},
    "help": {
        "en": "I'm the {business} virtual assistant. Write your question in your own words and I'll "
              "answer it or suggest options to choose from. I can only read text; for photos or files, "
              "ask for a person.\n\n/agent – talk to a person from our team\n/help – this message",
        "es": "Soy el asistente virtual de {business}. Escribe tu pregunta con tus palabras y te "
              "responderé o te sugeriré opciones. Solo puedo leer texto; para fotos o archivos, pide "
              "hablar con una persona.\n\n/agent – hablar con una persona de nuestro equipo\n"
              "/help – este mensaje",
    },
    "queued": {
        "en": "You're in the queue for a person from our team.",
        "es": "Estás en la cola para hablar con una persona de nuestro equipo.",
    },
    "queued_at": {
        "en": "You're number {position} in the queue for a person from our team.",
        "es": "Eres el número {position} en la cola para hablar con una persona de nuestro equipo.",
    },
    "eta": {"en": " Estimated wait: {wait}.", "es": " Espera estimada: {wait}."},
    # What the status message says once the wait is over (a person took over, back to the bot,
    # resolved): it stays in the chat, so it must stay true. Who joined is the handoff's own notice.
    "left_queue": {
        "en": "You're no longer waiting in the queue.",
        "es": "Ya no estás esperando en la cola.",
    },
}


def say(name: str, lang: str, **values: object) -> str:
    return pick(TEXTS, name, lang, **values)
