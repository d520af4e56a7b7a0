"""The admin page in Debian's Chromium against a real server and Redis (the fixtures of
test_console_browser): an admin adds an agent, who signs in and changes their own password; a display
name full of markup stays text everywhere it shows."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import PageFactory, Server, assert_inert, shot, sign_in_here, without_refusals

pytestmark = pytest.mark.browser
# The real server, Chromium and its pages, as test_console_browser has them.
server, browser, open_page = console.server, console.browser, console.open_page

MARKUP = "<img src=x onerror=alert(1)>"
PHONE = {"width": 390, "height": 844}
EVE_PASSWORD = "eve's first passphrase"
EVE_NEW_PASSWORD = "eve's own passphrase"


def sign_in_at(page: Any, url: str, name: str, password: str, where: str) -> None:
    page.goto(url + where)
    page.wait_for_url(re.compile(r"/login\?next="))
    sign_in_here(page, name, password)
    page.wait_for_url(re.compile(re.escape(where) + r"$"))


def alerts(page: Any) -> list[str]:
    """Every alert/confirm the page opens; confirms are accepted (Disable asks first)."""
    seen: list[str] = []

    def answer(dialog: Any) -> None:
        seen.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()

    page.on("dialog", answer)
    return seen


@pytest.mark.timeout(150)
def test_an_admin_adds_an_agent_who_signs_in_and_their_markup_name_stays_text(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ada", ("general",), role="admin", display_name="Ada")
    admin = open_page()
    admin_dialogs = alerts(admin)
    sign_in_at(admin, server.url, "ada", console.PASSWORD, "/admin")
    admin.locator('#admin-agents tr[data-name="ada"]').wait_for()

    admin.locator("#add-name").fill("eve")
    admin.locator("#add-display").fill(MARKUP)
    admin.locator("#add-tier").select_option("2")
    admin.locator('#add-departments input[value="general"]').check()
    admin.locator("#add-password").fill(EVE_PASSWORD)
    admin.locator("#add-submit").click()
    admin.locator("#flash", has_text="Added eve.").wait_for()
    row = admin.locator('#admin-agents tr[data-name="eve"]')
    row.wait_for()
    shot(admin, "admin-added")
    # The name as typed, as characters: no element made of it, no script run.
    assert row.locator(".admin-label").inner_text() == MARKUP
    assert row.locator("input[type=text]").input_value() == MARKUP
    assert_inert(admin)
    stored = server.call(server.service.directory.get("eve"))  # type: ignore[union-attr]
    assert (stored.display_name, stored.tier, stored.departments, stored.role) == (MARKUP, 2, ("general",), "agent")

    # The new agent signs in with the password the admin gave, and sees their name as text.
    eve = open_page()
    eve_dialogs = alerts(eve)
    sign_in_at(eve, server.url, "eve", EVE_PASSWORD, "/agent")
    eve.locator("#conn", has_text="Live").wait_for()
    assert eve.locator("#me-name").inner_text() == MARKUP
    assert_inert(eve)
    # An agent has no way to the admin page: no link, and the page refuses them.
    assert eve.locator("#to-supervisor").is_hidden()

    # Eve changes her own password from the console and stays signed in there.
    eve.locator("#change-password").click()
    dialog = eve.locator("#own-password")
    dialog.locator("input").nth(0).fill(EVE_PASSWORD)
    dialog.locator("input").nth(1).fill(EVE_NEW_PASSWORD)
    dialog.locator("input").nth(2).fill(EVE_NEW_PASSWORD)
    dialog.locator(".pw-submit").click()
    eve.locator("#flash", has_text="Password changed.").wait_for()
    assert eve.locator("#own-password").count() == 0
    eve.reload()
    eve.wait_for_url(re.compile(r"/agent$"))  # still signed in: no trip to the login page
    eve.locator("#conn", has_text="Live").wait_for()
    assert server.call(server.service.directory.verify("eve", EVE_NEW_PASSWORD)) is not None  # type: ignore[union-attr]

    # The admin's supervisor view links to the admin page; from there, Eve is disabled and signed out.
    admin.goto(server.url + "/supervisor")
    admin.locator("#to-admin").wait_for()
    admin.locator("#to-admin").click()
    admin.wait_for_url(re.compile(r"/admin$"))
    admin.locator('#admin-agents tr[data-name="eve"] .admin-toggle').click()
    admin.locator("#flash", has_text="eve is disabled: 1 sessions ended").wait_for()
    admin.locator('#admin-agents tr[data-name="eve"] .chip-disabled').wait_for()
    assert admin_dialogs == ["confirm: Disable eve? They are signed out everywhere at once and their API tokens "
                             "stop working."]  # fmt: skip
    eve.reload()
    eve.wait_for_url(re.compile(r"/login\?next="))
    assert eve_dialogs == []  # never an alert(1)
    assert without_refusals(admin.problems) == [] and without_refusals(eve.problems) == []


@pytest.mark.timeout(120)
def test_a_supervisor_made_an_agent_loses_the_supervisor_view_under_an_open_page(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ada", ("general",), role="admin", display_name="Ada")
    server.add_agent("sue", ("general",), role="supervisor", display_name="Sue")
    sue = open_page()
    sign_in_at(sue, server.url, "sue", console.PASSWORD, "/supervisor")
    sue.locator("#conn", has_text="Live").wait_for()

    admin = open_page()
    sign_in_at(admin, server.url, "ada", console.PASSWORD, "/admin")
    row = admin.locator('#admin-agents tr[data-name="sue"]')
    row.locator("select").first.select_option("agent")
    row.locator(".admin-save").click()
    admin.locator("#flash", has_text="Saved sue.").wait_for()

    # Within one sign-in check (10 s) her socket closes with 4409 and the page loads again: refused now.
    sue.get_by_role("heading", name="Not for your role").wait_for(timeout=30_000)
    assert sue.url.endswith("/supervisor")
    sue.get_by_role("link", name="Back to the agent console").click()
    sue.wait_for_url(re.compile(r"/agent$"))
    sue.locator("#conn", has_text="Live").wait_for()


def login_status(url: str, name: str, password: str) -> int:
    """The status of one POST /api/login from the test (its own address's failures count, as anyone's)."""
    request = urllib.request.Request(
        url + "/api/login", data=json.dumps({"name": name, "password": password}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def cards_in_view(page: Any) -> dict[str, Any]:
    """The agents table on a phone, read at once: whether anything sticks out to the right."""
    return dict(page.evaluate(
        """() => {
          const table = document.getElementById('admin-agents');
          const wrap = table.parentElement;
          const width = document.documentElement.clientWidth;
          const out = Array.from(table.querySelectorAll('td, button, input, select'))
            .filter(n => n.getBoundingClientRect().right > width + 1)
            .map(n => n.className || n.tagName);
          const labels = Array.from(table.tBodies[0].rows[0].cells).map(c => c.getAttribute('data-label'));
          return { page: document.documentElement.scrollWidth, width, wrap: wrap.scrollWidth - wrap.clientWidth,
                   out, labels, display: getComputedStyle(table.tBodies[0].rows[0]).display };
        }"""
    ))


@pytest.mark.timeout(150)
def test_on_a_phone_the_admin_sees_agents_as_cards_and_unlocks_a_locked_out_agent(
    server: Server, open_page: PageFactory
) -> None:
    server.add_agent("ada", ("general",), role="admin", display_name="Ada")
    server.add_agent("ana", ("general", "billing"), display_name="Maximiliana " + "W" * 88)
    for _ in range(5):
        assert login_status(server.url, "ana", "wrong password") == 401
    assert login_status(server.url, "ana", console.PASSWORD) == 429

    admin = open_page(viewport=PHONE)
    sign_in_at(admin, server.url, "ada", console.PASSWORD, "/admin")
    row = admin.locator('#admin-agents tr[data-name="ana"]')
    row.wait_for()
    # Each agent a card, every value under its heading, nothing off to the right of a 390 px screen.
    seen = cards_in_view(admin)
    assert seen["display"] == "block", seen
    assert seen["page"] <= seen["width"] and seen["wrap"] <= 0 and seen["out"] == [], seen
    assert seen["labels"] == ["Agent", "Display name", "Role", "Tier", "Departments", "Capacity", "Actions"]
    shot(admin, "admin-phone-cards")

    # Ana's name is locked out by wrong passwords: said on her card, with an Unlock there.
    assert row.locator(".chip-locked").inner_text() == "locked out"
    assert admin.locator('#admin-agents tr[data-name="ada"] .admin-unlock').count() == 0
    row.locator(".admin-unlock").click()
    admin.locator("#flash", has_text="ana can sign in again at once.").wait_for()
    row.locator(".chip-locked").wait_for(state="detached")
    assert row.locator(".admin-unlock").count() == 0
    assert login_status(server.url, "ana", console.PASSWORD) == 200  # the same password, at once
    assert without_refusals(admin.problems) == []


def test_the_lockout_and_unlock_are_said_in_spanish(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ada", ("general",), role="admin", display_name="Ada")
    server.add_agent("ana", ("general",))
    for _ in range(5):
        login_status(server.url, "ana", "wrong password")
    admin = open_page(locale="es-ES")
    sign_in_at(admin, server.url, "ada", console.PASSWORD, "/admin")
    row = admin.locator('#admin-agents tr[data-name="ana"]')
    row.locator(".chip-locked").wait_for()
    assert admin.evaluate(
        """() => { const r = document.querySelector('#admin-agents tr[data-name="ana"]');
                   return [r.querySelector('.chip-locked').textContent, r.querySelector('.admin-unlock').textContent,
                           r.cells[0].getAttribute('data-label')]; }"""
    ) == ["bloqueado", "Desbloquear", "Agente"]
    row.locator(".admin-unlock").click()
    admin.locator("#flash", has_text="ana ya puede volver a entrar.").wait_for()
    # The login page tells whoever is locked out to ask an administrator, who can lift it here.
    page = open_page(locale="es-ES")
    for _ in range(5):
        login_status(server.url, "ana", "wrong password")
    page.goto(server.url + "/login?next=/agent")
    sign_in_here(page, "ana", console.PASSWORD)
    page.locator("#login-error", has_text="Demasiados intentos").wait_for()
    assert page.locator("#login-error").inner_text() == (
        "Demasiados intentos. Vuelve a probar dentro de 15 minutos o pide a un administrador que desbloquee tu nombre.")
    assert without_refusals(admin.problems) == []
