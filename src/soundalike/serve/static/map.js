// soundalike artist map on a 2-D canvas: tens of thousands of points, coloured by genre (the
// palette's colours go to the most common genres, the rest are "other"), labels placed without
// overlap at every zoom level (more appear as you zoom in), hover tooltip from a grid index,
// wheel zoom around the cursor, drag to pan, one redraw per animation frame.
"use strict";

// 12 distinguishable colours (Tableau 10 + 2), then grey for "other" and light grey for "no genre".
const MAP_PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#2f4b7c", "#a05195", "#665191"];
const OTHER_COLOUR = "#8c8c8c", NONE_COLOUR = "#cfd3da";

class ArtistMap {
  constructor(canvas, tooltip, { onSelect } = {}) {
    this.canvas = canvas; this.tooltip = tooltip; this.onSelect = onSelect || (() => {});
    this.ctx = canvas.getContext("2d", { alpha: false });
    this.n = 0; this.view = { k: 1, tx: 0, ty: 0 };
    this.selected = null; this.neighbours = []; this.hover = -1;
    this.stats = { draws: 0, lastDrawMs: 0, firstDrawAt: null, labels: 0, visible: 0 };
    this._queued = false;
    this._bind();
    new ResizeObserver(() => this.resize()).observe(canvas);
  }

  // --- data ---------------------------------------------------------------------------------
  setPoints(points) {
    const n = this.n = points.length;
    this.ids = new Int32Array(n); this.x = new Float32Array(n); this.y = new Float32Array(n);
    this.size = new Float32Array(n); this.colour = new Uint8Array(n);
    this.names = new Array(n); this.genres = new Array(n); this.nTracks = new Int32Array(n);
    this.indexOf = new Map();
    const counts = new Map();
    for (const p of points) if (p.genre) counts.set(p.genre, (counts.get(p.genre) || 0) + 1);
    const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const shown = ranked.length <= MAP_PALETTE.length ? ranked : ranked.slice(0, MAP_PALETTE.length - 1);
    this.colours = shown.map((_, i) => MAP_PALETTE[i]).concat([OTHER_COLOUR, NONE_COLOUR]);
    const OTHER = shown.length, NONE = shown.length + 1;
    const slot = new Map(shown.map(([g], i) => [g, i]));
    this.legend = shown.map(([g, c], i) => ({ label: g, colour: MAP_PALETTE[i], count: c }));
    const rest = ranked.slice(shown.length);
    if (rest.length) this.legend.push({ label: `other (${rest.length} genres)`, colour: OTHER_COLOUR,
      count: rest.reduce((s, [, c]) => s + c, 0), title: rest.map(([g]) => g).join(", ") });
    const noGenre = points.filter((p) => !p.genre).length;
    if (noGenre) this.legend.push({ label: "no genre", colour: NONE_COLOUR, count: noGenre });
    points.forEach((p, i) => {
      this.ids[i] = p.artist_id; this.x[i] = p.x; this.y[i] = 1 - p.y;
      this.names[i] = p.name; this.genres[i] = p.genre; this.nTracks[i] = p.n_tracks;
      this.size[i] = Math.sqrt(p.n_tracks);
      this.colour[i] = p.genre ? (slot.has(p.genre) ? slot.get(p.genre) : OTHER) : NONE;
      this.indexOf.set(p.artist_id, i);
    });
    // Label priority: artists with more tracks first; ties in a fixed scattered order (a hash of
    // the id), so equal artists get labels all over the map rather than the alphabet's start.
    const scatter = (i) => Math.imul(this.ids[i], 2654435761) >>> 0;
    this.order = Int32Array.from([...Array(n).keys()].sort((a, b) => this.nTracks[b] - this.nTracks[a] || scatter(a) - scatter(b)));
    this._buildGrid();
    this.reset();
  }

  _buildGrid() {  // buckets of point indices on a G x G grid over [0, 1]^2, for hover hit tests
    const G = this.G = Math.max(8, Math.min(256, Math.round(Math.sqrt(this.n / 2))));
    this.grid = Array.from({ length: G * G }, () => []);
    for (let i = 0; i < this.n; i++) {
      const gx = Math.min(G - 1, Math.max(0, Math.floor(this.x[i] * G)));
      const gy = Math.min(G - 1, Math.max(0, Math.floor(this.y[i] * G)));
      this.grid[gy * G + gx].push(i);
    }
  }

