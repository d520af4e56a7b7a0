"""The chat widget in Debian's Chromium: demo page, a question in Spanish, a suggestion, a reload."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
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
def relevo_env() -> dict[str, str]:
    """Settings for the server below through the environment; a test changes them with parametrize."""
    return {}


@pytest.fixture(scope="module")
def relevo_servers(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[dict[str, str]], str]]:
    """`relevo serve` on free ports of 127.0.0.1 with the shipped config and the test Redis: one per set of
    settings, started when a test of the module first asks for it and stopped at the module's end.

    Starting one (imports, fitting the knowledge base) takes longer than most tests; each test still gets a
    flushed Redis and a browser context of its own, so a new session and a new conversation.
    """
    running: dict[tuple[tuple[str, str], ...], str] = {}
    stops: list[Callable[[], None]] = []

    def url_for(settings: dict[str, str]) -> str:
        key = tuple(sorted(settings.items()))
        if key not in running:
            running[key] = _start_server(redis_url, tmp_path_factory.mktemp("relevo"), settings, stops)
        return running[key]

    try:
        yield url_for
    finally:
        for stop in stops:
            stop()


def _start_server(redis_url: str, folder: Path, settings: dict[str, str], stops: list[Callable[[], None]]) -> str:
    env = {**os.environ, "REDIS_URL": redis_url, **settings}
    args = ["--config", str(CONFIG_DIR), "serve", "--port", "0", "--data", str(folder / "data")]
    # The log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = open(folder / "serve.log", "w")  # noqa: SIM115 - closed by stop(), after the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    assert proc.stdout is not None

    def stop() -> None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        log.close()

    stops.append(stop)
    for line in proc.stdout:
        if "serving on" in line:
            return line.split("serving on ", 1)[1].strip()
    log.flush()
    tail = (folder / "serve.log").read_text()[-2000:]
    raise AssertionError(f"relevo serve exited with {proc.wait()} before serving:\n{tail}")


@pytest.fixture
def relevo_url(redis_url: str, relevo_servers: Callable[[dict[str, str]], str], relevo_env: dict[str, str]) -> str:
    """The module's server for the test's settings (relevo_env), with a flushed Redis.

    Flushed with a plain client: the module's Playwright keeps an event loop running, so the async
    `redis` fixture cannot run here.
    """
    with redis_sync.Redis.from_url(redis_url) as client:
        client.flushdb()
    return relevo_servers(relevo_env)


@pytest.fixture
def publish(redis_url: str) -> Iterator[Any]:
    """Publish an engine event as another worker would (the agent side, the queue)."""
    client = redis_sync.Redis.from_url(redis_url)
    try:
        yield lambda event: client.publish(keys.out_channel("web"), event.to_json())
    finally:
        client.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One Chromium per module (launching it costs more than a test); each test has its own context."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any, relevo_url: str) -> Iterator[Any]:
    """A phone-sized page in a fresh browser context (its own localStorage: a new widget session)."""
    context = chromium.new_context(viewport=PHONE, locale="es-ES")
    try:
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
        context.close()


def open_chat(page: Any, relevo_url: str, lang: str) -> None:
    """The demo page in that language, the chat opened, the bot's greeting shown."""
    page.goto(f"{relevo_url}/?lang={lang}")
    page.get_by_role("button", name="Chatea con nosotros" if lang == "es" else "Chat with us").click()
    bot_messages(page).first.wait_for()


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
    greeting = bot_messages(page).first.locator(".relevo-text").inner_text()  # without the speaker label
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
    open_chat(page, relevo_url, "en")
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
    open_chat(page, relevo_url, "es")
    key = session_key(page, relevo_url)
    status = page.locator(".relevo-status")

    publish(StatusUpdate("conv", key, "web", "queued", position=3, eta_s=240))
    page.get_by_text("Eres el número 3 en la cola. Espera estimada: 4 min.").wait_for()
    publish(StatusUpdate("conv", key, "web", "queued", position=1, eta_s=496 * 60))  # out of hours
    page.get_by_text("Eres el número 1 en la cola. Espera estimada: 8 h 16 min.").wait_for()

    publish(StatusUpdate("conv", key, "web", "assigned", agent="Ana <b>"))
    page.get_by_text("Ana <b> se ha unido a la conversación.").wait_for()
    assert status.is_visible()
    assert status.get_attribute("class") == "relevo-status" and status.get_attribute("aria-hidden") is None

    hostile = "<img src=x onerror=alert(1)> hola, soy Ana"
    publish(Outbound("conv", key, "web", "1-1", hostile, sender="agent", author="Ana"))
    agent = page.locator(".relevo-log .relevo-from-agent")
    agent.wait_for()
    assert agent.locator(".relevo-author").inner_text() == "Ana"
    assert agent.locator(".relevo-text").inner_text() == hostile
    assert page.locator(".relevo-log img").count() == 0
    # Her first message makes the joined line old news: a quiet reminder now, not read out again (the
    # log says who joined and names each of her messages). The name is still text, never markup.
    page.wait_for_function("() => document.querySelector('.relevo-status').textContent === 'Hablando con Ana <b>'")
    assert status.is_visible() and "relevo-status-quiet" in str(status.get_attribute("class"))
    assert status.get_attribute("aria-hidden") == "true" and status.locator("b").count() == 0
    quiet = status.bounding_box()
    assert quiet is not None and quiet["height"] <= 24, quiet

    # Addresses an agent gives are links a phone can tap; nothing else in the text becomes markup.
    linked = ("Sigue tu paquete: https://shop.example/track/ES123456. O escribe a soporte@shop.example, "
              "<a href=javascript:alert(1)>aquí</a> javascript:alert(2)")
    publish(Outbound("conv", key, "web", "1-2", linked, sender="agent", author="Ana"))
    last = agent.nth(1)
    last.wait_for()
    assert last.locator(".relevo-text").inner_text() == linked
    links = last.locator("a")
    assert links.evaluate_all("as => as.map(a => [a.getAttribute('href'), a.textContent, a.rel])") == [
        ["https://shop.example/track/ES123456", "https://shop.example/track/ES123456", "noopener noreferrer nofollow"],
        ["mailto:soporte@shop.example", "soporte@shop.example", "noopener noreferrer nofollow"],
    ]

    publish(StatusUpdate("conv", key, "web", "bot"))
    status.wait_for(state="hidden")
    assert page.problems == []


