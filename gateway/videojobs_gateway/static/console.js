// The videojobs console: plain DOM + fetch + EventSource against /api/v1/videos. This file: the
// helpers both pages use, and the job page; the list page is jobs.js.
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

  // clips of audio-only sources (issue 23) play in the same element
  const MEDIA_TYPES = { m4a: "audio/mp4", mp3: "audio/mpeg", opus: "audio/ogg", flac: "audio/flac", wav: "audio/wav" };

  function clipCard(seg) {
    const videos = seg.files.filter((f) => f.kind === "video");
    const thumb = seg.files.find((f) => f.kind === "thumbnail");
    const card = el("div", { class: "clip", "data-clip": String(seg.index) });
    const poster = thumb ? el("img", { src: thumb.url, alt: `thumbnail of ${seg.title}`, class: "thumb" }) : null;
    const player = el("video", { controls: "", preload: "metadata", playsinline: "" });
    if (thumb) player.setAttribute("poster", thumb.url);
    for (const f of [...videos].sort((a) => (a.format === "webm" ? -1 : 1))) {
      player.append(el("source", { src: f.url, type: MEDIA_TYPES[f.format] || `video/${f.format}` }));
    }
    const links = videos.map((f) => el("a", { href: f.url, download: f.name, text: `${f.format} (${(f.bytes / 1024).toFixed(0)} KiB)` }));
    const play = el("button", { class: "secondary play", text: "Play" });
    play.addEventListener("click", () => { if (poster) poster.hidden = true; player.hidden = false; player.play(); });
    player.hidden = Boolean(poster);
    const body = el("div", { class: "body" },
      el("h3", { text: `${seg.index}. ${seg.title}` }),
      el("div", { class: "muted", text: `${seg.knowledge_id || ""}  ${fmtTime(seg.start)} – ${fmtTime(seg.end)}` }),
      el("div", { text: seg.description || "" }),
      el("div", { class: "actions" }, play, ...links));
    if (poster) card.append(poster);
    card.append(player, body);
    return card;
  }

  async function jobPage() {
    credentialBox();
    const jobId = decodeURIComponent(window.location.pathname.split("/").pop());
    document.getElementById("job_id").textContent = jobId;
    const bar = document.getElementById("progress");
    let shown = -1;
    async function showResults() {
      const res = await api("GET", `/results/${jobId}`);
      if (res.segments.length === shown) return;
      shown = res.segments.length;
      const box = document.getElementById("clips");
      box.replaceChildren(...res.segments.map(clipCard));
      document.getElementById("no_clips").hidden = res.segments.length > 0;
    }
    async function showStatus() {
      const st = await api("GET", `/status/${jobId}`);
      const s = document.getElementById("status");
      s.textContent = st.status; s.className = `status ${st.status}`;
      document.getElementById("stage").textContent = st.stage || "";
      document.getElementById("error").textContent = st.error ? `${st.error.category}: ${st.error.message}` : "";
      document.getElementById("cancel").disabled = FINISHED.has(st.status);
      document.getElementById("retry").disabled = !(st.status === "failed" || st.status === "cancelled");
      return st;
    }
    const job = await api("GET", `/jobs/${jobId}`);
    document.getElementById("video_url").textContent = job.video_url;
    function onProgress(p) {
      bar.value = p.percent;
      document.getElementById("percent").textContent = `${p.percent}%  ${p.segments_done}/${p.segments_total} clips`;
      document.getElementById("eta").textContent = p.eta_seconds ? `about ${p.eta_seconds}s left` : "";
      showStatus();
      if (p.segments_done !== shown || FINISHED.has(p.status)) showResults();
    }
    let stream = null;
    const st = await showStatus();
    onProgress(await api("GET", `/progress/${jobId}`));
    if (!FINISHED.has(st.status)) stream = follow(jobId, onProgress);
    document.getElementById("cancel").addEventListener("click", async () => { await api("POST", `/jobs/${jobId}/cancel`); showStatus(); });
    document.getElementById("retry").addEventListener("click", async () => {
      await api("POST", `/jobs/${jobId}/retry`);
      await showStatus();
      if (stream) stream.close();
      stream = follow(jobId, onProgress);
    });
  }

  function setCredential(v) { if (v) sessionStorage.setItem(CRED, v); else sessionStorage.removeItem(CRED); }

  // shared with the list page (jobs.js)
  return { jobPage, el, api, credential, setCredential, credentialBox, fmtTime };
})();
