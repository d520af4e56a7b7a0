"""handoff.yaml is read at start (the knowledge base is reloaded, the rules are not): once it changed on
disk, the misrouting messages (/healthz `faq_error`, the log) and `relevo faq check` say to restart.
Real server, real files, real Redis."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import aiohttp
import pytest

from bot.cli import main
from bot.settings import load_settings
from tests.bot.test_web import SECRET, serving
from tests.bot.test_web_faq_health import health
from tests.conftest import CONFIG_DIR

VIP = """department: general
entries:
  - id: vip-program
    questions: {en: ["What is the VIP program?"], es: ["¿Qué es el programa VIP?"]}
    answer: {en: "Members get free shipping.", es: "Los socios tienen envío gratis."}
    handoff: {department: vip, tier: 1}
"""
VIP_DEPARTMENT = '  vip:\n    name: {en: "VIP", es: "VIP"}\n'


async def test_a_rules_file_changed_since_start_is_named_as_needing_a_restart(
    redis_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    (config / "faq" / "vip.yaml").write_text(VIP, encoding="utf-8")
    data = tmp_path / "data"
    (config / "relevo.toml").write_text(f'[store]\ndata_dir = "{data}"\n', encoding="utf-8")
    rules = config / "handoff.yaml"
    note = f"{rules} has changed on disk since Relevo started: it is read only at start; restart Relevo to use it"
    settings = load_settings(config, env={}, server={"session_secret": SECRET}, store={"redis_url": redis_url})
    caplog.set_level(logging.ERROR, logger="faq.library")
    async with serving(settings) as served, aiohttp.ClientSession() as http:
        body = await health(http, served)
        assert body["faq"] == "misrouted" and "unknown handoff department 'vip'" in body["faq_error"]
        assert note not in body["faq_error"]  # the file is as it was read: a restart would change nothing

        assert main(["--config", str(config), "faq", "check"]) == 1  # `vip` is not in the file on disk either
        assert "restart" not in capsys.readouterr().out

        text = rules.read_text(encoding="utf-8")
        rules.write_text(text.replace("departments:\n", "departments:\n" + VIP_DEPARTMENT, 1), encoding="utf-8")
        body = await health(http, served)
        assert body["faq"] == "misrouted" and body["faq_error"].endswith(f"; {note}")
        served.runtime.library.reload()  # what the file watcher does on the next knowledge-base edit
        assert any(r.getMessage().endswith(f"; {note}") for r in caplog.records)

        assert main(["--config", str(config), "faq", "check"]) == 0  # `vip` is in the file on disk
        assert f"departments checked against {rules}, as it is on disk; {note}\n" in capsys.readouterr().out

        rules.write_text(text, encoding="utf-8")  # put back as it was read: no restart needed
        assert note not in (await health(http, served))["faq_error"]
        assert main(["--config", str(config), "faq", "check"]) == 1
        assert "restart" not in capsys.readouterr().out