def test_back_with_an_agent_who_has_written_the_line_is_the_quiet_one(page: Any, relevo_url: str, publish: Any) -> None:
    open_chat(page, relevo_url, "en")
    key = session_key(page, relevo_url)
    status = page.locator(".relevo-status")
    publish(StatusUpdate("conv", key, "web", "assigned", agent="Ana"))
    page.get_by_text("Ana joined the conversation.").wait_for()
    assert "relevo-status-quiet" not in str(status.get_attribute("class"))

    # A reload while Ana has the conversation: the history holds her message, and the status that comes
    # with the welcome names nobody (as the server's does). No "joined" news: who it is with, quietly.
    def assigned(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)
        welcomed = []

        def to_page(raw: str | bytes) -> None:
            frame = json.loads(raw)
            if frame.get("type") == "welcome":
                frame["history"].append({"id": "9999999999999-0", "from": "agent", "author": "Ana",
                                         "text": "Hi, I'm looking at your order.", "lang": "en"})
            elif frame.get("type") == "status" and not welcomed:  # the one that comes with the welcome
                welcomed.append(frame)
                frame = {"type": "status", "state": "assigned"}
            ws.send(json.dumps(frame))

        server.on_message(to_page)

    page.route_web_socket("**/ws", assigned)
    page.reload()
    page.get_by_text("Hi, I'm looking at your order.").wait_for()
    page.wait_for_function("() => document.querySelector('.relevo-status').textContent === 'Chatting with Ana'")
    assert "relevo-status-quiet" in str(status.get_attribute("class"))

    # Another agent takes over: that is news again, until they write.
    publish(StatusUpdate("conv", key, "web", "assigned", agent="Bea"))
    page.get_by_text("Bea joined the conversation.").wait_for()
    assert "relevo-status-quiet" not in str(status.get_attribute("class"))
    publish(Outbound("conv", key, "web", "9999999999999-1", "Hello, Bea here.", sender="agent", author="Bea"))
    page.wait_for_function("() => document.querySelector('.relevo-status').textContent === 'Chatting with Bea'")
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
    open_chat(page, relevo_url, "es")

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
    open_chat(page, relevo_url, "en")
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


def ask(page: Any, text: str) -> None:
    page.locator(".relevo-input").fill(text)
    page.locator(".relevo-input").press("Enter")


# Ordinary shop CSS: element rules, and a few element:pseudo ones that beat a lone class.
HOSTILE_CSS = """
body { text-transform: uppercase; letter-spacing: 3px; line-height: 3; font-family: Georgia, serif; }
section { padding: 60px 20px; margin: 10px; border: 5px solid red; }
h2, h2:first-child { font-size: 34px; text-transform: uppercase; margin: 30px 0; letter-spacing: 4px; }
h2::after { content: ""; display: block; width: 40px; border-bottom: 3px solid red; }
button, button:hover { padding: 20px; background: #eee; color: #000; width: 100%; border-radius: 0;
                       text-transform: uppercase; font: 24px monospace; }
p, div, span { margin: 12px; padding: 8px; line-height: 3; box-sizing: content-box; }
textarea, textarea:focus { height: 200px; font-family: monospace; border: 4px solid red; }
form { padding: 30px; }
"""

LOOKS = """() => {
  const props = ["padding", "margin", "border", "font", "text-transform", "letter-spacing", "line-height",
                 "box-sizing", "width", "height", "background-color", "color"];
  const look = {};
  for (const sel of [".relevo-root", ".relevo-panel", ".relevo-header", ".relevo-title", ".relevo-close",
                     ".relevo-log", ".relevo-from-bot", ".relevo-from-bot .relevo-text", ".relevo-form",
                     ".relevo-input", ".relevo-send"]) {
    const node = document.querySelector(sel), style = getComputedStyle(node);
    look[sel] = Object.fromEntries(props.map(p => [p, style.getPropertyValue(p)]));
    look[sel].box = [node.offsetWidth, node.offsetHeight];
  }
  look.titleAfter = getComputedStyle(document.querySelector(".relevo-title"), "::after").content;
  return look;
}"""


