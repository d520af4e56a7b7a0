"""The agent console's reply box and over-long replies, in Debian's Chromium against a real server, Redis
and widget: a count near server.max_message_chars, a warning over it in the console's language, nothing
cut and nothing sent until it fits, counted as the server counts (code points: an emoji is one)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The real server, browser and pages, as the other console tests start them.
from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import (  # noqa: F401
    ASK_PERSON,
    PHONE,
    PageFactory,
    Server,
    browser,
    customer_says,
    log_in,
    open_page,
    open_widget,
    serving,
    shot,
)

pytestmark = pytest.mark.browser

LIMIT = 60


@pytest.fixture
def server(redis_url: str, tmp_path: Path) -> Iterator[Server]:
    """The console tests' server, with a small limit so the texts stay readable."""
    console.flush(redis_url)
    yield from serving(redis_url, tmp_path, max_message_chars=LIMIT)


def claimed(server: Server, open_page: PageFactory, locale: str, live: str) -> tuple[Any, Any]:  # noqa: F811
    """An agent's console with a conversation claimed from a customer in the widget; both pages."""
    server.add_agent("ana", ("general",))
    agent = open_page(locale=locale)
    log_in(agent, server.url, "ana", live=live)
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, ASK_PERSON)
    agent.locator("#queue-list .item-button").first.wait_for()
    agent.locator("#claim-next").click()
    agent.locator("#transcript .msg-customer .msg-text", has_text=ASK_PERSON).wait_for()
    agent.locator("#reply-text:not([disabled])").wait_for()
    return agent, customer


def posts(page: Any, *actions: str) -> list[str]:
    """The `actions` ("reply", "resolve"...) the console POSTs from now on, by name, in order."""
    sent: list[str] = []
    wanted = re.compile(rf"/({'|'.join(actions)})$")

    def on_request(request: Any) -> None:
        found = wanted.search(request.url) if request.method == "POST" else None
        if found:
            sent.append(found.group(1))

    page.on("request", on_request)
    return sent


def paste(page: Any, text: str, box: str = "reply-text") -> None:
    """Typed in at once, as a paste is (a maxlength would cut it here, as it cuts a paste)."""
    page.locator(f"#{box}").fill("")
    page.locator(f"#{box}").focus()
    page.keyboard.insert_text(text)


def counter(page: Any) -> str:
    return str(page.locator("#reply-count").text_content())


def spoken(page: Any) -> str:
    """What the reply box's live region says (the visible count changes at every key, this one does not)."""
    return str(page.locator("#reply-limit-say").text_content())


def wait_count(page: Any, text: str) -> None:
    page.wait_for_function("t => document.getElementById('reply-count').textContent === t", arg=text)


