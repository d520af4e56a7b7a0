"""The escalation records of the supervisor view: filters, metrics, CSV, one row, the bot's figures."""

from __future__ import annotations

import csv
import io
import re
import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from bot import stats as bot_stats
from handoff import audit, keys
from handoff.api.errors import ApiError
from handoff.api.handoffs import split_handoffs, summarise
from handoff.api.state import api_state
from handoff.api.views import conversation_view
from handoff.service import HandoffService

RECORDS_LIMIT = 500
RECORDS_MAX = 5000
AUDIT_READ_MAX = 200_000


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ApiError(400, "bad_request", f"'{name}' must be a date like 2026-01-31") from None
    # Years 1970..9998: the records are stream ids in ms since 1970, and a day after 9999-12-31 has no
    # datetime; outside, the answer would be a 500, not "no records".
    if not 1970 <= day.year <= 9998:
        raise ApiError(400, "bad_request", f"'{name}' must be a date between 1970-01-01 and 9998-12-31")
    return day


def _day_ms(text: str, name: str, end: bool = False, zone: tzinfo = UTC) -> int | None:
    day = _day(text, name)
    if day is None:
        return None
    start = datetime(day.year, day.month, day.day, tzinfo=zone) + (timedelta(days=1) if end else timedelta())
    return max(0, int(start.timestamp() * 1000) - (1 if end else 0))


def _zone(name: str) -> tzinfo:
    """The supervisor's time zone (IANA name, e.g. America/Mexico_City): days are theirs. Default UTC."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name[:64])
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, "bad_request", "'tz' must be a time zone like Europe/Madrid") from None


@dataclass(frozen=True)
class RecordFilter:
    start: int | None
    end: int | None
    department: str
    tier: int | None
    reason: str
    agent: str
    outcome: str
    limit: int
    customer: str = ""  # part of the customer's name, e-mail address or conversation id

    @classmethod
    def from_query(cls, q: Any) -> RecordFilter:
        tier = q.get("tier", "")
        limit = q.get("limit", "")
        if (tier and not tier.isdigit()) or (limit and not limit.isdigit()):
            raise ApiError(400, "bad_request", "tier and limit are whole numbers")
        zone = _zone(q.get("tz", ""))
        return cls(
            _day_ms(q.get("from", ""), "from", zone=zone), _day_ms(q.get("to", ""), "to", end=True, zone=zone),
            q.get("department", "")[:100], int(tier) if tier else None, q.get("reason", "")[:100],
            q.get("agent", "")[:100], q.get("outcome", "")[:100],
            min(int(limit), RECORDS_MAX) if limit else RECORDS_LIMIT, q.get("customer", "").strip()[:100],
        )  # fmt: skip


def records_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of a set of records: how many, how they ended, the median wait for a person and the
    median handling time, the average rating."""
    waits = [r["wait_s"] for r in rows if r.get("wait_s") is not None]
    handles = [r["handle_s"] for r in rows if r.get("handle_s") is not None]
    ratings = [r["rating"] for r in rows if r.get("rating")]
    return {
        "handoffs": len(rows),
        "solved": sum(1 for r in rows if r["outcome"] == "solved"),
        "abandoned": sum(1 for r in rows if r["outcome"] == "abandoned"),
        "open": sum(1 for r in rows if not r["outcome"]),
        "median_wait_s": int(statistics.median(waits)) if waits else None,
        "median_handle_s": int(statistics.median(handles)) if handles else None,
        "rating_avg": round(sum(ratings) / len(ratings), 2) if ratings else None,
        "rated": len(ratings),
    }


