"""The chat widget in Debian's Chromium: demo page, a question in Spanish, a suggestion, a reload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync

from bot.messages import Outbound, StatusUpdate
from handoff import keys
from tests.conftest import CONFIG_DIR, ROOT

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync",
]
WAIT_MS = 20_000
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def relevo_url(redis: Any, redis_url: str, tmp_path: Path) -> Iterator[str]:
    """`relevo serve` on a free port of 127.0.0.1, with the shipped config and the test Redis."""
    env = {**os.environ, "REDIS_URL": redis_url}
    args = ["--config", str(CONFIG_DIR), "serve", "--port", "0", "--data", str(tmp_path / "data")]
    # The log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed in finally, after the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if "serving on" in line:
                yield line.split("serving on ", 1)[1].strip()
                break
        else:
            log.flush()
            tail = (tmp_path / "serve.log").read_text()[-2000:]
            raise AssertionError(f"relevo serve exited with {proc.wait()} before serving:\n{tail}")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log.close()


@pytest.fixture
def publish(redis_url: str) -> Iterator[Any]:
    """Publish an engine event as another worker would (the agent side, the queue)."""
    client = redis_sync.Redis.from_url(redis_url)
    try:
        yield lambda event: client.publish(keys.out_channel("web"), event.to_json())
    finally:
        client.close()


@pytest.fixture
def page(relevo_url: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=PHONE, locale="es-ES")
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
            )
            page.problems = problems
            yield page
        finally:
            browser.close()


def bot_messages(page: Any) -> Any:
    return page.locator(".relevo-log .relevo-from-bot")


def test_spanish_question_suggestion_and_reload(page: Any, relevo_url: str) -> None:
    page.goto(relevo_url + "/?lang=es")
    assert page.locator("html").get_attribute("lang") == "es"
    page.get_by_role("button", name="Chatea con nosotros").click()
    panel = page.locator(".relevo-panel")
    assert panel.is_visible()
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]

    bot_messages(page).first.wait_for()  # the greeting
    greeting = bot_messages(page).first.inner_text()
    assert "asistente" in greeting

    page.locator(".relevo-input").fill("¿Cuánto tarda el envío?")
    page.locator(".relevo-input").press("Enter")
    mine = page.locator(".relevo-log .relevo-from-customer").first
    assert mine.locator(".relevo-text").inner_text() == "¿Cuánto tarda el envío?"
    page.wait_for_function(
        "() => document.querySelector('.relevo-from-customer .relevo-tick').textContent === '✓'"
    )
    answer = bot_messages(page).nth(1)
    answer.wait_for()
    assert "días hábiles" in answer.inner_text()

    suggestion = answer.locator(".relevo-choice").first
    label = suggestion.inner_text()
    suggestion.click()
    chosen = page.locator(".relevo-log .relevo-from-customer").nth(1)
    assert chosen.locator(".relevo-text").inner_text() == label
    bot_messages(page).nth(2).wait_for()  # the reply to the chosen suggestion
    reply = bot_messages(page).nth(2).inner_text()

    page.reload()
    bot_messages(page).nth(2).wait_for()
    log = page.locator(".relevo-log")
    texts = log.locator(".relevo-text").all_inner_texts()
    assert texts[:1] == [greeting]
    assert "¿Cuánto tarda el envío?" in texts and label in texts
    assert reply in [m.inner_text() for m in bot_messages(page).all()]
    ids = log.locator("[data-id]").evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    assert len(ids) == len(set(ids)), "history shown twice"
    assert page.problems == []


def test_typed_markup_is_shown_as_text(page: Any, relevo_url: str) -> None:
    page.goto(relevo_url + "/?lang=en")
    page.get_by_role("button", name="Chat with us").click()
    bot_messages(page).first.wait_for()
    hostile = '<img src=x onerror="document.title=\'pwned\'"><b>bold</b>'
    page.locator(".relevo-input").fill(hostile)
    page.get_by_role("button", name="Send").click()
    mine = page.locator(".relevo-log .relevo-from-customer .relevo-text").first
    assert mine.inner_text() == hostile
    bot_messages(page).nth(1).wait_for()
    assert page.locator(".relevo-log img, .relevo-log b").count() == 0
    assert page.title() != "pwned"
    page.reload()
    page.locator(".relevo-log .relevo-from-customer").first.wait_for()
    assert page.locator(".relevo-log .relevo-from-customer .relevo-text").first.inner_text() == hostile
    assert page.locator(".relevo-log img, .relevo-log b").count() == 0


def session_key(page: Any, relevo_url: str) -> str:
    host = relevo_url.split("://", 1)[1]
    token = page.evaluate(f"() => localStorage.getItem('relevo:{host}:session')")
    assert token, "the widget keeps no session"
    return "web:" + str(token).split(".")[0]


def test_queue_position_agent_joining_and_agent_text(page: Any, relevo_url: str, publish: Any) -> None:
    page.goto(relevo_url + "/?lang=es")
    page.get_by_role("button", name="Chatea con nosotros").click()
    bot_messages(page).first.wait_for()
    key = session_key(page, relevo_url)
    status = page.locator(".relevo-status")

    publish(StatusUpdate("conv", key, "web", "queued", position=3, eta_s=240))
    page.get_by_text("Eres el número 3 en la cola. Espera estimada: 4 min.").wait_for()
    publish(StatusUpdate("conv", key, "web", "queued", position=1, eta_s=496 * 60))  # out of hours
    page.get_by_text("Eres el número 1 en la cola. Espera estimada: 8 h 16 min.").wait_for()

    publish(StatusUpdate("conv", key, "web", "assigned", agent="Ana <b>"))
    page.get_by_text("Ana <b> se ha unido a la conversación.").wait_for()
    assert status.is_visible()

    hostile = "<img src=x onerror=alert(1)> hola, soy Ana"
    publish(Outbound("conv", key, "web", "1-1", hostile, sender="agent", author="Ana"))
    agent = page.locator(".relevo-log .relevo-from-agent")
    agent.wait_for()
    assert agent.locator(".relevo-author").inner_text() == "Ana"
    assert agent.locator(".relevo-text").inner_text() == hostile
    assert page.locator(".relevo-log img").count() == 0

    publish(StatusUpdate("conv", key, "web", "bot"))
    status.wait_for(state="hidden")
    assert page.problems == []


def test_dropped_connection_reconnects_and_resends_without_duplicates(page: Any, relevo_url: str) -> None:
    routes: list[Any] = []
    swallow = {"message": False}

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        routes.append((ws, server))

        def to_server(frame: str | bytes) -> None:
            # While the "network" is bad, the customer's messages never reach the server.
            if swallow["message"] and '"type":"message"' in str(frame).replace(" ", ""):
                return
            server.send(frame)

        ws.on_message(to_server)
        server.on_message(ws.send)

    page.route_web_socket("**/ws", route)
    page.goto(relevo_url + "/?lang=es")
    page.get_by_role("button", name="Chatea con nosotros").click()
    bot_messages(page).first.wait_for()

    swallow["message"] = True
    page.locator(".relevo-input").fill("¿Cuánto tarda el envío?")
    page.locator(".relevo-input").press("Enter")
    pending = page.locator(".relevo-log .relevo-pending")
    pending.wait_for()
    assert pending.locator(".relevo-tick").inner_text() == "🕓"
    ws, server = routes[-1]
    swallow["message"] = False
    ws.close(code=4000, reason="network dropped")
    server.close()

    # The widget reconnects with its session, resends the unacknowledged message, gets it answered.
    answer = bot_messages(page).nth(1)
    answer.wait_for()
    assert "días hábiles" in answer.inner_text()
    assert len(routes) >= 2
    mine = page.locator(".relevo-log .relevo-from-customer")
    assert mine.count() == 1
    assert mine.locator(".relevo-tick").inner_text() == "✓"

    page.reload()
    bot_messages(page).nth(1).wait_for()
    assert page.locator(".relevo-log .relevo-from-customer").count() == 1
    assert page.problems == []


def test_a_second_tab_shows_what_the_customer_typed_in_the_first(page: Any, relevo_url: str) -> None:
    page.goto(relevo_url + "/?lang=en")
    page.get_by_role("button", name="Chat with us").click()
    bot_messages(page).first.wait_for()
    other = page.context.new_page()  # same browser profile: same session, its own socket
    other.set_default_timeout(WAIT_MS)
    other.goto(relevo_url + "/?lang=en")
    bot_messages(other).first.wait_for()  # the panel was left open: it reconnects with the session

    page.locator(".relevo-input").fill("How long does shipping take?")
    page.locator(".relevo-input").press("Enter")
    bot_messages(page).nth(1).wait_for()
    answer = bot_messages(page).nth(1).locator(".relevo-text").inner_text()

    mine = other.locator(".relevo-log .relevo-from-customer .relevo-text")
    mine.first.wait_for()
    assert mine.all_inner_texts() == ["How long does shipping take?"]
    bot_messages(other).nth(1).wait_for()
    texts = other.locator(".relevo-log .relevo-text").all_inner_texts()
    assert texts.index("How long does shipping take?") < texts.index(answer), texts

    # And back: what is typed in the second tab shows in the first, once.
    other.locator(".relevo-input").fill("thanks")
    other.locator(".relevo-input").press("Enter")
    page.locator(".relevo-log .relevo-from-customer .relevo-text").nth(1).wait_for()
    assert page.locator(".relevo-log .relevo-from-customer .relevo-text").all_inner_texts() == [
        "How long does shipping take?", "thanks",
    ]
    ids = other.locator(".relevo-log [data-id]").evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    assert len(ids) == len(set(ids))
    assert page.problems == []
