// The trace page's browser glue. The server renders the D output, the figures' JSON and every fragment; this file
//  - draws each Plotly figure the page carries (<div data-figure="ID"> + <script type="application/json" id="ID">),
//  - keeps the D editor's line numbers, marks the line and column a compile error names, and traces on Ctrl+Enter,
//  - loads an example into the editor and traces it.
// The flame graph is static/flame.js's.
(function () {
  "use strict";

  // ---- figures

  function drawFigures(root) {
    for (const host of root.querySelectorAll("[data-figure]")) {
      if (host.dataset.drawn) continue;
      const source = document.getElementById(host.dataset.figure);
      if (!source) continue;
      const figure = JSON.parse(source.textContent);
      host.dataset.drawn = "true";
      Plotly.newPlot(host, figure.data, figure.layout, figure.config);
    }
  }

  // ---- the D editor

  function editor() {
    return document.getElementById("d-script");
  }

  function errorPosition() {
    const panel = document.getElementById("trace-error");
    if (!panel || panel.hidden || !panel.dataset.line) return null;
    return { line: Number(panel.dataset.line), column: Number(panel.dataset.column || 1) };
  }

  function renderGutter() {
    const text = editor();
    const gutter = document.getElementById("d-gutter");
    if (!text || !gutter) return;
    const lines = text.value.split("\n").length;
    const error = errorPosition();
    gutter.replaceChildren();
    for (let n = 1; n <= lines; n++) {
      const number = document.createElement("span");
      number.textContent = String(n);
      if (error && error.line === n) {
        number.className = "error-line";
        number.title = `line ${n}, column ${error.column}: see the message below`;
      }
      gutter.append(number, "\n");
    }
    gutter.scrollTop = text.scrollTop;
    text.closest(".d-editor").classList.toggle("has-error", Boolean(error));
  }

  function markError() {
    renderGutter();
    const error = errorPosition();
    const text = editor();
    if (!error || !text) return;
    const lines = text.value.split("\n");
    const line = Math.min(Math.max(error.line, 1), lines.length);
    let offset = 0;
    for (let i = 0; i < line - 1; i++) offset += lines[i].length + 1;
    offset += Math.min(Math.max(error.column - 1, 0), lines[line - 1].length);
    text.focus();
    text.setSelectionRange(offset, Math.min(offset + 1, text.value.length));
  }

  function setUpEditor() {
    const text = editor();
    const form = document.getElementById("trace-form");
    if (!text || !form) return;
    text.addEventListener("input", renderGutter);
    text.addEventListener("scroll", () => {
      document.getElementById("d-gutter").scrollTop = text.scrollTop;
    });
    text.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    document.addEventListener("click", (event) => {
      const link = event.target instanceof Element && event.target.closest("a[data-example]");
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      text.value = new URL(link.href).searchParams.get("script") || "";
      for (const other of document.querySelectorAll("a[data-example]")) other.removeAttribute("aria-current");
      link.setAttribute("aria-current", "true");
      renderGutter();
      form.requestSubmit();
    });
    markedPanel = document.getElementById("trace-error");
    markError();
  }

  // The form's empty fields (no baseline, -q off) stay out of the URL, which is the page's state.
  document.addEventListener("htmx:config:request", (event) => {
    const request = event.detail.ctx.request;
    if (!request.body || !(event.target instanceof Element) || event.target.id !== "trace-form") return;
    for (const [name, value] of [...request.body.entries()]) if (value === "") request.body.delete(name);
  });

  // Mark an error once, when its panel arrives, so a later swap elsewhere does not move the editor's cursor.
  let markedPanel = null;
  document.addEventListener("htmx:after:swap", () => {
    drawFigures(document);
    const panel = document.getElementById("trace-error");
    if (panel !== markedPanel) {
      markedPanel = panel;
      markError();
    }
  });
  setUpEditor();
  drawFigures(document); // deferred scripts run after parsing, in order: Plotly is loaded and the DOM is complete
})();