  // --- view ---------------------------------------------------------------------------------
  resize() {
    const r = this.canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      const first = !this.cssW;
      this.canvas.width = w; this.canvas.height = h; this.dpr = dpr; this.cssW = r.width; this.cssH = r.height;
      if (first) this.reset(); else this.request();
    }
  }

  reset() {  // fit [0, 1]^2 into the canvas with a margin
    const w = this.cssW || 800, h = this.cssH || 600, m = 24;
    const k = Math.min(w - 2 * m, h - 2 * m);
    this.view = { k, tx: (w - k) / 2, ty: (h - k) / 2 };
    this.k0 = k;
    this.request();
  }

  toScreen(i) { return [this.x[i] * this.view.k + this.view.tx, this.y[i] * this.view.k + this.view.ty]; }

  zoomAt(sx, sy, factor) {
    const v = this.view, k = Math.min(v.k * 400, Math.max(50, v.k * factor)), f = k / v.k;
    this.view = { k, tx: sx - (sx - v.tx) * f, ty: sy - (sy - v.ty) * f };
    this.request();
  }

  panBy(dx, dy) { this.view = { ...this.view, tx: this.view.tx + dx, ty: this.view.ty + dy }; this.request(); }

  centreOn(i, minK) {
    const k = Math.max(this.view.k, minK || 0);
    this.view = { k, tx: this.cssW / 2 - this.x[i] * k, ty: this.cssH / 2 - this.y[i] * k };
    this.request();
  }

  // --- drawing ------------------------------------------------------------------------------
  request() {
    if (this._queued) return;
    this._queued = true;
    requestAnimationFrame(() => { this._queued = false; this.draw(); });
  }

  radius() {  // dots grow as you zoom in; smaller when there are many
    const base = this.n > 3000 ? 1.6 : this.n > 300 ? 2.8 : 6;
    return Math.min(10, base * Math.sqrt(this.view.k / (this.k0 || this.view.k)));
  }

  draw() {
    const t0 = performance.now();
    const { ctx, view } = this, dpr = this.dpr || 1, W = this.cssW || 0, H = this.cssH || 0;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fbfcfe"; ctx.fillRect(0, 0, W, H);
    const r0 = this.radius(), nC = this.colours ? this.colours.length : 0;
    const paths = Array.from({ length: nC }, () => new Path2D());
    const round = r0 >= 3;
    let visible = 0;
    for (let i = 0; i < this.n; i++) {
      const sx = this.x[i] * view.k + view.tx, sy = this.y[i] * view.k + view.ty;
      if (sx < -10 || sy < -10 || sx > W + 10 || sy > H + 10) continue;
      visible++;
      const r = r0 * (0.8 + 0.25 * Math.min(this.size[i], 4));
      const p = paths[this.colour[i]];
      if (round) { p.moveTo(sx + r, sy); p.arc(sx, sy, r, 0, 6.2832); } else p.rect(sx - r, sy - r, 2 * r, 2 * r);
    }
    for (let c = 0; c < nC; c++) { ctx.fillStyle = this.colours[c]; ctx.fill(paths[c]); }
    this._drawSelection(r0);
    this.stats.labels = this._drawLabels(r0, W, H);
    this.stats.visible = visible;
    this.stats.draws++;
    this.stats.lastDrawEnd = performance.now();
    this.stats.lastDrawMs = this.stats.lastDrawEnd - t0;
    if (this.stats.firstDrawAt === null && this.n) {
      this.stats.firstDrawAt = performance.now();
      performance.mark("soundalike-map-drawn");
    }
    this.canvas.dataset.points = String(this.n);
    this.canvas.dataset.labels = String(this.stats.labels);
    this.canvas.dataset.draws = String(this.stats.draws);
  }

  _drawSelection(r0) {
    const { ctx } = this;
    if (this.selected === null) return;
    const [ax, ay] = this.toScreen(this.selected);
    ctx.lineWidth = 1.5; ctx.strokeStyle = "rgba(224,69,43,0.55)";
    ctx.beginPath();
    for (const j of this.neighbours) { const [bx, by] = this.toScreen(j); ctx.moveTo(ax, ay); ctx.lineTo(bx, by); }
    ctx.stroke();
    ctx.lineWidth = 2.5; ctx.strokeStyle = "#e0452b";
    for (const j of this.neighbours) { const [bx, by] = this.toScreen(j); ctx.beginPath(); ctx.arc(bx, by, r0 + 4, 0, 6.2832); ctx.stroke(); }
    ctx.strokeStyle = "#111"; ctx.lineWidth = 3;
    ctx.beginPath(); ctx.arc(ax, ay, r0 + 6, 0, 6.2832); ctx.stroke();
  }

  _drawLabels(r0, W, H) {
    // Greedy placement on a cell grid: a label takes the cells under its box; later (lower
    // priority) labels that would overlap are skipped. Selected, neighbours and hovered first.
    const { ctx } = this, LH = 14, CW = 40, taken = new Set();
    const cols = Math.ceil(W / CW) + 1;
    ctx.font = "12px system-ui, sans-serif"; ctx.textBaseline = "middle";
    let placed = 0;
    const tryPlace = (i, strong) => {
      const [sx, sy] = this.toScreen(i);
      if (sx < 0 || sy < 0 || sx > W || sy > H) return;
      const name = this.names[i], w = Math.min(220, 6.6 * name.length + 6), x0 = sx + r0 + 3, y0 = sy - LH / 2;
      const c0 = Math.floor(x0 / CW), c1 = Math.floor((x0 + w) / CW), row = Math.floor(y0 / LH), row1 = Math.floor((y0 + LH) / LH);
      const cells = [];
      for (let rr = row; rr <= row1; rr++) for (let cc = c0; cc <= c1; cc++) cells.push(rr * cols + cc);
      if (!strong && cells.some((c) => taken.has(c))) return;
      cells.forEach((c) => taken.add(c));
      ctx.fillStyle = "rgba(251,252,254,0.8)"; ctx.fillRect(x0 - 2, y0, w, LH);
      ctx.fillStyle = strong ? "#111" : "#333"; ctx.fillText(name.length > 32 ? name.slice(0, 31) + "…" : name, x0, sy);
      placed++;
    };
    if (this.selected !== null) tryPlace(this.selected, true);
    for (const j of this.neighbours) tryPlace(j, true);
    if (this.hover >= 0) tryPlace(this.hover, true);
    const budget = 400;
    for (let o = 0; o < this.n && placed < budget; o++) tryPlace(this.order[o], false);
    return placed;
  }

  // --- interaction --------------------------------------------------------------------------
  nearest(sx, sy, maxPx = 10) {
    if (!this.n) return -1;
    const v = this.view, wx = (sx - v.tx) / v.k, wy = (sy - v.ty) / v.k, G = this.G;
    const reach = Math.ceil((maxPx / v.k) * G) + 1, gx = Math.floor(wx * G), gy = Math.floor(wy * G);
    let best = -1, bestD = maxPx * maxPx;
    for (let yy = Math.max(0, gy - reach); yy <= Math.min(G - 1, gy + reach); yy++) {
      for (let xx = Math.max(0, gx - reach); xx <= Math.min(G - 1, gx + reach); xx++) {
        for (const i of this.grid[yy * G + xx]) {
          const [px, py] = this.toScreen(i), d = (px - sx) ** 2 + (py - sy) ** 2;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  _bind() {
    const cv = this.canvas;
    const local = (e) => { const r = cv.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [sx, sy] = local(e);
      this.zoomAt(sx, sy, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
    let drag = null;
    cv.addEventListener("mousedown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: 0 }; });
    window.addEventListener("mouseup", (e) => {
      if (drag && drag.moved < 4 && e.target === cv) {
        const [sx, sy] = local(e), i = this.nearest(sx, sy);
        if (i >= 0) this.onSelect(this.ids[i]);
      }
      drag = null;
    });
    window.addEventListener("mousemove", (e) => {
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        drag.moved += Math.abs(dx) + Math.abs(dy); drag.x = e.clientX; drag.y = e.clientY;
        this.panBy(dx, dy);
        return;
      }
      if (e.target !== cv) return;
      const [sx, sy] = local(e), i = this.nearest(sx, sy);
      if (i !== this.hover) { this.hover = i; this.request(); }
      if (i >= 0) {
        const t = this.tooltip;
        t.textContent = `${this.names[i]} · ${this.genres[i] || "no genre"} · ${this.nTracks[i]} track${this.nTracks[i] === 1 ? "" : "s"}`;
        t.hidden = false;
        const box = cv.parentElement.getBoundingClientRect();
        t.style.left = `${e.clientX - box.left + 12}px`; t.style.top = `${e.clientY - box.top + 12}px`;
      } else this.tooltip.hidden = true;
    });
    cv.addEventListener("mouseleave", () => { this.tooltip.hidden = true; if (this.hover >= 0) { this.hover = -1; this.request(); } });
  }

  select(artistId, neighbourIds = []) {
    const i = this.indexOf.get(artistId);
    this.selected = i === undefined ? null : i;
    this.neighbours = neighbourIds.map((a) => this.indexOf.get(a)).filter((j) => j !== undefined);
    this.request();
    return i;
  }

  clientPosOf(artistId) {  // page coordinates of an artist's dot (tests, benchmarks)
    const i = this.indexOf.get(artistId);
    if (i === undefined) return null;
    const r = this.canvas.getBoundingClientRect(), [sx, sy] = this.toScreen(i);
    return { x: r.left + sx, y: r.top + sy };
  }
}
window.ArtistMap = ArtistMap;
