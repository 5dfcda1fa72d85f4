// trapscope's browser glue. The server renders every step; this file only
//  - draws the Plotly figures a page carries as JSON (<script type="application/json">, never executed),
//  - moves the timeline's cursor to the step htmx has just swapped in (the panel's data-t-ns) and shows the
//    time around it (data-window: the server's choice, app/figures.py focus_window),
//  - maps keys to the controls that declare them with data-key (so a new control needs no new JS).
// It keeps no state of its own: the URL and the swapped-in HTML are the state.
(function () {
  "use strict";

  const CURSOR_SHAPE = 0; // app/figures.py: the cursor is the first shape of the timeline's layout
  const TYPING = "input, textarea, select, [contenteditable]";

  // The step the page shows: {t, window: [start, end]} from the step panel's data attributes.
  function currentStep() {
    const panel = document.getElementById("step-panel");
    if (!panel || !panel.dataset.tNs) return null;
    return { t: Number(panel.dataset.tNs), window: panel.dataset.window.split(" ").map(Number) };
  }

  function drawTimeline() {
    const host = document.getElementById("timeline");
    const source = document.getElementById("timeline-figure");
    if (!host || !source || host.dataset.drawn) return;
    const figure = JSON.parse(source.textContent);
    const step = currentStep();
    if (step) {
      figure.layout.shapes[CURSOR_SHAPE].x0 = step.t;
      figure.layout.shapes[CURSOR_SHAPE].x1 = step.t;
      figure.layout.xaxis.range = step.window;
    }
    Plotly.newPlot(host, figure.data, figure.layout, figure.config);
    host.dataset.drawn = "true";
  }

  function moveCursor() {
    const host = document.getElementById("timeline");
    const step = currentStep();
    if (!host || !host.dataset.drawn || !step) return;
    Plotly.relayout(host, {
      [`shapes[${CURSOR_SHAPE}].x0`]: step.t,
      [`shapes[${CURSOR_SHAPE}].x1`]: step.t,
      "xaxis.range": step.window,
    });
  }

  // Keys pressed while a step is on its way wait their turn, so four quick presses of → are four steps: pressing
  // again at once would click the old panel's link, which still points at the step already requested.
  const MAX_QUEUED_KEYS = 50;
  const queuedKeys = [];
  let busy = false;
  let busyTimer = 0;

  function setBusy(value) {
    busy = value;
    clearTimeout(busyTimer);
    if (busy) busyTimer = setTimeout(() => setBusy(false), 10000); // never wedge on a response that never came
    else pressQueuedKey();
  }

  function controlFor(key) {
    return document.querySelector(`[data-key~="${CSS.escape(key)}"]`);
  }

  function pressQueuedKey() {
    if (busy || !queuedKeys.length) return;
    const control = controlFor(queuedKeys.shift());
    if (!control) {
      queuedKeys.length = 0; // e.g. → at the last step: the rest would go nowhere either
      return;
    }
    setBusy(true);
    control.click();
  }

  function onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.target instanceof Element && event.target.closest(TYPING)) return;
    if (!controlFor(event.key)) return;
    event.preventDefault();
    if (queuedKeys.length < MAX_QUEUED_KEYS) queuedKeys.push(event.key);
    pressQueuedKey();
  }

  document.addEventListener("htmx:before:request", () => setBusy(true));
  document.addEventListener("htmx:after:swap", () => {
    moveCursor();
    setBusy(false);
  });
  document.addEventListener("htmx:error", () => setBusy(false));
  document.addEventListener("keydown", onKey);
  drawTimeline(); // deferred scripts run after parsing, in order: Plotly is loaded and the DOM is complete
})();
