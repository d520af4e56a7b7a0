"""The mood detector: each signal in both languages, negation, conversations, config files, eval."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.mood import MoodConfigError, MoodDetector, MoodReading
from bot.mood.detector import _key

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def mood() -> MoodDetector:
    return MoodDetector.from_dir(CONFIG / "mood", threshold=0.5)


def _has(reading: MoodReading, fragment: str) -> bool:
    return any(fragment in e for e in reading.evidence)


# --- vocabulary, per language ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "evidence"),
    [
        ("Esto es una vergüenza", "es", 'negative: "es una vergüenza"'),
        ("Qué asco de empresa", "es", "negative"),
        ("This is disgusting", "en", 'negative: "disgusting"'),
        ("I'm so fed up with this", "en", 'negative: "fed up"'),
        ("Eres un inútil", "es", 'insult: "Eres un inútil"'),
        ("bot de mierda", "es", "insult"),
        ("You're useless", "en", "insult"),
        ("stupid bot", "en", 'insult: "stupid bot"'),
        ("Me doy de baja", "es", 'threat to leave: "Me doy de baja"'),
        ("Quiero cancelar mi cuenta ya", "es", "threat to leave"),
        ("Please cancel my account", "en", 'threat to leave: "cancel my account"'),
        ("Voy a denunciar a esta empresa", "es", 'threat to complain: "Voy a denunciar"'),
        ("I'll report you", "en", "threat to complain"),
        ("joder, otra vez", "es", 'profanity: "joder"'),
        ("what the fuck is this", "en", "what the fuck"),
        ("Treated like dirt by your staff again", "en", 'negative: "Treated like dirt"'),
        ("Honestly this gets on my nerves", "en", 'negative: "gets on my nerves"'),
        ("You people have no shame", "en", 'negative: "have no shame"'),
    ],
)
def test_vocabulary_raises_the_score(mood: MoodDetector, text: str, lang: str, evidence: str) -> None:
    reading = mood.score(text, lang)
    assert reading.score >= 0.4, reading
    assert _has(reading, evidence), reading.evidence


def test_contempt_intensifiers_strengthen_a_term(mood: MoodDetector) -> None:
    # "downright", "sheer", "biggest"...: emphasis of contempt, like "utterly" or "absolute".
    plain = mood.score("that was disgraceful", "en").score
    assert mood.score("that was downright disgraceful", "en").score > plain
    assert mood.score("the biggest cheat", "en").score > mood.score("the cheat", "en").score


@pytest.mark.parametrize(
    "text",
    [
        "Once you learn to read, you will be forever free.",
        "I'd like to shamelessly promote my new book",
        "I hated maths when I was a student",
    ],
)
def test_literal_uses_of_contempt_words_do_not_flag(mood: MoodDetector, text: str) -> None:
    assert not mood.score(text, "en").upset


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("¿Cuánto tarda el envío a Sevilla?", "es"),
        ("Hola, quiero cambiar la dirección de entrega", "es"),
        ("Where is my order? I placed it on Monday", "en"),
        ("Thanks, that answers my question", "en"),
    ],
)
def test_calm_questions_score_zero(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert reading.score == 0.0 and reading.evidence == () and not reading.upset



@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Third time I've asked. Nobody has got back to me. Sort it out.", "en"),
        ("cheers for nothing, really helpful", "en"),
        ("do you even care about your customers?", "en"),
        ("switching to another provider as soon as my contract ends", "en"),
        ("llevo dos horas al teléfono y nadie me atiende", "es"),
        ("es la tercera vez que lo pido, ¿alguien me va a hacer caso?", "es"),
        ("qué poca seriedad", "es"),
        ("gracias por nada", "es"),
        ("left stranded at the airport with no help whatsoever", "en"),
        ("your engineer never turned up, again", "en"),
        ("last time I ever order from you", "en"),
        ("me habéis dejado tirado en el aeropuerto", "es"),
        ("llevo una semana sin línea y el técnico no ha venido", "es"),
        ("menuda atención al cliente, de risa", "es"),
        ("Asking for the 6th time: where is my replacement card", "en"),
        ("It's been three weeks and the engineer never showed up", "en"),
        ("is this how you treat people who've paid for a year upfront", "en"),
        ("Second outage this week. Sort it or I'm switching", "en"),
        ("reporting you to Ofcom tomorrow", "en"),
        ("el técnico no vino, nadie me llama y encima me cobráis la visita", "es"),
        ("gracias por dejarme sin internet todo el finde", "es"),
        ("me tenéis harta con las llamadas comerciales", "es"),
        ("ya van cuatro veces que pido la factura, ¿hasta cuándo?", "es"),
        ("si no lo arregláis, pondré una queja en consumo y en el banco de españa", "es"),
        ("If nobody calls me back today I'm going to the Better Business Bureau", "en"),
        ("ya ni sé para qué les escribo", "es"),  # a negation inside the phrase itself
        ("no sirven para nada, llevo desde las 9 en la cola", "es"),
    ],
)
def test_support_desk_exasperation(mood: MoodDetector, text: str, lang: str) -> None:
    # How customers write to a company's support account: chasing, being ignored, charged, leaving,
    # going to a regulator.
    assert mood.score(text, lang).upset


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Quisiera poner una reclamación por un retraso, ¿cómo se hace?", "es"),
        ("I'd like to complain about a late delivery, what's the process?", "en"),
        ("Could you get back to me about my refund?", "en"),
        ("¿Me podéis hacer caso con lo del cambio de talla?", "es"),
        ("Could you let me know when the engineer is coming?", "en"),
        ("¿Por qué no ha venido todavía el técnico?", "es"),
        ("Where can I file a complaint about a cancelled train?", "en"),
        ("¿Dónde puedo poner una queja formal?", "es"),
        ("the 2nd payment went through fine, thanks", "en"),
    ],
)
def test_asking_how_to_complain_or_after_a_visit_is_not_upset(mood: MoodDetector, text: str, lang: str) -> None:
    assert not mood.score(text, lang).upset

@pytest.mark.parametrize(
    ("negated", "plain", "lang"),
    [
        ("no está mal", "está mal", "es"),
        ("no es una vergüenza", "es una vergüenza", "es"),
        ("not bad at all", "bad", "en"),
        ("I don't hate it", "I hate it", "en"),
    ],
)
def test_negation_cancels_a_negative_word(mood: MoodDetector, negated: str, plain: str, lang: str) -> None:
    assert mood.score(negated, lang).score == 0.0
    assert mood.score(plain, lang).score > 0.0


def test_negation_stops_at_punctuation(mood: MoodDetector) -> None:
    assert mood.score("No. Esto es una vergüenza", "es").score > 0.0
    assert mood.score("No, this is disgusting", "en").score > 0.0


@pytest.mark.parametrize(("text", "lang"), [("no es útil", "es"), ("this is not helpful", "en")])
def test_negated_positive_counts(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert reading.score > 0.0
    assert _has(reading, "negated") or _has(reading, "dissatisfaction"), reading.evidence


@pytest.mark.parametrize(
    ("strong", "plain", "lang"),
    [("muy molesto", "molesto", "es"), ("so annoying", "annoying", "en")],
)
def test_intensifiers_weigh_more(mood: MoodDetector, strong: str, plain: str, lang: str) -> None:
    assert mood.score(strong, lang).score > mood.score(plain, lang).score > 0.0


# --- signals that are not words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("ÉSTA ES LA PEOR atención 😡", "esta es la peor atencion 😡"),
        ("Qué vergüenza, señora… ¿dónde está?", "que verguenza, senora… ¿donde esta?"),
        ("It’s `fine´ İ", "it's 'fine' i"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_fold_keeps_every_character_in_place(text: str, folded: str) -> None:
    from bot.mood.text import fold, strip_noise

    assert fold(text) == folded and len(fold(text)) == len(text)
    assert strip_noise(text) == text  # nothing to blank: the very same text
    noisy = "mira @soporte https://x.co/a www.x.es ya"
    assert strip_noise(noisy).split() == ["mira", "ya"] and len(strip_noise(noisy)) == len(noisy)


@pytest.mark.parametrize(
    ("shout", "calm", "lang"),
    [
        ("QUIERO HABLAR CON ALGUIEN YA", "quiero hablar con alguien ya", "es"),
        ("WHERE IS MY ORDER", "where is my order", "en"),
    ],
)
def test_shouting(mood: MoodDetector, shout: str, calm: str, lang: str) -> None:
    assert _has(mood.score(shout, lang), "shouting")
    assert mood.score(calm, lang).score == 0.0


def test_one_acronym_is_not_shouting(mood: MoodDetector) -> None:
    assert not _has(mood.score("My DHL parcel has not arrived", "en"), "shouting")


@pytest.mark.parametrize(("text", "lang"), [("¿¿Dónde está mi pedido??!!", "es"), ("Where is it!!!", "en")])
def test_repeated_punctuation(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert reading.score > 0.0
    assert any(e.startswith('"') and "!" in e for e in reading.evidence), reading.evidence


@pytest.mark.parametrize(
    ("written", "plain", "lang"),
    [("INUTIL", "inútil", "es"), ("verguenza", "vergüenza", "es"), ("rediculous", "ridiculous", "en")],
)
def test_accents_case_and_misspellings(mood: MoodDetector, written: str, plain: str, lang: str) -> None:
    assert mood.score(written, lang).score >= mood.score(plain, lang).score > 0.0


@pytest.mark.parametrize(("text", "lang"), [("qué asquerooooso", "es"), ("fuuuuck", "en")])
def test_elongations_are_undone(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert reading.upset
    assert _has(reading, "elongation")


@pytest.mark.parametrize(("text", "lang"), [("mi pedido 😡", "es"), ("my order 🤬🤬", "en")])
def test_emoji(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert reading.score > 0.4
    assert _has(reading, "emoji")


def test_praise_calms_swearing(mood: MoodDetector) -> None:
    assert mood.score("fucking amazing", "en").score < mood.score("fucking hell", "en").score


# --- the conversation --------------------------------------------------------------------------------


@pytest.mark.parametrize(("answer_failed", "lang"), [("no me sirve", "es"), ("that didn't help", "en")])
def test_dissatisfaction_counts_after_an_answer(mood: MoodDetector, answer_failed: str, lang: str) -> None:
    after = mood.assess(answer_failed, lang, after_bot_answer=True)
    alone = mood.assess(answer_failed, lang, after_bot_answer=False)
    assert after.score > alone.score > 0.0
    assert _has(after, "dissatisfaction")


@pytest.mark.parametrize(
    ("first", "again", "lang"),
    [
        ("¿Dónde está mi pedido 4411?", "donde esta mi pedido 4411", "es"),
        ("Where is my order 4411?", "where is my order 4411??", "en"),
    ],
)
def test_repeating_the_same_question(mood: MoodDetector, first: str, again: str, lang: str) -> None:
    reading = mood.assess(again, lang, history=[first])
    assert _has(reading, "repeated question")
    assert mood.assess(again, lang, history=["hola, buenas"]).score < reading.score


def test_short_replies_repeated_are_not_a_repeated_question(mood: MoodDetector) -> None:
    assert not _has(mood.assess("ok", "en", history=["ok", "ok"]), "repeated question")


def test_conversation_score_weighs_recent_messages_more(mood: MoodDetector) -> None:
    angry = "Esto es una vergüenza, sois unos inútiles"
    calm = "¿Y el número de seguimiento?"
    recent = mood.assess(calm, "es", history=["hola", angry])
    older = mood.assess(calm, "es", history=[angry, "hola", "vale", "bien"])
    assert recent.score == 0.0 and older.score == 0.0
    assert recent.conversation > older.conversation > 0.0


def test_mild_frustration_adds_up(mood: MoodDetector) -> None:
    mild = ["sigo esperando", "esto es absurdo", "qué desastre"]
    single = mood.assess(mild[-1], "es")
    piled = mood.assess(mild[-1], "es", history=mild[:-1])
    assert piled.conversation > single.conversation
    assert piled.conversation >= piled.score
    assert piled.upset and not single.upset


@pytest.mark.parametrize(
    ("complaint", "lang", "next_message"),
    [("that didn't help", "en", "ok"), ("no me sirve", "es", "vale")],
)
def test_earlier_messages_count_as_they_were_read_on_their_turn(complaint: str, lang: str, next_message: str) -> None:
    # Dissatisfaction weighs fully only after an answer; a later turn remembers how it was read then.
    live = MoodDetector.from_dir(CONFIG / "mood")
    said = live.assess(complaint, lang, after_bot_answer=True)
    later = live.assess(next_message, lang, history=[f" {complaint}\n"])  # as a transcript may hold it
    restarted = MoodDetector.from_dir(CONFIG / "mood").assess(next_message, lang, history=[complaint])
    decay = live.signals["conversation_decay"]
    assert later.conversation == pytest.approx(said.score * decay, abs=1e-3)
    assert 0.0 < restarted.conversation < later.conversation  # read again as if no answer came before


def test_remembered_messages_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.mood.detector._RECENT_LIMIT", 3)
    fresh = MoodDetector.from_dir(CONFIG / "mood")
    for text in ("uno", "dos", "tres"):
        fresh.assess(text, "es")
    fresh.assess("cuatro", "es", history=["uno"])  # "uno", looked at again, outlives "dos"
    assert list(fresh._recent) == [_key(t) for t in ("tres", "cuatro", "uno")]


def test_a_long_message_is_remembered_in_bounded_space_and_still_counts_as_repeated() -> None:
    fresh = MoodDetector.from_dir(CONFIG / "mood")
    long = "my order 4411 has not arrived and " + "nobody tells me where it is " * 140  # ~4 000 characters
    fresh.assess(long, "en")
    (key, seen), = fresh._recent.items()
    assert len(key) == 16 and len(seen.words) <= 300
    assert _has(fresh.assess(long.upper() + "?", "en", history=[long]), "repeated question")


def test_an_earlier_message_keeps_its_reading_when_the_language_changes() -> None:
    # "no me sirve" after an answer, then the customer goes on in English: the Spanish complaint still
    # counts as it was read on its turn, not re-read as English text nor as if no answer came before.
    live = MoodDetector.from_dir(CONFIG / "mood")
    said = live.assess("no me sirve", "es", after_bot_answer=True)
    later = live.assess("where is my parcel", "en", history=["no me sirve"])
    assert later.conversation == pytest.approx(said.score * live.signals["conversation_decay"], abs=1e-3)
    restarted = MoodDetector.from_dir(CONFIG / "mood").assess("where is my parcel", "en", history=["no me sirve"])
    assert restarted.conversation < later.conversation

def test_threshold_decides_upset() -> None:
    strict = MoodDetector.from_dir(CONFIG / "mood", threshold=0.95)
    assert not strict.score("this is ridiculous", "en").upset
    assert strict.score("this is ridiculous", "en").score > 0.0


def test_language_is_detected_when_not_given(mood: MoodDetector) -> None:
    assert mood.score("Esto es una vergüenza, me doy de baja").lang == "es"
    assert mood.score("This is a disgrace, I want my money back").lang == "en"
    assert mood.score("inútil!!!").upset  # too short to tell: read in both


def test_scores_stay_in_range(mood: MoodDetector) -> None:
    worst = "ERES UN INÚTIL DE MIERDA!!! 🤬🤬🤬 me doy de baja y voy a denunciar, hijo de puta " * 5
    reading = mood.assess(worst, None, history=[worst] * 20, after_bot_answer=True)
    assert 0.0 <= reading.score <= 1.0 and 0.0 <= reading.conversation <= 1.0


# --- config files ------------------------------------------------------------------------------------


def _folder(tmp_path: Path, es: str, signals: str | None = None) -> Path:
    folder = tmp_path / "mood"
    folder.mkdir()
    (folder / "es.yaml").write_text(es, encoding="utf-8")
    if signals is not None:
        (folder / "signals.yaml").write_text(signals, encoding="utf-8")
    return folder


def test_an_admin_can_add_a_term(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "negators: [no]\nnegative:\n  patata*: 0.8\n")
    detector = MoodDetector.from_dir(folder)
    assert detector.score("menudas patatadas", "es").upset
    assert detector.score("no patatas", "es").score == 0.0


@pytest.mark.parametrize(
    ("es", "line", "message"),
    [
        ("negative:\n  asco: 0.6\n  vergüenza: mucho\n", 3, "expected a number"),
        ("negative:\n  asco: 1.5\n", 2, "from 0 to 1"),
        ("negative:\n  asco: 0.6\ninsult:\n  idiota: 0.7\n  asco: 0.5\n", 5, "already listed at line 2"),
        ("negativos:\n  asco: 0.6\n", 1, "unknown section 'negativos'"),
        ("negative:\n  asco: 0.6\n  - idiota\n", 3, "not valid YAML"),
        ("negative: [asco, idiota]\n", 1, "must be a mapping"),
        ("negative:\n  as*: 0.6\n", 2, "at least 3 letters"),
        ("negators: no\n", 1, "must be a list"),
        ("numbers:\n  nueve: 9\n  diez: muchos\n", 3, "numbers: expected a number"),
    ],
)
def test_a_bad_language_file_names_file_and_line(tmp_path: Path, es: str, line: int, message: str) -> None:
    folder = _folder(tmp_path, es)
    with pytest.raises(MoodConfigError) as err:
        MoodDetector.from_dir(folder)
    assert str(err.value).startswith(f"{folder / 'es.yaml'}:{line}: "), err.value
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("signals", "line", "message"),
    [
        ("shouting_weight: 0.3\nshouting_wieght: 0.3\n", 2, "unknown setting 'shouting_wieght'"),
        ("conversation_decay: 2\n", 1, "from 0 to 1"),
        ("emoji:\n  '😡': lots\n", 2, "expected a number"),
    ],
)
def test_a_bad_signals_file_names_file_and_line(
    tmp_path: Path, signals: str, line: int, message: str
) -> None:
    folder = _folder(tmp_path, "negative:\n  asco: 0.6\n", signals)
    with pytest.raises(MoodConfigError) as err:
        MoodDetector.from_dir(folder)
    assert str(err.value).startswith(f"{folder / 'signals.yaml'}:{line}: "), err.value
    assert message in str(err.value)


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MoodConfigError, match="mood folder not found"):
        MoodDetector.from_dir(tmp_path / "nowhere")


# --- relevo mood eval ----------------------------------------------------------------------------------


def test_eval_command_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["--config", str(CONFIG), "mood", "eval", "--cases", str(FIXTURES / "mood_cases.csv"), "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cases"] == 10 and report["upset"] == 5
    assert report["threshold"] == 0.5
    assert report["precision"] == 1.0 and report["recall"] == 1.0 and report["f1"] == 1.0
    assert set(report["by_lang"]) == {"en", "es"}
    assert report["by_lang"]["es"]["cases"] == 5
    assert report["p99_ms"] > 0.0


def test_eval_command_threshold_changes_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    cases = str(FIXTURES / "mood_cases.csv")
    assert (
        main(["--config", str(CONFIG), "mood", "eval", "--cases", cases, "--json", "--threshold", "1"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["threshold"] == 1.0 and report["recall"] < 1.0


def test_eval_command_rejects_a_bad_cases_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cases.csv"
    bad.write_text("text,upset\nhola,1\nadiós,maybe\n", encoding="utf-8")
    assert main(["--config", str(CONFIG), "mood", "eval", "--cases", str(bad), "--json"]) == 1
    assert f"{bad}:3: upset must be 1 or 0" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("aimed", "general", "lang"),
    [
        ("sois unos incompetentes", "son unos incompetentes", "es"),
        ("you are pathetic", "it is pathetic", "en"),
    ],
)
def test_anger_aimed_at_someone_weighs_more(mood: MoodDetector, aimed: str, general: str, lang: str) -> None:
    assert mood.score(aimed, lang).score > mood.score(general, lang).score > 0.0


# --- calm support messages: agents must not get false alarms ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("mi pedido no ha llegado todavía, ¿me podéis ayudar?", "es"),
        ("Hola, no puedo iniciar sesión en mi cuenta", "es"),
        ("No me ha llegado el correo de confirmación", "es"),
        ("Tengo un problema con la aplicación, no carga", "es"),
        ("¿Cuándo me devolvéis el dinero de la devolución?", "es"),
        ("Todavía no me han contestado al correo, ¿podéis mirarlo?", "es"),
        ("Llevo dos días esperando el paquete, ¿sabéis algo?", "es"),
        ("Creo que hay un error en mi factura", "es"),
        ("el código de descuento no es válido", "es"),
        ("Sin problema, espero", "es"),
        ("the app is not working, can you check?", "en"),
        ("My package hasn't arrived yet, could you help?", "en"),
        ("I was charged for an order I cancelled, can you look into it?", "en"),
        ("How do I cancel my order?", "en"),
        ("The tracking number doesn't show anything", "en"),
        ("I'm still waiting for the refund, any update?", "en"),
        ("I think there is a mistake on my bill", "en"),
        ("the discount code is not valid, what should I do?", "en"),
        ("No worries, thanks for checking", "en"),
        ("No problem, I'll wait", "en"),
        ("Fraud alert came through for a purchase I did make. Can you unblock my card please", "en"),
        ("Got a text about a parcel held at customs, is that from you or a scam?", "en"),
        ("Still waiting on the replacement card but it's not urgent", "en"),
        ("me cobraron 2 veces la compra", "es"),  # a report: the billing team's entry answers and hands over
    ],
)
def test_calm_support_messages_are_not_upset(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert not reading.upset, reading
    assert reading.score < 0.5, reading


@pytest.mark.parametrize(
    ("text", "lang", "evidence"),
    [
        ("¡Qué poca vergüenza tienen!", "es", 'negative: "Qué poca vergüenza"'),
        ("Esto me saca de quicio", "es", 'negative: "me saca de quicio"'),
        ("Estoy harto de vuestras excusas", "es", 'negative: "Estoy harto de"'),
        ("No tienen vergüenza", "es", 'negative: "No tienen vergüenza"'),
        ("¿Cómo os atrevéis a cobrarme esto?", "es", "negative"),
        ("Nos toman por tontos", "es", 'negative: "Nos toman por tontos"'),
        ("How dare you charge me twice", "en", 'negative: "How dare"'),
        ("This is shoddy and unprofessional", "en", 'negative: "shoddy"'),
        ("It makes my blood boil", "en", 'negative: "makes my blood boil"'),
        ("What is wrong with you people", "en", "negative"),
        ("You should be ashamed of yourselves", "en", 'negative: "should be ashamed"'),
        ("I'm losing my patience with this company", "en", 'negative: "losing my patience"'),
        ("worst shop ever. my laptop arrived smashed", "en", 'negative: "worst shop"'),
    ],
)
def test_outrage_and_contempt_are_upset(mood: MoodDetector, text: str, lang: str, evidence: str) -> None:
    reading = mood.score(text, lang)
    assert reading.upset, reading
    assert _has(reading, evidence), reading.evidence


@pytest.mark.parametrize(
    ("text", "lang", "evidence"),
    [
        ("no funciona esta mierda", "es", 'profanity: "mierda"'),
        ("no hacen una mierda", "es", "profanity"),
        ("it's not fucking working", "en", 'profanity: "fucking"'),
        ("don't be an idiot", "en", "insult"),
    ],
)
def test_a_negation_does_not_cancel_swearing(mood: MoodDetector, text: str, lang: str, evidence: str) -> None:
    assert _has(mood.score(text, lang), evidence), mood.score(text, lang).evidence


def test_excited_swearing_is_not_anger(mood: MoodDetector) -> None:
    assert not mood.score("fuck yeah, it works now", "en").upset
    assert mood.score("fuck this company", "en").upset


# --- issue 7: masked swearing, hashtags, complaints, negation scope, politeness -----------------------


@pytest.mark.parametrize(
    ("text", "lang", "evidence"),
    [
        ("f*ck this app", "en", 'profanity: "f*ck this"'),
        ("what a sh!tty service", "en", 'profanity: "sh!tty"'),
        ("you a**hole", "en", 'insult: "a**hole"'),
        ("I'm pi$$ed off", "en", 'negative: "pi$$ed off"'),
        ("vaya m*erda de servicio", "es", 'profanity: "vaya m*erda"'),
        ("sois unos idi*tas", "es", 'insult: "idi*tas"'),
        ("qué p*ta vergüenza", "es", "negative"),
    ],
)
def test_masked_swearing_counts(mood: MoodDetector, text: str, lang: str, evidence: str) -> None:
    reading = mood.score(text, lang)
    assert reading.upset, reading
    assert _has(reading, evidence), reading.evidence


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("no funciona esta m*erda", "es"),
        ("it's not f*cking working", "en"),
    ],
)
def test_a_negation_does_not_cancel_masked_swearing(mood: MoodDetector, text: str, lang: str) -> None:
    assert _has(mood.score(text, lang), "profanity"), mood.score(text, lang).evidence


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("The price is US$45, right?", "en"),
        ("Hello!Where is my order?", "en"),
        ("¿El precio es 45$? Gracias", "es"),
    ],
)
def test_money_and_typos_are_not_masked_swearing(mood: MoodDetector, text: str, lang: str) -> None:
    assert mood.score(text, lang).score == 0.0


@pytest.mark.parametrize(
    ("text", "lang", "evidence"),
    [
        ("#WorstServiceEver", "en", 'negative: "WorstService"'),
        ("Otra vez sin paquete #QueVergüenza", "es", 'negative: "QueVergüenza"'),
    ],
)
def test_camel_case_hashtags_are_read_as_words(mood: MoodDetector, text: str, lang: str, evidence: str) -> None:
    reading = mood.score(text, lang)
    assert reading.score >= 0.5, reading
    assert _has(reading, evidence), reading.evidence
    assert not _has(reading, "shouting")


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("worst service ever", "en"),
        ("still waiting", "en"),
        ("this is ridiculous", "en"),
        ("horrible customer service", "en"),
        ("you guys are a joke", "en"),
        ("three weeks and still no refund", "en"),
        ("are you kidding me", "en"),
        ("no me devuelven el dinero", "es"),
        ("es una vergüenza", "es"),
        ("llevo semanas esperando", "es"),
        ("es el peor servicio que he tenido", "es"),
        ("estoy hartísimo", "es"),
        ("me indigna que no contesten", "es"),
        ("sois unos ladrones", "es"),
    ],
)
def test_complaints_to_a_company_are_upset(mood: MoodDetector, text: str, lang: str) -> None:
    assert mood.score(text, lang).upset, mood.score(text, lang)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("I hate to bother you, but where is my order?", "en"),
        ("I'm still waiting for the refund, any update?", "en"),
        ("Llevo dos días esperando el paquete, ¿sabéis algo?", "es"),
        ("¿Alguna novedad de mi pedido? Sin prisa", "es"),
    ],
)
def test_polite_follow_ups_are_not_upset(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert not reading.upset, reading


@pytest.mark.parametrize(
    ("text", "plain", "lang"),
    [
        ("not only rude but incompetent", "not incompetent", "en"),
        ("no solo lento sino inútil", "no inútil", "es"),
    ],
)
def test_not_only_does_not_negate(mood: MoodDetector, text: str, plain: str, lang: str) -> None:
    assert mood.score(text, lang).upset
    assert mood.score(plain, lang).score == 0.0


@pytest.mark.parametrize(
    ("text", "negated", "lang"),
    [
        ("this is a scam", "this is not a scam", "en"),
        ("so mad right now", "not mad at all", "en"),
        ("me indigna", "no me indigna", "es"),
        ("es un robo", "no es un robo", "es"),
    ],
)
def test_new_negative_phrases_are_negated(mood: MoodDetector, text: str, negated: str, lang: str) -> None:
    assert mood.score(text, lang).upset
    assert not mood.score(negated, lang).upset


# --- issue 7: sarcasm, rhetorical indignation, contempt, stated anger ------------------------------------


@pytest.mark.parametrize(
    ("text", "lang", "evidence"),
    [
        ("Another delay. What could possibly go wrong?", "en", "What could possibly go wrong"),
        ("Imagine my surprise when the parcel didn't arrive", "en", "Imagine my surprise"),
        ("Fast delivery, said no one ever", "en", "said no one ever"),
        ("How do you people sleep at night?", "en", "sleep at night"),
        ("Who thought this was a good idea?", "en", "Who thought this was a good idea"),
        ("You don't care about your customers", "en", 'negated: "don\'t care about your"'),
        ("You screwed up my order", "en", "screwed up"),
        ("What a money grabbing company", "en", "money grabbing"),
        ("I'm angry", "en", "I'm angry"),
        ("¿Qué podría salir mal?", "es", "Qué podría salir mal"),
        ("Menuda sorpresa, otra vez sin paquete", "es", "Menuda sorpresa"),
        ("Rápido y barato, dijo nadie nunca", "es", "dijo nadie nunca"),
    ],
)
def test_sarcasm_and_indignation_are_upset(mood: MoodDetector, text: str, lang: str, evidence: str) -> None:
    reading = mood.score(text, lang)
    assert reading.upset, reading
    assert _has(reading, evidence), reading.evidence


@pytest.mark.parametrize(
    ("text", "negated", "lang"),
    [
        ("I'm angry", "I'm not angry", "en"),
        ("I'm so annoyed", "I'm not annoyed", "en"),
        ("I'm so disappointed", "I'm not disappointed", "en"),
        ("you screwed up my order", "you didn't screw up my order", "en"),
        ("qué asco", "no me da asco", "es"),
    ],
)
def test_stated_anger_is_negated(mood: MoodDetector, text: str, negated: str, lang: str) -> None:
    assert mood.score(text, lang).upset
    assert not mood.score(negated, lang).upset


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("I don't care about the colour, just send it", "en"),
        ("The problem lies in the settings, I think", "en"),
        ("Is it illegal to resell the tickets?", "en"),
        ("¿Qué sorpresa tenéis para el Black Friday?", "es"),
    ],
)
def test_neutral_uses_of_the_new_words_are_not_upset(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.score(text, lang)
    assert not reading.upset, reading


@pytest.mark.parametrize(
    ("praised", "plain", "lang"),
    [
        ("fucking champions 😍", "fucking champions", "en"),
        ("joder, qué golazo ❤️", "joder, qué golazo", "es"),
    ],
)
def test_praise_emoji_calm_swearing(mood: MoodDetector, praised: str, plain: str, lang: str) -> None:
    calm = mood.score(praised, lang)
    assert 0.0 < calm.score < mood.score(plain, lang).score
    assert not calm.upset


def test_laughing_at_a_company_is_not_calmed(mood: MoodDetector) -> None:
    assert mood.score("worst service ever 😂", "en").upset


@pytest.mark.parametrize(
    ("sarcastic", "praise_alone", "lang"),
    [
        ("great service, my parcel never arrived", "great service, thank you", "en"),
        ("excelente servicio, otra vez sin luz en todo el barrio", "excelente servicio, gracias", "es"),
    ],
)
def test_praise_next_to_a_complaint_is_sarcasm(
    mood: MoodDetector, sarcastic: str, praise_alone: str, lang: str
) -> None:
    reading = mood.score(sarcastic, lang)
    assert reading.upset
    assert any(e.startswith("sarcasm:") for e in reading.evidence), reading.evidence
    complaint = sarcastic.split(", ", 1)[1]
    assert not mood.score(complaint, lang).upset  # the praise is what tips it
    assert mood.score(praise_alone, lang).score == 0.0


def test_praise_next_to_swearing_is_not_sarcasm(mood: MoodDetector) -> None:
    # Sarcasm needs a complaint; a fan swearing in delight is not one.
    reading = mood.score("what a service from Messi, fucking hell", "en")
    assert not any(e.startswith("sarcasm:") for e in reading.evidence)


def test_irony_emoji_count_only_next_to_a_complaint(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "negative:\n  estafa: 0.4\n", "irony_emoji:\n  '👏': 0.35\n")
    detector = MoodDetector.from_dir(folder)
    assert detector.score("👏👏", "es").score == 0.0
    clapped = detector.score("una estafa 👏👏", "es")
    assert clapped.score > detector.score("una estafa", "es").score
    assert "sarcasm: 👏👏" in clapped.evidence


def test_irony_needs_is_a_weight(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "negative:\n  estafa: 0.4\n", "irony_needs: 3\n")
    with pytest.raises(MoodConfigError) as err:
        MoodDetector.from_dir(folder)
    assert str(err.value).startswith(f"{folder / 'signals.yaml'}:1: irony_needs: expected a number from 0 to 1")


def test_an_emoji_cannot_be_both_upset_and_calm(tmp_path: Path) -> None:
    folder = _folder(tmp_path, "negative:\n  asco: 0.6\n", "emoji:\n  '😡': 0.6\ncalm_emoji:\n  '😡': 0.3\n")
    with pytest.raises(MoodConfigError) as err:
        MoodDetector.from_dir(folder)
    assert str(err.value).startswith(f"{folder / 'signals.yaml'}:4: "), err.value
    assert "also listed under emoji" in str(err.value)


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("¿Cómo me doy de baja de la newsletter?", "es"),
        ("Hola, ¿dónde puedo cancelar mi cuenta?", "es"),
        ("How do I close my account?", "en"),
        ("Hi. Can I cancel my subscription online?", "en"),
        ("Si me doy de baja ahora, ¿pierdo los puntos?", "es"),
        ("If I cancel my account now, do I lose my points?", "en"),
        ("Quisiera darme de baja, ¿qué tengo que hacer?", "es"),
        ("Hello, I'd like to make a complaint about a late delivery, what's the process?", "en"),
    ],
)
def test_asking_how_to_leave_is_not_a_threat(mood: MoodDetector, text: str, lang: str) -> None:
    reading = mood.assess(text, lang)
    assert reading.score == 0.0 and not reading.upset, reading


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Como no me devolvéis el dinero, me doy de baja", "es"),
        ("How dare you. I'm closing my account", "en"),
        # "if"/"si" ask only in a question: without one they are how a threat goes
        ("Si no me lo arreglan hoy me doy de baja", "es"),
        ("If you don't fix it today I'll close my account", "en"),
    ],
)
def test_a_threat_after_the_question_clause_still_counts(mood: MoodDetector, text: str, lang: str) -> None:
    assert any(e.startswith("threat to leave") for e in mood.assess(text, lang).evidence)


def test_a_three_letter_acronym_is_not_an_elongation(mood: MoodDetector) -> None:
    reading = mood.assess("Reported you to the BBB. Enjoy the reviews.", "en")
    assert _has(reading, 'threat to complain: "Reported you to the BBB"') or _has(reading, '"BBB"'), reading
    assert not _has(reading, "elongation")
    assert _has(mood.assess("noooo not again", "en"), "elongation")


@pytest.mark.parametrize(
    ("softened", "plain", "lang"),
    [("A bit disappointed with the colour", "Disappointed with the colour", "en"),
     ("Un poco decepcionado con el color", "Decepcionado con el color", "es")],
)
def test_downtoners_soften_a_remark(mood: MoodDetector, softened: str, plain: str, lang: str) -> None:
    assert 0.0 < mood.assess(softened, lang).score < mood.assess(plain, lang).score


@pytest.mark.parametrize(
    ("told", "felt", "lang"),
    [
        ("My dad is furious about the bill, could you explain it?",
         "I am furious about the bill, could you explain it?", "en"),
        ("My wife is livid about the delay, is there any news?",
         "I am livid about the delay, is there any news?", "en"),
        ("Mi padre está muy enfadado por la factura, ¿me la explicáis?",
         "Estoy muy enfadado por la factura, ¿me la explicáis?", "es"),
        ("mi jefe dice que sois unos inútiles, ¿cómo descargo el extracto?",
         "sois unos inútiles, ¿cómo descargo el extracto?", "es"),
    ],
)
def test_someone_elses_anger_told_calmly_is_not_upset(mood: MoodDetector, told: str, felt: str, lang: str) -> None:
    reading = mood.assess(told, lang)
    assert 0.0 < reading.score < mood.assess(felt, lang).score and not reading.upset, reading
    assert mood.assess(felt, lang).upset


def test_a_reporter_reaches_only_the_rest_of_its_clause(mood: MoodDetector) -> None:
    # "mi padre" is the writer's family, "qué padre" is Mexican for "how cool": only "mi ..." reports.
    assert mood.assess("Mi padre pagó la factura. Sois unos inútiles", "es").upset
    assert mood.assess("Qué padre que me cobren dos veces, sois unos inútiles", "es").upset


def test_reporters_are_an_admins_word_list(tmp_path: Path) -> None:
    folder = tmp_path / "mood"
    shutil.copytree(CONFIG / "mood", folder)
    plain = MoodDetector.from_dir(folder).assess("My dad is furious about the bill", "en").score
    en = folder / "en.yaml"
    en.write_text(en.read_text(encoding="utf-8").replace("reporters: [my dad,", "reporters: [my uncle,"))
    assert MoodDetector.from_dir(folder).assess("My dad is furious about the bill", "en").score > plain


@pytest.mark.parametrize(
    ("text", "lang", "shown"),
    [
        ("os escribí por MD hace 9 días. Nueve. Sigo esperando", "es", "Nueve"),
        ("@MercadoLibre 40 días esperando el reembolso. CUARENTA.", "es", "CUARENTA"),
        ("Waited 6 days for a call back. Six.", "en", "Six"),
    ],
)
def test_a_count_restated_alone_insists(mood: MoodDetector, text: str, lang: str, shown: str) -> None:
    assert _has(mood.assess(text, lang), f'insisting: "{shown}"')


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Two questions: 1) where is order 2? 2) can I change it?", "en"),  # not alone in its sentence
        ("Nueve. Es el número de mi portal", "es"),  # no count in digits to restate
        ("Pedí 3 cosas. Nueve.", "es"),  # not the same count
    ],
)
def test_a_number_word_alone_is_not_insisting(mood: MoodDetector, text: str, lang: str) -> None:
    assert not any(e.startswith("insisting") for e in mood.assess(text, lang).evidence)


@pytest.mark.parametrize(
    ("calm", "angry", "lang"),
    [
        ("I want to close my account", "This is a joke. I want to close my account", "en"),
        ("Please cancel my account", "cancel my account. now. done with this", "en"),
        ("Quiero cerrar mi cuenta", "Qué vergüenza, quiero cerrar mi cuenta", "es"),
    ],
)
def test_a_plain_request_to_leave_is_evidence_but_not_upset_alone(
    mood: MoodDetector, calm: str, angry: str, lang: str
) -> None:
    # The handoff rules send the request to a person; the agent must not be told the customer is angry.
    reading = mood.assess(calm, lang)
    assert any(e.startswith("threat to leave") for e in reading.evidence) and not reading.upset, reading
    assert mood.assess(angry, lang).upset
