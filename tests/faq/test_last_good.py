"""The last good knowledge base kept in the data folder, and a start with a broken file that serves it."""

import logging
from pathlib import Path

import pytest

from faq import last_good
from faq.library import KnowledgeBaseError, Library
from faq.model import Action
from tests.faq.test_library import RETURNS, THRESHOLDS, kb_log, write
from tests.faq.test_loader import GOOD

# The tester's file: an entry without an answer, at line 3.
HALF = 'department: general\nentries:\n  - id: x\n    questions: {en: ["a b c"]}\n'
BROKEN = {
    "a new file with an entry without an answer": ("zz_half.yaml", HALF, 3, "entry 'x' has no answer"),
    "a YAML syntax error in an existing file": ("shop.yaml", GOOD + "  - id: [broken\n", 14, "bad YAML"),
}


def folders(tmp_path: Path) -> tuple[Path, Path]:
    """(the admin's knowledge-base folder with two good files, one in a subfolder; the copies' folder)"""
    kb = tmp_path / "faq"
    (kb / "more").mkdir(parents=True)
    write(kb, "shop.yaml", GOOD)
    write(kb / "more", "returns.yaml", RETURNS)
    return kb, tmp_path / "data" / "faq-last-good"


def test_a_clean_load_is_kept_byte_for_byte_once_per_version(tmp_path: Path) -> None:
    kb, copies = folders(tmp_path)
    lib = Library(kb, THRESHOLDS, last_good=copies)
    [copy] = last_good.copies(copies)
    assert copy.version == lib.kb.version
    assert (copy.path / "shop.yaml").read_bytes() == (kb / "shop.yaml").read_bytes()
    assert (copy.path / "more" / "returns.yaml").read_bytes() == (kb / "more" / "returns.yaml").read_bytes()
    assert lib.reload() is False and len(last_good.copies(copies)) == 1  # an unchanged folder: no new copy
    write(kb, "shop.yaml", GOOD.replace("2–4 business days", "3 business days"))
    assert lib.reload() is True
    newest = last_good.copies(copies)
    assert [c.version for c in newest][:1] == [lib.kb.version] and len(newest) == 2
    assert not [p for p in copies.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_only_the_newest_copies_are_kept(tmp_path: Path) -> None:
    kb, copies = folders(tmp_path)
    lib = Library(kb, THRESHOLDS, last_good=copies)
    versions = [lib.kb.version]
    for days in range(5, 10):
        write(kb, "shop.yaml", GOOD.replace("2–4 business days", f"{days} business days"))
        assert lib.reload() is True
        versions.append(lib.kb.version)
    assert [c.version for c in last_good.copies(copies)] == versions[::-1][: last_good.KEEP]


@pytest.mark.parametrize("case", BROKEN.values(), ids=BROKEN.keys())
def test_a_start_with_a_broken_file_serves_the_last_good_copy_until_it_is_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: tuple[str, str, int, str]
) -> None:
    name, text, line, message = case
    kb, copies = folders(tmp_path)
    good = Library(kb, THRESHOLDS, last_good=copies)
    version = good.kb.version
    original = (kb / name).read_text(encoding="utf-8") if (kb / name).exists() else None
    write(kb, name, text)
    caplog.set_level(logging.INFO, logger="faq.library")

    lib = Library(kb, THRESHOLDS, last_good=copies)  # the restart
    lib.require()  # something to serve: the start goes on
    assert lib.kb.version == version and len(lib.kb) == 3
    assert lib.decide("How long does shipping take?", "en").action is Action.ANSWER
    assert lib.decide("¿Cómo devuelvo un producto?", "es").action is Action.ANSWER
    # The entries name the admin's files, not the copy.
    assert {e.source for e in lib.kb.entries} == {str(kb / "shop.yaml"), str(kb / "more" / "returns.yaml")}
    assert lib.status.ok is False
    assert str(lib.status.errors[0]).startswith(f"{kb / name}:{line}: {message}")
    health = lib.health()
    assert health["faq"] == "stale" and health["faq_version"] == version
    assert str(health["faq_error"]).startswith(f"{kb / name}:{line}: {message}")
    errors = kb_log(caplog, logging.ERROR)
    assert any(m.startswith(f"knowledge base: {kb / name}:{line}: {message}") for m in errors)
    assert errors[-1].startswith(f"knowledge base in {kb} has 1 error(s); still serving version {version} "
                                 f"(the last good copy, saved ")

    if original is None:
        (kb / name).unlink()
    else:
        write(kb, name, original)
    lib.reload()  # what the file watcher does on the fix
    assert lib.status.ok and lib.health() == {"faq": "ok", "faq_version": version}
    assert lib.kb.version == version


def test_a_start_with_a_broken_file_and_no_copy_refuses_naming_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kb, copies = folders(tmp_path)
    write(kb, "zz_half.yaml", HALF)
    lib = Library(kb, THRESHOLDS, last_good=copies)
    assert len(lib.kb) == 0 and lib.health()["faq"] == "empty"
    # The log does not claim a version is still served: there is none.
    assert kb_log(caplog, logging.ERROR)[-1] == (
        f"knowledge base in {kb} has 1 error(s); nothing to serve: no last good copy in {copies} loads either"
    )
    with pytest.raises(KnowledgeBaseError) as err:
        lib.require()
    assert str(err.value) == f"{kb / 'zz_half.yaml'}:3: entry 'x' has no answer"
    assert last_good.copies(copies) == []  # a broken folder is never kept as good


def test_a_damaged_newest_copy_falls_back_to_an_older_one(tmp_path: Path) -> None:
    kb, copies = folders(tmp_path)
    older = Library(kb, THRESHOLDS, last_good=copies).kb.version
    write(kb, "shop.yaml", GOOD.replace("2–4 business days", "3 business days"))
    Library(kb, THRESHOLDS, last_good=copies)
    newest = last_good.copies(copies)[0]
    write(newest.path, "shop.yaml", "entries: [")  # a disk fault or a hand edit
    write(kb, "zz_half.yaml", HALF)
    lib = Library(kb, THRESHOLDS, last_good=copies)
    assert lib.kb.version == older and lib.health()["faq"] == "stale"


def test_a_data_folder_that_cannot_be_written_is_logged_and_the_files_still_serve(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kb, _ = folders(tmp_path)
    not_a_folder = tmp_path / "occupied"
    not_a_folder.write_text("a file where the copies would go")
    lib = Library(kb, THRESHOLDS, last_good=not_a_folder)
    assert len(lib.kb) == 3 and lib.health()["faq"] == "ok"
    [err] = kb_log(caplog, logging.ERROR)
    assert err.startswith(f"knowledge base: cannot keep a last good copy in {not_a_folder}: ")
