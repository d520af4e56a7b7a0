"""What a handed-off customer hears: queue position and wait, who joined, lapses, the rating question."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis

from bot.messages import RATE_PREFIX, Button, Channel, Outbound, State, StatusUpdate, eta_minutes
from bot.outbox import Outbox
from bot.texts import pick
from handoff import keys
from handoff.agents import Agent
from handoff.conversations import RATING_KIND, Conversation, Conversations, entry_fields, now_ms
from handoff.estimate import WAIT_TTL_S, WaitEstimator, WaitInfo, note_wait
from handoff.keys import WAIT_CHECKS, told_key, wait_key
from handoff.outage import REDIS as REDIS_OUTAGE
from handoff.queues import HandoffQueues, HandoffState
from handoff.rules import HandoffRules

logger = logging.getLogger(__name__)

# Labelled as the transcript shows a pressed one ("★ 4"), so the widget shows the same before and after a reload.
RATING_BUTTONS = tuple(Button(f"★ {n}", f"{RATE_PREFIX}{n}") for n in range(1, 6))
# At most one position refresh per conversation this often (a later change is sent when it ends).
REFRESH_S = 3.0
# A new wait estimate is sent when it moved at least this much (seconds, or share of the wait).
ETA_SLACK_S = 30
ETA_SLACK_SHARE = 0.1
# Waiting conversations of one queue refreshed after a change to it (the rest refresh on their turn).
REFRESH_DEPTH = 100
# A customer is apologised to once per handoff, when the first wait promised is clearly overrun (they
# have waited APOLOGY_FACTOR times what it promised, and at least APOLOGY_OVERRUN_S past it), or when the
# estimate has grown to APOLOGY_FACTOR times the first one (and by at least APOLOGY_MIN_S).
APOLOGY_FACTOR = 1.5
APOLOGY_OVERRUN_S = 30
APOLOGY_MIN_S = 60
TOLD_TTL_S = 600
# A caller that has just assigned a conversation waits at most this long for the joined notice the
# claim's event is giving, so the notice is out before the agent can write.
JOIN_WAIT_S = 2.0
WAIT_CHECK_BATCH = 100
# Outcomes that are not a customer's conversation to rate: spam (nobody to ask), and a duplicate (the
# customer rates the conversation that goes on).
NOT_RATED = frozenset({"spam", "duplicate"})
# Transcript entries read back to see whether the agent wrote before the joined notice could be said.
JOIN_LOOKBACK = 20
QUEUE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*:[0-9]$")
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.){1,8}[A-Za-z]{2,24}")
# What a customer typing their address with a slip leaves: "john.smith@gmail", "john@gmail,com".
ALMOST_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.,-]{0,80}")

# Events after which this customer's own notice carries the queued status.
TOLD_WITH_STATUS = frozenset({"lease_lapsed", "released", "transferred", "escalated", "sla_breach"})

TEXTS: dict[str, dict[str, str]] = {
    "queued": {
        "en": "A person from our team will take over this conversation. You are number {position} in "
        "the queue; estimated wait: {eta}.",
        "es": "Una persona de nuestro equipo continuará esta conversación. Estás en el puesto {position} "
        "de la cola; espera estimada: {eta}.",
    },
    "closed": {
        "en": "Our {department} team is not available right now: someone will answer {when}. You are "
        "number {position} in the queue. If you like, leave your e-mail address here and we will "
        "write to you.",
        "es": "Ahora mismo nuestro equipo de {department} no está disponible: te responderán {when}. "
        "Estás en el puesto {position} de la cola. Si quieres, déjanos aquí tu correo electrónico y "
        "te escribiremos.",
    },
    # The same, to a customer who has left an e-mail address already: not asked for it again.
    "closed_email_known": {
        "en": "Our {department} team is not available right now: someone will answer {when}. You are "
        "number {position} in the queue; if we cannot answer you here, we will write to {email}.",
        "es": "Ahora mismo nuestro equipo de {department} no está disponible: te responderán {when}. "
        "Estás en el puesto {position} de la cola; si no podemos responderte por aquí, te escribiremos a "
        "{email}.",
    },
    "sla_breach": {
        "en": "Sorry for the long wait. We have moved your conversation up so that someone can answer you "
        "sooner. You are number {position}; estimated wait: {eta}.",
        "es": "Perdona la larga espera. Hemos adelantado tu conversación para que te atiendan antes. Estás "
        "en el puesto {position}; espera estimada: {eta}.",
    },
    "duplicate": {
        "en": "Our team has closed this conversation: your request is being handled in another conversation.",
        "es": "Nuestro equipo ha cerrado esta conversación: tu consulta se está atendiendo en otra conversación.",
    },
    "apology": {
        "en": "Sorry for the wait: it is taking longer than we expected. You are number {position}; "
        "estimated wait now: {eta}.",
        "es": "Perdona la espera: está tardando más de lo previsto. Estás en el puesto {position}; "
        "espera estimada ahora: {eta}.",
    },
    # When a customer with a person asks for one again.
    "still_queued": {
        "en": "You are still in the queue for a person from our team: number {position}; estimated wait: "
        "{eta}. You can keep writing here: they will read it.",
        "es": "Sigues en la cola para hablar con una persona de nuestro equipo: puesto {position}; espera "
        "estimada: {eta}. Puedes seguir escribiendo aquí: lo leerán.",
    },
    "noted_closed": {
        "en": "Noted: the team will read this when they are back ({when}).",
        "es": "Anotado: el equipo lo leerá cuando vuelva ({when}).",
    },
    "still_queued_closed": {
        "en": "You are still in the queue: number {position}. Someone will answer {when}. You can keep "
        "writing here: they will read it.",
        "es": "Sigues en la cola: puesto {position}. Te responderán {when}. Puedes seguir escribiendo "
        "aquí: lo leerán.",
    },
    "with_agent": {
        "en": "{name} from our team is with you in this conversation: write here and they will answer.",
        "es": "{name}, de nuestro equipo, está contigo en esta conversación: escribe aquí y te responderá.",
    },
    "joined": {"en": "{name} has joined the conversation.", "es": "{name} se ha unido a la conversación."},
    "lapsed": {
        # No "someone will be with you shortly": the place and wait told right after say how soon.
        "en": "Sorry, the person helping you got disconnected. You are back in the queue, ahead of those who "
        "were waiting.",
        "es": "Perdona, la persona que te atendía se ha desconectado. Vuelves a la cola, por delante de "
        "quienes esperaban.",
    },
    "transferred": {
        "en": "I'm passing you to our {department} team; they will see this conversation.",
        "es": "Te paso con nuestro equipo de {department}; verán esta conversación.",
    },
    "escalated": {
        "en": "I'm passing you to a specialist from our team; they will see this conversation.",
        "es": "Te paso con un especialista de nuestro equipo; verá esta conversación.",
    },
    "rate": {
        "en": "How did we do? Choose from 1 (bad) to 5 (great). You may also write a comment.",
        "es": "¿Qué tal te hemos atendido? Elige de 1 (mal) a 5 (genial). También puedes escribirnos un comentario.",
    },
    "rated": {"en": "Thank you for your rating!", "es": "¡Gracias por tu valoración!"},
    "already_rated": {
        "en": "You have already rated this conversation. Thank you!",
        "es": "Ya has valorado esta conversación. ¡Gracias!",
    },
    "commented": {
        "en": "Thank you, we have noted your comment.",
        "es": "Gracias, hemos anotado tu comentario.",
    },
    "commented_rate": {
        "en": "Thank you, we have noted your comment. You can still rate us from 1 (bad) to 5 (great).",
        "es": "Gracias, hemos anotado tu comentario. Aún puedes valorarnos de 1 (mal) a 5 (genial).",
    },
    "released": {
        "en": "The person helping you has had to leave the conversation. You are back in the queue, ahead of "
        "those who were waiting.",
        "es": "La persona que te atendía ha tenido que dejar la conversación. Vuelves a la cola, por delante "
        "de quienes esperaban.",
    },
    "email": {
        "en": "Thanks: if we cannot answer you here, we will write to {email}.",
        "es": "Gracias: si no podemos responderte por aquí, te escribiremos a {email}.",
    },
    "email_check": {
        "en": "That e-mail address looks incomplete ({email}): could you check it and write it again?",
        "es": "Esa dirección de correo parece incompleta ({email}): ¿puedes revisarla y escribirla de nuevo?",
    },
    "back_to_bot": {
        "en": "You are back with the virtual assistant. How can I help?",
        "es": "Vuelves a estar con el asistente virtual. ¿En qué puedo ayudarte?",
    },
    "eta_soon": {"en": "less than a minute", "es": "menos de un minuto"},
    "eta_minute": {"en": "about a minute", "es": "alrededor de un minuto"},
    "eta_minutes": {"en": "about {n} minutes", "es": "unos {n} minutos"},
    "eta_hours": {"en": "about {h} h {m} min", "es": "unas {h} h {m} min"},
    "eta_unknown": {"en": "as soon as someone is free", "es": "en cuanto alguien quede libre"},
    "today": {"en": "today at {time}", "es": "hoy a las {time}"},
    "tomorrow": {"en": "tomorrow at {time}", "es": "mañana a las {time}"},
    "on_day": {
        "en": "on {weekday} {day} {month} at {time}",
        "es": "el {weekday} {day} de {month} a las {time}",
    },
    "zone": {"en": "{when} ({zone} time)", "es": "{when} (hora de {zone})"},
    "zone_code": {"en": "{when} ({zone})", "es": "{when} ({zone})"},
}
WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "es": ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
}
MONTHS = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
}  # fmt: skip


def say(text_id: str, lang: str, **values: Any) -> str:
    return pick(TEXTS, text_id, lang, **values)


def eta_text(eta_s: int | None, lang: str) -> str:
    """A wait as a customer reads it: "about 4 minutes", "unos 4 minutos"."""
    if eta_s is None:
        return say("eta_unknown", lang)
    if eta_s < 60:
        return say("eta_soon", lang)
    minutes = eta_minutes(eta_s)
    if minutes <= 1:
        return say("eta_minute", lang)
    if minutes < 90:
        return say("eta_minutes", lang, n=minutes)
    return say("eta_hours", lang, h=minutes // 60, m=minutes % 60)


def promised_s(eta_s: int) -> int:
    """The wait a customer reads in `eta_text(eta_s)`, in seconds: "less than a minute" promises 60,
    "about 3 minutes" 180."""
    return 60 if eta_s < 60 else max(1, eta_minutes(eta_s)) * 60


def apology_after_s(first_eta_s: int) -> float:
    """Seconds after the first wait was told when it counts as clearly overrun."""
    promised = promised_s(first_eta_s)
    return max(promised * APOLOGY_FACTOR, promised + APOLOGY_OVERRUN_S)


def opening_text(opens_at: datetime, now: datetime, lang: str) -> str:
    """When someone will answer, in the department's zone: "tomorrow at 09:00 (Europe/Madrid time)"."""
    lang = lang if lang in WEEKDAYS else "en"
    tz = opens_at.tzinfo
    today = now.astimezone(tz).date()
    clock = opens_at.strftime("%H:%M")
    if opens_at.date() == today:
        when = say("today", lang, time=clock)
    elif opens_at.date() == today + timedelta(days=1):
        when = say("tomorrow", lang, time=clock)
    else:
        when = say(
            "on_day", lang, weekday=WEEKDAYS[lang][opens_at.weekday()], day=opens_at.day,
            month=MONTHS[lang][opens_at.month - 1], time=clock,
        )  # fmt: skip
    # "Europe/Madrid" reads as "Madrid time"; a zone without a place ("UTC") is shown as it is.
    zone = str(tz)
    if "/" in zone:
        return say("zone", lang, when=when, zone=zone.rsplit("/", 1)[1].replace("_", " "))
    return say("zone_code", lang, when=when, zone=zone)


