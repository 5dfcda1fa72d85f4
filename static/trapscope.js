// trapscope's browser glue. The server renders every step; this file only
//  - draws the figures a page carries as JSON (<script type="application/json">, never executed): the ring
//    timeline (compact data turned into lanes and markers here), the latency bars and the frame grid (a canvas);
//  - moves the timeline's cursor to the step htmx has just swapped in (the panel's data-t-ns), keeping the time
//    range shown unless the cursor leaves it (then it pans; data-window, app/figures.py focus_window, is the first);
//  - jumps to the step at a clicked time or marker (the server resolves ?at=NS and pushes the ?step=N URL);
//  - maps keys to the controls that declare them with data-key (so a new control needs no new JS), opens the
//    keyboard help (?), and gives focus back to the control that had it when its panel is replaced.
// It keeps no state of its own that matters: the URL and the swapped-in HTML are the state.
(function () {
  "use strict";

  const TYPING = "input:not([type=range]), textarea, select, [contenteditable]";
  const FRAME_CLASSES = { z: "frame-zero", f: "frame-free", u: "frame-used", t: "frame-table", ".": "frame-untouched" };

  function readJSON(id) {
    const source = document.getElementById(id);
    return source ? JSON.parse(source.textContent) : null;
  }

  // The step the page shows: {step, t, window: [start, end]} from the step panel's data attributes.
  function currentStep() {
    const panel = document.getElementById("step-panel");
    if (!panel || !panel.dataset.tNs) return null;
    return {
      step: Number(panel.dataset.step),
      t: Number(panel.dataset.tNs),
      window: panel.dataset.window.split(" ").map(Number),
    };
  }

  // ---------------------------------------------------------------- the ring timeline
  //
  // A run may change ring tens of thousands of times (dd: one page fault per 4 KiB). Drawing them all would make
  // every step's redraw take seconds, so the figure draws only what the shown time range holds, at the detail a
  // pixel can show: stretches closer than a pixel merge, and at most one marker of a kind per pixel column. A
  // zoom, a pan or a step draws the new range the same way (Plotly.react with a handful of points).

  // A lane per thread (app/timeline_lanes.py): its ring-3 stretches in a band above its ring-0 ones, the idle
  // thread's halts hatched in its ring-0 band, its name written above the bands.

  let timeline = null; // {host, lanes: [{name, kind, u, k, h: [starts, ends]}], marks, style, ...}
  let clickTimer = 0;

  const LANE_ROWS = 1.6; // y units a lane takes: ring 0 band, ring 3 band, its name
  const BAND = 0.45;
  const ROW_PX = 30; // px per y unit
  const MARK_GAP = 0.45; // the events row sits this far above the top lane

  function undelta(values) {
    let sum = 0;
    return values.map((v) => (sum += v));
  }

  function decodeTimeline(figure) {
    const data = figure.data;
    const lanes = data.lanes.map((lane) => {
      const starts = undelta(lane.t);
      const decoded = { name: lane.name, kind: lane.kind, u: [[], []], k: [[], []], h: [[], []] };
      starts.forEach((a, i) => {
        const code = lane.c[i];
        decoded[code][0].push(a);
        decoded[code][1].push(a + lane.d[i]);
      });
      return decoded;
    });
    const marks = {};
    for (const kind of Object.keys(MARKS)) {
      const m = data.marks[kind];
      marks[kind] = { t: undelta(m.t), s: undelta(m.s), text: m.n.map((i) => m.names[i]) };
    }
    return { lanes, marks, style: data.style, labels: data.labels, end: data.end };
  }

  // Lane i's bands: ring 0 from base, ring 3 above it; lane 0 (the program's first thread) is the top one.
  function laneBase(i, count) {
    return (count - 1 - i) * LANE_ROWS;
  }

  function markY(count) {
    return count * LANE_ROWS + MARK_GAP;
  }

  function firstAtOrAfter(sorted, value) {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // One band: a rectangle per stretch of time (merged below a pixel), all in one path; hovering near a rectangle's
  // edge names the stretch (lane[2][i] if the lane names each one, else `name`) and its length.
  function laneTrace(name, colour, lane, range, nsPerPixel, y0, height, extra) {
    const [starts, ends, names] = lane;
    const x = [];
    const y = [];
    const customdata = [];
    const top = y0 + height;
    const push = (a, b, who) => {
      const middle = (a + b) / 2;
      x.push(a, middle, b, b, middle, a, a, null);
      y.push(y0, y0, y0, top, top, top, y0, null);
      const info = [a, b, b - a, who];
      customdata.push(info, info, info, info, info, info, info, null);
    };
    let i = Math.max(0, firstAtOrAfter(ends, range[0]));
    let a = null;
    let b = null;
    let who = name;
    for (; i < starts.length && starts[i] <= range[1]; i++) {
      const next = names ? names[i] : name;
      if (a !== null && starts[i] - b <= nsPerPixel) {
        b = ends[i];
        if (next !== who) who = name; // merged stretches of different threads: the lane's own name
        continue;
      }
      if (a !== null) push(a, b, who);
      a = starts[i];
      b = ends[i];
      who = next;
    }
    if (a !== null) push(a, b, who);
    return Object.assign({
      type: "scatter", mode: "lines", name, x, y, customdata, fill: "toself", fillcolor: colour,
      line: { width: 0.5, color: colour }, hoveron: "points",
      hovertemplate: "%{customdata[3]}: %{customdata[0]:,} – %{customdata[1]:,} ns " +
        "(%{customdata[2]:,} ns)<extra></extra>",
    }, extra || {});
  }

  const MARKS = {
    syscall: { symbol: "diamond", size: 10, label: "system call" },
    trap: { symbol: "triangle-down", size: 10, label: "trap" },
    fault: { symbol: "x-thin-open", size: 10, label: "fault resolved" },
  };

  const LABEL_PX_PER_CHAR = 7.5; // the marker labels' 13 px font, generously: a label's width in pixels, estimated
  const LABEL_GAP_PX = 6;

  // Which markers' names fit as labels, and where: those on screen, nearest the cursor first, centred over their
  // marker, or beside it near an edge of the plot, each left out if it would overlap one already placed (its
  // marker keeps the name as hover text).
  function placeLabels(x, names, visible, nsPerPixel, cursor) {
    const widthPx = (visible[1] - visible[0]) / nsPerPixel;
    const order = x.map((_, i) => i).filter((i) => x[i] >= visible[0] && x[i] <= visible[1]);
    order.sort((i, j) => Math.abs(x[i] - cursor) - Math.abs(x[j] - cursor));
    const placed = [];
    const text = names.map(() => "");
    const position = names.map(() => "top center");
    for (const i of order) {
      const width = names[i].length * LABEL_PX_PER_CHAR + LABEL_GAP_PX;
      const at = (x[i] - visible[0]) / nsPerPixel;
      let [left, where] = [at - width / 2, "top center"];
      if (left < 0) [left, where] = [at - LABEL_GAP_PX / 2, "top right"];
      else if (left + width > widthPx) [left, where] = [at - width + LABEL_GAP_PX / 2, "top left"];
      if (left < 0 || left + width > widthPx) continue;
      if (placed.some(([a, b]) => left < b && left + width > a)) continue;
      placed.push([left, left + width]);
      text[i] = names[i];
      position[i] = where;
    }
    return { text, position };
  }

  function markTrace(kind, marks, range, nsPerPixel, style, labels, visible, cursor, y) {
    const spec = MARKS[kind];
    const x = [];
    const customdata = [];
    const names = [];
    let lastPixel = -Infinity;
    for (let i = firstAtOrAfter(marks.t, range[0]); i < marks.t.length && marks.t[i] <= range[1]; i++) {
      const pixel = Math.floor(marks.t[i] / nsPerPixel);
      if (pixel === lastPixel) continue; // one marker of a kind per pixel column
      lastPixel = pixel;
      x.push(marks.t[i]);
      customdata.push(marks.s[i]);
      names.push(marks.text[i]);
    }
    const withText = kind === "syscall" && labels && x.length <= 40;
    const labelled = withText ? placeLabels(x, names, visible, nsPerPixel, cursor) : null;
    const text = labelled ? labelled.text : names.map(() => "");
    return {
      type: "scatter", mode: withText ? "markers+text" : "markers", name: spec.label,
      x, y: x.map(() => y), customdata, text, hovertext: names,
      textposition: labelled ? labelled.position : "top center", textfont: { size: 13, color: "#111111" },
      marker: { symbol: spec.symbol, size: spec.size, color: style[kind], line: { width: 2, color: style[kind] } },
      hovertemplate: `${spec.label}: %{hovertext} at %{x:,} ns · step %{customdata} (click to go)<extra></extra>`,
      cliponaxis: false,
    };
  }

  // SI time on the axis: the unit (ns, µs, ms, s) chosen by the range shown, ticks at 1, 2 or 5 times a power of ten,
  // as many as fit level at this width; far from zero, ticks count from a round base named in the axis title, so
  // a label never needs more than a few digits.
  const UNITS = [[1, "ns"], [1e3, "µs"], [1e6, "ms"], [1e9, "s"]];
  const TICK_CHAR_PX = 8.5; // the axis's 14 px font, generously
  const TICK_GAP_PX = 28;

  function timeUnit(span) {
    let chosen = UNITS[0];
    for (const unit of UNITS) if (span >= 5 * unit[0]) chosen = unit;
    return chosen;
  }

  function formatIn(value, unit, decimals) {
    return (value / unit[0]).toLocaleString("en", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  }

  function timeTicks(range, widthPx) {
    const span = Math.max(range[1] - range[0], 1);
    const unit = timeUnit(span);
    let base = 0;
    let title = `simulated time (${unit[1]})`;
    if (range[0] > 50 * span) { // far from zero: count from a round base
      const magnitude = 10 ** Math.ceil(Math.log10(span));
      base = Math.floor(range[0] / magnitude) * magnitude;
      const baseUnit = timeUnit(base);
      title = `simulated time (${unit[1]}) after ${formatIn(base, baseUnit, base % baseUnit[0] ? 3 : 0)} ${baseUnit[1]}`;
    }
    const labelChars = Math.max(formatIn(range[1] - base, unit, 0).length + 2, 4);
    const most = Math.max(2, Math.floor(widthPx / (labelChars * TICK_CHAR_PX + TICK_GAP_PX)));
    let step = 10 ** Math.floor(Math.log10(span / most));
    for (const factor of [1, 2, 5, 10]) {
      if (span / (step * factor) <= most) {
        step *= factor;
        break;
      }
    }
    const decimals = Math.max(0, Math.ceil(-Math.log10(step / unit[0]) - 1e-9));
    const tickvals = [];
    const ticktext = [];
    for (let t = Math.ceil((range[0] - base) / step) * step; t <= range[1] - base; t += step) {
      tickvals.push(base + t);
      ticktext.push(formatIn(t, unit, decimals));
    }
    return { tickvals, ticktext, title };
  }

  function renderTimeline(range) {
    const { host, lanes, marks, style, labels } = timeline;
    const layoutBase = timeline.layout;
    const width = Math.max(100, host.clientWidth - layoutBase.margin.l - layoutBase.margin.r);
    const nsPerPixel = Math.max(1e-9, (range[1] - range[0]) / width);
    const margin = range[1] - range[0];
    const wide = [range[0] - margin, range[1] + margin]; // a little either side, for a pan
    const count = lanes.length;
    const hatched = {
      line: { width: 0.5, color: style.idle },
      fillpattern: { shape: "/", fgcolor: style.idle, bgcolor: style.idleFill, size: 7, solidity: 0.25 },
    };
    const traces = [];
    const annotations = [];
    const tickvals = [];
    const ticktext = [];
    lanes.forEach((lane, i) => {
      const y0 = laneBase(i, count);
      const kernel = lane.kind === "program" ? style.kernel : style.kthread;
      traces.push(laneTrace(`${lane.name}: ring 0`, kernel, lane.k, wide, nsPerPixel, y0, BAND));
      traces.push(laneTrace(`${lane.name}: ring 3`, style.user, lane.u, wide, nsPerPixel, y0 + BAND + 0.05, BAND));
      traces.push(laneTrace(`${lane.name}: ${style.idleLabel}`, style.idleFill, lane.h, wide, nsPerPixel, y0, BAND, hatched));
      annotations.push({
        xref: "paper", x: 0, xanchor: "left", yref: "y", y: y0 + 2 * BAND + 0.08, yanchor: "bottom",
        text: lane.name, showarrow: false, font: { size: 13, color: "#222222" },
      });
      tickvals.push(y0 + BAND / 2, y0 + 1.5 * BAND + 0.05);
      ticktext.push("ring 0", "ring 3");
    });
    const rowY = markY(count);
    tickvals.push(rowY);
    ticktext.push("events");
    const step = currentStep();
    const at = step ? step.t : range[0];
    for (const kind of Object.keys(MARKS)) {
      traces.push(markTrace(kind, marks[kind], wide, nsPerPixel, style, labels, range, at, rowY));
    }
    const projector = Boolean(host.closest(".projector"));
    const ticks = timeTicks(range, width);
    const top = rowY + 0.75; // room for the events' labels above their markers
    const layout = Object.assign({}, layoutBase, {
      height: Math.round(top * ROW_PX + layoutBase.margin.t + layoutBase.margin.b + 16),
      xaxis: Object.assign({}, layoutBase.xaxis, {
        range, autorange: false, tickvals: ticks.tickvals, ticktext: ticks.ticktext,
        title: Object.assign({}, layoutBase.xaxis.title, { text: ticks.title }),
      }),
      yaxis: Object.assign({}, layoutBase.yaxis, { range: [-0.1, top], tickvals, ticktext }),
      annotations,
      shapes: [], // the cursor is a line of its own over the plot (placeCursor)
      font: Object.assign({}, layoutBase.font, projector ? { size: 18 } : {}),
    });
    timeline.range = range;
    timeline.rendering = true;
    host.dataset.range = `${range[0]} ${range[1]}`;
    return Plotly.react(host, traces, layout, timeline.config).then(() => {
      timeline.rendering = false;
      placeCursor();
    });
  }

  // The cursor is an element over the plot, moved with a CSS transform: moving a Plotly shape recalculates the
  // whole figure (its x0 may change the autorange), some 40 ms of a step's budget on a loaded laptop; this is
  // nothing. Its position comes from the x axis as Plotly last laid it out (_offset, _length: the plot area).
  function placeCursor() {
    const host = timeline && timeline.host;
    const axes = host && host._fullLayout;
    const step = currentStep();
    if (!axes || !axes.xaxis || !step || !timeline.range) return;
    let line = host.querySelector(".timeline-cursor");
    if (!line) {
      line = document.createElement("div");
      line.className = "timeline-cursor";
      line.setAttribute("aria-hidden", "true");
      host.appendChild(line);
    }
    const { xaxis, yaxis } = axes;
    const [start, end] = timeline.range;
    const x = xaxis._offset + ((step.t - start) / Math.max(end - start, 1e-9)) * xaxis._length;
    line.hidden = step.t < start || step.t > end;
    line.style.transform = `translate(${x - 1}px, ${yaxis._offset}px)`;
    line.style.height = `${yaxis._length}px`;
    host.dataset.cursorNs = String(step.t); // where the cursor is, in simulated ns (tests read it)
  }

  function drawTimeline() {
    const host = document.getElementById("timeline");
    const figure = readJSON("timeline-figure");
    if (!host || !figure || host.dataset.drawn) return;
    const panel = document.getElementById("step-panel");
    const runId = panel ? panel.dataset.runId : "";
    const kept = timeline && timeline.runId === runId ? timeline.range : null; // the same run redrawn: same range
    timeline = Object.assign(decodeTimeline(figure), { host, runId, layout: figure.layout, config: figure.config });
    host.dataset.drawn = "true";
    const step = currentStep();
    const range = kept && step ? followRange(kept, step.t) : step ? step.window : [0, timeline.end];
    renderTimeline(range).then(() => bindTimeline(host));
  }

  // A step keeps the range shown (no zoom jump between neighbouring steps) unless its time is outside it, or in
  // its outer twentieth: then the range pans, its width kept, to put the cursor a third of the way in.
  function followRange(range, t) {
    const width = range[1] - range[0];
    const edge = width / 20;
    if (t >= range[0] + edge && t <= range[1] - edge) return range;
    const start = Math.max(0, t - width / 3);
    return [start, start + width];
  }

  // A step within the range on screen only moves the cursor; a step outside it pans the range (followRange).
  function moveCursor() {
    const host = document.getElementById("timeline");
    const step = currentStep();
    if (!host || !host.dataset.drawn || !step || !timeline || timeline.host !== host) return;
    const next = timeline.range ? followRange(timeline.range, step.t) : step.window;
    if (timeline.range && timeline.range[0] === next[0] && timeline.range[1] === next[1]) placeCursor();
    else renderTimeline(next);
  }

  function goTo(name, value) {
    const url = new URL(location.href);
    url.searchParams.delete("step");
    url.searchParams.delete("at");
    url.searchParams.set(name, String(value));
    setBusy(true);
    htmx.ajax("GET", url.pathname + url.search, {
      target: "#step-panel",
      swap: "outerMorph",
      headers: { "HX-Target": "section#step-panel" }, // as a step control's request says: answer with the panel
    });
  }

  function bindTimeline(host) {
    let markerClicked = false;
    let down = null;
    host.on("plotly_relayout", (change) => {
      if (timeline.rendering || timeline.host !== host) return;
      const range = host.layout.xaxis.range;
      if (change["xaxis.autorange"]) renderTimeline([0, timeline.end]);
      else if (range) renderTimeline(range.map(Number));
    });
    host.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point && typeof point.customdata === "number") {
        markerClicked = true;
        goTo("step", point.customdata);
      }
    });
    host.addEventListener("mousedown", (event) => {
      down = { x: event.clientX, y: event.clientY };
    });
    host.addEventListener("dblclick", () => {
      clearTimeout(clickTimer);
      renderTimeline([0, timeline.end]); // the whole run
    });
    host.addEventListener("click", (event) => {
      const drag = host.querySelector(".nsewdrag");
      const moved = down && Math.hypot(event.clientX - down.x, event.clientY - down.y) > 4;
      if (!drag || moved || event.detail > 1) return;
      const box = drag.getBoundingClientRect();
      if (event.clientX < box.left || event.clientX > box.right) return;
      const [start, end] = timeline.range;
      const t = Math.round(start + ((event.clientX - box.left) / box.width) * (end - start));
      clearTimeout(clickTimer);
      clickTimer = setTimeout(() => {
        if (!markerClicked) goTo("at", Math.max(0, t));
        markerClicked = false;
      }, 250); // a second click within this is a double-click: show the whole run instead
    });
  }

  // ---------------------------------------------------------------- latency bars and the frame grid

  // The latency chart is kept across steps (hx-preserve) and redrawn only while it is on screen: below the fold,
  // a step only marks it stale, and it catches up when it scrolls into view (a Plotly redraw costs more than the
  // rest of a step together).
  const onScreen = new WeakMap(); // chart host -> whether it is in the viewport (IntersectionObserver's last word)
  const staleCharts = new Set();
  const chartWatcher = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      onScreen.set(entry.target, entry.isIntersecting);
      if (entry.isIntersecting && staleCharts.delete(entry.target)) drawLatency();
    }
  });

  function drawLatency() {
    const host = document.getElementById("latency-chart");
    const bars = readJSON("latency-bars");
    const figure = readJSON("latency-layout");
    if (!host || !bars || !figure) return;
    if (!onScreen.has(host)) chartWatcher.observe(host); // its first answer comes after this (first) drawing
    else if (!onScreen.get(host) && host.layout) {
      staleCharts.add(host);
      return;
    }
    const height = 70 + 30 * Math.max(bars.names.length, 1);
    const layout = host.layout && host.layout.height === height ? host.layout : Object.assign({}, figure.layout, { height });
    const trace = {
      type: "bar", orientation: "h", y: bars.names, x: bars.values, text: bars.labels,
      textposition: "outside", cliponaxis: false,
      marker: { color: bars.categories.map((c) => figure.colours[c] || "#999999") },
      hovertemplate: "%{y}: %{text}<extra></extra>",
    };
    Plotly.react(host, [trace], layout, figure.config);
  }

  const frameColours = {}; // read from the stylesheet once: each read forces a style recalculation

  function colourOf(className) {
    if (frameColours[className]) return frameColours[className];
    const probe = document.createElement("span");
    probe.className = `frame-swatch ${className}`;
    probe.hidden = false;
    document.body.appendChild(probe);
    const colour = getComputedStyle(probe).backgroundColor;
    probe.remove();
    frameColours[className] = colour;
    return colour;
  }

  function drawFrameGrid() {
    const canvas = document.getElementById("frame-grid");
    if (!canvas || !canvas.getContext) return;
    const columns = Number(canvas.dataset.columns);
    const cell = canvas.width / columns;
    const context = canvas.getContext("2d");
    const colours = {};
    for (const [code, className] of Object.entries(FRAME_CLASSES)) colours[code] = colourOf(className);
    const changed = colourOf("frame-changed");
    context.clearRect(0, 0, canvas.width, canvas.height);
    let index = 0;
    for (const run of canvas.dataset.runs.split(",")) {
      if (!run) continue;
      const code = run[0];
      const count = Number(run.slice(1));
      const lower = code.toLowerCase();
      context.fillStyle = code !== lower ? changed : colours[lower];
      for (let i = 0; i < count; i++, index++) {
        context.fillRect((index % columns) * cell, Math.floor(index / columns) * cell, cell - 0.5, cell - 0.5);
      }
    }
  }

  // ---------------------------------------------------------------- keys

  // Keys pressed while a step is on its way wait their turn, so four quick presses of → are four steps: pressing
  // again at once would click the old panel's link, which still points at the step already requested.
  const MAX_QUEUED_KEYS = 50;
  const queuedKeys = [];
  let busy = false;
  let busyTimer = 0;

  function setBusy(value) {
    busy = value;
    clearTimeout(busyTimer);
    if (busy) busyTimer = setTimeout(() => setBusy(false), 15000); // never wedge on a response that never came
    else pressQueuedKey();
  }

  function controlFor(key) {
    return document.querySelector(`[data-key~="${CSS.escape(key)}"]`);
  }

  function press(control) {
    if (control.matches("input, select, textarea")) {
      control.focus();
      return false;
    }
    control.click();
    return control.matches("a[hx-get]");
  }

  function pressQueuedKey() {
    if (busy || !queuedKeys.length) return;
    const control = controlFor(queuedKeys.shift());
    if (!control) {
      queuedKeys.length = 0; // e.g. → at the last step: the rest would go nowhere either
      return;
    }
    if (press(control)) setBusy(true);
    else pressQueuedKey();
  }

  function onKey(event) {
    if (event.key === "Escape" && event.target instanceof Element && event.target.matches(TYPING)) {
      event.target.blur(); // leave a text field: the stepping keys work again
      return;
    }
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target instanceof Element && event.target.closest(TYPING)) return;
    if (event.target instanceof Element && event.target.matches("input[type=range]") && event.key !== "?") return;
    if (document.querySelector("dialog[open]")) return;
    if (!controlFor(event.key)) return;
    event.preventDefault();
    if (event.repeat && queuedKeys.length) return; // a held key steps as fast as steps come, never runs on after release
    if (queuedKeys.length < MAX_QUEUED_KEYS) queuedKeys.push(event.key);
    pressQueuedKey();
  }

  function openHelp(event) {
    const button = event.target instanceof Element && event.target.closest("#help-button");
    if (!button) return;
    const dialog = document.getElementById("help");
    if (dialog && !dialog.open) dialog.showModal();
  }

  // ---------------------------------------------------------------- swaps

  let focusedId = null;

  function redraw() {
    drawTimeline();
    moveCursor();
    drawLatency();
    drawFrameGrid();
  }

  // A live room's event stream (hx-sse:connect) is a request that stays open: it never makes the keys wait.
  document.addEventListener("htmx:before:request", (event) => {
    if (!(event.target instanceof Element && event.target.hasAttribute("hx-sse:connect"))) setBusy(true);
  });
  document.addEventListener("htmx:before:swap", () => {
    const active = document.activeElement;
    const typing = active instanceof Element && active.matches(TYPING);
    if (typing) active.blur(); // a breakpoint typed in and sent: the stepping keys work again at once
    focusedId = active && active !== document.body && active.id && !typing ? active.id : null;
  });
  document.addEventListener("htmx:after:swap", () => {
    redraw();
    if (focusedId) {
      const again = document.getElementById(focusedId);
      if (again && again !== document.activeElement) again.focus({ preventScroll: true });
    }
    setBusy(false);
  });
  document.addEventListener("htmx:error", () => setBusy(false));
  document.addEventListener("keydown", onKey);
  document.addEventListener("click", openHelp);
  redraw(); // deferred scripts run after parsing, in order: Plotly is loaded and the DOM is complete
  document.documentElement.dataset.ready = "true"; // the keys are bound (tests wait for this)
})();
