// Instant steps on the stepping page (issue 15.1), beside static/trapscope.js:
//  - the steps a reader is likely to ask for next (the next few, the previous one) are fetched ahead, with the
//    very headers a step control's htmx request sends, so that request is answered by the browser's HTTP cache
//    (a step's answer is `Cache-Control: public` and varies only on htmx's headers: app/fragments.py);
//  - a single step (→ ←, the scrubber) replaces the browser-history entry instead of adding one, so Back leaves
//    the walk rather than undoing it step by step; jumps (run to, a stop, a breakpoint, the timeline) still add
//    one. The URL names the step either way.
(function () {
  "use strict";

  const PANEL_HEADERS = { "HX-Request": "true", "HX-Target": "section#step-panel", Accept: "text/html" };
  const AHEAD = 3; // steps fetched ahead of the current one, so a held arrow key finds each next step ready
  const KEPT = 256; // URLs remembered as fetched (the browser keeps the answers; this only avoids asking twice)
  const SINGLE_STEPS = "#step-forward, #step-back, #scrubber";
  const fetched = new Set();

  function prefetch(url) {
    if (!url || fetched.has(url)) return;
    if (fetched.size >= KEPT) fetched.clear();
    fetched.add(url);
    fetch(url, { headers: PANEL_HEADERS, credentials: "same-origin" })
      .then((response) => response.text())
      .catch(() => fetched.delete(url)); // offline or refused: the control's own request will say so
  }

  // The URL of `step` in the form of `url` (a step control's, as the server wrote it): only the number changes,
  // so the URL is the one the control of that step will ask for, byte for byte.
  function withStep(url, step) {
    return /[?&]step=\d+/.test(url) ? url.replace(/([?&]step=)\d+/, `$1${step}`) : null;
  }

  function prefetchNeighbours() {
    const panel = document.getElementById("step-panel");
    const forward = document.querySelector("a#step-forward");
    const back = document.querySelector("a#step-back");
    if (!panel) return;
    const step = Number(panel.dataset.step);
    const last = Number(panel.dataset.lastStep);
    if (forward) {
      const url = forward.getAttribute("hx-get");
      for (let ahead = 1; ahead <= AHEAD && step + ahead <= last; ahead++) prefetch(withStep(url, step + ahead));
    }
    if (back) prefetch(back.getAttribute("hx-get"));
  }

  function whenIdle(callback) {
    if (window.requestIdleCallback) requestIdleCallback(callback, { timeout: 200 });
    else setTimeout(callback, 50);
  }

  document.addEventListener("htmx:before:history:update", (event) => {
    const { history, sourceElement } = event.detail;
    if (history.type === "push" && sourceElement instanceof Element && sourceElement.closest(SINGLE_STEPS)) {
      history.type = "replace";
    }
  });
  document.addEventListener("htmx:after:swap", () => whenIdle(prefetchNeighbours));
  whenIdle(prefetchNeighbours);
})();
