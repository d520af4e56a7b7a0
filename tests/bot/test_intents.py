import pytest

from bot.intents import (
    Intent,
    as_request,
    asks,
    asks_for_person,
    chases,
    core_question,
    ends_with_goodbye,
    leading_stars,
    questions_in,
    requests_person,
    small_talk,
    stars,
    yes_no,
)


@pytest.mark.parametrize(("text", "word"), [
    ("quiero hablar con un agente", "agente"),
    ("¿Me pasas con un HUMANO, por favor?", "humano"),
    ("necesito una persona", "persona"),
    ("puedo hablar con alguien?", "hablar con alguien"),
    ("operador", "operador"),
    ("I want a real person", "person"),
    ("let me talk to an agent", "agent"),
    ("get me your manager", "manager"),
    ("can I speak to someone", "speak to someone"),
    ("representative please", "representative"),
    ("no, quiero un supervisor", "supervisor"),
])
def test_asking_for_a_person(text: str, word: str) -> None:
    assert word in asks_for_person(text) and word in requests_person(text)


@pytest.mark.parametrize("text", [
    "the agent said my refund was approved, when will I get it?",
    "Can I pick up my order in person?",
    "la agente fue muy amable y rápida",
    "The agent was really helpful, thanks",
])
def test_a_person_mentioned_is_not_a_person_asked_for(text: str) -> None:
    assert requests_person(text) == ()


@pytest.mark.parametrize("text", [
    "How long does shipping take?",
    "¿Cuánto tarda el envío?",
    "no quiero hablar con un agente, solo dime el precio",
    "I don't need a human, just the tracking number",
    "En el paquete viene el pedido de otra persona",
    "my parcel was delivered to another person",
    "the price is 20 euros per person",
])
def test_not_asking_for_a_person(text: str) -> None:
    assert asks_for_person(text) == ()


@pytest.mark.parametrize(("text", "intent"), [
    ("thanks!", Intent.THANKS), ("Thank you so much", Intent.THANKS), ("muchas gracias", Intent.THANKS),
    ("¡Gracias por la ayuda!", Intent.THANKS), ("bye", Intent.BYE), ("Adiós", Intent.BYE),
    ("ok thanks, bye!", Intent.BYE), ("hasta luego", Intent.BYE), ("gracias, chao", Intent.BYE),
    ("hello", Intent.HELLO), ("Hola!", Intent.HELLO), ("buenos días", Intent.HELLO),
    ("hi there", Intent.HELLO), ("ok", Intent.OK), ("ok cool", Intent.OK), ("vale", Intent.OK),
    ("Perfecto.", Intent.OK), ("de acuerdo", Intent.OK), ("got it", Intent.OK), ("👍", Intent.OK),
    ("👍🏽", Intent.OK), ("ok thanks", Intent.THANKS),
    # Thanks in pictures (tester 21b, T4): before, "not understood", and two of them a handoff.
    ("🙏", Intent.THANKS), ("❤️", Intent.THANKS), ("🙏🏽", Intent.THANKS), ("😊😊", Intent.THANKS),
    ("👍🙏", Intent.THANKS), ("👨‍👩‍👧 ❤️", None), ("😡", None),
])
def test_small_talk(text: str, intent: Intent) -> None:
    assert small_talk(text) is intent


@pytest.mark.parametrize("text", [
    "hello, how long does shipping take?", "gracias pero mi pedido no llegó",
    "thanks for nothing, where is my money",
    "", "   ", "😡", "ok pero mi pedido no ha llegado", "ok, how long does shipping take?",
])
def test_questions_are_not_small_talk(text: str) -> None:
    assert small_talk(text) is None


@pytest.mark.parametrize(("text", "answer"), [
    ("yes", Intent.YES), ("Sí, gracias", Intent.YES), ("it helped", Intent.YES), ("me sirvió", Intent.YES),
    ("no", Intent.NO), ("nope", Intent.NO), ("no me sirvió", Intent.NO), ("it didn't help", Intent.NO),
    ("not really", Intent.NO), ("How long does shipping take?", None), ("no llegó mi pedido", None),
])
def test_yes_no(text: str, answer: Intent | None) -> None:
    assert yes_no(text) is answer