async def collect_records(service: HandoffService, f: RecordFilter) -> list[dict[str, Any]]:
    start = f"{f.start}-0" if f.start is not None else "-"
    grouped: dict[str, list[audit.AuditEntry]] = {}
    found = await audit.read_latest(service.redis, start=start, count=AUDIT_READ_MAX)
    for entry in found:
        grouped.setdefault(entry.conversation_id, []).append(entry)
    # Past the bound, the oldest handoffs read may have lost their start: those rows are left out rather
    # than shown without their queue, wait or reasons.
    cut = len(found) >= AUDIT_READ_MAX
    rows = []
    agents = await _agent_names(service, f.agent)
    for cid, handoff in ((c, h) for c, entries in grouped.items() for h in split_handoffs(entries)):
        if cut and handoff[0].event != "queued":
            continue
        row = summarise(cid, handoff)
        if f.end is not None and row["ts"] > f.end:
            continue
        if (f.department and row["department"] != f.department) or (f.tier and row["tier"] != f.tier):
            continue
        if (f.reason and f.reason not in row["reasons"]) or (agents and agents.isdisjoint(row["agents"])):
            continue
        if f.outcome and row["outcome"] != f.outcome:
            continue
        rows.append(row)
    rows.sort(key=lambda r: r["ts"], reverse=True)
    if f.customer:
        wanted = f.customer.casefold()
        await with_customers(service, rows)
        rows = [r for r in rows if wanted in f"{r['customer']}\n{r['email']}\n{r['conversation_id']}".casefold()]
    return rows  # every match: the figures are of all of them, the list shows the newest f.limit


CUSTOMER_BATCH = 1000


async def with_customers(service: HandoffService, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its customer's name and e-mail address as the conversation has them now ("" once
    the conversation is deleted: the record keeps no personal data of its own). Read in pipelines, and
    only for the rows that lack them: the table reads its shown rows, a customer filter all of them."""
    todo = [r for r in rows if "customer" not in r]
    for i in range(0, len(todo), CUSTOMER_BATCH):
        batch = todo[i : i + CUSTOMER_BATCH]
        async with service.redis.pipeline(transaction=False) as pipe:
            for r in batch:
                pipe.hmget(keys.conv(r["conversation_id"]), "customer", "key", "email")
            found = await pipe.execute()
        for r, (customer, key, email) in zip(batch, found, strict=True):
            # As the console names them: a web visitor without a name by their widget session ("web:…").
            r["customer"], r["email"] = customer or key or "", email or ""
    return rows


async def _agent_names(service: HandoffService, wanted: str) -> frozenset[str]:
    """Login names an agent filter means: "Tom", "tom", "Ruiz" and the display name "Tom Ruiz" all find tom. A
    row matches when any of these had the conversation at some point (its "agents"), not only the last."""
    wanted = wanted.strip().casefold()
    if not wanted:
        return frozenset()
    # Part of a name is enough ("Lena" for "Lena Lead", "bil" for bill): the box is typed, not picked.
    found = {a.name for a in await service.directory.all() if wanted in f"{a.name}\n{a.label}".casefold()}
    return frozenset(found | {wanted})


async def bot_figures(request: web.Request) -> web.StreamResponse:
    """The bot's own figures over a period of UTC days (default: the last 30): conversations, answers,
    "did this help?", not understood, handed to a person, and the shares contained and found helpful."""
    first = _day(request.query.get("from", ""), "from")
    last = _day(request.query.get("to", ""), "to") or datetime.now(UTC).date()
    first = first or last - timedelta(days=29)
    try:
        found = await bot_stats.read(api_state(request).service.redis, first, last)
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    return web.json_response(found)


async def records(request: web.Request) -> web.StreamResponse:
    f = RecordFilter.from_query(request.query)
    service = api_state(request).service
    found = await collect_records(service, f)
    shown = await with_customers(service, found[: f.limit])
    return web.json_response({"records": shown, "metrics": records_metrics(found)})


# A formula character at the start of the text or after a separator: a spreadsheet whose list separator
# differs from the file's (';' in Spanish, German or French Excel) may split a cell there.
_FORMULA_AT = re.compile(r"^(?=[=+\-@\t\r])|(?<=[;,\t\r\n])(?=[=+\-@])")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula, however it splits the line: a "'" before each
    formula character that could begin a cell."""
    text = "" if value is None else str(value)
    return _FORMULA_AT.sub("'", text)


