// The stepping page's D console (templates/partials/console.html). The editor is static/trace.js's, shared with
// the trace page: line numbers, the error's line and column marked, Ctrl+Enter, the example scripts, the charts.
// This file only joins the console to the stepper:
//  - the program is sent with the page's run parameters as the URL holds them at that moment, so it traces the
//    run the stepper shows (the form's hidden fields serve a browser without JavaScript);
//  - a trace is not a step: the stepper's keys do not wait for it, and the editor keeps its focus after it;
//  - output from an earlier run is marked as such once the stepper shows another run;
//  - "Open on the trace page" carries the editor's program and the stepper's command line.
(function () {
  "use strict";

  const OWN_PARAMETERS = ["script", "quiet"]; // the console's; the rest of the query is the stepping page's
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

  form.addEventListener("htmx:after:swap", () => {
    if (refocus && document.activeElement !== editor) editor.focus({ preventScroll: true });
    refocus = false;
  });

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
