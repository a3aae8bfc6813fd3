// Supervisor wallboard: one campaign's numbers and agents, refreshed by the SSE feed
// /api/v1/supervisor/events (wallboard snapshots, agent state changes).
"use strict";
(function () {
  const root = document.getElementById("wallboard");
  if (!root) return;
  const { api, el } = window.cc;
  const TEXT = JSON.parse(document.getElementById("wb-text").textContent || "{}");
  const LANG = document.body.dataset.lang || "zh-CN";
  const campaignId = root.dataset.campaign;
  const $ = (id) => document.getElementById(id);
  const STATE_ORDER = ["on_call", "wrap_up", "reserved", "ready", "paused"];
  let agents = [];
  let agentsAt = 0;

  function tr(key, values) {
    let text = TEXT[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }
  const label = (prefix, code) => TEXT[prefix + code] || code;
  const pct = (x) => (100 * (x || 0)).toFixed(1) + "%";
  function formatDuration(seconds) {
    const s = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60));
    const ss = String(s % 60).padStart(2, "0");
    return h ? h + ":" + mm.padStart(2, "0") + ":" + ss : mm + ":" + ss;
  }
  const formatTime = (iso) => new Date(iso).toLocaleTimeString(LANG, { hour: "2-digit", minute: "2-digit" });

  function showBoard(board) {
    $("wb-logged-in").textContent = String(board.agents_logged_in);
    $("wb-in-flight").textContent = String(board.calls_in_flight);
    $("wb-dialed").textContent = String(board.dialed_today);
    $("wb-answer-rate").textContent = pct(board.answer_rate_today);
    $("wb-answered").textContent = tr("wb.answered_of", { answered: board.answered_today, dialed: board.dialed_today });
    $("wb-appointments").textContent = String(board.appointments_today);
    const abandon = board.abandon;
    $("wb-abandon-rate").textContent = pct(abandon.rate);
    $("wb-abandon-budget").textContent = tr("wb.abandon_budget", {
      target: pct(abandon.target), remaining: abandon.remaining_abandons, days: abandon.window_days,
    });
    $("wb-abandon-tile").classList.toggle("wb-bad", !!abandon.exceeded);
    const states = Object.keys(board.agents_by_state).sort((a, b) => STATE_ORDER.indexOf(a) - STATE_ORDER.indexOf(b));
    $("wb-states").replaceChildren(...states.map((s) =>
      el("span", { class: "agent-state-badge", "data-state": s }, label("agent.state.", s) + " " + board.agents_by_state[s])));
    $("wb-updated").textContent = tr("wb.updated", { at: formatTime(board.at) });
  }

  function showAgents() {
    const elapsed = (performance.now() - agentsAt) / 1000;
    const body = root.querySelector("#wb-agents tbody");
    body.replaceChildren(...agents.map((a) => el("tr", { "data-user": a.user_id },
      el("td", { class: "wb-agent-name" }, a.display_name || a.username),
      el("td", {}, a.extension),
      el("td", {}, el("span", { class: "agent-state-badge", "data-state": a.state },
        label("agent.state.", a.state) + (a.pause_reason ? " · " + label("agent.pause.", a.pause_reason) : ""))),
      el("td", {}, formatTime(a.since)),
      el("td", { class: "wb-timer" }, formatDuration(a.seconds_in_state + elapsed)),
      el("td", {}, [a.lead_name, a.lead_company].filter(Boolean).join(" · ")))));
    $("wb-agents-empty").hidden = agents.length > 0;
  }

  async function loadAgents() {
    try {
      agents = await api("GET", "/supervisor/agents?campaign_id=" + campaignId);
      agentsAt = performance.now();
      showAgents();
    } catch (err) {
      $("wb-updated").textContent = tr("wb.error", { message: err.message });
    }
  }

  async function loadBoard() {
    try {
      showBoard(await api("GET", "/supervisor/wallboard?campaign_id=" + campaignId));
    } catch (err) {
      $("wb-updated").textContent = tr("wb.error", { message: err.message });
    }
  }

  const source = new EventSource("/api/v1/supervisor/events?campaign_id=" + campaignId);
  source.addEventListener("wallboard", (ev) => showBoard(JSON.parse(ev.data)));
  source.addEventListener("state", () => loadAgents());
  window.addEventListener("beforeunload", () => source.close());
  setInterval(() => { if (agents.length) showAgents(); }, 1000);
  Promise.all([loadBoard(), loadAgents()]).then(() => { root.dataset.ready = "1"; });
})();
