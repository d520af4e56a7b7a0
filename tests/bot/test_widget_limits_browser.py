"""The widget and over-long messages, in Debian's Chromium: a count near the limit, a clear warning over
it, nothing sent and nothing cut until the customer shortens it, counted as the server counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

# The real server and the browser page, as the other widget tests start them.
from tests.bot.test_widget_browser import (  # noqa: F401
    PHONE,
    bot_messages,
    chromium,
    open_chat,
    page,
    relevo_env,
    relevo_servers,
    relevo_url,
)

pytestmark = pytest.mark.browser

LIMIT = 50
SMALL_LIMIT = {"RELEVO_SERVER_MAX_MESSAGE_CHARS": str(LIMIT)}


def count_sent_messages(tab: Any) -> list[str]:
    """Record the text of every `message` frame the widget sends."""
    sent: list[str] = []

    def on_socket(ws: Any) -> None:
        def on_frame(payload: str | bytes) -> None:
            try:
                frame = json.loads(payload)
            except ValueError:
                return
            if isinstance(frame, dict) and frame.get("type") == "message":
                sent.append(frame.get("text"))

        ws.on("framesent", on_frame)

    tab.on("websocket", on_socket)
    return sent


def spoken(tab: Any) -> str:
    """What the limit's live region says (the visible line changes at every key, this one does not)."""
    return str(tab.locator(".relevo-form [aria-live]").text_content())


@pytest.mark.parametrize("relevo_env", [SMALL_LIMIT])
def test_an_overlong_paste_is_kept_explained_and_sent_once_short_enough(page: Any, relevo_url: str) -> None:  # noqa: F811
    sent = count_sent_messages(page)
    open_chat(page, relevo_url, "es")
    box = page.locator(".relevo-input")
    limit = page.locator(".relevo-limit")

    # Pasted, 10 characters too long: all of it stays in the box, shown as text.
    long_text = "Hola, <b>mi pedido</b> llegó roto y " + "y" * 24
    assert len(long_text) == LIMIT + 10
    box.focus()
    page.keyboard.insert_text(long_text)
    assert box.input_value() == long_text, "cut silently"
    warning = "Sobran 10 caracteres (el máximo es 50). Acorta el mensaje o envíalo en varias partes."
    page.wait_for_function("t => document.querySelector('.relevo-limit')?.textContent === t", arg=warning)
    assert limit.is_visible()
    assert box.get_attribute("aria-invalid") == "true"
    assert box.get_attribute("aria-describedby") == limit.get_attribute("id")
    assert "relevo-send-blocked" in str(page.locator(".relevo-send").get_attribute("class"))
    assert page.locator(".relevo-limit b, .relevo-form b").count() == 0

    # Enter and Send do not send it, do not cut it, and say why (to screen readers too).
    box.press("Enter")
    page.wait_for_function("t => document.querySelector('.relevo-form [aria-live]').textContent === t", arg=warning)
    page.locator(".relevo-send").click()
    page.wait_for_timeout(500)
    assert spoken(page) == warning
    assert page.locator(".relevo-log .relevo-from-customer").count() == 0
    assert box.input_value() == long_text
    assert page.evaluate("() => document.activeElement.className") == "relevo-input"
    assert sent == []

    # Still usable on a phone: the warning, the box and Send fit the screen, the log keeps room.
    for selector in (".relevo-limit", ".relevo-input", ".relevo-send"):
        shape = page.locator(selector).bounding_box()
        assert shape is not None and shape["x"] >= 0 and shape["x"] + shape["width"] <= PHONE["width"], selector
        assert shape["y"] + shape["height"] <= PHONE["height"], selector
    log = page.locator(".relevo-log").bounding_box()
    assert log is not None and log["height"] > 200
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]

    # Shorter: a count near the limit, nothing far from it.
    box.fill("x" * 45)
    page.wait_for_function("() => document.querySelector('.relevo-limit').textContent === 'Quedan 5 caracteres'")
    assert box.get_attribute("aria-invalid") is None
    box.fill("x" * 49)
    page.wait_for_function("() => document.querySelector('.relevo-limit').textContent === 'Queda 1 carácter'")
    box.fill("x" * 20)
    limit.wait_for(state="hidden")
    assert box.get_attribute("aria-describedby") is None

    # Shortened to the limit: it is sent, whole.
    box.fill(long_text[:LIMIT])
    page.wait_for_function("() => document.querySelector('.relevo-limit').textContent === 'Quedan 0 caracteres'")
    assert "relevo-send-blocked" not in str(page.locator(".relevo-send").get_attribute("class"))
    box.press("Enter")
    mine = page.locator(".relevo-log .relevo-from-customer")
    mine.wait_for()
    page.wait_for_function("() => document.querySelector('.relevo-from-customer .relevo-tick').textContent === '✓'")
    assert mine.locator(".relevo-text").inner_text() == long_text[:LIMIT]
    assert page.locator(".relevo-log b").count() == 0
    assert box.input_value() == ""
    assert limit.is_hidden()
    assert sent == [long_text[:LIMIT]]
    assert box.get_attribute("maxlength") is None  # a maxlength would cut a pasted text silently
    assert page.problems == []


