"""One customer message in, decisions, replies out: the conversation engine that channels feed."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from bot import intents, texts, unanswered
from bot.intents import Intent
from bot.messages import (
    HELPFUL_NO,
    RATE_PREFIX,
    Attachment,
    Button,
    Channel,
    Inbound,
    Outbound,
    State,
    StatusUpdate,
    Stored,
)
from bot.mood.lexicon import GROUP_LABELS
from bot.outbox import Outbox
from bot.settings import Settings
from bot.stats import BotStats, Counted
from faq.lang import lang_scores
from faq.model import Action, Decision, Entry, KnowledgeBase
from handoff import escalation as esc
from handoff.conversations import (
    WITH_A_PERSON,
    Conversation,
    Conversations,
    HashValue,
    LogEntry,
    entry_fields,
    now_ms,
)
from handoff.escalation import EscalationContext, Escalator, Reason

logger = logging.getLogger(__name__)

# Button values (the widget and Telegram send them back as Inbound(kind="choose", value=...)).
HUMAN = "human"
REPHRASE = "rephrase"
HELPFUL_YES = "helpful:yes"
FAQ_PREFIX = "faq:"
IDLE_CLOSABLE = ("bot", "resolved")  # never closed on a customer waiting for or talking to a person
# conversation.awaiting after a resolution ("rating": stars and a comment asked for), after the stars
# ("rating_comment") and after a comment without stars ("rating_stars"): the next text is the comment, unless
# it is a new question; a bare "4" is the stars.
RATING_ASKED = ("rating", "rating_comment", "rating_stars")
# What the bot says to something other than text, by the attachment's kind.
ATTACHMENT_TEXTS = {
    "photo": "attachment", "video": "attachment", "document": "attachment",
    "voice": "attachment_voice", "audio": "attachment_voice", "video_note": "attachment_voice",
    "sticker": "attachment_sticker", "animation": "attachment_sticker",
}
# The customer-facing message for the first (strongest) reason of an escalation.
HANDOFF_TEXTS = {
    esc.ASKED_FOR_PERSON: "handoff_asked",
    esc.UPSET: "handoff_upset",
    esc.MISUNDERSTOOD: "handoff_misunderstood",
}
MAX_VALUE_CHARS = 200
MAX_ID_CHARS = 128
MAX_ATTACHMENTS = 10
MOOD_HISTORY = 10  # earlier customer messages the mood detector sees
MOOD_SEARCH = 2 * MOOD_HISTORY  # transcript entries before a message searched for them
SWITCH_LANG_WORDS = 3  # a message this long in the other language moves the conversation to it


class Knowledge(Protocol):
    """What the engine needs of faq.library.Library."""

    @property
    def kb(self) -> KnowledgeBase: ...

    def decide(self, text: str, lang: str | None = None) -> Decision: ...


class MoodReading(Protocol):
    @property
    def score(self) -> float: ...
    @property
    def conversation(self) -> float: ...
    @property
    def evidence(self) -> Sequence[str]: ...
    @property
    def upset(self) -> bool: ...


class Mood(Protocol):
    """What the engine needs of bot.mood.MoodDetector."""

    def assess(self, text: str, lang: str, history: Sequence[str], after_bot_answer: bool) -> Any: ...


class CustomerSide(Protocol):
    """What the engine asks of the handoff side besides escalating (handoff.service.HandoffService)."""

    def person_words(self, text: str, lang: str | None) -> tuple[str, ...]: ...

    def extra_reasons(self, text: str, lang: str | None) -> list[Reason]: ...

    async def customer_message(self, conversation_id: str, text: str, waiting: bool = False) -> str | None: ...

    async def rate(self, conversation_id: str, score: int, comment: str = "") -> bool | None: ...

    async def comment(self, conversation_id: str, text: str) -> bool: ...

    async def leave_queue(self, conversation_id: str) -> bool: ...

    async def remind(self, conversation_id: str) -> bool: ...

    async def standing(self, conv: Conversation) -> StatusUpdate | None: ...


# Mood evidence of "that didn't help".
DISSATISFACTION = f"{GROUP_LABELS['dissatisfaction']}: "
# A goodbye this short after the rating prompt is the end, not a comment ("thanks Ana, bye").
SHORT_GOODBYE_WORDS = 4
# Words besides it that still make a message only that ("no me sirve, la verdad").
FEEDBACK_EXTRA_WORDS = 2
_WORD = re.compile(r"\w+")


def _without_quoted(text: str, evidence: Sequence[str]) -> str:
    """The text without the words each evidence item quotes ('dissatisfaction: "no me sirve"')."""
    for item in evidence:
        quoted = item[len(DISSATISFACTION) :].strip('"')
        text = re.sub(re.escape(quoted), " ", text, flags=re.IGNORECASE)
    return text


def pick_lang(current: str, text: str, first: bool) -> str:
    """Keep the conversation's language unless the text clearly is in the other one."""
    es, en = lang_scores(text)
    seen = "es" if es > en else "en"
    if es == en or seen == current:
        return current  # no evidence either way, or it agrees
    if first or len(text.split()) >= SWITCH_LANG_WORDS:
        return seen
    return current


def decision_record(decision: Decision, **extra: Any) -> dict[str, Any]:
    """What the bot considered for one turn, stored with its reply (the handoff context reads it)."""
    match = decision.match
    return {
        "action": decision.action.value,
        "confidence": round(match.confidence, 4),
        "lang": match.lang,
        "candidates": [{"entry_id": c.entry_id, "score": round(c.score, 4), "question": c.question}
                       for c in match.candidates],
        **extra,
    }


@dataclass
class _TurnState:
    """What one customer turn has read and not yet written; the conversation's lock guards it."""

    earlier: tuple[str, ...] = ()  # the customer's earlier texts, oldest first
    changes: dict[str, HashValue] = field(default_factory=dict)  # for the conversation record
    cut: bool = False  # the message was longer than the limit and kept only up to it


