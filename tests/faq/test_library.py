import asyncio
import logging
from pathlib import Path

import pytest

from faq.library import Library
from faq.model import Action
from faq.policy import Thresholds
from tests.faq.test_loader import GOOD

THRESHOLDS = Thresholds(answer=0.5, clarify=0.2)
RETURNS = """\
department: returns
entries:
  - id: return-policy
    questions:
      en: ["How do I return a product?", "Can I send an item back?", "What is your return policy?"]
      es: ["¿Cómo devuelvo un producto?", "¿Puedo devolver un artículo?", "¿Cuál es la política de devoluciones?"]
    answer: {en: "You have 30 days to return it.", es: "Tienes 30 días para devolverlo."}
"""


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


async def wait_for(predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_answers_from_the_loaded_files(tmp_path: Path) -> None:
    write(tmp_path, "shop.yaml", GOOD)
    lib = Library(tmp_path, THRESHOLDS)
    decision = lib.decide("how long does shipping take", "en")
    assert decision.action is Action.ANSWER and decision.entry is not None
    assert decision.entry.id == "shipping-time"


def test_broken_edit_keeps_the_last_good_knowledge_base(tmp_path: Path) -> None:
    write(tmp_path, "shop.yaml", GOOD)
    lib = Library(tmp_path, THRESHOLDS)
    version = lib.kb.version
    write(tmp_path, "returns.yaml", RETURNS.replace("answer:", "answr:"))
    assert lib.reload() is False
    assert lib.kb.version == version and len(lib.kb) == 2
    assert lib.status.ok is False
    assert any(
        str(p).startswith(f"{tmp_path / 'returns.yaml'}:7: unknown key 'answr'") for p in lib.status.errors
    )
    assert lib.decide("how long does shipping take", "en").action is Action.ANSWER
    write(tmp_path, "returns.yaml", RETURNS)
    assert lib.reload() is True and len(lib.kb) == 3 and lib.status.ok


def test_starts_empty_on_a_broken_folder_and_says_so(tmp_path: Path) -> None:
    write(tmp_path, "shop.yaml", "entries: [")
    lib = Library(tmp_path, THRESHOLDS)
    assert len(lib.kb) == 0 and lib.status.errors
    assert lib.decide("how long does shipping take").action is Action.UNKNOWN


async def test_watch_reloads_on_change_and_ignores_broken_edits(tmp_path: Path) -> None:
    write(tmp_path, "shop.yaml", GOOD)
    lib = Library(tmp_path, THRESHOLDS)
    stop = asyncio.Event()
    task = asyncio.create_task(lib.watch(stop))
    try:
        await asyncio.sleep(0.3)  # let the watcher register before the first edit
        write(tmp_path, "returns.yaml", RETURNS)
        await wait_for(lambda: "return-policy" in lib.kb.by_id)
        assert lib.decide("¿Cómo devuelvo un producto?", "es").entry.id == "return-policy"  # type: ignore[union-attr]
        good_version = lib.kb.version
        write(tmp_path, "shop.yaml", GOOD + "  - id: [broken\n")
        await wait_for(lambda: not lib.status.ok)
        assert lib.kb.version == good_version
        assert lib.decide("how long does shipping take", "en").action is Action.ANSWER
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def kb_log(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "faq.library" and r.levelno == level]


@pytest.mark.parametrize("emptied", ["", "# being rewritten\n"])
def test_an_emptied_file_keeps_its_entries_and_is_logged_as_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, emptied: str
) -> None:
    write(tmp_path, "shop.yaml", GOOD)
    write(tmp_path, "returns.yaml", RETURNS)
    lib = Library(tmp_path, THRESHOLDS)
    version = lib.kb.version
    caplog.set_level(logging.INFO, logger="faq.library")
    write(tmp_path, "returns.yaml", emptied)  # a truncated save, or `: > returns.yaml`
    assert lib.reload() is False
    assert lib.kb.version == version and "return-policy" in lib.kb.by_id
    assert lib.decide("¿Cómo devuelvo un producto?", "es").action is Action.ANSWER
    errors = kb_log(caplog, logging.ERROR)
    assert any(m.startswith(f"knowledge base: {tmp_path / 'returns.yaml'}:1: file is empty") for m in errors)
    assert kb_log(caplog, logging.WARNING) == []