def _at(now: int | None) -> datetime:
    return datetime.now(UTC) if now is None else datetime.fromtimestamp(now / 1000, UTC)


def _status_of(
    conv: Conversation, state: State, position: int | None = None, eta_s: int | None = None, agent: str = ""
) -> StatusUpdate:
    return StatusUpdate(conversation_id=conv.id, conversation_key=conv.key, channel=cast(Channel, conv.channel),
                        state=state, position=position, eta_s=eta_s, agent=agent)


# (place in the queue, wait in seconds) as the customer is shown them.
Standing = tuple[int | None, int | None]


def _noted(shown: Standing) -> str:
    """A standing as kept on the wait hash ("position:eta", either may be empty); _last_shown reads it."""
    return ":".join("" if n is None else str(n) for n in shown)


def _same_standing(before: Standing | None, now: Standing) -> bool:
    """Whether a customer already shown `before` would learn nothing from `now`: same place, and a wait
    that moved less than the widget's coarsest unit can show (a wait counts down by itself)."""
    if before is None or before[0] != now[0]:
        return False
    if before[1] is None or now[1] is None:
        return before[1] == now[1]
    return abs(before[1] - now[1]) < max(ETA_SLACK_S, ETA_SLACK_SHARE * now[1])


def find_email(text: str) -> str | None:
    m = EMAIL_RE.search(text[:2000])
    return m.group(0) if m else None


