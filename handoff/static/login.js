/* Relevo console login: POST /api/login by fetch, then on to ?next= (same site only) or /agent. */
(function () {
  "use strict";

  var R = window.RelevoConsole;
  var form = document.getElementById("login-form");
  var nameInput = document.getElementById("login-name");
  var passwordInput = document.getElementById("login-password");
  var error = document.getElementById("login-error");
  var submit = document.getElementById("login-submit");
  var params = new URLSearchParams(location.search);

  function show(message) {
    error.textContent = message || "";
    error.hidden = !message;
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

  function destination(agent) {
    var fallback = "/agent";
    var next = R.safeNext(params.get("next"), fallback);
    if (next.indexOf("/login") === 0) { next = fallback; }
    if (params.get("lang") && next.indexOf("lang=") < 0) {
      next += (next.indexOf("?") < 0 ? "?" : "&") + "lang=" + R.lang;
    }
    return agent ? next : fallback;
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
      else if (err.status === 429) { show(R.t("lockedOut")); }
      else { show(R.errorText(err)); }
    });
  });

  R.applyLabels();
  langLinks();
  if (params.get("bye")) { show(R.t("loggedOut")); error.classList.add("login-info"); }
})();
