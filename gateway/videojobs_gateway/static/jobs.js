// The videojobs console's list page: the submit form (with its knowledge-points editor) and the
// job list, kept live by ONE stream (/api/v1/videos/events) for all of the caller's jobs.
// Shared helpers (el, api, credential) come from console.js.
"use strict";
const JOBS = (() => {
  const API = "/api/v1/videos";
  const FINISHED = new Set(["completed", "failed", "cancelled"]);
  const el = (...a) => VJ.el(...a);

  // -- the knowledge-points editor ------------------------------------------------------------

  function slug(text, n) {
    const s = text.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40);
    return s || `point-${n}`;
  }

  const LINE_TIMES = /^(\S+?)(?:\s*-\s*(\S+))?\s+(.+)$/;
  const LINE_QUOTE = /^["“](.+?)["”]\s+(.+)$/;

  // One line of the text box as a point: `START[-END] Title` or `"exact quote" Title`.
  function parseLine(line) {
    const q = line.match(LINE_QUOTE);
    if (q) return { title: q[2].trim(), quote: q[1] };
    const m = line.match(LINE_TIMES);
    if (!m || !/^[0-9]/.test(m[1])) return null;
    return { title: m[3].trim(), start: m[1], end: m[2] || "" };
  }

  function jsonLine(text, err) {
    const at = Number((String(err.message).match(/position (\d+)/) || [])[1]);
    return Number.isFinite(at) ? text.slice(0, at).split("\n").length : null;
  }

  // The text box's points and EVERY problem in it (with its line), not only the first.
  function parseText(text) {
    const trimmed = text.trim();
    if (!trimmed) return { points: [], problems: [] };
    if (trimmed.startsWith("[")) {
      try {
        const list = JSON.parse(text);
        return { points: list.map((p) => ({ title: p.title || "", start: p.start_time ?? p.start ?? "", end: p.end_time ?? p.end ?? "", quote: p.quote || "", description: p.description || "", id: p.knowledge_id || p.id || "" })), problems: [] };
      } catch (err) {
        return { points: [], problems: [{ line: jsonLine(text, err), message: `not a JSON list of points (${err.message})` }] };
      }
    }
    const points = [], problems = [];
    text.split("\n").forEach((raw, i) => {
      if (!raw.trim()) return;
      const p = parseLine(raw.trim());
      if (p) points.push(p); else problems.push({ line: i + 1, message: 'expected START[-END] Title (e.g. 0:03-0:09 Commits) or "exact quote" Title' });
    });
    return { points, problems };
  }

  let pointCount = 0;

  function pointInput(name, label, value, extra) {
    const id = `kp${pointCount}_${name}`;
    return el("div", { class: `pf pf-${name}` }, el("label", { for: id, text: label }),
      el("input", { id, name, type: "text", value: value || "", autocomplete: "off", ...(extra || {}) }));
  }

  function renumber() {
    document.querySelectorAll("#points li.point").forEach((li, i) => {
      li.querySelector(".legend").textContent = `Point ${i + 1}`;
      li.querySelector("button.remove").setAttribute("aria-label", `Remove point ${i + 1}`);
    });
    document.getElementById("no_points").hidden = document.querySelectorAll("#points li.point").length > 0;
  }

  function addPoint(p) {
    pointCount += 1;
    const pt = p || {};
    const remove = el("button", { type: "button", class: "secondary remove", text: "Remove" });
    const li = el("li", { class: "point", "data-id": pt.id || "" },
      el("div", { class: "legend" }),
      el("div", { class: "pfields" },
        pointInput("title", "Title", pt.title, { required: "" }),
        pointInput("start", "Start", pt.start, { placeholder: "0:03 or 3.5", inputmode: "decimal" }),
        pointInput("end", "End", pt.end, { placeholder: "optional", inputmode: "decimal" }),
        pointInput("quote", "Or an exact quote", pt.quote, { placeholder: "words from the transcript" }),
        pointInput("description", "Description", pt.description, { placeholder: "optional" })),
      el("div", { class: "field-error", id: `kp${pointCount}_error` }), remove);
    remove.addEventListener("click", () => { li.remove(); renumber(); });
    document.getElementById("points").append(li);
    renumber();
    return li;
  }

  // A time as the server reads it (65, 65.5, 1:05, 0:01:05.5, 1m5s), in seconds; NaN if not.
  function seconds(text) {
    const t = text.trim();
    if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
    const clock = t.match(/^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:[.,]\d+)?)$/);
    if (clock) return Number(clock[1] || 0) * 3600 + Number(clock[2]) * 60 + Number(clock[3].replace(",", "."));
    const dur = t.match(/^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/);
    if (dur && t) return Number(dur[1] || 0) * 3600 + Number(dur[2] || 0) * 60 + Number(dur[3] || 0);
    return NaN;
  }

  // A row's time problems: each field that is not a time, and an end not after the start.
  function timeProblems(li, where) {
    const out = [];
    const input = (n) => li.querySelector(`input[name=${n}]`);
    const [start, end] = ["start", "end"].map((n) => input(n).value.trim());
    for (const [name, value] of [["start", start], ["end", end]]) {
      if (value && Number.isNaN(seconds(value))) out.push({ row: li, input: input(name), text: `${where}, ${name}: “${value}” is not a time (e.g. 65, 1:05, 0:01:05.5 or 1m5s)` });
    }
    if (start && end && seconds(end) <= seconds(start)) out.push({ row: li, input: input("end"), text: `${where}, end: must be after the start (${start})` });
    return out;
  }

  // The editor's points as REST knowledge points; problems of incomplete rows, all at once.
  function readPoints() {
    const points = [], rows = [], problems = [];
    const used = new Set();
    document.querySelectorAll("#points li.point").forEach((li, i) => {
      const v = (n) => li.querySelector(`input[name=${n}]`).value.trim();
      if (![v("title"), v("start"), v("end"), v("quote")].some(Boolean)) return;
      if (!v("title")) problems.push({ row: li, input: li.querySelector("input[name=title]"), text: `Point ${i + 1}: give it a title` });
      if (!v("start") && !v("quote")) problems.push({ row: li, input: li.querySelector("input[name=start]"), text: `Point ${i + 1}: give a start time or an exact quote` });
      problems.push(...timeProblems(li, `Point ${i + 1}${v("title") ? ` “${v("title")}”` : ""}`));
      let id = li.dataset.id || slug(v("title"), i + 1);
      while (used.has(id)) id = `${id}-${i + 1}`;
      used.add(id);
      const point = { knowledge_id: id, title: v("title") };
      if (v("start")) point.start_time = v("start");
      if (v("end")) point.end_time = v("end");
      if (v("quote")) point.quote = v("quote");
      if (v("description")) point.description = v("description");
      points.push(point); rows.push(li);
    });
    return { points, rows, problems };
  }

  // Lines typed into the text box become editor rows (on "Add these points" and on Submit).
  function importText() {
    const box = document.getElementById("knowledge_points");
    const { points, problems } = parseText(box.value);
    if (problems.length) {
      return problems.map((p) => ({ input: box, text: `Knowledge points text${p.line ? `, line ${p.line}` : ""}: ${p.message}` }));
    }
    const blank = Array.from(document.querySelectorAll("#points li.point")).filter((li) => !Array.from(li.querySelectorAll("input")).some((i) => i.value.trim()));
    blank.forEach((li) => li.remove());
    points.forEach((p) => addPoint(p));
    box.value = "";
    renumber();
    return [];
  }

  // -- the submission and its problems --------------------------------------------------------

  // The line of the n-th entry (0-based) of a JSON list, as the user typed it.
  function entryLine(text, n) {
    let depth = 0, inString = false, line = 1, count = -1;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === "\n") line += 1;
      if (inString) { if (c === "\\") i += 1; else if (c === '"') inString = false; continue; }
      if (c === '"') inString = true;
      else if (c === "[" || c === "{") { depth += 1; if (depth === 2 && ++count === n) return line; }
      else if (c === "]" || c === "}") depth -= 1;
    }
    return null;
  }

  // The line of the n-th cue (0-based) of a WebVTT or SRT text: its timing line.
  function cueLine(text, n) {
    let count = -1;
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) if (lines[i].includes("-->") && ++count === n) return i + 1;
    return null;
  }

  // The line a message quotes ("got 'xx --> yy'"), when it appears once in the text.
  function quotedLine(text, message) {
    const m = message.match(/got '([^']{3,})'/);
    if (!m) return null;
    const lines = text.split("\n").map((l, i) => [l, i + 1]).filter(([l]) => l.includes(m[1]));
    return lines.length === 1 ? lines[0][1] : null;
  }

  function buildBody(form, points) {
    const text = form.transcript.value.replace(/\s+$/, "");
    let transcript = text;
    if (text.trim().startsWith("[")) { try { transcript = JSON.parse(text); } catch (e) { transcript = text; } }
    const output = { formats: form.formats.value.split(","), precision: form.precision.value };
    const body = { video_url: form.video_url.value.trim(), knowledge_points: points, output };
    if (text.trim()) body.transcript = transcript; // none: every point gives its start and end
    const segmentation = {};
    if (!form.snap.checked) segmentation.snapToCues = false;
    if (form.overlap.value !== "merge") segmentation.overlap = form.overlap.value;
    if (Object.keys(segmentation).length) body.segmentation = segmentation;
    return body;
  }

  const SUBFIELD = { start_time: "start", end_time: "end", knowledge_id: "id", title: "title", quote: "quote", description: "description" };
  const INPUT_OF = { start_time: "start", end_time: "end", title: "title", quote: "quote", description: "description" };

  // Internal names in a server message, in the form's words.
  function plainWords(message) {
    return String(message).replace(/^(?:transcript|knowledge_points)\[\d+\]:\s*/, "")
      .replace(/spec\.transcript\.inline/g, "transcript")
      .replace(/spec\.knowledgePoints\[(\d+)\]/g, (_, n) => `knowledge point ${Number(n) + 1}`)
      .replace(/knowledge_points\[(\d+)\]/g, (_, n) => `knowledge point ${Number(n) + 1}`)
      .replace(/knowledgePoints/g, "knowledge points").replace(/spec\.source\.url/g, "video URL")
      .replace(/\bspec\./g, "");
  }

  function pointProblem(m, message, rows) {
    const n = Number(m[1]), sub = m[2];
    const li = rows[n];
    const title = li ? li.querySelector("input[name=title]").value.trim() : "";
    const where = `Knowledge point ${n + 1}${title ? ` “${title}”` : ""}${sub ? `, ${SUBFIELD[sub] || sub}` : ""}`;
    const input = li ? li.querySelector(`input[name=${INPUT_OF[sub] || "title"}]`) : document.getElementById("knowledge_points");
    return { row: li, input, text: `${where}: ${message}` };
  }

  // One server problem ({field, message}) as {input, row, text} in the user's field names.
  function describe(problem, rows, transcriptText) {
    const field = String(problem.field || ""), message = plainWords(problem.message || "");
    const byId = (id) => document.getElementById(id);
    let m = field.match(/^knowledge_points\[(\d+)\](?:\.(\w+))?/);
    if (m) return pointProblem(m, message, rows);
    m = field.match(/^transcript\[(\d+)\]/);
    if (m) {
      const line = transcriptText.trim().startsWith("[") ? entryLine(transcriptText, Number(m[1])) : cueLine(transcriptText, Number(m[1]));
      return { input: byId("transcript"), text: `Transcript${line ? `, line ${line}` : ""} (entry ${Number(m[1]) + 1}): ${message}` };
    }
    if (field === "transcript" && !/\bline \d+/.test(message)) {
      const line = quotedLine(transcriptText, message);
      if (line) return { input: byId("transcript"), text: `Transcript, line ${line}: ${message}` };
    }
    const NAMES = [["video_url", "video_url", "Video URL"], ["transcript", "transcript", "Transcript"], ["knowledge_points", "knowledge_points", "Knowledge points"],
      ["output.formats", "formats", "Formats"], ["output.precision", "precision", "Precision"], ["output", "formats", "Output"], ["segmentation", "snap", "Clip boundaries"]];
    for (const [prefix, id, label] of NAMES) {
      if (field === prefix || field.startsWith(`${prefix}.`) || field.startsWith(`${prefix}[`)) return { input: byId(id), text: `${label}: ${message}` };
    }
    return { input: null, text: field ? `${plainWords(field)}: ${message}` : message };
  }

  function clearProblems(form) {
    form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    form.querySelectorAll(".field-error").forEach((n) => { n.textContent = ""; });
    document.getElementById("submit_error").replaceChildren();
  }

  // Every problem at once: a list at the top, and each next to its field.
  function showProblems(problems) {
    const box = document.getElementById("submit_error");
    box.replaceChildren(el("p", { text: problems.length === 1 ? "One problem:" : `${problems.length} problems:` }),
      el("ul", {}, ...problems.map((p) => el("li", { text: p.text }))));
    for (const p of problems) {
      if (p.input) p.input.setAttribute("aria-invalid", "true");
      const slot = p.row ? p.row.querySelector(".field-error") : p.input && document.getElementById(`${p.input.id}_error`);
      if (slot) slot.textContent = slot.textContent ? `${slot.textContent}\n${p.text}` : p.text;
    }
    const first = problems.find((p) => p.input);
    if (first) first.input.focus();
  }

  async function submit(form) {
    clearProblems(form);
    const problems = importText();
    if (!form.video_url.value.trim()) problems.push({ input: form.video_url, text: "Video URL: give the video's URL (or a path on this machine)" });
    const { points, rows, problems: pointProblems } = readPoints();
    problems.push(...pointProblems);
    if (problems.length) { showProblems(problems); return; }
    const body = buildBody(form, points);
    const button = document.getElementById("submit_button");
    button.disabled = true;
    try {
      const doc = await VJ.api("POST", "/process", body);
      window.location.href = `/console/jobs/${doc.job_id}`;
    } catch (err) {
      const p = err.problem;
      const list = p && Array.isArray(p.errors) && p.errors.length ? p.errors : [{ field: "", message: err.message }];
      showProblems(list.map((x) => describe(x, rows, form.transcript.value)));
    } finally { button.disabled = false; }
  }

  function formPage() {
    const form = document.getElementById("submit");
    document.getElementById("add_point").addEventListener("click", () => addPoint().querySelector("input").focus());
    document.getElementById("import_points").addEventListener("click", () => {
      clearProblems(form);
      const problems = importText();
      if (problems.length) showProblems(problems);
    });
    document.getElementById("transcript_file").addEventListener("change", async (e) => {
      const file = e.target.files[0];
      if (file) form.transcript.value = await file.text();
    });
    form.addEventListener("submit", (e) => { e.preventDefault(); submit(form); });
    renumber();
  }

  // -- the job list -------------------------------------------------------------------------------

  function localTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return el("span", { text: iso || "" });
    return el("time", { datetime: iso, title: `${iso} (UTC)`, text: d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) });
  }

  function jobName(job) { return job.title || job.job_id; }

  function actionsFor(job) {
    const out = [];
    const name = jobName(job);
    if (!FINISHED.has(job.status)) out.push(el("button", { type: "button", class: "secondary", "data-action": "cancel", "aria-label": `Cancel ${name}`, text: "Cancel" }));
    if (FINISHED.has(job.status)) out.push(el("button", { type: "button", class: "secondary", "data-action": "delete", "aria-label": `Delete ${name}`, text: "Delete" }));
    if (job.status === "completed" || job.segments_done > 0) out.push(el("button", { type: "button", class: "secondary", "data-action": "files", "aria-expanded": "false", "aria-label": `Files of ${name}`, text: "Files" }));
    return out;
  }

  function jobRow(job) {
    const row = el("tr", { "data-job": job.job_id },
      el("td", { class: "c-job" }, el("a", { href: `/console/jobs/${encodeURIComponent(job.job_id)}`, class: "title" }), el("div", { class: "muted id" }), el("div", { class: "muted by" })),
      el("td", { class: "c-status" }, el("span", { class: "status" }), el("div", { class: "muted stage" })),
      el("td", { class: "c-progress" }, el("progress", { max: "100", value: "0" }), el("span", { class: "muted pct" })),
      el("td", { class: "c-created muted" }, localTime(job.created_at)),
      el("td", { class: "c-actions" }));
    updateRow(row, job);
    return row;
  }

  function updateRow(row, job) {
    const name = jobName(job);
    const link = row.querySelector("a.title");
    link.textContent = name;
    row.querySelector(".id").textContent = job.title ? job.job_id : "";
    row.querySelector(".by").textContent = job.submitted_by ? `by ${job.submitted_by}` : "";
    const status = row.querySelector(".status");
    status.textContent = job.status; status.className = `status ${job.status}`;
    // what it is doing, or (queued) what it waits for, as the server words it
    row.querySelector(".stage").textContent = job.status === "processing" ? (job.stage || "") : job.status === "queued" ? (job.message || "") : "";
    const bar = row.querySelector("progress");
    bar.value = job.percent; bar.setAttribute("value", String(job.percent));
    bar.setAttribute("aria-label", `progress of ${name}`);
    row.querySelector(".pct").textContent = ` ${job.percent}%${job.segments_total ? ` · ${job.segments_done}/${job.segments_total} clips` : ""}`;
    const key = `${job.status}:${job.segments_done > 0}`;
    if (row.dataset.key !== key) { row.dataset.key = key; row.querySelector(".c-actions").replaceChildren(...actionsFor(job)); }
    row.dataset.created = job.created_at;
    row.dataset.status = job.status;
  }

  return { formPage, jobRow, updateRow, parseText, buildBody, describe, plainWords, entryLine, seconds, FINISHED, API };
})();

