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
      queued: "You are number {position} in the queue. Estimated wait: {wait}.",
      queuedNoWait: "You are number {position} in the queue. A person will answer soon.",
      assigned: "{agent} joined the conversation.", assignedAnon: "An agent joined the conversation.",
      resolved: "This conversation is resolved.", closed: "This conversation is closed.",
      minutes: "{n} min", hours: "{h} h {m} min", lessMinute: "less than a minute",
      delivered: "Delivered", sending: "Sending", failed: "Not sent — tap to retry",
      tooLong: "Message too long (max {n} characters).", slowDown: "Too many messages; sending again shortly.",
      newSession: "Your previous session expired; a new conversation started."
    },
    es: {
      title: "Atención al cliente", open: "Chatea con nosotros", close: "Cerrar chat",
      placeholder: "Escribe un mensaje…", send: "Enviar", typing: "Escribiendo",
      connecting: "Conectando…", offline: "Reconectando…",
      queued: "Eres el número {position} en la cola. Espera estimada: {wait}.",
      queuedNoWait: "Eres el número {position} en la cola. Una persona te atenderá pronto.",
      assigned: "{agent} se ha unido a la conversación.", assignedAnon: "Un agente se ha unido a la conversación.",
      resolved: "Esta conversación está resuelta.", closed: "Esta conversación está cerrada.",
      minutes: "{n} min", hours: "{h} h {m} min", lessMinute: "menos de un minuto",
      delivered: "Entregado", sending: "Enviando", failed: "No enviado — toca para reintentar",
      tooLong: "Mensaje demasiado largo (máximo {n} caracteres).",
      slowDown: "Demasiados mensajes; se reenviará en breve.",
      newSession: "Tu sesión anterior caducó; empieza una conversación nueva."
    }
  };

  var data = script.dataset || {};
  var base = new URL(script.src, document.baseURI);
  var lang = pickLang(data.lang);
  var T = TEXTS[lang];
  var storeKey = "relevo:" + base.host + ":";
  var TYPING_TIMEOUT_MS = 15000;
  var RETRY_MS = 2000;

  var ws = null;
  var attempt = 0;
  var reconnectTimer = null;
  var typingTimer = null;
  var maxChars = 2000;
  var state = "bot";
  var pending = loadPending(); // client id -> {id, type, text, value, label}
  var els = {};
  // Tabs of this site share the session but each has its own socket, and the server sends a customer
  // message back to no socket: the tab that sent it tells the others once it is stored.
  var tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel(storeKey + "tabs") : null;

  function pickLang(asked) {
    var code = String(asked || navigator.language || "en").slice(0, 2).toLowerCase();
    return TEXTS[code] ? code : "en";
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
      list.forEach(function (p) { if (p && p.id) { map[p.id] = p; } });
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
    if (/^#[0-9a-fA-F]{3,8}$/.test(data.color || "")) { root.style.setProperty("--relevo-color", data.color); }

    var launcher = els.launcher = el("button", "relevo-launcher", "💬");
    launcher.type = "button";
    launcher.setAttribute("aria-label", T.open);
    launcher.title = T.open;
    launcher.addEventListener("click", function () { setOpen(true); });

    var panel = els.panel = el("section", "relevo-panel");
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", data.title || T.title);
    var header = el("div", "relevo-header");
    header.appendChild(el("h2", "relevo-title", data.title || T.title));
    var close = el("button", "relevo-close", "×");
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
    els.typing.appendChild(el("span", "relevo-sr", T.typing));
    ["•", "•", "•"].forEach(function (d) { els.typing.appendChild(el("span", null, d)); });

    var form = el("form", "relevo-form");
    var input = els.input = el("textarea", "relevo-input");
    input.rows = 1;
    input.placeholder = T.placeholder;
    input.setAttribute("aria-label", T.placeholder);
    input.maxLength = maxChars;
    var send = el("button", "relevo-send", T.send);
    send.type = "submit";
    form.appendChild(input);
    form.appendChild(send);
    form.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submit(); }
    });

    [header, els.status, els.log, els.typing, form].forEach(function (n) { panel.appendChild(n); });
    root.appendChild(launcher);
    root.appendChild(panel);
    document.body.appendChild(root);
  }

  function setOpen(open) {
    els.root.classList.toggle("relevo-open", open);
    store("open", open ? "1" : null);
    if (open) {
      connect();
      els.input.focus();
      scrollDown();
    } else {
      els.launcher.focus();
    }
  }

  function scrollDown() { els.log.scrollTop = els.log.scrollHeight; }

  function setStatus(text) {
    els.status.textContent = text || "";
    els.status.hidden = !text;
  }

  function showTyping(on) {
    clearTimeout(typingTimer);
    els.typing.hidden = !on;
    if (on) {
      typingTimer = setTimeout(function () { els.typing.hidden = true; }, TYPING_TIMEOUT_MS);
      scrollDown();
    }
  }

  // -- messages ------------------------------------------------------------------------------------

  function renderMessage(frame) {
    if (frame.id && els.log.querySelector('[data-id="' + cssId(frame.id) + '"]')) { return null; }
    var from = ["bot", "agent", "system", "customer"].indexOf(frame.from) >= 0 ? frame.from : "bot";
    var node = el("div", "relevo-msg relevo-from-" + from);
    if (frame.id) { node.setAttribute("data-id", frame.id); }
    if (from === "agent" && frame.author) { node.appendChild(el("span", "relevo-author", frame.author)); }
    node.appendChild(el("span", "relevo-text", frame.text || ""));
    if (from === "customer") { node.appendChild(tick("✓", T.delivered)); }
    var buttons = Array.isArray(frame.buttons) ? frame.buttons : [];
    if (buttons.length) {
      var row = el("div", "relevo-buttons");
      buttons.forEach(function (b) {
        if (!b || typeof b.value !== "string") { return; }
        var button = el("button", "relevo-choice", String(b.label || b.value));
        button.type = "button";
        button.addEventListener("click", function () { choose(b, row); });
        row.appendChild(button);
      });
      node.appendChild(row);
    }
    els.log.appendChild(node);
    return node;
  }

  function fromOtherTab(ev) {
    var m = ev.data;
    if (!m || typeof m.id !== "string" || typeof m.text !== "string" || m.session !== load("session")) { return; }
    var node = renderMessage({ id: m.id, from: "customer", text: m.text });
    if (!node) { return; }
    // The bot's answer may have come in first: put the message back in stored order.
    var later = Array.prototype.find.call(els.log.querySelectorAll("[data-id]"), function (n) {
      return n !== node && storedAfter(n.getAttribute("data-id"), m.id);
    });
    if (later) { els.log.insertBefore(node, later); }
    scrollDown();
  }

  function storedAfter(a, b) { // Redis stream ids, "<ms>-<seq>"
    var x = String(a).split("-").map(Number), y = String(b).split("-").map(Number);
    return x[0] > y[0] || (x[0] === y[0] && (x[1] || 0) > (y[1] || 0));
  }

  function cssId(id) { return String(id).replace(/["\\]/g, "\\$&"); }

  function tick(symbol, label) {
    var t = el("span", "relevo-tick", symbol);
    t.setAttribute("aria-label", label);
    t.title = label;
    return t;
  }

  function renderPending(p) {
    var node = el("div", "relevo-msg relevo-from-customer relevo-pending");
    node.setAttribute("data-client-id", p.id);
    node.appendChild(el("span", "relevo-text", p.type === "choose" ? p.label : p.text));
    node.appendChild(tick("🕓", T.sending));
    node.addEventListener("click", function () {
      if (node.classList.contains("relevo-failed")) {
        node.classList.remove("relevo-failed");
        node.querySelector(".relevo-tick").textContent = "🕓";
        sendPending(p);
      }
    });
    els.log.appendChild(node);
    scrollDown();
    return node;
  }

  function pendingNode(id) {
    return els.log.querySelector('[data-client-id="' + cssId(id) + '"]');
  }

  function submit() {
    var text = els.input.value;
    if (!text.trim()) { return; }
    if (text.length > maxChars) { setStatus(fmt(T.tooLong, { n: maxChars })); return; }
    els.input.value = "";
    queue({ id: newId(), type: "message", text: text });
  }

  function choose(button, row) {
    Array.prototype.forEach.call(row.querySelectorAll("button"), function (b) { b.disabled = true; });
    queue({ id: newId(), type: "choose", value: button.value, label: String(button.label || button.value) });
  }

  function queue(p) {
    pending[p.id] = p;
    savePending();
    renderPending(p);
    sendPending(p);
  }

  function sendPending(p) {
    if (!ws || ws.readyState !== WebSocket.OPEN || !ws.relevoReady) { connect(); return; }
    var frame = p.type === "choose" ? { type: "choose", id: p.id, value: p.value }
                                    : { type: "message", id: p.id, text: p.text };
    ws.send(JSON.stringify(frame));
  }

  function onAck(frame) {
    var p = pending[frame.id];
    delete pending[frame.id];
    savePending();
    var node = pendingNode(frame.id);
    if (node && frame.msg && frame.duplicate &&
        els.log.querySelector('[data-id="' + cssId(frame.msg) + '"]')) {
      node.remove(); // stored before the connection dropped: history already shows it
    } else if (node) {
      node.classList.remove("relevo-pending", "relevo-failed");
      if (frame.msg) { node.setAttribute("data-id", frame.msg); }
      if (p && frame.msg && tabs) {
        tabs.postMessage({ session: load("session"), id: frame.msg, text: p.type === "choose" ? p.label : p.text });
      }
      var t = node.querySelector(".relevo-tick");
      t.textContent = "✓";
      t.title = T.delivered;
      t.setAttribute("aria-label", T.delivered);
    }
    if (p && (state === "bot" || state === "resolved" || state === "closed")) { showTyping(true); }
  }

  function onError(frame) {
    var p = frame.id ? pending[frame.id] : null;
    if (frame.code === "bad_session") {
      store("session", null);
      setStatus(T.newSession);
      return;
    }
    if (p && (frame.code === "rate_limited" || frame.code === "unavailable")) {
      if (frame.code === "rate_limited") { setStatus(T.slowDown); }
      setTimeout(function () { if (pending[p.id]) { sendPending(p); } }, RETRY_MS);
      return;
    }
    if (p) {
      // Refused for good (too long, malformed): keep it visible, not pending.
      delete pending[p.id];
      savePending();
      var node = pendingNode(p.id);
      if (node) {
        node.classList.add("relevo-failed");
        node.querySelector(".relevo-tick").textContent = "!";
      }
      if (frame.code === "too_long") { setStatus(fmt(T.tooLong, { n: maxChars })); }
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
      setStatus(fmt(wait ? T.queued : T.queuedNoWait, { position: frame.position || 1, wait: wait }));
      showTyping(false);
    } else if (frame.state === "assigned") {
      setStatus(frame.agent ? fmt(T.assigned, { agent: frame.agent }) : T.assignedAnon);
      showTyping(false);
    } else if (frame.state === "resolved") {
      setStatus(T.resolved);
    } else if (frame.state === "closed") {
      setStatus(T.closed);
    } else {
      setStatus("");
    }
  }

  function onWelcome(frame) {
    attempt = 0;
    store("session", frame.session);
    if (frame.max_chars) { maxChars = frame.max_chars; els.input.maxLength = maxChars; }
    if (els.status.textContent === T.offline || els.status.textContent === T.connecting) { setStatus(""); }
    // The server's history is the truth: draw it again, then what is still waiting for an ack.
    els.log.textContent = "";
    (frame.history || []).forEach(renderMessage);
    ws.relevoReady = true;
    Object.keys(pending).forEach(function (id) {
      renderPending(pending[id]);
      sendPending(pending[id]);
    });
    scrollDown();
  }

  function onFrame(ev) {
    var frame;
    try { frame = JSON.parse(ev.data); } catch (e) { return; }
    if (!frame || typeof frame !== "object") { return; }
    if (frame.type === "welcome") { onWelcome(frame); }
    else if (frame.type === "message") {
      if (renderMessage(frame) && frame.from !== "customer") { showTyping(false); }
      scrollDown();
    }
    else if (frame.type === "ack") { onAck(frame); }
    else if (frame.type === "status") { onStatus(frame); }
    else if (frame.type === "error") { onError(frame); }
  }

  // -- connection ----------------------------------------------------------------------------------

  function connect() {
    if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) { return; }
    clearTimeout(reconnectTimer);
    reconnectTimer = null;
    var url = new URL("ws", base);
    url.protocol = base.protocol === "https:" ? "wss:" : "ws:";
    if (attempt > 0) { setStatus(T.offline); }
    var socket = ws = new WebSocket(url.href);
    socket.addEventListener("open", function () {
      socket.send(JSON.stringify({ type: "hello", session: load("session"), lang: lang }));
    });
    socket.addEventListener("message", onFrame);
    socket.addEventListener("close", function () {
      if (ws !== socket) { return; }
      ws = null;
      showTyping(false);
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (reconnectTimer) { return; }
    // Exponential backoff with jitter, so a restarted server is not hit by every widget at once.
    var delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt += 1;
    setStatus(T.offline);
    reconnectTimer = setTimeout(connect, delay);
  }

  window.addEventListener("online", function () { if (!ws) { attempt = 0; connect(); } });

  function start() {
    build();
    if (tabs) { tabs.onmessage = fromOtherTab; }
    if (load("open") === "1") { setOpen(true); }
    else if (load("session") || Object.keys(pending).length) { connect(); }
  }

  if (document.body) { start(); } else { document.addEventListener("DOMContentLoaded", start); }
})();
