// QA reviewer pages: call search, one call (player, comments, scorecard), an agent's trend.
// Every read and write goes through the JSON API with `cc.api` (session cookie + CSRF header).
"use strict";
(function () {
  const { api, el } = window.cc;
  const TEXT = JSON.parse((document.getElementById("qa-text") || {}).textContent || "{}");
  const LANG = document.body.dataset.lang || "zh-CN";
  const PAGE_SIZE = 20;

  function tr(key, values) {
    let text = TEXT[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }

  // Keep an explicit ?lang= on the links we build, so a language switch survives navigation.
  function withLang(url) {
    const lang = new URLSearchParams(location.search).get("lang");
    return lang ? url + (url.includes("?") ? "&" : "?") + "lang=" + encodeURIComponent(lang) : url;
  }

  function showError(node, err) {
    const details = err && err.data && err.data.details;
    let message = err && err.message ? err.message : String(err);
    if (details && details.missing) message += " (" + details.missing.join(", ") + ")";
    node.textContent = tr("qa.js.error", { message });
    node.classList.add("error");
  }

  function formatDateTime(iso) {
    return new Date(iso).toLocaleString(LANG, { dateStyle: "short", timeStyle: "short" });
  }

  function formatDuration(seconds) {
    const s = Math.round(seconds || 0);
    return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
  }

  function formatPct(pct) {
    return pct === null || pct === undefined ? "–" : Number(pct).toFixed(1) + "%";
  }

  // A date input means that whole local day: "from" its midnight, "to" the next midnight (exclusive).
  function dayStartIso(value, addDays) {
    const [y, m, d] = value.split("-").map(Number);
    return new Date(y, m - 1, d + (addDays || 0)).toISOString();
  }

  function optionLabels(select) {
    const labels = {};
    for (const option of select.options) if (option.value) labels[option.value] = option.textContent;
    return labels;
  }

  // --- /qa: call search ---------------------------------------------------------------------------

  function searchPage(form) {
    const tbody = document.querySelector("#qa-results tbody");
    const status = document.getElementById("qa-status");
    const prev = document.getElementById("qa-prev");
    const next = document.getElementById("qa-next");
    const summary = document.getElementById("qa-page-summary");
    const agents = optionLabels(document.getElementById("f-agent"));
    const campaigns = optionLabels(document.getElementById("f-campaign"));
    let offset = 0;

    function apiParams() {
      const params = new URLSearchParams();
      const data = new FormData(form);
      for (const [name, raw] of data.entries()) {
        const value = String(raw).trim();
        if (!value) continue;
        if (name === "from") params.set("from", dayStartIso(value, 0));
        else if (name === "to") params.set("to", dayStartIso(value, 1));
        else params.set(name, value);
      }
      return params;
    }

    function fillFromUrl() {
      const query = new URLSearchParams(location.search);
      for (const field of form.elements) {
        if (!field.name || !query.has(field.name)) continue;
        if (field.type === "checkbox") field.checked = query.get(field.name) === field.value;
        else field.value = query.get(field.name);
      }
      offset = Math.max(0, Number(query.get("offset")) || 0);
    }

    function rememberInUrl() {
      // The form's own values (dates as typed), so reload and back keep the search.
      const query = new URLSearchParams();
      for (const [name, raw] of new FormData(form).entries()) if (String(raw).trim()) query.set(name, String(raw).trim());
      if (offset) query.set("offset", String(offset));
      const lang = new URLSearchParams(location.search).get("lang");
      if (lang) query.set("lang", lang);
      history.replaceState(null, "", location.pathname + (query.toString() ? "?" + query : ""));
    }

    function row(call) {
      const score = call.latest_score_pct === null
        ? el("span", { class: "qa-muted" }, tr("qa.js.not_reviewed"))
        : el("span", {}, formatPct(call.latest_score_pct),
          ...(call.latest_auto_failed ? [" ", el("span", { class: "badge qa-bad" }, tr("qa.js.auto_failed_badge"))] : []));
      const agent = call.agent_user_id === null ? "–"
        : el("a", { href: withLang("/qa/agents/" + call.agent_user_id), title: tr("qa.js.trend") },
          agents[call.agent_user_id] || tr("qa.js.user", { id: call.agent_user_id }));
      return el("tr", { "data-call-id": call.id },
        el("td", {}, call.id),
        el("td", {}, formatDateTime(call.started_at)),
        el("td", {}, agent),
        el("td", {}, call.campaign_id === null ? "–" : campaigns[call.campaign_id] || "#" + call.campaign_id),
        el("td", {}, call.direction === "inbound" ? call.from_number : call.to_number),
        el("td", {}, formatDuration(call.talk_s)),
        el("td", {}, call.disposition_code || "–"),
        el("td", {}, call.recording_status
          ? call.recording_status + (call.recording_duration_s ? " · " + formatDuration(call.recording_duration_s) : "")
          : "–"),
        el("td", {}, score),
        el("td", {}, call.review_count),
        el("td", {}, el("a", { class: "qa-open", href: withLang("/qa/calls/" + call.id) }, tr("qa.js.open"))));
    }

    async function search() {
      status.classList.remove("error");
      status.textContent = tr("qa.js.loading");
      const params = apiParams();
      params.set("limit", String(PAGE_SIZE));
      params.set("offset", String(offset));
      rememberInUrl();
      try {
        const page = await api("GET", "/qa/calls?" + params);
        tbody.replaceChildren(...page.items.map(row));
        status.textContent = page.total ? "" : tr("qa.js.none");
        summary.textContent = page.total
          ? tr("qa.page.summary", { first: offset + 1, last: offset + page.items.length, total: page.total })
          : "";
        prev.disabled = offset === 0;
        next.disabled = offset + page.items.length >= page.total;
        document.body.dataset.qaReady = "search";
      } catch (err) {
        tbody.replaceChildren();
        showError(status, err);
      }
    }

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      offset = 0;
      search();
    });
    form.addEventListener("reset", () => {
      offset = 0;
      window.setTimeout(search, 0); // after the browser has cleared the fields
    });
    prev.addEventListener("click", () => {
      offset = Math.max(0, offset - PAGE_SIZE);
      search();
    });
    next.addEventListener("click", () => {
      offset += PAGE_SIZE;
      search();
    });
    fillFromUrl();
    search();
  }

  // --- /qa/calls/{id}: player, comments, scorecard ------------------------------------------------

  function callPage(root) {
    const callId = Number(root.dataset.callId);
    const userId = root.dataset.userId ? Number(root.dataset.userId) : null;
    const recordingId = root.dataset.recordingId;
    const audio = document.getElementById("qa-audio");
    const commentForm = document.getElementById("qa-comment-form");
    const commentText = document.getElementById("qa-comment-text");
    const commentStatus = document.getElementById("qa-comment-status");
    const commentList = document.getElementById("qa-comments");
    const cardSelect = document.getElementById("qa-scorecard-select");
    const cardBody = document.getElementById("qa-scorecard-body");
    const cardForm = document.getElementById("qa-scorecard-form");
    const result = document.getElementById("qa-result");
    const reviewsBody = document.querySelector("#qa-reviews tbody");
    let player = null;
    let reviews = [];
    let drafts = [];
    let scorecards = [];
    const people = JSON.parse(document.getElementById("qa-people").textContent || "{}");

    function currentSeconds() {
      return player ? Math.round(player.currentTime * 10) / 10 : 0;
    }

    // Comments belong to a review: once this reviewer has one for the call they are added to it at
    // once; before that they are drafts that go in with the review.
    function ownReview() {
      return reviews.find((r) => r.reviewer_user_id === userId) || null;
    }

    function allComments() {
      const saved = reviews.flatMap((r) => (r.comments || []).map((c) => ({ ...c, review_id: r.id })));
      return saved.concat(drafts.map((d) => ({ ...d, draft: true })));
    }

    function renderComments() {
      const comments = allComments().sort((a, b) => a.at_s - b.at_s);
      if (player) player.setMarkers(comments);
      if (!comments.length) {
        commentList.replaceChildren(el("li", { class: "qa-muted" }, tr("qa.comments.none")));
        return;
      }
      commentList.replaceChildren(...comments.map((c) => el("li", { class: c.draft ? "draft" : "" },
        el("button", {
          type: "button", class: "secondary qa-seek", "data-at": c.at_s,
          title: tr("qa.comments.seek", { time: window.ccPlayer.formatTime(c.at_s) }),
          onclick: () => player && player.seek(c.at_s),
        }, window.ccPlayer.formatTime(c.at_s)),
        " ", el("span", { class: "qa-comment-text" }, c.text),
        ...(c.draft ? [" ", el("span", { class: "badge" }, tr("qa.comments.draft"))] : []))));
    }

    function renderReviews() {
      if (!reviews.length) {
        reviewsBody.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "qa-muted" }, tr("qa.js.no_reviews"))));
        return;
      }
      reviewsBody.replaceChildren(...reviews.map((r) => el("tr", { "data-review-id": r.id },
        el("td", {}, r.id),
        el("td", {}, formatDateTime(r.created_at)),
        el("td", {}, people[r.reviewer_user_id] || tr("qa.js.user", { id: r.reviewer_user_id })),
        el("td", {}, formatPct(r.total_pct), ...(r.auto_failed ? [" ", el("span", { class: "badge qa-bad" }, tr("qa.js.auto_failed_badge"))] : [])),
        el("td", {}, (r.comments || []).length),
        el("td", {}, r.acknowledged_at ? formatDateTime(r.acknowledged_at) : tr("qa.js.no")))));
    }

    async function loadReviews() {
      const page = await api("GET", "/qa/reviews?call_id=" + callId + "&limit=100");
      reviews = page.items;
      renderReviews();
      renderComments();
    }

    async function setUpPlayer() {
      if (!recordingId || !audio) return;
      let meta = { duration_s: Number(root.dataset.duration) || 0, metrics: {} };
      try {
        meta = await api("GET", "/recordings/" + recordingId);
      } catch (err) {
        showError(commentStatus, err);
      }
      const current = document.getElementById("qa-current");
      const total = document.getElementById("qa-total");
      player = new window.ccPlayer.WaveformPlayer({
        audio,
        canvas: document.getElementById("qa-waveform"),
        markers: document.getElementById("qa-markers"),
        peaks: (meta.metrics && meta.metrics.peaks) || [],
        duration: meta.duration_s,
        onTime: (now, duration) => {
          current.textContent = window.ccPlayer.formatTime(now);
          total.textContent = window.ccPlayer.formatTime(duration);
        },
      });
    }

    commentForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      commentStatus.classList.remove("error");
      const text = commentText.value.trim();
      if (!text) {
        commentStatus.textContent = tr("qa.comments.empty");
        commentStatus.classList.add("error");
        return;
      }
      const comment = { at_s: currentSeconds(), text };
      const review = ownReview();
      try {
        if (review) {
          await api("POST", "/qa/reviews/" + review.id + "/comments", comment);
          await loadReviews();
          commentStatus.textContent = tr("qa.comments.saved");
        } else {
          drafts.push(comment);
          renderComments();
          commentStatus.textContent = tr("qa.comments.draft");
        }
        commentText.value = "";
      } catch (err) {
        showError(commentStatus, err);
      }
    });

    function criterionRow(criterion) {
      const answers = ["met", "partial", "not_met"].concat(criterion.allow_na ? ["na"] : []);
      return el("div", { class: "qa-criterion" + (criterion.auto_fail ? " auto-fail" : ""), "data-criterion": criterion.id },
        el("div", { class: "qa-criterion-head" },
          el("strong", {}, criterion.label),
          ...(criterion.auto_fail ? [" ", el("span", { class: "badge qa-bad" }, tr("qa.js.auto_failed_badge"))] : []),
          " ", el("span", { class: "qa-muted" }, tr("qa.js.weight", { weight: criterion.weight }))),
        criterion.guidance ? el("p", { class: "qa-muted qa-guidance" }, criterion.guidance) : "",
        el("div", { class: "qa-answers", role: "radiogroup", "aria-label": criterion.label },
          ...answers.map((answer) => el("label", { class: "qa-answer" },
            el("input", { type: "radio", name: "c:" + criterion.id, value: answer }),
            tr("qa.answer." + answer)))));
    }

    function renderScorecard() {
      const card = scorecards.find((c) => String(c.id) === cardSelect.value);
      if (!card) {
        cardBody.replaceChildren(el("p", { class: "error" }, tr("qa.js.no_scorecard")));
        return;
      }
      cardBody.replaceChildren(
        el("p", { class: "qa-card-title" }, card.body.title + " · v" + card.version),
        ...card.body.sections.map((section) => el("fieldset", { class: "qa-section", "data-section": section.id },
          el("legend", {}, section.label),
          ...section.criteria.map(criterionRow))));
    }

    function labelOf(card, criterionId) {
      for (const section of card.body.sections) {
        for (const c of section.criteria) if (c.id === criterionId) return c.label;
      }
      return criterionId;
    }

    function showResult(card, review) {
      const sections = Object.fromEntries(card.body.sections.map((s) => [s.id, s.label]));
      const failed = review.auto_fail_items.map((id) => labelOf(card, id));
      result.replaceChildren(
        el("h3", {}, tr("qa.result.title")),
        el("p", { class: "qa-score " + (review.passed ? "ok" : "error"), id: "qa-score" },
          tr("qa.result.score", { pct: Number(review.total_pct).toFixed(1) }), " · ",
          review.passed ? tr("qa.result.passed") : tr("qa.result.failed")),
        ...(review.auto_failed
          ? [el("p", { class: "error" }, tr("qa.result.auto_failed", { items: failed.join(", ") })),
            el("p", { class: "qa-muted" }, tr("qa.result.raw", { pct: Number(review.raw_pct).toFixed(1) }))]
          : []),
        el("table", { class: "qa-table" },
          el("thead", {}, el("tr", {}, el("th", {}, tr("qa.col.section")), el("th", {}, tr("qa.col.pct")))),
          el("tbody", {}, ...review.section_scores.map((s) => el("tr", {},
            el("td", {}, sections[s.section_id] || s.section_id), el("td", {}, formatPct(s.pct)))))),
        el("p", { class: "qa-muted" }, tr("qa.result.saved", { id: review.id })));
      result.hidden = false;
    }

    cardSelect.addEventListener("change", renderScorecard);
    cardForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const card = scorecards.find((c) => String(c.id) === cardSelect.value);
      if (!card) return;
      const answers = {};
      const missing = [];
      for (const row of cardBody.querySelectorAll(".qa-criterion")) {
        const picked = row.querySelector("input[type=radio]:checked");
        row.classList.toggle("qa-missing", !picked);
        if (picked) answers[row.dataset.criterion] = picked.value;
        else missing.push(row);
      }
      result.classList.remove("error");
      if (missing.length) {
        result.replaceChildren(el("p", { class: "error" }, tr("qa.result.missing", { count: missing.length })));
        result.hidden = false;
        missing[0].scrollIntoView({ block: "center" });
        return;
      }
      const submit = document.getElementById("qa-review-submit");
      submit.disabled = true;
      try {
        const review = await api("POST", "/qa/reviews", {
          call_id: callId,
          scorecard_id: card.id,
          answers,
          summary: document.getElementById("qa-summary").value,
          comments: drafts.map((d) => ({ at_s: d.at_s, text: d.text })),
        });
        drafts = [];
        showResult(card, review);
        await loadReviews();
        document.body.dataset.qaReviewed = String(review.id);
      } catch (err) {
        result.replaceChildren(el("p", { class: "error" }));
        showError(result.firstChild, err);
        result.hidden = false;
      } finally {
        submit.disabled = false;
      }
    });

    async function loadScorecards() {
      scorecards = await api("GET", "/qa/scorecards?lang=" + encodeURIComponent(LANG));
      cardSelect.replaceChildren(...scorecards.map((c) => el("option", { value: c.id }, c.body.title + " (" + c.name + " v" + c.version + ")")));
      renderScorecard();
    }

    (async () => {
      try {
        await setUpPlayer();
        await Promise.all([loadReviews(), loadScorecards()]);
        document.body.dataset.qaReady = "call";
      } catch (err) {
        showError(commentStatus, err);
      }
    })();
  }

  // --- /qa/agents/{id}: trend ---------------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function trendChart(points, tz) {
    const width = 720, height = 240, left = 40, right = 28, top = 12, bottom = 32;
    const plotW = width - left - right, plotH = height - top - bottom;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "qa-trend-svg", role: "img", "aria-label": tr("qa.col.average") });
    const y = (pct) => top + plotH * (1 - pct / 100);
    const x = (i) => left + (points.length > 1 ? (plotW * i) / (points.length - 1) : plotW / 2);
    for (const pct of [0, 25, 50, 75, 100]) {
      chart.append(svg("line", { x1: left, x2: width - right, y1: y(pct), y2: y(pct), class: "grid" }));
      chart.append(svg("text", { x: left - 6, y: y(pct) + 4, "text-anchor": "end", class: "axis" }, pct));
    }
    const step = Math.max(1, Math.ceil(points.length / 8));
    points.forEach((p, i) => {
      if (i % step === 0) {
        const label = new Date(p.bucket_start).toLocaleDateString(LANG, { month: "numeric", day: "numeric", timeZone: tz });
        chart.append(svg("text", { x: x(i), y: height - 10, "text-anchor": "middle", class: "axis" }, label));
      }
    });
    // Review counts as pale bars along the bottom quarter: how much each average rests on.
    const most = Math.max(1, ...points.map((p) => p.review_count));
    const barW = Math.max(2, Math.min(24, (plotW / Math.max(1, points.length)) * 0.6));
    points.forEach((p, i) => {
      if (!p.review_count) return;
      const h = (plotH / 4) * (p.review_count / most);
      chart.append(svg("rect", { x: x(i) - barW / 2, y: top + plotH - h, width: barW, height: h, class: "count" },
        svg("title", {}, `${tr("qa.col.reviews")}: ${p.review_count}`)));
    });
    const scored = points.map((p, i) => [p, i]).filter(([p]) => p.average_pct !== null);
    if (scored.length > 1) {
      chart.append(svg("polyline", { points: scored.map(([p, i]) => `${x(i)},${y(p.average_pct)}`).join(" "), class: "line" }));
    }
    for (const [p, i] of scored) {
      chart.append(svg("circle", { cx: x(i), cy: y(p.average_pct), r: 4, class: p.auto_fail_count ? "point bad" : "point" },
        svg("title", {}, `${formatPct(p.average_pct)} · ${p.review_count}`)));
    }
    return chart;
  }

  function trendPage(root) {
    const agentId = root.dataset.agentId;
    const form = document.getElementById("qa-trend-form");
    const tbody = document.querySelector("#qa-trend-table tbody");
    const chart = document.getElementById("qa-trend-chart");
    const status = document.getElementById("qa-status");

    async function load() {
      status.classList.remove("error");
      status.textContent = tr("qa.js.loading");
      const params = new URLSearchParams({ bucket: document.getElementById("t-bucket").value });
      const from = document.getElementById("t-from").value;
      const to = document.getElementById("t-to").value;
      if (from) params.set("from", dayStartIso(from, 0));
      if (to) params.set("to", dayStartIso(to, 1));
      try {
        const trend = await api("GET", "/qa/agents/" + agentId + "/trend?" + params);
        const points = trend.points;
        tbody.replaceChildren(...points.map((p) => el("tr", {},
          el("td", {}, new Date(p.bucket_start).toLocaleDateString(LANG, { timeZone: trend.tz })),
          el("td", {}, p.review_count),
          el("td", {}, formatPct(p.average_pct)),
          el("td", {}, p.auto_fail_count))));
        chart.replaceChildren(points.some((p) => p.review_count) ? trendChart(points, trend.tz) : "");
        status.textContent = points.some((p) => p.review_count) ? "" : tr("qa.js.no_trend");
        document.body.dataset.qaReady = "trend";
      } catch (err) {
        showError(status, err);
      }
    }

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      load();
    });
    load();
  }

  // Server-rendered times are UTC; show them in the reviewer's own zone like the API-fed ones.
  for (const node of document.querySelectorAll("time.qa-time")) node.textContent = formatDateTime(node.dateTime);

  const searchForm = document.getElementById("qa-search-form");
  const callRoot = document.getElementById("qa-call");
  const trendRoot = document.getElementById("qa-trend");
  if (searchForm) searchPage(searchForm);
  else if (callRoot) callPage(callRoot);
  else if (trendRoot) trendPage(trendRoot);
})();
