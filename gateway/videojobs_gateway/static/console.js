// The videojobs console: plain DOM + fetch against /api/v1/videos. This file: the helpers the list
// page (jobs.js) uses; the job page is job.js with timeline.js, the plan preview plan.js.
"use strict";
const VJ = (() => {
  const API = "/api/v1/videos";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  // Credentials (API key or bearer token) live in sessionStorage: this tab only, gone when it
  // closes. They go out as the Authorization header; files come with signed URLs from /results.
  const CRED = "videojobs.credential";
  function credential() { return sessionStorage.getItem(CRED) || ""; }
  function credentialBox() {
    const box = document.getElementById("credential");
    if (!box) return;
    box.value = credential();
    box.addEventListener("change", () => {
      const v = box.value.trim();
      if (v) sessionStorage.setItem(CRED, v); else sessionStorage.removeItem(CRED);
      window.location.reload();
    });
  }

  async function api(method, path, body) {
    const opts = { method, headers: {} };
    if (credential()) opts.headers["Authorization"] = `Bearer ${credential()}`;
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(API + path, opts);
    const text = await r.text();
    const doc = text ? JSON.parse(text) : null;
    if (!r.ok) { const err = new Error((doc && (doc.detail || doc.title)) || r.statusText); err.problem = doc; throw err; }
    return doc;
  }

  function setCredential(v) { if (v) sessionStorage.setItem(CRED, v); else sessionStorage.removeItem(CRED); }

  // shared with the list page (jobs.js); the job page is job.js + timeline.js, the plan preview plan.js
  return { el, api, credential, setCredential, credentialBox };
})();