@pytest.mark.timeout(120)
def test_an_overlong_reply_is_kept_explained_and_sent_once_short_enough(
    server: Server,
    open_page: PageFactory,  # noqa: F811
) -> None:
    agent, customer = claimed(server, open_page, "en-US", "Live")
    box = agent.locator("#reply-text")
    assert box.get_attribute("maxlength") is None  # a maxlength would cut a pasted reply silently
    assert agent.evaluate("async () => (await (await fetch('/api/me')).json()).max_message_chars") == LIMIT
    sent = posts(agent, "reply", "note")

    # Pasted, 12 characters too long: all of it stays in the box, and the line above it says why.
    long_text = "Hello, this is Ana from support: your refund <b>is</b> on " + "its way!!!!!!!"
    assert len(long_text) == LIMIT + 12
    paste(agent, long_text)
    assert box.input_value() == long_text, "cut silently"
    warning = f"12 characters too many (the limit is {LIMIT}). Shorten it or send it in parts."
    wait_count(agent, warning)
    assert agent.locator("#reply-count").is_visible()
    assert "is-full" in str(agent.locator("#reply-count").get_attribute("class"))
    assert box.get_attribute("aria-invalid") == "true"
    assert box.get_attribute("aria-describedby") == "reply-count"
    assert agent.locator("#reply-count").get_attribute("aria-live") is None  # not read at every key
    # Heard once the agent pauses, through its own live region.
    agent.wait_for_function("t => document.getElementById('reply-limit-say').textContent === t", arg=warning)
    # The warning has a line of its own: the Reply / Private note buttons keep theirs.
    modes = [agent.locator(f"#mode-{m}").bounding_box() for m in ("reply", "note")]
    line = agent.locator("#reply-count").bounding_box()
    assert modes[0] and modes[1] and line
    assert modes[1]["height"] == modes[0]["height"]
    assert line["y"] >= modes[0]["y"] + modes[0]["height"]
    shot(agent, "agent-reply-too-long")

    # Enter and Send do not send it, and do not cut it.
    box.press("Enter")
    agent.locator("#reply-send").click()
    agent.wait_for_timeout(400)
    assert sent == []
    assert box.input_value() == long_text
    assert agent.locator("#transcript .msg-agent").count() == 0
    assert spoken(agent) == warning  # said again on Send
    assert agent.evaluate("() => document.getElementById('reply-send').style.opacity") == "0.5"
    assert agent.locator("#reply-send").is_enabled()  # dimmed, not disabled: pressed, it says why

    # One character too many: said in the singular.
    box.press("End")
    for _ in range(11):
        box.press("Backspace")
    wait_count(agent, f"1 character too many (the limit is {LIMIT}). Shorten it or send it in two parts.")

    # Exactly at the limit: the count, the box valid again, and it goes, whole.
    box.press("Backspace")
    wait_count(agent, f"{LIMIT} / {LIMIT}")
    assert box.get_attribute("aria-invalid") is None
    assert agent.evaluate("() => document.getElementById('reply-send').style.opacity") == ""
    agent.wait_for_function("() => document.getElementById('reply-limit-say').textContent === ''")
    fitting = long_text[:LIMIT]
    box.press("Enter")
    agent.locator("#transcript .msg-agent .msg-text", has_text=fitting).wait_for()
    assert agent.locator("#transcript .msg-agent .msg-text").inner_text() == fitting
    customer.locator(".relevo-log .relevo-from-agent .relevo-text", has_text=fitting[:40]).wait_for()
    assert sent == ["reply"]
    agent.locator("#reply-count").wait_for(state="hidden")
    assert box.input_value() == ""

    # A private note, the same box: kept and not sent over the limit either.
    agent.locator("#mode-note").click()
    paste(agent, "Customer is VIP; " + "n" * LIMIT)
    wait_count(agent, f"17 characters too many (the limit is {LIMIT}). Shorten it or send it in parts.")
    agent.locator("#reply-send").click()
    agent.wait_for_timeout(400)
    assert len(sent) == 1
    assert agent.locator("#ctx-notes .note-text").count() == 0
    assert box.input_value() == "Customer is VIP; " + "n" * LIMIT
    assert agent.problems == []


@pytest.mark.timeout(120)
def test_emoji_count_once_as_the_server_counts_and_the_warning_is_spanish(
    server: Server,
    open_page: PageFactory,  # noqa: F811
) -> None:
    agent, customer = claimed(server, open_page, "es-ES", "En directo")
    box = agent.locator("#reply-text")
    sent = posts(agent, "reply", "note")

    # LIMIT emoji: 2 × LIMIT for JavaScript's .length, LIMIT for the server. It fits and goes.
    emoji = "😀" * LIMIT
    assert agent.evaluate("t => t.length", emoji) == 2 * LIMIT
    paste(agent, emoji)
    assert box.input_value() == emoji
    wait_count(agent, f"{LIMIT} / {LIMIT}")
    assert box.get_attribute("aria-invalid") is None
    box.press("Enter")
    agent.locator("#transcript .msg-agent .msg-text", has_text=emoji).wait_for()
    assert len(sent) == 1
    customer.locator(".relevo-log .relevo-from-agent .relevo-text", has_text=emoji).wait_for()

    # One emoji more is one character too many, said in Spanish, and it is not sent.
    paste(agent, "😀" * (LIMIT + 1))
    warning = f"Sobra 1 carácter (el máximo es {LIMIT}). Acórtalo o envíalo en dos partes."
    wait_count(agent, warning)
    agent.locator("#reply-send").click()
    agent.wait_for_function("t => document.getElementById('reply-limit-say').textContent === t", arg=warning)
    assert len(sent) == 1
    assert box.input_value() == "😀" * (LIMIT + 1)

    paste(agent, "ñ" * (LIMIT + 3))
    wait_count(agent, f"Sobran 3 caracteres (el máximo es {LIMIT}). Acórtalo o envíalo en varias partes.")
    assert agent.locator("#transcript .msg-agent").count() == 1
    assert agent.problems == []


