"""A (re)start with a broken knowledge-base file: real server, real files, real Redis.

It serves the last good copy kept in the data folder and says `stale` on /healthz until the file is
fixed; with no good copy it does not start, naming the file and line."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bot.settings import Settings, load_settings
from tests.bot.test_web import QUESTION_ES, SECRET, Served, ask, expect, hello, serving
from tests.conftest import CONFIG_DIR, ROOT

# The tester's file: an entry without an answer, at line 3.
HALF = 'department: general\nentries:\n  - id: x\n    questions: {en: ["a b c"]}\n'


def shop_kb(tmp_path: Path) -> Path:
    """A copy of the shipped knowledge base that the test may break."""
    kb = tmp_path / "faq"
    shutil.copytree(CONFIG_DIR / "faq", kb)
    return kb


def settings_for(redis_url: str, tmp_path: Path, kb: Path) -> Settings:
    return load_settings(
        CONFIG_DIR, env={}, server={"session_secret": SECRET}, faq={"dir": str(kb)},
        store={"redis_url": redis_url, "data_dir": str(tmp_path / "data")},
    )


async def health(http: aiohttp.ClientSession, served: Served) -> dict[str, Any]:
    async with http.get(served.url + "/healthz") as response:
        assert response.status == 200  # a worker that still answers is not pulled by the balancer
        body: dict[str, Any] = await response.json()
        return body


async def test_a_restart_with_a_broken_file_serves_the_last_good_version_and_healthz_says_stale(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    kb = shop_kb(tmp_path)
    settings = settings_for(redis_url, tmp_path, kb)
    async with aiohttp.ClientSession() as http:
        async with serving(settings) as served:  # a good start keeps its knowledge base
            first = await health(http, served)
            assert first["ok"] is True and first["faq"] == "ok" and "faq_error" not in first
        (kb / "zz_half.yaml").write_text(HALF, encoding="utf-8")

        async with serving(settings) as served:  # the restart, with the broken file
            body = await health(http, served)
            assert body["ok"] is True and body["faq"] == "stale"
            assert body["faq_version"] == first["faq_version"]
            assert body["faq_error"] == f"{kb / 'zz_half.yaml'}:3: entry 'x' has no answer"
            ws, welcome = await hello(http, served)
            greeting_ids = {m["id"] for m in welcome["history"]}
            reply = await ask(ws, "c-1", QUESTION_ES)
            while reply["id"] in greeting_ids:  # the greeting may also arrive live
                reply = await expect(ws, "message")
            assert reply["from"] == "bot" and "días" in reply["text"]  # answered, not "not understood"
            await ws.close()

            # The admin fixes the file: hot reload picks it up and /healthz is ok again.
            stop = asyncio.Event()
            watch = asyncio.create_task(served.runtime.library.watch(stop))
            try:
                await asyncio.sleep(0.3)  # let the watcher register before the fix
                (kb / "zz_half.yaml").write_text(HALF + '    answer: {en: "d e f"}\n', encoding="utf-8")
                for _ in range(200):
                    body = await health(http, served)
                    if body["faq"] == "ok":
                        break
                    await asyncio.sleep(0.05)
                assert body["faq"] == "ok" and "faq_error" not in body
                assert body["faq_version"] != first["faq_version"]
                assert "x" in served.runtime.library.kb.by_id
            finally:
                stop.set()
                await asyncio.wait_for(watch, 5)


def refused_start(redis_url: str, tmp_path: Path, **env_vars: str) -> subprocess.CompletedProcess[str]:
    """`relevo serve` with these RELEVO_* variables, which must refuse to start (exit 1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_")}
    env.update(REDIS_URL=redis_url, RELEVO_SERVER_SESSION_SECRET=SECRET, **env_vars)
    args = ["--config", str(CONFIG_DIR), "serve", "--host", "127.0.0.1", "--port", "0",
            "--data", str(tmp_path / "data")]
    done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 1, done.stderr
    return done


def test_relevo_serve_with_a_broken_file_and_no_good_copy_exits_naming_file_and_line(
    redis_url: str, tmp_path: Path
) -> None:
    kb = shop_kb(tmp_path)
    (kb / "zz_half.yaml").write_text(HALF, encoding="utf-8")
    done = refused_start(redis_url, tmp_path, RELEVO_FAQ_DIR=str(kb))
    assert f"relevo: knowledge base: {kb / 'zz_half.yaml'}:3: entry 'x' has no answer\n" in done.stderr
    assert "serving on" not in done.stdout
    assert not (tmp_path / "data" / "faq-last-good").exists()  # a broken folder is never kept as good


def test_relevo_serve_with_a_broken_mood_lexicon_exits_naming_file_and_line(
    redis_url: str, tmp_path: Path
) -> None:
    # A typo in a lexicon must not quietly stop handing upset customers to a person.
    mood = tmp_path / "mood"
    shutil.copytree(CONFIG_DIR / "mood", mood)
    with (mood / "en.yaml").open("a", encoding="utf-8") as fh:
        fh.write("\nfeelings:\n  - grumpy\n")
    done = refused_start(redis_url, tmp_path, RELEVO_MOOD_DIR=str(mood))
    assert f"relevo: mood: {mood / 'en.yaml'}:" in done.stderr and "unknown section 'feelings'" in done.stderr
    assert "serving on" not in done.stdout