def test_the_page_css_does_not_leak_into_the_widget(page: Any, relevo_url: str) -> None:
    # The demo page's CSP allows no inline style: this test's own context lets the hostile sheet in.
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 800}, bypass_csp=True)
    shop = context.new_page()
    shop.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    shop.on("pageerror", lambda exc: errors.append(str(exc)))
    open_chat(shop, relevo_url, "en")
    own = shop.evaluate(LOOKS)
    shop.get_by_role("button", name="Close chat").click()

    shop.reload()
    # Before the panel opens, and after the widget's sheet, so the page wins every tie.
    shop.add_style_tag(content=HOSTILE_CSS)
    assert shop.locator("main p").first.evaluate("n => getComputedStyle(n).paddingTop") == "8px"  # it applies
    shop.get_by_role("button", name="Chat with us").click()
    bot_messages(shop).first.wait_for()
    assert shop.evaluate("() => getComputedStyle(document.querySelector('.relevo-panel')).padding") == "0px"
    title = shop.locator(".relevo-title")
    assert title.evaluate("n => getComputedStyle(n).textTransform") == "none"
    assert title.evaluate("n => getComputedStyle(n).fontSize") == "16px"
    assert shop.evaluate(LOOKS) == own
    assert errors == []
    context.close()  # (on a failure, the module's browser closes it)


def test_unread_badge_while_the_panel_is_closed(page: Any, relevo_url: str, publish: Any) -> None:
    open_chat(page, relevo_url, "es")
    key = session_key(page, relevo_url)
    page.get_by_role("button", name="Cerrar chat").click()
    launcher = page.locator(".relevo-launcher")
    badge = page.locator(".relevo-badge")
    assert badge.is_hidden()

    publish(Outbound("conv", key, "web", "1-1", "Hola, soy Ana", sender="agent", author="Ana"))
    badge.wait_for()
    assert badge.inner_text() == "1"
    assert launcher.get_attribute("aria-label") == "Chatea con nosotros (1 mensaje nuevo)"
    publish(Outbound("conv", key, "web", "1-2", "¿Sigues ahí?", sender="agent", author="Ana"))
    page.wait_for_function("() => document.querySelector('.relevo-badge').textContent === '2'")
    assert launcher.get_attribute("aria-label") == "Chatea con nosotros (2 mensajes nuevos)"

    launcher.click()
    assert badge.is_hidden()
    assert launcher.get_attribute("aria-label") == "Chatea con nosotros"
    page.get_by_role("button", name="Cerrar chat").click()

    # Reloaded with the panel closed: the history replayed on connecting is not news.
    with page.expect_websocket() as socket:
        page.reload()
    socket.value.wait_for_event("framereceived", predicate=lambda f: '"welcome"' in str(f))
    page.wait_for_timeout(300)
    assert badge.is_hidden()
    publish(Outbound("conv", key, "web", "1-3", "Te escribo por aquí", sender="agent", author="Ana"))
    badge.wait_for()
    assert badge.inner_text() == "1"
    assert page.problems == []


def test_only_the_newest_message_keeps_its_buttons(page: Any, relevo_url: str) -> None:
    open_chat(page, relevo_url, "es")
    ask(page, "¿Cuánto tarda el envío?")
    answer = bot_messages(page).nth(1)
    answer.wait_for()
    choices = answer.locator(".relevo-choice")
    assert choices.count() > 0 and choices.first.is_enabled()

    page.reload()  # still the newest message: still usable
    bot_messages(page).nth(1).locator(".relevo-choice").first.wait_for()
    assert bot_messages(page).nth(1).locator(".relevo-choice").first.is_enabled()

    ask(page, "gracias")  # a newer message, the customer's own
    page.wait_for_function(
        "() => [...document.querySelectorAll('.relevo-log .relevo-choice')].every(b => b.disabled)"
    )
    bot_messages(page).nth(2).wait_for()
    page.reload()
    bot_messages(page).nth(2).wait_for()
    stale = page.locator(".relevo-log > :not(:last-child) .relevo-choice:enabled")
    assert stale.count() == 0
    assert page.locator(".relevo-log .relevo-choice").count() >= choices.count()
    assert page.problems == []


def test_the_closed_banner_goes_when_the_bot_talks_again(page: Any, relevo_url: str) -> None:
    page.set_viewport_size({"width": 360, "height": 420})  # a short log, so the banner can hide its end
    open_chat(page, relevo_url, "es")
    ask(page, "¿Cuánto tarda el envío?")
    bot_messages(page).nth(1).wait_for()
    ask(page, "adiós")
    status = page.locator(".relevo-status")
    page.get_by_text("Esta conversación está cerrada.").wait_for()
    gap = page.locator(".relevo-log").evaluate("log => log.scrollHeight - log.scrollTop - log.clientHeight")
    assert gap <= 1, "the banner pushed the newest message out of view"

    ask(page, "¿Hacéis envíos a Portugal?")
    status.wait_for(state="hidden")
    bot_messages(page).nth(3).wait_for()

    # A reload shows the conversation before the goodbye, then a line where the new one starts.
    page.reload()
    divider = page.locator(".relevo-log .relevo-divider")
    divider.wait_for()
    assert divider.inner_text() == "Nueva conversación" and divider.get_attribute("role") == "separator"
    before = divider.evaluate("d => [...d.parentNode.children].slice(0, [...d.parentNode.children].indexOf(d))"
                              ".map(n => n.classList.contains('relevo-earlier'))")
    assert before and all(before)
    after = page.locator(".relevo-divider ~ .relevo-msg")
    assert after.count() >= 2 and page.locator(".relevo-divider ~ .relevo-earlier").count() == 0
    assert "Portugal" in after.first.inner_text()
    assert page.problems == []


