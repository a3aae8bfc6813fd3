// Agent console: campaign login, ready/pause, live feed (SSE), screen pop, script, disposition, preview.
// Every read and write goes through the JSON API with `cc.api` (session cookie + CSRF header).
"use strict";
(function () {
  const root = document.getElementById("agent-console");
  if (!root) return;
  const { api, el } = window.cc;
  const TEXT = JSON.parse(document.getElementById("agent-text").textContent || "{}");
  const CONFIG = JSON.parse(document.getElementById("agent-config").textContent || "{}");
  const LANG = document.body.dataset.lang || "zh-CN";
  const $ = (id) => document.getElementById(id);

  function tr(key, values) {
    let text = TEXT[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }
  function label(prefix, code) {
    return TEXT[prefix + code] || code;
  }
  function say(node, message, isError) {
    node.textContent = message || "";
    node.classList.toggle("error", !!isError);
  }
  function errorText(err) {
    const details = err && err.data && err.data.details;
    let message = err && err.message ? err.message : String(err);
    if (details && details.field) message += " (" + details.field + ")";
    return tr("agent.js.error", { message });
  }
  function formatDateTime(iso) {
    return iso ? new Date(iso).toLocaleString(LANG, { dateStyle: "short", timeStyle: "short" }) : "–";
  }
  function formatTime(iso) {
    return new Date(iso).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60));
    const ss = String(s % 60).padStart(2, "0");
    return h ? h + ":" + mm.padStart(2, "0") + ":" + ss : mm + ":" + ss;
  }
  // A datetime-local value is the browser's local time; the API wants an aware ISO timestamp.
  function localToIso(value) {
    return value ? new Date(value).toISOString() : null;
  }
  function splitList(value) {
    return value.split(/[,，、;；\n]/).map((s) => s.trim()).filter(Boolean);
  }

  const view = {
    session: null, // the last AgentSessionOut
    stateAt: 0, // performance.now() when seconds_in_state was read
    stateSeconds: 0,
    call: null, // the CurrentCallOut / preview payload on screen
    trail: [], // [{stage, at}] stamped by the server, sent back with the disposition
    events: null, // the EventSource
  };

  // --- state and timer --------------------------------------------------------------------------

  function campaignConfig(id) {
    return (CONFIG.campaigns || []).find((c) => c.id === id) || null;
  }

  function showSession(session) {
    view.session = session;
    const loggedIn = !!session && session.state !== "logged_out";
    $("agent-login-card").hidden = loggedIn;
    $("agent-statebar").hidden = !loggedIn;
    $("agent-callbacks").hidden = !loggedIn;
    if (!loggedIn) {
      $("agent-preview").hidden = true;
      clearCall();
      return;
    }
    view.stateSeconds = session.seconds_in_state || 0;
    view.stateAt = performance.now();
    const state = $("agent-state");
    state.textContent = label("agent.state.", session.state);
    state.dataset.state = session.state;
    $("agent-state-reason").textContent = session.pause_reason ? label("agent.pause.", session.pause_reason) : "";
    $("agent-session-info").textContent = tr("agent.session.info", {
      campaign: session.campaign.name, extension: session.extension,
    });
    const busy = ["on_call", "reserved", "wrap_up"].includes(session.state);
    $("agent-ready").disabled = busy || session.state === "ready";
    $("agent-pause").disabled = busy || (session.state === "paused" && session.pause_reason !== "login");
    $("agent-logout").disabled = session.state === "on_call" || session.state === "reserved";
    const preview = session.campaign.dial_mode === "preview";
    $("agent-preview").hidden = !preview;
    if (preview) {
      $("agent-preview-next").disabled = busy;
      $("agent-preview-dial").disabled = !(session.state === "reserved" && session.call && !session.call.attempt_id);
      $("agent-preview-skip").disabled = !(session.state === "reserved" && session.call && !session.call.attempt_id);
    }
    fillCodes(session.campaign.id);
    if (session.call) showCall(session.call);
    else if (view.call) clearCall();
    $("dispo-submit").disabled = !(session.state === "wrap_up" && view.call);
    const badge = $("agent-call-badge");
    badge.textContent = view.call ? label("agent.callstate.", session.state) : "";
    tick();
  }

  function tick() {
    if (!view.session || view.session.state === "logged_out") return;
    const seconds = view.stateSeconds + (performance.now() - view.stateAt) / 1000;
    $("agent-timer").textContent = formatDuration(seconds);
  }
  setInterval(tick, 1000);

  async function refreshSession() {
    try {
      showSession(await api("GET", "/agent/session"));
      return true;
    } catch (err) {
      if (err.data && err.data.error_id === "not_found") { showSession(null); return false; }
      say($("agent-status"), errorText(err), true);
      return false;
    }
  }

  // --- live feed --------------------------------------------------------------------------------

  function openFeed() {
    if (view.events) return;
    const source = new EventSource("/api/v1/agent/events");
    view.events = source;
    source.addEventListener("state", (ev) => {
      const data = JSON.parse(ev.data);
      if (data.state === "logged_out") { closeFeed(); showSession(null); return; }
      refreshSession();
    });
    source.addEventListener("screen_pop", (ev) => {
      showCall(JSON.parse(ev.data));
      refreshSession();
    });
    source.addEventListener("call_ended", () => {
      say($("agent-status"), tr("agent.js.call_ended"));
      refreshSession();
    });
  }

  function closeFeed() {
    if (view.events) view.events.close();
    view.events = null;
  }

  // --- screen pop -------------------------------------------------------------------------------

  function clearCall() {
    view.call = null;
    view.trail = [];
    $("agent-workspace").hidden = true;
    $("agent-dispo-form").reset();
    toggleDispoFields();
  }

  function fact(dl, key, value) {
    dl.append(el("dt", {}, tr(key)), el("dd", {}, value === "" || value === null || value === undefined ? "–" : value));
  }

  function showCall(call) {
    const lead = call.lead;
    const same = view.call && view.call.lead.id === lead.id;
    view.call = call;
    $("agent-workspace").hidden = false;
    const dl = $("agent-lead");
    dl.replaceChildren();
    const name = el("dd", { id: "agent-lead-name", class: "agent-lead-name" }, lead.name || "–");
    dl.append(el("dt", {}, tr("agent.lead.name")), name);
    fact(dl, "agent.lead.company", lead.company);
    fact(dl, "agent.lead.phone", lead.phone_e164);
    fact(dl, "agent.lead.segment", lead.segment ? label("agent.segment.", lead.segment) : "");
    fact(dl, "agent.lead.grade", lead.grade);
    fact(dl, "agent.lead.region", lead.region);
    fact(dl, "agent.lead.attempts", lead.attempts);
    fact(dl, "agent.lead.last_outcome", lead.last_outcome ? label("agent.code.", lead.last_outcome) : "");
    const man = $("agent-lead-man");
    man.replaceChildren(
      ...[["man_money", "agent.man.money"], ["man_authority", "agent.man.authority"], ["man_need", "agent.man.need"]].map(
        ([field, key]) => el("span", { class: "badge " + (lead[field] ? "agent-yes" : "agent-no") }, (lead[field] ? "✓ " : "✗ ") + tr(key)),
      ),
    );
    const custom = $("agent-lead-custom");
    custom.replaceChildren();
    for (const [key, value] of Object.entries(lead.custom || {})) {
      custom.append(el("dt", {}, key), el("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value)));
    }
    showWarning(call.warning);
    if (!same) {
      view.trail = [];
      $("agent-dispo-form").reset();
      $("dispo-man-money").checked = !!lead.man_money;
      $("dispo-man-authority").checked = !!lead.man_authority;
      $("dispo-man-need").checked = !!lead.man_need;
      toggleDispoFields();
      say($("dispo-status"), "");
      loadHistory(lead.id);
      visit(call.script.id);
    }
  }

  function showWarning(warning) {
    const box = $("agent-warning");
    box.hidden = !warning;
    if (!warning) return;
    const who = warning.contacts.map((c) => tr("agent.warning.contact", {
      agent: c.agent_name || "?", at: formatDateTime(c.at), campaign: c.campaign_name, outcome: label("agent.code.", c.outcome),
    }));
    box.replaceChildren(el("strong", {}, tr("agent.warning.title", { hours: warning.hours })), " ", warning.message,
      el("ul", {}, ...who.map((w) => el("li", {}, w))));
  }

  async function loadHistory(leadId) {
    const list = $("agent-history-list");
    list.replaceChildren(el("li", { class: "agent-muted" }, tr("agent.js.loading")));
    try {
      const history = await api("GET", "/leads/" + leadId + "/history");
      const rows = [];
      for (const c of history.calls) {
        rows.push([c.started_at, tr("agent.history.call", {
          agent: c.agent_name || "–", talk: formatDuration(c.talk_s), outcome: label("agent.code.", c.disposition_code || c.outcome),
        })]);
      }
      for (const d of history.dispositions) {
        rows.push([d.created_at, tr("agent.history.disposition", {
          agent: d.agent_name || "–", code: label("agent.code.", d.code), grade: d.grade || "–",
        }) + (d.notes ? " · " + d.notes : "")]);
      }
      for (const cb of history.callbacks) {
        rows.push([cb.due_at, tr("agent.history.callback", { owner: cb.owner_name || tr("agent.callbacks.anyone") }) + (cb.note ? " · " + cb.note : "")]);
      }
      for (const o of history.other_campaigns) {
        rows.push([o.at, tr("agent.history.other", { campaign: o.campaign_name, agent: o.agent_name || "–", outcome: label("agent.code.", o.outcome) })]);
      }
      rows.sort((a, b) => (a[0] < b[0] ? 1 : -1));
      list.replaceChildren(...(rows.length ? rows.map(([at, text]) => el("li", {}, el("span", { class: "agent-muted" }, formatDateTime(at) + " "), text))
        : [el("li", { class: "agent-muted", id: "agent-history-empty" }, tr("agent.history.none"))]));
    } catch (err) {
      list.replaceChildren(el("li", { class: "error" }, errorText(err)));
    }
  }

  // --- script -----------------------------------------------------------------------------------

  function showStage(stage) {
    $("agent-script").dataset.stage = stage.id;
    $("agent-stage-title").textContent = stage.title;
    $("agent-stage-kind").textContent = label("agent.kind.", stage.kind);
    $("agent-stage-text").textContent = stage.text;
    $("agent-stage-hints").replaceChildren(...stage.hints.map((h) => el("li", {}, h)));
    $("agent-recommended").replaceChildren(...stage.recommended.map((r) =>
      el("button", { type: "button", class: "agent-rec", "data-to": r.to, onclick: () => visit(r.to) },
        el("strong", {}, "★ " + r.title), el("span", {}, r.why))));
    $("agent-branches").replaceChildren(...stage.branches.map((b) =>
      el("button", { type: "button", class: "secondary agent-branch", "data-to": b.to, onclick: () => visit(b.to) }, b.label)));
  }

  function showTrail() {
    $("agent-trail-count").textContent = String(view.trail.length);
    $("agent-trail").replaceChildren(...view.trail.map((v) => el("li", { "data-stage": v.stage }, formatTime(v.at) + " · " + v.stage)));
  }

  async function visit(stageId) {
    try {
      const answer = await api("POST", "/agent/script/visit", { stage: stageId, trail: view.trail });
      view.trail = answer.trail;
      showStage(answer.stage);
      showTrail();
    } catch (err) {
      say($("agent-status"), errorText(err), true);
    }
  }

  // --- disposition ------------------------------------------------------------------------------

  function fillCodes(campaignId) {
    const select = $("dispo-code");
    if (select.dataset.campaign === String(campaignId)) return;
    const campaign = campaignConfig(campaignId);
    const codes = campaign ? campaign.codes : [];
    select.replaceChildren(el("option", { value: "" }, tr("agent.dispo.choose")),
      ...codes.map((c) => el("option", { value: c.code }, c.label || label("agent.code.", c.code))));
    select.dataset.campaign = String(campaignId);
  }

  function toggleDispoFields() {
    const code = $("dispo-code").value;
    $("dispo-appointment").hidden = code !== "appointment";
    $("dispo-callback").hidden = !(CONFIG.callback_codes || []).includes(code);
    $("dispo-not-interested").hidden = code !== "not_interested";
  }
  $("dispo-code").addEventListener("change", toggleDispoFields);

  function dispositionBody() {
    const code = $("dispo-code").value;
    const gradeInput = document.querySelector("input[name=grade]:checked");
    let notes = $("dispo-notes").value.trim();
    if (code === "not_interested") {
      const reason = label("agent.reason.", $("dispo-reason").value);
      notes = tr("agent.dispo.reason_note", { reason }) + (notes ? "\n" + notes : "");
    }
    const body = {
      code,
      notes,
      grade: gradeInput ? gradeInput.value : "",
      man_money: $("dispo-man-money").checked,
      man_authority: $("dispo-man-authority").checked,
      man_need: $("dispo-man-need").checked,
      script_trail: view.trail,
      then: $("dispo-then").value,
    };
    if (code === "appointment") {
      body.details = {
        at: localToIso($("dispo-appt-at").value),
        place: $("dispo-appt-place").value.trim(),
        attendees: splitList($("dispo-appt-attendees").value),
        materials: splitList($("dispo-appt-materials").value),
      };
    }
    if ((CONFIG.callback_codes || []).includes(code)) {
      body.callback_at = localToIso($("dispo-callback-at").value);
      body.callback_personal = $("dispo-callback-personal").checked;
    }
    return body;
  }

  $("agent-dispo-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const status = $("dispo-status");
    const body = dispositionBody();
    if (body.code === "appointment" && !body.details.at) { say(status, tr("agent.js.need_appt_time"), true); return; }
    if (body.callback_at === null) { say(status, tr("agent.js.need_callback_time"), true); return; }
    $("dispo-submit").disabled = true;
    try {
      const result = await api("POST", "/agent/disposition", body);
      const lead = view.call ? view.call.lead : null;
      clearCall();
      say($("agent-status"), tr("agent.js.saved", {
        code: label("agent.code.", result.code), name: lead ? lead.name : "", status: label("agent.leadstatus.", result.lead_status),
      }));
      $("agent-status").dataset.leadStatus = result.lead_status;
      await refreshSession();
      loadCallbacks();
    } catch (err) {
      say(status, errorText(err), true);
      $("dispo-submit").disabled = false;
    }
  });

  // --- callbacks --------------------------------------------------------------------------------

  async function loadCallbacks() {
    try {
      const page = await api("GET", "/agent/callbacks?limit=50");
      const body = $("agent-callbacks-body");
      body.replaceChildren(...page.items.map((cb) => el("tr", { class: cb.overdue ? "agent-overdue" : "" },
        el("td", {}, formatDateTime(cb.due_at)),
        el("td", {}, [cb.lead_name, cb.lead_company].filter(Boolean).join(" · ")),
        el("td", {}, cb.lead_phone),
        el("td", {}, cb.personal ? tr("agent.callbacks.mine") : tr("agent.callbacks.anyone")),
        el("td", {}, cb.note))));
      $("agent-callbacks-empty").hidden = page.items.length > 0;
    } catch (err) {
      say($("agent-status"), errorText(err), true);
    }
  }

  // --- session actions --------------------------------------------------------------------------

  async function act(button, fn) {
    button.disabled = true;
    try {
      const session = await fn();
      if (session) showSession(session);
      say($("agent-status"), "");
    } catch (err) {
      say($("agent-status"), errorText(err), true);
      button.disabled = false;
    }
  }

  const loginForm = $("agent-login-form");
  if (loginForm) {
    loginForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const status = $("agent-login-status");
      try {
        const session = await api("POST", "/agent/session", {
          campaign_id: Number($("agent-campaign").value), extension: $("agent-extension").value.trim(),
        });
        say(status, "");
        showSession(session);
        openFeed();
        loadCallbacks();
      } catch (err) {
        say(status, errorText(err), true);
      }
    });
  }
  $("agent-ready").addEventListener("click", (ev) => act(ev.target, () => api("POST", "/agent/state", { state: "ready" })));
  $("agent-pause").addEventListener("click", (ev) => act(ev.target, () =>
    api("POST", "/agent/state", { state: "paused", reason: $("agent-pause-reason").value })));
  $("agent-logout").addEventListener("click", (ev) => act(ev.target, async () => {
    await api("POST", "/agent/logout");
    closeFeed();
    showSession(null);
    return null;
  }));

  // --- preview mode -----------------------------------------------------------------------------

  $("agent-preview-next").addEventListener("click", async () => {
    const status = $("agent-preview-status");
    try {
      const preview = await api("GET", "/agent/preview/next");
      if (!preview) { say(status, tr("agent.preview.none")); return; }
      say(status, "");
      showCall({ attempt_id: null, lead: preview.lead, warning: preview.warning, script: preview.script });
      await refreshSession();
    } catch (err) {
      say(status, errorText(err), true);
    }
  });
  $("agent-preview-dial").addEventListener("click", async () => {
    const status = $("agent-preview-status");
    try {
      await api("POST", "/agent/preview/dial");
      say(status, tr("agent.preview.dialing"));
      await refreshSession();
    } catch (err) {
      say(status, errorText(err), true);
    }
  });
  $("agent-preview-skip").addEventListener("click", async () => {
    const status = $("agent-preview-status");
    try {
      await api("POST", "/agent/preview/skip", { delay_minutes: 15 });
      clearCall();
      say(status, tr("agent.preview.skipped"));
      await refreshSession();
    } catch (err) {
      say(status, errorText(err), true);
    }
  });

  // --- start ------------------------------------------------------------------------------------

  window.addEventListener("beforeunload", closeFeed);
  refreshSession().then((loggedIn) => {
    root.dataset.ready = "1";
    if (loggedIn) { openFeed(); loadCallbacks(); }
  });
})();
