"""`relevo mood eval --cases`: the CSV files spreadsheets actually write (BOM, not UTF-8)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_utf8_bom_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Excel's "CSV UTF-8" starts the file with a byte-order mark, which used to hide the text column.
    cases = tmp_path / "bom.csv"
    cases.write_bytes(b"\xef\xbb\xbf" + (FIXTURES / "mood_cases.csv").read_bytes())
    assert main(["--config", str(CONFIG), "mood", "eval", "--cases", str(cases), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cases"] == 10 and report["upset"] == 5


def test_a_latin1_file_is_a_clear_error_without_traceback(tmp_path: Path) -> None:
    cases = tmp_path / "latin1.csv"
    data = "text,upset,lang\nthanks a lot,0,en\nesto es una vergüenza,1,es\n".encode("latin-1")
    cases.write_bytes(data)
    at = data.index(b"\xfc")
    # A subprocess: what the admin sees on the terminal, traceback or not.
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(CONFIG), "mood", "eval", "--cases", str(cases)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert (
        f"relevo mood eval: {cases}:3: not UTF-8 text (byte 0xfc at byte offset {at}); "
        "save the file as UTF-8 (in Excel: CSV UTF-8)"
    ) in done.stderr
    assert "Traceback" not in done.stderr