def test_an_expired_session_is_explained(page: Any, relevo_url: str) -> None:
    open_chat(page, relevo_url, "en")
    host = relevo_url.split("://", 1)[1]
    page.evaluate(f"() => localStorage.setItem('relevo:{host}:session', 'forged.1000000000.bad')")
    with page.expect_websocket() as socket:
        page.reload()
    # bad_session, welcome, then the new conversation's "status: bot": the notice outlives it.
    socket.value.wait_for_event("framereceived", predicate=lambda f: '"status"' in str(f))
    page.wait_for_timeout(300)
    status = page.locator(".relevo-status")
    assert status.inner_text() == "Your previous session expired; a new conversation started."
    assert status.is_visible()

    ask(page, "How long does shipping take?")
    status.wait_for(state="hidden")
    assert page.problems == []


def test_keyboard_escape_focus_and_speaker_labels(page: Any, relevo_url: str) -> None:
    page.goto(relevo_url + "/?lang=es")
    launcher = page.locator(".relevo-launcher")
    launcher.focus()
    page.keyboard.press("Enter")
    bot_messages(page).first.wait_for()
    focused = "() => document.activeElement && document.activeElement.className"
    assert page.evaluate(focused) == "relevo-input"
    page.evaluate("""() => {  // what the announcer says, as it says it
      window.heard = [];
      const node = document.querySelector('.relevo-root > [aria-live]');
      new MutationObserver(() => node.textContent && heard.push(node.textContent))
        .observe(node, { childList: true, characterData: true, subtree: true });
    }""")
    page.keyboard.type("¿Cuánto tarda el envío?")
    page.keyboard.press("Enter")
    answer = bot_messages(page).nth(1)
    answer.wait_for()
    assert page.evaluate("() => heard") == ["El asistente está escribiendo"]

    answer.locator(".relevo-choice").first.focus()
    page.keyboard.press("Enter")
    assert page.evaluate(focused) == "relevo-input"  # not <body>: the row went dead
    bot_messages(page).nth(2).wait_for()

    speakers = page.locator(".relevo-log .relevo-msg > .relevo-sr").all_inner_texts()
    assert [s.strip() for s in speakers[:3]] == ["Asistente:", "Tú:", "Asistente:"]
    assert page.get_by_role("img", name="Entregado").count() == 2

    page.keyboard.press("Escape")
    assert page.locator(".relevo-panel").is_hidden()
    assert page.evaluate(focused) == "relevo-launcher"
    assert page.problems == []


INSIDE = "() => document.querySelector('.relevo-root').contains(document.activeElement)"
FOCUSED = "() => document.activeElement.className || document.activeElement.tagName"


def test_on_a_phone_the_full_screen_panel_is_modal_and_keeps_the_focus(page: Any, relevo_url: str) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    open_chat(page, relevo_url, "en")
    panel = page.locator(".relevo-panel")
    box = panel.bounding_box()
    assert box is not None and (box["width"], box["height"]) == (390, 844)  # the phone layout: it covers the page
    assert panel.get_attribute("aria-modal") == "true"

    page.locator(".relevo-send").focus()
    page.keyboard.press("Tab")  # not on to <body> and the page's links hidden under the panel
    assert page.evaluate(FOCUSED) == "relevo-close"
    for _ in range(8):  # round the panel's controls, never out of it
        page.keyboard.press("Tab")
        assert page.evaluate(INSIDE), page.evaluate(FOCUSED)
    page.locator(".relevo-close").focus()
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(FOCUSED) == "relevo-send"
    # The page under the panel is inert: a script's focus() cannot send the focus there.
    assert page.evaluate("() => ['HEADER', 'MAIN'].every(t => document.querySelector(t).inert)")
    page.evaluate("() => document.querySelector('.relevo-demo-header a').focus()")
    assert page.evaluate(INSIDE), page.evaluate(FOCUSED)
    # Something the page adds later (not inert) and focuses: the focus comes back to the text box.
    page.evaluate("""() => { const b = document.createElement('button'); b.id = 'late';
                             document.body.appendChild(b); b.focus(); }""")
    assert page.evaluate(FOCUSED) == "relevo-input"
    page.evaluate("() => document.getElementById('late').remove()")

    # Wider (a phone turned, a window resized): the panel sits in the corner, the page stays usable.
    page.set_viewport_size({"width": 1366, "height": 850})
    page.wait_for_function("() => !document.querySelector('.relevo-panel').hasAttribute('aria-modal')")
    assert page.evaluate("() => !document.querySelector('header').inert && !document.querySelector('main').inert")
    page.locator(".relevo-send").focus()
    page.keyboard.press("Tab")
    assert not page.evaluate(INSIDE), page.evaluate(FOCUSED)

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => document.querySelector('.relevo-panel').getAttribute('aria-modal') === 'true'")
    page.locator(".relevo-input").focus()
    page.keyboard.press("Escape")  # closed: released, focus on the launcher
    assert panel.get_attribute("aria-modal") is None
    assert page.evaluate("() => !document.querySelector('header').inert && !document.querySelector('main').inert")
    assert page.evaluate(FOCUSED) == "relevo-launcher"
    page.keyboard.press("Tab")
    assert not page.evaluate(INSIDE), page.evaluate(FOCUSED)
    # What the page made inert itself stays inert when the panel opens and closes again.
    page.evaluate("() => { document.querySelector('main').inert = true; }")
    page.locator(".relevo-launcher").click()
    page.wait_for_function("() => document.querySelector('.relevo-panel').getAttribute('aria-modal') === 'true'")
    page.keyboard.press("Escape")
    assert page.evaluate("() => !document.querySelector('header').inert && document.querySelector('main').inert")
    assert page.problems == []


