"""The agent console and supervisor view in Debian's Chromium, against a real server, Redis and widget."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
import yaml
from aiohttp import web

from bot import unanswered
from bot.runtime import Runtime
from bot.settings import Settings, load_settings
from bot.web import create_app
from handoff import keys
from handoff.agents import Agent
from handoff.presence import now_ms
from handoff.service import HandoffService
from tests.conftest import CONFIG_DIR

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
WAIT_MS = 20_000
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 20.0
DESKTOP = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}
PHONE = {"width": 360, "height": 740}
TALL_PHONE = {"width": 390, "height": 844}
SECRET = "console-browser-test-secret-0123456789"
PASSWORD = "correct horse battery"
ASK_PERSON = "quiero hablar con una persona"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
# Set RELEVO_SCREENSHOTS=/some/dir to keep screenshots of the pages the tests go through.
SHOTS = os.environ.get("RELEVO_SCREENSHOTS", "")


class Server:
    """The widget app with the agent API mounted, run on its own event loop in a thread, so the sync
    Playwright API can drive browsers from the test's thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ""
        self.service: HandoffService | None = None
        self.runtime: Runtime | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="relevo-test-server", daemon=True)

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise AssertionError("the test server did not start")
        if self._error is not None:
            raise AssertionError(f"the test server failed to start: {self._error!r}") from self._error
        return self.url

    def stop(self) -> None:
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(START_TIMEOUT_S)

    def call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(CALL_TIMEOUT_S)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runtime = self.runtime = await Runtime.start(self.settings, background=False)
        service = self.service = runtime.handoff
        app = create_app(runtime)
        runner = web.AppRunner(app)
        try:
            await service.start()
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
            await self._subscribed(runtime)
            self._ready.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await service.close()
            await runtime.close()

    async def _subscribed(self, runtime: Runtime) -> None:
        """The outbox pump, the notifier and the console hub listen before a browser arrives."""
        for _ in range(500):
            counts = await runtime.redis.pubsub_numsub(keys.out_channel("web"), keys.EVENTS)
            if counts[0][1] >= 1 and counts[1][1] >= 2:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the outbox pump and the console hub never subscribed")

    def add_agent(self, name: str, departments: tuple[str, ...], role: Any = "agent", **kw: Any) -> None:
        assert self.service is not None
        service = self.service

        async def add() -> None:
            agent = Agent(
                name, departments, role=role, display_name=kw.pop("display_name", name.capitalize()), **kw
            )
            await service.directory.add(agent, PASSWORD)
            service.forget_agents()

        self.call(add())


def serving(redis_url: str, tmp_path: Path, **server: Any) -> Iterator[Server]:
    """The console tests' server, started and stopped around the test; `server`: more server settings."""
    settings = load_settings(
        CONFIG_DIR, env={}, server={"session_secret": SECRET, **server},
        store={"redis_url": redis_url, "data_dir": str(tmp_path / "data")},
    )  # fmt: skip
    served = Server(settings)
    try:
        served.start()
        yield served
    finally:
        served.stop()


def flush(redis_url: str) -> None:
    """A clean Redis for the test, with a plain client: the module's Playwright keeps an event loop
    running, so the async `redis` fixture cannot run next to it."""
    with redis_sync.Redis.from_url(redis_url) as client:
        client.flushdb()


@pytest.fixture
def server(redis_url: str, tmp_path: Path) -> Iterator[Server]:
    flush(redis_url)
    yield from serving(redis_url, tmp_path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium per module (launching it costs more than most tests); each page has its own context."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


PageFactory = Callable[..., Any]


@pytest.fixture
def open_page(browser: Any) -> Iterator[PageFactory]:
    """A page in a browser context of its own (its own cookies: one person each), errors collected."""
    contexts: list[Any] = []

    def make(viewport: dict[str, int] = DESKTOP, locale: str = "en-US") -> Any:
        context = browser.new_context(viewport=viewport, locale=locale)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.problems = problems
        return page

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def sign_in_here(page: Any, name: str, password: str = PASSWORD) -> None:
    """Fill in the login page the browser is on and submit it."""
    page.locator("#login-name").fill(name)
    page.locator("#login-password").fill(password)
    page.locator("#login-submit").click()


def log_in(page: Any, url: str, name: str, where: str = "/agent", live: str = "Live") -> None:
    """Sign in from the login page `where` sends to; `live`: the connection label in the page's language."""
    page.goto(f"{url}{where}")
    page.wait_for_url(re.compile(r"/login\?next="))
    sign_in_here(page, name)
    page.wait_for_url(re.compile(re.escape(where) + r"$"))
    page.locator("#conn", has_text=live).wait_for()


def open_widget(page: Any, url: str) -> None:
    page.goto(url + "/?lang=es")
    page.get_by_role("button", name="Chatea con nosotros").click()
    page.locator(".relevo-log .relevo-from-bot").first.wait_for()


def customer_says(page: Any, text: str) -> None:
    page.locator(".relevo-input").fill(text)
    page.locator(".relevo-input").press("Enter")
    page.locator(
        ".relevo-log .relevo-from-customer:not(.relevo-pending) .relevo-text", has_text=text
    ).last.wait_for()


def customer_asking_for_a_person(server: Server, open_page: PageFactory) -> Any:
    """A widget customer (phone, Spanish) who has asked for a person: queued."""
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, ASK_PERSON)
    return customer


def claim_next(agent: Any) -> str:
    """The agent's console claims the next conversation once one is queued; its id."""
    agent.locator("#queue-list .item-button").first.wait_for()
    agent.locator("#claim-next").click()
    agent.locator("#reply-text:not([disabled])").wait_for()
    return str(agent.evaluate("() => new URLSearchParams(location.search).get('c')"))


def accept_confirms(page: Any) -> list[str]:
    """Say OK to the console's confirm() questions (Resolve, Return to the bot); returns what was asked."""
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    return asked


def rate_four_with_a_comment(customer: Any) -> str:
    """The Spanish widget customer presses ★ 4 under the rating question and writes a comment; the comment."""
    four = customer.locator(".relevo-log .relevo-choice", has_text=re.compile(r"^\s*★ 4\s*$")).last
    four.wait_for()
    four.click()
    customer.locator(".relevo-log .relevo-text", has_text="¡Gracias por tu valoración!").wait_for()
    comment = "<b>muy rápida</b>, de diez"
    customer_says(customer, comment)
    customer.locator(".relevo-log .relevo-text", has_text="hemos anotado tu comentario").wait_for()
    return comment


def record_flashes(page: Any) -> None:
    """Keep every text the alert line shows: a later one replaces it, and it hides itself."""
    page.evaluate(
        """() => {
          window.__flashes = [];
          const box = document.getElementById('flash');
          new MutationObserver(() => { if (box.textContent) { window.__flashes.push(box.textContent); } })
            .observe(box, { childList: true, characterData: true, subtree: true });
        }"""
    )


def flashes(page: Any) -> list[str]:
    return list(page.evaluate("() => window.__flashes || []"))


