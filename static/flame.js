// The trace page's flame graph: Plotly bars, one per frame, laid out here from the folded stacks the server sends
// (app/flame_view.py). Zooming into a frame sets the x range to it, so its descendants keep their proportions and
// its ancestors stay below it, full width, as in flamegraph.pl and speedscope.
//  - views: flamegraph.pl's order (siblings by name), speedscope's left heavy (heaviest first), time order (the
//    run's frames as they ran, fetched per range from /trace/flame/chart), and the sandwich (one function's
//    callers above it, its callees below); flame (root at the bottom) or icicle (root at the top);
//  - palettes: colour-blind safe (kernel orange, user blue), flamegraph.pl's hot, greys; user-mode frames are
//    hatched and every readout names the ring, so kernel and user never differ by colour alone;
//  - keys on the graph: arrows choose a frame, Enter zooms, Escape resets, / searches, n / N the next match;
//  - the view, orientation, palette, zoom and search live in the URL (history.replaceState);
//  - the differential flame graph (#diff-flame, its controls' ids prefixed "diff-") is the same graph: widths are
//    the second run's, colours its change from the first (red more time, blue less, as difffolded.pl colours; or
//    a colour-blind-safe orange and purple), a mark before each name (▲ more, ▼ less) and every readout giving
//    the change in words; flame graph and left heavy orders, zoom, keys and search as above; its state stays out
//    of the URL, which the other graph's is.
(function () {
  "use strict";

  const FONT = "ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', Menlo, monospace";
  const GLYPH_EM = 0.62; // a monospace glyph's width, generously, in ems: how many characters fit in a frame
  const MIN_FRAME_PX = 0.5; // narrower frames are not drawn (flamegraph.pl's --minwidth is 0.1)
  const ROW_PX = { normal: 24, projector: 34 };
  const TEXT_PX = { normal: 14, projector: 20 };
  const SEARCH_COLOUR = "#e600e6"; // flamegraph.pl's search highlight; matches also get a thick outline
  const SEARCH_DELAY_MS = 150;
  const VIEWS = ["alpha", "heavy", "time", "sandwich"];
  const DIFF_VIEWS = ["alpha", "heavy"]; // a re-rooted sandwich or a time order has no first run to compare with
  const SPEEDSCOPE_VIEWS = { alpha: "left-heavy", heavy: "left-heavy", time: "time-ordered", sandwich: "sandwich" };

  // ---- palettes: a colour per frame, from its kind and a hash of its name (so a function keeps its colour)

  function hash(text) {
    let h = 2166136261; // FNV-1a
    for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
    return h >>> 0;
  }

  const PALETTES = {
    // Okabe-Ito's orange and sky blue, told apart with every common colour-vision deficiency; names vary lightness
    safe(kind, name) {
      const v = (hash(name) % 1000) / 1000;
      if (kind === "k") return `hsl(${28 + Math.round(14 * v)} 90% ${58 + Math.round(16 * v)}%)`;
      if (kind === "u") return `hsl(202 70% ${66 + Math.round(10 * v)}%)`;
      if (kind === "p") return `hsl(164 45% ${70 + Math.round(10 * v)}%)`;
      return kind === "s" ? "#a0a0a0" : "#d9d9d9";
    },
    hot(kind, name) {
      // flamegraph.pl's "hot" palette, hashed on the name (--hash)
      if (kind === "s") return "#a0a0a0";
      if (kind === "r") return "#d9d9d9";
      const h = hash(name);
      const v1 = (h & 0xff) / 255;
      const v2 = ((h >>> 8) & 0xff) / 255;
      const v3 = ((h >>> 16) & 0xff) / 255;
      return `rgb(${205 + Math.round(50 * v3)} ${Math.round(230 * v1)} ${Math.round(55 * v2)})`;
    },
    grey(kind, name) {
      if (kind === "s") return "#9a9a9a";
      return `hsl(0 0% ${kind === "u" ? 92 : 74 + (hash(name) % 14)}%)`;
    },
  };

  // A differential graph's colours, from a frame's change (node.change, of the largest change `most`): deeper for
  // a bigger change, near white for none.
  const DIFF_PALETTES = {
    redblue(node, most) {
      // difffolded.pl's: red for more time, blue for less
      if (!node.change || !most) return "rgb(245,245,245)";
      const fade = Math.round(210 * (1 - Math.min(Math.abs(node.change) / most, 1)));
      return node.change > 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
    },
    orangepurple(node, most) {
      // ColorBrewer's PuOr ends: orange for more, purple for less, told apart with every colour-vision deficiency
      if (!node.change || !most) return "rgb(245,245,245)";
      const lightness = 92 - Math.round(50 * Math.min(Math.abs(node.change) / most, 1));
      return node.change > 0 ? `hsl(30 95% ${lightness}%)` : `hsl(265 45% ${lightness}%)`;
    },
  };
  const CHANGE_MARKS = { more: "▲ ", less: "▼ " };

  // ---- laying out the stacks

  function node(name, kind, id, parent) {
    return { name, kind, id, parent, value: 0, self: 0, children: new Map() };
  }

  // The folded stacks as a tree: the root "all", then each stack's frames; a node's value is inclusive.
  function tree(stacks, names) {
    const root = node("all", "r", "", null);
    for (const [indices, kinds, value] of stacks) {
      let at = root;
      at.value += value;
      indices.forEach((n, depth) => {
        const name = names[n];
        if (!at.children.has(name)) {
          at.children.set(name, node(name, kinds[depth], at.id ? `${at.id};${name}` : name, at));
        }
        at = at.children.get(name);
        at.value += value;
      });
      at.self += value;
    }
    return root;
  }

  const ORDERS = {
    alpha: (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    heavy: (a, b) => b.value - a.value || ORDERS.alpha(a, b),
  };

  // Each node as a frame {x0, x1, row, node}, children from their parent's left edge in `order`; `sign` -1 lays
  // rows downwards (the sandwich's callees).
  function place(root, order, firstRow, sign, frames) {
    const visit = (n, x0, row) => {
      frames.push({ x0, x1: x0 + n.value, row, node: n });
      let x = x0;
      for (const child of [...n.children.values()].sort(ORDERS[order])) {
        visit(child, x, row + sign);
        x += child.value;
      }
    };
    visit(root, 0, firstRow);
    return frames;
  }

  // The sandwich: the function's callers (nearest first, upwards) and callees (downwards) around it, each stack
  // counted once (its outermost call of the function for callees, its innermost for callers, as speedscope does).
  function sandwich(stacks, names, fn) {
    const callers = [];
    const callees = [];
    for (const [indices, kinds, value] of stacks) {
      const named = indices.map((n) => names[n]);
      const first = named.indexOf(fn);
      if (first < 0) continue;
      const last = named.lastIndexOf(fn);
      callees.push([indices.slice(first), kinds.slice(first), value]);
      callers.push([indices.slice(0, last + 1).reverse(), kinds.slice(0, last + 1).split("").reverse().join(""), value]);
    }
    const below = tree(callees, names).children.get(fn);
    const above = tree(callers, names).children.get(fn);
    if (!below || !above) return [];
    // both halves are as wide as the function (every stack with it counted once in each); they share its row
    const frames = place(below, "heavy", 0, -1, []);
    return frames.concat(place(above, "heavy", 0, 1, []).filter((f) => f.row > 0));
  }

  // Functions by the time spent in them (total) and as the leaf (self), for the sandwich's table.
  function functions(stacks, names) {
    const table = new Map();
    for (const [indices, kinds, value] of stacks) {
      const seen = new Set();
      indices.forEach((n, depth) => {
        const name = names[n];
        if (!table.has(name)) table.set(name, { name, kind: kinds[depth], total: 0, self: 0 });
        if (!seen.has(name)) table.get(name).total += value;
        seen.add(name);
      });
      if (indices.length) table.get(names[indices[indices.length - 1]]).self += value;
    }
    return [...table.values()].sort((a, b) => b.total - a.total || b.self - a.self);
  }

  // ---- the graph

  function FlameGraph(host) {
    this.host = host;
    this.prefix = host.id.slice(0, -"flame".length); // "" or "diff-": the ids of this graph's controls
    this.section = host.closest("section");
    this.data = JSON.parse(document.getElementById(host.dataset.data).textContent);
    this.unit = host.dataset.unit;
    this.root = tree(this.data.stacks, this.data.names);
    this.diff = Boolean(this.data.before);
    if (this.diff) compare(this.root, this.data.before);
    this.views = this.diff ? DIFF_VIEWS : VIEWS;
    this.palettes = this.diff ? DIFF_PALETTES : PALETTES;
    this.chart = null; // time order: {range, frames} of the last range fetched
    const params = this.diff ? new URLSearchParams() : new URL(location.href).searchParams;
    const view = params.get("view");
    this.view = this.views.includes(view) && !(view === "time" && !host.dataset.chartUrl) ? view : "alpha";
    this.orient = params.get("orient") === "icicle" ? "icicle" : "flame";
    this.palette = this.palettes[params.get("palette")] ? params.get("palette") : Object.keys(this.palettes)[0];
    this.fn = params.get("fn") || null;
    this.search = (this.element("flame-search") || {}).value || "";
    this.selected = null;
    this.matchIndex = -1;
    this.frames = this.layout();
    const focus = this.frames.find((f) => f.node.id === (params.get("focus") || "\u0000"));
    this.range = focus ? [focus.x0, focus.x1] : this.whole();
    if (focus) this.selected = focus;
  }

  // Each node's value in the first run (`before`, by stack: the server's, scaled as difffolded.pl -n scales) and
  // its change.
  function compare(root, before) {
    const visit = (n) => {
      n.before = before[n.id] || 0;
      n.change = n.value - n.before;
      for (const child of n.children.values()) visit(child);
    };
    visit(root);
  }

  FlameGraph.prototype.element = function (id) {
    return document.getElementById(this.prefix + id);
  };

  FlameGraph.prototype.whole = function () {
    const rootFrame = this.frames.find((f) => f.row === 0) || { x0: 0, x1: this.root.value || 1 };
    return [rootFrame.x0, Math.max(rootFrame.x1, rootFrame.x0 + 1)];
  };

  FlameGraph.prototype.layout = function () {
    if (this.view === "sandwich") {
      const fn = this.fn || (this.selected && this.selected.node.name) || functions(this.data.stacks, this.data.names)[0].name;
      this.fn = fn;
      return sandwich(this.data.stacks, this.data.names, fn);
    }
    if (this.view === "time") return this.timeFrames();
    return place(this.root, this.view, 0, 1, []);
  };

  // The time-order frames fetched for the last range (with the root, "all", under them).
  FlameGraph.prototype.timeFrames = function () {
    const total = this.root.value;
    const frames = [{ x0: 0, x1: total, row: 0, node: this.root }];
    if (!this.chart) return frames;
    const { names, stacks } = this.chart;
    const nodes = stacks.map(([indices, kinds]) => {
      const path = indices.map((n) => names[n]);
      const id = path.join(";");
      return { name: path[path.length - 1], kind: kinds[kinds.length - 1], id, depth: path.length };
    });
    for (const [x0, x1, s, at, count, busy] of this.chart.frames) {
      const n = nodes[s];
      const merged = count > 1 ? { count, busy } : null;
      frames.push({ x0, x1, row: n.depth, at, merged, node: { name: n.name, kind: n.kind, id: n.id, value: x1 - x0, self: null } });
    }
    return frames;
  };

  FlameGraph.prototype.fetchChart = function () {
    const [from, to] = this.range.map(Math.round);
    const width = this.plotWidth();
    const url = `${this.host.dataset.chartUrl}&from=${from}&to=${Math.max(to, from + 1)}&width=${width}`;
    this.pending = url;
    return fetch(url, { headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : null))
      .then((chart) => {
        if (!chart || this.pending !== url || this.view !== "time") return;
        this.chart = chart;
        this.frames = this.timeFrames();
        this.render();
      });
  };

  FlameGraph.prototype.plotWidth = function () {
    return Math.max(this.host.clientWidth, 200);
  };

  FlameGraph.prototype.projector = function () {
    return document.body.classList.contains("projector") ? "projector" : "normal";
  };

  FlameGraph.prototype.matcher = function () {
    const text = this.search.trim();
    if (!text) return null;
    try {
      const pattern = new RegExp(text, "i");
      const test = (label) => pattern.test(label);
      test.asText = false;
      return test;
    } catch (error) {
      const needle = text.toLowerCase(); // not a regular expression: matched as plain text, and the readout says so
      const test = (label) => label.toLowerCase().includes(needle);
      test.asText = true;
      return test;
    }
  };

  FlameGraph.prototype.describe = function (frame) {
    const n = frame.node;
    const total = this.root.value || 1;
    const value = frame.x1 - frame.x0;
    const unit = this.unit ? ` ${this.unit}` : "";
    const parts = [`${n.name} · ${this.data.kinds[n.kind] || "all"}`,
      `${value.toLocaleString("en")}${unit} (${((100 * value) / total).toFixed(2)}% of all)`];
    if (n.self !== null && n.self !== undefined && this.view !== "sandwich") {
      parts.push(`self ${n.self.toLocaleString("en")}${unit}`);
    }
    if (frame.merged) {
      parts[1] = `${frame.merged.count.toLocaleString("en")} frames, each too narrow to draw here, merged: ` +
        `${frame.merged.busy.toLocaleString("en")}${unit} of the ${value.toLocaleString("en")}${unit} they span`;
    }
    if (frame.at !== undefined) parts.push(`began at ${frame.at.toLocaleString("en")} ns of simulated time`);
    if (this.diff) {
      const change = n.change > 0 ? "more" : n.change < 0 ? "less" : "no change";
      const by = n.change ? ` (${n.change > 0 ? "+" : "−"}${Math.abs(n.change).toLocaleString("en")}${unit})` : "";
      parts.push(`before ${n.before.toLocaleString("en")}${unit}: ${change}${by}`);
    }
    return parts;
  };

  FlameGraph.prototype.render = function () {
    const mode = this.projector();
    const [a, b] = this.range;
    const pxPerUnit = this.plotWidth() / (b - a);
    const fontPx = TEXT_PX[mode];
    const matches = this.matcher();
    const shown = this.frames.filter((f) => f.x1 > a && f.x0 < b && (Math.min(f.x1, b) - Math.max(f.x0, a)) * pxPerUnit >= MIN_FRAME_PX);
    const palette = this.palettes[this.palette];
    const most = this.data.maxChange;
    const trace = {
      type: "bar", orientation: "h", base: [], x: [], y: [], text: [], hovertext: [],
      marker: { color: [], opacity: [], line: { color: [], width: [] },
        pattern: { shape: [], fgcolor: "#1b1b1b", fgopacity: 0.45, size: 7, solidity: 0.2 } },
      width: 0.94, textposition: "inside", insidetextanchor: "start", constraintext: "none",
      textfont: { family: FONT, size: fontPx, color: "#1b1b1b" }, hovertemplate: "%{hovertext}<extra></extra>",
    };
    const focus = this.zoomedFrame();
    let matchedValue = 0;
    let matchedFrames = 0;
    const covered = [];
    for (const f of shown) {
      const x0 = Math.max(f.x0, a);
      const x1 = Math.min(f.x1, b);
      const px = (x1 - x0) * pxPerUnit;
      const chars = Math.floor((px - 6) / (fontPx * GLYPH_EM));
      const name = this.label(f.node);
      const hit = matches && f.node.kind !== "r" && matches(f.node.name);
      trace.base.push(x0);
      trace.x.push(x1 - x0);
      trace.y.push(f.row);
      trace.text.push(chars >= name.length ? name : chars >= 3 ? `${name.slice(0, chars - 1)}…` : "");
      trace.hovertext.push(this.describe(f).join("<br>"));
      const colour = this.diff ? palette(f.node, most) : palette(f.node.kind, f.node.name);
      trace.marker.color.push(hit ? SEARCH_COLOUR : colour);
      const outside = focus && f.row < focus.row && this.view !== "sandwich";
      // the zoomed frame's ancestors, as flamegraph.pl greys them, and blocks of merged narrow frames
      trace.marker.opacity.push(outside || f.merged ? 0.6 : 1);
      const isSelected = this.selected && this.sameFrame(this.selected, f);
      trace.marker.line.color.push(isSelected || hit ? "#000000" : "#ffffff");
      trace.marker.line.width.push(isSelected ? 3 : hit ? 2 : 0.5);
      trace.marker.pattern.shape.push(f.node.kind === "u" ? "/" : "");
      if (hit) {
        matchedFrames += 1;
        if (!covered.some((c) => c.row < f.row && c.x0 <= f.x0 && f.x1 <= c.x1)) matchedValue += f.x1 - f.x0;
        covered.push(f);
      }
    }
    this.shown = shown;
    const rows = this.frames.map((f) => f.row);
    const low = Math.min(0, ...rows) - 0.5;
    const high = Math.max(0, ...rows) + 0.5;
    const height = Math.max(4, high - low) * ROW_PX[mode] + 8;
    const layout = {
      template: "none", height, margin: { l: 2, r: 2, t: 4, b: 4 }, barmode: "overlay", bargap: 0,
      showlegend: false, dragmode: false, hovermode: "closest", paper_bgcolor: "#ffffff", plot_bgcolor: "#ffffff",
      font: { family: FONT, size: fontPx, color: "#1b1b1b" },
      hoverlabel: { font: { family: FONT, size: fontPx } },
      uniformtext: { minsize: fontPx, mode: "hide" },
      xaxis: { range: [a, b], visible: false, fixedrange: true },
      yaxis: { range: this.orient === "icicle" ? [high, low] : [low, high], visible: false, fixedrange: true },
    };
    const config = { displayModeBar: false, responsive: true, doubleClick: false, scrollZoom: false };
    this.host.dataset.shownView = this.view;
    this.host.dataset.orient = this.orient;
    this.host.dataset.range = `${a} ${b}`;
    this.readout(matches, matchedValue, matchedFrames);
    this.toolbar();
    return Plotly.react(this.host, [trace], layout, config);
  };

  // A frame's text: its name, after a mark of its change in a differential graph.
  FlameGraph.prototype.label = function (n) {
    if (!this.diff || !n.change) return n.name;
    return CHANGE_MARKS[n.change > 0 ? "more" : "less"] + n.name;
  };

  FlameGraph.prototype.sameFrame = function (x, y) {
    return x.node.id === y.node.id && x.x0 === y.x0 && x.row === y.row;
  };

  // The frame the range is zoomed to (null when the whole graph shows).
  FlameGraph.prototype.zoomedFrame = function () {
    const [a, b] = this.range;
    const [wa, wb] = this.whole();
    if (a === wa && b === wb) return null;
    const candidates = this.frames.filter((f) => f.x0 === a && f.x1 === b);
    return candidates.length ? candidates[candidates.length - 1] : null;
  };

  FlameGraph.prototype.readout = function (matches, value, frames) {
    const out = this.element("flame-matched");
    if (!out) return;
    if (!matches) {
      out.textContent = "";
      delete this.host.dataset.matched;
      return;
    }
    const total = this.root.value || 1;
    const percent = (100 * value) / total;
    const how = matches.asText ? "; not a regular expression, so matched as plain text" : "";
    out.textContent = `Matched: ${percent.toFixed(1)}% (${frames} frame${frames === 1 ? "" : "s"}${how})`;
    this.host.dataset.matched = percent.toFixed(1);
  };

  FlameGraph.prototype.toolbar = function () {
    for (const button of this.section.querySelectorAll("button[data-view]")) {
      button.setAttribute("aria-pressed", String(button.dataset.view === this.view));
    }
    const orient = this.element("flame-orient");
    if (orient) orient.setAttribute("aria-pressed", String(this.orient === "icicle"));
    const palette = this.element("flame-palette");
    if (palette) palette.value = this.palette;
    const link = this.element("open-speedscope");
    if (link) link.href = link.dataset.base.replace(/&view=[^&]*|$/, `&view=${SPEEDSCOPE_VIEWS[this.view]}`);
    const table = this.element("flame-functions");
    if (table) {
      table.hidden = this.view !== "sandwich";
      if (!table.hidden) this.functionTable(table);
    }
    this.remember();
  };

  FlameGraph.prototype.functionTable = function (box) {
    const rows = functions(this.data.stacks, this.data.names).slice(0, 40);
    const unit = this.unit ? ` ${this.unit}` : "";
    const table = document.createElement("table");
    table.className = "flame-function-table";
    table.innerHTML = "<caption>Functions: choose one to see its callers (above) and callees (below)</caption>" +
      "<thead><tr><th scope='col'>function</th><th scope='col'>total</th><th scope='col'>self</th></tr></thead>";
    const body = document.createElement("tbody");
    for (const row of rows) {
      const tr = document.createElement("tr");
      const name = document.createElement("th");
      name.scope = "row";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      button.textContent = row.name;
      button.dataset.fn = row.name;
      if (row.name === this.fn) button.setAttribute("aria-current", "true");
      name.append(button);
      tr.append(name);
      for (const value of [row.total, row.self]) {
        const td = document.createElement("td");
        td.textContent = `${value.toLocaleString("en")}${unit}`;
        tr.append(td);
      }
      body.append(tr);
    }
    table.append(body);
    box.replaceChildren(table);
  };

  FlameGraph.prototype.remember = function () {
    if (this.diff) return;
    const url = new URL(location.href);
    const set = (name, value) => (value ? url.searchParams.set(name, value) : url.searchParams.delete(name));
    const focus = this.zoomedFrame();
    set("view", this.view === "alpha" ? "" : this.view);
    set("orient", this.orient === "icicle" ? "icicle" : "");
    set("palette", this.palette === "safe" ? "" : this.palette);
    set("fn", this.view === "sandwich" ? this.fn : "");
    set("focus", focus && (this.view === "alpha" || this.view === "heavy") ? focus.node.id : "");
    set("search", this.search.trim());
    history.replaceState(history.state, "", url.pathname + url.search);
  };

  // ---- actions

  FlameGraph.prototype.setView = function (view) {
    if (!this.views.includes(view) || (view === "time" && !this.host.dataset.chartUrl)) return;
    const keep = this.zoomedFrame();
    if (view === "sandwich" && this.selected) this.fn = this.selected.node.name;
    this.view = view;
    this.frames = this.layout();
    this.range = this.whole();
    const same = keep && this.frames.find((f) => f.node.id === keep.node.id);
    if (same && view !== "time") this.range = [same.x0, same.x1];
    this.selected = same || null;
    if (view === "time") this.fetchChart();
    this.render();
  };

  FlameGraph.prototype.zoom = function (frame) {
    this.selected = frame;
    const whole = this.whole();
    this.range = frame.row === 0 || frame.x1 - frame.x0 >= whole[1] - whole[0] ? whole : [frame.x0, frame.x1];
    if (this.view === "time") this.fetchChart();
    this.render();
    this.announce(frame);
    this.showFrame(frame);
  };

  FlameGraph.prototype.reset = function () {
    this.range = this.whole();
    if (this.view === "time") this.fetchChart();
    this.render();
  };

  FlameGraph.prototype.announce = function (frame) {
    const out = this.element("flame-selected");
    if (out) out.textContent = frame ? this.describe(frame).join(" · ") : "";
  };

  // The frame's times and its stepper link, from the server (not for the sandwich's re-rooted frames).
  FlameGraph.prototype.showFrame = function (frame) {
    if (this.view === "sandwich" || !this.host.dataset.frameUrl) return;
    const stack = frame.node.id || "all";
    htmx.ajax("GET", `${this.host.dataset.frameUrl}&stack=${encodeURIComponent(stack)}`, {
      target: "#frame-info", swap: "outerHTML",
    });
  };

  FlameGraph.prototype.select = function (frame) {
    if (!frame) return;
    this.selected = frame;
    const [a, b] = this.range;
    if (frame.x1 <= a || frame.x0 >= b) this.range = this.whole();
    this.render();
    this.announce(frame);
  };

  // The frame in the row above (+1) or below (-1) on screen that overlaps the selected one, the widest.
  FlameGraph.prototype.neighbourRow = function (direction) {
    const from = this.selected || this.shown.find((f) => f.row === 0);
    if (!from) return null;
    const rowDelta = this.orient === "icicle" ? -direction : direction;
    const row = from.row + rowDelta;
    const overlapping = this.shown.filter((f) => f.row === row && f.x1 > from.x0 && f.x0 < from.x1);
    overlapping.sort((x, y) => y.x1 - y.x0 - (x.x1 - x.x0));
    return overlapping[0] || null;
  };

  FlameGraph.prototype.neighbourSide = function (direction) {
    const from = this.selected || this.shown.find((f) => f.row === 0);
    if (!from) return null;
    const row = this.shown.filter((f) => f.row === from.row).sort((x, y) => x.x0 - y.x0);
    const at = row.findIndex((f) => this.sameFrame(f, from));
    return row[at + direction] || null;
  };

  FlameGraph.prototype.nextMatch = function (direction) {
    const matches = this.matcher();
    if (!matches) return;
    const all = this.frames.filter((f) => f.row !== 0 && matches(f.node.name)).sort((x, y) => x.row - y.row || x.x0 - y.x0);
    if (!all.length) return;
    this.matchIndex = (this.matchIndex + direction + all.length) % all.length;
    const frame = all[this.matchIndex];
    const [a, b] = this.range;
    const narrow = (frame.x1 - frame.x0) / (b - a) < 0.05;
    if (narrow || frame.x1 <= a || frame.x0 >= b) this.zoom(frame);
    else this.select(frame);
  };

  FlameGraph.prototype.onKey = function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const keys = {
      ArrowUp: () => this.select(this.neighbourRow(1)),
      ArrowDown: () => this.select(this.neighbourRow(-1)),
      ArrowLeft: () => this.select(this.neighbourSide(-1)),
      ArrowRight: () => this.select(this.neighbourSide(1)),
      Enter: () => this.selected && this.zoom(this.selected),
      " ": () => this.selected && this.zoom(this.selected),
      Escape: () => this.reset(),
      0: () => this.reset(),
      "/": () => this.element("flame-search").focus(),
      n: () => this.nextMatch(1),
      N: () => this.nextMatch(-1),
      a: () => this.setView("alpha"),
      h: () => this.setView("heavy"),
      t: () => this.setView("time"),
      s: () => this.setView("sandwich"),
      i: () => this.flip(),
    };
    const action = keys[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  };

  FlameGraph.prototype.flip = function () {
    this.orient = this.orient === "icicle" ? "flame" : "icicle";
    this.render();
  };

  FlameGraph.prototype.bind = function () {
    const host = this.host;
    host.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      const frame = point && this.shown[point.pointNumber];
      if (frame) this.zoom(frame);
    });
    host.addEventListener("keydown", (event) => this.onKey(event));
    this.section.addEventListener("click", (event) => {
      const target = event.target instanceof Element ? event.target : null;
      const viewButton = target && target.closest("button[data-view]");
      const fnButton = target && target.closest("button[data-fn]");
      if (viewButton) this.setView(viewButton.dataset.view);
      else if (fnButton) {
        this.fn = fnButton.dataset.fn;
        this.frames = this.layout();
        this.range = this.whole();
        this.selected = null;
        this.render();
      } else if (target && target.closest(`#${this.prefix}flame-orient`)) this.flip();
      else if (target && target.closest(`#${this.prefix}flame-reset`)) this.reset();
      else if (target && target.closest(`#${this.prefix}flame-next`)) this.nextMatch(1);
      else if (target && target.closest(`#${this.prefix}flame-prev`)) this.nextMatch(-1);
    });
    const palette = this.element("flame-palette");
    if (palette) {
      palette.addEventListener("change", () => {
        this.palette = this.palettes[palette.value] ? palette.value : Object.keys(this.palettes)[0];
        this.render();
      });
    }
    const box = this.element("flame-search");
    let timer = 0;
    if (box) {
      box.addEventListener("input", () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          this.search = box.value;
          this.matchIndex = -1;
          this.render();
        }, SEARCH_DELAY_MS);
      });
      box.addEventListener("keydown", (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          this.search = box.value;
          this.nextMatch(event.shiftKey ? -1 : 1);
        } else if (event.key === "Escape") host.focus();
      });
    }
    let resizeTimer = 0;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => this.host.isConnected && this.render(), 150);
    });
  };

  function drawFlame(host) {
    if (!host || host.dataset.drawn || !window.Plotly) return;
    host.dataset.drawn = "true";
    const graph = new FlameGraph(host);
    host.flameGraph = graph; // for the browser tests
    if (graph.view === "time") graph.fetchChart();
    graph.render().then(() => {
      graph.bind();
      if (graph.selected) graph.announce(graph.selected);
      host.dataset.ready = "true";
    });
  }

  function drawFlames() {
    drawFlame(document.getElementById("flame"));
    drawFlame(document.getElementById("diff-flame"));
  }

  document.addEventListener("htmx:after:swap", drawFlames);
  drawFlames();
})();
