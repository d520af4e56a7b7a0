/* Relevo console login: POST /api/login by fetch, then on to ?next= (same site only, and only a page the
   agent's role may open) or /agent. A disabled account is told so, after the right password or when its
   console was signed out for it (GET /api/login). */
(function () {
  "use strict";

  var R = window.RelevoConsole;
  var form = document.getElementById("login-form");
  var nameInput = document.getElementById("login-name");
  var passwordInput = document.getElementById("login-password");
  var error = document.getElementById("login-error");
  var submit = document.getElementById("login-submit");
  var params = new URLSearchParams(location.search);

  /* `info`: news (signed out, sign-in ended) rather than a problem with what was typed. */
  function show(message, info) {
    error.textContent = message || "";
    error.hidden = !message;
    error.classList.toggle("login-info", !!info);
  }

  function langLinks() {
    // Keep ?next= when switching language.
    ["en", "es"].forEach(function (code) {
      var link = document.getElementById("lang-" + code);
      var q = new URLSearchParams(location.search);
      q.set("lang", code);
      link.href = "?" + q.toString();
      if (code === R.lang) { link.setAttribute("aria-current", "true"); }
    });
  }

  function busy(on) {
    submit.disabled = on;
    submit.textContent = R.t(on ? "signingIn" : "signIn");
  }

  /* A plain agent sent to /supervisor (a shared link) would only get the server's bare 403 page. */
  function mayOpen(path, agent) {
    var supervisorPage = /^\/supervisor(?:[/?#]|$)/.test(path);
    return !supervisorPage || agent.role === "supervisor" || agent.role === "admin";
  }

  function destination(agent) {
    var fallback = R.withLang("/agent");
    var next = R.safeNext(params.get("next"), fallback);
    if (!agent || next.indexOf("/login") === 0 || !mayOpen(next, agent)) { return fallback; }
    return R.withLang(next);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var name = nameInput.value.trim();
    var password = passwordInput.value;
    if (!name || !password) { show(R.t("fillBoth")); return; }
    show("");
    busy(true);
    R.api("POST", "/api/login", { name: name, password: password }).then(function (data) {
      location.assign(destination(data && data.agent));
    }, function (err) {
      busy(false);
      passwordInput.value = "";
      passwordInput.focus();
      if (err.status === 401) { show(R.t("badCredentials")); }
      else if (err.status === 429) { show(R.t("lockedOut", { n: Math.max(1, Math.ceil((err.retryAfter || 900) / 60)) })); }
      else if (err.code === "account_disabled") { show(R.t("accountDisabled")); } // only after the right password
      else { show(R.errorText(err)); }
    });
  });

  /* A console signed out because its agent was disabled lands here (a 401 sends it): say why. The
     server tells only the browser holding that sign-in's cookie; a message already shown stays. */
  function whySignedOut() {
    R.api("GET", "/api/login").then(function (data) {
      if (data && data.signed_out === "disabled" && (error.hidden || ended)) { show(R.t("signedOutDisabled")); }
    }, function () { /* nothing to say */ });
  }

  R.applyLabels();
  langLinks();
  var ended = params.has("ended");
  if (params.has("bye")) { show(R.t("loggedOut"), true); }
  else {
    // Sent here by a console whose sign-in ended: not a fresh visit, so say what happened.
    if (ended) { show(R.t("sessionEnded"), true); }
    whySignedOut();
  }
})();
