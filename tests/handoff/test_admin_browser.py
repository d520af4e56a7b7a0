"""The admin page in Debian's Chromium against a real server and Redis (the fixtures of
test_console_browser): an admin adds an agent, who signs in and changes their own password; a display
name full of markup stays text everywhere it shows."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import PageFactory, Server, assert_inert, shot, sign_in_here, without_refusals

pytestmark = pytest.mark.browser
# The real server, Chromium and its pages, as test_console_browser has them.
server, browser, open_page = console.server, console.browser, console.open_page

MARKUP = "<img src=x onerror=alert(1)>"
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
