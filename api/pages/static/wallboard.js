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

  // Per-agent results of the last 7 days against each other: calls and appointments (a bar pair each),
  // from the same report the CSV link downloads.
  function reportRange() {
    const day = (d) => d.toISOString().slice(0, 10);
    const today = new Date();
    return { from: day(new Date(today.getTime() - 6 * 86400000)), to: day(today) };
  }

  function showReport(rows) {
    const byAgent = new Map();
    for (const r of rows) {
      const a = byAgent.get(r.agent_user_id) || { name: r.agent_name, calls: 0, contacts: 0, talk: 0, appts: 0 };
      a.calls += r.calls; a.contacts += r.contacts; a.talk += r.talk_s; a.appts += r.appointments;
      byAgent.set(r.agent_user_id, a);
    }
    const list = [...byAgent.values()].sort((x, y) => y.calls - x.calls);
    $("wb-report-table").querySelector("tbody").replaceChildren(...list.map((a) => el("tr", {},
      el("td", {}, a.name), el("td", {}, String(a.calls)), el("td", {}, String(a.contacts)),
      el("td", {}, formatDuration(a.talk)), el("td", {}, String(a.appts)),
      el("td", {}, a.contacts ? pct(a.appts / a.contacts) : "–"))));
    const svg = $("wb-report-chart");
    const NS = "http://www.w3.org/2000/svg";
    const width = svg.clientWidth || 600;
    const height = 220;
    const top = Math.max(1, ...list.map((a) => a.calls));
    const slot = list.length ? width / list.length : width;
    const bar = Math.min(40, slot / 3);
    const shapes = [];
    list.forEach((a, i) => {
      const x = i * slot + slot / 2 - bar;
      [[a.calls, "wb-bar-calls"], [a.appts, "wb-bar-appts"]].forEach(([value, cls], k) => {
        const h = (value / top) * (height - 40);
        const rect = document.createElementNS(NS, "rect");
        rect.setAttribute("x", String(x + k * bar)); rect.setAttribute("y", String(height - 20 - h));
        rect.setAttribute("width", String(bar - 2)); rect.setAttribute("height", String(Math.max(h, 1)));
        rect.setAttribute("class", cls);
        const tip = document.createElementNS(NS, "title");
        tip.textContent = a.name + ": " + value;
        rect.appendChild(tip);
        shapes.push(rect);
      });
      const text = document.createElementNS(NS, "text");
      text.setAttribute("x", String(i * slot + slot / 2)); text.setAttribute("y", String(height - 4));
      text.setAttribute("text-anchor", "middle");
      text.textContent = a.name;
      shapes.push(text);
    });
    svg.replaceChildren(...shapes);
  }

  async function loadReport() {
    const range = reportRange();
    const query = "?campaign_id=" + campaignId + "&from=" + range.from + "&to=" + range.to;
    $("wb-report-csv").setAttribute("href", "/api/v1/reports/agents" + query + "&format=csv");
    try {
      showReport(await api("GET", "/reports/agents" + query));
    } catch (err) {
      $("wb-updated").textContent = tr("wb.error", { message: err.message });
    }
  }

  const source = new EventSource("/api/v1/supervisor/events?campaign_id=" + campaignId);
  source.addEventListener("wallboard", (ev) => showBoard(JSON.parse(ev.data)));
  source.addEventListener("state", () => loadAgents());
  window.addEventListener("beforeunload", () => source.close());
  setInterval(() => { if (agents.length) showAgents(); }, 1000);
  Promise.all([loadBoard(), loadAgents(), loadReport()]).then(() => { root.dataset.ready = "1"; });
})();