def find_almost_email(text: str) -> str | None:
    """An attempt at an address that is not one ("john.smith@gmail"), when the text has no real one."""
    if find_email(text) is not None:
        return None
    m = ALMOST_EMAIL_RE.search(text[:2000])
    return m.group(0).rstrip(".,") if m else None


AgentSource = Callable[[], Awaitable[Sequence[Agent]]]


class CustomerNotifier:
    """Tells customers where their handoff stands, from the service and from the handoff events."""

    def __init__(
        self,
        redis: aioredis.Redis,
        conversations: Conversations,
        outbox: Outbox,
        queues: HandoffQueues,
        estimator: WaitEstimator,
        rules: HandoffRules,
        agents: AgentSource,
        display_name: Callable[[str], Awaitable[str]],
    ) -> None:
        self.redis = redis
        self.conversations = conversations
        self.outbox = outbox
        self.queues = queues
        self.estimator = estimator
        self.rules = rules
        self.agents = agents
        self.display_name = display_name
        self.subscribed = asyncio.Event()
        self._pending: dict[str, asyncio.Task[None]] = {}

    # -- speaking ----------------------------------------------------------------------------------

    async def say(
        self, conv: Conversation, text: str, buttons: tuple[Button, ...] = (), client_id: str = "",
        after_close: bool = False, kind: str = "message",
    ) -> str | None:  # fmt: skip
        """A system message: into the transcript first, then out to the customer's channel; a notice
        with a `client_id` is said once, whoever says it again. `after_close`: said even when the
        conversation is closed (then kept in no transcript), for the thanks for a rating given after it.
        `kind`: RATING_KIND for what closes a handoff (the rating question and the thanks for it)."""
        fields = entry_fields("system", text, ts=now_ms(), kind=kind, lang=conv.lang, buttons=buttons)
        appended = await self.conversations.append(conv.id, fields, sender="system", client_id=client_id)
        message_id = appended.message_id
        if appended.status == "closed" and after_close:
            message_id = ""  # a closed transcript takes no more entries; the customer still hears it
        elif appended.status != "new":
            return None
        await self.outbox.emit(Outbound(
            conversation_id=conv.id, conversation_key=conv.key, channel=cast(Channel, conv.channel),
            id=message_id, text=text, sender="system", buttons=buttons, lang=conv.lang,
        ))  # fmt: skip
        return message_id

    async def status(
        self, conv: Conversation, state: State, position: int | None = None, eta_s: int | None = None,
        agent: str = "",
    ) -> None:  # fmt: skip
        await self.outbox.emit(_status_of(conv, state, position, eta_s, agent))

    async def _show_queued(self, conv: Conversation, shown: Standing) -> None:
        """The queued status with this (place, wait), noted as what the customer was last shown (in Redis:
        whichever worker refreshes next compares with it)."""
        await note_wait(self.redis, conv.id, {"shown": _noted(shown)})
        await self.status(conv, "queued", *shown)

    async def _last_shown(self, conversation_id: str) -> Standing | None:
        raw = cast(str | None, await self.redis.hget(wait_key(conversation_id), "shown"))
        if not raw:
            return None
        position, _, eta = raw.partition(":")
        return (int(position) if position else None, int(eta) if eta else None)

    async def _once(self, conversation_id: str, what: str) -> bool:
        """True for the one worker (and the one event) that gives this notice."""
        return bool(await self.redis.set(told_key(conversation_id, what), "1", nx=True, ex=TOLD_TTL_S))

    # -- the queue -----------------------------------------------------------------------------------

    async def wait_info(self, conversation_id: str, now: int | None = None) -> WaitInfo:
        return await self.estimator.for_conversation(conversation_id, await self.agents(), now)

    def _department(self, name: str, lang: str) -> str:
        dept = self.rules.departments.get(name)
        return dept.display_in(lang) if dept else name

    async def hold_refresh(self, conversation_id: str) -> None:
        """Take the conversation's refresh slot: its queued notice is on the way, with the status, and the
        queue's own event (handled meanwhile) would otherwise send the same status first."""
        await self.redis.set(told_key(conversation_id, "refresh"), "1", px=int(REFRESH_S * 1000))

    async def begin(self, conversation_id: str) -> None:
        """A new handoff of this conversation: forget the last one's waits, promise, apology and the
        agent the customer was told about."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(wait_key(conversation_id))
            pipe.zrem(WAIT_CHECKS, conversation_id)
            await pipe.execute()

    async def tell_queued(self, conversation_id: str, now: int | None = None) -> WaitInfo | None:
        """The first notice of a handoff: a person will take over, position, wait or opening hours."""
        now = now_ms() if now is None else now
        conv = await self.conversations.get(conversation_id)
        if conv is None:
            return None
        await self.hold_refresh(conv.id)
        info = await self.wait_info(conversation_id, now)
        if info.position is None:
            return info
        await self._tell_wait(conv, info, now)
        return info

    async def _tell_wait(self, conv: Conversation, info: WaitInfo, now: int) -> None:
        """The wait as a new queue is told it: place and wait, or, out of hours, when someone answers and
        the offer to leave an e-mail address; then the status, noted as the first promise of this queue."""
        if info.opens_at is not None:
            email = cast(str | None, await self.redis.hget(keys.conv(conv.id), "email"))
            text = say(
                "closed_email_known" if email else "closed",
                conv.lang,
                department=self._department(info.department, conv.lang),
                when=opening_text(info.opens_at, _at(now), conv.lang),
                position=info.position,
                email=email or "",
            )
            eta = -1  # nothing promised in minutes: no apology for a night's wait
        else:
            text = say("queued", conv.lang, position=info.position, eta=eta_text(info.eta_s, conv.lang))
            eta = info.eta_s if info.eta_s is not None else -1
        await self.say(conv, text)
        # The first promise, noted with what was shown: its apology falls due when it is clearly overrun
        # (apology_after_s).
        shown = (info.position, self._eta(info, now))
        await note_wait(self.redis, conv.id, {"eta0": eta, "told_at": now, "shown": _noted(shown)})
        # Just told: only the next look at the wait is set, and before the status goes out, so whoever
        # sees the customer queued finds that look scheduled.
        await self._revise(conv.id, info, now)
        await self.status(conv, "queued", *shown)

    async def remind(self, conversation_id: str, now: int | None = None) -> bool:
        """Where a customer with a person stands (their place and wait, or who is with them); False if
        they are not with a person. Silence after asking again would look like nobody is there."""
        conv = await self.conversations.get(conversation_id)
        st = await self.queues.state(conversation_id)
        if conv is None or st is None:
            return False
        if st.state == "assigned":
            name = await self.display_name(st.agent)
            await self.say(conv, say("with_agent", conv.lang, name=name))
            await self.status(conv, "assigned", agent=name)
            return True
        if st.state != "queued":
            return False
        now = now_ms() if now is None else now
        info = await self.wait_info(conversation_id, now)
        if info.position is None:
            return False
        apology = await self._revise(conv.id, info, now)
        if info.opens_at is not None:
            when = opening_text(info.opens_at, _at(now), conv.lang)
            text = say("still_queued_closed", conv.lang, position=info.position, when=when)
        elif apology:
            # The wait promised has run out: the revised one comes with the apology, not as if on time.
            text = self._apology(conv, info)
        else:
            text = say("still_queued", conv.lang, position=info.position, eta=eta_text(info.eta_s, conv.lang))
        await self.say(conv, text)
        await self._show_queued(conv, (info.position, self._eta(info, now)))
        return True

    async def note_for_later(self, conversation_id: str, now: int | None = None) -> bool:
        """A message written while queued out of hours (not a chase, no e-mail address): nobody reads it
        for hours, so the customer hears once per handoff that it is kept for the team, rather than only
        seeing it delivered. True when said."""
        key = wait_key(conversation_id)
        if await self.redis.hexists(key, "noted"):
            return False
        conv = await self.conversations.get(conversation_id)
        if conv is None or conv.state != "queued":
            return False
        now = now_ms() if now is None else now
        info = await self.wait_info(conversation_id, now)
        if info.opens_at is None or not await self.redis.hsetnx(key, "noted", now):
            return False
        await self.redis.expire(key, WAIT_TTL_S)
        when = opening_text(info.opens_at, _at(now), conv.lang)
        return await self.say(conv, say("noted_closed", conv.lang, when=when)) is not None

    async def standing(self, conv: Conversation) -> StatusUpdate | None:
        """The customer's status now (place and wait, or who is with them), for a channel that connects
        again; None when the conversation is not with the handoff side."""
        st = await self.queues.state(conv.id)
        if st is None:
            return None
        if st.state == "assigned":
            return _status_of(conv, "assigned", agent=await self.display_name(st.agent))
        if st.state != "queued":
            return None
        info = await self.wait_info(conv.id)
        return _status_of(conv, "queued", info.position, self._eta(info))

    @staticmethod
    def _eta(info: WaitInfo, now: int | None = None) -> int | None:
        if info.opens_at is not None:
            return max(0, int((info.opens_at - _at(now)).total_seconds()))
        return info.eta_s

    async def refresh(
        self, conversation_id: str, force: bool = False, now: int | None = None, throttle: bool = True
    ) -> None:
        """Send the customer their current position and wait (throttled; a skipped change follows later),
        and the apology if the wait promised has clearly run out. `force`: send it even if unchanged;
        `throttle=False`: now, as of `now`, whoever holds the refresh slot (a wait that ran out)."""
        if not force and throttle:
            taken = await self.redis.set(told_key(conversation_id, "refresh"), "1", nx=True, px=int(REFRESH_S * 1000))
            if not taken:
                self._trail(conversation_id)
                return
        conv = await self.conversations.get(conversation_id)
        if conv is None or conv.state != "queued":
            return
        now = now_ms() if now is None else now
        info = await self.wait_info(conversation_id, now)
        if info.position is None:
            return
        if await self._revise(conv.id, info, now):
            await self.say(conv, self._apology(conv, info))
            force = True  # the status under the apology says the same wait
        shown = (info.position, self._eta(info, now))
        if not force and _same_standing(await self._last_shown(conv.id), shown):
            return
        await self._show_queued(conv, shown)

    @staticmethod
    def _apology(conv: Conversation, info: WaitInfo) -> str:
        return say("apology", conv.lang, position=info.position, eta=eta_text(info.eta_s, conv.lang))

    async def _revise(self, conversation_id: str, info: WaitInfo, now: int) -> bool:
        """Whether this customer is owed the (one) apology now, taking it if so (the first wait told has
        clearly run out, or the estimate has grown well past it); and when to look at this wait again by
        itself: when the wait told now runs out, or earlier when the apology falls due. Nothing of either
        out of hours (the opening time is what was told). With nobody online no new wait in minutes is
        promised, but one told before still runs out: the apology then says "as soon as someone is free"
        rather than leave the customer with a promise nobody is keeping."""
        if info.opens_at is not None:
            await self.redis.zrem(WAIT_CHECKS, conversation_id)
            return False
        first_raw, told_raw, apologised = await self.redis.hmget(
            wait_key(conversation_id), ["eta0", "told_at", "apologised_at"]
        )
        first = int(first_raw) if first_raw not in (None, "") else -1
        told_at = int(told_raw) if told_raw not in (None, "") else None
        # When the first wait told counts as clearly overrun (ms); None when none was promised.
        overrun_at = told_at + apology_after_s(first) * 1000 if first >= 0 and told_at is not None else None
        if info.eta_s is None:
            if overrun_at is None or apologised:
                await self.redis.zrem(WAIT_CHECKS, conversation_id)
                return False
            if now < overrun_at:
                await self.redis.zadd(WAIT_CHECKS, {conversation_id: int(overrun_at)})
                return False
            await self.redis.zrem(WAIT_CHECKS, conversation_id)
            return bool(await self.redis.hsetnx(wait_key(conversation_id), "apologised_at", now))
        due = False
        if first >= 0 and not apologised:
            overrun = overrun_at is not None and now >= overrun_at
            grown = info.eta_s >= max(first * APOLOGY_FACTOR, first + APOLOGY_MIN_S)
            due = (overrun or grown) and bool(await self.redis.hsetnx(wait_key(conversation_id), "apologised_at", now))
        at = now + promised_s(info.eta_s) * 1000
        if overrun_at is not None and not (apologised or due):
            at = min(at, int(overrun_at))
        await self.redis.zadd(WAIT_CHECKS, {conversation_id: max(at, now + 1000)})
        return due

    async def check_waits(self, now: int | None = None) -> list[str]:
        """For the sweeper: revise the waits that have run out (status, and the apology once). The ids."""
        now = now_ms() if now is None else now
        due = [str(c) for c in await self.redis.zrangebyscore(WAIT_CHECKS, "-inf", now, start=0, num=WAIT_CHECK_BATCH)]
        for conversation_id in due:
            await self.redis.zrem(WAIT_CHECKS, conversation_id)
            st = await self.queues.state(conversation_id)
            if st is None or st.state != "queued":
                continue
            await self.refresh(conversation_id, now=now, throttle=False)
        return due

    def _trail(self, conversation_id: str) -> None:
        if conversation_id in self._pending:
            return

        async def later() -> None:
            try:
                await asyncio.sleep(REFRESH_S)
                await self.refresh(conversation_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not REDIS_OUTAGE.failed("position refresh", exc):
                    logger.exception("position refresh of %s failed", conversation_id)
            finally:
                self._pending.pop(conversation_id, None)

        self._pending[conversation_id] = asyncio.get_running_loop().create_task(later())

    async def refresh_queue(self, queue_name: str) -> None:
        department, _, tier = queue_name.partition(":")
        for conv in await self.queues.waiting(department, int(tier), REFRESH_DEPTH):
            # One already due for a trailing refresh gets it within REFRESH_S, showing the standing as
            # of then: asking Redis for its refresh slot again is a round trip per queued customer per
            # queue event, for nothing (the slot is held, or the trail is about to take it).
            if conv not in self._pending:
                await self.refresh(conv)

    # -- events ----------------------------------------------------------------------------------------

    async def handle(self, event: dict[str, Any]) -> None:
        """One handoff event (handoff.lua publish): tell the customer what changed for them."""
        name, conv_id = str(event.get("event", "")), str(event.get("conv", ""))
        if not conv_id:
            return
        if name in TOLD_WITH_STATUS:
            # Its handler says what happened with the status; the queue refresh below must not send the
            # same status ahead of it (and again after it).
            await self.hold_refresh(conv_id)
        for side in ("from", "to"):
            queue = str(event.get(side, ""))
            if QUEUE_NAME_RE.match(queue):
                await self.refresh_queue(queue)
        if not await self._once(conv_id, f"{name}:{event.get('ts', '')}"):
            return
        conv = await self.conversations.get(conv_id)
        if conv is None or conv.state == "closed":
            return
        handler = {
            "claimed": self._joined, "assigned": self._joined, "lease_lapsed": self._lapsed,
            "transferred": self._moved, "escalated": self._moved, "resolved": self._resolved,
            "returned_to_bot": self._returned, "released": self._released, "sla_breach": self._requeued,
        }.get(name)  # fmt: skip
        if handler is not None:
            await handler(conv, event)

    async def _joined(self, conv: Conversation, event: dict[str, Any]) -> None:
        st = await self.queues.state(conv.id)
        if st is None or st.state != "assigned" or st.agent != event.get("agent"):
            return  # already moved on: the later event tells
        await self._tell_joined(conv, st)

    async def tell_joined(self, conversation_id: str) -> bool:
        """Tell the customer who took their conversation, for a caller that has just assigned it (the
        claim itself, so the notice is out before the agent can write); the claim's event then adds
        nothing. False if it is not assigned."""
        conv = await self.conversations.get(conversation_id)
        st = await self.queues.state(conversation_id)
        if conv is None or st is None or st.state != "assigned":
            return False
        await self._tell_joined(conv, st, wait=True)
        return True

    async def _tell_joined(self, conv: Conversation, st: HandoffState, wait: bool = False) -> None:
        """The assigned status and "<name> has joined", once per assignment: the claim's event and the
        claiming caller both get here, and the first takes the slot. A caller (`wait`) that finds the
        event already telling waits for it to finish, so the notice still comes before the agent writes."""
        slot = told_key(conv.id, f"joined:{st.agent}:{st.claimed_at}")
        if not await self.redis.set(slot, "telling", nx=True, ex=TOLD_TTL_S):
            if wait:
                await self._until_told(slot)
            return
        try:
            await self.conversations.set_state(conv.id, "assigned")
            await self.redis.zrem(WAIT_CHECKS, conv.id)
            name = await self.display_name(st.agent)
            await self.status(conv, "assigned", agent=name)
            if await self._agent_wrote(conv.id, st):
                # The event came after the agent's first reply, which carries their name: "has joined" below
                # it would read as a second person arriving.
                logger.info("handoff: %s: no joined notice, %s has already written", conv.id, st.agent)
            elif await self.redis.hget(wait_key(conv.id), "agent") == st.agent:
                # The same person back after a transfer or escalation: they never left the customer's side.
                logger.info("handoff: %s: no joined notice, %s was already with the customer", conv.id, st.agent)
            else:
                joined = say("joined", conv.lang, name=name)
                await self.say(conv, joined, client_id=f"joined:{st.agent}:{st.claimed_at}")
            await note_wait(self.redis, conv.id, {"agent": st.agent})
        finally:
            await self.redis.set(slot, "told", ex=TOLD_TTL_S)

    async def _until_told(self, slot: str) -> None:
        """Wait (JOIN_WAIT_S at most) for the worker that took `slot` to finish telling: it may be another
        process, so Redis is polled; there is nothing in this process to wait on."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + JOIN_WAIT_S
        while loop.time() < give_up:
            if await self.redis.get(slot) != "telling":
                return
            await asyncio.sleep(0.02)

    async def _agent_wrote(self, conversation_id: str, st: HandoffState) -> bool:
        recent = await self.conversations.log(conversation_id, JOIN_LOOKBACK)
        return any(e.sender == "agent" and e.ts >= st.claimed_at for e in recent)

    async def _requeued(self, conv: Conversation, event: dict[str, Any]) -> None:
        """An SLA breach moved the wait up (priority, and a tier unless at the top): one apology for it,
        with the new place and wait (this event comes once per breach, not at every sweep)."""
        st = await self.queues.state(conv.id)
        if st is None or st.state != "queued":
            return
        if conv.state != "queued":
            await self.conversations.set_state(conv.id, "queued")
        now = now_ms()
        info = await self.wait_info(conv.id, now)
        if info.position is not None and info.opens_at is None:
            # Out of hours the customer was told when someone answers; nothing promised has run out.
            eta = eta_text(info.eta_s, conv.lang)
            await self.say(conv, say("sla_breach", conv.lang, position=info.position, eta=eta))
            # This is the apology: the wait's own one would say the same again.
            await self.redis.hsetnx(wait_key(conv.id), "apologised_at", now)
        await self.refresh(conv.id, force=True, now=now)

    async def _lapsed(self, conv: Conversation, event: dict[str, Any]) -> None:
        await self._back_in_queue(conv, "lapsed")

    async def _released(self, conv: Conversation, event: dict[str, Any]) -> None:
        """An agent gave the conversation back to the queue: the customer hears why the agent went quiet."""
        await self._back_in_queue(conv, "released")

    async def _back_in_queue(self, conv: Conversation, text_id: str) -> None:
        """Front of the queue again after an agent had it: why (text_id), then the place and wait."""
        st = await self.queues.state(conv.id)
        if st is None or st.state != "queued":
            return
        await self.conversations.set_state(conv.id, "queued")
        # The customer hears the person has gone: whoever claims next, the same one too, has joined anew.
        await self.redis.hdel(wait_key(conv.id), "agent")
        await self.say(conv, say(text_id, conv.lang))
        now = now_ms()
        await self._promise_anew(conv.id, now)
        await self.refresh(conv.id, force=True, now=now)

    async def _promise_anew(self, conversation_id: str, now: int) -> None:
        """Back in a queue after a person had the conversation: the wait told now is a new promise, and
        only its overrun is apologised for. The first wait of the handoff ran out while they were being
        helped; apologising for it as they are handed on reads as if nobody had helped at all."""
        info = await self.wait_info(conversation_id, now)
        if info.position is None or info.opens_at is not None:
            return
        await self.redis.hdel(wait_key(conversation_id), "apologised_at")
        eta = info.eta_s if info.eta_s is not None else -1
        await note_wait(self.redis, conversation_id, {"eta0": eta, "told_at": now})

    async def _moved(self, conv: Conversation, event: dict[str, Any]) -> None:
        st = await self.queues.state(conv.id)
        if st is None or st.state != "queued":
            return
        await self.conversations.set_state(conv.id, "queued")
        if event.get("event") == "transferred":
            text = say("transferred", conv.lang, department=self._department(st.department, conv.lang))
        else:
            text = say("escalated", conv.lang)
        await self.say(conv, text)
        now = now_ms()
        info = await self.wait_info(conv.id, now)
        if info.position is not None and info.opens_at is not None:
            # Into a queue that is closed now: when someone will answer, and the e-mail offer, as a new
            # handoff is told (a wait in minutes from the queue before would promise what nobody keeps).
            await self._tell_wait(conv, info, now)
            return
        await self._promise_anew(conv.id, now)
        await self.refresh(conv.id, force=True, now=now)

    async def _resolved(self, conv: Conversation, event: dict[str, Any]) -> None:
        await self.conversations.set_state(conv.id, "resolved")
        await self.redis.zrem(WAIT_CHECKS, conv.id)
        # A conversation handed over again after a resolution is rated afresh (the audit keeps the first).
        await self.redis.hdel(keys.conv(conv.id), "rating", "rating_comment")
        outcome = str(event.get("outcome") or "")
        # "rating_asked": this resolution asked for stars (HandoffService.rate takes them only then, until
        # given); not for spam or a duplicate, where an old button must not rate this conversation.
        asked = outcome not in NOT_RATED
        await self.conversations.update(conv.id, awaiting="rating" if asked else "", rating_asked="1" if asked else "")
        await self.status(conv, "resolved")
        if outcome == "duplicate":
            await self.say(conv, say("duplicate", conv.lang), kind=RATING_KIND)
        elif outcome not in NOT_RATED:
            await self.say(conv, say("rate", conv.lang), RATING_BUTTONS, kind=RATING_KIND)

    async def _returned(self, conv: Conversation, event: dict[str, Any]) -> None:
        await self.conversations.set_state(conv.id, "bot")
        await self.redis.zrem(WAIT_CHECKS, conv.id)
        await self.status(conv, "bot")
        await self.say(conv, say("back_to_bot", conv.lang))

    async def run(self, stop: asyncio.Event) -> None:
        """Listen to the handoff events until `stop`; a broken subscription is opened again."""
        delay = 0.1
        while not stop.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(keys.EVENTS)
                self.subscribed.set()
                REDIS_OUTAGE.ok()
                delay = 0.1
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    await self._dispatch(message["data"])
            except (aioredis.RedisError, OSError) as exc:
                if not REDIS_OUTAGE.failed("handoff events", exc):
                    logger.exception("handoff events: subscription failed; retrying in %.1fs", delay)
                self.subscribed.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())

    async def _dispatch(self, raw: str | bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            logger.warning("handoff events: dropped a malformed event")
            return
        if not isinstance(event, dict):
            return
        try:
            await self.handle(event)
        except (aioredis.RedisError, OSError):
            raise
        except Exception:
            logger.exception("handoff events: could not tell the customer about %s", event.get("event"))

    async def close(self) -> None:
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
