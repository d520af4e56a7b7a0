"""The login page telling a disabled agent why, and the supervisor's agents on a phone, in Debian's
Chromium against a real server and Redis (the fixtures of test_console_browser)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.bot.test_agent_cli import relevo
from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import DESKTOP, PASSWORD, PageFactory, Server, log_in, shot, sign_in_here

pytestmark = pytest.mark.browser
# The real server, Chromium and its pages, as test_console_browser has them.
server, browser, open_page = console.server, console.browser, console.open_page

PHONE_375 = {"width": 375, "height": 740}
SIGNED_OUT_EN = "You were signed out because this account is disabled; ask an administrator."
DISABLED_EN = "This account is disabled; ask an administrator."
SIGNED_OUT_ES = "Se ha cerrado tu sesión porque esta cuenta está desactivada; pregunta a un administrador."
DISABLED_ES = "Esta cuenta está desactivada; pregunta a un administrador."


def try_login(page: Any, name: str, password: str) -> None:
    sign_in_here(page, name, password)
    page.locator("#login-submit:not([disabled])").wait_for()


def error_text(page: Any) -> str:
    return str(page.locator("#login-error").inner_text())


@pytest.mark.timeout(120)
def test_a_disabled_agent_is_signed_out_to_the_login_page_that_says_why(
    server: Server, open_page: PageFactory, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("handoff.api.live.SESSION_CHECK_S", 1.0)  # the console socket notices within a second
    server.add_agent("ana", ("general",))
    page = open_page()
    log_in(page, server.url, "ana")

    disabled = relevo(redis_url, tmp_path, "disable", "ana")
    assert disabled.returncode == 0 and "1 sessions ended" in disabled.stdout, disabled.stderr
    # The open console finds its sign-in gone and goes to the login page, which says why.
    page.wait_for_url(re.compile(r"/login\?next=%2Fagent&ended$"))
    page.locator("#login-error", has_text=SIGNED_OUT_EN).wait_for()
    shot(page, "login-signed-out-disabled")

    # A wrong password is the generic error; the right one is told the account is disabled.
    try_login(page, "ana", "wrong password")
    assert error_text(page) == "Wrong name or password."
    try_login(page, "ana", PASSWORD)
    assert error_text(page) == DISABLED_EN
    assert "/login" in page.url

    # Someone else's browser (no cookie of Ana's) is told nothing about the account on arrival, and a
    # wrong password stays the generic error, as for a name that does not exist.
    stranger = open_page()
    stranger.goto(server.url + "/login")
    stranger.wait_for_load_state("networkidle")
    assert stranger.locator("#login-error").is_hidden()
    for name in ("ana", "nobody"):
        try_login(stranger, name, "wrong password")
        assert error_text(stranger) == "Wrong name or password."
    assert page.problems == [] or all("Failed to load resource" in p for p in page.problems)


@pytest.mark.timeout(120)
def test_the_reason_is_told_in_the_console_language(
    server: Server, open_page: PageFactory, redis_url: str, tmp_path: Path
) -> None:
    server.add_agent("bea", ("general",))
    page = open_page()
    page.goto(server.url + "/login?lang=es&next=/agent")
    sign_in_here(page, "bea")
    page.wait_for_url(re.compile(r"/agent\?lang=es$"))
    page.locator("#conn", has_text="En directo").wait_for()

    assert relevo(redis_url, tmp_path, "disable", "bea").returncode == 0
    # The next request of that console (here: opening it again, in a tab without ?lang=) goes to
    # the login page in the language the console remembers, with the reason.
    page.goto(server.url + "/agent")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.locator("#login-error", has_text=SIGNED_OUT_ES).wait_for()
    try_login(page, "bea", PASSWORD)
    assert error_text(page) == DISABLED_ES


def test_the_supervisor_agents_table_fits_a_phone(server: Server, open_page: PageFactory) -> None:
    server.add_agent("sara", ("general", "orders", "returns"), role="supervisor",
                     display_name="Sara Fernández de la Concepción")  # fmt: skip
    for i in range(3):
        server.add_agent(f"agent-with-a-long-login-{i}", ("general", "orders", "returns"),
                         display_name=f"María Fernanda de la Cruz {i}")  # fmt: skip
    server.call(server.service.directory.disable("agent-with-a-long-login-2"))  # type: ignore[union-attr]

    page = open_page(viewport=PHONE_375)
    log_in(page, server.url, "sara", "/supervisor")
    rows = page.locator("#agents-table tbody tr")
    rows.nth(3).wait_for()
    shot(page, "supervisor-agents-375")
    sizes = page.evaluate(
        """() => {
          const table = document.getElementById('agents-table'), wrap = table.closest('.table-wrap');
          const cells = Array.from(table.tBodies[0].querySelectorAll('td')).filter(td => td.offsetParent);
          return {
            page: document.documentElement.scrollWidth, wrapScroll: wrap.scrollWidth, wrapWidth: wrap.clientWidth,
            wrapRight: wrap.getBoundingClientRect().right,
            cellRight: Math.max(...cells.map(td => td.getBoundingClientRect().right)),
            cellScroll: Math.max(...cells.map(td => td.scrollWidth - td.clientWidth)),
          };
        }"""
    )
    # Nothing wider than the phone, nothing to scroll sideways in the agents' box: every cell is seen whole.
    assert sizes["page"] <= PHONE_375["width"], sizes
    assert sizes["wrapScroll"] <= sizes["wrapWidth"], sizes
    assert sizes["cellRight"] <= sizes["wrapRight"] + 0.5 and sizes["cellScroll"] <= 0, sizes
    # Each value says what it is: its column's heading as a label.
    presence = rows.nth(1).locator("td").nth(1)
    assert presence.get_attribute("data-label") == "Presence"
    label = page.evaluate("td => getComputedStyle(td, '::before').content", presence.element_handle())
    assert label == '"Presence"'
    assert rows.nth(1).locator("td").nth(0).is_visible() and rows.nth(1).locator("td").nth(4).is_visible()
    assert rows.filter(has_text="María Fernanda de la Cruz 2").locator(".chip-disabled").is_visible()

    # On a desktop it is still a table: headings shown, one line of cells per agent.
    page.set_viewport_size(DESKTOP)
    assert page.locator("#agents-table thead th").first.is_visible()
    # Read in one go: the floor's refresh may re-render the rows between one locator's read and the next.
    tops = page.evaluate(
        """() => Array.from(document.querySelectorAll('#agents-table tbody tr')[1].querySelectorAll('td'))
                   .slice(0, 6).map(td => { const r = td.getBoundingClientRect();
                                            return r.width || r.height ? Math.round(r.y) : null; })"""
    )
    assert len(tops) == 6 and all(y is not None for y in tops)
    assert len(set(tops)) == 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= DESKTOP["width"]
    assert page.problems == []
