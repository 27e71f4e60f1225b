// soundalike page: artist map (SVG, zoom/pan/hover), search, neighbours with per-signal bars, clip query.
// Vanilla JS on the JSON API; no CDN, no build step.
"use strict";
const $ = (sel) => document.querySelector(sel);
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#3a6fd8", "#e08a2b", "#37a05a", "#c94f6d", "#9b51c9", "#2aa6a6", "#8a6d3b", "#d64fb0", "#6b7f2a", "#555f7a"];
const W = 1000, H = 700, PAD = 50;
const state = { points: [], byId: new Map(), genreColour: new Map(), view: { x: 0, y: 0, w: W, h: H }, selected: null };

async function api(path, opts) {
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error ? `${body.error.type}: ${body.error.message}` : `HTTP ${r.status}`);
  return body;
}

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function colourOf(genre) { return state.genreColour.get(genre) || "#9aa3b5"; }

function setView(v) {
  state.view = v;
  $("#map").setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
}

async function loadMap() {
  const doc = await api("/api/map");
  $("#map-method").textContent = `${doc.backend} (${doc.weights_kind} weights) · ${doc.method}`;
  doc.genres.forEach((g, i) => state.genreColour.set(g, PALETTE[i % PALETTE.length]));
  const svg = $("#map");
  svg.replaceChildren();
  const labels = doc.points.length <= 60;
  for (const p of doc.points) {
    const cx = PAD + p.x * (W - 2 * PAD - 100), cy = PAD + (1 - p.y) * (H - 2 * PAD);
    const c = document.createElementNS(SVG_NS, "circle");
    c.setAttribute("cx", cx); c.setAttribute("cy", cy);
    c.setAttribute("r", Math.max(5, Math.min(14, 4 + 2 * Math.sqrt(p.n_tracks))));
    c.setAttribute("fill", colourOf(p.genre));
    c.setAttribute("data-artist-id", p.artist_id);
    c.classList.add("artist-dot");
    c.addEventListener("mouseenter", (e) => showTip(e, `${p.name} · ${p.genre || "no genre"} · ${p.n_tracks} tracks`));
    c.addEventListener("mousemove", moveTip);
    c.addEventListener("mouseleave", hideTip);
    c.addEventListener("click", () => selectArtist(p.artist_id));
    svg.appendChild(c);
    if (labels) {
      const t = document.createElementNS(SVG_NS, "text");
      t.setAttribute("x", cx + 10); t.setAttribute("y", cy + 4); t.textContent = p.name;
      svg.appendChild(t);
    }
    state.byId.set(p.artist_id, { ...p, el: c });
  }
  state.points = doc.points;
  const legend = $("#legend");
  legend.replaceChildren(...doc.genres.map((g) => { const s = el("span", {}, g); s.style.setProperty("--c", colourOf(g)); return s; }));
}

function showTip(e, text) { const t = $("#tooltip"); t.textContent = text; t.hidden = false; moveTip(e); }
function moveTip(e) {
  const t = $("#tooltip"), box = $("#map-panel").getBoundingClientRect();
  t.style.left = `${e.clientX - box.left + 12}px`; t.style.top = `${e.clientY - box.top + 12}px`;
}
function hideTip() { $("#tooltip").hidden = true; }

function setupZoom() {
  const svg = $("#map");
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = svg.getBoundingClientRect(), v = state.view;
    const fx = (e.clientX - r.left) / r.width, fy = (e.clientY - r.top) / r.height;
    const k = e.deltaY < 0 ? 0.8 : 1.25;
    const w = Math.min(W * 4, Math.max(W / 20, v.w * k)), h = w * H / W;
    setView({ x: v.x + (v.w - w) * fx, y: v.y + (v.h - h) * fy, w, h });
  }, { passive: false });
  let drag = null;
  svg.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, v: { ...state.view } }; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    const dx = (e.clientX - drag.x) * drag.v.w / r.width, dy = (e.clientY - drag.y) * drag.v.h / r.height;
    setView({ ...drag.v, x: drag.v.x - dx, y: drag.v.y - dy });
  });
  $("#zoom-reset").addEventListener("click", () => setView({ x: 0, y: 0, w: W, h: H }));
}

async function search(q) {
  const doc = await api(`/api/artists?limit=200&q=${encodeURIComponent(q)}`);
  const ul = $("#results");
  ul.replaceChildren(...doc.artists.map((a) => {
    const li = el("li", { "data-artist-id": a.artist_id, class: "artist-hit" }, `${a.name} (${a.genre || "–"}, ${a.n_tracks})`);
    li.addEventListener("click", () => selectArtist(a.artist_id));
    return li;
  }));
  if (!doc.artists.length) ul.replaceChildren(el("li", {}, "No artist matches."));
}

