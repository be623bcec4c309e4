// The videojobs console: plain DOM + fetch against /api/v1/videos. This file: the helpers every
// page uses (the list page's jobs.js, and timeline.js for the job page and the plan preview):
// building elements, the credential, and calls to the API. Each page loads it first.
"use strict";
const VJ = (() => {
  const API = "/api/v1/videos";

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
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
      setCredential(box.value.trim());
      window.location.reload();
    });
  }

  function setCredential(v) { if (v) sessionStorage.setItem(CRED, v); else sessionStorage.removeItem(CRED); }

  async function api(method, path, body) {
    const opts = { method, headers: {} };
    if (credential()) opts.headers.Authorization = `Bearer ${credential()}`;
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    const r = await fetch(API + path, opts);
    const text = await r.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = null; }  // e.g. a proxy's HTML page
    if (!r.ok) {
      const err = new Error((doc && (doc.detail || doc.title)) || `${r.status} ${r.statusText}`);
      err.problem = doc; err.status = r.status;
      throw err;
    }
    return doc;
  }

  return { API, el, api, credential, setCredential, credentialBox };
})();
