/* Relevo chat widget: one <script src=".../widget.js" data-lang data-color data-position data-title>.
   Plain JavaScript, no build step. Everything people typed is rendered with textContent, never as HTML. */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || window.__relevoWidget) { return; }
  window.__relevoWidget = true;

  var TEXTS = {
    en: {
      title: "Support", open: "Chat with us", close: "Close chat", placeholder: "Write a message…",
      send: "Send", typing: "Typing", connecting: "Connecting…", offline: "Reconnecting…",
      noNetwork: "No connection. Your messages will be sent when you are back online.",
      unavailable: "We cannot save your message right now; it will be sent as soon as we can.",
      queued: "You are number {position} in the queue. Estimated wait: {wait}.",
      queuedNoWait: "You are number {position} in the queue. Estimated wait: as soon as someone is free.",
      inQueue: "You are in the queue. Estimated wait: {wait}.",
      inQueueNoWait: "You are in the queue. Estimated wait: as soon as someone is free.",
      assigned: "{agent} joined the conversation.", assignedAnon: "An agent joined the conversation.",
      chatting: "Chatting with {agent}", chattingAnon: "Chatting with an agent",
      resolved: "This conversation is resolved.", closed: "This conversation is closed.",
      minutes: "{n} min", hours: "{h} h {m} min", lessMinute: "less than a minute",
      delivered: "Delivered", sending: "Sending", failed: "Not sent — tap to retry",
      tooLong: "Message too long (max {n} characters).", slowDown: "Too many messages; sending again shortly.",
      newSession: "Your previous session expired; a new conversation started.",
      notHere: "Chat is not available on this page. Please contact us another way.",
      unreadOne: "{n} new message", unreadMany: "{n} new messages", unreadLabel: "{open} ({unread})",
      you: "You", assistant: "Assistant", agent: "Agent", notice: "Notice", said: "{who}:",
      typingNow: "Assistant is typing", newConversation: "New conversation",
      charsLeftOne: "1 character left", charsLeftMany: "{n} characters left",
      overOne: "1 character too many (the limit is {max}). Please shorten your message or send it in parts.",
      overMany: "{n} characters too many (the limit is {max}). Please shorten your message or send it in parts."
    },
    es: {
      title: "Atención al cliente", open: "Chatea con nosotros", close: "Cerrar chat",
      placeholder: "Escribe un mensaje…", send: "Enviar", typing: "Escribiendo",
      connecting: "Conectando…", offline: "Reconectando…",
      noNetwork: "Sin conexión. Tus mensajes se enviarán cuando vuelvas a tener conexión.",
      unavailable: "Ahora no podemos guardar tu mensaje; se enviará en cuanto sea posible.",
      queued: "Eres el número {position} en la cola. Espera estimada: {wait}.",
      queuedNoWait: "Eres el número {position} en la cola. Espera estimada: en cuanto alguien quede libre.",
      inQueue: "Estás en la cola. Espera estimada: {wait}.",
      inQueueNoWait: "Estás en la cola. Espera estimada: en cuanto alguien quede libre.",
      assigned: "{agent} se ha unido a la conversación.", assignedAnon: "Un agente se ha unido a la conversación.",
      chatting: "Hablando con {agent}", chattingAnon: "Hablando con un agente",
      resolved: "Esta conversación está resuelta.", closed: "Esta conversación está cerrada.",
      minutes: "{n} min", hours: "{h} h {m} min", lessMinute: "menos de un minuto",
      delivered: "Entregado", sending: "Enviando", failed: "No enviado — toca para reintentar",
      tooLong: "Mensaje demasiado largo (máximo {n} caracteres).",
      slowDown: "Demasiados mensajes; se reenviará en breve.",
      newSession: "Tu sesión anterior caducó; empieza una conversación nueva.",
      notHere: "El chat no está disponible en esta página. Contáctanos por otra vía.",
      unreadOne: "{n} mensaje nuevo", unreadMany: "{n} mensajes nuevos", unreadLabel: "{open} ({unread})",
      you: "Tú", assistant: "Asistente", agent: "Agente", notice: "Aviso", said: "{who}:",
      typingNow: "El asistente está escribiendo", newConversation: "Nueva conversación",
      charsLeftOne: "Queda 1 carácter", charsLeftMany: "Quedan {n} caracteres",
      overOne: "Sobra 1 carácter (el máximo es {max}). Acorta el mensaje o envíalo en varias partes.",
      overMany: "Sobran {n} caracteres (el máximo es {max}). Acorta el mensaje o envíalo en varias partes."
    }
  };

  var data = script.dataset || {};
  var base = new URL(script.src, document.baseURI);
  var lang = pickLang(data.lang);
  var T = TEXTS[lang];
  var storeKey = "relevo:" + base.host + ":";
  var TYPING_TIMEOUT_MS = 15000;
  var RETRY_MS = 2000;
  var ACK_TIMEOUT_MS = 15000; // a message unacknowledged this long on an open socket: it has stalled
  var NOTICE_MS = 10000; // how long a notice (expired session, too long) stays without anything newer
  var AT_BOTTOM_PX = 30;
  var LIMIT_SAY_MS = 1000; // the count is read out once the customer pauses, not on every key
  var ORIGIN_REFUSED = 4403; // close code: this page's origin is not in server.allowed_origins
  // The phone layout of widget.css (its @media): there the open panel covers the page, so it is modal.
  var FULL_SCREEN = "(max-width: 480px)";

  var ws = null;
  var attempt = 0;
  var reconnectTimer = null;
  var typingTimer = null;
  var maxChars = 2000; // server.max_message_chars, from the welcome; counted as the server counts
  var limitTimer = null;
  var state = "bot";
  var unread = 0; // messages that came in while the panel was closed
  var banner = ""; // what the status line says: "" | "offline" | "state" | "ended" | "notice"
  var standing = null; // the state line under a notice: {text, kind, quiet}
  var agentName = null; // while a person has the conversation: their name as the "assigned" status gave it
  var ackTimer = null; // a message in flight too long: the connection has stalled
  var noticeTimer = null;
  // Client id -> {id, type, text, value, label}, in the order typed (ids are never integer-like, so
  // the object's keys keep their insertion order): the order they are sent and stored in.
  var pending = loadPending();
  var inflight = null; // client id of the one message sent on this socket and not yet acked or refused
  var retryTimer = null; // set while the server asked us to wait (rate_limited, unavailable)
  var refused = false; // this page may not use the chat (origin_not_allowed): nothing more is tried
  var els = {};
  var fullScreen = window.matchMedia ? window.matchMedia(FULL_SCREEN) : null;
  // Tabs of this site share the session but each has its own socket, and the server sends a customer
  // message back to no socket: the tab that sent it tells the others once it is stored.
  var tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel(storeKey + "tabs") : null;

  function pickLang(asked) {
    var browser = String(navigator.language || "en").slice(0, 2).toLowerCase();
    if (!TEXTS[browser]) { browser = "en"; }
    if (!asked) { return browser; }
    var code = String(asked).slice(0, 2).toLowerCase();
    if (TEXTS[code]) { return code; }
    warn("data-lang " + JSON.stringify(asked) + " is not one of " + Object.keys(TEXTS).join(", ") +
         "; using the browser's language (" + browser + ")");
    return browser;
  }

  function warn(text) {
    if (window.console) { console.warn("Relevo widget: " + text); }
  }

  /* White text on the accent unless a light brand colour (gold, pastel) leaves it unreadable: then the
     darker text, and where the accent is text or a border on white (buttons), a darker shade of it, so
     each reads at the WCAG contrast of 4.5:1 where it can. */
  var DARK = [27, 31, 35]; // --relevo-fg
  function fitColours(root, color) {
    var probe = document.createElement("span");
    probe.style.color = color;
    (document.body || document.documentElement).appendChild(probe);
    var rgb = /^rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)$/.exec(getComputedStyle(probe).color);
    probe.remove();
    if (!rgb || (rgb[4] !== undefined && Number(rgb[4]) < 1)) { return; } // a colour space or see-through: as given
    var accent = [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
    var onWhite = contrast(accent, [255, 255, 255]);
    if (onWhite >= 4.5) { return; }
    if (contrast(accent, DARK) > onWhite) { root.style.setProperty("--relevo-on-color", "rgb(" + DARK.join(",") + ")"); }
    var ink = accent;
    for (var k = 0.95; k > 0 && contrast(ink, [255, 255, 255]) < 4.5; k -= 0.05) {
      ink = accent.map(function (v) { return Math.round(v * k); });
    }
    root.style.setProperty("--relevo-ink", "rgb(" + ink.join(",") + ")");
  }

  function contrast(a, b) {
    var la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  function luminance(rgb) {
    var c = rgb.map(function (v) {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k] == null ? "" : String(values[k]); });
  }

  function store(name, value) {
    try {
      if (value === null) { localStorage.removeItem(storeKey + name); }
      else { localStorage.setItem(storeKey + name, value); }
    } catch (e) { /* private mode: the widget still works, it just forgets on reload */ }
  }

  function load(name) {
    try { return localStorage.getItem(storeKey + name); } catch (e) { return null; }
  }

  function loadPending() {
    try {
      var list = JSON.parse(load("pending") || "[]");
      var map = {};
      list.forEach(function (p) {
        if (!p || !p.id) { return; }
        // Kept by an older widget, a text may still hold half an emoji: shown and sent as the server stores it.
        if (typeof p.text === "string") { p.text = wellFormed(p.text); }
        map[p.id] = p;
      });
      return map;
    } catch (e) { return {}; }
  }

  function savePending() {
    var list = Object.keys(pending).map(function (k) { return pending[k]; });
    store("pending", list.length ? JSON.stringify(list) : null);
  }

  function newId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var a = new Uint32Array(4);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (n) { return n.toString(16); }).join("-");
  }

  // Characters as the server counts them (Python's len(): code points). A string's .length counts
  // UTF-16 units, so an emoji would count twice and the widget would refuse what the server takes.
  function countChars(text) {
    var n = text.length;
    for (var i = 0; i < text.length - 1; i++) {
      var c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) {
        var d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) { n -= 1; i += 1; }
      }
    }
    return n;
  }

  // Half of an emoji (a paste cut in the middle) is a lone UTF-16 surrogate: JSON.stringify writes it
  // as "\ud83d", which is not text in UTF-8, so the server and Redis could not take the message as it is.
  function wellFormed(text) {
    text = String(text);
    if (typeof text.toWellFormed === "function") { return text.toWellFormed(); }
    return text.replace(/[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]/g, function (m) {
      return m.length === 2 ? m : "\ufffd";
    });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text != null) { node.textContent = text; }
    return node;
  }

  // -- DOM -----------------------------------------------------------------------------------------

  function build() {
    if (!document.querySelector('link[data-relevo]')) {
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = new URL("widget.css", base).href;
      link.setAttribute("data-relevo", "");
      document.head.appendChild(link);
    }
    var root = els.root = el("div", "relevo-root");
    if (data.position === "left") { root.classList.add("relevo-left"); }
    /* Any CSS colour ("#0a7a5c", "teal", "rgb(10 122 92)"); anything else is said in the console, not
       applied half-way (a value like "red; background: url(...)" is no colour and is refused whole). */
    if (data.color) {
      if (window.CSS && CSS.supports && CSS.supports("color", data.color)) {
        root.style.setProperty("--relevo-color", data.color);
        fitColours(root, data.color);
      } else {
        warn("data-color " + JSON.stringify(data.color) + " is not a CSS colour; using the default");
      }
    }
    if (data.position && data.position !== "left" && data.position !== "right") {
      warn("data-position " + JSON.stringify(data.position) + " is not left or right; using right");
    }

    var launcher = els.launcher = el("button", "relevo-launcher", "💬");
    launcher.type = "button";
    launcher.addEventListener("click", function () { setOpen(true); });
    // The count is in the launcher's label for screen readers; the badge is only what the eye sees.
    els.badge = el("span", "relevo-badge");
    els.badge.setAttribute("aria-hidden", "true");
    launcher.appendChild(els.badge);

    var panel = els.panel = el("section", "relevo-panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", data.title || T.title);
    panel.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && !ev.isComposing) { ev.preventDefault(); setOpen(false); }
      if (ev.key === "Tab" && isModal()) { keepFocusIn(ev); }
    });
    var header = el("div", "relevo-header");
    els.title = header.appendChild(el("h2", "relevo-title", data.title || T.title));
    var close = els.close = el("button", "relevo-close", "×");
    close.type = "button";
    close.setAttribute("aria-label", T.close);
    close.addEventListener("click", function () { setOpen(false); });
    header.appendChild(close);

    els.status = el("div", "relevo-status");
    els.status.hidden = true;
    els.status.setAttribute("role", "status");
    els.log = el("div", "relevo-log");
    els.log.setAttribute("role", "log");
    els.log.setAttribute("aria-live", "polite");
    els.typing = el("div", "relevo-typing");
    els.typing.hidden = true;
    // Screen readers hear "typing" once, from the announcer, not the dots each time they blink.
    els.typing.setAttribute("aria-hidden", "true");
    els.typingLabel = els.typing.appendChild(el("span", "relevo-sr", T.typing));
    ["•", "•", "•"].forEach(function (d) { els.typing.appendChild(el("span", "relevo-dot", d)); });
    // Outside the panel, so it is heard while the panel is closed too (new messages).
    els.announce = el("div", "relevo-sr");
    els.announce.setAttribute("aria-live", "polite");

    var form = el("form", "relevo-form");
    var input = els.input = el("textarea", "relevo-input");
    input.rows = 1;
    input.placeholder = T.placeholder;
    input.setAttribute("aria-label", T.placeholder);
    // No maxlength: it would cut a pasted text silently. The line above the box counts down near the
    // limit, and over it says by how much; the message is not sent until it fits.
    var limit = els.limit = el("div", "relevo-limit");
    limit.id = "relevo-limit";
    limit.hidden = true;
    // Heard when the customer pauses or tries to send, not at every key (the visible line changes
    // at every key).
    els.limitSay = el("div", "relevo-sr");
    els.limitSay.setAttribute("aria-live", "polite");
    var send = els.send = el("button", "relevo-send", T.send);
    send.type = "submit";
    form.appendChild(limit);
    form.appendChild(els.limitSay);
    form.appendChild(input);
    form.appendChild(send);
    form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submit(); }
    });
    input.addEventListener("input", function () { updateLimit(); sayLimitSoon(); });

    [header, els.status, els.log, els.typing, form].forEach(function (n) { panel.appendChild(n); });
    root.appendChild(launcher);
    root.appendChild(panel);
    root.appendChild(els.announce);
    document.body.appendChild(root);
    setUnread(0);
    // Whatever adds or removes a message (live, history, another tab, a retry), only the newest
    // message's buttons stay usable: an old answer's choices no longer fit the conversation.
    new MutationObserver(updateChoices).observe(els.log, { childList: true });
    if (fullScreen) {
      // A phone turned, a window resized: modal only while the panel covers the page.
      if (fullScreen.addEventListener) { fullScreen.addEventListener("change", updateModal); }
      else if (fullScreen.addListener) { fullScreen.addListener(updateModal); }
    }
    document.addEventListener("focusin", focusBack);
  }

  function isOpen() { return els.root.classList.contains("relevo-open"); }

  /* On a phone the open panel covers the whole page: it is a modal dialog then, and Tab / Shift+Tab go
     round its own controls instead of on to the page hidden behind it. In the corner of a wider screen
     it is not: the page stays usable beside it. */
  function isModal() { return isOpen() && !!fullScreen && fullScreen.matches; }

  function updateModal() {
    var modal = isModal();
    if (modal) { els.panel.setAttribute("aria-modal", "true"); }
    else { els.panel.removeAttribute("aria-modal"); }
    setPageInert(modal);
  }

  /* The page under the full-screen panel is inert while it is covered: a screen reader's cursor, a
     click, a script's focus() cannot land on what the customer cannot see. Only what the widget made
     inert is given back; what the page had made inert itself stays so. */
  var madeInert = [];
  function setPageInert(on) {
    if (on) {
      Array.prototype.forEach.call(document.body.children, function (n) {
        if (n !== els.root && !n.inert && madeInert.indexOf(n) < 0) { n.inert = true; madeInert.push(n); }
      });
    } else {
      madeInert.forEach(function (n) { n.inert = false; });
      madeInert = [];
    }
  }

  function focusables() {
    var all = els.panel.querySelectorAll("button, textarea, input, select, a[href], [tabindex]");
    return Array.prototype.filter.call(all, function (n) {
      return !n.disabled && n.tabIndex >= 0 && n.getClientRects().length > 0;
    });
  }

  function keepFocusIn(ev) {
    var items = focusables();
    if (!items.length) { ev.preventDefault(); return; }
    var first = items[0], last = items[items.length - 1], at = document.activeElement;
    var inside = els.panel.contains(at);
    if (ev.shiftKey && (at === first || !inside)) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && (at === last || !inside)) { ev.preventDefault(); first.focus(); }
  }

  // Focus sent out of the modal panel some other way (a script of the page, a click that lands outside):
  // back to the text box.
  function focusBack(ev) {
    if (!isModal() || els.root.contains(ev.target)) { return; }
    var items = focusables();
    var target = items.indexOf(els.input) >= 0 ? els.input : items[0];
    if (target) { target.focus(); }
  }

  function setOpen(open) {
    els.root.classList.toggle("relevo-open", open);
    store("open", open ? "1" : null);
    updateModal();
    if (open) {
      setUnread(0);
      connect();
      els.input.focus();
      scrollDown();
    } else {
      els.launcher.focus();
    }
  }

  function scrollDown() { els.log.scrollTop = els.log.scrollHeight; }

  function atBottom() {
    return els.log.scrollHeight - els.log.scrollTop - els.log.clientHeight < AT_BOTTOM_PX;
  }

  /* `kind` says what the line is about, so each event clears only what it makes out of date. `quiet`:
     a reminder, not news ("Chatting with Ana" once Ana has written): small, not announced (the log
     says who joined, and each of the agent's messages is read with their name). */
  function setStatus(text, kind, quiet) {
    var stick = atBottom(); // the line takes height from the log: keep the newest message in view
    quiet = !!(text && quiet);
    if (kind === "state" || kind === "ended") { standing = text ? { text: text, kind: kind, quiet: quiet } : null; }
    clearTimeout(noticeTimer);
    els.status.classList.toggle("relevo-status-quiet", quiet);
    if (quiet) { els.status.setAttribute("aria-hidden", "true"); }
    else { els.status.removeAttribute("aria-hidden"); }
    els.status.textContent = text || "";
    els.status.hidden = !text;
    banner = text ? kind : "";
    if (banner === "notice") { noticeTimer = setTimeout(function () { clearStatus(["notice"]); }, NOTICE_MS); }
    if (stick) { scrollDown(); }
  }

  /* A notice or "reconnecting" over the state line ("number 2 in the queue") gives it back when it goes;
     clearing the state line itself clears it. */
  function clearStatus(kinds) {
    if (kinds.indexOf(banner) < 0) { return; }
    if (standing && kinds.indexOf(standing.kind) < 0) { setStatus(standing.text, standing.kind, standing.quiet); return; }
    standing = null;
    setStatus("");
  }

  function announce(text) { els.announce.textContent = text; }

  function setUnread(n) {
    unread = n;
    els.badge.textContent = n > 99 ? "99+" : String(n);
    els.badge.hidden = !n;
    var count = fmt(n === 1 ? T.unreadOne : T.unreadMany, { n: n });
    var label = n ? fmt(T.unreadLabel, { open: T.open, unread: count }) : T.open;
    els.launcher.setAttribute("aria-label", label);
    els.launcher.title = label;
    announce(n ? count : ""); // emptied, so the next "1 new message" is news again
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    if (on && els.typing.hidden) { announce(T.typingNow); } // once per wait, not on every ack
    if (!on && els.announce.textContent === T.typingNow) { announce(""); }
    els.typing.hidden = !on;
    if (on) {
      typingTimer = setTimeout(function () { showTyping(false); }, TYPING_TIMEOUT_MS);
      scrollDown();
    }
  }

  // -- messages ------------------------------------------------------------------------------------

  /* The text of an agent's or the bot's message, its web and e-mail addresses as links a phone can tap.
     Built from text nodes and <a> elements only: nothing in the text is ever read as HTML. */
  var LINK_RE = /\bhttps?:\/\/[^\s<>"]+|\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b/g;

  function linked(text) {
    var span = el("span", "relevo-text");
    var at = 0;
    text.replace(LINK_RE, function (found, offset) {
      var href = found.replace(/[.,;:!?)\]]+$/, ""); // the sentence's full stop is not part of the address
      span.appendChild(document.createTextNode(text.slice(at, offset)));
      var a = el("a", "relevo-link", href);
      a.href = href.indexOf("@") > 0 && href.indexOf("://") < 0 ? "mailto:" + href : href;
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      span.appendChild(a);
      at = offset + href.length;
      return found;
    });
    span.appendChild(document.createTextNode(text.slice(at)));
    return span;
  }

  function renderMessage(frame) {
    if (frame.id && els.log.querySelector('[data-id="' + cssId(frame.id) + '"]')) { return null; }
    var from = ["bot", "agent", "system", "customer"].indexOf(frame.from) >= 0 ? frame.from : "bot";
    var node = el("div", "relevo-msg relevo-from-" + from);
    if (frame.id) { node.setAttribute("data-id", frame.id); }
    if (from === "agent" && frame.author) { node.setAttribute("data-author", String(frame.author)); }
    node.appendChild(speaker(from, frame.author));
    if (from === "agent" && frame.author) {
      // The hidden label already says the name: read it once.
      node.appendChild(el("span", "relevo-author", frame.author)).setAttribute("aria-hidden", "true");
    }
    node.appendChild(from === "customer" ? el("span", "relevo-text", frame.text || "") : linked(frame.text || ""));
    if (from === "customer") { node.appendChild(tick("✓", T.delivered)); }
    var buttons = Array.isArray(frame.buttons) ? frame.buttons : [];
    if (buttons.length) {
      var row = el("div", "relevo-buttons");
      buttons.forEach(function (b) {
        if (!b || typeof b.value !== "string") { return; }
        var button = el("button", "relevo-choice", String(b.label || b.value));
        button.type = "button";
        button.addEventListener("click", function (ev) { choose(b, row, ev); });
        row.appendChild(button);
      });
      node.appendChild(row);
    }
    els.log.appendChild(node);
    return node;
  }

  // The log reads as one run of text to a screen reader: say who wrote each message.
  function speaker(from, author) {
    var who = from === "customer" ? T.you : from === "agent" ? (author || T.agent)
            : from === "system" ? T.notice : T.assistant;
    return el("span", "relevo-sr", fmt(T.said, { who: who }) + " ");
  }

  function updateChoices() {
    var last = els.log.lastElementChild;
    Array.prototype.forEach.call(els.log.querySelectorAll(".relevo-choice"), function (button) {
      var active = button.closest(".relevo-msg") === last;
      // A keyboard user on a button that goes dead would be left on <body>.
      if (!active && button === document.activeElement) { els.input.focus(); }
      button.disabled = !active;
    });
  }

  function fromOtherTab(ev) {
    var m = ev.data;
    if (!m || typeof m.id !== "string" || typeof m.text !== "string" || m.session !== load("session")) { return; }
    var node = renderMessage({ id: m.id, from: "customer", text: m.text });
    if (!node) { return; }
    placeStored(node); // the bot's answer may have come in first
    scrollDown();
  }

  // A stored message (live, acked, from another tab) goes where the server stored it: before the
  // first shown message stored after it, else after the last one. Messages not stored yet (pending)
  // stay at the end, in the order they will be sent: they will be stored after all of these.
  function placeStored(node) {
    var id = node.getAttribute("data-id");
    var next = Array.prototype.find.call(els.log.querySelectorAll("[data-id], .relevo-pending"), function (n) {
      if (n === node) { return false; }
      return n.classList.contains("relevo-pending") || storedAfter(n.getAttribute("data-id"), id);
    });
    if (next) { els.log.insertBefore(node, next); }
    else if (node !== els.log.lastElementChild) { els.log.appendChild(node); }
  }

  function storedAfter(a, b) { // Redis stream ids, "<ms>-<seq>"
    var x = String(a).split("-").map(Number), y = String(b).split("-").map(Number);
    return x[0] > y[0] || (x[0] === y[0] && (x[1] || 0) > (y[1] || 0));
  }

  function cssId(id) { return String(id).replace(/["\\]/g, "\\$&"); }

  function tick(symbol, label) {
    var t = el("span", "relevo-tick");
    t.setAttribute("role", "img"); // read as "Delivered", not as the glyph
    setTick(t, symbol, label);
    return t;
  }

  function setTick(t, symbol, label) {
    t.textContent = symbol;
    t.setAttribute("aria-label", label);
    t.title = label;
  }

  function renderPending(p) {
    var node = el("div", "relevo-msg relevo-from-customer relevo-pending");
    node.setAttribute("data-client-id", p.id);
    node.appendChild(speaker("customer"));
    node.appendChild(el("span", "relevo-text", p.type === "choose" ? p.label : p.text));
    node.appendChild(tick("🕓", T.sending));
    node.addEventListener("click", function () {
      if (node.classList.contains("relevo-failed")) {
        node.classList.remove("relevo-failed");
        node.classList.add("relevo-pending");
        setTick(node.querySelector(".relevo-tick"), "🕓", T.sending);
        els.log.appendChild(node); // sent again now: after everything else
        pending[p.id] = p; // at the end of the queue
        savePending();
        flush();
      }
    });
    els.log.appendChild(node);
    scrollDown();
    return node;
  }

  function pendingNode(id) {
    return els.log.querySelector('[data-client-id="' + cssId(id) + '"]');
  }

  // -- length limit --------------------------------------------------------------------------------

  // Near the limit: how many characters are left. Over it: by how many, and what to do. Returns the
  // number of characters too many (0 when the text fits).
  function updateLimit() {
    var n = countChars(els.input.value);
    var over = n - maxChars;
    var left = maxChars - n;
    var near = n > 0 && left <= Math.max(20, Math.ceil(maxChars / 10));
    var text = over > 0 ? fmt(over === 1 ? T.overOne : T.overMany, { n: over, max: maxChars })
             : near ? fmt(left === 1 ? T.charsLeftOne : T.charsLeftMany, { n: left }) : "";
    var stick = atBottom(); // the line takes height from the log
    els.limit.textContent = text;
    els.limit.hidden = !text;
    els.limit.classList.toggle("relevo-limit-over", over > 0);
    // Dimmed, not disabled: pressed, it says again why it does not send.
    els.send.classList.toggle("relevo-send-blocked", over > 0);
    if (text) { els.input.setAttribute("aria-describedby", els.limit.id); }
    else { els.input.removeAttribute("aria-describedby"); }
    if (over > 0) {
      els.input.setAttribute("aria-invalid", "true");
    } else {
      els.input.removeAttribute("aria-invalid");
    }
    if (!text && els.limitSay.textContent) { els.limitSay.textContent = ""; }
    if (stick) { scrollDown(); }
    return over > 0 ? over : 0;
  }

  function sayLimitSoon() {
    clearTimeout(limitTimer);
    limitTimer = setTimeout(function () { sayLimit(false); }, LIMIT_SAY_MS);
  }

  // `again`: said even when it is what was said last (the customer pressed Send once more).
  function sayLimit(again) {
    clearTimeout(limitTimer);
    var text = els.limit.hidden ? "" : els.limit.textContent;
    if (text === els.limitSay.textContent && !again) { return; }
    els.limitSay.textContent = ""; // emptied first, so the same words are news again
    if (!text) { return; }
    setTimeout(function () { // what the line says by then: the customer may have typed meanwhile
      els.limitSay.textContent = els.limit.hidden ? "" : els.limit.textContent;
    }, 50);
  }

  // Something to read: not only spaces, control and format characters or code points without a glyph
  // (zero-width space, BOM, blank braille...), which the server refuses (bot/messages.py has_visible_text).
  var VISIBLE = /[^\s\p{Cc}\p{Cf}\p{Cs}\p{Zs}\p{Zl}\p{Zp}\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF0-\uFFF8\u{1BCA0}-\u{1BCA3}\u{1D173}-\u{1D17A}\u{E0000}-\u{E0FFF}]/u;

  function submit() {
    if (refused) { return; }
    var text = wellFormed(els.input.value);
    if (!VISIBLE.test(text)) { return; }
    // Too long: not sent and not cut; the text stays in the box and the line above it says why.
    if (updateLimit() > 0) {
      sayLimit(true);
      els.input.focus();
      return;
    }
    els.input.value = "";
    updateLimit();
    queue({ id: newId(), type: "message", text: text });
  }

  function choose(button, row, ev) {
    Array.prototype.forEach.call(row.querySelectorAll("button"), function (b) { b.disabled = true; });
    // The chosen button goes dead: keyboard users (detail 0) and mouse users carry on in the text
    // box; a finger tap does not, so a phone's keyboard does not pop up over the answer.
    if (ev && (ev.detail === 0 || ev.pointerType === "mouse")) { els.input.focus(); }
    queue({ id: newId(), type: "choose", value: button.value, label: String(button.label || button.value) });
  }

  function queue(p) {
    clearStatus(["notice"]); // the customer has read it and moved on
    pending[p.id] = p;
    savePending();
    renderPending(p);
    flush();
  }

  // One message at a time, the oldest first; the next goes once this one is acked. So the server
  // stores them in the order typed, even when it refuses one for a while (too fast, store down):
  // that one and every later one wait, then go again in order. A resend of something already stored
  // (the connection dropped before the ack) is recognised by its client id and not stored twice.
  function flush() {
    if (inflight || retryTimer) { return; }
    var ids = Object.keys(pending);
    if (!ids.length) { return; }
    if (!ws || ws.readyState !== WebSocket.OPEN || !ws.relevoReady) { connect(); return; }
    var p = pending[ids[0]];
    // Whatever the message came from (typed, kept from before, a button), no half emoji goes out.
    var frame = p.type === "choose" ? { type: "choose", id: p.id, value: wellFormed(p.value) }
                                    : { type: "message", id: p.id, text: wellFormed(p.text) };
    inflight = p.id;
    ws.send(JSON.stringify(frame));
    // No ack in this long on an open socket: the network has stalled without closing it (a phone
    // between cells, a laptop waking up). Start again: the message is sent again on the new socket.
    var socket = ws;
    clearTimeout(ackTimer);
    ackTimer = setTimeout(function () { if (inflight === p.id && ws === socket) { drop(); } }, ACK_TIMEOUT_MS);
  }

  function retryLater() {
    if (retryTimer) { return; }
    retryTimer = setTimeout(function () { retryTimer = null; flush(); }, RETRY_MS);
  }

  function onAck(frame) {
    var p = pending[frame.id];
    if (frame.id === inflight) { inflight = null; clearTimeout(ackTimer); }
    clearStatus(["offline"]); // stored: whatever kept it from the server is over
    if (!p) { flush(); return; } // not waiting any more (acked already)
    delete pending[frame.id];
    savePending();
    var node = pendingNode(frame.id);
    if (node && frame.msg && frame.duplicate &&
        els.log.querySelector('[data-id="' + cssId(frame.msg) + '"]')) {
      node.remove(); // stored before the connection dropped: history already shows it
    } else if (node) {
      node.classList.remove("relevo-pending", "relevo-failed");
      setTick(node.querySelector(".relevo-tick"), "✓", T.delivered);
      if (frame.msg) {
        node.setAttribute("data-id", frame.msg);
        // Where the server stored it: after what came in while it waited (typed while the network
        // stalled, it was drawn before the agent's messages that were stored first).
        placeStored(node);
        scrollDown();
        if (tabs) {
          tabs.postMessage({ session: load("session"), id: frame.msg, text: p.type === "choose" ? p.label : p.text });
        }
      }
    }
    if (state === "bot" || state === "resolved" || state === "closed") { showTyping(true); }
    flush();
  }

  function onError(frame) {
    var id = frame.id;
    // After the welcome the only frame the server can be answering is the message in flight: an error
    // without an id (a frame the server could not read, a server that does not send ids) is about it.
    // Otherwise that message would wait for an answer forever, and every later one behind it.
    if (!id && inflight && ws && ws.relevoReady && frame.code !== "bad_session") { id = inflight; }
    var p = id ? pending[id] : null;
    if (p && id === inflight) { inflight = null; }
    if (frame.code === "origin_not_allowed") { refuse(); return; }
    if (frame.code === "bad_session") {
      store("session", null);
      // A notice: the "status: bot" of the new conversation must not wipe the explanation at once.
      setStatus(T.newSession, "notice");
      return;
    }
    if (p && (frame.code === "rate_limited" || frame.code === "unavailable")) {
      if (frame.code === "rate_limited") { setStatus(T.slowDown, "notice"); }
      else { setStatus(T.unavailable, "offline"); } // until a message goes through again
      retryLater(); // it stays first in the queue: nothing typed after it goes before it
      return;
    }
    if (p) {
      // Refused for good (too long, malformed): keep it visible, not pending.
      delete pending[p.id];
      savePending();
      var node = pendingNode(p.id);
      if (frame.code === "too_long" && p.type === "message" && !els.input.value) {
        // Typed before this page knew the server's limit (or kept from before it changed): back in
        // the box, where the line above it says by how much to shorten it, rather than lost.
        if (node) { node.remove(); }
        els.input.value = p.text;
        if (updateLimit() > 0) { sayLimit(true); } else { setStatus(fmt(T.tooLong, { n: maxChars }), "notice"); }
        flush();
        return;
      }
      if (node) {
        node.classList.add("relevo-failed");
        setTick(node.querySelector(".relevo-tick"), "!", T.failed);
      }
      if (frame.code === "too_long") { setStatus(fmt(T.tooLong, { n: maxChars }), "notice"); }
      flush(); // the ones after it go on
    }
  }

  function waitText(seconds) {
    var minutes = Math.round(seconds / 60);
    if (seconds < 60) { return T.lessMinute; }
    // Out of hours the wait runs to the next opening: "8 h 16 min" reads better than "496 min".
    return minutes < 90 ? fmt(T.minutes, { n: minutes }) : fmt(T.hours, { h: Math.floor(minutes / 60), m: minutes % 60 });
  }

  function onStatus(frame) {
    state = frame.state;
    if (frame.state === "queued") {
      var wait = frame.eta_s == null ? null : waitText(frame.eta_s);
      // No position (not known yet): "in the queue", without a number rather than an invented one.
      var known = typeof frame.position === "number" && frame.position >= 1;
      var text = known ? (wait ? T.queued : T.queuedNoWait) : (wait ? T.inQueue : T.inQueueNoWait);
      setStatus(fmt(text, { position: frame.position, wait: wait }), "state");
      showTyping(false);
    } else if (frame.state === "assigned") {
      agentName = frame.agent || "";
      // Back after a reload, with the agent's messages in the history: no news that they joined.
      var spoke = agentSpoke(agentName);
      if (spoke !== null) { setStatus(chattingWith(agentName || spoke), "state", true); }
      else { setStatus(frame.agent ? fmt(T.assigned, { agent: frame.agent }) : T.assignedAnon, "state"); }
      showTyping(false);
    } else if (frame.state === "resolved") {
      setStatus(T.resolved, "ended");
    } else if (frame.state === "closed") {
      setStatus(T.closed, "ended");
    } else {
      agentName = null;
      standing = null; // back with the bot: no queue line to come back after a notice
      clearStatus(["offline", "state", "ended"]); // a notice stays until it has been read
    }
  }

  function chattingWith(name) { return name ? fmt(T.chatting, { agent: name }) : T.chattingAnon; }

  /* The author of the newest message of this conversation (not an earlier one) by that agent (any agent
     for ""); "" for one without an author, null when there is none. */
  function agentSpoke(name) {
    var nodes = els.log.querySelectorAll(".relevo-from-agent:not(.relevo-earlier)");
    for (var i = nodes.length - 1; i >= 0; i--) {
      var author = nodes[i].getAttribute("data-author") || "";
      if (!name || author === name) { return author; }
    }
    return null;
  }

  /* "Ana joined the conversation." is news once: when she writes, the line under the header turns into a
     quiet "Chatting with Ana" (the joined line stays in the log). */
  function agentWrote(frame) {
    if (state !== "assigned" || agentName === null) { return; }
    var text = chattingWith(agentName || frame.author || "");
    if (banner === "state" && !(standing && standing.quiet)) { setStatus(text, "state", true); }
    else if (standing && standing.kind === "state") { standing = { text: text, kind: "state", quiet: true }; }
  }

  function onWelcome(frame) {
    attempt = 0;
    store("session", frame.session);
    if (typeof frame.max_chars === "number" && frame.max_chars >= 1) { maxChars = frame.max_chars; updateLimit(); }
    clearStatus(["offline"]);
    // The server's history is the truth: draw it again, then what is still waiting for an ack.
    els.log.textContent = "";
    var history = Array.isArray(frame.history) ? frame.history : [];
    history.forEach(function (m, i) {
      followLang(m);
      // Messages of the conversation before this one come first: a line shows where this one starts.
      if (i > 0 && history[i - 1].earlier && !m.earlier) {
        els.log.appendChild(el("div", "relevo-divider", T.newConversation)).setAttribute("role", "separator");
      }
      var node = renderMessage(m);
      if (node && m.earlier) { node.classList.add("relevo-earlier"); }
    });
    ws.relevoReady = true;
    // Not stored yet, so after everything stored: shown last, then sent again in the order typed.
    Object.keys(pending).forEach(function (id) { renderPending(pending[id]); });
    inflight = null;
    flush();
    scrollDown();
  }

  // The bot writes in the conversation's language, which may not be the page's ("hola" on an English
  // page): the widget's own words (queue line, placeholder, Send) follow it.
  function followLang(frame) {
    if ((frame.from !== "bot" && frame.from !== "system") || !TEXTS[frame.lang] || frame.lang === lang) { return; }
    lang = frame.lang;
    T = TEXTS[lang];
    els.input.placeholder = T.placeholder;
    els.input.setAttribute("aria-label", T.placeholder);
    els.send.textContent = T.send;
    els.close.setAttribute("aria-label", T.close);
    els.typingLabel.textContent = T.typing;
    updateLimit();
    if (!data.title) {
      els.title.textContent = T.title;
      els.panel.setAttribute("aria-label", T.title);
    }
    setUnread(unread); // the launcher's label
  }

  // A live message (history on welcome is drawn without this: it is not news).
  function onMessage(frame) {
    followLang(frame);
    var node = renderMessage(frame);
    if (node) { placeStored(node); } // an answer can come in after the ack of a message stored later
    if (node && frame.from !== "customer") {
      showTyping(false);
      if (!isOpen()) { setUnread(unread + 1); }
    }
    if (node && frame.from === "agent") { agentWrote(frame); }
    // The bot talking again means the conversation goes on (a new one after a goodbye or a
    // resolution), so "closed"/"resolved" is no longer true.
    if (node && frame.from === "bot") { clearStatus(["ended"]); }
    scrollDown();
  }

  function onFrame(ev) {
    var frame;
    try { frame = JSON.parse(ev.data); } catch (e) { return; }
    if (!frame || typeof frame !== "object") { return; }
    if (frame.type === "welcome") { onWelcome(frame); }
    else if (frame.type === "message") { onMessage(frame); }
    else if (frame.type === "ack") { onAck(frame); }
    else if (frame.type === "status") { onStatus(frame); }
    else if (frame.type === "error") { onError(frame); }
  }

  // -- connection ----------------------------------------------------------------------------------

  /* This page's address is not one Relevo serves (server.allowed_origins): no retry can succeed, so
     none is made, and the customer is told rather than left typing into a chat that never answers. */
  function refuse() {
    refused = true;
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    showTyping(false);
    els.input.disabled = true;
    els.send.disabled = true;
    setStatus(T.notHere, "ended");
  }

  function connect() {
    if (refused) { return; }
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) { return; }
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    // Offline, an attempt can only fail: wait (the "online" event, or the next try) and say so.
    if (navigator.onLine === false) { scheduleReconnect(); return; }
    var url = new URL("ws", base);
    url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    if (attempt > 0) { setStatus(offlineText(), "offline"); }
    var socket = ws = new WebSocket(url.href);
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({ type: "hello", session: load("session"), lang: lang }));
    });
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", function (ev) {
      if (ev.code === ORIGIN_REFUSED) { refuse(); }
      if (ws === socket) { drop(); }
    });
  }

  function scheduleReconnect() {
    if (reconnectTimer || refused) { return; }
    // Exponential backoff with jitter, so a restarted server is not hit by every widget at once.
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt += 1;
    setStatus(offlineText(), "offline");
    reconnectTimer = setTimeout(connect, delay);
  }

  function offlineText() { return navigator.onLine === false ? T.noNetwork : T.offline; }

  /* The socket is gone (closed), or given up on (the browser says it is offline, or it stalled):
     reconnect with backoff, saying why meanwhile ("No connection…", "Reconnecting…"). A message in
     flight is sent again, first, on the next socket. */
  function drop() {
    var socket = ws;
    ws = null;
    inflight = null;
    clearTimeout(ackTimer);
    showTyping(false);
    if (socket) { try { socket.close(); } catch (e) { /* closing anyway */ } }
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    scheduleReconnect();
  }

  window.addEventListener("online", function () { if (!ws) { attempt = 0; connect(); } });
  window.addEventListener("offline", function () { if (ws || reconnectTimer) { drop(); } });

  function start() {
    build();
    if (tabs) { tabs.onmessage = fromOtherTab; }
    if (load("open") === "1") { setOpen(true); }
    else if (load("session") || Object.keys(pending).length) { connect(); }
  }

  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