def test_a_fixed_file_is_logged_as_loading_again(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "shop.yaml", GOOD)
    write(tmp_path, "returns.yaml", RETURNS)
    lib = Library(tmp_path, THRESHOLDS)
    version = lib.kb.version
    caplog.set_level(logging.INFO, logger="faq.library")
    write(tmp_path, "returns.yaml", RETURNS.replace('"You have', '"You have" x "'))
    assert lib.reload() is False
    assert kb_log(caplog, logging.INFO) == []
    # The identical good file back: the served version does not change, yet the admin must hear of it.
    write(tmp_path, "returns.yaml", RETURNS)
    assert lib.reload() is False and lib.status.ok
    assert kb_log(caplog, logging.INFO) == [
        f"knowledge base: {tmp_path / 'returns.yaml'} loads again: 1 entry; serving version {version}"
    ]
    caplog.clear()
    assert lib.reload() is False
    assert kb_log(caplog, logging.INFO) == []  # said once, not on every later reload


DEPARTMENTS = {"general", "logistics", "returns", "billing"}


def test_unknown_handoff_department_is_logged_and_falls_back_to_the_file_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faq.library")
    text = GOOD.replace("handoff: {department: returns, tier: 2}", "handoff: {department: biling, tier: 2}")
    write(tmp_path, "shop.yaml", text)
    lib = Library(tmp_path, THRESHOLDS, DEPARTMENTS, "general")
    # The answer is right; only where the person comes from is wrong: the entry keeps serving.
    decision = lib.decide("My parcel arrived broken", "en")
    assert decision.action is Action.ANSWER and decision.entry is not None
    assert decision.entry.handoff is not None
    assert (decision.entry.handoff.department, decision.entry.handoff.tier) == ("logistics", 2)
    assert kb_log(caplog, logging.ERROR) == [
        f"knowledge base: {tmp_path / 'shop.yaml'}:13: unknown handoff department 'biling' "
        "(did you mean 'billing'?) for entry 'damaged-item'; known departments: billing, general, "
        "logistics, returns; until it is fixed these handoffs go to 'logistics'"
    ]
    assert lib.status.ok and [p.line for p in lib.status.errors] == [13]
    # Monitoring (/healthz) and the supervisor page see it too, not only the log.
    health = lib.health()
    assert health["faq"] == "misrouted" and "shop.yaml:13: unknown handoff department 'biling'" in str(
        health["faq_error"])
    caplog.clear()
    assert lib.reload() is False
    assert kb_log(caplog, logging.ERROR) == []  # a no-op reload does not repeat it


def test_misspelt_file_department_falls_back_to_the_default_department(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="faq.library")
    text = GOOD.replace("department: logistics", "department: logistcs").replace(
        "handoff: {department: returns, tier: 2}", "handoff: {tier: 2}"
    )
    write(tmp_path, "shop.yaml", text)
    lib = Library(tmp_path, THRESHOLDS, DEPARTMENTS, "general")
    rule = lib.kb.by_id["damaged-item"].handoff
    assert rule is not None and rule.department == "general"
    [err] = kb_log(caplog, logging.ERROR)
    assert err.startswith(f"knowledge base: {tmp_path / 'shop.yaml'}:1: unknown department 'logistcs'")
    assert err.endswith("these handoffs go to 'general'")


def test_removing_the_broken_file_is_logged_as_the_folder_loading_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "shop.yaml", GOOD)
    lib = Library(tmp_path, THRESHOLDS)
    write(tmp_path, "returns.yaml", "entries: [")
    assert lib.reload() is False
    caplog.set_level(logging.INFO, logger="faq.library")
    (tmp_path / "returns.yaml").unlink()
    assert lib.reload() is False
    assert kb_log(caplog, logging.INFO) == [
        f"knowledge base in {tmp_path} loads again: 2 entries; serving version {lib.kb.version}"
    ]


@pytest.mark.parametrize(
    ("text", "lang"),
    [("When will my order arrive?", "en"), ("when will I receive my order", "en"), ("¿cuándo llega mi pedido?", "es")],
)
def test_the_shipped_knowledge_base_answers_the_most_common_shop_question(text: str, lang: str) -> None:
    """DESIGN.md's own example: answered by shipping-time, not a list that starts with 'My parcel arrived broken'."""
    from tests.conftest import CONFIG_DIR

    lib = Library(CONFIG_DIR / "faq", Thresholds(answer=0.85, clarify=0.21))  # config/relevo.toml's
    decision = lib.decide(text, lang)
    assert decision.action is Action.ANSWER and decision.entry is not None and decision.entry.id == "shipping-time"


@pytest.mark.parametrize("text", ["do u ship to canada", "hacen envios a mexico", "¿cuánto tarda el envío a Argentina?"
                                  ])
def test_the_shipped_knowledge_base_answers_shipping_to_a_named_country(text: str) -> None:
    """Not Spain's delivery times, nor "did you mean the Canaries?": the countries it ships to."""
    from tests.conftest import CONFIG_DIR

    lib = Library(CONFIG_DIR / "faq", Thresholds(answer=0.85, clarify=0.21))
    decision = lib.decide(text)
    assert decision.action is Action.ANSWER and decision.entry is not None, decision.match
    assert decision.entry.id == "international-shipping"
