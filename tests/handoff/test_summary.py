import redis.asyncio as aioredis

from bot.messages import HELPFUL_NO, RATE_PREFIX, Button
from handoff import policy
from handoff.conversations import RATING_KIND, LogEntry
from handoff.policy import Reason, route
from handoff.record import CandidateScore, HandoffRecord, build_record, load_record, save_record, with_line
from handoff.service import candidates_from, lines_of
from handoff.summary import MAX_SUMMARY_CHARS, Line, build_summary
from tests.handoff.queue_helpers import rules

TRANSCRIPT = [
    Line("customer", "hola"),
    Line("bot", "¡Hola! ¿En qué puedo ayudarte?"),
    Line("customer", "mi paquete llegó roto y nadie me contesta los correos"),
    Line("bot", "¿Quizás buscas: devoluciones?"),
    Line("customer", "no"),
    Line("customer", "estoy harto, quiero hablar con un agente"),
]


def test_summary_says_why_what_and_who() -> None:
    reasons = [policy.upset(0.82, ["harto"]), Reason("asked_for_person", "es", ("agente",))]
    text = build_summary(
        TRANSCRIPT,
        reasons,
        lang="es",
        channel="web",
        mood_score=0.82,
        mood_words=["harto"],
        candidates=[("damaged-item", 0.41), ("returns", 0.3), ("x", 0.1)],
        earlier=2,
    )
    assert text.startswith("Upset (0.82, 'harto'); asked for a person ('agente').")
    assert 'Wants: "mi paquete llegó roto y nadie me contesta los correos"' in text
    assert 'Last: "estoy harto, quiero hablar con un agente"' in text
    assert "Bot tried: damaged-item 0.41, returns 0.30." in text and "x 0.10" not in text
    assert text.endswith("es, web, 4 msgs, 2 earlier conversations.")


def test_wants_is_what_brought_them_back_and_not_the_request_for_a_person() -> None:
    reasons = [Reason("asked_for_person", "es", ("persona",))]
    lines = [
        Line("customer", "quiero hablar con una persona por favor"),
        Line("customer", "el pedido 5531 llegó roto y quiero otro"),
        Line("agent", "Te enviamos otro hoy mismo."),
        Line("customer", "hola otra vez, el pedido 7781 sigue sin llegar"),
        Line("customer", "quiero hablar con una persona"),
    ]
    text = build_summary(lines, reasons, lang="es")
    assert 'Wants: "hola otra vez, el pedido 7781 sigue sin llegar"' in text, text
    assert "5531" not in text
    only = build_summary(lines[:1], reasons, lang="es")
    assert 'Wants: "quiero hablar con una persona por favor"' in only  # nothing else said: that is all


def test_what_they_told_the_bot_just_before_is_what_they_want_when_now_they_only_ask_for_a_person() -> None:
    reasons = [Reason("asked_for_person", "en", ("person",))]
    before = [Line("bot", "Hi! How can I help?"), Line("customer", "my order hasn't arrived yet, ordered on monday"),
              Line("bot", "Orders arrive in 2-4 business days.")]
    now = [Line("customer", "I need to talk to a person")]
    text = build_summary(now, reasons, lang="en", before=before)
    assert 'Wants: "my order hasn\'t arrived yet, ordered on monday"' in text, text
    assert text.endswith("en, 1 msg, back after a conversation with the bot."), text
    # What they say now, when it says something, comes first.
    said = [Line("customer", "also the invoice has the wrong address on it")]
    assert 'Wants: "also the invoice has the wrong address on it"' in build_summary(said, reasons, before=before)
    record = build_record("c1", route(reasons, rules(), "general"), now, channel="web", lang="en", before=before * 10,
                          before_id="c0", before_at=123)
    assert len(record.before) == 20 and record.before_id == "c0"
    assert HandoffRecord.from_json(record.to_json()) == record


def test_wants_is_not_a_question_the_bot_answered() -> None:
    # Tester 21b, T8: four questions answered, then two the bot did not know; "Wants" named the first.
    log = [
        LogEntry("1-0", "customer", "¿cuánto tarda en llegar mi pedido a Sevilla?", 1),
        LogEntry("2-0", "bot", "Entre 2 y 4 días laborables.", 2, decision={"action": "answer"}),
        LogEntry("3-0", "customer", "¿tenéis tienda física en Madrid?", 3),
        LogEntry("4-0", "bot", "Perdona, no te he entendido bien.", 4, decision={"action": "not_understood"}),
        LogEntry("5-0", "customer", "¿hacéis envoltorio de regalo?", 5),
        LogEntry("6-0", "bot", "¿Quieres decir…?", 6, decision={"action": "clarify"}),
    ]
    lines = lines_of(log)
    assert [ln.answered for ln in lines if ln.sender == "customer"] == [True, False, False]
    reasons = [Reason("repeated_misunderstanding", "2 in a row")]
    assert 'Wants: "¿tenéis tienda física en Madrid?"' in build_summary(lines, reasons, lang="es")
    # An answer they said did not help ("No" under "Did this help?") is still what they want.
    turned_down = [*log[:2], LogEntry("3-0", "customer", "No", 3, value=HELPFUL_NO)]
    assert [ln.answered for ln in lines_of(turned_down) if ln.sender == "customer"] == [False, False]


