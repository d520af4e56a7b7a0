/* Relevo agent administration: the agents in a table, each editable in its row (display name, role,
   tier, departments, capacity), enabled or disabled, given a new password or deleted; a form adding one.
   What `relevo agent` does from a shell, over /api/agents. Text only, never HTML: a display name full
   of markup shows as the characters typed. */
(function () {
  "use strict";

  var R = window.RelevoConsole;
  var t = R.t;
  var el = R.el;
  var $ = function (id) { return document.getElementById(id); };

  var TIERS = [1, 2, 3];
  var ROLES = ["agent", "supervisor", "admin"];
  var state = { me: null, departments: [], agents: [] };

  function path(name) { return "/api/agents/" + encodeURIComponent(name); }

  function departmentLabel(name) {
    var d = state.departments.filter(function (x) { return x.name === name; })[0];
    return d ? (d.display_name || d.name) : String(name || "");
  }

  function roleSelect(chosen, label) {
    var select = el("select");
    ROLES.forEach(function (r) { select.appendChild(R.option(r, t("role_" + r), r === chosen)); });
    if (label) { select.setAttribute("aria-label", label); }
    return select;
  }

  function tierSelect(chosen, label) {
    var select = el("select");
    TIERS.forEach(function (n) { select.appendChild(R.option(String(n), String(n), n === chosen)); });
    if (label) { select.setAttribute("aria-label", label); }
    return select;
  }

  /* One checkbox per department of the rules; an agent's department no longer in them stays listed. */
  function departmentBoxes(box, chosen) {
    var names = state.departments.map(function (d) { return d.name; });
    chosen.forEach(function (d) { if (names.indexOf(d) < 0) { names.push(d); } });
    names.forEach(function (name) {
      var label = el("label", "dept-box");
      var input = el("input");
      input.type = "checkbox";
      input.value = name;
      input.checked = chosen.indexOf(name) >= 0;
      label.appendChild(input);
      label.appendChild(el("span", null, departmentLabel(name)));
      box.appendChild(label);
    });
    return box;
  }

  function checked(box) {
    return Array.prototype.filter.call(box.querySelectorAll("input[type=checkbox]"), function (i) { return i.checked; })
      .map(function (i) { return i.value; });
  }

  function counts(data) { return { sessions: data.sessions_ended || 0, tokens: data.tokens_revoked || 0 }; }

  // -- the table --------------------------------------------------------------------------------------

  function agentRow(a) {
    var mine = state.me && a.name === state.me.name;
    var tr = el("tr", a.disabled ? "row-disabled" : null);
    tr.setAttribute("data-name", a.name);

    var who = el("td", "admin-who card-title");
    who.appendChild(el("strong", "admin-label", a.label || a.name));
    who.appendChild(el("span", "muted admin-login", " " + a.name));
    if (mine) { who.appendChild(el("span", "chip", t("you"))); }
    if (a.disabled) { who.appendChild(el("span", "chip chip-disabled", t("disabledAgent"))); }
    if (a.locked_out) {
      var locked = el("span", "chip chip-locked", t("lockedOutAgent"));
      locked.title = t("lockedOutHelp");
      who.appendChild(locked);
    }
    tr.appendChild(who);

    var display = el("input");
    display.type = "text";
    display.maxLength = 100;
    display.value = a.display_name || "";
    display.placeholder = a.name;
    display.setAttribute("aria-label", t("displayName") + " — " + a.name);
    var cell = el("td");
    cell.appendChild(display);
    tr.appendChild(cell);

    var role = roleSelect(a.role, t("role") + " — " + a.name);
    role.disabled = !!mine; // an admin does not demote themselves (the server refuses it too)
    cell = el("td");
    cell.appendChild(role);
    tr.appendChild(cell);

    var tier = tierSelect(a.tier, t("tier") + " — " + a.name);
    cell = el("td");
    cell.appendChild(tier);
    tr.appendChild(cell);

    var boxes = departmentBoxes(el("div", "dept-boxes"), a.departments || []);
    boxes.setAttribute("role", "group");
    boxes.setAttribute("aria-label", t("departments") + " — " + a.name);
    cell = el("td");
    cell.appendChild(boxes);
    tr.appendChild(cell);

    var capacity = el("input");
    capacity.type = "number";
    capacity.min = "1";
    capacity.max = "100";
    capacity.value = String(a.capacity);
    capacity.className = "admin-capacity";
    capacity.setAttribute("aria-label", t("capacityLabel") + " — " + a.name);
    cell = el("td");
    cell.appendChild(capacity);
    tr.appendChild(cell);

    // The buttons in a box of their own: on a phone the cell is a two-column grid (label, value).
    var cellActions = el("td", "admin-actions");
    var actions = el("div", "admin-buttons");
    cellActions.appendChild(actions);
    actions.appendChild(R.button(t("save"), "btn btn-small btn-primary admin-save", function () {
      save(a, { display: display, role: role, tier: tier, boxes: boxes, capacity: capacity });
    }));
    if (!mine) {
      actions.appendChild(R.button(t(a.disabled ? "enable" : "disable"), "btn btn-small admin-toggle", function () {
        setDisabled(a, !a.disabled);
      }));
    }
    // Locked out by wrong passwords: let them in again now, with the password they have.
    if (a.locked_out) {
      var unlockButton = R.button(t("unlock"), "btn btn-small admin-unlock", function () { unlock(a); });
      unlockButton.title = t("lockedOutHelp");
      actions.appendChild(unlockButton);
    }
    actions.appendChild(R.button(t("setPassword"), "btn btn-small admin-password", function () { setPassword(a); }));
    // Only a disabled agent can be deleted (the server says why otherwise): the button shows when it can work.
    if (a.disabled && !mine) {
      actions.appendChild(R.button(t("deleteAgent"), "btn btn-small admin-delete", function () { remove(a); }));
    }
    tr.appendChild(cellActions);
    cardLabels(tr);
    return tr;
  }

  /* On a phone the table shows each agent as a card (console.css table.cards): every cell is labelled
     with its column's heading, in the page's language. */
  function cardLabels(tr) {
    var heads = $("admin-agents").tHead.rows[0].cells;
    tr.setAttribute("role", "row");
    Array.prototype.forEach.call(tr.cells, function (td, i) {
      td.setAttribute("role", "cell");
      if (heads[i]) { td.setAttribute("data-label", heads[i].textContent); }
    });
  }

  function render() {
    var body = R.clear($("admin-agents").tBodies[0]);
    state.agents.forEach(function (a) { body.appendChild(agentRow(a)); });
    $("admin-empty").hidden = state.agents.length > 0;
  }

  function load() {
    return R.api("GET", "/api/agents").then(function (data) {
      state.agents = (data && data.agents) || [];
      render();
    }).catch(R.reportError);
  }

  /* Only what changed is sent: the server keeps the rest as it is. */
  function save(a, inputs) {
    var body = {};
    var display = inputs.display.value.trim();
    if (display !== (a.display_name || "")) { body.display_name = display; }
    if (inputs.role.value !== a.role) { body.role = inputs.role.value; }
    if (Number(inputs.tier.value) !== a.tier) { body.tier = Number(inputs.tier.value); }
    if (Number(inputs.capacity.value) !== a.capacity) { body.capacity = Number(inputs.capacity.value); }
    var departments = checked(inputs.boxes);
    if (departments.join(",") !== (a.departments || []).join(",")) { body.departments = departments; }
    if (!Object.keys(body).length) { R.flash(t("nothingChanged")); return; }
    R.api("POST", path(a.name), body).then(function () {
      R.flash(t("done_saved", { name: a.name }), "ok");
      return load();
    }).catch(R.reportError);
  }

  function setDisabled(a, disabled) {
    if (disabled && !window.confirm(t("confirmDisable", { name: a.name }))) { return; }
    R.api("POST", path(a.name), { disabled: disabled }).then(function (data) {
      var n = counts(data || {});
      R.flash(disabled ? t("done_disabled", { name: a.name, sessions: n.sessions, tokens: n.tokens })
                       : t("done_enabled", { name: a.name }), "ok");
      return load();
    }).catch(R.reportError);
  }

  /* Lifts the lockout of their name (at every address), as `relevo agent unlock NAME`; the password stays. */
  function unlock(a) {
    R.api("POST", path(a.name) + "/unlock").then(function () {
      R.flash(t("done_unlocked", { name: a.name }), "ok");
      return load();
    }).catch(R.reportError);
  }

  function setPassword(a) {
    var dialog = R.passwordDialog(t("passwordFor", { name: a.label || a.name }),
      [["newPassword", "new-password"], ["newPasswordAgain", "new-password"]], function (values) {
        return R.api("POST", path(a.name) + "/password", { password: values[0] }).then(function (data) {
          var n = counts(data || {});
          R.flash(t("done_password", { name: a.name, sessions: n.sessions, tokens: n.tokens }), "ok");
        });
      }, "setPassword");
    dialog.id = "agent-password";
  }

  function remove(a) {
    if (!window.confirm(t("confirmDelete", { name: a.name }))) { return; }
    R.api("DELETE", path(a.name)).then(function () {
      R.flash(t("done_deleted", { name: a.name }), "ok");
      return load();
    }).catch(R.reportError);
  }

  // -- adding -----------------------------------------------------------------------------------------

  function fillAddForm() {
    var role = R.clear($("add-role"));
    ROLES.forEach(function (r) { role.appendChild(R.option(r, t("role_" + r), r === "agent")); });
    var tier = R.clear($("add-tier"));
    TIERS.forEach(function (n) { tier.appendChild(R.option(String(n), String(n), n === 1)); });
    var box = $("add-departments");
    Array.prototype.slice.call(box.querySelectorAll("label")).forEach(function (l) { l.remove(); });
    departmentBoxes(box, []);
  }

  function add(ev) {
    ev.preventDefault();
    var form = $("add-form");
    var body = {
      name: $("add-name").value.trim(), display_name: $("add-display").value.trim(), role: $("add-role").value,
      tier: Number($("add-tier").value), capacity: Number($("add-capacity").value),
      departments: checked($("add-departments")), password: $("add-password").value
    };
    $("add-submit").disabled = true;
    R.api("POST", "/api/agents", body).then(function () {
      R.flash(t("done_added", { name: body.name }), "ok");
      form.reset();
      fillAddForm();
      return load();
    }).catch(R.reportError).then(function () { $("add-submit").disabled = false; });
  }

  function start() {
    R.applyLabels();
    $("logout").addEventListener("click", R.logout);
    R.wireOwnPassword("change-password");
    $("add-form").addEventListener("submit", add);
    R.me().then(function (data) {
      state.me = data.agent || {};
      $("me-name").textContent = state.me.display_name || state.me.name || "";
      return R.api("GET", "/api/departments?lang=" + R.lang).then(function (d) {
        state.departments = (d && d.departments) || [];
      }, R.reportError);
    }).then(function () {
      fillAddForm();
      return load();
    }).catch(R.reportError);
  }

  start();
})();
