/* Relevo supervisor view: the live floor (queues, agents, SLA breaches) and the escalation records,
   filtered, exported as CSV, each opening its timeline and transcript; the questions the bot could not
   answer, grouped, with a draft FAQ file to download. Text only, never HTML. */
(function () {
  "use strict";

  var R = window.RelevoConsole;
  var t = R.t;
  var el = R.el;
  var $ = function (id) { return document.getElementById(id); };

  var FLOOR_POLL_MS = 15000;
  var SHORT_ID = 8;
  var REFRESH_DEBOUNCE_MS = 300;
  var RECORDS_REFRESH_MS = 1000;
  var FILTERS = ["from", "to", "department", "tier", "reason", "agent", "outcome", "customer"];
  var UNANSWERED_DAYS = [1, 7, 30, 90, 365];
  var UNANSWERED_DEFAULT_DAYS = 30; // as `relevo faq unanswered`
  var UNANSWERED_TOP = 50;

  var state = { me: null, departments: [], live: null, open: null, openHandoff: "", query: null };

  function cell(text, cls) { return el("td", cls || null, text == null || text === "" ? t("none") : text); }

  function departmentLabel(name) {
    var d = state.departments.filter(function (x) { return x.name === name; })[0];
    return d ? (d.display_name || d.name) : String(name || "");
  }

  var ratingText = R.ratingText;

  // -- the floor --------------------------------------------------------------------------------------

  /* A 32-character id broken over two lines reads as two ids: its start, whole, and the rest in the
     tooltip (enough to tell a handful apart; the record it opens shows all of it). */
  function idButton(id) {
    var b = R.button(id.length > SHORT_ID ? id.slice(0, SHORT_ID) + "…" : id, "link-button id-button", function () { openRecord(id); });
    b.title = id;
    b.setAttribute("aria-label", id);
    return b;
  }

  /* On a phone a .cards table shows each row as a card (console.css): every cell is labelled with its
     column's heading, as the page's language has it. */
  function cardLabels(table, tr) {
    var heads = table.tHead.rows[0].cells;
    tr.setAttribute("role", "row");
    Array.prototype.forEach.call(tr.cells, function (td, i) {
      td.setAttribute("role", "cell");
      if (heads[i]) { td.setAttribute("data-label", heads[i].textContent); }
    });
  }

  function renderKnowledge(kb) {
    var box = $("kb-problem");
    var key = kb && { stale: "kbStale", empty: "kbEmpty", misrouted: "kbMisrouted" }[kb.faq];
    box.hidden = !key;
    if (!key) { return; }
    box.textContent = t(key, { error: kb.faq_error || "", version: kb.faq_version || "" });
  }

  function renderFloor(floor) {
    renderKnowledge(floor.knowledge_base);
    var qbody = R.clear($("queues-table").tBodies[0]);
    // Every department has three tiers: the floor shows the queues with someone in them.
    var busy = (floor.queues || []).filter(function (q) { return q.length || q.breached || q.at_risk; });
    $("queues-empty").hidden = busy.length > 0;
    busy.forEach(function (q) {
      var tr = el("tr");
      if (q.breached) { tr.className = "row-breached"; } else if (q.at_risk) { tr.className = "row-risk"; }
      tr.appendChild(cell(departmentLabel(q.department)));
      tr.appendChild(cell(String(q.tier)));
      tr.appendChild(cell(String(q.length || 0), "num"));
      tr.appendChild(cell(q.length ? R.duration(q.oldest_wait_s) : "", "num"));
      tr.appendChild(cell(String(q.breached || 0), "num"));
      tr.appendChild(cell(String(q.at_risk || 0), "num"));
      qbody.appendChild(tr);
    });

    var abody = R.clear($("agents-table").tBodies[0]);
    (floor.agents || []).forEach(function (a) {
      var tr = el("tr", a.disabled ? "row-disabled" : null);
      // A long unbroken name wraps in its cell instead of pushing the other columns off-screen.
      var name = el("td", "card-title agent-name");
      name.appendChild(el("strong", null, a.display_name || a.name));
      if (a.display_name && a.display_name !== a.name) { name.appendChild(el("span", "muted", " " + a.name)); }
      // Still listed (their records keep the name), but nobody should wait for them.
      if (a.disabled) { name.appendChild(el("span", "chip chip-disabled", t("disabledAgent"))); }
      tr.appendChild(name);
      var presence = el("td");
      var p = ["online", "away"].indexOf(a.presence) >= 0 ? a.presence : "offline";
      presence.appendChild(el("span", "dot dot-" + p, t(p)));
      tr.appendChild(presence);
      tr.appendChild(cell((a.load || 0) + " / " + (a.capacity || "?"), "num" + (a.load >= a.capacity ? " is-full" : "")));
      tr.appendChild(cell(String(a.tier)));
      tr.appendChild(cell((a.departments || []).map(departmentLabel).join(", ")));
      var convs = el("td");
      var ids = el("ul", "id-list");
      (a.conversations || []).forEach(function (id) {
        var li = el("li");
        li.appendChild(idButton(String(id)));
        ids.appendChild(li);
      });
      convs.appendChild(ids);
      if (!ids.childNodes.length) { convs.className = "card-skip"; } // no "Conversations" line on a card
      tr.appendChild(convs);
      cardLabels($("agents-table"), tr);
      abody.appendChild(tr);
    });

    var list = R.clear($("breaches-list"));
    (floor.breaches || []).forEach(function (b) {
      var li = el("li", "breach");
      li.appendChild(idButton(String(b.conversation_id)));
      li.appendChild(el("span", "chip", R.slaKindLabel(b.kind)));
      li.appendChild(el("span", "muted", t("overdue") + " " + R.duration(b.overdue_s)));
      list.appendChild(li);
    });
    $("breaches-empty").hidden = list.childNodes.length > 0;
  }

  function refreshFloor() {
    return R.api("GET", "/api/floor").then(function (floor) { renderFloor(floor || {}); }).catch(R.reportError);
  }

  var refreshFloorSoon = (function () {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(refreshFloor, REFRESH_DEBOUNCE_MS); };
  })();

  // -- records ----------------------------------------------------------------------------------------

  function filterQuery() {
    var q = new URLSearchParams();
    FILTERS.forEach(function (name) {
      var v = $("f-" + name).value.trim();
      if (v) { q.set(name, v); }
    });
    // From/to are days on the supervisor's calendar, as the table shows times (local), not UTC days.
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if ((q.has("from") || q.has("to")) && zone) { q.set("tz", zone); }
    return q;
  }

  function syncUrl(q) {
    var page = new URLSearchParams(location.search);
    FILTERS.forEach(function (name) { page.delete(name); });
    q.forEach(function (v, k) { page.set(k, v); });
    var s = page.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : ""));
    $("csv-link").href = "/api/records.csv" + (q.toString() ? "?" + q.toString() : "");
  }

  /* The records of the filters last applied: a reload while the floor moves does not apply a filter
     the supervisor is still typing (Apply does). */
  function applyFilters() {
    state.query = filterQuery();
    return loadRecords();
  }

  function loadRecords() {
    var q = state.query || filterQuery();
    syncUrl(q);
    var qs = q.toString();
    return R.api("GET", "/api/records" + (qs ? "?" + qs : "")).then(function (data) {
      var body = R.clear($("records-table").tBodies[0]);
      var records = (data && data.records) || [];
      records.forEach(function (r) { body.appendChild(recordRow(r)); });
      markOpenRow();
      $("records-empty").hidden = records.length > 0;
      $("records-metrics").textContent = metricsText(data && data.metrics);
    }).catch(R.reportError).then(function () { return loadBotFigures(q); });
  }

  /* What the bot did over the same days (UTC days: the figures are kept per day): conversations, how
     many it finished without a person, "did this help?" answered yes. */
  function loadBotFigures(q) {
    var b = new URLSearchParams();
    ["from", "to"].forEach(function (name) { if (q.get(name)) { b.set(name, q.get(name)); } });
    var qs = b.toString();
    return R.api("GET", "/api/bot_figures" + (qs ? "?" + qs : "")).then(function (f) {
      $("bot-metrics").textContent = botText(f);
    }).catch(R.reportError);
  }

  function botText(f) {
    if (!f || !f.conversations) { return ""; }
    // "1 conversation", "1 answer": the singular where a language has one (0 takes the plural).
    function counted(key, n, values) { return t(Number(n) === 1 ? key + "1" : key, values || { n: n }); }
    var parts = [counted("bConversations", f.conversations),
                 t("bContained", { p: Math.round(100 * (f.contained_rate || 0)) }),
                 counted("bAnswered", f.answered)];
    if (f.helpful_rate != null) {
      var asked = f.helpful_yes + f.helpful_no;
      parts.push(counted("bHelpful", asked, { p: Math.round(100 * f.helpful_rate), n: asked }));
    }
    parts.push(t("bNotUnderstood", { n: f.not_understood }));
    parts.push(counted("bHandedOver", f.handed_over));
    return parts.join(" · ");
  }

  /* The figures of every record the filters match (not only the rows shown): how many, how they ended,
     how long customers waited for a person and were handled, the average rating. */
  function metricsText(m) {
    if (!m || !m.handoffs) { return ""; }
    var parts = [m.handoffs === 1 ? t("mHandoff") : t("mHandoffs", { n: m.handoffs }),
                 t("mSolved", { n: m.solved, p: Math.round(100 * m.solved / m.handoffs) })];
    if (m.abandoned) { parts.push(t("mAbandoned", { n: m.abandoned })); }
    if (m.open) { parts.push(t("mOpen", { n: m.open })); }
    if (m.median_wait_s != null) { parts.push(t("mWait", { t: R.duration(m.median_wait_s) })); }
    if (m.median_handle_s != null) { parts.push(t("mHandle", { t: R.duration(m.median_handle_s) })); }
    if (m.rating_avg != null) { parts.push(t("mRating", { r: m.rating_avg, n: m.rated })); }
    return parts.join(" · ");
  }

  function recordRow(r) {
    var tr = el("tr", "record-row");
    tr.setAttribute("data-conversation", r.conversation_id);
    // A conversation handed over again after it ended has a row per handoff: each opens its own.
    if (r.handoff) { tr.setAttribute("data-handoff", r.handoff); }
    var when = el("td");
    var open = R.button(R.clock(r.ts) || String(r.conversation_id), "link-button", function () { openRecord(r.conversation_id, r.handoff); });
    open.title = String(r.conversation_id);
    when.appendChild(open);
    tr.appendChild(when);
    // Who it was (the e-mail they left under the name): what a supervisor is asked about.
    var who = cell(r.customer ? R.customerLabel(r.customer) : "", "customer-cell");
    if (r.email) { who.appendChild(el("span", "muted customer-email", String(r.email))); }
    tr.appendChild(who);
    tr.appendChild(cell(departmentLabel(r.department)));
    tr.appendChild(cell(r.tier != null ? String(r.tier) : ""));
    var reasons = el("td");
    var badges = el("ul", "badges");
    (r.reasons || []).forEach(function (code) {
      badges.appendChild(el("li", "badge badge-" + String(code).replace(/[^a-z_]/g, ""), R.reasonLabel(code)));
    });
    reasons.appendChild(badges);
    tr.appendChild(reasons);
    tr.appendChild(agentsCell(r));
    tr.appendChild(cell(r.outcome ? R.outcomeLabel(r.outcome) : ""));
    var rated = cell(ratingText(r.rating), "num rating-cell");
    if (r.comment) {
      // What the customer wrote with (or instead of) the stars, as text, cut for the table; the record
      // itself shows it whole.
      var said = String(r.comment);
      var note = el("span", "rating-comment", "“" + (said.length > 80 ? said.slice(0, 79) + "…" : said) + "”");
      note.title = said;
      rated.appendChild(note);
    }
    tr.appendChild(rated);
    tr.appendChild(cell(r.events != null ? String(r.events) : "", "num"));
    // A click anywhere on the row opens the record: a reason badge or an agent's name too, not only the
    // cell around them. The "When" button opens it on its own (and is the way in from the keyboard);
    // a drag that selects text in the row (to copy a name) does not.
    tr.addEventListener("click", function (ev) {
      var target = ev.target instanceof Element ? ev.target : ev.target && ev.target.parentElement;
      if (!target || target.closest("button, a, input, select, textarea, label") ||
          target.closest("tr") !== tr) { return; }
      var selected = window.getSelection();
      if (selected && !selected.isCollapsed && tr.contains(selected.anchorNode)) { return; }
      openRecord(r.conversation_id, r.handoff);
    });
    return tr;
  }

  /* Everyone who had it, in order ("ana → bob", the last one in bold): the agent filter matches any of
     them, so a row found by "ana" shows ana even when bob ended it. */
  function agentsCell(r) {
    var names = (Array.isArray(r.agents) && r.agents.length ? r.agents : r.agent ? [r.agent] : [])
      .filter(function (name, i, all) { return i === 0 || name !== all[i - 1]; });
    var td = el("td", "agents-cell");
    if (!names.length) { td.textContent = t("none"); return td; }
    names.forEach(function (name, i) {
      if (i) { td.appendChild(document.createTextNode(" → ")); }
      td.appendChild(i === names.length - 1 ? el("strong", null, name) : el("span", "muted", name));
    });
    return td;
  }

  // -- one record: timeline, transcript, rating --------------------------------------------------------

  /* One row's record: `handoff` is the row's (a conversation handed over twice has two rows); without
     it (a conversation id on the floor) the conversation's latest handoff. */
  function openRecord(id, handoff, refresh) {
    var path = "/api/records/" + encodeURIComponent(id) + (handoff ? "?handoff=" + encodeURIComponent(handoff) : "");
    return R.api("GET", path).then(function (data) {
      data = data || {};
      var shown = (data.handoff && data.handoff.handoff) || handoff || "";
      state.open = id;
      state.openHandoff = shown;
      renderDetail(id, data);
      markOpenRow();
      // One column (tablet): the record opens below the table, so bring it into view.
      if (!refresh && window.matchMedia("(max-width: 1100px)").matches) { $("detail").scrollIntoView({ block: "start" }); }
    }).catch(R.reportError);
  }

  /* The row of the record open beside the table is marked, also after the table is drawn again. */
  function markOpenRow() {
    var id = state.open, shown = state.openHandoff;
    Array.prototype.forEach.call(document.querySelectorAll(".record-row"), function (row) {
      var own = row.getAttribute("data-handoff");
      row.classList.toggle("is-current", id != null && row.getAttribute("data-conversation") === id &&
        (!own || !shown || own === shown));
    });
  }

  function renderDetail(id, data) {
    var conv = data.conversation || {};
    var rec = conv.record || {};
    $("detail-placeholder").hidden = true;
    $("detail-body").hidden = false;
    $("detail-title").textContent = conv.customer ? R.customerLabel(conv.customer) + " · " + id : id;
    // The row's handoff: the queue it is in or ended in, and how it ended (the conversation's state
    // while it is still open).
    var meta = [conv.channel, String(conv.lang || "").toUpperCase(),
                conv.department ? departmentLabel(conv.department) + " · " + t("tier") + " " + conv.tier : "",
                conv.outcome ? R.outcomeLabel(conv.outcome) : R.stateLabel(conv.state),
                conv.agent ? t("claimedBy", { agent: conv.agent }) : ""];
    $("detail-meta").textContent = meta.filter(Boolean).join(" · ");
    renderHandoffs(id, data);
    // Still open (waiting, or with an agent): the console is where a supervisor takes it over.
    var open = conv.state === "queued" || conv.state === "assigned";
    $("detail-open").hidden = !open;
    $("detail-open").href = open ? R.withLang("/agent?c=" + encodeURIComponent(id)) : "/agent";
    $("detail-email-value").textContent = conv.email || "";
    $("detail-email").hidden = !conv.email;
    $("detail-rating").textContent = t("rating") + ": " + (ratingText(conv.rating) || t("noRating")) +
      (conv.rating && conv.rating.comment ? " — " + conv.rating.comment : "");
    $("detail-summary").textContent = rec.summary ? R.summaryText(rec.summary_parts, rec.summary) : "";
    var badges = R.clear($("detail-reasons"));
    // The summary kept is the latest handoff's: an earlier one's shows the reasons of its row.
    var reasonList = rec.reasons || ((data.handoff && data.handoff.reasons) || []).map(function (code) { return { code: code }; });
    reasonList.forEach(function (r) {
      var b = el("li", "badge badge-" + String(r.code).replace(/[^a-z_]/g, ""), R.reasonLabel(r.code));
      if (r.detail) { b.title = R.detailText(r.detail); }
      badges.appendChild(b);
    });

    var timeline = R.clear($("timeline"));
    var seen = {}; // the rating and comment shown so far
    (data.timeline || []).forEach(function (e) { timeline.appendChild(timelineNode(e, seen)); });

    var log = R.clear($("detail-transcript"));
    (conv.transcript || []).forEach(function (m) { log.appendChild(R.messageNode(m)); });
    var notes = R.clear($("detail-notes"));
    (conv.notes || []).forEach(function (n) { notes.appendChild(R.noteNode(n)); });
    if (!notes.childNodes.length) { notes.appendChild(el("li", "empty", t("noNotes"))); }
  }

  /* "Handover 1 of 2 in this conversation: 10:02 · Solved, 11:40 · Other", each opening its own. */
  function renderHandoffs(id, data) {
    var list = Array.isArray(data.handoffs) ? data.handoffs : [];
    var box = R.clear($("detail-handoffs"));
    var current = data.handoff && data.handoff.handoff;
    var at = list.map(function (h) { return h.handoff; }).indexOf(current);
    box.hidden = list.length < 2 || at < 0;
    if (box.hidden) { return; }
    box.appendChild(document.createTextNode(t("handoffOf", { n: at + 1, total: list.length }) + " "));
    list.forEach(function (h, i) {
      if (i) { box.appendChild(document.createTextNode(", ")); }
      var label = R.clock(h.ts) + (h.outcome ? " · " + R.outcomeLabel(h.outcome) : "");
      if (i === at) { box.appendChild(el("strong", "handoff-current", label)); return; }
      box.appendChild(R.button(label, "link-button handoff-link", function () { openRecord(id, h.handoff); }));
    });
  }

  /* Who did it: an agent by name; the customer, the bot and the system in the console's words. */
  function actorLabel(actor) {
    var label = { customer: "fromCustomer", bot: "fromBot", system: "fromSystem" }[actor];
    return label ? t(label) : String(actor);
  }

  /* A side of a move (handoff/lua.py): a queue "department:tier", an agent, or where it ended ("closed",
     back with the "bot"). */
  function placeLabel(side) {
    var text = String(side || "");
    var queue = /^(.+):(\d+)$/.exec(text);
    if (queue) { return departmentLabel(queue[1]) + " · " + t("tier") + " " + queue[2]; }
    if (text === "closed" || text === "bot") { return R.stateLabel(text); }
    return text || "·";
  }

  /* An SLA breach moves a conversation only while it waits (one tier up): one that an agent has, or one
     already at the top, stays where it is, and a route would read as a move it never made. */
  function showsRoute(e) {
    if (!e.from && !e.to) { return false; }
    if (e.event !== "sla_breach") { return true; }
    var queue = /^.+:\d+$/;
    return queue.test(e.from || "") && queue.test(e.to || "") && e.from !== e.to;
  }

  /* Which parts of a rating entry are new: its stars (not shown by an earlier entry) and its comment. */
  function ratingParts(e, seen) {
    var parts = { stars: !!e.outcome && e.outcome !== seen.stars, comment: !!e.detail && e.detail !== seen.comment };
    if (e.outcome) { seen.stars = e.outcome; }
    if (e.detail) { seen.comment = e.detail; }
    return parts;
  }

  function timelineNode(e, seen) {
    var li = el("li", "tl tl-" + String(e.event || "").replace(/[^a-z_]/g, ""));
    var head = el("div", "tl-head");
    var when = el("time", "tl-time", R.clock(e.ts));
    when.title = R.isoTitle(e.ts);
    head.appendChild(when);
    var rating = e.event === "rated" ? ratingParts(e, seen) : null;
    head.appendChild(el("strong", "tl-event", rating && !rating.stars ? t("commentEvent") : R.eventLabel(e.event)));
    if (e.actor) { head.appendChild(el("span", "tl-actor", t("actor") + " " + actorLabel(e.actor))); }
    li.appendChild(head);
    if (showsRoute(e)) {
      li.appendChild(el("div", "tl-route", placeLabel(e.from) + " → " + placeLabel(e.to)));
    }
    var reasons = Array.isArray(e.reasons) ? e.reasons : String(e.reasons || "").split(",").filter(Boolean);
    if (reasons.length) {
      var badges = el("ul", "badges");
      reasons.forEach(function (code) { badges.appendChild(el("li", "badge badge-" + String(code).replace(/[^a-z_]/g, ""), R.reasonLabel(code))); });
      li.appendChild(badges);
    }
    if (rating) {
      // The stars once, the comment once: a comment written after the stars is its own entry, carrying
      // the same stars again (handoff/audit.py record_rating).
      if (rating.stars) { li.appendChild(el("div", "tl-outcome", ratingText(e.outcome))); }
      if (rating.comment) { li.appendChild(el("div", "tl-detail tl-comment", t("ratingComment", { text: e.detail }))); }
      return li;
    }
    if (e.outcome && e.event === "resolved") {
      li.appendChild(el("div", "tl-outcome", R.outcomeLabel(e.outcome)));
    } else if (e.outcome) {
      li.appendChild(el("span", "chip", R.priorityLabel(e.outcome))); // queue moves carry the priority here
    }
    if (e.event === "queued" && e.detail) {
      // The queue script keeps the starting priority in the detail of "queued" (handoff/lua.py).
      var prio = el("span", "chip chip-priority chip-" + String(e.detail).replace(/[^a-z]/g, ""), R.priorityLabel(e.detail));
      prio.title = t("priority");
      li.appendChild(prio);
    } else if (e.detail) {
      li.appendChild(el("div", "tl-detail", detailText(e)));
    }
    return li;
  }

  /* The SLA sweeper writes its details in English ("first reply overdue"); notes are shown as written. */
  function detailText(e) {
    var key = "detail_" + String(e.detail).replace(/\W+/g, "_");
    if (e.event !== "sla_breach") { return e.detail; }
    return t(key) !== key ? t(key) : R.detailText(e.detail);
  }

  function closeDetail() {
    state.open = null;
    markOpenRow();
    $("detail-body").hidden = true;
    $("detail-placeholder").hidden = false;
  }

  // -- unanswered questions ----------------------------------------------------------------------------

  var unansweredAsked = 0; // the latest request: an older answer arriving late is not shown over it

  function unansweredQuery() {
    var q = new URLSearchParams();
    q.set("days", $("u-days").value || String(UNANSWERED_DEFAULT_DAYS));
    q.set("top", String(UNANSWERED_TOP));
    return q.toString();
  }

  function loadUnanswered() {
    var qs = unansweredQuery();
    var asked = ++unansweredAsked;
    // The draft is the list shown: same period, same number of groups.
    $("unanswered-download").href = "/api/unanswered.yaml?" + qs;
    return R.api("GET", "/api/unanswered?" + qs).then(function (data) {
      if (asked !== unansweredAsked) { return; }
      data = data || {};
      var groups = Array.isArray(data.groups) ? data.groups : [];
      var body = R.clear($("unanswered-table").tBodies[0]);
      groups.forEach(function (g) { body.appendChild(unansweredRow(g)); });
      $("unanswered-table").hidden = groups.length === 0;
      $("unanswered-empty").hidden = groups.length > 0;
      var summary = R.t("unansweredSummary", { noted: Number(data.noted) || 0, groups: groups.length });
      if (data.capped) { summary += " " + R.t("unansweredCapped", { n: Number(data.read_max) || 0 }); }
      if (Number(data.answered_now) > 0) {
        summary += " " + R.t("unansweredAnsweredNow", { n: Number(data.answered_now) });
      }
      $("unanswered-summary").textContent = summary;
    }).catch(R.reportError);
  }

  function kindLabel(code) {
    var key = "kind_" + code;
    return R.has(key) ? R.t(key) : String(code || "");
  }

  /* Everything in a group is the customers' own words or codes: set as text, never parsed as HTML. */
  function unansweredRow(g) {
    var tr = el("tr", "unanswered-row");
    tr.appendChild(cell(String(Number(g.count) || 0), "num unanswered-count"));
    var question = el("td", "unanswered-question card-title");
    question.appendChild(el("div", "unanswered-text", g.text));
    var examples = Array.isArray(g.examples) ? g.examples : [];
    if (examples.length) {
      var more = el("details", "unanswered-examples");
      more.appendChild(el("summary", null, examples.length === 1 ? R.t("wording1") : R.t("wordings", { n: examples.length })));
      var list = el("ul");
      examples.forEach(function (e) {
        var li = el("li");
        li.appendChild(el("span", "chip", String(e.lang || "").toUpperCase()));
        li.appendChild(el("span", "unanswered-example", e.text));
        list.appendChild(li);
      });
      more.appendChild(list);
      question.appendChild(more);
    }
    var entries = Array.isArray(g.entries) ? g.entries : [];
    if (entries.length) {
      question.appendChild(el("div", "muted unanswered-near", R.t("nearEntries", { list: entries.join(", ") })));
    }
    tr.appendChild(question);
    tr.appendChild(cell((g.langs || []).map(function (l) { return String(l).toUpperCase(); }).join(", ")));
    var kinds = el("td");
    var badges = el("ul", "badges");
    (g.kinds || []).forEach(function (k) {
      badges.appendChild(el("li", "badge badge-" + String(k).replace(/[^a-z_]/g, ""), kindLabel(k)));
    });
    kinds.appendChild(badges);
    tr.appendChild(kinds);
    var last = el("td", "unanswered-when");
    var when = el("time", null, R.clock(g.last_ts));
    when.title = R.isoTitle(g.last_ts);
    when.dateTime = R.isoTitle(g.last_ts);
    last.appendChild(when);
    tr.appendChild(last);
    cardLabels($("unanswered-table"), tr);
    return tr;
  }

  /* The period, from the page's address (?days=, a bookmark) if it is one of the choices; kept there. */
  function fillUnanswered() {
    var wanted = Number(new URLSearchParams(location.search).get("days"));
    var days = UNANSWERED_DAYS.indexOf(wanted) >= 0 ? wanted : UNANSWERED_DEFAULT_DAYS;
    var select = R.clear($("u-days"));
    UNANSWERED_DAYS.forEach(function (n) {
      select.appendChild(R.option(String(n), n === 1 ? R.t("lastDay") : R.t("lastDays", { n: n }), n === days));
    });
    select.addEventListener("change", function () {
      var page = new URLSearchParams(location.search);
      page.set("days", select.value);
      history.replaceState(null, "", location.pathname + "?" + page.toString());
      loadUnanswered();
    });
  }

  // -- start -------------------------------------------------------------------------------------------

  function fillFilters() {
    var params = new URLSearchParams(location.search);
    var dep = R.clear($("f-department"));
    dep.appendChild(R.option("", t("any")));
    state.departments.forEach(function (d) { dep.appendChild(R.option(d.name, d.display_name || d.name)); });
    var reason = R.clear($("f-reason"));
    reason.appendChild(R.option("", t("any")));
    R.REASONS.forEach(function (code) { reason.appendChild(R.option(code, R.reasonLabel(code))); });
    var outcome = R.clear($("f-outcome"));
    outcome.appendChild(R.option("", t("any")));
    R.RECORD_OUTCOMES.forEach(function (code) { outcome.appendChild(R.option(code, R.outcomeLabel(code))); });
    FILTERS.forEach(function (name) {
      var v = params.get(name);
      if (v != null) { $("f-" + name).value = v; }
    });
  }

  function onFrame(frame) {
    if (frame.type === "queue" || frame.type === "presence") {
      refreshFloorSoon();
      // Every handoff event is a line of some record (a new handoff, who claimed it, how it ended, its
      // rating): the list and its figures follow the floor without "Apply".
      if (frame.type === "queue") { loadRecordsSoon(frame.conversation_id === state.open); }
    }
  }

  /* At most one reload of the records per RECORDS_REFRESH_MS, however busy the floor: the first event
     schedules it, the ones before it runs ride along. */
  var loadRecordsSoon = (function () {
    var timer = null, detail = false;
    return function (openOneToo) {
      detail = detail || openOneToo;
      if (timer) { return; }
      timer = setTimeout(function () {
        var again = detail && state.open;
        timer = null;
        detail = false;
        loadRecords();
        // The record open beside the table follows its own events too (claimed, transferred, resolved).
        if (again) { openRecord(state.open, state.openHandoff, true); }
      }, RECORDS_REFRESH_MS);
    };
  })();

  function onLiveState(up) {
    var pill = $("conn");
    pill.textContent = t(up ? "connected" : "reconnecting");
    pill.className = "pill " + (up ? "pill-on" : "pill-off");
  }

  function start() {
    R.applyLabels();
    $("logout").addEventListener("click", R.logout);
    R.wireOwnPassword("change-password");
    $("detail-close").addEventListener("click", closeDetail);
    $("filters").addEventListener("submit", function (ev) { ev.preventDefault(); applyFilters(); });
    R.me().then(function (data) {
      state.me = data.agent || {};
      $("me-name").textContent = state.me.display_name || state.me.name || "";
      $("to-admin").hidden = state.me.role !== "admin"; // the page itself refuses anyone else
      return R.api("GET", "/api/departments?lang=" + R.lang).then(function (d) {
        state.departments = (d && d.departments) || [];
      }, R.reportError);
    }).then(function () {
      fillFilters();
      fillUnanswered();
      loadUnanswered();
      state.live = R.live({
        // Watching the floor is not being available for customers: only the agent console is.
        present: false,
        onFrame: onFrame,
        onState: onLiveState,
        onOpen: function () { refreshFloor(); }
      });
      refreshFloor();
      applyFilters().then(function () {
        var want = new URLSearchParams(location.search).get("c");
        if (want) { openRecord(want); }
      });
      setInterval(refreshFloor, FLOOR_POLL_MS);
    }).catch(R.reportError);
  }

  start();
})();