@pytest.mark.parametrize(("text", "expected"), [
    ("Ya lo he solucionado, gracias. Adiós", True), ("never mind, bye!", True), ("adiós", True),
    ("bye? no, I still need help", False), ("¿hasta cuándo tengo que esperar?", False), ("", False),
])
def test_ends_with_goodbye(text: str, expected: bool) -> None:
    assert ends_with_goodbye(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5", 5), ("4/5", 4), ("3 de 5", 3), ("4 estrellas", 4), ("2 stars!", 2), ("★★★", 3), ("⭐️⭐️⭐️⭐️", 4),
     ("5 days late", None), ("45", None), ("6", None), ("0", None), ("pedido 5", None), ("", None)],
)
def test_a_typed_rating(text: str, expected: int | None) -> None:
    assert stars(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("4/5 — faster than last time, bye", (4, "faster than last time, bye")),
    ("5 estrellas, muy amables", (5, "muy amables")), ("★★★★ great", (4, "great")),
    ("3 de 5: tardaron mucho", (3, "tardaron mucho")),
    ("5 days late, still waiting", None), ("4/5", None), ("pedido 5, gracias", None),
])  # fmt: skip
def test_a_rating_typed_before_a_comment(text: str, expected: tuple[int, str] | None) -> None:
    assert leading_stars(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("any update?", True), ("¿hola?", True), ("¿Cuánto falta?", True), ("sigo esperando...", True),
     ("is anyone there", True), ("hola, el pedido es el 5512", False), ("my parcel is broken", False),
     ("any update? the box was open when it arrived and two items are missing, can you check", False),
     ("¿hola? ¿sigue alguien ahí?", True), ("¿me atienden?", True), ("¿alguien ahí?", True),
     ("¿cuánto tiempo más?", True), ("¿falta mucho?", True), ("¿me van a atender?", True), ("anyone?", True),
     ("when will someone answer?", True), ("is someone coming?", True),
     ("can anyone help me with my refund", False), ("someone stole my package", False),
     # "How long" about the wait is a nudge; about a topic it is a question for the agent.
     ("how long?", True), ("how long do I have to wait?", True), ("¿cuánto tiempo tengo que esperar?", True),
     ("how long does shipping take?", False), ("¿cuánto tarda el envío?", False),
     ("¿cuánto tardan en devolverme el dinero?", False)],
)
def test_a_nudge_about_the_wait(text: str, expected: bool) -> None:
    assert chases(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("are you a bot?", Intent.ARE_YOU_A_BOT), ("¿Eres un robot?", Intent.ARE_YOU_A_BOT),
     ("hola, ¿qué tal?", Intent.HOW_ARE_YOU), ("how are you?", Intent.HOW_ARE_YOU), ("jajaja", Intent.OK),
     ("lol", Intent.OK), ("hola otra vez", Intent.HELLO), ("hola, sigo aquí", Intent.HELLO),
     ("¿hay alguien ahí?", Intent.ARE_YOU_THERE), ("hola? estás ahí?", Intent.ARE_YOU_THERE),
     ("is anybody there", Intent.ARE_YOU_THERE), ("hay alguien que me pueda ayudar con un pedido", None),
     ("qué tal el envío a Canarias", None), ("is this a bot that can refund me", None)],
)
def test_asking_after_the_bot_and_laughter(text: str, expected: Intent | None) -> None:
    assert small_talk(text) == expected


@pytest.mark.parametrize(("text", "core"), [
    ("hola buenas, cuánto tarda el envío? gracias", "cuánto tarda el envío?"),
    ("hi there, how long does shipping take? thanks in advance", "how long does shipping take?"),
    ("hola aceptais paypal", "aceptais paypal"), ("hola", "hola"), ("how long does it take", "how long does it take"),
])
def test_the_question_without_its_hello_and_thanks(text: str, core: str) -> None:
    assert core_question(text) == core