def without_refusals(problems: list[str]) -> list[str]:
    """The problems of a page, less Chromium's own log line for a refused request (403) a test provokes."""
    return [p for p in problems if "Failed to load resource" not in p]


def assert_inert(page: Any) -> None:
    assert page.evaluate("() => typeof window.__pwned") == "undefined"
    assert page.evaluate("() => document.querySelectorAll('img').length") == 0
    scripts = page.evaluate("() => Array.from(document.scripts).map(s => s.getAttribute('src') || 'inline')")
    assert "inline" not in scripts, scripts


def header(url: str, name: str) -> tuple[int, dict[str, str], str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url + name, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, ""
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.headers.get("Location", "")


# -- tests -------------------------------------------------------------------------------------------


def test_pages_send_security_headers_and_redirect_to_login(server: Server) -> None:
    for path in ("/login", "/console/agent.js", "/console/console.css"):
        status, headers, _ = header(server.url, path)
        assert status == 200, path
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
    for path in ("/agent", "/supervisor"):
        status, headers, location = header(server.url, path)
        assert status == 302 and location == f"/login?next={path}"


def test_wrong_password_then_lockout(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    page = open_page()
    page.goto(server.url + "/login?next=/agent")
    page.locator("#login-name").fill("ana")
    for _ in range(5):
        page.locator("#login-password").fill("wrong password")
        page.locator("#login-submit").click()
        page.locator("#login-error", has_text="Wrong name or password.").wait_for()
        page.locator("#login-submit:not([disabled])").wait_for()
        shot(page, "login-error")
    # Locked out now, even with the right password.
    page.locator("#login-password").fill(PASSWORD)
    page.locator("#login-submit").click()
    page.locator("#login-error", has_text="Too many attempts").wait_for()
    # How long, and who can lift it sooner (the server's Retry-After: 15 minutes).
    assert page.locator("#login-error").inner_text() == (
        "Too many attempts. Try again in 15 minutes, or ask an administrator to unlock your name.")
    assert page.url.endswith("/login?next=/agent")


def test_login_layout_presence_and_logout(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",), capacity=2)
    page = open_page()
    page.goto(server.url + "/agent")
    page.wait_for_url(re.compile(r"/login\?next="))
    assert page.locator("h2").inner_text() == "Sign in"
    sign_in_here(page, "ana")
    page.wait_for_url(re.compile(r"/agent$"))
    page.locator("#conn", has_text="Live").wait_for()
    assert page.locator("#me-name").inner_text() == "Ana"
    assert page.locator("#capacity").inner_text() == "Load 0 of 2"
    assert page.locator("#to-supervisor").is_hidden()
    page.locator("#queue-empty").wait_for()

    # 1280×800: queue, conversation and context side by side, nothing wider than the window.
    left = page.locator(".col-left").bounding_box()
    centre = page.locator(".col-centre").bounding_box()
    right = page.locator(".col-right").bounding_box()
    assert left and centre and right
    assert left["x"] + left["width"] <= centre["x"] and centre["x"] + centre["width"] <= right["x"]
    assert right["x"] + right["width"] <= DESKTOP["width"]
    assert page.evaluate("() => document.documentElement.scrollWidth") <= DESKTOP["width"]
    shot(page, "agent-empty-1280")
    page.set_viewport_size(TABLET)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= TABLET["width"]
    assert page.locator("#logout").bounding_box()["x"] + 10 <= TABLET["width"]
    shot(page, "agent-empty-tablet")
    page.set_viewport_size(DESKTOP)

    page.locator("#presence").select_option("away")
    page.wait_for_function(
        "async () => (await (await fetch('/api/me')).json()).presence === 'away'", polling=200
    )
    page.locator("#logout").click()
    page.wait_for_url(re.compile(r"/login\?bye$"))
    page.locator("#login-error.login-info", has_text="You are signed out.").wait_for()
    page.goto(server.url + "/agent")
    page.wait_for_url(re.compile(r"/login\?next="))
    assert page.problems == []


def test_spanish_labels(server: Server, open_page: PageFactory) -> None:
    server.add_agent("sara", ("general",), role="supervisor")
    page = open_page(locale="es-ES")
    page.goto(server.url + "/login")
    assert page.locator("h2").inner_text() == "Iniciar sesión"
    sign_in_here(page, "sara")
    page.wait_for_url(re.compile(r"/agent$"))
    page.locator("#conn", has_text="En directo").wait_for()
    assert page.locator("#claim-next").inner_text() == "Atender siguiente"
    assert page.locator("#to-supervisor").is_visible()
    page.locator("#to-supervisor").click()
    page.wait_for_url(re.compile(r"/supervisor$"))
    page.locator("#records-title", has_text="Registro de derivaciones").wait_for()
    page.locator("#queues-empty", has_text="No espera nadie.").wait_for()
    page.locator("#f-department option[value=general]", has_text="Atención al cliente").wait_for(state="attached")
    assert page.problems == []


@pytest.mark.timeout(180)
def test_handoff_claim_reply_transfer_resolve_and_rating(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("bea", ("returns",))
    server.add_agent("sara", ("general",), role="supervisor")

    ana = open_page()
    log_in(ana, server.url, "ana")
    customer = customer_asking_for_a_person(server, open_page)

    # Ana sees it arrive live, with its reasons, and claims it.
    item = ana.locator("#queue-list .item-button").first
    item.wait_for()
    assert "asked for a person" in item.locator(".badges").inner_text()
    assert ana.locator("#queue-count").inner_text() == "1"
    # A widget visitor has no name: the console names them by the start of their session, not "web:…".
    visitor = item.locator(".item-customer").inner_text()
    assert visitor.startswith("Web visitor ") and len(visitor) == len("Web visitor ") + 6, visitor
    shot(ana, "agent-queue")
    ana.locator("#claim-next").click()
    ana.locator("#conv").wait_for()
    assert ana.locator("#conv-viewonly").is_hidden()
    ana.locator("#transcript .msg-customer .msg-text", has_text=ASK_PERSON).wait_for()
    assert ana.locator("#conv-customer").inner_text() == visitor
    assert ana.locator("#transcript .msg-bot").count() >= 1  # the bot's turns, marked
    assert "asked for a person" in ana.locator("#ctx-reasons").inner_text()
    assert ana.locator("#ctx-summary").inner_text().strip() not in ("", "—")
    assert ana.locator("#ctx-words-head").is_hidden()  # no upset words: no heading over nothing
    ana.locator("#mine-list .item-button").first.wait_for()
    assert ana.locator("#capacity").inner_text().startswith("Load 1 of")
    # Ana has it: the card no longer says the customer is waiting.
    assert ana.locator("#mine-list .item-wait").inner_text().startswith("handed over ")

    # The reply box takes what the server takes (no maxlength: it would cut a paste), and counts down near the end.
    limit = ana.evaluate("async () => (await (await fetch('/api/me')).json()).max_message_chars")
    assert ana.locator("#reply-text").get_attribute("maxlength") is None
    assert ana.locator("#reply-count").is_hidden()
    ana.locator("#reply-text").fill("x" * (limit - 10))
    ana.locator("#reply-count", has_text=f"{limit - 10} / {limit}").wait_for()
    ana.locator("#reply-text").fill("")
    ana.locator("#reply-count").wait_for(state="hidden")

    # Reply: the widget shows it; the customer answers: the console shows it.
    ana.locator("#reply-text").fill("Hola, soy Ana. ¿En qué te ayudo?")
    ana.locator("#reply-text").press("Enter")
    customer.locator(".relevo-log .relevo-from-agent .relevo-text", has_text="soy Ana").wait_for()
    ana.locator("#transcript .msg-agent .msg-text", has_text="soy Ana").wait_for()
    assert ana.locator("#transcript .msg-agent").count() == 1  # the POST and the live frame: one line
    customer_says(customer, "Quiero devolver un pedido")
    ana.locator("#transcript .msg-customer .msg-text", has_text="Quiero devolver").wait_for()

    # Canned replies: FAQ answers in the customer's language, inserted in the reply box.
    ana.locator("#canned summary").click()
    ana.locator("#canned-q").fill("devolver pedido")
    ana.locator("#canned-list .canned-button").first.wait_for()
    ana.locator("#canned-list .canned-button").first.click()
    assert ana.locator("#reply-text").input_value().strip() != ""
    ana.locator("#reply-text").fill("")

    # A private note stays private.
    ana.locator("#mode-note").click()
    ana.locator("#reply-text").fill("Cliente VIP, ojo")
    ana.locator("#reply-send").click()
    ana.locator("#ctx-notes .note-text", has_text="Cliente VIP").wait_for()
    shot(ana, "agent-conversation")

    # Transfer to Returns: out of Ana's hands.
    ana.locator("#transfer-dept").select_option("returns")
    ana.locator("#transfer-note").fill("Necesita una etiqueta de devolución")
    ana.locator("#transfer-btn").click()
    ana.locator("#flash", has_text="Transferred.").wait_for()
    ana.locator("#mine-empty").wait_for()
    assert ana.locator("#conv").is_hidden()

    # Bea (Returns) picks it up, with the notes.
    bea = open_page(viewport=TABLET)
    log_in(bea, server.url, "bea")
    bea.locator("#queue-list .item-button").first.wait_for()
    bea.locator("#claim-next").click()
    bea.locator("#conv").wait_for()
    bea.locator("#ctx-notes .note-text", has_text="etiqueta de devolución").wait_for()
    assert bea.locator("#transcript .msg-text", has_text="soy Ana").count() == 1
    assert bea.evaluate("() => document.documentElement.scrollWidth") <= TABLET["width"]
    shot(bea, "agent-tablet-claimed")
    asked = accept_confirms(bea)
    bea.locator("#resolve-outcome").select_option("solved")
    bea.locator("#resolve-btn").click()
    bea.locator("#flash", has_text="Resolved. The customer is asked for a rating.").wait_for()
    assert asked == ["Resolve this conversation?"]
    assert "Cliente VIP" not in customer.locator(".relevo-log").inner_text()

    # The customer is asked for a rating.
    customer.locator(".relevo-log .relevo-choice", has_text=re.compile(r"^\s*★ 4\s*$")).last.wait_for()
    shot(customer, "widget-rating")

    # The supervisor's records show the handoff, who had it, how it ended, and its timeline.
    sara = open_page()
    log_in(sara, server.url, "sara", "/supervisor")
    row = sara.locator("#records-table tbody tr").first
    row.wait_for()
    assert "Solved" in row.inner_text() and "bea" in row.inner_text()
    # Who had it, in order: the agent filter finds it by "ana" too, and the row says why.
    assert row.locator(".agents-cell").inner_text() == "ana → bea"
    assert row.locator(".agents-cell strong").inner_text() == "bea"
    assert "asked for a person" in row.inner_text()
    row.locator(".link-button").first.click()
    timeline = sara.locator("#timeline")
    timeline.locator(".tl").first.wait_for()
    events = timeline.inner_text()
    for event in ("queued", "claimed", "transferred", "resolved"):
        assert event in events, events
    sara.locator("#detail-transcript .msg-text", has_text="soy Ana").wait_for()
    assert "Cliente VIP" in sara.locator("#detail-notes").inner_text()
    csv_href = sara.locator("#csv-link").get_attribute("href")
    assert csv_href is not None and csv_href.startswith("/api/records.csv")
    shot(sara, "supervisor-record")
    for page in (ana, bea, customer, sara):
        assert page.problems == [], page.problems


@pytest.mark.timeout(120)
def test_escalate_with_note_claim_from_queue_release_and_return_to_bot(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor", tier=3)
    ana = open_page()
    log_in(ana, server.url, "ana")
    sara = open_page()
    log_in(sara, server.url, "sara")
    customer = customer_asking_for_a_person(server, open_page)

    ana.locator("#queue-list .item-button").first.wait_for()
    ana.locator("#claim-next").click()
    ana.locator("#conv").wait_for()
    assert ana.locator("#escalate-btn").inner_text() == "Escalate to tier 2"
    ana.locator("#escalate-note").fill("Necesita un especialista")
    ana.locator("#escalate-btn").click()
    ana.locator("#flash", has_text="Escalated.").wait_for()
    ana.locator("#mine-empty").wait_for()

    # The supervisor sees it waiting at tier 2, opens it (read only), claims it, reads the note.
    sara.locator("#queue-list .group-head", has_text="Tier 2").wait_for()
    sara.locator("#queue-list .item-button").first.click()
    sara.locator("#conv-viewonly").wait_for()
    assert sara.locator("#reply-text").is_disabled()
    sara.locator("#conv-claim").click()
    sara.locator("#conv-viewonly").wait_for(state="hidden")
    sara.locator("#ctx-notes .note-text", has_text="especialista").wait_for()
    assert sara.locator("#reply-text").is_enabled()

    sara.locator("#release-btn").click()
    sara.locator("#flash", has_text="Given back to the queue.").wait_for()
    sara.locator("#queue-list .item-button").first.wait_for()
    sara.locator("#claim-next").click()
    sara.locator("#conv-viewonly").wait_for(state="hidden")
    asked = accept_confirms(sara)
    sara.locator("#return-btn").click()
    sara.locator("#flash", has_text="Returned to the bot.").wait_for()
    assert len(asked) == 1 and asked[0].startswith("Return this conversation to the bot?")
    sara.locator("#mine-empty").wait_for()
    sara.locator("#queue-empty").wait_for()
    customer.locator(".relevo-status").wait_for(state="hidden")
    for page in (ana, sara, customer):
        assert page.problems == [], page.problems


@pytest.mark.timeout(120)
def test_customer_rating_reaches_the_supervisor_records(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor")
    ana = open_page()
    log_in(ana, server.url, "ana")
    customer = customer_asking_for_a_person(server, open_page)
    ana.locator("#queue-list .item-button").first.wait_for()
    # While waiting, the customer leaves an address: the console shows it (as text) with the conversation.
    customer_says(customer, "mi correo es cliente.uno@example.com")
    customer.locator(".relevo-log .relevo-text", has_text="te escribiremos a cliente.uno@example.com").wait_for()
    ana.locator("#claim-next").click()
    ana.locator("#conv").wait_for()
    ana.locator("#conv-email-value", has_text="cliente.uno@example.com").wait_for()
    assert ana.locator("#conv-unreachable").is_hidden()  # shown only for a customer who blocked the bot
    ana.locator("#reply-text").fill("Hecho, ya está resuelto.")
    ana.locator("#reply-send").click()
    customer.locator(".relevo-log .relevo-from-agent .relevo-text", has_text="Hecho").wait_for()
    # Resolve asks first: Cancel leaves the conversation as it was.
    ana.once("dialog", lambda dialog: dialog.dismiss())
    ana.locator("#resolve-btn").click()
    ana.wait_for_timeout(500)
    assert ana.locator("#conv").is_visible() and ana.locator("#mine-list .item-button").count() == 1
    accept_confirms(ana)
    ana.locator("#resolve-btn").click()
    ana.locator("#flash", has_text="Resolved.").wait_for()

    comment = rate_four_with_a_comment(customer)

    sara = open_page()
    log_in(sara, server.url, "sara", "/supervisor")
    row = sara.locator("#records-table tbody tr").first
    row.wait_for()
    for _ in range(20):  # the rating is stored after the click returns: ask again until it shows
        if "4 of 5" in row.locator(".rating-cell").inner_text():
            break
        sara.wait_for_timeout(250)
        sara.locator("#filters button[type=submit]").click()
    assert "4 of 5" in row.locator(".rating-cell").inner_text(), (
        "the customer's rating never reached the record"
    )
    # The customer's comment, with the stars in the list, as text (the record shows it whole too).
    shown_comment = row.locator(".rating-comment")
    for _ in range(20):  # noted after the stars: ask again until the row has it
        if shown_comment.count():
            break
        sara.wait_for_timeout(250)
        sara.locator("#filters button[type=submit]").click()
    assert shown_comment.inner_text() == f"“{comment}”" and row.locator(".rating-cell b").count() == 0
    # The figures of the records shown: one handoff, solved, its wait and handling, the rating.
    metrics = sara.locator("#records-metrics").inner_text()
    assert metrics.startswith("1 handoff · 1 solved (100 %) · median wait for a person "), metrics
    assert "median handling" in metrics and metrics.endswith("average rating 4 (1 rated)"), metrics
    # And what the bot did over the same days (the figures a serving worker adds every few seconds).
    assert server.runtime is not None
    server.call(server.runtime.stats.flush())
    sara.locator("#filters button[type=submit]").click()
    bot_line = sara.locator("#bot-metrics")
    bot_line.filter(has_text="handoff to a person").wait_for()
    shown = bot_line.inner_text()
    # One conversation is "1 conversation", one answer "1 answer" (test_the_bot_line_says_one_in_the_singular).
    assert re.fullmatch(r"Bot: (1 conversation|\d+ conversations) · \d+ % finished without a person · "
                        r"(1 answer|\d+ answers) · .*\d+ not understood · [1-9]\d* handoffs? to a person", shown), shown
    row.locator(".link-button").first.click()
    rated = sara.locator("#timeline .tl-rated")
    rated.nth(1).wait_for()  # the stars, then the comment, as text
    assert "4 of 5" in rated.nth(0).inner_text() and comment in rated.nth(1).inner_text()
    assert "4 of 5" in sara.locator("#detail-rating").inner_text()
    # The customer's own line reads the same as the press and after a reload.
    said = ".relevo-log .relevo-from-customer .relevo-text"
    assert customer.locator(said, has_text="★").last.inner_text() == "★ 4"
    customer.reload()
    customer.locator(said, has_text="★").last.wait_for()
    assert customer.locator(said, has_text="★").last.inner_text() == "★ 4"
    for page in (ana, customer, sara):
        assert page.problems == [], page.problems


@pytest.mark.timeout(120)
def test_customer_markup_is_inert_in_every_page(server: Server, open_page: PageFactory) -> None:
    server.add_agent(
        "sara", ("general",), role="supervisor", display_name='Sara <img src=x onerror="window.__pwned=1">'
    )
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, HOSTILE)
    customer.locator(".relevo-log .relevo-from-bot").nth(1).wait_for()
    customer_says(customer, ASK_PERSON)

    agent = open_page()
    log_in(agent, server.url, "sara")
    agent.locator("#queue-list .item-button").first.wait_for()
    agent.locator("#claim-next").click()
    agent.locator("#transcript .msg-customer .msg-text", has_text=HOSTILE).wait_for()
    assert agent.locator("#me-name").inner_text() == 'Sara <img src=x onerror="window.__pwned=1">'
    agent.locator("#reply-text").fill("Respuesta " + HOSTILE)
    agent.locator("#reply-text").press("Enter")
    agent.locator("#mode-note").click()
    agent.locator("#reply-text").fill("Nota " + HOSTILE)
    agent.locator("#reply-send").click()
    agent.locator("#ctx-notes .note-text", has_text="Nota <img").wait_for()
    customer_says(customer, "Otra vez " + HOSTILE)
    agent.locator("#transcript .msg-customer .msg-text", has_text="Otra vez").wait_for()
    # A right-to-left override would show "gnp.exe" as "exe.png": the agent sees the control instead.
    customer_says(customer, "reembolso \u202egnp.exe\u202c ok")
    tricked = agent.locator("#transcript .msg-customer .msg-text", has_text="reembolso")
    tricked.wait_for()
    assert tricked.inner_text() == "reembolso \ufffdgnp.exe\ufffd ok"
    assert_inert(agent)
    shot(agent, "agent-hostile")

    texts = customer.locator(".relevo-log .relevo-text")
    customer.locator(".relevo-log .relevo-from-agent .relevo-text", has_text="Respuesta <img").wait_for()
    assert HOSTILE in texts.all_inner_texts()
    assert_inert(customer)

    supervisor = open_page()
    log_in(supervisor, server.url, "sara", "/supervisor")
    supervisor.locator("#records-table tbody tr").first.wait_for()
    supervisor.locator("#records-table tbody tr .link-button").first.click()
    supervisor.locator("#detail-transcript .msg-text", has_text="Otra vez").wait_for()
    assert HOSTILE in supervisor.locator("#detail-transcript .msg-text").all_inner_texts()
    assert "Nota " + HOSTILE in supervisor.locator("#detail-notes .note-text").all_inner_texts()
    assert_inert(supervisor)
    shot(supervisor, "supervisor-hostile")
    for page in (agent, customer, supervisor):
        assert page.problems == [], page.problems


@pytest.mark.timeout(120)
def test_console_reconnects_and_catches_up(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        upstream = ws.connect_to_server()
        sockets.append((ws, upstream))
        ws.on_message(upstream.send)
        upstream.on_message(ws.send)

    ana = open_page()
    ana.route_web_socket("**/api/ws", route)
    log_in(ana, server.url, "ana")
    assert len(sockets) == 1

    # The socket drops; a handoff arrives meanwhile; the console comes back and shows it.
    ws, upstream = sockets[-1]
    ws.close(code=4000, reason="network dropped")
    upstream.close()
    ana.locator("#conn", has_text="Reconnecting").wait_for()
    customer_asking_for_a_person(server, open_page)
    ana.locator("#conn", has_text="Live").wait_for()
    ana.locator("#queue-list .item-button").first.wait_for()
    assert len(sockets) >= 2
    assert ana.problems == []


@pytest.mark.timeout(120)
def test_a_conversation_taken_by_someone_else_turns_read_only_with_a_notice(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("cat", ("general",))
    ana = open_page()
    log_in(ana, server.url, "ana")
    record_flashes(ana)
    cat = open_page()
    log_in(cat, server.url, "cat")
    record_flashes(cat)
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, "sois unos inútiles, llevo dos semanas esperando!!! " + ASK_PERSON)

    # Ana is reading the waiting conversation when Cat claims it.
    ana.locator("#queue-list .item-button").first.click()
    ana.locator("#conv-claim").wait_for()
    cat.locator("#queue-list .item-button").first.wait_for()
    cat.locator("#claim-next").click()
    cat.locator("#actions").wait_for()
    # The mood detector's evidence comes with its own quotes ('insult: "…"'): not wrapped in a second pair.
    cat.locator("#ctx-reason-details .evidence").first.wait_for()
    assert all('"' not in q for q in cat.locator("#ctx-reason-details q").all_inner_texts())
    assert cat.locator("#ctx-reason-details .evidence-label").count() >= 1
    assert cat.locator("#ctx-words .word").count() >= 1 and cat.locator("#ctx-words-head").is_visible()
    # The live event named who claimed it, by display name: the notice says so (A11), not "another agent, or…".
    ana.locator("#conv-lost", has_text="Cat claimed this conversation.").wait_for()
    assert ana.locator("#conv-claim").is_hidden() and ana.locator("#conv-viewonly").is_hidden()
    assert ana.locator("#actions").is_hidden() and not ana.locator("#reply-text").is_editable()
    assert "queued" not in ana.locator("#conv-meta").inner_text()
    shot(ana, "agent-lost-viewed")

    # Cat's claim lapses (as when her connection drops for longer than the lease) while she has a draft,
    # and Ana takes the conversation.
    cat.locator("#reply-text").fill("Un momento, lo estoy mirando")
    assert server.service is not None
    queues = server.service.queues
    server.call(queues.expire_leases(now_ms() + 3_600_000))
    ana.locator("#queue-list .item-button").first.click()
    ana.locator("#conv-claim").click()
    ana.locator("#actions").wait_for()
    assert ana.locator("#conv-lost").is_hidden()

    # Cat is told, keeps her draft to copy, and can neither send it nor act on the conversation.
    cat.wait_for_function(
        """() => !document.getElementById('conv-lost').hidden && document.getElementById('conv-claim').hidden
                 && document.getElementById('actions').hidden"""
    )
    notice = cat.locator("#conv-lost").inner_text()
    assert "no longer yours" in notice and "draft" in notice, notice
    assert cat.locator("#reply-text").input_value() == "Un momento, lo estoy mirando"
    assert cat.locator("#reply-send").is_disabled() and not cat.locator("#reply-text").is_editable()
    assert "with Cat" not in cat.locator("#conv-meta").inner_text()
    shot(cat, "agent-lost-mine")
    for page in (ana, cat):
        assert not any("You may not do that." in f for f in flashes(page)), flashes(page)
        assert without_refusals(page.problems) == [], page.problems
    assert customer.problems == []


@pytest.mark.timeout(120)
def test_signing_in_again_in_another_tab_keeps_the_first_tab_working(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("bob", ("general",))
    first = open_page()
    log_in(first, server.url, "ana")
    record_flashes(first)

    def sign_in_in_a_second_tab(name: str) -> None:
        second = first.context.new_page()
        second.goto(server.url + "/login")
        sign_in_here(second, name)
        second.wait_for_url(re.compile(r"/agent$"))
        second.close()

    # Ana again, in another tab: the cookie now holds a new session with a new CSRF token. The first
    # tab's next POST is refused once, fetches the new token and goes through.
    sign_in_in_a_second_tab("ana")
    first.locator("#presence").select_option("away")
    first.wait_for_function(
        "async () => (await (await fetch('/api/me')).json()).presence === 'away'", polling=200
    )
    assert flashes(first) == []

    # Bob in the other tab: the first tab must not act as Bob; it asks for a reload instead.
    sign_in_in_a_second_tab("bob")
    first.locator("#presence").select_option("online")
    first.locator("#flash", has_text="Your session changed").wait_for()
    assert not any("You may not do that." in f for f in flashes(first))
    assert without_refusals(first.problems) == [], first.problems


@pytest.mark.timeout(120)
def test_the_chosen_language_stays_across_pages_and_logout(server: Server, open_page: PageFactory) -> None:
    server.add_agent("sara", ("general",), role="supervisor")
    server.add_agent("adm", ("general",), role="admin")
    page = open_page()  # an English browser; Spanish chosen on the login page
    page.goto(server.url + "/login?next=/agent&lang=es")
    assert page.locator("h2").inner_text() == "Iniciar sesión"
    sign_in_here(page, "sara")
    page.wait_for_url(re.compile(r"/agent\?lang=es$"))
    page.locator("#conn", has_text="En directo").wait_for()
    page.locator("#to-supervisor").click()
    page.wait_for_url(re.compile(r"/supervisor\?lang=es$"))
    page.locator("#records-title", has_text="Registro de derivaciones").wait_for()

    # Codes the server sends are shown as Spanish labels, its English error texts as ours.
    labels = page.evaluate(
        """() => {
          const R = window.RelevoConsole;
          return [R.outcomeLabel('returned_to_bot'), R.stateLabel('queued'), R.slaKindLabel('first_reply'),
                  R.priorityLabel('high'), R.errorText(new R.ApiError(409, 'not_yours', 'x is assigned')),
                  R.errorText(new R.ApiError(409, 'full', 'agent sara already has 3 conversations'))];
        }"""
    )
    assert labels == [
        "Devuelta al bot", "en cola", "Primera respuesta", "alta", "Esta conversación la tiene otra persona.",
        "Ya tienes todas las conversaciones que puedes atender.",
    ]  # fmt: skip

    # At 1024 px the agents' names and presence still read as whole words ("Desconectado", not "Descone/ctado").
    page.set_viewport_size({"width": 1024, "height": 768})
    page.locator("#agents-table .dot-offline", has_text="Desconectado").wait_for()
    lines = page.evaluate(
        """() => Array.from(document.querySelectorAll('#agents-table .dot, #agents-table strong'))
                   .map(n => n.getClientRects().length)"""
    )
    assert lines and all(n == 1 for n in lines), lines
    shot(page, "supervisor-es-1024")

    # A page opened without ?lang= (a bookmark) remembers the choice; so does the way out.
    page.goto(server.url + "/agent")
    page.locator("#claim-next", has_text="Atender siguiente").wait_for()
    assert page.locator("#to-supervisor").get_attribute("href") == "/supervisor?lang=es"
    page.locator("#logout").click()
    page.wait_for_url(re.compile(r"/login\?bye&lang=es$"))
    page.locator("#login-error", has_text="Has cerrado la sesión.").wait_for()
    assert page.problems == []


def test_an_agent_sent_to_the_supervisor_view_lands_on_the_console(server: Server, open_page: PageFactory) -> None:
    server.add_agent("bob", ("general",))
    page = open_page()
    page.goto(server.url + "/login?next=/supervisor")
    sign_in_here(page, "bob")
    page.wait_for_url(re.compile(r"/agent$"))
    page.locator("#conn", has_text="Live").wait_for()
    assert page.problems == []
    # Typing the address in a console whose language was chosen (not the browser's): refused, in it.
    page.goto(server.url + "/agent?lang=es")
    page.locator("#conn", has_text="En directo").wait_for()
    refused = page.goto(server.url + "/supervisor")
    assert refused is not None and refused.status == 403
    assert page.locator("h2").inner_text() == "No es para tu rol"
    page.locator("#refused-back", has_text="Volver a la consola de agente").click()
    page.wait_for_url(re.compile(r"/agent$"))
    page.locator("#conn", has_text="En directo").wait_for()


def test_the_supervisor_floor_alone_does_not_make_its_reader_available(server: Server, open_page: PageFactory) -> None:
    # Online is what wait estimates and automatic routing count: a supervisor only watching the floor
    # was given conversations they never saw, and kept their claims without being there.
    server.add_agent("sara", ("general",), role="supervisor")
    page = open_page()
    page.goto(server.url + "/login?next=/supervisor")
    sign_in_here(page, "sara")
    page.wait_for_url(re.compile(r"/supervisor$"))
    page.locator("#conn", has_text="Live").wait_for()
    page.wait_for_timeout(1500)  # the console's first heartbeat goes as soon as its socket opens
    assert page.evaluate("async () => (await (await fetch('/api/me')).json()).presence") == "offline"
    # The agent console in another tab is being there.
    console = page.context.new_page()
    console.goto(server.url + "/agent")
    console.locator("#conn", has_text="Live").wait_for()
    page.wait_for_function(
        "async () => (await (await fetch('/api/me')).json()).presence === 'online'", polling=200
    )
    assert page.problems == []


def test_a_supervisor_sees_the_unanswered_questions_and_downloads_their_draft(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("sara", ("general",), role="supervisor")
    assert server.service is not None
    redis = server.service.redis

    asked: list[tuple[str, unanswered.Kind]] = [
        ("do you sell gift cards", "not_understood"), ("Do you sell gift cards?", "not_understood"),
        ("do you sell gift cards, please?", "not_helpful"), (HOSTILE, "not_understood"),
        ("How long does shipping take?", "not_understood"),  # the knowledge base answers it by now
    ]  # fmt: skip

    async def noted() -> None:
        for text, kind in asked:
            await unanswered.note(redis, unanswered.Unanswered(kind, text, "en", now_ms()))

    server.call(noted())
    page = open_page()
    log_in(page, server.url, "sara", "/supervisor")
    rows = page.locator("#unanswered-table tbody tr")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    assert page.locator("#unanswered-summary").inner_text().endswith(
        "Left out: 1 the knowledge base answers by now.")
    assert "none of the suggestions it offered was chosen" in page.locator(".unanswered-help").inner_text()
    first = rows.first
    assert first.locator(".unanswered-count").inner_text() == "3"
    assert first.locator(".unanswered-text").inner_text() == "do you sell gift cards, please?"
    assert first.locator(".badge").all_inner_texts() == ["answer did not help", "not understood"]
    # Its wordings open on a click: "do you sell gift cards" is "Do you sell gift cards?" again.
    examples = first.locator(".unanswered-example")
    assert examples.first.is_hidden()
    first.locator("summary", has_text="2 wordings").click()
    assert examples.all_inner_texts() == ["do you sell gift cards, please?", "Do you sell gift cards?"]
    # What the customer typed is shown as they typed it, and nothing of it runs or becomes an element.
    assert rows.nth(1).locator(".unanswered-text").inner_text() == HOSTILE
    assert_inert(page)
    shot(page, "supervisor-unanswered")

    link = page.locator("#unanswered-download")
    assert link.get_attribute("href") == "/api/unanswered.yaml?days=30&top=50"
    page.locator("#u-days").select_option("7")
    page.wait_for_function("() => document.getElementById('unanswered-download').href.includes('days=7')")
    assert link.get_attribute("href") == "/api/unanswered.yaml?days=7&top=50"
    assert page.url.endswith("/supervisor?days=7")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "relevo-unanswered.yaml"
    draft = yaml.safe_load(Path(download.value.path()).read_text(encoding="utf-8"))
    assert [e["questions"]["en"][0] for e in draft["entries"]] == ["do you sell gift cards, please?", HOSTILE]

    # On a phone each question is a card it heads, at the card's full width, kinds wrapping under it.
    page.set_viewport_size({"width": 390, "height": 800})
    card = rows.first
    question = card.locator(".unanswered-question").bounding_box()
    count = card.locator(".unanswered-count").bounding_box()
    assert question and count and question["y"] < count["y"] and question["width"] > 300, (question, count)
    assert card.locator(".badge").first.bounding_box()["width"] < 330  # type: ignore[index]
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    page.set_viewport_size(DESKTOP)

    # In Spanish, the section's labels are Spanish; the customers' words stay as written.
    page.goto(server.url + "/supervisor?lang=es&days=7")
    page.locator("#unanswered-title", has_text="Preguntas sin respuesta").wait_for()
    page.locator("#unanswered-table tbody tr").nth(1).wait_for()
    assert page.locator("#u-days").input_value() == "7"
    assert page.locator("#unanswered-table .badge").first.inner_text() == "la respuesta no sirvió"
    assert page.locator("#unanswered-download").inner_text() == "Descargar borrador de FAQ"
    assert_inert(page)
    assert page.problems == []


def opened_in_view(page: Any) -> dict[str, Any]:
    """Where the open conversation is, read at once: the page's scroll, its top and who has the focus."""
    return dict(page.evaluate(
        """() => ({
          y: window.scrollY, top: document.getElementById('conv').getBoundingClientRect().top,
          bar: document.querySelector('.topbar').getBoundingClientRect().bottom,
          height: window.innerHeight, focus: document.activeElement && document.activeElement.id,
        })"""
    ))


@pytest.mark.timeout(120)
def test_on_a_phone_an_opened_conversation_is_scrolled_into_view_and_focused(
    server: Server, open_page: PageFactory
) -> None:
    # A tap on a queue card, or Claim next, opened the conversation 1 700 px below, out of sight.
    server.add_agent("ana", ("general",))
    ana = open_page(viewport=TALL_PHONE)
    log_in(ana, server.url, "ana")
    customer_asking_for_a_person(server, open_page)
    card = ana.locator("#queue-list .item-button").first
    card.wait_for()
    assert ana.evaluate("() => window.scrollY") == 0

    card.click()
    ana.locator("#conv").wait_for()
    ana.wait_for_function("() => document.activeElement && document.activeElement.id === 'conv-customer'")
    seen = opened_in_view(ana)
    assert seen["y"] > 0, seen
    assert seen["bar"] - 1 <= seen["top"] < seen["height"] / 3, seen  # its top just under the bar
    shot(ana, "agent-phone-opened")

    # Claim next from the top of the page: the claimed conversation comes into view the same way.
    ana.evaluate("() => window.scrollTo(0, 0)")
    ana.locator("#conv-close").evaluate("b => b.click()")
    ana.locator("#conv").wait_for(state="hidden")
    ana.evaluate("() => { window.scrollTo(0, 0); document.activeElement && document.activeElement.blur(); }")
    ana.locator("#claim-next").click()
    ana.locator("#reply-text:not([disabled])").wait_for()
    ana.wait_for_function("() => document.activeElement && document.activeElement.id === 'conv-customer'")
    seen = opened_in_view(ana)
    assert seen["y"] > 0 and seen["bar"] - 1 <= seen["top"] < seen["height"] / 3, seen
    assert ana.problems == []


def test_on_a_desktop_claiming_still_puts_the_keyboard_in_the_reply_box(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    ana = open_page()
    log_in(ana, server.url, "ana")
    customer_asking_for_a_person(server, open_page)
    ana.locator("#queue-list .item-button").first.wait_for()
    ana.locator("#claim-next").click()
    ana.wait_for_function("() => document.activeElement && document.activeElement.id === 'reply-text'")
    assert ana.evaluate("() => window.scrollY") == 0


def agents_overflow(page: Any) -> dict[str, Any]:
    """The floor's agents table against its box, read at once."""
    return dict(page.evaluate(
        """() => {
          const table = document.getElementById('agents-table');
          const wrap = table.parentElement;
          const heads = Array.from(table.tHead.rows[0].cells);
          return { scroll: wrap.scrollWidth, client: wrap.clientWidth, table: table.offsetWidth,
                   lastRight: heads[heads.length - 1].getBoundingClientRect().right,
                   wrapRight: wrap.getBoundingClientRect().right,
                   rows: table.tBodies[0].rows.length };
        }"""
    ))


def test_a_long_unbroken_agent_name_wraps_on_the_floor(server: Server, open_page: PageFactory) -> None:
    long_name = "Maximiliana " + "W" * 88
    server.add_agent("sara", ("general",), role="supervisor", display_name="Sara")
    server.add_agent("longname", ("general",), display_name=long_name)
    page = open_page(viewport={"width": 1400, "height": 900})
    log_in(page, server.url, "sara", where="/supervisor")
    page.locator("#agents-table tbody tr").nth(1).wait_for()
    seen = agents_overflow(page)
    assert seen["rows"] == 2
    # Every column in view: the name wraps in its cell instead of widening the table past its box.
    assert seen["scroll"] <= seen["client"] + 1, seen
    assert seen["lastRight"] <= seen["wrapRight"] + 1, seen
    assert page.locator("#agents-table strong", has_text="Maximiliana").inner_text() == long_name
    shot(page, "supervisor-long-name")
    assert page.problems == []


@pytest.mark.timeout(150)
def test_the_record_panel_opens_a_live_conversation_in_the_console_to_take_it_over(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor", display_name="Sara")
    ana = open_page()
    log_in(ana, server.url, "ana")
    customer_asking_for_a_person(server, open_page)
    cid = claim_next(ana)
    assert cid

    sara = open_page()
    accept_confirms(sara)
    log_in(sara, server.url, "sara", where="/supervisor")
    # Ana's conversation on the floor opens its record, which leads to the console.
    sara.locator(f'#agents-table .id-button[title="{cid}"]').click()
    link = sara.locator("#detail-open")
    link.wait_for()
    assert link.inner_text() == "Open in console"
    assert link.get_attribute("href") == f"/agent?c={cid}"
    link.click()
    sara.wait_for_url(re.compile(r"/agent\?c="))
    sara.locator("#conv-takeover").click()
    sara.locator("#flash", has_text="The conversation is yours now.").wait_for()
    sara.locator("#reply-text:not([disabled])").wait_for()
    sara.locator("#resolve-btn").click()
    sara.locator("#flash", has_text="Resolved.").wait_for()

    # Ended: the record has no way to the console any more.
    sara.goto(f"{server.url}/supervisor?c={cid}")
    sara.locator("#detail-body").wait_for()
    sara.wait_for_function("() => document.getElementById('detail-meta').textContent !== ''")
    assert sara.evaluate("() => [document.getElementById('detail-open').hidden, "
                         "document.getElementById('detail-meta').textContent]") == [True, sara.locator(
                             "#detail-meta").inner_text()]
    assert without_refusals(sara.problems) == []


BOT_FIGURES = {
    "conversations": 1, "contained_rate": 0, "answered": 1, "helpful_rate": 1, "helpful_yes": 1, "helpful_no": 0,
    "not_understood": 0, "handed_over": 1,
}  # fmt: skip


@pytest.mark.parametrize(("locale", "live", "expected"), [
    ("en-US", "Live", "Bot: 1 conversation · 0 % finished without a person · 1 answer · 100 % found helpful "
                      "(of 1 who answered \"Did this help?\") · 0 not understood · 1 handoff to a person"),
    ("es-ES", "En directo", "Bot: 1 conversación · 0 % terminadas sin una persona · 1 respuesta · 100 % útiles "
                            "(de 1 que respondió a \"¿Te ha servido?\") · 0 sin entender · 1 derivación a una persona"),
])  # fmt: skip
def test_the_bot_line_says_one_in_the_singular(
    server: Server, open_page: PageFactory, locale: str, live: str, expected: str
) -> None:
    server.add_agent("sara", ("general",), role="supervisor")
    page = open_page(locale=locale)
    page.route("**/api/bot_figures*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(BOT_FIGURES)))
    log_in(page, server.url, "sara", where="/supervisor", live=live)
    page.wait_for_function("t => document.getElementById('bot-metrics').textContent === t", arg=expected)
    assert page.problems == []


# -- A8, A11, A12 (tester20a): recent conversations, what became of a lost one, overdue first --------

RECENT_ROWS = """() => Array.from(document.querySelectorAll('#recent-list .recent-item')).map(b => ({
  tag: b.tagName, id: b.getAttribute('data-conversation'),
  ending: b.querySelector('.recent-ending').textContent,
  when: b.querySelector('.recent-when').textContent,
  rating: (b.querySelector('.recent-rating') || {}).textContent || '',
  comment: (b.querySelector('.recent-comment') || {}).textContent || '',
  markup: b.querySelectorAll('b, img, script').length,
  count: document.getElementById('recent-count').textContent,
}))"""


@pytest.mark.timeout(150)
def test_recent_lists_a_resolved_conversation_with_its_rating_and_opens_it_read_only(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ana", ("general",))
    ana = open_page()
    log_in(ana, server.url, "ana")
    ana.locator("#recent-empty").wait_for()
    customer = customer_asking_for_a_person(server, open_page)
    cid = claim_next(ana)
    ana.locator("#reply-text").fill("Hecho, ya está resuelto.")
    ana.locator("#reply-send").click()
    customer.locator(".relevo-log .relevo-from-agent .relevo-text", has_text="Hecho").wait_for()
    accept_confirms(ana)
    ana.locator("#resolve-btn").click()
    ana.locator("#flash", has_text="Resolved.").wait_for()
    # At once in "Recent", no rating yet.
    ana.locator(f'#recent-list .recent-item[data-conversation="{cid}"]').wait_for()
    (row,) = ana.evaluate(RECENT_ROWS)
    assert (row["tag"], row["ending"], row["rating"], row["count"]) == ("BUTTON", "Solved", "Not rated", "1")

    comment = rate_four_with_a_comment(customer)
    for _ in range(20):  # "Recent" is fetched again now and then; a reload does it at once
        ana.reload()
        ana.locator("#conn", has_text="Live").wait_for()
        ana.locator("#recent-list .recent-item").first.wait_for()
        if ana.locator("#recent-list .recent-comment").count():
            break
        ana.wait_for_timeout(250)
    (row,) = ana.evaluate(RECENT_ROWS)
    assert row["ending"] == "Solved" and row["when"]
    assert row["rating"] == "★★★★☆ 4 of 5" and row["comment"] == comment and row["markup"] == 0, row

    # It opens read-only: the transcript, no reply, no actions, no claim; it says it has ended.
    ana.locator("#recent-list .recent-item").first.click()
    ana.locator("#conv-viewonly", has_text="This conversation has ended").wait_for()
    ana.locator("#transcript .msg", has_text="Hecho, ya está resuelto.").first.wait_for(state="attached")
    state = ana.evaluate("""() => ({
      reply: document.getElementById('reply-text').disabled, actions: document.getElementById('actions').hidden,
      claim: document.getElementById('conv-claim').hidden, lost: document.getElementById('conv-lost').hidden,
      address: new URLSearchParams(location.search).get('c')})""")
    assert state == {"reply": True, "actions": True, "claim": True, "lost": True, "address": cid}
    assert_inert(ana)
    for page in (ana, customer):
        assert page.problems == [], page.problems


@pytest.mark.timeout(150)
def test_the_no_longer_yours_notice_says_what_happened(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor", display_name="Sara")
    ana = open_page()
    log_in(ana, server.url, "ana")
    customer = customer_asking_for_a_person(server, open_page)
    cid = claim_next(ana)

    # Resolved by ana herself in a second tab: the first says so.
    tab = ana.context.new_page()
    accept_confirms(tab)
    tab.goto(f"{server.url}/agent?c={cid}")
    tab.locator("#reply-text:not([disabled])").wait_for()
    tab.locator("#resolve-btn").click()
    tab.locator("#flash", has_text="Resolved.").wait_for()
    ana.wait_for_function("""() => document.getElementById('conv-lost').textContent
                               .startsWith('You resolved this conversation in another tab.')""")
    tab.close()

    # Taken over by Sara (a supervisor): named, with her display name.
    other = open_page(viewport=PHONE, locale="es-ES")
    open_widget(other, server.url)
    customer_says(other, ASK_PERSON)
    ana.locator("#queue-list .item-button").first.wait_for()
    ana.locator("#claim-next").click()
    ana.wait_for_function(f"() => new URLSearchParams(location.search).get('c') && "
                          f"new URLSearchParams(location.search).get('c') !== '{cid}'")
    ana.locator("#reply-text:not([disabled])").wait_for()
    second = ana.evaluate("() => new URLSearchParams(location.search).get('c')")
    sara = open_page()
    log_in(sara, server.url, "sara")
    sara.goto(f"{server.url}/agent?c={second}")
    sara.locator("#conv-takeover").click()
    sara.locator("#flash", has_text="The conversation is yours now.").wait_for()
    ana.wait_for_function("""() => !document.getElementById('conv-lost').hidden &&
        document.getElementById('conv-lost').textContent.startsWith('Sara took this conversation over.')""")
    assert ana.locator("#actions").is_hidden() and not ana.locator("#reply-text").is_editable()
    # "Recent" lists both, newest first, each with how it ended.
    ana.wait_for_function("() => document.querySelectorAll('#recent-list .recent-item').length === 2")
    rows = ana.evaluate(RECENT_ROWS)
    assert [(r["id"], r["ending"]) for r in rows] == [(second, "Taken over by Sara"), (cid, "Solved")], rows
    for page in (ana, sara, customer, other):
        assert without_refusals(page.problems) == [], page.problems


QUEUE_CARDS = """() => Array.from(document.querySelectorAll('#queue-list .item-button')).map(b => ({
  queue: (b.querySelector('.chip-queue') || {}).textContent || '',
  priority: (b.querySelector('.chip-priority') || {}).textContent || '',
  overdue: Array.from(b.querySelectorAll('.badge-sla_overdue')).map(x => x.textContent),
  at_risk: b.querySelectorAll('.badge-sla_at_risk').length,
}))"""


@pytest.mark.timeout(150)
def test_an_overdue_urgent_conversation_is_listed_first_and_red(server: Server, open_page: PageFactory) -> None:
    server.add_agent("sara", ("general",), role="supervisor", tier=3)
    sara = open_page(locale="es-ES")
    log_in(sara, server.url, "sara", live="En directo")
    first = open_page(viewport=PHONE, locale="es-ES")
    open_widget(first, server.url)
    customer_says(first, ASK_PERSON)
    sara.locator("#queue-list .item-button").first.wait_for()
    second = open_page(viewport=PHONE, locale="es-ES")
    open_widget(second, server.url)
    customer_says(second, "voy a llamar a mi abogado")  # a legal threat: supervisors, tier 3, urgent
    sara.wait_for_function("() => document.querySelectorAll('#queue-list .item-button').length === 2")

    # Ten minutes later for the urgent one (its first reply is due in 2): overdue.
    assert server.runtime is not None
    redis = server.runtime.redis

    async def age() -> None:
        for cid, raw in (await redis.hgetall(keys.STATES)).items():
            st = json.loads(raw)
            if st["dept"] == "supervisor":
                st["queued_at"] -= 600_000
                await redis.hset(keys.STATES, cid, json.dumps(st))

    server.call(age())
    sara.reload()
    sara.locator("#conn", has_text="En directo").wait_for()
    sara.wait_for_function("() => document.querySelectorAll('#queue-list .badge-sla_overdue').length === 1")
    cards = sara.evaluate(QUEUE_CARDS)
    # Claim next's order across queues (the urgent one first), each card naming its queue.
    assert [(c["queue"], c["priority"]) for c in cards] == [
        ("Supervisión de atención al cliente · Nivel 3", "urgente"), ("Atención al cliente · Nivel 1", "normal")
    ], cards
    assert re.fullmatch(r"SLA incumplido \(\d+ min de retraso\)", cards[0]["overdue"][0]), cards
    assert cards[0]["at_risk"] == 0 and cards[1]["overdue"] == []
    sara.locator("#claim-next").click()
    sara.locator("#actions").wait_for()
    assert "Nivel 3" in sara.locator("#conv-meta").inner_text()
    for page in (sara, first, second):
        assert page.problems == [], page.problems