def test_on_a_desktop_the_corner_panel_is_not_modal(page: Any, relevo_url: str) -> None:
    page.set_viewport_size({"width": 1366, "height": 850})
    open_chat(page, relevo_url, "es")
    assert page.locator(".relevo-panel").get_attribute("aria-modal") is None
    page.locator(".relevo-send").focus()
    page.keyboard.press("Tab")
    assert not page.evaluate(INSIDE), page.evaluate(FOCUSED)
    # The page's own links can be reached and keep the focus.
    page.evaluate("() => document.querySelector('.relevo-demo-header a').focus()")
    assert page.evaluate("() => document.activeElement.tagName") == "A"
    assert page.problems == []


def test_the_widget_speaks_the_conversation_language_not_only_the_page_one(
    page: Any, relevo_url: str, publish: Any
) -> None:
    open_chat(page, relevo_url, "en")
    ask(page, "hola, ¿cuánto tarda el envío a Canarias?")
    bot_messages(page).nth(1).wait_for()
    page.locator(".relevo-input[placeholder='Escribe un mensaje…']").wait_for()
    assert page.locator(".relevo-send").inner_text() == "Enviar"
    publish(StatusUpdate("conv", session_key(page, relevo_url), "web", "queued", position=2, eta_s=240))
    page.get_by_text("Eres el número 2 en la cola. Espera estimada: 4 min.").wait_for()
    page.reload()  # the history says it again
    page.locator(".relevo-input[placeholder='Escribe un mensaje…']").wait_for()
    assert page.problems == []


def customer_texts(page: Any) -> list[str]:
    return [str(t) for t in page.locator(".relevo-log .relevo-from-customer .relevo-text").all_inner_texts()]


def log_texts(page: Any) -> list[str]:
    return [str(t) for t in page.locator(".relevo-log .relevo-msg .relevo-text").all_inner_texts()]


ALL_DELIVERED = """n => document.querySelectorAll('.relevo-log .relevo-from-customer').length === n
                     && !document.querySelector('.relevo-log .relevo-pending')"""


@pytest.mark.parametrize(
    "relevo_env", [{"RELEVO_SERVER_MESSAGES_PER_SECOND": "3", "RELEVO_SERVER_MESSAGE_BURST": "3"}]
)
def test_a_flood_is_stored_in_the_order_typed(page: Any, relevo_url: str) -> None:
    refused: list[str] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda f: refused.append(str(f)) if "rate_limited" in str(f) else None
    ))  # fmt: skip
    open_chat(page, relevo_url, "es")
    typed = [f"hola {i}" for i in range(25)]
    for text in typed:
        ask(page, text)
    page.wait_for_function(ALL_DELIVERED, arg=len(typed), timeout=90_000)
    assert refused, "the server never refused one: the test did not flood it"
    assert customer_texts(page) == typed

    # What the server stored (the agent's transcript reads the same log) is in the order typed too.
    page.reload()
    page.wait_for_function(ALL_DELIVERED, arg=len(typed))
    assert customer_texts(page) == typed
    assert page.problems == []


def relevo_agent(redis_url: str, tmp_path: Path, *args: str, stdin: str = "") -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_")}
    env["REDIS_URL"] = redis_url
    done = subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(CONFIG_DIR), "agent", "--data", str(tmp_path / "data"), *args],
        input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=50,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def agent_api(url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=20) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def test_a_message_typed_while_the_network_stalls_shows_where_it_is_stored(
    page: Any, relevo_url: str, redis_url: str, tmp_path: Path
) -> None:
    relevo_agent(redis_url, tmp_path, "add", "ana", "--departments", "general", "--tier", "1",
                 "--display-name", "Ana", "--password-stdin", stdin="s3cret pass\n")  # fmt: skip
    token = relevo_agent(redis_url, tmp_path, "token", "ana").strip()

    # The network stalls without the socket closing (a train tunnel): what either side sends waits.
    stalled = {"on": False}
    held_up: list[Any] = []
    held_down: list[Any] = []
    routes: list[Any] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        routes.append((ws, server))
        ws.on_message(lambda f: held_up.append(f) if stalled["on"] else server.send(f))
        server.on_message(lambda f: held_down.append(f) if stalled["on"] else ws.send(f))

    page.route_web_socket("**/ws", route)
    open_chat(page, relevo_url, "es")
    ask(page, "quiero hablar con una persona")
    page.get_by_text("en la cola", exact=False).wait_for()
    conversation = agent_api(relevo_url, token, "/api/claim", {})["conversation_id"]
    reply = f"/api/conversations/{conversation}/reply"
    agent_api(relevo_url, token, reply, {"text": "uno"})
    page.locator(".relevo-from-agent .relevo-text", has_text="uno").wait_for()

    stalled["on"] = True
    for text in ("dos", "tres", "cuatro"):  # stored now; they reach the customer when the network is back
        agent_api(relevo_url, token, reply, {"text": text})
    ask(page, "escrito sin conexión")  # stored once the network is back: after cuatro
    page.locator(".relevo-log .relevo-pending").wait_for()
    for _ in range(100):
        if len(held_down) >= 3 and held_up:
            break
        page.wait_for_timeout(100)
    assert len(held_down) >= 3 and held_up
    stalled["on"] = False
    ws, server = routes[-1]
    for frame in held_down:
        ws.send(frame)
    for frame in held_up:
        server.send(frame)
    page.wait_for_function(ALL_DELIVERED, arg=2)
    page.locator(".relevo-from-agent .relevo-text", has_text="cuatro").wait_for()
    live = log_texts(page)
    assert live.index("cuatro") < live.index("escrito sin conexión"), live

    page.reload()
    page.wait_for_function(ALL_DELIVERED, arg=2)
    assert log_texts(page) == live
    assert page.problems == []


