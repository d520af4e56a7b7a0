import logging

import pytest

from faq.model import Candidate, Entry, HandoffRule
from handoff import policy
from handoff.policy import Reason, keyword_reasons, person_request, route
from handoff.rules import REASON_CODES, normalize_text
from tests.handoff.queue_helpers import rules

RULES = rules()

ASKS_FOR_PERSON = [
    ("es", "Quiero hablar con un agente"),
    ("es", "pásame con un humano por favor"),
    ("es", "¿Hay algún operador disponible?"),
    ("es", "quiero un SUPERVISOR ya"),
    ("es", "necesito hablar con una persona"),
    ("es", "Ponme con el encargado"),
    ("es", "no quiero hablar con un bot"),
    ("es", "quiero hablar con el manager"),
    ("en", "I want to talk to a manager"),
    ("en", "can I speak to a real person?"),
    ("en", "HUMAN!!"),
    ("en", "get me an agent"),
    ("en", "operator please"),
    ("en", "I need a supervisor"),
    ("en", "let me talk to someone"),
    ("en", "put me through to customer service"),
    ("es", "I want an agent"),  # the customer switched language: still heard
]
NOT_FOR_PERSON = [
    ("es", "¿Cuánto tarda el envío?"),
    ("en", "How do I track my order?"),
    ("en", "humanitarian aid shipping"),
    ("es", "quiero cambiar la talla"),
    ("en", "my parcel arrived broken"),
]


@pytest.mark.parametrize(("lang", "text"), ASKS_FOR_PERSON)
def test_asking_for_a_person_in_many_phrasings(lang: str, text: str) -> None:
    reason = person_request(text, lang, RULES)
    assert reason is not None and reason.code == "asked_for_person" and reason.evidence


@pytest.mark.parametrize(("lang", "text"), NOT_FOR_PERSON)
def test_ordinary_questions_do_not_ask_for_a_person(lang: str, text: str) -> None:
    assert person_request(text, lang, RULES) is None


def test_person_request_records_the_words() -> None:
    reason = person_request("Oiga, ¡quiero un OPERADOR!", "es", RULES)
    assert reason is not None and reason.evidence == ("operador",)


@pytest.mark.parametrize(
    ("text", "rule", "words"),
    [
        ("Voy a poner una denuncia", "legal-threat", "denuncia"),
        ("os voy a demandar", "legal-threat", "demandar"),
        ("hablaré con mi abogado", "legal-threat", "abogado"),
        ("I will sue you", "legal-threat", "sue"),
        ("we'll take legal action", "legal-threat", "legal action"),
        ("quiero darme de baja", "cancellation", "darme de baja"),
        ("Please cancel my account", "cancellation", "cancel my account"),
    ],
)
def test_keyword_rules_match_with_evidence(text: str, rule: str, words: str) -> None:
    found = keyword_reasons(text, None, RULES)
    assert Reason("keyword_rule", rule, (words,)) in found


def test_no_keyword_rule_for_plain_questions() -> None:
    assert keyword_reasons("¿Dónde está mi pedido?", "es", RULES) == []
    assert keyword_reasons("Is it sunny?", "en", RULES) == []


def entry(handoff: HandoffRule | None = None, department: str | None = "orders") -> Entry:
    return Entry("damaged", {"en": ("broken",)}, {"en": "sorry"}, department=department, handoff=handoff)


def test_a_person_request_goes_to_the_default_department_tier_1() -> None:
    r = route([person_request("agente", "es", RULES)], RULES, "general")  # type: ignore[list-item]
    assert (r.department, r.tier, r.priority.name) == ("general", 1, "normal")


def test_topic_department_is_used_without_a_rule() -> None:
    r = route([policy.low_confidence(0.3, [Candidate("damaged", 0.3)])], RULES, "general", entry())
    assert (r.department, r.tier) == ("orders", 1)


def test_faq_entry_handoff_picks_department_and_tier() -> None:
    e = entry(HandoffRule("returns", 2))
    r = route([policy.topic_rule(e)], RULES, "general", e)
    assert (r.department, r.tier, r.priority.name) == ("returns", 2, "normal")