def note_state(page: Any, which: str) -> dict[str, Any]:
    """A note input and its count, read at once."""
    return dict(page.evaluate(
        """id => { const i = document.getElementById(id), c = document.getElementById(id + '-count');
                   return { value: i.value, maxlength: i.getAttribute('maxlength'),
                            invalid: i.getAttribute('aria-invalid'), count: c.textContent, shown: !c.hidden,
                            focused: document.activeElement === i }; }""",
        f"{which}-note",
    ))


@pytest.mark.timeout(120)
def test_an_overlong_action_note_is_kept_explained_and_not_sent(
    server: Server,
    open_page: PageFactory,  # noqa: F811
) -> None:
    agent, _customer = claimed(server, open_page, "en-US", "Live")
    agent.on("dialog", lambda d: d.accept())
    sent = posts(agent, "transfer", "escalate", "resolve")
    # Pasted 5 over the limit the server puts on notes (max_message_chars, as replies): all of it stays.
    note = "Refund approved by the manager, see ticket " + "x" * (LIMIT + 5 - 43)
    assert len(note) == LIMIT + 5
    for which in ("transfer", "escalate", "resolve"):
        paste(agent, note, f"{which}-note")
        seen = note_state(agent, which)
        assert seen["maxlength"] is None and seen["value"] == note, seen  # nothing cut
        assert seen["shown"] and seen["invalid"] == "true", seen
        assert seen["count"] == f"The note is 5 characters too long (the limit is {LIMIT}). Shorten it to go on."
    # Resolve refuses it, says why in the alert line, and keeps the text and the keyboard there.
    agent.locator("#resolve-btn").click()
    agent.locator("#flash", has_text="The note is 5 characters too long").wait_for()
    agent.wait_for_timeout(300)
    seen = note_state(agent, "resolve")
    assert sent == [] and seen["value"] == note and seen["focused"], (sent, seen)
    agent.locator("#transfer-btn").click()
    agent.wait_for_timeout(300)
    assert sent == [] and note_state(agent, "transfer")["value"] == note

    # Near the limit: the count; at it, it goes, whole.
    paste(agent, note[:LIMIT], "resolve-note")
    seen = note_state(agent, "resolve")
    assert (seen["count"], seen["invalid"]) == (f"{LIMIT} / {LIMIT}", None), seen
    paste(agent, note[: LIMIT // 2], "resolve-note")
    assert not note_state(agent, "resolve")["shown"]  # far from the limit: no count
    paste(agent, note[:LIMIT], "resolve-note")
    agent.locator("#resolve-btn").click()
    agent.locator("#flash", has_text="Resolved.").wait_for()
    assert sent == ["resolve"]
    assert agent.problems == []


@pytest.mark.timeout(120)
def test_an_overlong_escalation_note_is_refused_in_spanish(
    server: Server,
    open_page: PageFactory,  # noqa: F811
) -> None:
    agent, _customer = claimed(server, open_page, "es-ES", "En directo")
    sent = posts(agent, "transfer", "escalate", "resolve")
    paste(agent, "ñ" * (LIMIT + 1), "escalate-note")
    agent.locator("#escalate-btn").click()
    warning = f"La nota tiene 1 carácter de más (el máximo es {LIMIT}). Acórtala para continuar."
    agent.locator("#flash", has_text=warning).wait_for()
    assert note_state(agent, "escalate")["count"] == warning
    assert sent == []
    agent.locator("#escalate-note").press("Backspace")
    agent.locator("#escalate-btn").click()
    agent.locator("#flash", has_text="Escalada.").wait_for()
    assert sent == ["escalate"]
    assert agent.problems == []
