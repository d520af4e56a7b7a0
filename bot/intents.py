"""Bilingual shortcuts read before the knowledge base: a person please, thanks, bye, hello, yes, no."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from enum import StrEnum

from faq.normalize import fold

logger = logging.getLogger(__name__)

MAX_SMALL_TALK_WORDS = 8  # longer messages carry a question, not just courtesy


class Intent(StrEnum):
    HUMAN = "human"
    THANKS = "thanks"
    BYE = "bye"
    HELLO = "hello"
    YES = "yes"
    NO = "no"
    OK = "ok"  # an acknowledgement: "ok", "vale", "perfecto", "got it", 👍
    HOW_ARE_YOU = "how_are_you"  # "how are you?", "¿qué tal estás?"
    ARE_YOU_A_BOT = "are_you_a_bot"  # "are you a bot?", "¿eres un robot?"
    ARE_YOU_THERE = "are_you_there"  # "anyone there?", "¿hay alguien ahí?" to the bot
    HELP = "help"  # an opener with nothing to go on yet: "necesito ayuda", "I have a problem with my order"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words that ask for a person wherever they appear, and phrases (folded) that do.
PERSON_WORDS = _words(
    """agente agentes humano humana persona personas operador operadora asesor asesora ejecutivo
    ejecutiva encargado encargada supervisor supervisora gerente human humans agent agents person
    operator representative rep supervisor manager"""
)
PERSON_PHRASES = ("hablar con alguien", "talk to someone", "speak to someone", "speak with someone",
                  "talk with someone", "someone real", "alguien real", "gente de verdad", "live chat")
# A negation shortly before the word ("no quiero un agente", "I don't need a person") cancels it.
NEGATIONS = _words("no not dont don never without sin nunca ni")
NEGATION_WINDOW = 5
# Right before the word, these make it someone else, not a request for one of the support team:
# "el pedido de otra persona", "sent to another person", "the other agent", "per person", "in person".
THIRD_PARTY = _words("otra otras otro otros another other each per cada esa ese aquella aquel in en")

# Small talk: every word of the message must be the intent's own or filler, and one must be a core word.
FILLER = _words(
    """ok okay vale bueno pues well so oh ah ahh great perfect perfecto genial super cool nice muy very
    much mucho muchas muchos muchisimas mil a lot the por for la el lo le te you your todo all
    again de nuevo ya"""
)
CORE: dict[Intent, frozenset[str]] = {
    Intent.THANKS: _words("thanks thank thx ty tks gracias agradezco agradecido agradecida cheers"),
    Intent.BYE: _words("bye goodbye byebye adios chao chau ciao later hasta vemos farewell cya"),
    Intent.HELLO: _words("hi hello hey hola buenas buenos greetings saludos howdy hiya morning afternoon "
                         "evening"),
    Intent.YES: _words("yes yeah yep yup si sip claro sure did helped sirvio ayudo funciono worked correct "
                       "exacto"),
    Intent.NO: _words("no nope nah not didn didnt doesn nada tampoco"),
}
# Acknowledgements are all filler-like, so they have their own check: one core word, and every word one
# of these or filler.
ACK_CORE = _words("ok okay okey k kk vale perfecto perfecta perfect genial great cool nice bien good fine alright "
                  "entendido entendida entiendo understood gotcha noted anotado listo acuerdo got see veo")
ACK = ACK_CORE | _words("understand done it sounds sure thing muy i ya")
ACK_EMOJI = frozenset("👍👌🆗✅")
# Thanks said with a picture: a message of these (and ACK_EMOJI) is a thank-you. Not ⭐: stars are a rating.
THANKS_EMOJI = frozenset("🙏❤♥💙💚💛💜🧡🖤🤍🤎💕💖💗💓💞😊🙂😀😃😄😁☺🥰😍🤗🥳🎉👏💯✨😘")
EMOJI_MARKS = frozenset("\U0001F3FB\U0001F3FC\U0001F3FD\U0001F3FE\U0001F3FF\ufe0f")  # skin tones, emoji style
EXTRA: dict[Intent, frozenset[str]] = {
    Intent.THANKS: _words("help ayuda su tu that is it"),
    Intent.BYE: _words("see luego pronto manana nos have nice day good night then now that s it eso es"),
    Intent.HELLO: _words("good day dias tardes noches there que tal como estas how are everyone otra vez sigo "
                         "aqui here still"),
    Intent.YES: _words("it that me thanks thank gracias has of course supuesto lo hizo sirve servido ha"),
    Intent.NO: _words("it that me really at realmente del en help helped did t does work worked sirvio "
                      "ayudo funciono thanks gracias esto eso quite mucho sirve servido ha ayudado"),
}
_CLAUSE = re.compile(r"[,.;:!?¡¿\n]+")


def asks_for_person(text: str) -> tuple[str, ...]:
    """The words by which the customer asks for a person; empty if they do not."""
    found: list[str] = []
    for clause in _CLAUSE.split(text):
        words = fold(clause).split()
        joined = " ".join(words)
        found.extend(p for p in PERSON_PHRASES if f" {p} " in f" {joined} ")
        for i, word in enumerate(words):
            if (
                word in PERSON_WORDS
                and not (i and words[i - 1] in THIRD_PARTY)
                and not NEGATIONS.intersection(words[max(0, i - NEGATION_WINDOW) : i])
            ):
                found.append(word)
    return tuple(dict.fromkeys(found))


# What turns a mention of a person into a request for one in a longer message: "quiero hablar con un
# agente" asks; "the agent said my refund was approved, when will I get it?" does not.
# Not "phone": "what is the customer service phone number?" asks for a number ("phone me" is a phrase).
REQUEST_WORDS = _words(
    """want wanna need talk speak chat connect transfer put call contact please pls let can could
    quiero queria quisiera necesito necesitamos hablar habla pasa pasas pasame pasadme paseme ponme ponedme
    llamar llamame llamadme contactar comunicar comunicarme favor puedo podria dame"""
)
BARE_REQUEST_WORDS = 4  # "agente", "human please", "get me your manager": short enough to be the request
# A phrase with one of these asks by itself ("talk to someone", "put me through", "not a bot", "deja de ser
# un bot"); one without is a name for a person or a team ("customer service", "atención al cliente", "a
# human"), which asks only as a one-word one does: "is customer service open on Sundays?" does not.
_ASKING = REQUEST_WORDS | NEGATIONS | _words("stop deja dejame phone")


def requests_person(text: str) -> tuple[str, ...]:
    """asks_for_person, but a person merely mentioned in a longer message (no request word) is not asked for."""
    return as_request(text, asks_for_person(text))


def as_request(text: str, found: Sequence[str]) -> tuple[str, ...]:
    """The words `found` (of a person) as a request for one: an asking phrase anywhere unless negated before
    it ("no necesito un agente"); a word, or a phrase that only names a person or team, only in a short
    message or beside a request word ("the employee left it at the door" mentions one)."""
    words = fold(text).split()
    kept = [f for f in found if not _negated(text, f.split())]
    asked = len(words) <= BARE_REQUEST_WORDS or bool(REQUEST_WORDS.intersection(words))
    return tuple(kept) if any(_ASKING.intersection(fold(f).split()) for f in kept) or (kept and asked) else ()


def _negated(text: str, phrase: list[str]) -> bool:
    """Whether every use of the phrase follows a negation in its clause ("No, quiero hablar con una
    persona" is a request: the "no" answers something else)."""
    if phrase[0] in NEGATIONS:  # "no quiero hablar con un bot", "not a bot": the phrase is the negation
        return False
    n, seen = len(phrase), False
    for clause in _CLAUSE.split(text):
        words = fold(clause).split()
        for i in range(len(words) - n + 1):
            if words[i : i + n] == phrase:
                seen = True
                if not NEGATIONS.intersection(words[max(0, i - NEGATION_WINDOW) : i]):
                    return False
    return seen


def _only(words: list[str], intent: Intent) -> bool:
    allowed = CORE[intent] | EXTRA[intent] | FILLER
    return bool(CORE[intent].intersection(words)) and all(w in allowed for w in words)


# Whole-message phrases (folded, after an optional hello): asking after the bot, or whether it is one.
HOW_ARE_YOU = ("how are you", "how are u", "how r u", "how is it going", "how s it going", "how are you doing",
               "que tal", "que tal estas", "como estas", "como esta", "como va", "que tal todo", "como va todo")
ARE_YOU_A_BOT = ("are you a bot", "are you a robot", "are you a machine", "are you an ai", "is this a bot",
                 "am i talking to a bot", "am i talking to a machine", "am i chatting with a bot", "is this automated",
                 "eres un bot", "eres un robot", "eres una maquina", "eres una ia", "es un bot", "esto es un bot",
                 "hablo con un bot", "hablo con una maquina", "hablo con un robot", "estoy hablando con un bot",
                 "estoy hablando con una maquina", "eres real")
ARE_YOU_THERE = ("anyone there", "anybody there", "is anyone there", "is anybody there", "is someone there",
                 "is somebody there", "someone there", "are you there", "you there", "anyone", "anybody",
                 "hay alguien", "hay alguien ahi", "alguien ahi", "hay alguien por ahi", "alguien por ahi",
                 "estas ahi", "estais ahi", "sigues ahi", "seguis ahi", "hay alguien ahi atendiendo")
# Openers that say there is something but not what (folded, whole message, after a hello, without
# "please"): the commonest first lines of a support chat, to be asked about rather than matched.
HELP_OPENERS = frozenset((
    "help", "help me", "i need help", "need help", "i need some help", "can you help me", "can you help",
    "could you help me", "can someone help me", "can anyone help me", "i have a question", "quick question",
    "a question", "one question", "i have a problem", "i have an issue", "i have a problem with my order",
    "i have an issue with my order", "problem with my order", "issue with my order", "i need help with my order",
    "i have a question about my order", "question about my order", "i have a query",
    "ayuda", "ayudame", "necesito ayuda", "necesito ayuda por favor", "me ayudas", "me puedes ayudar",
    "me podeis ayudar", "me pueden ayudar", "me podrias ayudar", "puedes ayudarme", "podeis ayudarme",
    "una pregunta", "tengo una pregunta", "una duda", "tengo una duda", "una consulta", "tengo una consulta",
    "tengo un problema", "tengo un problema con mi pedido", "tengo un problema con un pedido",
    "problema con mi pedido", "necesito ayuda con mi pedido", "tengo una pregunta sobre mi pedido",
    "tengo una duda sobre mi pedido", "consulta sobre mi pedido", "una pregunta sobre mi pedido",
    # After an answer: there is more, not yet what ("otra cosa" is not an entry to guess at).
    "something else", "another thing", "one more thing", "another question", "one more question",
    "i have another question", "i have one more question", "i have something else", "i need something else",
    "otra cosa", "una cosa mas", "otra pregunta", "otra duda", "otra consulta", "tengo otra pregunta",
    "tengo otra duda", "tengo otra consulta", "tengo otra cosa", "necesito otra cosa", "una ultima pregunta",
))
_COURTESY = frozenset(("please", "pls", "plz", "por", "favor", "porfa", "porfavor", "porfis"))
# A hello before what the message says: "buenas tardes", "hi there", "good morning".
_HELLO_WORDS = CORE[Intent.HELLO] | {"tardes", "dias", "noches", "there", "morning", "afternoon", "evening"}


def opens_without_saying(text: str) -> bool:
    """The message says the customer needs help but not with what: ask them, do not guess an entry."""
    words = [w for w in fold(text).split() if w not in _COURTESY]
    while words and words[0] in _HELLO_WORDS:
        words = words[1:]
    return " ".join(words) in HELP_OPENERS


_AFTER_PUNCTUATION = re.compile(r"(?<=[,.;:!?\n])")
# Sign-offs a question ends with that small_talk does not read as thanks on their own.
SIGN_OFFS = frozenset(("muchas gracias de antemano", "gracias de antemano", "gracias por adelantado", "un saludo",
                       "saludos cordiales", "thanks in advance", "thank you in advance", "many thanks in advance",
                       "kind regards", "best regards", "regards"))


def core_question(text: str) -> str:
    """The message without the hello it opens with and the thanks it closes with ("Hola, ¿aceptáis
    PayPal? Gracias de antemano" is "¿aceptáis PayPal?"): for matching, where they only dilute the
    question. The message itself when nothing else is left."""
    parts = [p for p in _AFTER_PUNCTUATION.split(text) if p.strip()]
    while len(parts) > 1 and small_talk(parts[0]) in (Intent.HELLO, Intent.HOW_ARE_YOU):
        parts = parts[1:]
    while len(parts) > 1 and (small_talk(parts[-1]) in (Intent.THANKS, Intent.BYE, Intent.OK)
                              or " ".join(fold(parts[-1]).split()) in SIGN_OFFS):
        parts = parts[:-1]
    words = "".join(parts).split()
    # "hola aceptais paypal", with no comma: the hello words before the question.
    while len(words) > 2 and fold(words[0]).strip() in _HELLO_WORDS:
        words = words[1:]
    return " ".join(words) or text


# Two questions in one message are joined by "and": "¿cuánto cuesta el envío y cuánto tarda?", also
# when each has its own marks: "¿cuánto cuesta el envío? ¿y cuánto tarda?".
_AND = re.compile(r"\s[¿¡]?(?:y|e|and)\s", re.IGNORECASE)
# A clause opening like one of these asks (unaccented forms too: customers drop the accents).
_CLAUSE_QUESTION = _words("cuanto cuanta cuantos cuantas cuando donde cual cuales como que quien")
# After the first question, "and if/whether …" asks again: "… y si me la traéis a Mallorca".
_CLAUSE_AGAIN = _words("si if whether also tambien ademas")


def questions_in(text: str) -> list[str]:
    """The questions a message asks when it joins two or more with "and", each a question of its own
    ("can I cancel my order and also change the address?"); else []. "I ordered my card and it isn't
    here yet" tells one story: its second clause does not ask."""
    clauses = [c.strip(" ,.;:¿?¡!") for c in _AND.split(core_question(text))]
    clauses = [c for c in clauses if len(c.split()) >= 2]
    if len(clauses) < 2:
        return []
    for i, clause in enumerate(clauses):
        first = fold(clause).split()[0]
        if not (asks(clause) or first in _CLAUSE_QUESTION or (i > 0 and first in _CLAUSE_AGAIN)):
            return []
    return clauses


# Laughter reads as an acknowledgement: "jajaja", "jejeje", "hahaha", "lol", "xd".
_LAUGH = re.compile(r"(?:(?:ja|je|ji|ha|he|hi)h?){2,}j?|lol|lmao|xd+")


def small_talk(text: str) -> Intent | None:
    """THANKS, BYE, HELLO, OK, HOW_ARE_YOU, ARE_YOU_A_BOT or ARE_YOU_THERE when that is all the message says
    (goodbye wins over thanks)."""
    words = ["ok" if _LAUGH.fullmatch(w) else w for w in fold(text).split()]
    rest = " ".join(words[1:] if words and words[0] in CORE[Intent.HELLO] else words)
    if rest in HOW_ARE_YOU:
        return Intent.HOW_ARE_YOU
    if rest in ARE_YOU_A_BOT:
        return Intent.ARE_YOU_A_BOT
    if rest in ARE_YOU_THERE:
        return Intent.ARE_YOU_THERE
    if not words:
        # Folding drops emoji: "👍" alone, or with a skin tone, is an acknowledgement; "🙏", "❤️", "😊" (with
        # a 👍 or not) a thank-you, never a misunderstanding.
        marks = [c for c in text if not c.isspace() and c not in EMOJI_MARKS and c != "\u200d"]
        if marks and all(c in ACK_EMOJI for c in marks):
            return Intent.OK
        return Intent.THANKS if marks and all(c in ACK_EMOJI or c in THANKS_EMOJI for c in marks) else None
    if len(words) > MAX_SMALL_TALK_WORDS:
        return None
    if opens_without_saying(text):  # "buenas, una pregunta": more than a hello
        return Intent.HELP
    for intent in (Intent.BYE, Intent.THANKS, Intent.HELLO):
        if CORE[intent].intersection(words):
            # "thanks, bye": every word must be one of the courtesies the message mixes.
            mixed = {i for i in (Intent.BYE, Intent.THANKS, Intent.HELLO) if CORE[i].intersection(words)}
            allowed = FILLER.union(*(CORE[i] | EXTRA[i] for i in mixed))
            return intent if all(w in allowed for w in words) else None
    if ACK_CORE.intersection(words) and all(w in ACK or w in FILLER for w in words):
        return Intent.OK
    return None


def ends_with_goodbye(text: str) -> bool:
    """The message's last sentence is a goodbye: "ya lo he solucionado, gracias. adiós", "never mind, bye"."""
    clauses = [c for c in _CLAUSE.split(text) if c.strip()]
    return bool(clauses) and small_talk(clauses[-1]) is Intent.BYE


def yes_no(text: str) -> Intent | None:
    """YES or NO when the message is only an answer to a yes/no question; a negation means NO."""
    words = fold(text).split()
    if not words or len(words) > MAX_SMALL_TALK_WORDS:
        return None
    if _only(words, Intent.NO):
        return Intent.NO
    if _only(words, Intent.YES):
        return Intent.YES
    return None


# A rating typed instead of pressed: "5", "4/5", "3 de 5", "5 estrellas", "★★★★".
_STARS = re.compile(r"([1-5])(?:\s+(?:5|de 5|out of 5|estrellas?|stars?|puntos?|points?))?")  # folded: "4/5" is "4 5"
_STAR_SIGNS = re.compile(r"(?:[★⭐]\ufe0f?){1,5}")


def stars(text: str) -> int | None:
    """1..5 when the message is only a rating; None for anything else ("5 days late" is not one)."""
    text = text.strip()
    if _STAR_SIGNS.fullmatch(text):
        return len(text.replace("\ufe0f", ""))
    m = _STARS.fullmatch(fold(text).strip())
    return int(m.group(1)) if m else None


# A rating typed first, then a comment: "4/5 — faster than last time, bye", "5 estrellas, muy amables",
# "★★★★ great". Only with its scale or stars: "5 days late, still waiting" is no rating.
_LEADING_STARS = re.compile(
    r"\s*(?:([1-5])\s*(?:/\s*5|de\s+5|out\s+of\s+5|estrellas?|stars?)|((?:[★⭐]\ufe0f?){1,5}))"
    r"[\s,.;:!—–-]+(\S.*)", re.S | re.I)


def leading_stars(text: str) -> tuple[int, str] | None:
    """(stars, the comment after them) of a message that starts with a rating and goes on; else None."""
    m = _LEADING_STARS.fullmatch(text)
    if m is None:
        return None
    n = int(m.group(1)) if m.group(1) else len(m.group(2).replace("\ufe0f", ""))
    return n, m.group(3).strip()


# A question or a request without its question mark: "how do I return this", "quiero devolver un pedido".
# Only words that rarely start a remark: "could be better", "hay que mejorar", "como siempre, genial" are
# comments, so neither "could" nor "hay" is here, Spanish question words count only with their accent, and
# "qué" not at all ("qué pena que tardara tanto").
QUESTION_STARTS = _words(
    """how what when where why which who whom whose can do does did is are am wanna
    puedo puedes podria podrias quiero quisiera queria necesito necesitamos""")
LEAD_INS = _words("also too just so and oh ok okay well btw y tambien ademas oye pues bueno ah entonces")
QUESTION_STARTS_ACCENTED = _words("cómo cuándo dónde cuánto cuánta cuántos cuántas cuál cuáles quién quiénes")
QUESTION_PHRASES = ("i want", "i need", "i would like", "i d like", "i have a question", "por que", "me gustaria",
                    "se puede", "me podrias", "me puedes", "me pueden", "me podeis")
_FIRST_WORD = re.compile(r"[^\W\d_]+")


def asks(text: str) -> bool:
    """The message reads as a question or a request though it has no "?": its first words say so. An
    exclamation ("¡qué rápido!", "how kind!") does not."""
    if "!" in text or "¡" in text:
        return False
    # "I also need…", "y también quiero…", "ok so how do I…": the words that lead into a request.
    words = [w for w in fold(text).split() if w not in LEAD_INS]
    if not words:
        return False
    first = _FIRST_WORD.search(text)
    if first is not None and first.group().lower() in QUESTION_STARTS_ACCENTED:
        return True
    if words[0] in QUESTION_STARTS and words[1:2] not in (["t"], ["not"], ["nt"]):  # not "can't complain"
        return True
    joined = f"{' '.join(words[:5])} "
    return any(joined.startswith(f"{p} ") for p in QUESTION_PHRASES)


# Asking after the wait rather than for a person: "any update?", "¿hay alguien?", "sigo esperando".
CHASE_PHRASES = (
    "any update", "any updates", "any news", "still waiting", "anyone there", "anybody there", "is anyone",
    "is somebody", "is someone", "someone there", "somebody there",
    "are you there", "when will someone", "when will somebody", "when will anyone", "someone coming",
    "somebody coming", "anyone coming", "taking so long", "taking ages", "waiting ages",
    "alguna novedad", "hay novedades", "alguna noticia", "sigo esperando", "sigo aqui", "hay alguien",
    "alguien ahi", "alguien por ahi", "sigue alguien", "estais ahi", "estas ahi", "me atiende", "me atienden",
    "me atendeis", "atenderme", "me van a atender", "vais a atender",
)
# "How long?" is a nudge only about the wait itself: "how long does shipping take?" and "¿cuánto tarda el
# reembolso?" are questions for the agent, so every other word must be one of WAIT_WORDS.
WAIT_PHRASES = (
    "how long", "how much longer", "cuanto falta", "cuanto queda", "cuanto mas", "cuanto tiempo", "cuanto tarda",
    "cuanto tardan", "cuanto tardais", "falta mucho", "queda mucho", "tardan mucho", "tardais mucho",
)
WAIT_WORDS = _words(
    """hello hi hey hola buenas ok okay vale pues so and y the el la it this that esto eso will would be is are
    es son more mas much mucho longer still aun todavia wait waiting esperar espera esperando i have do does
    to tengo que hay de en for para me someone somebody anyone alguien atender atiendan atenderme answer
    contestar respond responder agent person persona agente going gonna take takes tomar queda falta tiempo
    please por favor porfa must debo voy a an un una""")
# "¿hola?" or "anyone?" alone; "hola, mi pedido es…" is not a nudge.
CHASE_ALONE = _words("hello hi hey hola buenas hallo anyone anybody someone somebody alguien")
MAX_CHASE_WORDS = 8  # longer: something for the agent to read, not a nudge


def chases(text: str) -> bool:
    """A short nudge about the wait ("any update?", "¿hola?", "¿cuánto falta?") from a customer in the queue."""
    words = fold(text).split()
    if not words or len(words) > MAX_CHASE_WORDS:
        return False
    if len(words) <= 2 and CHASE_ALONE.intersection(words):
        return True
    joined = f" {' '.join(words)} "
    if any(f" {p} " in joined for p in CHASE_PHRASES):
        return True
    for phrase in WAIT_PHRASES:
        if f" {phrase} " in joined:
            rest = joined.replace(f" {phrase} ", " ", 1).split()
            if all(w in WAIT_WORDS for w in rest):
                return True
    return False
