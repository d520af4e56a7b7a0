import asyncio
from pathlib import Path

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
