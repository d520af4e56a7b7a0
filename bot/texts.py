"""Every sentence the bot says to a customer, in English and Spanish."""

from __future__ import annotations

import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)

TEXTS: dict[str, dict[str, str]] = {
    "greeting": {
        "en": "Hi! I'm the {business} virtual assistant. How can I help you today?",
        "es": "¡Hola! Soy el asistente virtual de {business}. ¿En qué puedo ayudarte?",
    },
    "greeting_intro": {  # before the answer to a first question: the full greeting asks what they need
        "en": "Hi! I'm the {business} virtual assistant.",
        "es": "¡Hola! Soy el asistente virtual de {business}.",
    },
    "hello": {
        "en": "Hello again! What can I help you with?",
        "es": "¡Hola de nuevo! ¿En qué puedo ayudarte?",
    },
    "tell_me": {
        "en": "Of course. Tell me what happened or what you would like to know, in a sentence or two.",
        "es": "Claro. Cuéntame qué ha pasado o qué quieres saber, en una o dos frases.",
    },
    "how_are_you": {
        "en": "I'm well, thank you for asking! What can I help you with?",
        "es": "¡Muy bien, gracias por preguntar! ¿En qué puedo ayudarte?",
    },
    "here": {  # "anyone there?" while talking to the bot
        "en": "Yes, I'm here! What can I help you with?",
        "es": "¡Sí, aquí estoy! ¿En qué puedo ayudarte?",
    },
    "about_bot": {
        "en": "Yes, I'm {business}'s virtual assistant. I answer the common questions straight away, and "
              "whenever you prefer, I pass you to a person from our team.",
        "es": "Sí, soy el asistente virtual de {business}. Respondo al momento las preguntas más habituales "
              "y, cuando lo prefieras, te paso con una persona de nuestro equipo.",
    },
    "hello_first": {  # a "hi" right after the greeting the widget showed on opening: not "again"
        "en": "Hello! Tell me what you need and I'll help you.",
        "es": "¡Hola! Cuéntame qué necesitas y te ayudo.",
    },
    "message_cut": {
        "en": "Your message was longer than {max_chars} characters: I kept the first {max_chars}. "
              "Please send the rest in another message.",
        "es": "Tu mensaje tenía más de {max_chars} caracteres: he guardado los primeros {max_chars}. "
              "Envía el resto en otro mensaje, por favor.",
    },
    "ack": {
        "en": "Great! Is there anything else I can help you with?",
        "es": "¡Perfecto! ¿Hay algo más en lo que pueda ayudarte?",
    },
    "ack_open": {  # "ok" with nothing answered to agree with (first message, after "that didn't help")
        "en": "Okay. Tell me what you need and I'll do my best to help.",
        "es": "De acuerdo. Cuéntame qué necesitas y haré lo posible por ayudarte.",
    },
    "nothing_else": {  # "no" to "anything else?"
        "en": "All right. If you need anything else, just write here.",
        "es": "De acuerdo. Si necesitas algo más, escríbeme aquí cuando quieras.",
    },
    "thanks": {
        "en": "You're welcome! Is there anything else I can help you with?",
        "es": "¡De nada! ¿Hay algo más en lo que pueda ayudarte?",
    },
    "bye": {
        "en": "Thank you for contacting {business}. Have a great day!",
        "es": "Gracias por contactar con {business}. ¡Que tengas un buen día!",
    },
    "did_it_help": {
        "en": "Did this help?",
        "es": "¿Te ha servido?",
    },
    "glad": {
        "en": "Great, I'm glad it helped! Anything else I can do for you?",
        "es": "¡Genial, me alegro de que te haya servido! ¿Puedo ayudarte con algo más?",
    },
    "sorry_not_helpful": {
        "en": "I'm sorry that didn't help. You can tell me your question in other words, "
              "or I can pass you to a person.",
        "es": "Siento que no te haya servido. Puedes contarme tu pregunta con otras palabras, "
              "o puedo pasarte con una persona.",
    },
    "clarify": {
        "en": "I want to be sure I understand. Did you mean one of these?",
        "es": "Quiero asegurarme de entenderte. ¿Te refieres a alguna de estas?",
    },
    "rephrase": {
        "en": "Sorry, I didn't quite understand. Could you tell me in other words?",
        "es": "Perdona, no te he entendido bien. ¿Me lo puedes decir con otras palabras?",
    },
    "rephrase_go": {
        "en": "Sure, go ahead: what would you like to know?",
        "es": "Claro, adelante: ¿qué te gustaría saber?",
    },
    "option_gone": {
        "en": "Sorry, that option is no longer available. Could you tell me your question in other words?",
        "es": "Perdona, esa opción ya no está disponible. ¿Me cuentas tu pregunta con otras palabras?",
    },
    "attachment": {
        "en": "Thanks for the file. I can only read text here: could you describe your question in "
              "words? A person can look at the file if you ask for one.",
        "es": "Gracias por el archivo. Aquí solo puedo leer texto: ¿me describes tu consulta con "
              "palabras? Si lo prefieres, una persona puede revisar el archivo.",
    },
    "attachment_voice": {
        "en": "I can't listen to voice or video messages here: could you write your question? A person "
              "can listen to it if you ask for one.",
        "es": "Aquí no puedo escuchar mensajes de voz ni vídeos: ¿me escribes tu consulta? Si lo prefieres, "
              "una persona puede escucharlo.",
    },
    "attachment_sticker": {
        "en": "I can only read text here: what can I help you with?",
        "es": "Aquí solo puedo leer texto: ¿en qué te puedo ayudar?",
    },
    "attachment_other": {
        "en": "Thanks. I can only read text here: could you describe your question in words? A person can "
              "see what you sent if you ask for one.",
        "es": "Gracias. Aquí solo puedo leer texto: ¿me describes tu consulta con palabras? Si lo prefieres, "
              "una persona puede ver lo que has enviado.",
    },
    "handoff_asked": {
        "en": "Of course. I'm passing you to a person from our team; they will see this conversation, "
              "so you won't need to repeat yourself.",
        "es": "Por supuesto. Te paso con una persona de nuestro equipo; verá esta conversación, "
              "así que no tendrás que repetir nada.",
    },
    "handoff_upset": {
        "en": "I'm sorry about this. I'm bringing in a person from our team to help you; they will "
              "see everything you've told me.",
        "es": "Lamento mucho la situación. Te paso con una persona de nuestro equipo para que te "
              "ayude; verá todo lo que me has contado.",
    },
    "handoff_misunderstood": {
        "en": "I'm sorry I couldn't understand. I'm passing you to a person from our team, who will "
              "read this conversation and continue here.",
        "es": "Siento no haberte entendido. Te paso con una persona de nuestro equipo, que leerá "
              "esta conversación y seguirá por aquí.",
    },
    "handoff_rule": {
        "en": "This is one for a person from our team: I'm passing you on. They will see this conversation, "
              "so you won't need to repeat yourself.",
        "es": "De esto se ocupa una persona de nuestro equipo: te paso con ella. Verá esta conversación, "
              "así que no tendrás que repetirte.",
    },
    "error": {
        "en": "Sorry, something went wrong on my side. Could you send that again?",
        "es": "Perdona, algo ha fallado por mi parte. ¿Puedes enviarlo de nuevo?",
    },
    "idle_closed": {
        "en": "As there has been no activity for a while, I'm closing this conversation. "
              "Write again any time and I'll be happy to help.",
        "es": "Como no ha habido actividad en un rato, cierro esta conversación. "
              "Escríbeme cuando quieras y con gusto te ayudo.",
    },
    # Button labels
    "btn_yes": {"en": "Yes", "es": "Sí"},
    "btn_no": {"en": "No", "es": "No"},
    "btn_person": {"en": "Talk to a person", "es": "Hablar con una persona"},
    "btn_rephrase": {"en": "Ask in other words", "es": "Preguntar de otra forma"},
}


def say(name: str, lang: str, **values: str) -> str:
    """The sentence `name` in `lang` (English when the language has none), with `values` filled in."""
    return pick(TEXTS, name, lang, **values)


def pick(table: Mapping[str, Mapping[str, str]], name: str, lang: str, /, **values: object) -> str:
    """The sentence `name` of a table of {name: {lang: text}} in `lang`, English when the language has
    none, with `values` filled in: the rule every table of customer-facing texts follows. The first three
    are positional only: a text may have a {name} of its own ("{name} has joined the conversation")."""
    forms = table[name]
    return forms.get(lang, forms["en"]).format(**values)
