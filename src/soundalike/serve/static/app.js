// soundalike page: the artist map (map.js), search, an artist's tracks with audio previews,
// neighbours with per-signal bars and musical reasons, clip query. Vanilla JS on the JSON API;
// no CDN, no build step.
"use strict";
const $ = (sel) => document.querySelector(sel);
const state = { map: null, selected: null, names: new Map() };

function cookie(name) {
  const hit = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return hit ? decodeURIComponent(hit.slice(name.length + 1)) : null;
}

async function api(path, opts = {}) {
  // A write from a logged-in page carries the CSRF token of its session (docs/security.md).
  const csrf = cookie("soundalike_csrf");
  if (csrf && opts.method && opts.method !== "GET") opts.headers = { ...(opts.headers || {}), "X-CSRF-Token": csrf };
  const r = await fetch(path, opts);
  if (r.status === 401 && !path.startsWith("/api/health")) {
    location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  }
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

function weightsLabel(kind) {
  return kind === "none" ? "signal processing, no weights" : `${kind} weights`;
}

function fmtDuration(s) {
  if (s == null) return "";
  const m = Math.floor(s / 60), r = Math.round(s % 60);
  return `${m}:${String(r).padStart(2, "0")}`;
}

// --- map ------------------------------------------------------------------------------------
async function loadMap() {
  const doc = await api("/api/map");
  $("#map-method").textContent = `${doc.points.length} artists · ${doc.backend} (${weightsLabel(doc.weights_kind)}) · ${doc.method}`;
  for (const p of doc.points) state.names.set(p.artist_id, p.name);
  state.map.setPoints(doc.points);
  $("#legend").replaceChildren(...state.map.legend.map((g) => {
    const s = el("span", { class: "genre", title: g.title || `${g.label}: ${g.count} artists` }, `${g.label} (${g.count})`);
    s.style.setProperty("--c", g.colour);
    return s;
  }));
}

// --- search ---------------------------------------------------------------------------------
async function search(q) {
  const doc = await api(`/api/artists?limit=200&q=${encodeURIComponent(q)}`);
  const ul = $("#results");
  $("#results-count").textContent = doc.total > doc.artists.length ? `(${doc.artists.length} of ${doc.total})` : `(${doc.total})`;
  ul.replaceChildren(...doc.artists.map((a) => {
    const li = el("li", { "data-artist-id": a.artist_id, class: "artist-hit" });
    li.append(el("span", { class: "name" }, a.name), el("span", { class: "muted" }, ` ${a.genre || "–"} · ${a.n_tracks}`));
    li.addEventListener("click", () => selectArtist(a.artist_id, { centre: true }));
    return li;
  }));
  if (!doc.artists.length) ul.replaceChildren(el("li", {}, "No artist matches."));
}

// --- artist: tracks with previews -------------------------------------------------------------
function playTrack(t, button) {
  const player = $("#player");
  document.querySelectorAll("#tracks li.playing").forEach((li) => li.classList.remove("playing"));
  button.closest("li").classList.add("playing");
  player.dataset.trackId = t.track_id;
  player.src = `/api/tracks/${encodeURIComponent(t.track_id)}/audio`;
  // A preview starts a third of the way in (seeking uses HTTP range requests).
  player.addEventListener("loadedmetadata", () => {
    if (player.duration > 60 && isFinite(player.duration)) player.currentTime = player.duration / 3;
  }, { once: true });
  player.play().catch((err) => { $("#artist-meta").textContent = `Cannot play: ${err.message}`; });
}

function trackItem(t) {
  const li = el("li", { class: "track", "data-track-id": t.track_id });
  const b = el("button", { type: "button", class: "play", "aria-label": `Play ${t.title || "track"}` }, "▶");
  b.addEventListener("click", () => playTrack(t, b));
  li.append(b, el("span", { class: "title", title: t.title || t.track_id }, t.title || t.track_id.slice(0, 12)),
    el("span", { class: "muted" }, ` ${fmtDuration(t.duration_s)}${t.album ? " · " + t.album : ""}`));
  return li;
}

async function showArtist(id) {
  const doc = await api(`/api/artists/${id}`);
  $("#artist-panel").hidden = false;
  $("#artist-title").textContent = doc.name;
  $("#artist-meta").textContent = `${doc.genre || "no genre"} · ${doc.n_tracks} track${doc.n_tracks === 1 ? "" : "s"}`;
  $("#tracks").replaceChildren(...doc.tracks.map(trackItem));
}

// --- neighbours with reasons --------------------------------------------------------------------
function bar(label, value, i) {
  const row = el("div", { class: "bar" });
  row.append(el("span", { class: "label" }, label));
  const track = el("span", { class: "track" }), fill = el("span", { class: `fill s${i}` });
  fill.style.width = `${Math.round(100 * (value ?? 0))}%`;
  track.append(fill); row.append(track, el("span", {}, value == null ? "–" : value.toFixed(3)));
  return row;
}

function reasonList(reasons) {
  const ul = el("ul", { class: "reasons" });
  for (const r of reasons || []) ul.append(el("li", { class: `reason ${r.kind}`, "data-kind": r.kind }, r.text));
  return ul;
}

function neighbourItem(n) {
  const li = el("li", { class: "nb", "data-artist-id": n.artist_id });
  const head = el("div", { class: "nb-head" });
  head.append(el("span", { class: "name", title: n.artist }, n.artist), el("span", { class: "score" }, n.score.toFixed(3)));
  li.append(head);
  Object.entries(n.signal_scores || { audio: n.score }).forEach(([s, v], i) => li.append(bar(s, v, i)));
  if (n.reasons && n.reasons.length) li.append(reasonList(n.reasons));
  if (n.raw_cosine != null) li.append(el("div", { class: "muted" }, `raw cosine ${n.raw_cosine.toFixed(3)} · ${n.genre || "no genre"}`));
  li.addEventListener("click", () => selectArtist(n.artist_id, { centre: true }));
  return li;
}

async function showNeighbours(id, name) {
  const signals = $("#signals").value;
  $("#neighbours-title").textContent = `Neighbours of ${name}`;
  $("#neighbours-meta").textContent = "loading…";
  try {
    const doc = await api(`/api/artists/${id}/similar?k=10&signals=${encodeURIComponent(signals)}`);
    $("#neighbours-meta").textContent = `${doc.backend} (${weightsLabel(doc.weights_kind)}) · calibration ${doc.calibration} · signals ${doc.signals_used.join(", ")} · score = calibrated, in [0, 1]; reasons from measured tempo, key, loudness, estimates and musicnn tags`;
    $("#neighbours").replaceChildren(...doc.neighbours.map(neighbourItem));
    if (state.selected === id) state.map.select(id, doc.neighbours.map((n) => n.artist_id));
  } catch (err) {
    $("#neighbours-meta").textContent = err.message;
    $("#neighbours").replaceChildren();
  }
}

async function selectArtist(id, { centre = false } = {}) {
  state.selected = id;
  const i = state.map.select(id, []);
  // In a large library, bring the artist into view close enough for its neighbours' labels.
  if (centre && i !== undefined && state.map.n > 300) state.map.centreOn(i, state.map.k0 * 4);
  const name = state.names.get(id) || `artist ${id}`;
  document.body.dataset.selected = String(id);
  await Promise.all([showArtist(id).catch((err) => { $("#artist-meta").textContent = err.message; }), showNeighbours(id, name)]);
}

// --- clip query -----------------------------------------------------------------------------
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
  state.map = new ArtistMap($("#map"), $("#tooltip"), { onSelect: (id) => selectArtist(id) });
  window.soundalikeMap = state.map;
  $("#zoom-reset").addEventListener("click", () => state.map.reset());
  const health = await api("/api/health");
  $("#library-info").textContent = `${health.n_artists} artists · ${health.n_tracks} tracks · ${health.default_backend || "no backend"}`;
  const sel = $("#signals");
  const hybrid = health.signals.filter((s) => s !== "audio");
  if (hybrid.includes("descriptors") && health.backends.some((b) => b.name === "descriptors")) {
    sel.append(el("option", { value: "audio,descriptors" }, "audio + descriptors"));
  }
  if (hybrid.includes("tags")) sel.append(el("option", { value: "audio,tags" }, "audio + tags"));
  sel.addEventListener("change", () => { if (state.selected != null) showNeighbours(state.selected, state.names.get(state.selected)); });
  let timer = null;
  $("#search").addEventListener("input", (e) => { clearTimeout(timer); timer = setTimeout(() => search(e.target.value), 150); });
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); search($("#search").value); });
  $("#query-form").addEventListener("submit", queryClip);
  await Promise.all([loadMap(), search("")]);
  document.body.dataset.ready = "1";
}

init().catch((err) => { $("#library-info").textContent = err.message; document.body.dataset.ready = "error"; });