def test_going_offline_is_said_and_what_was_typed_goes_out_when_back(page: Any, relevo_url: str) -> None:
    open_chat(page, relevo_url, "en")
    ask(page, "I want to talk to a person")
    status = page.locator(".relevo-status")
    page.wait_for_function("() => /in the queue/.test(document.querySelector('.relevo-status').textContent)")
    queue_line = status.inner_text()
    page.context.set_offline(True)
    # Said at once, not a clock on the message and an old banner.
    page.get_by_text("No connection. Your messages will be sent when you are back online.").wait_for()
    ask(page, "still there?")
    page.locator(".relevo-log .relevo-pending").wait_for()
    page.wait_for_timeout(1500)  # reconnection attempts meanwhile keep saying why
    assert status.inner_text() == "No connection. Your messages will be sent when you are back online."
    page.context.set_offline(False)
    page.wait_for_function(ALL_DELIVERED, arg=2)
    # The queue line comes back once connected (here from the welcome's status; after a notice, by itself).
    # Its wait may have moved on meanwhile (out of hours it counts down to the opening, minute by minute):
    # the same place in the queue is what must be back.
    page.wait_for_function("p => document.querySelector('.relevo-status').textContent.startsWith(p)",
                           arg=queue_line.split(".")[0])
    assert log_texts(page).count("still there?") == 1
    assert page.problems == []


@pytest.mark.parametrize("relevo_env", [{"RELEVO_SERVER_MESSAGE_BURST": "1",
                                         "RELEVO_SERVER_MESSAGES_PER_SECOND": "0.2"}])
def test_the_queue_line_comes_back_after_a_slow_down_notice(page: Any, relevo_url: str, publish: Any) -> None:
    open_chat(page, relevo_url, "en")
    key = session_key(page, relevo_url)
    publish(StatusUpdate("conv", key, "web", "queued", position=2, eta_s=240))
    line = "You are number 2 in the queue. Estimated wait: 4 min."
    page.get_by_text(line).wait_for()
    ask(page, "hello?")
    ask(page, "anyone?")  # over the rate: "slow down" for a while, then sent
    page.get_by_text("Too many messages; sending again shortly.").wait_for()
    # The notice goes; the customer is still told where they stand.
    page.get_by_text(line).wait_for(timeout=20_000)
    page.wait_for_function(ALL_DELIVERED, arg=2, timeout=20_000)
    assert page.problems == []


def test_a_queue_position_not_known_is_not_made_up(page: Any, relevo_url: str, publish: Any) -> None:
    open_chat(page, relevo_url, "es")
    key = session_key(page, relevo_url)
    status = page.locator(".relevo-status")

    publish(StatusUpdate("conv", key, "web", "queued", position=None, eta_s=None))
    page.get_by_text("Estás en la cola. Espera estimada: en cuanto alguien quede libre.").wait_for()
    publish(StatusUpdate("conv", key, "web", "queued", position=None, eta_s=240))
    page.get_by_text("Estás en la cola. Espera estimada: 4 min.").wait_for()
    publish(StatusUpdate("conv", key, "web", "queued", position=2, eta_s=None))
    page.get_by_text("Eres el número 2 en la cola. Espera estimada: en cuanto alguien quede libre.").wait_for()

    # As after a reload while queued: the status that comes with the welcome has no position.
    def no_position(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(lambda f: ws.send(
            json.dumps({"type": "status", "state": "queued", "position": None, "eta_s": None})
            if '"status"' in str(f) else f
        ))  # fmt: skip

    page.route_web_socket("**/ws", no_position)
    page.reload()
    page.get_by_text("Estás en la cola. Espera estimada: en cuanto alguien quede libre.").wait_for()
    assert "número" not in status.inner_text()
    assert page.problems == []


# -- half an emoji (a lone UTF-16 surrogate) -------------------------------------------------------------

HALF_EMOJI = "mi pedido \ufffd"  # what the customer and the server see of "mi pedido \ud83d"
NO_TO_WELL_FORMED = "delete String.prototype.toWellFormed;"  # a browser before 2023


def sent_frames(page: Any) -> list[str]:
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(str(f))))
    return sent