def test_what_a_waiting_customer_adds_goes_into_the_summary() -> None:
    reasons = [Reason("asked_for_person", "es", ("persona",))]
    asked = [Line("customer", "hola, quiero hablar con una persona")]
    record = build_record("c1", route(reasons, rules(), "general"), asked, channel="telegram", lang="es")
    assert 'Wants: "hola, quiero hablar con una persona"' in record.summary
    later = with_line(record, Line("customer", "es que mi pedido llegó roto y quiero que me devolváis el dinero"))
    assert 'Wants: "es que mi pedido llegó roto y quiero que me devolváis el dinero"' in later.summary
    assert "2 msgs" in later.summary and len(later.transcript) == 2


def test_a_customer_back_after_a_resolution_wants_what_they_say_now_not_their_thanks() -> None:
    # The agent's last line came before the customer's thanks and the rating comment: counted from it,
    # the new handoff "wanted" "Great, thank you so much!" and showed the old bot candidates.
    reasons = [Reason("asked_for_person", "en", ("person",))]
    lines = [
        Line("customer", "Hi, where is my order 12345? It was supposed to arrive last week"),
        Line("agent", "It is on its way, tracking number 1Z999."),
        Line("customer", "Great, thank you so much!"),
        Line("system", "How did we do? Choose from 1 (bad) to 5 (great).", ends_handoff=True),
        Line("customer", "Lena was quick, but the first agent made me wait"),
        Line("system", "Thank you, we have noted your comment.", ends_handoff=True),
        Line("customer", "Hi again, I need a person about my refund for order 777 please"),
    ]
    text = build_summary(lines, reasons, lang="en")
    assert 'Wants: "Hi again, I need a person about my refund for order 777 please"' in text, text
    assert "thank you" not in text and "Lena" not in text
    log = [
        LogEntry("1", "bot", "Did you mean…", 1, decision={"candidates": [{"entry_id": "track-order", "score": 0.4}]}),
        LogEntry("2", "agent", "It is on its way.", 2),
        LogEntry("3", "system", "How did we do?", 3, buttons=(Button("★ 5", RATE_PREFIX + "5"),)),
        LogEntry("4", "customer", "the agent was great", 4),
        LogEntry("5", "system", "Thank you, we have noted your comment.", 5, kind=RATING_KIND),
        LogEntry("6", "customer", "I need a person about my refund", 6),
    ]
    assert [e.ends_handoff for e in log] == [False, False, True, False, True, False]
    assert candidates_from(log, []) == []  # the first handoff's, not this one's
    assert [c.entry_id for c in candidates_from(log[:1], [])] == ["track-order"]


def test_the_most_telling_reason_comes_first_and_length_is_bounded() -> None:
    reasons = [policy.low_confidence(0.2), Reason("keyword_rule", "legal-threat", ("abogado",))]
    text = build_summary([Line("customer", "x " * 1000)], reasons)
    assert text.startswith("Rule legal-threat ('abogado'); bot unsure.")
    assert len(text) <= MAX_SUMMARY_CHARS


def test_summary_without_customer_words() -> None:
    assert build_summary([], [policy.sla_breach("first_reply", 5)]) == "SLA breached. 0 msgs."


def test_one_customer_message_is_one_msg_not_one_msgs() -> None:
    reasons = [Reason("asked_for_person", "en", ("agent",))]
    one = build_summary([Line("customer", "agent please")], reasons, lang="en", channel="telegram")
    assert one.endswith("en, telegram, 1 msg."), one
    two = build_summary([Line("customer", "hi"), Line("customer", "agent")], reasons, lang="en")
    assert two.endswith("en, 2 msgs."), two


async def test_record_round_trips_through_redis(redis: aioredis.Redis) -> None:
    r = route([policy.upset(0.9, ["fatal"])], rules(), "general")
    lines = [Line("customer", f"message {i} " + "y" * 2000) for i in range(80)]
    record = build_record(
        "c1",
        r,
        lines,
        channel="telegram",
        lang="en",
        mood_score=0.9,
        mood_words=["fatal"],
        candidates=[CandidateScore("a", 0.5, "q?")],
        earlier=["c0"],
        conversation_key="telegram:1",
        created_at=5,
    )
    assert len(record.transcript) == 50 and record.transcript[0].text.startswith("message 30")
    assert all(len(ln.text) <= 1000 for ln in record.transcript)
    assert record.summary.startswith("Upset (0.90, 'fatal')") and record.priority == "high"
    await save_record(redis, record)
    loaded = await load_record(redis, "c1")
    assert loaded == record and isinstance(loaded, HandoffRecord)
    assert await load_record(redis, "nope") is None


def test_detector_evidence_is_not_quoted_twice() -> None:
    evidence = ['negative: "harto"', "shouting (capitals)"]
    text = build_summary(TRANSCRIPT, [policy.upset(0.7, evidence)], mood_score=0.7, mood_words=evidence)
    assert text.startswith('Upset (0.70, negative: "harto", shouting (capitals)).')
