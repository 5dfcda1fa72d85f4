// The stepping page's D console (templates/partials/console.html). The editor is static/trace.js's, shared with
// the trace page: line numbers, the error's line and column marked, Ctrl+Enter, the example scripts, the charts.
// This file only joins the console to the stepper:
//  - the program is sent with the page's run parameters as the URL holds them at that moment, so it traces the
//    run the stepper shows (the form's hidden fields serve a browser without JavaScript);
//  - a trace is not a step: the stepper's keys do not wait for it, and the editor keeps its focus after it;
//  - output from an earlier run is marked as such once the stepper shows another run;
//  - "Open on the trace page" carries the editor's program and the stepper's command line;
//  - a program traced is put in the page's URL (script=, quiet=) and kept there as the reader steps on (the
//    server's step URLs never carry it: they stay small and shared by every reader), so the page can be shared or
//    reloaded: it opens with the program in the editor (app/routes_console.py) and traces it again.
(function () {
  "use strict";

  const OWN_PARAMETERS = ["script", "quiet"]; // the console's; the rest of the query is the stepping page's
  const DISPLAY_PARAMETERS = ["step", "stop", "at", "views", "mode", "embed", "bp", "add_bp", "room"]; // not the run
  const form = document.getElementById("trace-form");
  const editor = document.getElementById("d-script");
  const openLink = document.getElementById("console-open-trace");
  if (!form || !editor || !openLink) return;
  let refocus = false;

  form.addEventListener("htmx:config:request", (event) => {
    const request = event.detail.ctx.request;
    for (const name of [...request.body.keys()]) if (!OWN_PARAMETERS.includes(name)) request.body.delete(name);
    const page = new URLSearchParams(location.search);
    for (const name of OWN_PARAMETERS) page.delete(name);
    const query = page.toString();
    request.action = form.getAttribute("hx-get") + (query ? `?${query}` : "");
  });

  // static/trapscope.js holds step keys while any request is out; a trace may take seconds and is not a step.
  form.addEventListener("htmx:before:request", (event) => {
    event.stopPropagation();
    refocus = document.activeElement === editor;
  });

  form.addEventListener("htmx:after:swap", (event) => {
    if (refocus && document.activeElement !== editor) editor.focus({ preventScroll: true });
    refocus = false;
    const ctx = event.detail && event.detail.ctx;
    if (ctx && ctx.response && ctx.response.status < 400) putProgramInUrl();
  });

  function putProgramInUrl() {
    const url = new URL(location.href);
    url.searchParams.set("script", editor.value);
    if (form.elements.quiet.checked) url.searchParams.set("quiet", "1");
    else url.searchParams.delete("quiet");
    history.replaceState(history.state, "", url.pathname + url.search);
  }

  // The run a stepping URL names: its query without the step, the display and the console's own parameters.
  function runOf(url) {
    const query = new URLSearchParams(url.search);
    for (const name of [...DISPLAY_PARAMETERS, ...OWN_PARAMETERS]) query.delete(name);
    return `${url.pathname}?${[...query].sort().join("&")}`;
  }

  // Another step of the same run (the server's URL for it) keeps the program the page's URL holds; another run
  // does not: the output shown is of the old one.
  document.addEventListener("htmx:before:history:update", (event) => {
    const history = event.detail.history;
    const here = new URL(location.href);
    const next = new URL(history.path, location.href);
    if (!here.searchParams.has("script") || runOf(next) !== runOf(here)) return;
    for (const name of OWN_PARAMETERS) {
      if (here.searchParams.has(name)) next.searchParams.set(name, here.searchParams.get(name));
    }
    history.path = next.pathname + next.search;
  });

  // Once htmx has taken the form (it does so after the deferred scripts have run): sent before, the program would
  // go to the trace page as a plain form's GET does.
  if (form.dataset.traceOnLoad) {
    if (form.hasAttribute("data-htmx-powered")) form.requestSubmit();
    else form.addEventListener("htmx:after:init", () => form.requestSubmit(), { once: true });
  }

  function markStale() {
    const results = document.getElementById("console-results");
    const stepper = document.getElementById("stepper");
    const note = document.getElementById("console-stale");
    if (!results || !stepper || !note) return;
    note.hidden = results.dataset.runId === stepper.dataset.runId;
  }

  document.addEventListener("htmx:after:swap", markStale);
  window.addEventListener("popstate", () => setTimeout(markStale, 0));

  // The toolbar's "Trace ▸" link always names the run the stepper shows; this link adds the program.
  function pointAtEditor() {
    const runLink = document.getElementById("trace-link");
    const url = new URL((runLink || openLink).href);
    url.searchParams.set("script", editor.value);
    if (form.elements.quiet.checked) url.searchParams.set("quiet", "1");
    else url.searchParams.delete("quiet");
    openLink.href = url.pathname + url.search;
  }

  for (const name of ["pointerenter", "focus", "click"]) openLink.addEventListener(name, pointAtEditor);
})();
