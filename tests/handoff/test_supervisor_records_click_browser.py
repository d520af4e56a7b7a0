"""The supervisor's records table in Debian's Chromium, against a real server, Redis and widget: a click
anywhere on a row opens its record (a reason badge, an agent's name, a plain cell), and the "When" button
still opens it from the keyboard."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff.agents import Agent
from tests.handoff import test_console_browser as console
from tests.handoff.test_console_browser import (
    ASK_PERSON,
    PHONE,
    PageFactory,
    Server,
    customer_says,
    log_in,
    open_widget,
    shot,
)

# The browser suite's fixtures: a real server on 127.0.0.1 with Redis, Debian's Chromium, pages.
server = console.server
browser = console.browser
open_page = console.open_page

pytestmark = pytest.mark.browser


def handed_over_and_resolved(server: Server, open_page: PageFactory, agent: Agent) -> str:
    """A customer on the widget asks for a person; `agent` takes it and resolves it. Its conversation id."""
    customer = open_page(viewport=PHONE, locale="es-ES")
    open_widget(customer, server.url)
    customer_says(customer, ASK_PERSON)
    service = server.service
    assert service is not None
    claimed = server.call(_claim_when_queued(service, agent))
    server.call(service.resolve(agent, claimed, "solved"))
    assert customer.problems == [], customer.problems
    customer.context.close()
    return str(claimed)


async def _claim_when_queued(service: Any, agent: Agent) -> str:
    for _ in range(250):  # the escalation lands in the queue just after the widget shows the notice
        claimed = await service.claim(agent)
        if claimed:
            return str(claimed)
        await asyncio.sleep(0.02)
    raise AssertionError("the conversation never reached the queue")


def opened(page: Any, conversation_id: str) -> None:
    """The record of this row is the one open: its row marked, the detail shown."""
    page.locator(f'.record-row.is-current[data-conversation="{conversation_id}"]').wait_for()
    assert page.locator("#detail-body").is_visible()
    assert page.locator(".record-row.is-current").count() == 1


def test_a_click_anywhere_on_a_record_row_opens_it(server: Server, open_page: PageFactory) -> None:
    server.add_agent("ana", ("general",))
    server.add_agent("sara", ("general",), role="supervisor")
    service = server.service
    assert service is not None
    ana = server.call(service.directory.get("ana"))
    first = handed_over_and_resolved(server, open_page, ana)
    second = handed_over_and_resolved(server, open_page, ana)

    page = open_page()
    log_in(page, server.url, "sara", "/supervisor")
    rows = page.locator("#records-table tbody tr.record-row")
    rows.nth(1).wait_for()
    assert rows.count() == 2
    row = {c: page.locator(f'.record-row[data-conversation="{c}"]') for c in (first, second)}

    # The reason badge ("asked for a person"): a list item inside the cell, not the cell itself.
    badge = row[first].locator(".badges li").first
    assert badge.inner_text().strip()
    badge.click()
    opened(page, first)
    # The agent's name, in bold inside the agents' cell.
    name = row[second].locator(".agents-cell strong")
    assert name.inner_text() == "ana"
    name.click()
    opened(page, second)
    # A plain cell still opens it, as before.
    row[first].locator("td").nth(2).click()
    opened(page, first)
    shot(page, "supervisor-records-click")

    # From the keyboard: the "When" button of a row, focused and pressed.
    page.locator("#detail-close").click()
    assert page.locator("#detail-body").is_hidden()
    when = row[second].locator(".link-button")
    when.focus()
    page.keyboard.press("Enter")
    opened(page, second)
    when = row[first].locator(".link-button")
    when.focus()
    page.keyboard.press("Space")
    opened(page, first)
    assert page.problems == [], page.problems