CSV_BOM = "\ufeff"
# agent: the last one who had it; agents: everyone who had it, in order (what the agent filter matches).
CSV_COLUMNS = ("conversation_id", "ts", "department", "tier", "reasons", "agent", "agents", "outcome", "rating",
               "comment", "events", "claimed_at", "ended_at", "wait_s", "handle_s", "customer", "email")  # fmt: skip


def _iso(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds") if ms else ""


def records_csv_text(rows: list[dict[str, Any]]) -> str:
    """The records as CSV for a spreadsheet. Every cell is quoted: Excel in a locale whose list separator
    is ';' (Spanish, German, French) splits an unquoted "great;=1+1" into a cell that runs as a formula."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        values = {**row, "ts": _iso(row["ts"]), "reasons": ";".join(row["reasons"]), "agents": ";".join(row["agents"]),
                  "claimed_at": _iso(row.get("claimed_at")), "ended_at": _iso(row.get("ended_at"))}
        writer.writerow([safe_cell(values.get(c)) for c in CSV_COLUMNS])
    # The byte order mark tells Excel the file is UTF-8 (without it, "Facturación" opens as mojibake).
    return CSV_BOM + out.getvalue()


async def records_csv(request: web.Request) -> web.StreamResponse:
    f = RecordFilter.from_query(request.query)
    service = api_state(request).service
    found = await with_customers(service, (await collect_records(service, f))[: f.limit])
    response = web.Response(text=records_csv_text(found), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="relevo-records.csv"'
    return response


async def record_detail(request: web.Request) -> web.StreamResponse:
    """One row of the records: its handoff's timeline, queue, outcome and rating (`handoff`, the row's
    id; without it the latest handoff), with the whole conversation's transcript and notes. A
    conversation handed over again after it ended has a row per handoff (`handoffs`, oldest first)."""
    service, cid = api_state(request).service, request.match_info["id"]
    wanted = request.query.get("handoff", "")
    conv = await service.conversations.get(cid)
    entries = await audit.history(service.redis, cid, since_ms=conv.created if conv is not None else 0)
    if not entries and conv is None:
        raise ApiError(404, "not_found", "no such conversation")
    view = await conversation_view(service, cid)
    parts = [h for h in split_handoffs(entries) if h]
    chosen = next((h for h in parts if h[0].id == wanted), None) if wanted else (parts[-1] if parts else [])
    if chosen is None:
        raise ApiError(404, "not_found", "no such handoff in this conversation")
    timeline = [
        {"ts": e.ts, "event": e.event, "actor": e.actor, "from": e.from_, "to": e.to,
         "reasons": list(e.reasons), "outcome": e.outcome, "detail": e.detail}
        for e in chosen
    ]  # fmt: skip
    row = summarise(cid, chosen) if chosen else None
    if row is not None:
        # The queue it is in, or ended in, as the record's row says (a handoff transferred and escalated
        # is no longer in the queue its handoff record started in); that one stays in record.department.
        if row["department"]:
            view["department"], view["tier"] = row["department"], row["tier"]
        # This handoff's rating, as its row has it: the conversation's own is only its latest handoff's.
        has_rating = row["rating"] is not None or row["comment"]
        view["rating"] = {"score": row["rating"], "comment": row["comment"]} if has_rating else None
        view["outcome"] = row["outcome"]
        if chosen is not parts[-1]:
            view["agent"] = None  # who has it now is of a later handoff
            record = view["record"]
            if record is not None and record.get("created_at", 0) > chosen[-1].ts:
                view["record"] = None  # the summary kept is of a later handoff; the row has the reasons
    handoffs = [{"handoff": h[0].id, "ts": h[0].ts, "outcome": summarise(cid, h)["outcome"]} for h in parts]
    return web.json_response({"timeline": timeline, "conversation": view, "handoff": row, "handoffs": handoffs})
