// Shared helpers for the pages: API calls with the session cookie and the CSRF double-submit header.
"use strict";
function csrfToken() {
  const m = document.cookie.match(/(?:^|; )cc_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}
async function api(method, path, body) {
  const opts = { method, headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin" };
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const resp = await fetch("/api/v1" + path, opts);
  const data = resp.status === 204 ? null : await resp.json();
  if (!resp.ok) { const err = new Error(data && data.message || resp.statusText); err.data = data; throw err; }
  return data;
}
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
window.cc = { api, el, csrfToken };