@pytest.mark.parametrize(
    ("text", "expected"),
    [("help", Intent.HELP), ("necesito ayuda", Intent.HELP), ("tengo un problema con mi pedido", Intent.HELP),
     ("I have a problem with my order", Intent.HELP), ("buenas tardes, una pregunta por favor", Intent.HELP),
     ("hola necesito ayuda", Intent.HELP), ("tengo un problema con mi pedido, no ha llegado", None),
     ("I need help with my return", None), ("hola", Intent.HELLO),
     # After an answer: "otra cosa" was matched and offered "Me han hackeado la cuenta".
     ("otra cosa", Intent.HELP), ("something else please", Intent.HELP), ("tengo otra duda", Intent.HELP)],
)
def test_an_opener_that_says_there_is_something_but_not_what(text: str, expected: Intent | None) -> None:
    assert small_talk(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("how do I return this", True), ("quiero devolver un pedido", True), ("i'd like a refund", True),
     ("cuándo llega mi pedido", True), ("me gustaría cambiar la talla", True), ("se puede pagar con tarjeta", True),
     ("the refund was slow", False), ("la agente fue muy amable", False), ("could be better", False),
     ("can't complain", False), ("como siempre, genial", False), ("qué pena que tardara tanto", False),
     ("¡qué rápido!", False), ("how kind!", False), ("hay que mejorar los envíos", False), ("", False),
     # Led into: "also", "y también", "ok so" do not hide the request after them; nor make a remark one.
     ("I also need to change my address", True), ("y también quiero cambiar la dirección", True),
     ("ok so how do I return it", True), ("also great service", False), ("bueno, todo bien", False)],
)
def test_a_question_without_its_question_mark(text: str, expected: bool) -> None:
    assert asks(text) is expected


def test_a_person_named_is_asked_for_unless_only_mentioned_or_declined() -> None:
    assert as_request("pásame con alguien", ("pasame con",)) == ("pasame con",)
    assert as_request("No, quiero hablar con una persona", ("una persona",)) == ("una persona",)
    assert as_request("no quiero hablar con un bot", ("no quiero hablar con un bot",)) != ()
    assert as_request("I don't need an agent, just the price", ("agent",)) == ()
    assert as_request("no necesito un agente", ("un agente",)) == ()
    assert as_request("the employee left it at the door yesterday", ("employee",)) == ()
    assert as_request("employee please", ("employee",)) == ("employee",)


@pytest.mark.parametrize(("text", "phrase", "asked"), [
    # A team named in a question about it is not a request for it (tester 21b, T2) ...
    ("what is the customer service phone number?", "customer service", False),
    ("is your customer support open on Sundays?", "customer support", False),
    ("¿a qué hora abre atención al cliente?", "atencion al cliente", False),
    ("el servicio al cliente es pésimo", "servicio al cliente", False),
    # ... named with a request word, or alone, it is.
    ("I want to talk to customer service", "customer service", True),
    ("customer service please", "customer service", True),
    ("customer service", "customer service", True),
    ("quiero hablar con atención al cliente", "atencion al cliente", True),
    # A phrase that asks by itself asks anywhere in the message.
    ("ok then put me through, my order is still missing", "put me through", True),
    ("it keeps telling me nonsense, stop the bot", "stop the bot", True),
    ("the app is broken and the chat answers nonsense, deja de ser un bot", "deja de ser un bot", True),
])  # fmt: skip
def test_a_team_named_in_a_question_is_not_asked_for(text: str, phrase: str, asked: bool) -> None:
    assert bool(as_request(text, (phrase,))) is asked


@pytest.mark.parametrize(("text", "answer"), [
    ("no me sirve", Intent.NO), ("no me ha servido", Intent.NO), ("no me ha ayudado", Intent.NO),
    ("sí, me ha servido", Intent.YES), ("si me sirve", Intent.YES),
])  # fmt: skip
def test_did_it_help_answered_with_servir(text: str, answer: Intent) -> None:
    assert yes_no(text) is answer


@pytest.mark.parametrize(("text", "questions"), [
    ("cuanto cuesta el envio y cuanto tarda?", ["cuanto cuesta el envio", "cuanto tarda"]),
    ("¿cuánto cuesta el envío? ¿y cuánto tarda?", ["cuánto cuesta el envío", "cuánto tarda"]),
    ("can i cancel my order and also change the delivery address?",
     ["can i cancel my order", "also change the delivery address"]),
    ("buenas tardes, quisiera saber si puedo pagar a plazos y si me la traéis a Mallorca",
     ["quisiera saber si puedo pagar a plazos", "si me la traéis a Mallorca"]),
    ("I ordered my card and it isn't here yet", []),  # one story
    ("¿Cuánto cuesta el envío?", []),
])
def test_the_questions_a_message_joins_with_and(text: str, questions: list[str]) -> None:
    assert questions_in(text) == questions