// The live list: one stream for every job the caller may see (snapshot, then changes).
const JOBLIST = (() => {
  const { jobRow, updateRow, FINISHED, API } = JOBS;
  const el = (...a) => VJ.el(...a);
  const state = { filter: "", cursor: null, ctl: null, retry: 0 };
  const tbody = () => document.querySelector("#jobs tbody");
  const rowOf = (id) => tbody().querySelector(`tr[data-job="${CSS.escape(id)}"]`);
  const matches = (job) => !state.filter || job.status === state.filter;
  const live = (text) => { document.getElementById("live").textContent = text; };

  function listProblem(text) {
    const box = document.getElementById("list_error");
    box.textContent = text; box.hidden = !text;
  }

  function settle() {
    document.getElementById("no_jobs").hidden = tbody().querySelector("tr[data-job]") !== null;
    document.getElementById("more").hidden = !state.cursor;
  }

  function removeRow(id) {
    const row = rowOf(id);
    if (!row) return;
    const files = row.nextElementSibling;
    if (files && files.classList.contains("files-row")) files.remove();
    row.remove();
  }

  // A job not shown yet: new ones on top, others at their place among the loaded rows.
  function place(job) {
    if (job.new) { tbody().prepend(jobRow(job)); return; }
    const rows = Array.from(tbody().querySelectorAll("tr[data-job]"));
    const after = rows.find((r) => (r.dataset.created || "") < job.created_at);
    if (after) after.before(jobRow(job)); else if (!state.cursor) tbody().append(jobRow(job));
  }

  function onEvent(type, data) {
    if (type === "snapshot") {
      tbody().replaceChildren(...data.jobs.map(jobRow));
      state.cursor = data.next_cursor;
      live("live"); listProblem("");
    } else if (type === "job") {
      const row = rowOf(data.job_id);
      if (row && matches(data)) updateRow(row, data);
      else if (row) removeRow(data.job_id);
      else if (matches(data)) place(data);
    } else if (type === "deleted") {
      removeRow(data.job_id);
    } else if (type === "problem") {
      live(`not live: ${data.detail}`);
    }
    settle();
  }

  function dispatch(chunk) {
    let type = "message";
    const data = [];
    for (const line of chunk.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (data.length) onEvent(type, JSON.parse(data.join("\n")));
  }

  // The stream, read with fetch (EventSource cannot send the Authorization header).
  async function readStream(ctl) {
    const q = new URLSearchParams({ limit: "50" });
    if (state.filter) q.set("status", state.filter);
    const headers = { Accept: "text/event-stream" };
    if (VJ.credential()) headers.Authorization = `Bearer ${VJ.credential()}`;
    const r = await fetch(`${API}/events?${q}`, { headers, signal: ctl.signal, cache: "no-store" });
    if (!r.ok) {
      const doc = await r.json().catch(() => null);
      const err = new Error((doc && (doc.detail || doc.title)) || r.statusText);
      err.status = r.status;
      throw err;
    }
    state.retry = 0;
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) { dispatch(buf.slice(0, cut)); buf = buf.slice(cut + 2); }
    }
  }

  function needKey(err) {
    const box = document.getElementById("jobs_problem");
    document.getElementById("jobs_problem_text").textContent = VJ.credential()
      ? `This API key or token was refused (${err.message}). Enter another one to see your jobs.`
      : `This gateway needs an API key or a token (${err.message}). Enter it to see your jobs.`;
    box.hidden = false;
    document.getElementById("jobs").hidden = true;
    live("");
  }

  async function follow() {
    if (state.ctl) state.ctl.abort();
    const ctl = new AbortController();
    state.ctl = ctl;
    for (;;) {
      try {
        await readStream(ctl);
        live("reconnecting…");
      } catch (err) {
        if (ctl.signal.aborted) return;
        if (err.status === 401) { needKey(err); return; }
        live("reconnecting…");
        if (err.status) listProblem(`The job list is not available: ${err.message}`);
      }
      if (ctl.signal.aborted) return;
      state.retry = Math.min(state.retry + 1, 5);
      await new Promise((ok) => window.setTimeout(ok, 500 * 2 ** state.retry));
      if (ctl.signal.aborted) return;
    }
  }

  async function more() {
    const q = new URLSearchParams({ limit: "50", cursor: state.cursor });
    if (state.filter) q.set("status", state.filter);
    try {
      const doc = await VJ.api("GET", `/jobs?${q}`);
      for (const job of doc.jobs) if (!rowOf(job.job_id)) tbody().append(jobRow(job));
      state.cursor = doc.next_cursor;
    } catch (err) { listProblem(`More jobs could not be loaded: ${err.message}`); }
    settle();
  }

  function fileLinks(res) {
    const items = [];
    if (res.manifest_url) items.push(el("li", {}, el("a", { href: res.manifest_url, text: "manifest.json" }), " (every clip, its times and notes)"));
    for (const seg of res.segments) {
      const links = seg.files.filter((f) => f.kind === "video" || f.kind === "subtitles")
        .map((f) => el("a", { href: f.url, download: f.name, text: f.kind === "subtitles" ? `subtitles (${f.format})` : f.format }));
      items.push(el("li", {}, `${seg.index}. ${seg.title}: `, ...links.flatMap((a, i) => (i ? [" · ", a] : [a]))));
    }
    return items.length ? el("ul", { class: "files" }, ...items) : el("p", { class: "muted", text: "No files yet." });
  }

  async function toggleFiles(row, button) {
    const open = row.nextElementSibling && row.nextElementSibling.classList.contains("files-row");
    if (open) { row.nextElementSibling.remove(); button.setAttribute("aria-expanded", "false"); return; }
    const cell = el("td", { colspan: "5" }, el("span", { class: "muted", text: "Loading the files…" }));
    row.after(el("tr", { class: "files-row" }, cell));
    button.setAttribute("aria-expanded", "true");
    try { cell.replaceChildren(fileLinks(await VJ.api("GET", `/results/${encodeURIComponent(row.dataset.job)}`))); }
    catch (err) { cell.replaceChildren(el("span", { class: "error", text: `The files could not be listed: ${err.message}` })); }
  }

  async function act(button) {
    const row = button.closest("tr[data-job]"), id = row.dataset.job;
    const name = row.querySelector("a.title").textContent;
    const action = button.dataset.action;
    if (action === "files") { await toggleFiles(row, button); return; }
    const question = action === "cancel"
      ? `Cancel “${name}”? The clips it has published are kept; Retry runs it again.`
      : `Delete “${name}”? It leaves the list and its history; its published files stay where they are.`;
    if (!window.confirm(question)) return;
    listProblem("");
    try {
      if (action === "cancel") updateRow(row, await VJ.api("POST", `/jobs/${encodeURIComponent(id)}/cancel`));
      else { await VJ.api("DELETE", `/jobs/${encodeURIComponent(id)}`); removeRow(id); settle(); }
    } catch (err) { listProblem(`${action === "cancel" ? "Cancel" : "Delete"} of “${name}” failed: ${err.message}`); }
  }

  function listPage() {
    document.getElementById("more").addEventListener("click", more);
    document.getElementById("status_filter").addEventListener("change", (e) => {
      state.filter = e.target.value; state.cursor = null;
      tbody().replaceChildren(); live("loading…");
      follow();
    });
    tbody().addEventListener("click", (e) => {
      const button = e.target.closest("button[data-action]");
      if (button) act(button);
    });
    document.getElementById("key_form").addEventListener("submit", (e) => {
      e.preventDefault();
      const v = document.getElementById("key_input").value.trim();
      if (v) VJ.setCredential(v);
      window.location.reload();
    });
    follow();
  }

  function indexPage() { VJ.credentialBox(); JOBS.formPage(); listPage(); }

  return { indexPage, onEvent, FINISHED };
})();
