// Admin pages: campaigns (list, create, edit), lead lists with CSV/XLSX import and progress, leads;
// the script editor (JSON body checked and previewed by the server, saved as a new version).
"use strict";
(function () {
  const { api, el, csrfToken } = window.cc;
  const textNode = document.getElementById("admin-text");
  if (!textNode) return;
  const TEXT = JSON.parse(textNode.textContent || "{}");
  const LANG = document.body.dataset.lang || "zh-CN";
  const $ = (id) => document.getElementById(id);

  function tr(key, values) {
    let text = TEXT[key] || key;
    for (const [name, value] of Object.entries(values || {})) text = text.split("{" + name + "}").join(String(value));
    return text;
  }
  const label = (prefix, code) => TEXT[prefix + code] || code;
  function say(node, message, isError) {
    node.textContent = message || "";
    node.classList.toggle("error", !!isError);
  }
  function errorText(err) {
    const details = err && err.data && err.data.details;
    let message = err && err.message ? err.message : String(err);
    if (Array.isArray(details)) {
      message += ": " + details.slice(0, 5).map((d) => (d.loc ? d.loc.join(".") : d.path || "") + " " + (d.msg || d.message || "")).join("; ");
    }
    return tr("admin.js.error", { message });
  }

  // Same-origin JSON request outside /api/v1 (the script editor's page endpoints), with the CSRF header.
  async function pagePost(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: JSON.stringify(body),
    });
    const data = await resp.json();
    if (!resp.ok) { const err = new Error(data && data.message || resp.statusText); err.data = data; throw err; }
    return data;
  }

  // --- /admin/campaigns -------------------------------------------------------------------------

  function campaignsPage(root) {
    let campaigns = [];
    let current = null; // campaign being edited (null: creating)
    let selected = null; // campaign whose lists and leads are shown
    const form = $("admin-campaign-form");
    const NUMBER_FIELDS = ["dial_ratio", "max_lines", "abandon_target", "ring_timeout_s", "max_attempts"];
    const CREATE_ONLY = ["caller_id_number", "regime"];

    async function loadCampaigns() {
      try {
        const page = await api("GET", "/campaigns?limit=200");
        campaigns = page.items;
        const body = root.querySelector("#admin-campaign-table tbody");
        body.replaceChildren(...campaigns.map((c) => el("tr", { "data-id": c.id, class: selected && selected.id === c.id ? "admin-selected" : "" },
          el("td", {}, c.id),
          el("td", {}, el("a", { href: "#", class: "admin-open", onclick: (ev) => { ev.preventDefault(); select(c); } }, c.name)),
          el("td", {}, label("admin.status.", c.status)),
          el("td", {}, label("agent.mode.", c.dial_mode)),
          el("td", {}, c.caller_id_number),
          el("td", {}, c.regime),
          el("td", {}, el("button", { type: "button", class: "secondary admin-edit", onclick: () => edit(c) }, tr("admin.edit"))))));
        if (!campaigns.length) body.append(el("tr", {}, el("td", { colspan: "7", class: "agent-muted" }, tr("admin.campaigns.none"))));
      } catch (err) {
        say($("admin-list-status"), errorText(err), true);
      }
    }

    function edit(campaign) {
      current = campaign;
      $("admin-campaign-editor").hidden = false;
      $("admin-editor-title").textContent = campaign ? tr("admin.campaign.edit", { name: campaign.name }) : tr("admin.campaign.new");
      form.reset();
      const values = campaign || { calling_windows: { every_day: [["09:00", "21:00"]], breaks: [["12:00", "13:30"]] }, retry_rules: {} };
      for (const field of form.elements) {
        if (!field.name) continue;
        if (field.name === "calling_windows" || field.name === "retry_rules") {
          field.value = JSON.stringify(values[field.name] || {}, null, 2);
        } else if (values[field.name] !== undefined) {
          field.value = String(values[field.name]);
        }
        field.disabled = !!campaign && CREATE_ONLY.includes(field.name);
      }
      $("c-status").disabled = !campaign;
      say($("admin-campaign-status"), campaign ? tr("admin.campaign.caller_id_fixed") : "");
      $("c-name").focus();
    }

    function formBody() {
      const body = {};
      for (const field of form.elements) {
        if (!field.name || field.disabled) continue;
        if (field.name === "calling_windows" || field.name === "retry_rules") {
          try {
            body[field.name] = field.value.trim() ? JSON.parse(field.value) : {};
          } catch (e) {
            throw new Error(tr("admin.js.bad_json", { field: label("admin.f.", field.name), message: e.message }));
          }
        } else if (NUMBER_FIELDS.includes(field.name)) {
          body[field.name] = Number(field.value);
        } else {
          body[field.name] = field.value.trim();
        }
      }
      return body;
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const status = $("admin-campaign-status");
      let body;
      try { body = formBody(); } catch (e) { say(status, e.message, true); return; }
      try {
        const saved = current ? await api("PATCH", "/campaigns/" + current.id, body) : await api("POST", "/campaigns", body);
        say(status, tr("admin.campaign.saved", { name: saved.name }));
        current = saved;
        await loadCampaigns();
        select(saved);
      } catch (err) {
        say(status, errorText(err), true);
      }
    });
    $("admin-campaign-cancel").addEventListener("click", () => { $("admin-campaign-editor").hidden = true; });
    $("admin-new-campaign").addEventListener("click", () => edit(null));

    async function select(campaign) {
      selected = campaign;
      for (const row of root.querySelectorAll("#admin-campaign-table tbody tr")) {
        row.classList.toggle("admin-selected", row.dataset.id === String(campaign.id));
      }
      $("admin-lists").hidden = false;
      $("admin-leads").hidden = false;
      $("admin-lists-title").textContent = tr("admin.lists.title", { name: campaign.name });
      await Promise.all([loadLists(), loadLeads()]);
    }

    async function loadLists() {
      try {
        const lists = await api("GET", "/campaigns/" + selected.id + "/lists");
        root.querySelector("#admin-list-table tbody").replaceChildren(...lists.map((l) => el("tr", {},
          el("td", {}, l.id), el("td", {}, l.name), el("td", {}, l.priority), el("td", {}, l.is_active ? "✓" : "–"))));
        $("import-list").replaceChildren(...lists.map((l) => el("option", { value: l.id }, l.name)));
        $("admin-import-submit").disabled = lists.length === 0;
      } catch (err) {
        say($("admin-lists-status"), errorText(err), true);
      }
    }

    $("admin-list-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", "/campaigns/" + selected.id + "/lists", {
          name: $("list-name").value.trim(), priority: Number($("list-priority").value || 0),
        });
        $("list-name").value = "";
        say($("admin-lists-status"), "");
        await loadLists();
      } catch (err) {
        say($("admin-lists-status"), errorText(err), true);
      }
    });

    $("admin-import-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const file = $("import-file").files[0];
      if (!file) return;
      const data = new FormData();
      data.append("file", file);
      const status = $("admin-lists-status");
      try {
        const resp = await fetch("/api/v1/campaigns/" + selected.id + "/lists/" + $("import-list").value + "/imports", {
          method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() }, body: data,
        });
        const job = await resp.json();
        if (!resp.ok) { const err = new Error(job.message || resp.statusText); err.data = job; throw err; }
        say(status, "");
        watchImport(job);
      } catch (err) {
        say(status, errorText(err), true);
      }
    });

    function showImport(job) {
      $("admin-import-progress").hidden = false;
      const bar = $("import-bar");
      bar.max = Math.max(1, job.total_rows);
      bar.value = job.status === "done" ? bar.max : job.processed_rows;
      $("import-summary").textContent = tr("admin.import.progress", {
        file: job.filename, status: label("admin.import.status.", job.status), processed: job.processed_rows,
        total: job.total_rows, imported: job.imported, rejected: job.rejected,
      }) + (job.failure ? " · " + job.failure : "");
      $("import-summary").dataset.status = job.status;
      $("import-errors").replaceChildren(...job.errors.slice(0, 50).map((e) =>
        el("li", {}, tr("admin.import.error_line", { line: e.line, field: e.field || "", message: e.message || e.code }))));
    }

    async function watchImport(job) {
      showImport(job);
      while (job.status === "queued" || job.status === "running") {
        await new Promise((resolve) => setTimeout(resolve, 500));
        try {
          job = await api("GET", "/campaigns/" + job.campaign_id + "/imports/" + job.id);
        } catch (err) {
          say($("admin-lists-status"), errorText(err), true);
          return;
        }
        showImport(job);
      }
      loadLeads();
    }

    async function loadLeads() {
      const params = new URLSearchParams({ limit: "100" });
      if ($("leads-status").value) params.set("lead_status", $("leads-status").value);
      if ($("leads-grade").value) params.set("grade", $("leads-grade").value);
      try {
        const page = await api("GET", "/campaigns/" + selected.id + "/leads?" + params);
        const man = (l) => ["man_money", "man_authority", "man_need"].map((f) => (l[f] ? "✓" : "·")).join("");
        root.querySelector("#admin-lead-table tbody").replaceChildren(...page.items.map((l) => el("tr", { "data-id": l.id },
          el("td", {}, l.id), el("td", {}, l.name), el("td", {}, l.company), el("td", {}, l.phone_e164),
          el("td", {}, l.segment ? label("agent.segment.", l.segment) : ""), el("td", { class: "admin-grade" }, l.grade),
          el("td", {}, man(l)), el("td", { class: "admin-lead-status" }, label("agent.leadstatus.", l.status)),
          el("td", {}, l.attempts), el("td", {}, l.last_outcome ? label("agent.code.", l.last_outcome) : ""))));
        $("admin-leads-summary").textContent = tr("admin.leads.summary", { shown: page.items.length, total: page.total });
      } catch (err) {
        $("admin-leads-summary").textContent = errorText(err);
      }
    }
    $("leads-status").addEventListener("change", loadLeads);
    $("leads-grade").addEventListener("change", loadLeads);

    loadCampaigns().then(() => { root.dataset.ready = "1"; });
  }

  // --- /admin/scripts ---------------------------------------------------------------------------

  function scriptsPage(root) {
    const campaignId = Number(root.dataset.campaign) || null;
    const language = root.dataset.language;
    const status = $("script-status");

    function request() {
      let body;
      try {
        body = JSON.parse($("script-body").value);
      } catch (e) {
        throw new Error(tr("admin.js.bad_json", { field: tr("admin.scripts.body"), message: e.message }));
      }
      return {
        body, campaign_id: campaignId, language,
        lead: { name: $("sample-name").value, company: $("sample-company").value, segment: $("sample-segment").value, grade: $("sample-grade").value },
      };
    }

    function showProblems(problems) {
      $("script-problems").replaceChildren(...problems.map((p) => el("li", {}, el("code", {}, p.path || "/"), " ", p.message)));
    }

    function showPreview(stages) {
      $("script-preview").replaceChildren(...stages.map((s) => el("article", { class: "admin-stage", id: "stage-" + s.id, "data-stage": s.id },
        el("h3", {}, s.title + " ", el("span", { class: "badge" }, label("agent.kind.", s.kind)), " ", el("code", {}, s.id)),
        el("p", { class: "script-text" }, s.text),
        s.hints.length ? el("ul", { class: "agent-hints" }, ...s.hints.map((h) => el("li", {}, h))) : "",
        s.recommended.length ? el("p", { class: "agent-recommended" }, ...s.recommended.map((r) => el("span", { class: "badge" }, "★ " + r.title + " — " + r.why))) : "",
        el("div", { class: "agent-branches" }, ...s.branches.map((b) => el("a", { href: "#stage-" + b.to, class: "badge" }, b.label + " → " + b.to))))));
    }

    async function check() {
      let body;
      try { body = request(); } catch (e) { say(status, e.message, true); showProblems([]); return null; }
      try {
        const result = await pagePost("/admin/scripts/check", body);
        showProblems(result.problems);
        if (result.ok) {
          say(status, tr("admin.scripts.valid", { count: result.stages.length }));
          showPreview(result.stages);
        } else {
          say(status, tr("admin.scripts.invalid", { count: result.problems.length }), true);
        }
        return result;
      } catch (err) {
        say(status, errorText(err), true);
        return null;
      }
    }

    $("script-check").addEventListener("click", check);
    $("script-save").addEventListener("click", async () => {
      const result = await check();
      if (!result || !result.ok) return;
      try {
        const saved = await pagePost("/admin/scripts/save", { ...request(), publish: $("script-publish").checked });
        say(status, tr("admin.scripts.saved", { version: saved.version }));
        $("script-source").textContent = tr("admin.scripts.version", {
          version: saved.version, state: saved.published ? tr("admin.scripts.published") : tr("admin.scripts.draft"),
        });
      } catch (err) {
        say(status, errorText(err), true);
      }
    });
    check().then(() => { root.dataset.ready = "1"; });
  }

  const campaignsRoot = $("admin-campaigns");
  if (campaignsRoot) campaignsPage(campaignsRoot);
  const scriptsRoot = $("admin-scripts");
  if (scriptsRoot && $("script-body")) scriptsPage(scriptsRoot);
  else if (scriptsRoot) scriptsRoot.dataset.ready = "1";
  void LANG;
})();
