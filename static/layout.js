// One view at a time where the screen is small or far away (issue 15.2, issue 12 "Presenting" 3): in projector
// mode, on a phone and in an embed, static/layout.css shows only the view the step panel's data-focus names. The
// server proposes it (the first view shown, or the view a scenario's stop is about); the reader picks another
// with the buttons above the views or `v` (the next one), and that choice is kept across steps (on #stepper,
// which a step does not replace) until a stop names its own view.
(function () {
  "use strict";

  // `arrived`: a step (or the page) has just come in, so a stop's own view takes over from the reader's choice.
  function applyFocus(arrived) {
    const stepper = document.getElementById("stepper");
    const panel = document.getElementById("step-panel");
    if (!stepper || !panel) return;
    const buttons = [...panel.querySelectorAll("[data-focus-view]")];
    const offered = buttons.map((button) => button.dataset.focusView);
    const stop = panel.dataset.stopView;
    if (arrived && stop && offered.includes(stop)) stepper.dataset.focus = stop;
    const chosen = stepper.dataset.focus;
    if (chosen && offered.includes(chosen)) panel.dataset.focus = chosen;
    for (const button of buttons) {
      button.setAttribute("aria-pressed", String(button.dataset.focusView === panel.dataset.focus));
    }
  }

  function focusView(name) {
    const stepper = document.getElementById("stepper");
    if (!stepper) return;
    stepper.dataset.focus = name;
    applyFocus(false);
    window.dispatchEvent(new Event("resize")); // a figure shown again takes its size (Plotly's responsive figures)
  }

  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    const pick = target && target.closest("[data-focus-view]");
    if (pick) focusView(pick.dataset.focusView);
    else if (target && target.closest("#focus-next")) {
      const buttons = [...document.querySelectorAll("#step-panel [data-focus-view]")];
      const at = buttons.findIndex((button) => button.getAttribute("aria-pressed") === "true");
      if (buttons.length) focusView(buttons[(at + 1) % buttons.length].dataset.focusView);
    }
  });
  document.addEventListener("htmx:after:swap", () => applyFocus(true));
  applyFocus(true);
})();
