// Instant steps on the stepping page (issue 15.1), beside static/trapscope.js:
//  - the steps a reader is likely to ask for next (the next few, the previous one) are fetched ahead, with the
//    very headers a step control's htmx request sends, and their answers kept here: that request is then answered
//    from memory, without the round trip through the browser's network process (10-20 ms a step on a busy
//    laptop, even from its HTTP cache). A step's answer is a pure function of its URL (`Cache-Control: public,
//    max-age=600`, app/fragments.py), so it is kept no longer than the browser would keep it;
//  - a single step (→ ←, the scrubber) replaces the browser-history entry instead of adding one, so Back leaves
//    the walk rather than undoing it step by step; jumps (run to, a stop, a breakpoint, the timeline) still add
//    one. The URL names the step either way.
(function () {
  "use strict";

  const PANEL_HEADERS = { "HX-Request": "true", "HX-Target": "section#step-panel", Accept: "text/html" };
  const AHEAD = 3; // steps fetched ahead of the current one, so a held arrow key finds each next step ready
  const KEPT = 128; // answers kept (a dd step panel is ~30 KB), the oldest dropped first
  const KEPT_MS = 600 * 1000; // as long as the answer's max-age lets the browser keep it
  const SINGLE_STEPS = "#step-forward, #step-back, #scrubber";
  const answers = new Map(); // absolute URL -> {at, answer: a promise of {status, headers, text}, or null}

  function absolute(url) {
    return new URL(url, location.href).href;
  }

  function kept(url) {
    const key = absolute(url);
    const entry = answers.get(key);
    if (!entry || Date.now() - entry.at <= KEPT_MS) return entry;
    answers.delete(key);
    return undefined;
  }

  function prefetch(url) {
    if (!url || kept(url)) return;
    if (answers.size >= KEPT) answers.delete(answers.keys().next().value);
    const key = absolute(url);
    const answer = fetch(url, { headers: PANEL_HEADERS, credentials: "same-origin" })
      .then(async (response) => (response.ok ? { status: response.status, headers: [...response.headers], text: await response.text() } : null))
      .catch(() => null); // offline or refused: the control's own request will say so
    answers.set(key, { at: Date.now(), answer });
    answer.then((got) => {
      if (!got && answers.get(key) && answers.get(key).answer === answer) answers.delete(key);
    });
  }

  // A step control's request for a step fetched ahead is answered from memory (still on its way: when it comes).
  document.addEventListener("htmx:before:request", (event) => {
    const ctx = event.detail && event.detail.ctx;
    if (!ctx || ctx.request.method !== "GET" || ctx.request.headers["HX-Target"] !== PANEL_HEADERS["HX-Target"]) return;
    const entry = kept(ctx.request.action);
    if (!entry) return;
    const network = ctx.fetch;
    ctx.fetch = (action, request) =>
      entry.answer.then((got) => (got ? new Response(got.text, { status: got.status, headers: got.headers }) : network(action, request)));
  });

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
