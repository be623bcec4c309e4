// The videojobs console: plain DOM + fetch + EventSource against /api/v1/videos.
"use strict";
const VJ = (() => {
  const API = "/api/v1/videos";
  const FINISHED = new Set(["completed", "failed", "cancelled"]);

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

  function followWithCredential(url, onProgress) {
    // EventSource cannot send headers: read the same stream with fetch.
    const ctl = new AbortController();
    (async () => {
      const r = await fetch(url, { headers: { Authorization: `Bearer ${credential()}` }, signal: ctl.signal });
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const chunk = buf.slice(0, cut); buf = buf.slice(cut + 2);
          const ev = (chunk.match(/^event: (.*)$/m) || [])[1];
          const data = (chunk.match(/^data: (.*)$/m) || [])[1];
          if (ev === "progress") onProgress(JSON.parse(data));
          if (ev === "end") { ctl.abort(); return; }
        }
      }
    })().catch(() => {});
    return { close: () => ctl.abort() };
  }

  function follow(jobId, onProgress) {
    // Server-Sent Events until the job ends (the `end` event), then the stream is closed.
    const url = `${API}/progress/${encodeURIComponent(jobId)}/stream`;
    if (credential()) return followWithCredential(url, onProgress);
    const es = new EventSource(url);
    es.addEventListener("progress", (e) => onProgress(JSON.parse(e.data)));
    es.addEventListener("end", () => es.close());
    return es;
  }

  function fmtTime(s) {
    const t = Math.max(0, Number(s));
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = (t % 60).toFixed(1).padStart(4, "0");
    return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${sec}`;
  }

  function slug(text, n) {
    const s = text.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
    return s || `point-${n}`;
  }

  function parsePoints(text) {
    const trimmed = text.trim();
    if (!trimmed) return [];
    if (trimmed.startsWith("[")) return JSON.parse(trimmed);
    return trimmed.split("\n").filter((l) => l.trim()).map((line, i) => {
      const m = line.trim().match(/^(\S+?)(?:\s*-\s*(\S+))?\s+(.+)$/);
      if (!m) throw new Error(`knowledge points, line ${i + 1}: expected "START[-END] Title"`);
      const point = { knowledge_id: slug(m[3], i + 1), title: m[3].trim(), start_time: m[1] };
      if (m[2]) point.end_time = m[2];
      return point;
    });
  }

  function buildBody(form) {
    const url = form.video_url.value.trim();
    const transcript = form.transcript.value.trim();
    const points = parsePoints(form.knowledge_points.value);
    const output = { formats: document.getElementById("formats").value.split(","), precision: document.getElementById("precision").value };
    let entries = null;
    if (transcript.startsWith("[")) { try { entries = JSON.parse(transcript); } catch (e) { entries = null; } }
    if (entries !== null) return { video_url: url, transcript: entries, knowledge_points: points, output };
    // WebVTT, SRT or another format: send a spec; the server detects the format
    const kps = points.map((p) => {
      const k = { id: p.knowledge_id, title: p.title, description: p.description || "" };
      if (p.start_time !== undefined) k.start = String(p.start_time);
      if (p.end_time !== undefined) k.end = String(p.end_time);
      if (p.quote) k.quote = p.quote;
      return k;
    });
    return { spec: { source: { url }, transcript: { inline: transcript + "\n", format: "auto" }, knowledgePoints: kps, output } };
  }

  function showRowProgress(row, p) {
    const bar = row.querySelector("progress"), status = row.querySelector(".status");
    bar.value = p.percent; bar.nextSibling.textContent = ` ${p.percent}%`;
    status.textContent = p.status; status.className = `status ${p.status}`;
  }

  function jobRow(job) {
    // No stream per row: a browser opens at most six connections per host, so six unfinished
    // jobs would starve every other request (Submit included). The list polls instead.
    const bar = el("progress", { max: "100", value: String(job.percent) });
    const status = el("span", { class: `status ${job.status}`, text: job.status });
    const link = el("a", { href: `/console/jobs/${job.job_id}`, text: job.job_id });
    return el("tr", { "data-job": job.job_id },
      el("td", {}, link), el("td", { class: "muted", text: job.video_url.slice(0, 60) }),
      el("td", {}, status), el("td", {}, bar, el("span", { class: "muted", text: ` ${job.percent}%` })),
      el("td", { class: "muted", text: job.created_at }));
  }

  const POLL_MS = 2000;

  async function indexPage() {
    credentialBox();
    const form = document.getElementById("submit");
    const tbody = document.querySelector("#jobs tbody");
    const more = document.getElementById("more");
    let cursor = null;
    async function load(reset) {
      const q = new URLSearchParams({ limit: "25" });
      if (!reset && cursor) q.set("cursor", cursor);
      const doc = await api("GET", `/jobs?${q}`);
      if (reset) tbody.replaceChildren();
      for (const job of doc.jobs) tbody.append(jobRow(job));
      cursor = doc.next_cursor; more.hidden = !cursor;
    }
    // One request at a time, every POLL_MS while a shown job is unfinished: the first page
    // again (as many jobs as are shown, at most 200) updates the rows and adds new jobs on top.
    async function refresh() {
      const rows = Array.from(tbody.querySelectorAll("tr[data-job]"));
      const unfinished = rows.some((r) => !FINISHED.has(r.querySelector(".status").textContent));
      if (unfinished && !document.hidden) {
        const q = new URLSearchParams({ limit: String(Math.min(200, Math.max(25, rows.length))) });
        const doc = await api("GET", `/jobs?${q}`);
        const byId = new Map(rows.map((r) => [r.dataset.job, r]));
        const fresh = [];
        for (const job of doc.jobs) {
          const row = byId.get(job.job_id);
          if (row) showRowProgress(row, job); else fresh.push(jobRow(job));
        }
        if (fresh.length) tbody.prepend(...fresh);
      }
    }
    async function poll() {
      try { await refresh(); } catch (err) { /* the next round tries again */ }
      window.setTimeout(poll, POLL_MS);
    }
    more.addEventListener("click", () => load(false));
    document.getElementById("transcript_file").addEventListener("change", async (e) => {
      const file = e.target.files[0];
      if (file) form.transcript.value = await file.text();
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const error = document.getElementById("submit_error");
      error.textContent = "";
      let body;
      try { body = buildBody(form); } catch (err) { error.textContent = err.message; return; }
      const button = document.getElementById("submit_button");
      button.disabled = true;
      try {
        const doc = await api("POST", "/process", body);
        window.location.href = `/console/jobs/${doc.job_id}`;
      } catch (err) {
        const p = err.problem;
        error.textContent = p && p.errors ? p.errors.map((x) => `${x.field}: ${x.message}`).join("\n") : err.message;
      } finally { button.disabled = false; }
    });
    await load(true);
    window.setTimeout(poll, POLL_MS);
  }

  // The job page is static/job.js (with static/timeline.js).

  return { indexPage, parsePoints, buildBody };
})();