function bar(label, value, i) {
  const row = el("div", { class: "bar" });
  row.append(el("span", { class: "label" }, label));
  const track = el("span", { class: "track" }), fill = el("span", { class: `fill s${i}` });
  fill.style.width = `${Math.round(100 * (value ?? 0))}%`;
  track.append(fill); row.append(track, el("span", {}, value == null ? "–" : value.toFixed(3)));
  return row;
}

function neighbourItem(n) {
  const li = el("li", { class: "nb", "data-artist-id": n.artist_id });
  const head = el("div");
  head.append(el("span", { class: "name" }, n.artist), el("span", { class: "score" }, n.score.toFixed(3)));
  li.append(head);
  Object.entries(n.signal_scores || { audio: n.score }).forEach(([s, v], i) => li.append(bar(s, v, i)));
  if (n.raw_cosine != null) li.append(el("div", { class: "muted" }, `raw cosine ${n.raw_cosine.toFixed(3)} · ${n.genre || "no genre"}`));
  li.addEventListener("click", () => selectArtist(n.artist_id));
  return li;
}

async function selectArtist(id) {
  state.selected = id;
  document.querySelectorAll("#map circle").forEach((c) => c.classList.remove("selected", "neighbour"));
  const p = state.byId.get(id);
  if (p) p.el.classList.add("selected");
  const signals = $("#signals").value;
  $("#neighbours-title").textContent = `Neighbours of ${p ? p.name : "artist " + id}`;
  $("#neighbours-meta").textContent = "loading…";
  try {
    const doc = await api(`/api/artists/${id}/similar?k=10&signals=${encodeURIComponent(signals)}`);
    $("#neighbours-meta").textContent = `${doc.backend} (${doc.weights_kind} weights) · calibration ${doc.calibration} · signals ${doc.signals_used.join(", ")} · score = percentile among all artist pairs`;
    $("#neighbours").replaceChildren(...doc.neighbours.map(neighbourItem));
    for (const n of doc.neighbours) { const q = state.byId.get(n.artist_id); if (q) q.el.classList.add("neighbour"); }
  } catch (err) {
    $("#neighbours-meta").textContent = err.message;
    $("#neighbours").replaceChildren();
  }
}

async function queryClip(e) {
  e.preventDefault();
  const f = $("#clip").files[0];
  if (!f) { $("#query-status").textContent = "Choose an audio file first."; return; }
  const form = new FormData(); form.append("file", f);
  $("#query-status").textContent = "analysing…";
  try {
    const doc = await api("/api/query?k=5", { method: "POST", body: form });
    const genre = doc.genre ? ` · genre ${doc.genre[0].genre} (${doc.genre[0].probability})` : "";
    $("#query-status").textContent = `${doc.backend} · ${doc.duration_s.toFixed(1)} s, ${doc.n_windows} window(s)${genre}`;
    $("#query-artists").replaceChildren(...doc.artists.map(neighbourItem));
    $("#query-tracks").replaceChildren(...doc.tracks.map((t) => el("li", {}, `${t.title || t.track_id.slice(0, 8)} — ${t.artist} (${t.score.toFixed(3)})`)));
  } catch (err) { $("#query-status").textContent = err.message; }
}

async function init() {
  setupZoom();
  const health = await api("/api/health");
  $("#library-info").textContent = `${health.n_artists} artists · ${health.n_tracks} tracks · ${health.default_backend || "no backend"}`;
  const sel = $("#signals");
  const hybrid = health.signals.filter((s) => s !== "audio");
  if (hybrid.includes("descriptors") && health.backends.some((b) => b.name === "descriptors")) {
    sel.append(el("option", { value: "audio,descriptors" }, "audio + descriptors"));
  }
  if (hybrid.includes("tags")) sel.append(el("option", { value: "audio,tags" }, "audio + tags"));
  sel.addEventListener("change", () => { if (state.selected != null) selectArtist(state.selected); });
  let timer = null;
  $("#search").addEventListener("input", (e) => { clearTimeout(timer); timer = setTimeout(() => search(e.target.value), 150); });
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("#search").value); });
  $("#query-form").addEventListener("submit", queryClip);
  await Promise.all([loadMap(), search("")]);
  document.body.dataset.ready = "1";
}

init().catch((err) => { $("#library-info").textContent = err.message; document.body.dataset.ready = "error"; });