@pytest.mark.parametrize("native", [True, False], ids=["toWellFormed", "fallback"])
def test_half_an_emoji_is_sent_as_a_replacement_character_and_the_next_message_follows(
    page: Any, relevo_url: str, native: bool
) -> None:
    if not native:
        page.add_init_script(NO_TO_WELL_FORMED)
    sent = sent_frames(page)
    open_chat(page, relevo_url, "es")
    # As a paste cut in the middle of an emoji leaves it; an emoji kept whole stays one.
    page.locator(".relevo-input").evaluate("box => { box.value = 'mi pedido \\ud83d'; }")
    page.locator(".relevo-input").press("Enter")
    ask(page, "¿Cuánto tarda el envío?")
    page.wait_for_function(ALL_DELIVERED, arg=2)
    assert customer_texts(page) == [HALF_EMOJI, "¿Cuánto tarda el envío?"]
    bot_messages(page).nth(2).wait_for()  # both answered
    messages = [json.loads(f) for f in sent if '"message"' in f]
    assert [m["text"] for m in messages] == [HALF_EMOJI, "¿Cuánto tarda el envío?"]

    page.reload()
    page.wait_for_function(ALL_DELIVERED, arg=2)
    assert customer_texts(page) == [HALF_EMOJI, "¿Cuánto tarda el envío?"]
    assert page.problems == []


def test_a_message_with_half_an_emoji_kept_from_before_goes_out_on_load(page: Any, relevo_url: str) -> None:
    """A widget jammed by such a message (the pending list survives reloads) comes unstuck."""
    page.add_init_script(NO_TO_WELL_FORMED)
    host = relevo_url.split("://", 1)[1]
    page.goto(relevo_url + "/?lang=es")
    page.evaluate(
        "key => localStorage.setItem(key, JSON.stringify(["
        "{id: 'old-1', type: 'message', text: 'mi pedido \\ud83d'},"
        "{id: 'old-2', type: 'message', text: '¿Cuánto tarda el envío?'}]))",
        f"relevo:{host}:pending",
    )
    page.reload()
    page.get_by_role("button", name="Chatea con nosotros").click()
    page.wait_for_function(ALL_DELIVERED, arg=2)
    assert customer_texts(page) == [HALF_EMOJI, "¿Cuánto tarda el envío?"]
    assert page.evaluate("key => localStorage.getItem(key)", f"relevo:{host}:pending") is None
    assert page.problems == []


def test_an_error_without_an_id_does_not_hold_up_the_messages_after_it(page: Any, relevo_url: str) -> None:
    """As a server that cannot read a frame answers: `error` with no `id`. The message in flight is the one
    refused; it is marked so, the next goes on, and a tap sends it again."""
    refuse = {"next": False}

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        server.on_message(ws.send)

        def to_server(frame: str | bytes) -> None:
            if refuse["next"] and '"type":"message"' in str(frame):
                refuse["next"] = False
                ws.send(json.dumps({"type": "error", "code": "bad_json", "message": "frames must be JSON objects"}))
                return
            server.send(frame)

        ws.on_message(to_server)

    page.route_web_socket("**/ws", route)
    open_chat(page, relevo_url, "es")
    refuse["next"] = True
    ask(page, "no llega")
    failed = page.locator(".relevo-log .relevo-failed")
    failed.wait_for()
    assert failed.locator(".relevo-tick").inner_text() == "!"
    ask(page, "¿Cuánto tarda el envío?")
    delivered = page.locator(".relevo-log .relevo-from-customer:not(.relevo-pending)")
    delivered.first.wait_for()
    assert delivered.locator(".relevo-text").all_inner_texts() == ["¿Cuánto tarda el envío?"]
    bot_messages(page).nth(1).wait_for()

    failed.click()  # sent again, after everything else
    page.wait_for_function(ALL_DELIVERED, arg=2)
    assert customer_texts(page)[-1] == "no llega"
    assert page.problems == []


def test_data_color_takes_any_css_colour_and_refuses_the_rest_whole(page: Any, relevo_url: str) -> None:
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)

    def accent(color: str) -> str:
        host = f'<!doctype html><title>shop</title><script src="/widget.js" data-color="{color}"></script>'
        page.route(f"{relevo_url}/colour-test", lambda route: route.fulfill(body=host, content_type="text/html"))
        page.goto(f"{relevo_url}/colour-test")
        page.locator(".relevo-root").wait_for(state="attached")
        page.unroute(f"{relevo_url}/colour-test")
        return str(page.evaluate(
            "() => getComputedStyle(document.querySelector('.relevo-root')).getPropertyValue('--relevo-color')"
        )).strip()  # fmt: skip

    default = accent("")
    assert accent("teal") == "teal" and accent("rgb(10, 122, 92)") == "rgb(10, 122, 92)"
    assert accent("#0a7a5c") == "#0a7a5c"
    assert accent("red; background: url(x)") == default
    assert any("data-color" in w and "not a CSS colour" in w for w in warnings), warnings
    # The other two attributes: a value the widget does not know is said, with what is used instead.
    host = '<!doctype html><title>shop</title><script src="/widget.js" data-lang="fr" data-position="middle"></script>'
    page.route(f"{relevo_url}/attrs", lambda route: route.fulfill(body=host, content_type="text/html"))
    page.goto(f"{relevo_url}/attrs")
    page.get_by_role("button", name="Chatea con nosotros").wait_for()  # the browser's language (es-ES)
    assert "Relevo widget: data-lang \"fr\" is not one of en, es; using the browser's language (es)" in warnings
    assert "Relevo widget: data-position \"middle\" is not left or right; using right" in warnings
    assert page.problems == []


