// The lecture on one timeline: transcript cues, knowledge points and clips over the video.
// Shared by the plan preview (plan.js: editable) and the job page (job.js: live progress); loaded
// after console.js, whose helpers it passes on.
"use strict";
const TL = (() => {
  // Elements, the credential (sessionStorage, this tab only) and API calls: the console's (console.js).
  const { API, el, api, credential, credentialBox } = VJ;
  const FINISHED = new Set(["completed", "failed", "cancelled"]);

  function problemText(err) {
    const p = err.problem;
    return p && p.errors ? p.errors.map((x) => `${x.field}: ${x.message}`).join("\n") : err.message;
  }

  function fmtTime(s) {
    const t = Math.max(0, Number(s));
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = (t % 60).toFixed(1).padStart(4, "0");
    return (h ? `${h}:${String(m).padStart(2, "0")}` : `${m}`) + `:${sec}`;
  }

  // The timeline's length: the source when known, else the furthest cue or clip.
  function span(doc, clips) {
    const ends = [doc.source_duration || 0, doc.transcript_end || 0, ...clips.map((c) => c.end)];
    return Math.max(1, ...ends);
  }

  function pct(t, total) { return `${(100 * t / total).toFixed(4)}%`; }

  function ruler(total) {
    const box = el("div", { class: "tl-ruler", "aria-hidden": "true" });
    const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    const most = window.innerWidth < 600 ? 5 : 12;
    const step = steps.find((s) => total / s <= most) || 3600;
    for (let t = 0; t <= total + 1e-9; t += step) {
      box.append(el("span", { class: "tl-tick", style: `left:${pct(t, total)}`, text: fmtTime(t).replace(/\.0$/, "") }));
    }
    return box;
  }

  function cueRow(doc, total, onCue) {
    const row = el("div", { class: "tl-row tl-cues", role: "group", "aria-label": "transcript cues" });
    for (const cue of doc.cues) {
      const b = el("button", {
        class: "tl-cue", type: "button", "data-cue": String(cue.index),
        style: `left:${pct(cue.start, total)};width:${pct(Math.max(0, cue.end - cue.start), total)}`,
        title: `${fmtTime(cue.start)} ${cue.text}`, "aria-label": `cue ${cue.index} at ${fmtTime(cue.start)}: ${cue.text}`,
      });
      b.addEventListener("click", () => onCue && onCue(cue));
      row.append(b);
    }
    return row;
  }

  const FATE_WORDS = { kept: "kept", snapped: "snapped", clamped: "clamped", trimmed: "trimmed", merged: "merged", dropped: "dropped" };

  function pointRow(doc, clips, total) {
    const row = el("div", { class: "tl-row tl-points", role: "list", "aria-label": "knowledge points" });
    for (const p of doc.points) {
      const clip = clips.find((c) => c.index === p.clip);
      const at = p.start !== null ? p.start : (clip ? clip.start : null);
      if (at === null) continue;
      row.append(el("span", {
        class: `tl-point fate-${p.fate}`, role: "listitem", "data-point": p.field, style: `left:${pct(at, total)}`,
        title: `${p.title || p.knowledge_id}: ${FATE_WORDS[p.fate]}${p.notes.length ? "\n" + p.notes.join("\n") : ""}`,
        text: p.fate === "kept" ? "◆" : p.fate[0].toUpperCase(),
      }));
    }
    return row;
  }

  // A band per clip; `state(clip)` adds a class (done, running, queued) and a label.
  function clipRow(clips, total, opts) {
    const row = el("div", { class: "tl-row tl-clips", role: "group", "aria-label": "clips" });
    for (const c of clips) {
      const st = opts.state ? opts.state(c) : null;
      const conf = c.confidence === null || c.confidence === undefined ? null : c.confidence;
      const band = el("div", {
        class: `tl-band${st ? " " + st : ""}`, "data-clip": String(c.index),
        style: `left:${pct(c.start, total)};width:${pct(c.end - c.start, total)}`,
        title: `${c.index}. ${c.title}  ${fmtTime(c.start)} – ${fmtTime(c.end)}${conf !== null ? `  confidence ${conf.toFixed(2)}` : ""}`,
      }, el("span", { class: "tl-title", text: `${c.index}. ${c.title}` }));
      if (conf !== null) band.append(el("span", { class: "tl-conf", "data-confidence": conf.toFixed(2), text: conf.toFixed(2) }));
      if (st) band.append(el("span", { class: "tl-state", text: st }));
      row.append(band);
    }
    if (opts.onHandle) addHandles(row, clips, total, opts.onHandle);
    return row;
  }

  // Boundary handles: one at each clip's start and end (two touching clips share one).
  function addHandles(row, clips, total, onHandle) {
    const edges = [];
    clips.forEach((c, i) => {
      const last = edges[edges.length - 1];
      if (last && last.left === i - 1 && Math.abs(last.t - c.start) < 1e-6) last.right = i;
      else edges.push({ t: c.start, left: null, right: i });
      edges.push({ t: c.end, left: i, right: null });
    });
    for (const e of edges) {
      const h = el("div", {
        class: "tl-handle", tabindex: "0", role: "slider", "aria-label": `boundary at ${fmtTime(e.t)}`,
        "aria-valuenow": String(e.t), "aria-valuemin": "0", "aria-valuemax": String(total),
        "data-edge": `${e.left === null ? "" : clips[e.left].index}|${e.right === null ? "" : clips[e.right].index}`,
        style: `left:${pct(e.t, total)}`,
      });
      h.addEventListener("pointerdown", (ev) => dragHandle(ev, h, row, total, (t) => onHandle(e, t)));
      h.addEventListener("keydown", (ev) => {
        if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") { ev.preventDefault(); onHandle(e, null, ev.key === "ArrowLeft" ? -1 : 1); }
      });
      row.append(h);
    }
  }

  function dragHandle(ev, handle, row, total, done) {
    ev.preventDefault();
    const box = row.getBoundingClientRect();
    const at = (x) => Math.min(total, Math.max(0, (x - box.left) / box.width * total));
    const move = (m) => { handle.style.left = pct(at(m.clientX), total); };
    const up = (u) => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", up);
      done(at(u.clientX));
    };
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", up);
  }

  // The cue edge (a start or an end) nearest to t; or the next one left/right of `from`.
  function cueEdges(doc) {
    const set = new Set([0]);
    for (const c of doc.cues) { set.add(c.start); set.add(c.end); }
    return [...set].sort((a, b) => a - b);
  }
  function nearestEdge(edges, t) {
    return edges.reduce((best, e) => (Math.abs(e - t) < Math.abs(best - t) ? e : best), edges[0]);
  }
  function stepEdge(edges, from, dir) {
    const next = dir < 0 ? [...edges].reverse().find((e) => e < from - 1e-6) : edges.find((e) => e > from + 1e-6);
    return next === undefined ? from : next;
  }

  // The whole timeline into `box`: ruler, cues, points, clips.
  function draw(box, doc, clips, opts) {
    const total = span(doc, clips);
    box.replaceChildren(
      ruler(total),
      el("div", { class: "tl-label", text: "transcript" }), cueRow(doc, total, opts.onCue),
      el("div", { class: "tl-label", text: "knowledge points" }), pointRow(doc, clips, total),
      el("div", { class: "tl-label", text: "clips" }), clipRow(clips, total, opts),
    );
    if (doc.cues_total > doc.cues.length) box.append(el("p", { class: "muted", text: `first ${doc.cues.length} of ${doc.cues_total} cues shown` }));
  }

  // The points' fates as a table: merged, snapped, trimmed, dropped, and why.
  function pointsTable(doc, onDrop) {
    const rows = doc.points.map((p) => {
      const drop = onDrop && p.fate !== "dropped" && p.clip !== null ? el("button", { class: "secondary drop", type: "button", text: "Drop", "data-point": p.field }) : null;
      if (drop) drop.addEventListener("click", () => onDrop(p));
      return el("tr", { "data-point": p.field },
        el("td", { text: p.title || p.knowledge_id || p.field }),
        el("td", { class: "muted", text: p.start !== null ? fmtTime(p.start) + (p.end !== null ? ` – ${fmtTime(p.end)}` : "") : (p.anchor || "") }),
        el("td", {}, el("span", { class: `fate fate-${p.fate}`, text: p.fate })),
        el("td", { text: p.clip !== null ? String(p.clip) : "–" }),
        el("td", { class: "muted notes", text: p.notes.join("\n") }),
        el("td", {}, drop));
    });
    return el("div", { class: "tl-scroll", tabindex: "0", role: "region", "aria-label": "knowledge points and what happened to them" }, el("table", { class: "tl-points-table" },
      el("thead", {}, el("tr", {}, ...["Point", "As written", "What happened", "Clip", "Why"].map((h) => el("th", { text: h })), el("th", {}, el("span", { class: "tl-sr", text: "Action" })))),
      el("tbody", {}, ...rows)));
  }

  return { API, FINISHED, el, api, problemText, credential, credentialBox, fmtTime, draw, cueEdges, nearestEdge, stepEdge, pointsTable };
})();
