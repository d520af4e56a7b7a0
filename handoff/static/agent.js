/* Relevo agent console: the live queue, my conversations, one open conversation (transcript, reply,
   notes, canned replies), its handoff context and the actions on it. Text only, never HTML. */
(function () {
  "use strict";

  var R = window.RelevoConsole;
  var t = R.t;
  var el = R.el;
  var $ = function (id) { return document.getElementById(id); };

  var REFRESH_DEBOUNCE_MS = 150;
  var POLL_OFFLINE_MS = 10000;
  var PRESENCE_MS = 20000;
  var TICK_MS = 5000;
  var CANNED_DEBOUNCE_MS = 250;
  var NEW_MARK_MS = 8000;
  var NOT_RATED = ["spam", "duplicate"];
  var COUNT_FROM = 0.8; // the reply counter shows from 80 % of the limit: earlier it is only noise
  var LIMIT_SAY_MS = 1000; // the warning is read out once the agent pauses, not at every key
  // The reply box's and the action notes' own words over the limit (common.js is shared with other
  // pages; these are only here).
  var LIMIT_TEXTS = {
    en: {
      overOne: "1 character too many (the limit is {max}). Shorten it or send it in two parts.",
      overMany: "{n} characters too many (the limit is {max}). Shorten it or send it in parts.",
      noteOverOne: "The note is 1 character too long (the limit is {max}). Shorten it to go on.",
      noteOverMany: "The note is {n} characters too long (the limit is {max}). Shorten it to go on."
    },
    es: {
      overOne: "Sobra 1 carácter (el máximo es {max}). Acórtalo o envíalo en dos partes.",
      overMany: "Sobran {n} caracteres (el máximo es {max}). Acórtalo o envíalo en varias partes.",
      noteOverOne: "La nota tiene 1 carácter de más (el máximo es {max}). Acórtala para continuar.",
      noteOverMany: "La nota tiene {n} caracteres de más (el máximo es {max}). Acórtala para continuar."
    }
  };
  // The notes of Transfer, Escalate and Resolve: the server takes them up to max_message_chars, as replies.
  var NOTE_INPUTS = ["transfer-note", "escalate-note", "resolve-note"];
  // One column (console.css, the phone): the conversation opens below the lists, out of sight.
  var ONE_COLUMN = "(max-width: 720px)";
  // A reply or action refused with these: the conversation is no longer this agent's (409).
  var LOST_CODES = ["not_yours", "not_assigned", "gone"];
  var DRAFT_PREFIX = "relevo.draft.";
  var RECENT_MS = 60000; // "Recent" again now and then: a customer's rating comes after the resolution
  // How a handoff the agent held ended or moved on (the audit events of GET /api/mine/recent).
  var LEFT_EVENTS = ["resolved", "returned_to_bot", "abandoned", "transferred", "escalated", "released",
                     "lease_lapsed", "assigned", "sla_breach"];
  // Done by someone: "You resolved this conversation in another tab." or "Sara resolved this conversation."
  var DONE_BY = ["resolved", "returned_to_bot", "transferred", "escalated", "released"];
  var PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };

  var state = {
    me: null,
    queues: [],
    mine: [],
    recent: [], // conversations I held lately and no longer hold (GET /api/mine/recent)
    fetchedAt: 0,
    known: null, // conversation ids seen queued: what is new is noticed
    fresh: {}, // id -> time it was first seen, for the highlight
    unread: {},
    departments: [],
    current: null, // {id, data, wasMine, lost, frame (its latest queue event), raced (my claim of it lost), why}
    opening: 0, // the newest conversation fetch: an older answer arriving late is dropped
    claiming: false, // a Claim next on its way
    knownMine: null, // ids of my conversations at the last fetch (null: not fetched yet)
    claimedHere: {}, // claimed from this tab since then: not announced as assigned
    given: {}, // id -> when it was given to me without my asking, for the highlight in "My conversations"
    maxChars: 2000, // server.max_message_chars, from /api/me
    mode: "reply",
    wanted: null, // the conversation of the address (?c=), opened once the lists are in
    live: null
  };

  // -- small helpers ---------------------------------------------------------------------------------

  function chip(text, cls) { return el("span", "chip" + (cls ? " " + cls : ""), text); }

  function reasonBadge(code, title) {
    var b = el("li", "badge badge-" + String(code).replace(/[^a-z_]/g, ""), R.reasonLabel(code));
    if (title) { b.title = title; }
    return b;
  }

  function waitedNow(item) {
    return (Number(item.waited_s) || 0) + (Date.now() - state.fetchedAt) / 1000;
  }

  function heldByMe(conversation) {
    return conversation.state === "assigned" && !!state.me && conversation.agent === state.me.name;
  }

  function isMine(id) {
    return state.mine.some(function (c) { return c.conversation_id === id; });
  }

  function findItem(id) {
    var found = null;
    state.mine.concat(flatQueue()).forEach(function (i) { if (!found && i.conversation_id === id) { found = i; } });
    return found;
  }

  function flatQueue() {
    var out = [];
    state.queues.forEach(function (q) { (q.items || []).forEach(function (i) { out.push(i); }); });
    return out;
  }

  function limitText(key, values) {
    return R.fmt((LIMIT_TEXTS[R.lang] || LIMIT_TEXTS.en)[key], values);
  }

  /* Characters as the server counts them (Python's len(): code points). A string's .length counts
     UTF-16 units, so an emoji would count twice and the box would refuse what the server takes. */
  function countChars(text) {
    var n = text.length;
    for (var i = 0; i < text.length - 1; i += 1) {
      var c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) {
        var d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { n -= 1; i += 1; }
      }
    }
    return n;
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      clearTimeout(timer);
      timer = setTimeout(fn, ms);
    };
  }

  // -- drafts ------------------------------------------------------------------------------------------

  /* A typed reply outlives the page: when the sign-in ends (a new password, sign-out elsewhere, expiry)
     the next request goes to /login, which comes back here with ?c=. Per tab (sessionStorage), so a
     shared computer does not keep them past the tab, and keyed by agent and conversation, so whoever
     signs in next in the tab never sees another agent's words. The mode is kept too: a private note
     must not come back as a reply to the customer. */
  function draftKey(id) {
    return DRAFT_PREFIX + encodeURIComponent(state.me && state.me.name || "") + "." + encodeURIComponent(id);
  }

  function loadDraft(id) {
    try {
      var found = JSON.parse(sessionStorage.getItem(draftKey(id)) || "null");
      return found && typeof found.text === "string" && found.text ? found : null;
    } catch (e) { return null; } // storage off or garbled: no draft
  }

  function saveDraft() {
    var cur = state.current;
    var box = $("reply-text");
    if (!cur || cur.lost || !state.me || box.disabled || box.readOnly) { return; }
    try {
      if (box.value) { sessionStorage.setItem(draftKey(cur.id), JSON.stringify({ text: box.value, mode: state.mode })); }
      else { sessionStorage.removeItem(draftKey(cur.id)); }
    } catch (e) { /* full or off: the box still holds it */ }
  }

  function dropDraft(id) {
    try { sessionStorage.removeItem(draftKey(id)); } catch (e) { /* nothing kept */ }
  }

  /* The conversation ids this agent has drafts for in this tab. */
  function draftIds() {
    var mine = draftKey("");
    var out = [];
    try {
      for (var i = 0; i < sessionStorage.length; i += 1) {
        var k = sessionStorage.key(i);
        if (k && k.indexOf(mine) === 0) { out.push(decodeURIComponent(k.slice(mine.length))); }
      }
    } catch (e) { return []; }
    return out;
  }

  /* Drafts of conversations that are no longer this agent's (resolved by someone, taken, lapsed) go;
     the one the address asks for is judged when it opens, where a lost draft is shown to copy. */
  function pruneDrafts() {
    draftIds().forEach(function (id) {
      if (!isMine(id) && id !== state.wanted && !(state.current && state.current.id === id)) { dropDraft(id); }
    });
  }

  function dropAllDrafts() { draftIds().forEach(dropDraft); }

  /* ?c= names the open conversation, so a reload or the way back from /login reopens it. */
  function showInAddress(id) {
    var q = new URLSearchParams(location.search);
    if (id) { q.set("c", id); } else { q.delete("c"); }
    var s = q.toString();
    history.replaceState(null, "", location.pathname + (s ? "?" + s : "") + location.hash);
  }

  // -- queue and my conversations --------------------------------------------------------------------

  function itemNode(item, where) {
    var li = el("li", "item");
    var b = el("button", "item-button");
    b.type = "button";
    b.setAttribute("data-conversation", item.conversation_id);
    if (state.current && state.current.id === item.conversation_id) { b.classList.add("is-current"); }
    if ((where === "queue" ? state.fresh : state.given)[item.conversation_id]) { b.classList.add("is-new"); }

    var top = el("span", "item-top");
    top.appendChild(el("strong", "item-customer", R.customerLabel(item.customer, item.conversation_id)));
    if (where === "mine" && state.unread[item.conversation_id]) { top.appendChild(chip(t("unread"), "chip-unread")); }
    top.appendChild(chip(item.channel || "?", "chip-channel"));
    top.appendChild(chip(String(item.lang || "?").toUpperCase(), "chip-lang"));
    if (item.priority) { top.appendChild(chip(R.priorityLabel(item.priority), "chip-priority chip-" + String(item.priority).replace(/[^a-z]/g, ""))); }
    // One list of every queue in Claim next's order: each card says which queue it waits in.
    if (where === "queue" && item.department) { top.appendChild(chip(queueName(item.department, item.tier), "chip-queue")); }
    b.appendChild(top);

    var badges = el("ul", "badges");
    (item.reasons || []).forEach(function (code) {
      if (!(code === "sla_breach" && item.sla_overdue)) { badges.appendChild(reasonBadge(code)); }
    });
    var sla = slaBadge(item);
    if (sla) { badges.appendChild(sla); }
    b.appendChild(badges);

    var meta = el("span", "item-meta");
    // waited_s counts from the handoff: once someone has it, the customer is no longer waiting.
    var label = item.state === "assigned" ? "handedOver" : "waited";
    var wait = el("span", "item-wait", t(label, { t: R.duration(waitedNow(item)) }));
    wait.setAttribute("data-waited", String(item.waited_s || 0));
    wait.setAttribute("data-label", label);
    meta.appendChild(wait);
    if (item.state === "assigned" && item.agent && where === "queue") {
      meta.appendChild(el("span", "item-agent", t("claimedBy", { agent: item.agent })));
    }
    b.appendChild(meta);
    if (item.summary) { b.appendChild(el("span", "item-summary", R.summaryText(item.summary_parts, item.summary))); }
    b.addEventListener("click", function () { openConversation(item.conversation_id); });
    li.appendChild(b);
    return li;
  }

  function queueName(department, tier) {
    return departmentLabel(department) + " · " + t("tier") + " " + tier;
  }

  /* Past a first-reply or resolution target: red "SLA breached (9 min over)"; in its last quarter: the
     yellow "SLA at risk". */
  function slaBadge(item) {
    if (item.sla_overdue) {
      return el("li", "badge badge-sla_overdue", t("slaOverdue", { t: R.duration(item.overdue_s || 0) }));
    }
    return item.sla_at_risk ? reasonBadge("sla_at_risk") : null;
  }

  /* The order Claim next takes them in across the agent's queues (the queues' own score, lowest first);
     without it, the higher priority, then the longer wait. */
  function claimOrder(a, b) {
    var ao = typeof a.order === "number" ? a.order : null;
    var bo = typeof b.order === "number" ? b.order : null;
    if (ao !== null && bo !== null && ao !== bo) { return ao - bo; }
    if ((ao === null) !== (bo === null)) { return ao === null ? 1 : -1; }
    var pa = PRIORITY_RANK[a.priority] != null ? PRIORITY_RANK[a.priority] : 9;
    var pb = PRIORITY_RANK[b.priority] != null ? PRIORITY_RANK[b.priority] : 9;
    return pa !== pb ? pa - pb : (Number(b.waited_s) || 0) - (Number(a.waited_s) || 0);
  }

  /* The conversation whose card has the keyboard focus in `list`, to give it back after a rebuild: the
     lists are drawn again on every change, and a keyboard user would be thrown back to the page. */
  function focusedIn(list) {
    var a = document.activeElement;
    return a && list.contains(a) && a.getAttribute ? a.getAttribute("data-conversation") : null;
  }

  function refocus(list, id) {
    if (!id) { return; }
    var again = list.querySelector('.item-button[data-conversation="' + id.replace(/[^\w-]/g, "") + '"]');
    if (again) { again.focus(); }
  }

  /* Each queue's name and oldest wait on a line of its own at the top, then every card in one list, in the
     order Claim next takes them (priority with ageing, across queues), so an urgent or overdue
     conversation of another queue is not listed under a whole queue of normal ones. */
  function renderQueue() {
    var focused = focusedIn($("queue-list"));
    var list = R.clear($("queue-list"));
    var total = 0;
    var items = [];
    state.queues.forEach(function (q) {
      var waiting = (q.items || []).filter(function (i) { return i.state !== "assigned"; });
      total += Number(q.length != null ? q.length : waiting.length) || 0;
      if (!(q.items || []).length) { return; }
      var head = el("li", "group-head");
      head.appendChild(el("span", null, departmentLabel(q.department) + " · " + t("tier") + " " + q.tier));
      var oldest = el("span", "muted group-wait", R.duration(q.oldest_wait_s || 0));
      if (waiting.length) { oldest.setAttribute("data-waited", String(q.oldest_wait_s || 0)); }
      head.appendChild(oldest);
      list.appendChild(head);
      items = items.concat(q.items || []);
    });
    items.sort(claimOrder).forEach(function (item) { list.appendChild(itemNode(item, "queue")); });
    $("queue-count").textContent = String(total);
    $("queue-empty").hidden = list.childNodes.length > 0;
    refocus(list, focused);
  }

  function renderMine() {
    var focused = focusedIn($("mine-list"));
    var list = R.clear($("mine-list"));
    state.mine.forEach(function (item) { list.appendChild(itemNode(item, "mine")); });
    refocus(list, focused);
    $("mine-count").textContent = String(state.mine.length);
    $("mine-empty").hidden = state.mine.length > 0;
    renderCapacity();
    renderTitle();
  }

  /* "(2) Agent console — Relevo": conversations of mine with customer messages not yet seen, so a
     reply is noticed from another tab or window too. */
  function renderTitle() {
    var n = Object.keys(state.unread).length;
    document.title = (n ? "(" + n + ") " : "") + t("agentConsole") + " — Relevo";
  }

  /* A conversation given to me without my asking (automatic routing, a lapse elsewhere) is announced
     like a new handoff: a beep, a notification, the "new" mark. One I claimed here is not. */
  function noticeAssigned(items) {
    var ids = {};
    var arrived = [];
    items.forEach(function (i) {
      ids[i.conversation_id] = true;
      if (state.knownMine && !state.knownMine[i.conversation_id] && !state.claimedHere[i.conversation_id]) {
        arrived.push(i);
      }
    });
    // One left (resolved, given back, taken over…): it is in "Recent" now.
    if (state.knownMine && Object.keys(state.knownMine).some(function (id) { return !ids[id]; })) { refreshRecentSoon(); }
    state.knownMine = ids;
    state.claimedHere = {};
    announce(arrived, state.given, t("assignedToYou"), "relevo-mine");
  }

  /* Conversations that just arrived: marked "new" for a while (in `marks`), a beep, a notification. */
  function announce(arrived, marks, title, tag) {
    arrived.forEach(function (i) {
      marks[i.conversation_id] = Date.now();
      setTimeout(function () { delete marks[i.conversation_id]; markFresh(); }, NEW_MARK_MS);
    });
    if (!arrived.length) { return; }
    R.beep();
    var first = arrived[0];
    R.notify(title, t("newHandoffBody", {
      customer: R.customerLabel(first.customer, first.conversation_id), channel: first.channel, lang: first.lang,
      reasons: (first.reasons || []).map(R.reasonLabel).join(", ")
    }), tag);
  }

  function renderCapacity() {
    if (!state.me) { return; }
    $("capacity").textContent = t("capacity", { load: state.mine.length, capacity: state.me.capacity || "?" });
    $("capacity").classList.toggle("is-full", state.mine.length >= (state.me.capacity || Infinity));
  }

  function departmentLabel(name) {
    var d = state.departments.filter(function (x) { return x.name === name; })[0];
    return d ? (d.display_name || d.name) : String(name || "");
  }

  /* Every waiting conversation that was not there before is noticed: a beep, a notification. */
  function noticeNew(items) {
    var ids = {};
    var arrived = [];
    items.forEach(function (i) {
      if (i.state === "assigned") { return; }
      ids[i.conversation_id] = true;
      if (state.known && !state.known[i.conversation_id]) { arrived.push(i); }
    });
    state.known = ids;
    announce(arrived, state.fresh, t("newHandoff"), "relevo-queue");
  }

  function markFresh() {
    Array.prototype.forEach.call($("queue-list").querySelectorAll(".item-button"), function (b) {
      b.classList.toggle("is-new", !!state.fresh[b.getAttribute("data-conversation")]);
    });
    Array.prototype.forEach.call($("mine-list").querySelectorAll(".item-button"), function (b) {
      b.classList.toggle("is-new", !!state.given[b.getAttribute("data-conversation")]);
    });
  }

  function refreshLists() {
    return Promise.all([R.api("GET", "/api/queues"), R.api("GET", "/api/mine")]).then(function (res) {
      state.queues = (res[0] && res[0].queues) || [];
      state.mine = (res[1] && res[1].conversations) || [];
      state.fetchedAt = Date.now();
      noticeNew(flatQueue());
      noticeAssigned(state.mine);
      renderQueue();
      renderMine();
      syncCurrentClaim();
      pruneDrafts();
      // The open one says it is ours, "My conversations" says not (lapsed, taken): ask what became of it.
      var cur = state.current;
      if (cur && !cur.lost && !isMine(cur.id) && heldByMe(cur.data)) { reloadCurrentSoon(); }
    }).catch(R.reportError);
  }

  var refreshSoon = debounce(refreshLists, REFRESH_DEBOUNCE_MS);

  /* Wait times move on between fetches. */
  function tick() {
    var since = (Date.now() - state.fetchedAt) / 1000;
    Array.prototype.forEach.call(document.querySelectorAll(".item-wait"), function (n) {
      var waited = Number(n.getAttribute("data-waited")) + since;
      n.textContent = t(n.getAttribute("data-label") || "waited", { t: R.duration(waited) });
    });
    // The group's oldest wait moves on with its cards.
    Array.prototype.forEach.call(document.querySelectorAll(".group-wait[data-waited]"), function (n) {
      n.textContent = R.duration(Number(n.getAttribute("data-waited")) + since);
    });
  }

  // -- recent: what I held lately and no longer hold ----------------------------------------------------

  function refreshRecent() {
    return R.api("GET", "/api/mine/recent").then(function (data) {
      state.recent = (data && data.conversations) || [];
      renderRecent();
    }).catch(function (err) { if (err.status !== 0) { R.reportError(err); } });
  }

  var refreshRecentSoon = debounce(refreshRecent, REFRESH_DEBOUNCE_MS);

  function renderRecent() {
    var focused = focusedIn($("recent-list"));
    var list = R.clear($("recent-list"));
    state.recent.forEach(function (e) { list.appendChild(recentNode(e)); });
    refocus(list, focused);
    $("recent-count").textContent = String(state.recent.length);
    $("recent-empty").hidden = state.recent.length > 0;
  }

  /* "billing:1" (a queue in the audit) as "Billing · Tier 1". */
  function queueOf(text) {
    var m = /^(.*):(\d+)$/.exec(String(text || ""));
    return m ? queueName(m[1], m[2]) : String(text || "");
  }

  /* How it ended or moved on: "Solved", "Transferred to Billing · Tier 1", "Taken over by Sara"; done by
     someone else than me (a supervisor), "· by Sara". */
  function endingText(e) {
    var by = e.by_display || e.by || "";
    if (LEFT_EVENTS.indexOf(e.event) < 0) { return R.eventLabel(e.event); }
    if (e.event === "assigned") { return t("left_assigned", { agent: by }); }
    var text = e.event === "resolved" ? R.outcomeLabel(e.outcome || "resolved") : t("left_" + e.event, { to: queueOf(e.to) });
    var mine = !!state.me && e.by === state.me.name;
    return DONE_BY.indexOf(e.event) >= 0 && by && !mine ? text + " · " + t("byWhom", { agent: by }) : text;
  }

  /* A recent conversation: customer, how and when it ended, the customer's stars and comment (text
     only). One the agent may still read opens read-only; one moved where they may not follow is shown,
     not offered. */
  function recentNode(e) {
    var id = String(e.conversation_id || "");
    var li = el("li", "item");
    var b = el(e.may_open ? "button" : "div", "item-button recent-item" + (e.may_open ? "" : " item-static"));
    b.setAttribute("data-conversation", id);
    if (state.current && state.current.id === id) { b.classList.add("is-current"); }
    var top = el("span", "item-top");
    top.appendChild(el("strong", "item-customer", R.customerLabel(e.customer, id)));
    if (e.channel) { top.appendChild(chip(e.channel, "chip-channel")); }
    b.appendChild(top);
    var meta = el("span", "item-meta");
    meta.appendChild(el("span", "recent-ending", endingText(e)));
    var when = el("span", "recent-when", R.clock(e.ended_at));
    when.title = R.isoTitle(e.ended_at);
    meta.appendChild(when);
    b.appendChild(meta);
    if (e.rating) {
      b.appendChild(el("span", "recent-rating", R.ratingText(e.rating)));
    } else if (e.event === "resolved") {
      b.appendChild(el("span", "recent-rating muted", t("noRating")));
    }
    if (e.comment) { b.appendChild(el("span", "recent-comment", String(e.comment))); }
    if (e.may_open) {
      b.type = "button";
      b.addEventListener("click", function () { openConversation(id); });
    }
    li.appendChild(b);
    return li;
  }

  // -- the open conversation ---------------------------------------------------------------------------

  function hasMessage(id) {
    if (id == null) { return false; }
    return Array.prototype.some.call($("transcript").children, function (n) { return n.getAttribute("data-id") === String(id); });
  }

  function appendMessage(m) {
    if (hasMessage(m.id)) { return; }
    var log = $("transcript");
    var stick = log.scrollHeight - log.scrollTop - log.clientHeight < 60;
    log.appendChild(R.messageNode(m));
    if (stick || m.from === "agent") { log.scrollTop = log.scrollHeight; }
  }

  function renderConversation() {
    var cur = state.current;
    var d = cur.data;
    $("conv-placeholder").hidden = true;
    $("conv").hidden = false;
    $("conv-customer").textContent = R.customerLabel(d.customer, d.conversation_id);
    $("conv-customer").title = d.customer || d.conversation_id;
    renderMeta(d, false);
    $("conv-email-value").textContent = d.email || "";
    $("conv-email").hidden = !d.email;
    $("conv-unreachable").hidden = !d.unreachable;
    var log = R.clear($("transcript"));
    (d.transcript || []).forEach(function (m) { log.appendChild(R.messageNode(m)); });
    log.scrollTop = log.scrollHeight;
    renderContext(d);
    syncCurrentClaim();
  }

  /* Channel, language, queue, priority and where it stands; a lost view leaves out the last: it is stale. */
  function renderMeta(d, lost) {
    var where = d.state === "assigned" && d.agent ? t("claimedBy", { agent: d.agent_display || d.agent }) : R.stateLabel(d.state);
    var meta = [d.channel, String(d.lang || "").toUpperCase(), departmentLabel(d.department) + " · " + t("tier") + " " + d.tier,
                R.priorityLabel(d.priority), lost ? "" : where];
    $("conv-meta").textContent = meta.filter(Boolean).join(" · ");
  }

  /* Mine: reply and act. Someone else's or queued: read, and claim if it is waiting. Lost (it was mine,
     or I was looking at it, and now it is not): say so, and keep the draft readable to copy. */
  function syncCurrentClaim() {
    var cur = state.current;
    if (!cur) { return; }
    var mine = !cur.lost && (isMine(cur.id) || heldByMe(cur.data));
    var waiting = !cur.lost && cur.data.state === "queued";
    var slipped = cur.lost || (cur.wasMine && !mine);
    if (mine) { cur.wasMine = true; }
    if (slipped) { dropDraft(cur.id); } // it stays in the box to copy, but no longer comes back
    // Someone else's, to a supervisor: take it over or give it back (an agent gone quiet or away).
    var other = !mine && !cur.lost && cur.data.state === "assigned" && !!cur.data.agent && isSupervisor();
    $("conv-claim").hidden = mine || !waiting;
    // Resolved, back with the bot, closed: read-only for good, nothing to claim.
    var ended = !cur.lost && cur.data.state !== "queued" && cur.data.state !== "assigned";
    $("conv-viewonly").textContent = t(ended ? "viewEnded" : "viewOnly");
    $("conv-viewonly").hidden = mine || slipped || other;
    $("conv-supervise").hidden = !other;
    if (other) { $("conv-supervise-text").textContent = t("supervise", { agent: cur.data.agent_display || cur.data.agent }); }
    $("conv-lost").hidden = !slipped;
    if (slipped) { $("conv-lost").textContent = lostText(cur); explainLost(cur); }
    $("reply-text").disabled = !mine && !slipped;
    $("reply-text").readOnly = slipped;
    $("reply-send").disabled = !mine;
    $("actions").hidden = !mine;
    Array.prototype.forEach.call(document.querySelectorAll(".item-button"), function (b) {
      b.classList.toggle("is-current", b.getAttribute("data-conversation") === cur.id);
    });
  }

  function renderContext(d) {
    var rec = d.record || {};
    var reasons = Array.isArray(rec.reasons) ? rec.reasons : [];
    var item = findItem(d.conversation_id) || {};
    $("context").hidden = false;
    $("ctx-summary").textContent = rec.summary ? R.summaryText(rec.summary_parts, rec.summary)
      : item.summary ? R.summaryText(item.summary_parts, item.summary) : t("none");

    var badges = R.clear($("ctx-reasons"));
    var details = R.clear($("ctx-reason-details"));
    var codes = reasons.length ? reasons : (item.reasons || []).map(function (c) { return { code: c }; });
    codes.forEach(function (r) {
      var code = typeof r === "string" ? r : r.code;
      badges.appendChild(reasonBadge(code, r.detail ? R.detailText(r.detail) : ""));
      if (r.detail || (r.evidence && r.evidence.length)) {
        var li = el("li");
        li.appendChild(el("strong", null, R.reasonLabel(code) + ": "));
        li.appendChild(document.createTextNode(R.detailText(r.detail || "")));
        (r.evidence || []).forEach(function (e) { li.appendChild(evidenceNode(e, r)); });
        details.appendChild(li);
      }
    });
    var sla = slaBadge(item);
    if (sla) { badges.appendChild(sla); }

    var words = (rec.mood_words || []).slice();
    reasons.forEach(function (r) {
      if (r.code === "upset") { (r.evidence || []).forEach(function (w) { if (words.indexOf(w) < 0) { words.push(w); } }); }
    });
    var wordList = R.clear($("ctx-words"));
    // The detector's labels ('negative: "otra vez"') in the console's words, the customer's as they are.
    words.forEach(function (w) { wordList.appendChild(el("li", "word", R.evidenceText(w))); });
    $("ctx-words-head").hidden = !words.length; // a low mood score alone has no words to head
    $("ctx-mood").textContent = rec.mood_score != null ? t("mood", { score: Number(rec.mood_score).toFixed(2) }) : "";
    $("ctx-mood-box").hidden = !words.length && !(Number(rec.mood_score) > 0);

    var cands = R.clear($("ctx-candidates"));
    (rec.candidates || []).forEach(function (c) {
      var li = el("li", "candidate");
      var score = Math.max(0, Math.min(1, Number(c.score) || 0));
      var head = el("div", "candidate-head");
      head.appendChild(el("span", "candidate-id", c.entry_id));
      head.appendChild(el("span", "candidate-score", Math.round(score * 100) + "%"));
      li.appendChild(head);
      if (c.question) { li.appendChild(el("div", "candidate-q", c.question)); }
      var meter = el("meter", "candidate-meter");
      meter.min = 0; meter.max = 1; meter.value = score;
      meter.setAttribute("aria-label", c.entry_id);
      li.appendChild(meter);
      cands.appendChild(li);
    });
    $("ctx-candidates-box").hidden = !cands.childNodes.length;

    var before = R.clear($("ctx-before"));
    (rec.before || []).forEach(function (ln) { before.appendChild(R.messageNode({ from: ln.sender, text: ln.text })); });
    $("ctx-before-head").textContent = t("beforeBot", { when: R.clock(rec.before_at) });
    $("ctx-before-box").hidden = !before.childNodes.length;

    var earlier = R.clear($("ctx-earlier"));
    (d.earlier || []).forEach(function (e) { earlier.appendChild(earlierNode(e)); });
    $("ctx-earlier-box").hidden = !earlier.childNodes.length;

    renderNotes(d.notes || []);
    renderActions(d);
    refreshDepartments(); // open or closed, who is online: as of now, for the transfer list
  }

  function refreshDepartments() {
    return R.api("GET", "/api/departments?lang=" + R.lang).then(function (d) {
      state.departments = (d && d.departments) || [];
      if (state.current) { renderActions(state.current.data); }
    }).catch(function () { /* the list from before stays */ });
  }

  /* An earlier conversation of the customer (only those this agent may open come from the server), by
     when, where and how it ended; the id, which means nothing to a person, only as the tooltip. */
  function earlierNode(e) {
    var id = String(e.conversation_id || "");
    var li = el("li", "earlier-item");
    var where = e.department ? departmentLabel(e.department) + " · " + t("tier") + " " + e.tier : "";
    var label = [R.clock(e.ts), where, e.outcome ? R.outcomeLabel(e.outcome) : ""].filter(Boolean).join(" · ");
    var b = R.button(label || id, "link-button earlier-open", function () { openConversation(id); });
    b.title = id;
    li.appendChild(b);
    var reasons = (e.reasons || []).map(R.reasonLabel).join(", ");
    if (reasons) { li.appendChild(el("span", "earlier-reasons muted", reasons)); }
    return li;
  }

  /* The customer's words in quotes; the mood detector's labels ('insult: "…"', 'shouting (capitals)')
     carry their own quotes, and a <q> around them would double them. */
  function evidenceNode(e, reason) {
    var text = String(e);
    return /[:"“”«»(]/.test(text) || R.evidenceText(text, reason) !== text
      ? el("span", "evidence evidence-label", R.evidenceText(text, reason)) : el("q", "evidence", text);
  }

  function renderNotes(notes) {
    var list = R.clear($("ctx-notes"));
    notes.forEach(function (n) { list.appendChild(R.noteNode(n)); });
    $("ctx-notes-empty").hidden = notes.length > 0;
  }

  function addNote(n) {
    var list = $("ctx-notes");
    if (n.id != null && list.querySelector('[data-id="' + String(n.id).replace(/["\\]/g, "\\$&") + '"]')) { return; }
    list.appendChild(R.noteNode(n));
    $("ctx-notes-empty").hidden = true;
  }

  function renderActions(d) {
    var select = R.clear($("transfer-dept"));
    state.departments.forEach(function (dep) {
      if (dep.name === d.department) { return; }
      var name = dep.display_name || dep.name;
      // Where the customer would wait: closed now, or nobody there to answer.
      var label = dep.open === false ? t("deptClosed", { name: name })
                : dep.online === 0 ? t("deptNobody", { name: name }) : name;
      select.appendChild(R.option(dep.name, label));
    });
    var tier = Number(d.tier) || 1;
    var esc = $("escalate-btn");
    esc.textContent = tier >= 3 ? t("escalateTop") : t("escalate", { tier: tier + 1 });
    esc.disabled = tier >= 3;
    $("escalate-note").disabled = tier >= 3;
  }

  function openConversation(id) {
    if (!id) { return Promise.resolve(); }
    var ticket = ++state.opening;
    return R.api("GET", "/api/conversations/" + encodeURIComponent(id)).then(function (data) {
      if (!data || ticket !== state.opening) { return; }
      var prev = state.current;
      var switching = !prev || prev.id !== id;
      state.current = { id: id, data: data, wasMine: !switching && prev.wasMine, lost: false,
                        frame: switching ? null : prev.frame, raced: !switching && !!prev.raced };
      delete state.unread[id];
      if (id === state.wanted) { state.wanted = null; }
      if (switching) {
        var draft = loadDraft(id);
        $("reply-text").value = draft ? draft.text : "";
        setMode(draft && draft.mode === "note" ? "note" : "reply");
        updateCount();
        // A draft for a conversation that is no longer ours (taken while we were signed out): shown
        // read-only with the "no longer yours" notice, to copy.
        if (draft && !(isMine(id) || heldByMe(data))) { state.current.wasMine = true; }
      }
      renderConversation();
      renderMine();
      showInAddress(id);
      state.live.watch(id);
      if (switching) { showOpened(); }
    }, function (err) {
      if (ticket !== state.opening) { return; }
      if (id === state.wanted) { state.wanted = null; dropDraft(id); showInAddress(null); }
      if (!isGone(err)) { R.reportError(err); return; }
      if (state.current && state.current.id === id) { markLost(); }
      else { R.flash(t("notAvailable"), "error"); }
      refreshSoon();
    });
  }

  /* A conversation just opened: the reply box takes the keyboard when it is ours. On a phone (one column)
     it opens below the queue and "My conversations", so the page scrolls to it (its top under the bar)
     and its heading takes the focus: a tap on a card visibly opens it, a screen reader says whose it is,
     and no on-screen keyboard covers the transcript before the agent taps the box. */
  function showOpened() {
    var box = $("reply-text");
    var writable = !box.disabled && !box.readOnly;
    if (!window.matchMedia(ONE_COLUMN).matches) {
      if (writable) { box.focus(); }
      return;
    }
    var bar = document.querySelector(".topbar");
    var below = bar && getComputedStyle(bar).position === "sticky" ? bar.getBoundingClientRect().height : 0;
    var top = $("conv").getBoundingClientRect().top + window.pageYOffset - below - 6;
    window.scrollTo(0, Math.max(0, top));
    $("conv-customer").focus({ preventScroll: true });
  }

  function reloadCurrent() {
    if (state.current && !state.current.lost) { return openConversation(state.current.id); }
    return Promise.resolve();
  }

  /* Refused to read it any more (403), it is gone (404), or a reply or action found it is not ours (409). */
  function isGone(err) {
    if (!err || !(err.status === 403 || err.status === 404 || err.status === 409)) { return false; }
    return err.status !== 403 || err.code === "forbidden";
  }

  function isLostAction(err) {
    return !!err && err.status === 409 && LOST_CODES.indexOf(err.code) >= 0;
  }

  /* Someone else has it now, or it lapsed back to the queue while we were away: no Claim, no reply, no
     actions, a notice instead of the permissions alert; the transcript and the draft stay. */
  function markLost() {
    var cur = state.current;
    if (!cur || cur.lost) { return; }
    cur.lost = true;
    state.live.watch(null);
    renderMeta(cur.data, true);
    syncCurrentClaim();
  }

  /* What the last live event on it says happened, when it names who: a supervisor took it over from me, or
     someone else claimed the one I was looking at (first, when my own claim of it lost the race). */
  function whyFromFrame(cur) {
    var f = cur.frame;
    var me = state.me && state.me.name;
    if (!f || !me || !f.agent || f.agent === me) { return ""; }
    var who = f.agent_label || f.agent;
    if (f.event === "assigned" && f.from === me) { return t("lostTakenOver", { agent: who }); }
    if (!cur.wasMine && (f.event === "claimed" || f.event === "assigned")) {
      return t(cur.raced ? "lostClaimedFirst" : "lostClaimedBy", { agent: who });
    }
    return "";
  }

  /* What the audit says became of one of mine (GET /api/mine/recent: who did what, with display names). */
  function whyFromRecent(e) {
    var me = state.me && state.me.name;
    var by = e.by_display || e.by || "";
    if (e.event === "assigned" && e.by !== me) { return t("lostTakenOver", { agent: by }); }
    if (e.event === "lease_lapsed") { return t("lostLapsed"); }
    if (e.event === "abandoned") { return t("lostAbandoned"); }
    if (DONE_BY.indexOf(e.event) < 0) { return ""; }
    return e.by === me ? t("lostYou_" + e.event) : by ? t("lostBy_" + e.event, { agent: by }) : "";
  }

  /* A conversation of mine slipped away: ask the audit (through "Recent", which it refreshes) what
     happened, and say it instead of the generic notice. Once per view of it. */
  function explainLost(cur) {
    if (cur.explaining || !cur.wasMine) { return; }
    cur.explaining = true;
    refreshRecent().then(function () {
      var e = state.recent.filter(function (x) { return x.conversation_id === cur.id; })[0];
      var why = e ? whyFromRecent(e) : "";
      if (!why || state.current !== cur) { return; }
      cur.why = why;
      showLost(cur);
    });
  }

  function showLost(cur) {
    if (state.current === cur && !$("conv-lost").hidden) { $("conv-lost").textContent = lostText(cur); }
  }

  function lostText(cur) {
    var text = cur.why || whyFromFrame(cur) || t(cur.wasMine ? "lostMine" : "lostViewed");
    return $("reply-text").value.trim() ? text + " " + t("draftKept") : text;
  }

  function closeConversation() {
    state.current = null;
    state.live.watch(null);
    showInAddress(null);
    $("conv").hidden = true;
    $("context").hidden = true;
    $("actions").hidden = true;
    $("conv-placeholder").hidden = false;
    Array.prototype.forEach.call(document.querySelectorAll(".item-button.is-current"), function (b) {
      b.classList.remove("is-current");
    });
  }

  // -- doing things ------------------------------------------------------------------------------------

  function claim(id) {
    var body = id ? { conversation_id: id } : {};
    // Claim next: the conversation on screen closes at once. A greeting typed while the claim is on its
    // way would otherwise go to the customer before (or stay as their draft). It comes back, draft and
    // all, should nobody be waiting.
    var left = null;
    if (!id) {
      if (state.claiming) { return Promise.resolve(); }
      state.claiming = true;
      state.opening++; // a conversation still being fetched must not open over the claim
      $("claim-next").disabled = true;
      if (state.current) {
        saveDraft();
        left = state.current.lost ? null : state.current.id;
        closeConversation();
      }
      $("conv-placeholder").textContent = t("claiming");
    }
    function done() {
      if (id) { return; }
      state.claiming = false;
      $("claim-next").disabled = false;
      $("conv-placeholder").textContent = t("pickOne");
    }
    return R.api("POST", "/api/claim", body).then(function (data) {
      done();
      var claimed = (data && data.conversation_id) || id;
      state.claimedHere[claimed] = true;
      return refreshLists().then(function () { return openConversation(claimed); });
    }, function (err) {
      done();
      if (err.status === 409 && err.code === "empty") { R.flash(t("noneWaiting"), "info"); }
      else { R.reportError(err); }
      return refreshLists().then(function () {
        if (left && !state.current) { return openConversation(left); }
        // Lost a race for the one on screen: its view must stop offering the claim.
        if (id && state.current && state.current.id === id) { state.current.raced = true; return reloadCurrent(); }
      });
    });
  }

  function setMode(mode) {
    state.mode = mode;
    $("mode-reply").setAttribute("aria-pressed", String(mode === "reply"));
    $("mode-note").setAttribute("aria-pressed", String(mode === "note"));
    $("reply-form").classList.toggle("is-note", mode === "note");
    $("reply-text").placeholder = t(mode === "note" ? "notePlaceholder" : "replyPlaceholder");
    $("reply-send").textContent = t(mode === "note" ? "addNote" : "send");
  }

  function sendReply() {
    var cur = state.current;
    var box = $("reply-text");
    var text = box.value;
    if (!cur || !text.trim() || box.disabled || box.readOnly) { return; }
    // Too long: not sent and not cut; the text stays in the box and the line above it says why.
    if (updateCount() > 0) { sayLimit(true); box.focus(); return; }
    var mode = state.mode;
    var path = "/api/conversations/" + encodeURIComponent(cur.id) + "/" + (mode === "note" ? "note" : "reply");
    $("reply-send").disabled = true;
    R.api("POST", path, { text: text }).then(function (data) {
      if (box.value === text) { box.value = ""; updateCount(); }
      if (state.current === cur) { saveDraft(); } else { dropDraft(cur.id); }
      var who = state.me ? (state.me.display_name || state.me.name) : "";
      var entry = { id: data && data.id, text: text, ts: Date.now(), author: who };
      if (mode === "note") { addNote(entry); }
      else { entry.from = "agent"; appendMessage(entry); }
    }, function (err) {
      var lost = isLostAction(err) || (mode === "note" && isGone(err));
      if (!lost) { R.reportError(err); }
      else if (state.current === cur) { markLost(); refreshSoon(); }
    }).then(function () {
      if (state.current !== cur || cur.lost) { return; } // the draft stays, Send stays off
      $("reply-send").disabled = false;
      box.focus();
    });
  }

  /* "1850 / 2000" near the limit; over it, by how many characters and what to do. No maxlength on the
     box: it would cut a pasted reply silently. Counted as the server counts (code points). Returns the
     number of characters too many (0 when the text fits). */
  function updateCount() {
    var box = $("reply-text");
    var n = countChars(box.value);
    var over = n - state.maxChars;
    var counter = $("reply-count");
    counter.hidden = n < state.maxChars * COUNT_FROM;
    counter.textContent = over > 0 ? limitText(over === 1 ? "overOne" : "overMany", { n: over, max: state.maxChars })
      : t("charsLeft", { n: n, max: state.maxChars });
    counter.classList.toggle("is-full", n >= state.maxChars);
    if (counter.hidden) { box.removeAttribute("aria-describedby"); } else { box.setAttribute("aria-describedby", "reply-count"); }
    if (over > 0) { box.setAttribute("aria-invalid", "true"); } else { box.removeAttribute("aria-invalid"); }
    // Dimmed, not disabled (disabled says "not yours"): pressed, it says again why it does not send.
    var send = $("reply-send");
    send.style.opacity = over > 0 ? "0.5" : ""; // as .btn:disabled looks; console.css is not this file's
    if (over <= 0 && $("reply-limit-say").textContent) { $("reply-limit-say").textContent = ""; }
    return over > 0 ? over : 0;
  }

  var limitTimer = null;

  function sayLimitSoon() {
    clearTimeout(limitTimer);
    limitTimer = setTimeout(function () { sayLimit(false); }, LIMIT_SAY_MS);
  }

  /* Heard through its own live region when the agent pauses or presses Send (the visible line changes at
     every key). Only over the limit: the count near it is for the eye. `again`: said even when it is what
     was said last (Send pressed once more). */
  function sayLimit(again) {
    clearTimeout(limitTimer);
    var say = $("reply-limit-say");
    var text = overText();
    if (text === say.textContent && !again) { return; }
    say.textContent = ""; // emptied first, so the same words are news again
    if (!text) { return; }
    setTimeout(function () { say.textContent = overText(); }, 50); // what it says by then
  }

  function overText() {
    return countChars($("reply-text").value) > state.maxChars ? $("reply-count").textContent : "";
  }

  function act(action, body, doneKey) {
    var cur = state.current;
    if (!cur) { return; }
    var buttons = document.querySelectorAll("#actions button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    R.api("POST", "/api/conversations/" + encodeURIComponent(cur.id) + "/" + action, body).then(function () {
      R.flash(t(doneKey), "ok");
      dropDraft(cur.id);
      Array.prototype.forEach.call(document.querySelectorAll("#actions input"), function (i) { i.value = ""; });
      NOTE_INPUTS.forEach(updateNoteCount);
      closeConversation();
      return refreshLists();
    }, function (err) {
      if (isLostAction(err) && state.current === cur) { markLost(); return refreshLists(); }
      R.reportError(err);
      return refreshLists().then(reloadCurrent);
    }).then(function () {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      if (state.current) { renderActions(state.current.data); }
    });
  }

  function isSupervisor() {
    return !!state.me && (state.me.role === "supervisor" || state.me.role === "admin");
  }

  /* A supervisor's take over or give back of a conversation another agent holds; it stays on screen. */
  function supervise(action, doneKey) {
    var cur = state.current;
    if (!cur) { return; }
    var buttons = document.querySelectorAll("#conv-supervise button");
    Array.prototype.forEach.call(buttons, function (b) { b.disabled = true; });
    R.api("POST", "/api/conversations/" + encodeURIComponent(cur.id) + "/" + action).then(function () {
      R.flash(t(doneKey), "ok");
    }, R.reportError).then(function () {
      Array.prototype.forEach.call(buttons, function (b) { b.disabled = false; });
      return refreshLists().then(function () { if (state.current === cur) { return openConversation(cur.id); } });
    });
  }

  /* Signing out with conversations open gives them back first (after asking): their customers would
     otherwise wait for the claims to lapse, then hear the agent "got disconnected". Cancel stays. */
  function signOut() {
    var open = state.mine.map(function (i) { return i.conversation_id; });
    if (open.length) {
      var ask = open.length === 1 ? t("confirmLogoutOne") : t("confirmLogoutMany", { n: open.length });
      if (!window.confirm(ask)) { return; }
    }
    Promise.all(open.map(function (id) {
      return R.api("POST", "/api/conversations/" + encodeURIComponent(id) + "/release").catch(function () { return null; });
    })).then(function () { dropAllDrafts(); R.logout(); });
  }

  function noteOf(id) {
    var v = $(id).value.trim();
    return v ? { note: v } : {};
  }

  /* A note of an action, counted as the reply box counts (what is sent: trimmed, in code points): the
     count from 80 % of the limit, and over it by how many characters. No maxlength on the inputs: it
     would cut a pasted note silently. Returns the number of characters too many (0 when it fits). */
  function updateNoteCount(id) {
    var input = $(id);
    var counter = $(id + "-count");
    var n = countChars(input.value.trim());
    var over = n - state.maxChars;
    counter.hidden = n < state.maxChars * COUNT_FROM;
    counter.textContent = over > 0 ? limitText(over === 1 ? "noteOverOne" : "noteOverMany", { n: over, max: state.maxChars })
      : t("charsLeft", { n: n, max: state.maxChars });
    counter.classList.toggle("is-full", n >= state.maxChars);
    if (counter.hidden) { input.removeAttribute("aria-describedby"); } else { input.setAttribute("aria-describedby", id + "-count"); }
    if (over > 0) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
    return over > 0 ? over : 0;
  }

  /* Over the limit: not sent and not cut; said in the alert line (read out) and under the note, which
     keeps the text and the keyboard. */
  function noteTooLong(id) {
    if (!updateNoteCount(id)) { return false; }
    R.flash($(id + "-count").textContent, "error");
    $(id).focus();
    return true;
  }

  // -- canned replies ----------------------------------------------------------------------------------

  function searchCanned() {
    var q = $("canned-q").value.trim();
    var list = R.clear($("canned-list"));
    if (!q) { return; }
    var lang = state.current ? state.current.data.lang : R.lang;
    var path = "/api/canned?q=" + encodeURIComponent(q) + "&lang=" + encodeURIComponent(lang || "");
    R.api("GET", path).then(function (data) {
      if ($("canned-q").value.trim() !== q) { return; } // a newer search is on its way
      R.clear(list);
      var items = (data && data.items) || [];
      if (!items.length) { list.appendChild(el("li", "empty", t("cannedNone"))); }
      items.forEach(function (c) {
        var li = el("li", "canned-item");
        var b = el("button", "canned-button");
        b.type = "button";
        b.appendChild(el("strong", "canned-title", c.title || c.entry_id));
        b.appendChild(el("span", "canned-text", c.text || ""));
        b.title = t("insert");
        b.addEventListener("click", function () { insertText(c.text || ""); });
        li.appendChild(b);
        list.appendChild(li);
      });
    }).catch(R.reportError);
  }

  function insertText(text) {
    var box = $("reply-text");
    if (box.disabled || box.readOnly) { return; }
    setMode("reply");
    var start = box.selectionStart != null ? box.selectionStart : box.value.length;
    var end = box.selectionEnd != null ? box.selectionEnd : box.value.length;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    box.focus();
    box.selectionStart = box.selectionEnd = start + text.length;
    updateCount();
    sayLimitSoon();
    saveDraft();
  }

  // -- live events -------------------------------------------------------------------------------------

  function onFrame(frame) {
    if (frame.type === "queue") {
      refreshSoon();
      if (state.current && frame.conversation_id === state.current.id) {
        state.current.frame = frame; // what happened to it, and who did it: the "no longer yours" notice says so
        showLost(state.current);
      }
      if (state.current && frame.conversation_id === state.current.id && frame.event !== "queued") {
        reloadCurrentSoon();
      }
    } else if (frame.type === "message" && frame.message) {
      var id = frame.conversation_id;
      if (state.current && state.current.id === id) {
        appendMessage(frame.message);
        if (frame.message.from === "note") { addNote(frame.message); }
      }
      var unseen = document.hidden || !state.current || state.current.id !== id;
      if (frame.message.from === "customer" && unseen) {
        if (isMine(id)) {
          state.unread[id] = true;
          renderMine();
          // Only while the tab is hidden (R.notify's rule): the beep and the mark say it otherwise.
          var item = state.mine.filter(function (x) { return x.conversation_id === id; })[0];
          R.notify(t("customerWrote", { customer: R.customerLabel(item && item.customer, id) }),
                   String(frame.message.text || "").slice(0, 140), "relevo-msg-" + id);
        }
        R.beep();
      }
    } else if (frame.type === "unwatched" && state.current && frame.conversation_id === state.current.id) {
      reloadCurrentSoon(); // the server stopped streaming it to us: find out why
    } else if (frame.type === "presence" && state.me && frame.agent === state.me.name) {
      setPresenceSelect(frame.state);
    }
  }

  var reloadCurrentSoon = debounce(reloadCurrent, REFRESH_DEBOUNCE_MS);

  function onLiveState(up) {
    var pill = $("conn");
    pill.textContent = t(up ? "connected" : "reconnecting");
    pill.className = "pill " + (up ? "pill-on" : "pill-off");
  }

  function setPresenceSelect(value) {
    if (value === "online" || value === "away") { $("presence").value = value; }
  }

  function sendPresence() {
    return R.api("POST", "/api/presence", { state: $("presence").value }).catch(function (err) {
      if (err.status !== 0) { R.reportError(err); }
    });
  }

  // -- start -------------------------------------------------------------------------------------------

  function wire() {
    $("claim-next").addEventListener("click", function () { claim(null); });
    $("conv-claim").addEventListener("click", function () { if (state.current) { claim(state.current.id); } });
    $("conv-close").addEventListener("click", closeConversation);
    // Leaving on purpose: the drafts go with the sign-in.
    $("logout").addEventListener("click", signOut);
    R.wireOwnPassword("change-password");
    $("mode-reply").addEventListener("click", function () { setMode("reply"); saveDraft(); $("reply-text").focus(); });
    $("mode-note").addEventListener("click", function () { setMode("note"); saveDraft(); $("reply-text").focus(); });
    $("reply-form").addEventListener("submit", function (ev) { ev.preventDefault(); sendReply(); });
    $("reply-text").addEventListener("input", function () { updateCount(); sayLimitSoon(); saveDraft(); });
    $("reply-text").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); sendReply(); }
    });
    $("canned-q").addEventListener("input", debounce(searchCanned, CANNED_DEBOUNCE_MS));
    $("canned").addEventListener("toggle", function () { if ($("canned").open) { $("canned-q").focus(); } });
    NOTE_INPUTS.forEach(function (id) {
      $(id).addEventListener("input", function () { updateNoteCount(id); });
    });
    $("transfer-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var dep = $("transfer-dept").value;
      if (!dep || noteTooLong("transfer-note")) { return; }
      var body = noteOf("transfer-note");
      body.department = dep;
      act("transfer", body, "done_transferred");
    });
    $("escalate-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (noteTooLong("escalate-note")) { return; }
      act("escalate", noteOf("escalate-note"), "done_escalated");
    });
    $("release-btn").addEventListener("click", function () { act("release", undefined, "done_released"); });
    $("conv-takeover").addEventListener("click", function () { supervise("take_over", "done_taken"); });
    $("conv-giveback").addEventListener("click", function () { supervise("release", "done_released"); });
    // These two end the agent's part for good (the customer is asked for a rating, or is back with the
    // bot): a stray click must not do it.
    $("return-btn").addEventListener("click", function () {
      if (window.confirm(t("confirmReturn"))) { act("return_to_bot", undefined, "done_returned"); }
    });
    $("resolve-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (noteTooLong("resolve-note") || !window.confirm(t("confirmResolve"))) { return; }
      var body = noteOf("resolve-note");
      body.outcome = $("resolve-outcome").value;
      // Spam has nobody to ask, and a duplicate is rated in the conversation that goes on (NOT_RATED in
      // handoff/notify.py): no rating is asked for those.
      act("resolve", body, NOT_RATED.indexOf(body.outcome) >= 0 ? "done_resolved_unrated" : "done_resolved");
    });
    $("presence").addEventListener("change", sendPresence);
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) { return; }
      sendPresence();
      // Back to the tab: what was written in the conversation on screen meanwhile is in front of them.
      if (state.current && state.unread[state.current.id]) { delete state.unread[state.current.id]; renderMine(); }
    });
    $("notify-btn").addEventListener("click", function () {
      R.askNotify().then(function () { $("notify-btn").hidden = Notification.permission !== "default"; });
    });
    var outcomes = R.clear($("resolve-outcome"));
    R.OUTCOMES.forEach(function (o) { outcomes.appendChild(R.option(o, R.outcomeLabel(o), o === "solved")); });
  }

  function start() {
    R.applyLabels();
    // The warning over the limit is long: it takes a line of its own under the Reply / Private note
    // buttons instead of squeezing them (here, not in console.css, which this file does not own).
    $("mode-reply").parentNode.style.flexWrap = "wrap";
    wire();
    setMode("reply");
    state.wanted = new URLSearchParams(location.search).get("c") || null;
    R.me().then(function (data) {
      state.me = data.agent || {};
      state.maxChars = Number(data.max_message_chars) || state.maxChars;
      updateCount();
      NOTE_INPUTS.forEach(updateNoteCount);
      $("me-name").textContent = state.me.display_name || state.me.name || "";
      $("to-supervisor").hidden = state.me.role !== "supervisor" && state.me.role !== "admin";
      setPresenceSelect(data.presence === "away" ? "away" : "online");
      $("notify-btn").hidden = !R.canNotify() || Notification.permission !== "default";
      renderCapacity();
      return refreshDepartments();
    }).then(function () {
      state.live = R.live({
        onFrame: onFrame,
        onState: onLiveState,
        // After a blip the frames sent meanwhile are gone: fetch the whole state again.
        onOpen: function (again) { refreshLists(); if (again) { reloadCurrent(); } }
      });
      sendPresence();
      refreshLists().then(function () {
        if (state.wanted) { openConversation(state.wanted); }
      });
      refreshRecent();
      setInterval(refreshRecent, RECENT_MS);
      setInterval(tick, TICK_MS);
      setInterval(sendPresence, PRESENCE_MS);
      // While the socket is down the lists still move, more slowly.
      setInterval(function () { if (!state.live.isOpen()) { refreshLists(); } }, POLL_OFFLINE_MS);
    }).catch(R.reportError);
  }

  start();
})();