@pytest.fixture
def shop_page(relevo_url: str) -> Iterator[str]:
    """A shop's page with the widget, served from another origin of 127.0.0.1 (its own port), which
    nobody added to server.allowed_origins."""
    body = f'<!doctype html><title>shop</title><script src="{relevo_url}/widget.js" data-lang="en"></script>'.encode()

    class Shop(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the name http.server calls
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the signature http.server calls
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/shop"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_whose_origin_is_not_allowed_is_told_so_and_the_widget_stops_trying(page: Any, shop_page: str) -> None:
    # A browser cannot read the HTTP status of a refused WebSocket: without a word from the server the
    # widget would say "Reconnecting..." for ever and keep the customer's message pending.
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(shop_page)
    page.get_by_role("button", name="Chat with us").click()
    page.locator(".relevo-status").get_by_text("Chat is not available on this page").wait_for()
    assert page.locator(".relevo-input").is_disabled() and page.locator(".relevo-send").is_disabled()
    page.wait_for_timeout(3000)  # the first retry would come within 0.5 s, the third within 3 s
    assert len(sockets) == 1, sockets
    assert page.problems == []


def test_a_light_brand_colour_gets_dark_text_and_readable_buttons(page: Any, relevo_url: str) -> None:
    # WCAG contrast of two "rgb(r, g, b)" colours, as the widget computes it.
    contrast = """([a, b]) => {
        const lum = (s) => { const [r, g, b] = s.match(/[\\d.]+/g).slice(0, 3).map((v) => {
            v = v / 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const [x, y] = [lum(a), lum(b)];
        return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
    }"""

    def colours(color: str) -> dict[str, float]:
        host = ('<!doctype html><title>shop</title>'
                f'<script src="/widget.js" data-lang="en" data-color="{color}"></script>')
        page.route(f"{relevo_url}/brand", lambda route: route.fulfill(body=host, content_type="text/html"))
        page.goto(f"{relevo_url}/brand")
        page.evaluate("localStorage.clear()")  # the last colour's open panel and pending message
        page.reload()
        page.get_by_role("button", name="Chat with us").click()
        page.unroute(f"{relevo_url}/brand")
        # A page the browser fulfils itself may not open a socket to 127.0.0.1 (Chromium's local network
        # checks): the customer's bubble is the pending one, the bot's buttons a row as the widget draws it.
        page.locator(".relevo-input").fill("How much does shipping cost?")
        page.get_by_role("button", name="Send").click()
        page.locator(".relevo-from-customer").first.wait_for()
        page.evaluate("""() => {
            const row = document.createElement("div"); row.className = "relevo-buttons";
            const button = document.createElement("button"); button.className = "relevo-choice";
            button.textContent = "Yes"; row.appendChild(button);
            document.querySelector(".relevo-log").appendChild(row);
        }""")
        got = page.evaluate("""() => {
            const pair = (sel) => { const s = getComputedStyle(document.querySelector(sel));
                                    return [s.color, s.backgroundColor]; };
            return { header: pair(".relevo-header"), mine: pair(".relevo-from-customer"),
                     send: pair(".relevo-send"), button: pair(".relevo-buttons button") };
        }""")
        return {name: float(page.evaluate(contrast, pair)) for name, pair in got.items()}

    for light in ("#ffd54f", "pink", "rgb(135, 206, 250)"):
        assert min(colours(light).values()) >= 4.5, (light, colours(light))
    # The shipped accent keeps its white text and its own colour on the buttons.
    default = colours("#0a7a5c")
    assert min(default.values()) >= 4.5, default
    assert page.locator(".relevo-header").evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
    assert [p for p in page.problems if "LOCAL_NETWORK_ACCESS" not in p] == []


def test_a_store_that_cannot_take_a_message_is_said_and_it_goes_later(page: Any, relevo_url: str) -> None:
    """The server's answer while Redis is down: `unavailable` for the message, every time it is sent."""
    down = {"on": False}

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        server.on_message(ws.send)

        def to_server(frame: str | bytes) -> None:
            data = json.loads(frame)
            if down["on"] and data.get("type") == "message":
                ws.send(json.dumps({"type": "error", "code": "unavailable", "id": data["id"],
                                    "message": "the message was not stored; send it again"}))
                return
            server.send(frame)

        ws.on_message(to_server)

    page.route_web_socket("**/ws", route)
    open_chat(page, relevo_url, "en")
    down["on"] = True
    ask(page, "How long does shipping take?")
    said = "We cannot save your message right now; it will be sent as soon as we can."
    page.get_by_text(said).wait_for()
    page.locator(".relevo-log .relevo-pending").wait_for()
    down["on"] = False  # the store is back: the next try is stored, and the line goes
    page.wait_for_function(ALL_DELIVERED, arg=1)
    page.get_by_text(said).wait_for(state="detached")
    bot_messages(page).nth(1).wait_for()
    assert page.problems == []