class Engine:
    def __init__(
        self,
        settings: Settings,
        conversations: Conversations,
        library: Knowledge,
        outbox: Outbox,
        escalator: Escalator,
        mood: Mood | None = None,
        customer_side: CustomerSide | None = None,
        stats: BotStats | None = None,
    ) -> None:
        self.settings = settings
        self.conversations = conversations
        self.library = library
        self.outbox = outbox
        self.escalator = escalator
        self.mood = mood
        self.customer_side = customer_side
        self.stats = stats
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # Turns in progress, by conversation id. A turn's record changes ride along with its reply's
        # transcript write (one round trip), or are written when the turn ends.
        self._turns: dict[str, _TurnState] = {}

    # -- the channel-facing API ---------------------------------------------------------------

    async def handle(self, inbound: Inbound) -> Stored:
        stored = await self.receive(inbound)
        await self.process(stored)
        return stored

    async def receive(self, inbound: Inbound) -> Stored:
        """Store the customer's message (de-duplicated on client_id); returns once it is in Redis."""
        # The widget refuses an over-long message (too_long); a Telegram one (up to 4096) is cut, and the
        # customer is told so after the turn rather than losing its end silently.
        cut = len(inbound.text) > self.settings.server.max_message_chars
        inbound = self._bounded(inbound)
        lang = inbound.lang if inbound.lang in ("en", "es") else self.settings.conversation.default_lang
        key = inbound.conversation_key
        if inbound.kind == "choose" and self._rating(inbound.value):
            late = await self._rating_after_close(inbound)
            if late is not None:
                return late
        for _ in range(3):
            # The open conversation this process last saw for the key saves two round trips; if it
            # has been closed since, the append below says so and the next loop asks Redis.
            cid, created = self.conversations.known_open(key), False
            if cid is None or inbound.kind == "start":
                cid, created = await self.conversations.open(key, inbound.channel, lang, inbound.customer)
            if inbound.kind == "start":
                return Stored(cid, "", inbound, extra={"created": created})
            # Only a button's label is worded in the conversation's language.
            conv_lang = (await self.conversations.lang_of(cid) or lang) if inbound.kind == "choose" else lang
            fields = entry_fields(
                "customer", self._customer_text(inbound, conv_lang), ts=now_ms(), kind=inbound.kind,
                value=inbound.value, client_id=inbound.client_id, attachments=inbound.attachments,
            )
            appended = await self.conversations.append(
                cid, fields, client_id=inbound.client_id, sender="customer"
            )
            if appended.status != "closed":
                return Stored(cid, appended.message_id, inbound, duplicate=appended.status == "dup",
                              extra={"created": created, "cut": cut})
            # Closed between finding and writing (idle sweep, goodbye): the next loop opens a new one.
            self.conversations.forget_open(key)
        raise RuntimeError(f"could not store a message for {inbound.conversation_key}")

    def _count(self, name: Counted) -> None:
        if self.stats is not None:
            self.stats.count(name)

    async def _rating_after_close(self, inbound: Inbound) -> Stored | None:
        """Stars pressed under the rating prompt after the customer's goodbye (Telegram keeps the buttons)
        rate the conversation that asked for them, closed since, rather than opening a new one with
        nothing to rate. Taken here, before the press is acknowledged; None if there is none to rate."""
        key = inbound.conversation_key
        if self.customer_side is None or self.conversations.known_open(key):
            return None
        # The open conversation if there is one (then not closed: the press is its own), else the last.
        last = await self.conversations.last_id(key)
        conv = await self.conversations.get(last) if last else None
        if conv is None or conv.state != "closed":
            return None
        async with self._lock(conv.id):
            if await self.customer_side.rate(conv.id, self._rating(inbound.value)) is None:
                return None  # its resolution asked for no stars (spam, a duplicate)
        return Stored(conv.id, "", inbound, extra={"rated_after_close": True})

    async def process(self, stored: Stored) -> None:
        """Decide and reply through the Outbox; a no-op for duplicates and for conversations with a person."""
        if stored.duplicate or stored.extra.get("rated_after_close"):
            return
        async with self._lock(stored.conversation_id):
            if stored.inbound.kind == "start":
                await self._restart(stored.conversation_id)
                return
            search = MOOD_SEARCH if self.mood is not None else 0
            turn = await self.conversations.begin_turn(stored.conversation_id, stored.message_id, search)
            if turn is None:
                return  # another caller handles it
            conv = turn.conversation
            if conv is None or conv.state == "closed":
                return
            if conv.state in WITH_A_PERSON:
                # The agent side reads the transcript: the bot never talks over a person.
                await self._relay(conv, stored.inbound)
            else:
                self._turns[conv.id] = _TurnState(turn.earlier, cut=bool(stored.extra.get("cut")))
                try:
                    await self._respond(conv, stored.inbound)
                except Exception:
                    logger.exception("engine: failed on message %s of %s", stored.message_id, conv.id)
                    await self._apologise(conv)
                finally:
                    await self._end_turn(conv.id)
            if stored.extra.get("cut"):  # after the turn: in the language it settled on
                await self._say(await self.conversations.get(conv.id) or conv, "message_cut",
                                record={"action": "message_cut"})

    async def _restart(self, conversation_id: str) -> None:
        """/start: the greeting on a new conversation; later on, a hello, or where they stand with a person."""
        conv = await self.conversations.get(conversation_id)
        if conv is None or conv.state == "closed" or await self._greet_once(conv.id, conv):
            return
        if conv.state in WITH_A_PERSON:
            if self.customer_side is not None:
                await self.customer_side.remind(conv.id)
            return
        await self._say(conv, self._hello(conv), record={"action": "small_talk", "intent": "start"})

    @staticmethod
    def _hello(conv: Conversation) -> str:
        # The count includes this turn's message: a first "hola" follows only the bot's greeting.
        return "hello" if conv.customer_messages > 1 else "hello_first"

    async def open(self, conversation_key: str, channel: Channel, lang: str | None) -> None:
        """A new widget/Telegram session: greet if the conversation has had no messages yet."""
        lang = lang if lang in ("en", "es") else self.settings.conversation.default_lang
        cid, _ = await self.conversations.open(conversation_key, channel, lang)
        async with self._lock(cid):
            await self._greet_once(cid)

    async def history(self, conversation_key: str, limit: int = 200) -> list[Outbound]:
        """The customer's open (else most recent) conversation, oldest first, customer messages included;
        a short one after the end of the one before (a reload after "adiós" still shows that exchange)."""
        cid = await self.conversations.last_id(conversation_key)
        conv = await self.conversations.get(cid) if cid else None
        if conv is None:
            return []
        shown = [self._outbound(conv, e) for e in await self.conversations.log(conv.id, limit)]
        before = await self.conversations.get(conv.previous) if conv.previous and len(shown) < limit else None
        if before is None or before.key != conv.key:
            return shown
        earlier = await self.conversations.log(before.id, limit - len(shown))
        return [self._outbound(before, e) for e in earlier] + shown

    async def language(self, conversation_key: str) -> str | None:
        """The language the customer's conversation is in; None before there is one."""
        cid = await self.conversations.last_id(conversation_key)  # the open one, else the last
        conv = await self.conversations.get(cid) if cid else None
        return conv.lang if conv else None

    async def status(self, conversation_key: str) -> StatusUpdate | None:
        cid = await self.conversations.current_id(conversation_key)
        conv = await self.conversations.get(cid) if cid else None
        if conv is None:
            return None
        if conv.state in ("queued", "assigned") and self.customer_side is not None:
            # A reload while waiting: the real place and wait (or the agent's name), not a bare "queued".
            standing = await self.customer_side.standing(conv)
            if standing is not None:
                return standing
        return self._status(conv, conv.state)

    async def close_idle(self, conversation_id: str, idle_before: int) -> bool:
        """Close a bot conversation idle since `idle_before` (ms) with a closing message; True if closed."""
        conv = await self.conversations.get(conversation_id)
        if conv is None or conv.state not in IDLE_CLOSABLE:
            await self.conversations.forget_idle(conversation_id)
            return False
        text = texts.say("idle_closed", conv.lang)
        # Nobody to say goodbye to if the customer never wrote (a widget opened and left).
        message = entry_fields("system", text, ts=now_ms(), lang=conv.lang) if conv.customer_messages else []
        closed = await self.conversations.close(conv, "idle", message=message, idle_before=idle_before,
                                                only_state=conv.state)
        if closed is None:
            await self.conversations.watch_idle(conv.id, conv.updated)
            return False
        if conv.awaiting == "clarify":  # left after suggestions without choosing one
            await self._note_not_chosen(conv)
        if closed:
            await self.outbox.emit(self._message(conv, closed, text, sender="system"))
        if not conv.customer_messages:  # nothing happened since: still only the greeting
            await self.conversations.discard(conv)
        await self.outbox.emit(self._status(conv, "closed"))
        return True

    # -- one customer turn --------------------------------------------------------------------

    async def _respond(self, conv: Conversation, inbound: Inbound) -> None:
        if conv.customer_messages == 1:  # a widget opened and left unwritten is no conversation
            self._count("conversations")
        text = inbound.text.strip()
        # A typed rating ("5 de 5", "4 out of 5") is no evidence of a language: numbers and a stock phrase.
        if text and not (conv.awaiting in RATING_ASKED and intents.stars(text) is not None):
            lang = pick_lang(conv.lang, text, first=conv.customer_messages <= 1)
            if lang != conv.lang:
                await self._change(conv.id, lang=lang)
                conv = dataclasses.replace(conv, lang=lang)
        # A greeting that ends "How can I help you?" reads oddly after the customer has just said how:
        # before their first question (or button) the bot only introduces itself.
        asked = not conv.greeted and (
            inbound.kind == "choose" or (bool(text) and intents.small_talk(text) is not Intent.HELLO)
        )
        greeted_now = await self._greet_once(conv.id, conv, "greeting_intro" if asked else "greeting")
        if inbound.kind == "choose":
            await self._choose(conv, inbound)
        elif text:
            await self._text(conv, text, greeted_now)
        elif inbound.attachments:
            await self._attachment(conv, inbound.attachments[0], greeted_now)

    async def _relay(self, conv: Conversation, inbound: Inbound) -> None:
        """A message while with a person: stored already; the handoff side keeps an e-mail left for later."""
        text = inbound.text.strip()
        if self.customer_side is None:
            return
        # "Ya lo he solucionado, gracias. Adiós" while waiting: they leave the queue, told goodbye, rather
        # than an agent picking up someone who has gone. (With an agent, the agent answers.)
        if (text and conv.state == "queued" and intents.ends_with_goodbye(text)
                and await self.customer_side.leave_queue(conv.id)):
            await self._goodbye(conv, {"action": "small_talk", "intent": "bye", "left_queue": True})
            return
        # Asking again for a person (the button, /agent, "¿me atiende alguien?") or after the wait ("any
        # update?", "¿hola?") while waiting: tell them where they stand. With an agent, only the button or
        # /agent: the agent answers what they write.
        pressed = inbound.kind == "choose" and inbound.value == HUMAN
        asked = bool(text) and conv.state == "queued" and bool(intents.requests_person(text) or intents.chases(text))
        if text:
            await self.customer_side.customer_message(conv.id, text, waiting=conv.state == "queued" and not asked)
        if pressed or asked:
            await self.customer_side.remind(conv.id)

    async def _text(self, conv: Conversation, text: str, greeted_now: bool) -> None:
        decision: Decision | None = None  # the matcher's, when the rating prompt already asked it
        if conv.awaiting in RATING_ASKED and self.customer_side is not None:
            # The handoff side reads the record to answer (its language, moved by this message): current first.
            await self._flush(conv.id)
            typed = intents.stars(text) if conv.awaiting != "rating_comment" else None
            if typed is not None:  # "5" typed rather than pressed
                await self.customer_side.rate(conv.id, typed)
                return
            lead = intents.leading_stars(text) if conv.awaiting != "rating_comment" else None
            if lead is not None and await self.customer_side.rate(conv.id, lead[0], comment=lead[1]):
                # "4/5 — faster than last time, bye": the stars with their comment, then, if it ends with
                # one, the goodbye.
                if intents.ends_with_goodbye(lead[1]):
                    await self._goodbye(conv, {"action": "small_talk", "intent": "bye", "after": "rating"})
                return
            # The prompt invites a comment: "la agente fue muy amable" is one, not a request for a person;
            # "adiós" or "gracias, adiós" is the conversation's end, not feedback.
            leaving = intents.small_talk(text) is Intent.BYE or (
                intents.ends_with_goodbye(text) and len(text.split()) <= SHORT_GOODBYE_WORDS
            )  # "gracias Ana, adiós": thanks to the agent by name, then goodbye
            if conv.awaiting != "rating_stars" and not leaving:
                new, decision = self._new_question(text, conv.lang, conv.awaiting == "rating_comment")
                if not new and await self.customer_side.comment(conv.id, text):
                    # "great service, bye" after the stars: noted, then goodbye (before them, the stars are
                    # still asked for).
                    if conv.awaiting == "rating_comment" and intents.ends_with_goodbye(text):
                        await self._goodbye(conv, {"action": "small_talk", "intent": "bye", "after": "comment"})
                    return
            await self._change(conv.id, awaiting="")
            if leaving:
                await self._goodbye(conv, {"action": "small_talk", "intent": "bye", "after": "rating"})
                return
        elif conv.awaiting == "clarify":
            decision = await self._after_suggestions(conv, text)
        reasons = await self._shortcut_reasons(conv, text)
        disappointed = [e for r in reasons for e in r.evidence] if conv.awaiting == "helpful" else []
        if disappointed and all(r.code == esc.UPSET for r in reasons) and all(
            e.startswith(DISSATISFACTION) for e in disappointed
        ):
            # "no me sirve", "that didn't help" after an answer, and nothing angrier: feedback on the answer,
            # as the No button is, not an upset customer. What else they wrote ("…, I wanted to know when it
            # arrives") is read as their question.
            if len(_WORD.findall(_without_quoted(text, disappointed))) <= FEEDBACK_EXTRA_WORDS:
                await self._helpful(conv, False)
                return
            if conv.last_question:
                await self._note_unanswered(conv, "not_helpful", conv.last_question, entry=conv.last_entry)
            reasons = []
        if reasons:
            # A question the knowledge base answers is answered, then the person takes over: "¿Cómo pongo una
            # reclamación?" (a rule and an entry), "wtf where is my order" (upset, and the tracking steps
            # help while they wait), "quiero hablar con el encargado, me llegó roto" (the topic's own team's
            # queue rather than the general one). Not the answer they just had: it is what upset them.
            rules_only = all(r.code == esc.KEYWORD_RULE for r in reasons)
            decision = decision or self._decide(text, conv.lang)
            entry = decision.entry if decision.action is Action.ANSWER else None
            if entry is not None and (rules_only or entry.handoff is not None or entry.id != conv.last_entry):
                then = None if rules_only else HANDOFF_TEXTS.get(reasons[0].code)
                await self._answer(conv, entry, decision_record(decision), text, also=reasons, then_say=then)
                return
            await self._escalate(conv, reasons, HANDOFF_TEXTS.get(reasons[0].code, "handoff_rule"), text)
            return
        if conv.awaiting == "helpful":
            answer = intents.yes_no(text)
            if answer is not None:
                await self._helpful(conv, answer is Intent.YES)
                return
        talk = intents.small_talk(text)
        answer = intents.yes_no(text) if talk is None else None
        if answer is not None:
            # A bare "no" to "anything else?" is the end of the customer's questions (the conversation
            # stays theirs to close); any other bare "sí" or "no" has nothing to match, and is no
            # misunderstanding.
            done = answer is Intent.NO and conv.awaiting == "more"
            await self._change(conv.id, awaiting="")
            await self._say(conv, "nothing_else" if done else "ack_open",
                            record={"action": "small_talk", "intent": answer.value})
            return
        if talk is not None:
            await self._small_talk(conv, talk, greeted_now)
            return
        if decision is None:
            decision = self._decide(text, conv.lang)
        both = self._two_questions(text, decision)
        if both is not None:
            await self._answer_both(conv, both, decision, text)
        elif decision.action is Action.ANSWER and decision.entry is not None:
            await self._answer(conv, decision.entry, decision_record(decision), text)
        elif decision.action is Action.CLARIFY and decision.suggestions:
            await self._clarify(conv, text, decision)
        else:
            await self._not_understood(conv, text, decision)

    async def _attachment(self, conv: Conversation, attachment: Attachment, greeted_now: bool) -> None:
        """The bot reads only text: what it says depends on what was sent (Telegram)."""
        text_name = ATTACHMENT_TEXTS.get(attachment.kind, "attachment_other")
        if text_name == "attachment_sticker":
            # A 👍 sticker says "ok"; nothing is read into a 😀 or ❤️ one (a typed ❤️ is thanks, but a
            # sticker's emoji is its picture's label, not the customer's words).
            talk = intents.small_talk(attachment.caption) if attachment.caption else None
            if talk is Intent.OK:
                await self._small_talk(conv, talk, greeted_now)
                return
        await self._say(conv, text_name, buttons=(self._person_button(conv),))

    async def _shortcut_reasons(self, conv: Conversation, text: str) -> list[Reason]:
        reasons: list[Reason] = []
        words = intents.requests_person(text)
        if not words and self.customer_side is not None:
            # The ways of asking the rules file adds ("pásame con", "put me through"), held to the same
            # test: asked for, not mentioned, nor negated.
            words = intents.as_request(text, self.customer_side.person_words(text, conv.lang))
        if words:
            reasons.append(Reason(esc.ASKED_FOR_PERSON, "the customer asked for a person", words))
        reading = await self._assess_mood(conv, text, asks_person=bool(words))
        if reading is not None and reading.upset:
            detail = f"mood {reading.conversation:.2f} (this message {reading.score:.2f})"
            reasons.append(Reason(esc.UPSET, detail, tuple(reading.evidence)))
        if self.customer_side is not None:
            # Keyword rules of the handoff rules file (legal threats, cancelling the account ...).
            reasons += self.customer_side.extra_reasons(text, conv.lang)
        return reasons

    async def _assess_mood(self, conv: Conversation, text: str, asks_person: bool = False) -> MoodReading | None:
        if self.mood is None:
            return None
        try:
            earlier = list(self._earlier(conv.id)[-MOOD_HISTORY:])
            if asks_person:
                # Asking for a person again, in a later handoff (the first one was answered by a person),
                # is not "repeating the same question" in anger.
                earlier = [e for e in earlier if not intents.requests_person(e)]
            after_answer = conv.awaiting == "helpful"
            reading = cast(MoodReading, self.mood.assess(text, conv.lang, earlier, after_answer))
            await self._change(conv.id, mood=f"{reading.conversation:.3f}")
            return reading
        except Exception:
            logger.exception("engine: mood assessment failed; going on without it")
            return None

    async def _choose(self, conv: Conversation, inbound: Inbound) -> None:
        value = inbound.value
        if value == HUMAN:
            if conv.awaiting == "clarify":  # "Talk to a person" rather than one of the suggestions
                await self._note_not_chosen(conv)
            reason = Reason(esc.ASKED_FOR_PERSON, "the customer chose to talk to a person", ("button",))
            await self._escalate(conv, [reason], "handoff_asked", "")
        elif value == REPHRASE:
            await self._change(conv.id, awaiting="")
            await self._say(conv, "rephrase_go")
        elif value in (HELPFUL_YES, HELPFUL_NO) and conv.awaiting == "helpful":
            await self._helpful(conv, value == HELPFUL_YES)
        elif value.startswith(RATE_PREFIX) and self._rating(value):
            # Only a conversation a person resolved, asking for a rating, is rated: a forged press elsewhere,
            # or an old button after a resolution that asked for none (spam, a duplicate), would skew the
            # satisfaction figures. The handoff side thanks, or says it was rated already.
            taken = None
            if self.customer_side is not None and conv.state == "resolved":
                taken = await self.customer_side.rate(conv.id, self._rating(value))
            if taken is None:
                await self._say(conv, "option_gone", buttons=(self._person_button(conv),))
        elif value.startswith(FAQ_PREFIX) and (entry := self.library.kb.by_id.get(value[len(FAQ_PREFIX) :])):
            # The question answered is what the customer wrote, not the entry's own title: should the answer
            # not help, that is the wording the knowledge base lacks. Unknown for a button of suggestions
            # offered before the customer's last message.
            question = conv.last_question if entry.id in conv.suggested else ""
            await self._answer(conv, entry, {"action": "answer", "via": "suggestion", "entry": entry.id},
                               question)
        else:
            # No longer (an entry gone from the knowledge base, an answer's "Did this help?" once settled,
            # in another tab or an earlier Telegram message) or never offered (a forged frame, an old
            # client): not the customer's words, so not a question the bot failed to understand either.
            await self._say(conv, "option_gone", buttons=(self._person_button(conv),))

    def _decide(self, text: str, lang: str) -> Decision:
        """The knowledge base's decision: matched in the conversation's language when the words agree with
        it; in theirs when they say otherwise, and in both when they say nothing of a language
        ("reembolso" on an English page, "invoice" on a Spanish one). The reply stays in `lang`."""
        es, en = lang_scores(text)
        agrees = es != en and (es > en) == (lang == "es")
        # "Hola, ¿aceptáis PayPal? Gracias": the hello and the thanks only dilute the question.
        return self.library.decide(intents.core_question(text), lang if agrees else None)

    def _two_questions(self, text: str, decision: Decision) -> tuple[Entry, Entry] | None:
        """The two entries of a message that asks two questions ("¿cuánto cuesta el envío y cuánto tarda?"):
        the two the bot was torn between, each the best match of one of the questions, in their order.
        None when that is not so, or when either leads to a person (that path takes one topic)."""
        if decision.action is not Action.CLARIFY or len(decision.suggestions) < 2:
            return None
        pair = {e.id: e for e in decision.suggestions[:2]}
        if any(e.handoff is not None for e in pair.values()):
            return None
        order: list[Entry] = []
        for question in intents.questions_in(text):
            best = self.library.decide(question, decision.match.lang).match.best
            entry = pair.get(best.entry_id) if best is not None else None
            if entry is not None and all(e.id != entry.id for e in order):
                order.append(entry)
        return (order[0], order[1]) if len(order) == 2 else None

    async def _answer_both(self, conv: Conversation, both: tuple[Entry, Entry], decision: Decision,
                           text: str) -> None:
        """One answer after the other; "Did this help?" comes once, with the second."""
        first, second = both
        answer, _ = first.answer_in(conv.lang)
        record = decision_record(decision, action="answer", via="two_questions")
        await self._send(conv, answer, (), {**record, "entry": first.id})
        await self._answer(conv, second, record, text)

    def _new_question(self, text: str, lang: str, invited: bool) -> tuple[bool, Decision | None]:
        """After a resolution: a question, a request for a person, or something the knowledge base answers,
        rather than a comment ("la agente fue muy amable" is one; "quiero hablar con una persona" is not).
        Also the decision when it took one, so the message is not matched twice.

        `invited`: the stars are in and the bot asked for a comment, so a statement is the comment even
        where the knowledge base has an answer ("the refund was slow"); only a question is not.
        """
        if "?" in text or "¿" in text or intents.requests_person(text):
            return True, None
        if invited:
            return intents.asks(text), None
        decision = self._decide(text, lang)
        return decision.action is Action.ANSWER, decision

    @staticmethod
    def _rating(value: str) -> int:
        """1..5 from a "rate:N" button value; 0 for anything else (a forged frame)."""
        digits = value[len(RATE_PREFIX) :]
        return int(digits) if digits in ("1", "2", "3", "4", "5") else 0

    async def _answer(self, conv: Conversation, entry: Entry, record: dict[str, Any], question: str,
                      also: Sequence[Reason] = (), then_say: str | None = None) -> None:
        """The entry's answer; then a person when its topic (entry handoff) or a keyword rule (`also`) asks.
        `then_say`: a text said between the answer and the queue notice (the customer asked for a person,
        or is upset: they hear that is heard)."""
        answer, _ = entry.answer_in(conv.lang)
        record = {**record, "entry": entry.id}
        self._count("answered")
        handoff = entry.handoff is not None or bool(also)
        # The question is kept with the answer: should it not help, it is one the bot could not answer.
        # Suggestions offered for other words no longer stand for this question (see _choose).
        asked = question[: unanswered.MAX_TEXT]
        await self._change(conv.id, misunderstandings=0, last_entry=entry.id, last_question=asked,
                           awaiting="" if handoff else "helpful",
                           **({} if asked == conv.last_question else {"suggested": ""}))
        if not handoff:
            question = texts.say("did_it_help", conv.lang)
            buttons = (Button(texts.say("btn_yes", conv.lang), HELPFUL_YES),
                       Button(texts.say("btn_no", conv.lang), HELPFUL_NO))
            await self._send(conv, f"{answer}\n\n{question}", buttons, record)
            return
        reasons = list(also)
        rule = entry.handoff
        if rule is not None:
            reasons.append(Reason(esc.TOPIC_RULE, f"entry {entry.id}: {rule.department} tier {rule.tier}", ()))
        # The queue notice that follows says a person takes over: a line of our own in between would be
        # the third time the customer reads it.
        record = {**record, "escalate": [r.code for r in reasons]}
        await self._send(conv, answer, (), record)
        if then_say is not None:
            await self._say(conv, then_say, record={"action": "escalate", "reasons": [r.code for r in reasons]})
        await self._escalate(conv, reasons, None, question if also else "", record=record,
                             department=rule.department if rule else "", tier=rule.tier if rule else 1)

    async def _clarify(self, conv: Conversation, text: str, decision: Decision) -> None:
        buttons = tuple(Button(e.title(conv.lang), FAQ_PREFIX + e.id) for e in decision.suggestions)
        record = decision_record(decision, suggested=[e.id for e in decision.suggestions])
        # Understood well enough to offer options: the run of misunderstandings is broken, unless the options
        # before went unchosen too. Round after round of guesses nobody picks is being misunderstood, and
        # the handoff takes over as after "I didn't understand" twice.
        run: dict[str, HashValue] = {"misunderstandings": 0}
        if conv.awaiting == "clarify":
            count = await self.conversations.count_misunderstanding(conv.id)
            if count >= self.settings.conversation.misunderstandings_before_handoff:
                reason = Reason(esc.MISUNDERSTOOD, f"{count + 1} rounds of suggestions, none chosen", (text,))
                await self._escalate(conv, [reason], "handoff_misunderstood", text,
                                     record={**record, "misunderstandings": count})
                return
            run = {}
        self._count("clarified")
        # The question and what was offered for it are kept: the answer chosen answers these words, and
        # should none be chosen, they are a question the bot could not answer.
        await self._change(conv.id, awaiting="clarify", last_question=text[: unanswered.MAX_TEXT],
                           suggested=" ".join(e.id for e in decision.suggestions), **run)
        await self._send(conv, texts.say("clarify", conv.lang), (*buttons, self._person_button(conv)), record)

    async def _not_understood(self, conv: Conversation, text: str, decision: Decision) -> None:
        turn = self._turns.get(conv.id)
        if turn is not None and turn.cut:
            # Its question may be in the part cut off: no "I didn't understand" nor a misunderstanding
            # counted; the notice after the turn asks for the rest.
            await self._change(conv.id, awaiting="")
            return
        best = decision.match.best
        self._count("not_understood")
        await self._note_unanswered(conv, "not_understood", text, best=best.entry_id if best else "",
                                    confidence=decision.match.confidence)
        count = await self.conversations.count_misunderstanding(conv.id)
        record = decision_record(decision, misunderstandings=count)
        if count >= self.settings.conversation.misunderstandings_before_handoff:
            reason = Reason(esc.MISUNDERSTOOD, f"{count} messages in a row not understood", (text,))
            await self._escalate(conv, [reason], "handoff_misunderstood", text, record=record)
            return
        await self._change(conv.id, awaiting="")
        await self._say(conv, "rephrase", buttons=(self._person_button(conv),), record=record)

    async def _helpful(self, conv: Conversation, helped: bool) -> None:
        record = {"action": "feedback", "helpful": helped, "entry": conv.last_entry}
        self._count("helpful_yes" if helped else "helpful_no")
        if helped:
            await self._change(conv.id, misunderstandings=0, awaiting="more")  # "glad" asks "anything else?"
            await self._say(conv, "glad", record=record)
            return
        await self._change(conv.id, awaiting="")
        # A wrong answer counts as a misunderstanding: one more and a person takes over.
        await self.conversations.count_misunderstanding(conv.id)
        if conv.last_question:  # the customer's words; unknown for an old suggestion button (see _choose)
            await self._note_unanswered(conv, "not_helpful", conv.last_question, entry=conv.last_entry)
        buttons = (Button(texts.say("btn_rephrase", conv.lang), REPHRASE), self._person_button(conv))
        await self._say(conv, "sorry_not_helpful", buttons=buttons, record=record)

    async def _small_talk(self, conv: Conversation, talk: Intent, greeted_now: bool) -> None:
        record = {"action": "small_talk", "intent": talk.value}
        if talk is Intent.BYE:
            await self._goodbye(conv, record)
        elif talk is Intent.OK and conv.awaiting == "helpful":
            await self._helpful(conv, True)  # "ok", "perfecto", 👍 to "Did this help?"
        elif talk in (Intent.THANKS, Intent.OK):
            # "Great! Anything else?" agrees with an answer that helped; with none, "ok" just hands back.
            agreed = conv.last_entry and not conv.misunderstandings
            name = "thanks" if talk is Intent.THANKS else "ack" if agreed else "ack_open"
            # Neither is a misunderstanding: "ok" after an answer must not count towards a handoff. "thanks"
            # and "ack" ask "anything else?".
            await self._change(conv.id, misunderstandings=0, awaiting="" if name == "ack_open" else "more")
            await self._say(conv, name, record=record)
        elif talk is Intent.HOW_ARE_YOU:
            await self._say(conv, "how_are_you", record=record)
        elif talk is Intent.ARE_YOU_THERE:
            await self._say(conv, "here", record=record)
        elif talk is Intent.HELP:
            # "Tengo un problema con mi pedido": no entry is meant yet, and none is a misunderstanding either.
            await self._change(conv.id, awaiting="")
            await self._say(conv, "tell_me", record=record)
        elif talk is Intent.ARE_YOU_A_BOT:
            await self._say(conv, "about_bot", buttons=(self._person_button(conv),), record=record)
        elif not greeted_now:  # a fresh greeting already said hello
            await self._say(conv, self._hello(conv), record=record)

    async def _goodbye(self, conv: Conversation, record: dict[str, Any]) -> None:
        """The customer ends the conversation: say goodbye and close it; a next message opens a new one."""
        text = texts.say("bye", conv.lang, business=self.settings.business_name)
        fields = entry_fields("bot", text, ts=now_ms(), lang=conv.lang, decision=record)
        await self._flush(conv.id)
        closed = await self.conversations.close(conv, "customer", message=fields)
        if closed:
            await self.outbox.emit(self._message(conv, closed, text))
            await self.outbox.emit(self._status(conv, "closed"))

    async def _escalate(
        self, conv: Conversation, reasons: list[Reason], text_name: str | None, last_message: str, *,
        department: str = "", tier: int = 1, record: dict[str, Any] | None = None,
    ) -> None:
        """Hand over to a person. `text_name`: what the bot says first, so the customer reads "a person will
        take over" before the queue position; None after an answer that already leads to it."""
        self._count("handed_over")
        if not conv.escalation:  # its first handoff: "finished without a person" counts conversations
            self._count("conversations_handed_over")
        if text_name is not None:
            record = {**(record or {}), "action": "escalate", "reasons": [r.code for r in reasons]}
            await self._say(conv, text_name, record=record)
        # Should a person give the conversation back, the bot starts with a clean slate. Written before the
        # handoff, never after: a person may resolve it at once, and the rating it then asks for must stand.
        await self._change(conv.id, misunderstandings=0, awaiting="")
        await self._flush(conv.id)  # the escalator may read the record: it must be current
        fresh = await self.conversations.get(conv.id)
        context = EscalationContext(
            conversation_key=conv.key, channel=conv.channel, lang=conv.lang,
            department=department or self.settings.handoff.default_department, tier=tier,
            mood_score=fresh.mood if fresh else None,
            candidates=tuple((record or {}).get("candidates", ())), last_message=last_message,
        )
        await self.escalator.escalate(conv.id, reasons, context)
        if self.customer_side is None:
            # Without the handoff side nobody else announces the queue (with position and wait).
            await self.outbox.emit(self._status(conv, "queued"))

    async def _after_suggestions(self, conv: Conversation, text: str) -> Decision:
        """A message instead of a choice among suggestions: unless it names one of them (the customer typed
        their choice), the question they were offered for went unanswered. Returns the bot's decision for
        the message, so that it is not matched twice."""
        decision = self._decide(text, conv.lang)
        typed = decision.action is Action.ANSWER and decision.entry is not None and decision.entry.id in conv.suggested
        if not typed:
            await self._note_not_chosen(conv)
        await self._change(conv.id, awaiting="")
        return decision

    async def _note_not_chosen(self, conv: Conversation) -> None:
        if conv.suggested and conv.last_question:  # the words the suggestions were offered for (see _clarify)
            await self._note_unanswered(conv, "not_chosen", conv.last_question, suggested=conv.suggested,
                                        best=conv.suggested[0])

    async def _note_unanswered(self, conv: Conversation, kind: unanswered.Kind, text: str, **about: Any) -> None:
        """For the people who write the knowledge base; never at the cost of the customer's reply."""
        try:
            await unanswered.note(self.conversations.redis, unanswered.Unanswered(
                kind=kind, text=text, lang=conv.lang, ts=now_ms(), conversation_id=conv.id, **about,
            ))  # fmt: skip
        except Exception:
            logger.exception("engine: could not note an unanswered question of %s", conv.id)

    # -- greeting, sending --------------------------------------------------------------------

    async def _greet_once(
        self, conversation_id: str, conv: Conversation | None = None, text_name: str = "greeting"
    ) -> bool:
        conv = conv or await self.conversations.get(conversation_id)
        if conv is None or conv.state != "bot" or conv.greeted:
            return False
        if not await self.conversations.mark_greeted(conv.id):
            return False
        await self._say(conv, text_name, record={"action": "greeting"})
        return True

    async def _apologise(self, conv: Conversation) -> None:
        try:
            await self._say(conv, "error")
        except Exception:
            logger.exception("engine: could not even apologise to %s", conv.id)

    def _person_button(self, conv: Conversation) -> Button:
        return Button(texts.say("btn_person", conv.lang), HUMAN)

    async def _say(self, conv: Conversation, name: str, *, buttons: tuple[Button, ...] = (),
                   record: Mapping[str, Any] | None = None) -> None:
        text = texts.say(name, conv.lang, business=self.settings.business_name,
                         max_chars=str(self.settings.server.max_message_chars))
        await self._send(conv, text, buttons, record)

    async def _send(self, conv: Conversation, text: str, buttons: tuple[Button, ...],
                    record: Mapping[str, Any] | None) -> None:
        """Append to the transcript, then emit: a client that missed the emit finds it in history."""
        fields = entry_fields("bot", text, ts=now_ms(), lang=conv.lang, buttons=buttons, decision=record)
        turn = self._turns.get(conv.id)
        changes: dict[str, HashValue] = {}
        if turn is not None:
            # Written with the reply, atomically; a refused reply means the record is closed anyway.
            changes, turn.changes = turn.changes, {}
        message = self._message(conv, "", text, buttons=buttons)
        # Stored, the record updated and the reply published in one step (the store publishes it).
        appended = await self.conversations.append(conv.id, fields, sender="bot", changes=changes,
                                                   announce=self.outbox.announcement(message))
        if appended.status != "new":
            logger.warning("engine: conversation %s closed before the reply could be stored", conv.id)
            return
        if self.outbox.listening:
            self.outbox.notify(dataclasses.replace(message, id=appended.message_id))

    def _message(self, conv: Conversation, message_id: str, text: str, *, sender: str = "bot",
                 buttons: tuple[Button, ...] = ()) -> Outbound:
        return Outbound(conversation_id=conv.id, conversation_key=conv.key,
                        channel=cast(Channel, conv.channel), id=message_id, text=text,
                        sender=cast(Any, sender), buttons=buttons, lang=conv.lang)

    def _status(self, conv: Conversation, state: State) -> StatusUpdate:
        return StatusUpdate(conversation_id=conv.id, conversation_key=conv.key,
                            channel=cast(Channel, conv.channel), state=state)

    def _outbound(self, conv: Conversation, entry: LogEntry) -> Outbound:
        text = entry.text or " ".join(f"[{a.kind}]" for a in entry.attachments)
        return Outbound(conversation_id=conv.id, conversation_key=conv.key,
                        channel=cast(Channel, conv.channel), id=entry.id, text=text,
                        sender=cast(Any, entry.sender), buttons=entry.buttons,
                        lang=entry.lang or conv.lang, author=entry.author)

    # -- input hygiene ------------------------------------------------------------------------

    def _bounded(self, inbound: Inbound) -> Inbound:
        """Cut what a channel let through to sizes the store and the matcher are meant for."""
        if (len(inbound.text) <= self.settings.server.max_message_chars and len(inbound.value) <= MAX_VALUE_CHARS
                and len(inbound.client_id) <= MAX_ID_CHARS and len(inbound.customer) <= MAX_VALUE_CHARS
                and len(inbound.attachments) <= MAX_ATTACHMENTS):
            return inbound  # the usual case: nothing to cut
        return dataclasses.replace(
            inbound,
            text=inbound.text[: self.settings.server.max_message_chars],
            value=inbound.value[:MAX_VALUE_CHARS],
            client_id=inbound.client_id[:MAX_ID_CHARS],
            customer=inbound.customer[:MAX_VALUE_CHARS],
            attachments=inbound.attachments[:MAX_ATTACHMENTS],
        )

    def _customer_text(self, inbound: Inbound, lang: str) -> str:
        """What the transcript shows for a customer turn: their words, or the label of the button chosen."""
        if inbound.kind != "choose":
            return inbound.text
        value = inbound.value
        if value.startswith(FAQ_PREFIX):
            entry = self.library.kb.by_id.get(value[len(FAQ_PREFIX) :])
            return entry.title(lang) if entry else inbound.text or value
        labels = {HUMAN: "btn_person", REPHRASE: "btn_rephrase", HELPFUL_YES: "btn_yes", HELPFUL_NO: "btn_no"}
        if value in labels:
            return texts.say(labels[value], lang)
        if inbound.text:
            return inbound.text  # the label the customer saw (Telegram sends it)
        # Not "rate:5" in the history and the agents' transcript.
        return f"★ {self._rating(value)}" if self._rating(value) else value

    # -- a turn's reads and writes --------------------------------------------------------------

    def _earlier(self, conversation_id: str) -> tuple[str, ...]:
        """The customer's earlier texts, read with the turn's claim."""
        turn = self._turns.get(conversation_id)
        return turn.earlier if turn is not None else ()

    async def _change(self, conversation_id: str, **values: HashValue) -> None:
        """Set fields of the conversation record: with the turn's next reply, or now outside a turn."""
        turn = self._turns.get(conversation_id)
        if turn is None:
            await self.conversations.update(conversation_id, **values)
        else:
            turn.changes.update(values)

    async def _flush(self, conversation_id: str) -> None:
        turn = self._turns.get(conversation_id)
        if turn is not None and turn.changes:
            changes, turn.changes = turn.changes, {}
            await self.conversations.update(conversation_id, **changes)

    async def _end_turn(self, conversation_id: str) -> None:
        try:
            await self._flush(conversation_id)
        except Exception:
            logger.exception("engine: could not save the state of %s", conversation_id)
        finally:
            self._turns.pop(conversation_id, None)

    def _lock(self, conversation_id: str) -> asyncio.Lock:
        # One turn at a time per conversation in this process; a customer's socket lives on one worker.
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[conversation_id] = lock
        return lock
