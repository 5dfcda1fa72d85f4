// Embedding the stepper in slides (issue 15.5).
//  - The "Embed code…" dialog: the iframe snippet for the step on screen (the embed link's URL, made absolute,
//    and a title naming the scenario), with a Copy button. /oembed (app/routes_embed.py) answers the same snippet.
//  - In an embed (?embed=1), a small postMessage API for the deck around it (reveal.js, a web page):
//      frame.contentWindow.postMessage({ trapscope: "next" }, "*")   // also "previous", "next-stop",
//                                                                     // "previous-stop", "first", "last"
//      frame.contentWindow.postMessage({ trapscope: "step", step: 42 }, "*")
//    and after each step the frame tells its parent where it is:
//      { trapscope: "state", step, lastStep, stop, url }
//    Only the frame's own parent is listened to; every action is a step a reader could take with a key, so any
//    origin may send them (a deck opened as a file has the origin "null").
(function () {
  "use strict";

  const CONTROLS = {
    next: "#step-forward",
    previous: "#step-back",
    "next-stop": "#stop-next",
    "previous-stop": "#stop-previous",
    first: "#step-reset",
    last: "#run-end",
  };
  const SIZE = { width: 960, height: 540 };

  const escapeHtml = (text) =>
    text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  // Written as text: an element with a style attribute, even one never shown, would break the page's CSP.
  function snippet() {
    const link = document.getElementById("embed-link");
    const heading = document.querySelector(".scenario-title");
    const title = `trapscope: ${heading ? heading.textContent.trim() : document.title}`;
    const src = new URL(link.getAttribute("href"), location.href).href;
    return (
      `<iframe src="${escapeHtml(src)}" title="${escapeHtml(title)}" width="${SIZE.width}" height="${SIZE.height}" ` +
      'style="border:0" allowfullscreen></iframe>'
    );
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const dialog = document.getElementById("embed-code");
    if (!target || !dialog) return;
    if (target.closest("#embed-code-button")) {
      document.getElementById("embed-code-text").value = snippet();
      document.getElementById("embed-code-status").textContent = "";
      dialog.showModal();
      document.getElementById("embed-code-text").select();
    } else if (target.closest("#embed-code-copy")) {
      const text = document.getElementById("embed-code-text").value;
      const status = document.getElementById("embed-code-status");
      navigator.clipboard.writeText(text).then(
        () => (status.textContent = "Copied."),
        () => (status.textContent = "Select the code and copy it (Ctrl+C): the browser refused the clipboard."),
      );
    }
  });

  // ---------------------------------------------------------------- the embed's postMessage API

  const stepper = document.getElementById("stepper");
  if (!stepper || !stepper.classList.contains("embed") || window.parent === window) return;

  function goToStep(step) {
    const forward = document.querySelector("#step-forward[hx-get], #step-back[hx-get]");
    if (!forward || !Number.isInteger(step) || step < 0) return;
    const url = forward.getAttribute("hx-get").replace(/([?&]step=)\d+/, `$1${step}`);
    htmx.ajax("GET", url, { target: "#step-panel", swap: "outerMorph", headers: { "HX-Target": "section#step-panel" } });
  }

  window.addEventListener("message", (event) => {
    const message = event.data;
    if (event.source !== window.parent || !message || typeof message.trapscope !== "string") return;
    if (message.trapscope === "step") goToStep(message.step);
    else if (CONTROLS[message.trapscope]) {
      const control = document.querySelector(`a${CONTROLS[message.trapscope]}`);
      if (control) control.click();
    } else if (message.trapscope === "state") tellParent();
  });

  function tellParent() {
    const panel = document.getElementById("step-panel");
    if (!panel) return;
    window.parent.postMessage(
      {
        trapscope: "state",
        step: Number(panel.dataset.step),
        lastStep: Number(panel.dataset.lastStep),
        stop: panel.dataset.stop || null,
        url: location.pathname + location.search,
      },
      "*", // the deck's origin is not known (a file's is "null"); the state is what the frame shows anyway
    );
  }

  document.addEventListener("htmx:after:swap", tellParent);
  tellParent();
})();