@pytest.mark.parametrize("relevo_env", [SMALL_LIMIT])
def test_emoji_count_as_the_server_counts_them(page: Any, relevo_url: str) -> None:  # noqa: F811
    open_chat(page, relevo_url, "en")
    box = page.locator(".relevo-input")
    limit = page.locator(".relevo-limit")

    # 50 emoji are 100 UTF-16 units but 50 characters for the server: they fit exactly.
    box.fill("🙂" * LIMIT)
    assert box.input_value() == "🙂" * LIMIT
    page.wait_for_function("() => document.querySelector('.relevo-limit')?.textContent === '0 characters left'")
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('.relevo-from-customer .relevo-tick')?.textContent === '✓'")
    assert page.locator(".relevo-log .relevo-from-customer .relevo-text").inner_text() == "🙂" * LIMIT
    assert limit.is_hidden()
    assert page.locator(".relevo-log .relevo-failed").count() == 0

    # 51 are one too many.
    box.fill("🙂" * (LIMIT + 1))
    over = "1 character too many (the limit is 50). Please shorten your message or send it in parts."
    page.wait_for_function("t => document.querySelector('.relevo-limit').textContent === t", arg=over)
    box.press("Enter")
    page.wait_for_timeout(300)
    assert page.locator(".relevo-log .relevo-from-customer").count() == 1
    assert box.input_value() == "🙂" * (LIMIT + 1)
    box.press("Backspace")
    page.wait_for_function("() => document.querySelector('.relevo-limit').textContent === '0 characters left'")
    assert page.problems == []


@pytest.mark.parametrize("relevo_env", [SMALL_LIMIT])
def test_a_message_the_server_refuses_as_too_long_comes_back_to_the_box(page: Any, relevo_url: str) -> None:  # noqa: F811
    # Typed before a reload, when the limit was higher: it waits in localStorage and is sent on connecting.
    host = relevo_url.split("://", 1)[1]
    text = "z" * (LIMIT + 12)
    pending = json.dumps([{"id": "typed-before", "type": "message", "text": text}])
    page.add_init_script(
        f"""if (location.host === {json.dumps(host)} && !sessionStorage.getItem('seeded')) {{
              sessionStorage.setItem('seeded', '1');
              localStorage.setItem('relevo:{host}:pending', {json.dumps(pending)});
              localStorage.setItem('relevo:{host}:open', '1');
            }}"""
    )
    page.goto(relevo_url + "/?lang=es")
    bot_messages(page).first.wait_for()
    page.wait_for_function(
        "() => document.querySelector('.relevo-input').value || document.querySelector('.relevo-failed')"
    )
    assert page.locator(".relevo-input").input_value() == text  # not lost
    warning = "Sobran 12 caracteres (el máximo es 50). Acorta el mensaje o envíalo en varias partes."
    page.wait_for_function("t => document.querySelector('.relevo-limit').textContent === t", arg=warning)
    box = page.locator(".relevo-input")
    assert page.locator(".relevo-log .relevo-from-customer").count() == 0
    assert page.evaluate(f"() => localStorage.getItem('relevo:{host}:pending')") is None

    box.fill(text[:LIMIT])
    box.press("Enter")
    page.wait_for_function("() => document.querySelector('.relevo-from-customer .relevo-tick')?.textContent === '✓'")
    assert page.locator(".relevo-log .relevo-from-customer .relevo-text").inner_text() == text[:LIMIT]
    assert page.problems == []


@pytest.mark.parametrize("relevo_env", [SMALL_LIMIT])
def test_a_message_with_nothing_visible_is_not_sent(page: Any, relevo_url: str) -> None:  # noqa: F811
    sent = count_sent_messages(page)
    open_chat(page, relevo_url, "en")
    box = page.locator(".relevo-input")
    # Zero-width space, word joiner, BOM, blank braille: the server would refuse it as empty.
    for nothing in ("\u200b\u2060", "\ufeff \u2800", " \n "):
        box.fill(nothing)
        box.press("Enter")
    page.wait_for_timeout(300)
    assert sent == [] and page.locator(".relevo-log .relevo-from-customer").count() == 0
    # A visible character with a zero-width joiner in it is a message.
    box.fill("👍\u200d")
    box.press("Enter")
    page.locator(".relevo-log .relevo-from-customer").first.wait_for()
    assert sent == ["👍\u200d"] and page.locator(".relevo-log .relevo-failed").count() == 0
    assert page.problems == []
