// The job page: status, the lecture's timeline (cues, points, planned clips with live
// progress per clip), a player (click a cue to play from there), and the finished clips.
"use strict";
const JOB = (() => {
  const { el, api, fmtTime, FINISHED } = TL;
  const state = { id: "", doc: null, results: { segments: [] }, status: "pending", stage: null, sourceUrl: "" };

  function followWithCredential(url, onProgress) {
    // EventSource cannot send headers: read the same stream with fetch.
    const ctl = new AbortController();
    (async () => {
      const r = await fetch(url, { headers: { Authorization: `Bearer ${TL.credential()}` }, signal: ctl.signal });
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
    const url = `${TL.API}/progress/${encodeURIComponent(jobId)}/stream`;
    if (TL.credential()) return followWithCredential(url, onProgress);
    const es = new EventSource(url);
    es.addEventListener("progress", (e) => onProgress(JSON.parse(e.data)));
    es.addEventListener("end", () => es.close());
    return es;
  }

  // clips of audio-only sources play in the same element
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

  // Each planned clip's state: done (published), cutting (the first unpublished one while the
  // job cuts), waiting, or not-cut (the job ended without it).
  function clipState(clip) {
    const done = new Set(state.results.segments.map((s) => s.index));
    if (done.has(clip.index)) return "done";
    if (FINISHED.has(state.status)) return "not-cut";
    if (state.status !== "processing" || !["Cutting", "Uploading"].includes(state.stage)) return "waiting";
    const next = state.doc.clips.find((c) => !done.has(c.index));
    return next && next.index === clip.index ? "cutting" : "waiting";
  }

  function playableFile(seg) {
    return seg.files.find((f) => f.kind === "video") || seg.files.find((f) => f.kind === "audio");
  }

  // Play from time t: in the finished clip that holds it, else in the source (a direct URL).
  function playAt(t) {
    const player = document.getElementById("player");
    const seg = state.results.segments.find((s) => s.start <= t && t < s.end && playableFile(s));
    let src = null, offset = t, what = "";
    if (seg) { src = playableFile(seg).url; offset = t - seg.start; what = `clip ${seg.index}. ${seg.title}`; }
    else if (/^(https?:\/\/|\/)/.test(state.sourceUrl)) { src = state.sourceUrl; what = "the source"; }
    if (!src) { document.getElementById("playing").textContent = "no finished clip holds this time yet"; return; }
    player.hidden = false;
    const start = () => { player.currentTime = offset; player.play().catch(() => {}); };
    if (player.getAttribute("src") !== src) { player.src = src; player.addEventListener("loadedmetadata", start, { once: true }); } else start();
    player.dataset.offset = String(t - offset);
    document.getElementById("playing").textContent = `playing ${what} from ${fmtTime(t)}`;
  }

  function drawTimeline() {
    if (!state.doc) return;
    TL.draw(document.getElementById("timeline"), state.doc, state.doc.clips, { onCue: (cue) => playAt(cue.start), state: clipState });
  }

  // Without a plan (a transcript at a URL): the published clips alone.
  function docFromResults() {
    return { source_url: state.sourceUrl, source_duration: null, cues: [], cues_total: 0, points: [], notes: [],
      transcript_end: null, clips: state.results.segments.map((s) => ({ ...s, confidence: null })) };
  }

  async function loadPlan() {
    try {
      state.doc = await api("GET", `/plan/${encodeURIComponent(state.id)}`);
    } catch (err) {
      document.getElementById("timeline_note").textContent = `no plan preview: ${TL.problemText(err)}`;
      state.doc = null;
      return;
    }
    document.getElementById("points").replaceChildren(TL.pointsTable(state.doc, null));
    showNotes();
  }

  // The job's own notes (its submission's, then the run's: a clip clamped to the source's real
  // duration), else the plan preview's.
  function showNotes() {
    const notes = state.notes && state.notes.length ? state.notes : state.doc ? state.doc.notes : [];
    const list = document.getElementById("notes");
    if (list.dataset.shown === JSON.stringify(notes)) return;
    list.dataset.shown = JSON.stringify(notes);
    list.replaceChildren(...notes.map((n) => el("li", { text: n })));
  }

  let shown = -1;
  async function showResults() {
    state.results = await api("GET", `/results/${encodeURIComponent(state.id)}`);
    if (state.doc === null && state.results.segments.length) state.doc = docFromResults();
    drawTimeline();
    if (state.results.segments.length === shown) return;
    shown = state.results.segments.length;
    document.getElementById("clips").replaceChildren(...state.results.segments.map(clipCard));
    document.getElementById("no_clips").hidden = shown > 0;
  }

  async function showStatus() {
    const st = await api("GET", `/status/${encodeURIComponent(state.id)}`);
    state.status = st.status;
    state.stage = st.stage;
    const s = document.getElementById("status");
    s.textContent = st.status; s.className = `status ${st.status}`;
    document.getElementById("stage").textContent = st.stage || "";
    document.getElementById("error").textContent = st.error ? `${st.error.category}: ${st.error.message}` : "";
    document.getElementById("submitted_by").textContent = st.submitted_by ? `submitted by ${st.submitted_by}` : "";
    state.notes = st.notes;
    showNotes();
    document.getElementById("cancel").disabled = FINISHED.has(st.status);
    document.getElementById("retry").disabled = !(st.status === "failed" || st.status === "cancelled");
    return st;
  }

  async function onProgress(p) {
    document.getElementById("progress").value = p.percent;
    document.getElementById("percent").textContent = `${p.percent}%  ${p.segments_done}/${p.segments_total} clips`;
    document.getElementById("eta").textContent = p.eta_seconds ? `about ${p.eta_seconds}s left` : "";
    await showStatus();
    await showResults();
  }

  function buttons() {
    let stream = null;
    document.getElementById("cancel").addEventListener("click", async () => {
      if (!window.confirm(`Cancel job ${state.id}?`)) return;
      await api("POST", `/jobs/${encodeURIComponent(state.id)}/cancel`);
      showStatus();
    });
    document.getElementById("retry").addEventListener("click", async () => {
      await api("POST", `/jobs/${encodeURIComponent(state.id)}/retry`);
      await showStatus();
      if (stream) stream.close();
      stream = follow(state.id, onProgress);
    });
    return (s) => { stream = s; };
  }

  async function page() {
    TL.credentialBox();
    state.id = decodeURIComponent(window.location.pathname.split("/").pop());
    document.getElementById("job_id").textContent = state.id;
    let job;
    try { job = await api("GET", `/jobs/${encodeURIComponent(state.id)}`); } catch (err) {
      document.getElementById("error").textContent = `${err.status === 404 ? "no such job" : "cannot load the job"}: ${TL.problemText(err)}`;
      document.getElementById("cancel").disabled = true; document.getElementById("retry").disabled = true;
      return;
    }
    state.sourceUrl = job.video_url;
    document.getElementById("video_url").textContent = job.video_url;
    const setStream = buttons();
    await loadPlan();
    const st = await showStatus();
    await onProgress(await api("GET", `/progress/${encodeURIComponent(state.id)}`));
    if (!FINISHED.has(st.status)) setStream(follow(state.id, onProgress));
  }

  return { page, state, playAt };
})();
JOB.page();