def test_upset_raises_priority() -> None:
    r = route([policy.upset(0.8, ["harto"]), policy.misunderstanding(2)], RULES, "general")
    assert r.priority.name == "high" and r.tier == 1


def test_legal_threat_goes_to_the_supervisors_at_tier_3_urgent() -> None:
    reasons = keyword_reasons("os voy a denunciar", "es", RULES)
    r = route(reasons, RULES, "general", entry())
    assert (r.department, r.tier, r.priority.name) == ("supervisor", 3, "urgent")


def test_a_keyword_rule_without_department_stays_in_the_topic_department() -> None:
    reasons = keyword_reasons("this is unacceptable", "en", RULES)
    r = route(reasons, RULES, "general", entry())
    assert (r.department, r.tier, r.priority.name) == ("orders", 2, "high")


def test_a_keyword_rule_department_beats_the_entry() -> None:
    reasons = [
        *keyword_reasons("quiero darme de baja", "es", RULES),
        policy.topic_rule(entry(HandoffRule("returns", 2))),
    ]
    r = route(reasons, RULES, "general", entry(HandoffRule("returns", 2)))
    assert (r.department, r.tier, r.priority.name) == ("accounts", 3, "high")


def test_sla_breach_and_negative_feedback_reasons() -> None:
    r = route(
        [policy.sla_breach("first_reply", 42), policy.negative_feedback("shipping-time", "pero dónde está")],
        RULES,
        "general",
    )
    assert (r.tier, r.priority.name) == (2, "high")
    assert [x.code for x in r.reasons] == ["sla_breach", "negative_feedback"]
    assert r.reasons[1].evidence == ("pero dónde está",)


def test_every_reason_code_has_a_rule_and_a_builder() -> None:
    built = {
        policy.low_confidence(0.1).code,
        policy.misunderstanding(2).code,
        policy.upset(0.9).code,
        policy.negative_feedback("x", "y").code,
        policy.topic_rule(entry()).code,
        policy.sla_breach("r", 1).code,
        "asked_for_person",
        "keyword_rule",
    }
    assert built == set(REASON_CODES)
    for code in REASON_CODES:
        assert route([Reason(code, "test")], RULES, "general").department == "general"


def test_unknown_department_falls_back_to_default(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        r = route([policy.low_confidence(0.1)], RULES, "general", entry(department="marketing"))
    assert r.department == "general" and "marketing" in caplog.text


def test_bad_reasons_are_refused() -> None:
    with pytest.raises(ValueError):
        Reason("angry")
    with pytest.raises(ValueError):
        route([], RULES, "general")
    assert Reason.from_dict(Reason("upset", "x", ("a",)).to_dict()) == Reason("upset", "x", ("a",))


def test_keyword_screen_agrees_with_the_rules_one_by_one():
    """The one-pattern screen lets through every message some keyword rule matches."""
    texts = ["I will sue you", "voy a denunciaros", "please cancel my account", "where is my order",
             "quiero darme de baja", "hola", "", "¿Cómo me doy de baja de la newsletter?"]
    for text in texts:
        norm = normalize_text(text)
        one_by_one = any(policy._rule_hit(r, norm, "en") for r in RULES.keyword_rules)
        assert bool(RULES.keyword_screen.search(norm)) >= one_by_one, text
        assert bool(keyword_reasons(text, "en", RULES)) == one_by_one, text
    assert any(keyword_reasons(t, None, RULES) for t in texts)


def test_a_keyword_rule_yields_to_its_unless_phrases():
    for text in ("Me doy de baja, sois un desastre", "Quiero cerrar mi cuenta", "I want to close my account",
                 "como no lo arregléis hoy me doy de baja"):  # "como" as "if": a threat, not a how-to
        assert [r.detail for r in keyword_reasons(text, None, RULES)] == ["cancellation"], text
    for text in ("¿Cómo me doy de baja de la newsletter?", "darme de baja de los emails",
                 "unsubscribe me from the newsletter please", "unsubscribe me from emails",
                 "please unsubscribe me, too many emails", "How do I delete my account?",
                 "¿Cómo elimino mi cuenta?", "¿cómo me doy de baja?", "¿cómo darme de baja?"):
        assert keyword_reasons(text, None, RULES) == [], text
