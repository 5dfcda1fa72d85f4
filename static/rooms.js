// Live rooms' browser glue (app/routes_rooms.py). The server renders everything and htmx's SSE extension swaps
// what a room broadcasts; this file only
//  - tells the room where the lecturer's page is after each step (POST /rooms/CODE/drive), one report at a time;
//  - turns a follower's own step into a branch: the follow bar (and its event stream) gives way to the explore
//    bar, whose j key re-joins;
//  - draws the tally figures (Plotly) a question box carries as JSON, shows the QR dialog (q), and says when the
//    stream to the room is reconnecting;
//  - in the lecturer's bar: asks before ending the room, keeps projector mode across a scenario switch, and copies
//    the lecturer's link without showing it.
(function () {
  "use strict";

  function bar() {
    return document.getElementById("room-bar");
  }

  // ---------------------------------------------------------------- the lecturer drives

  let reported = null; // the URL the room last heard from this page
  let reporting = false;

  function here() {
    return location.pathname + location.search;
  }

  function report() {
    const room = bar();
    if (!room || room.dataset.role !== "lead" || reporting || here() === reported) return;
    const url = here();
    reporting = true;
    fetch(`/rooms/${encodeURIComponent(room.dataset.room)}/drive`, {
      method: "POST",
      body: new URLSearchParams({ url }),
      credentials: "same-origin",
    })
      .then((response) => {
        if (response.ok) reported = url;
      })
      .catch(() => {})
      .finally(() => {
        reporting = false;
        if (here() !== reported) setTimeout(report, 200); // the lecturer moved on meanwhile: report the latest
      });
  }

  // ---------------------------------------------------------------- a follower branches off

  function branch(event) {
    const room = bar();
    const source = event.target;
    if (!room || room.dataset.role !== "follow" || !(source instanceof Element)) return;
    if (!source.closest("#stepper")) return; // the follower's own step, view or run: not the room's broadcast
    htmx.ajax("GET", `/rooms/${encodeURIComponent(room.dataset.room)}/bar`, { target: "#room-bar", swap: "outerHTML" });
  }

  function setStatus(text, live) {
    const status = document.getElementById("room-status");
    if (!status) return;
    status.textContent = text;
    status.classList.toggle("live", live);
  }

  // ---------------------------------------------------------------- tallies and the QR dialog

  function drawTallies() {
    if (typeof Plotly === "undefined") return;
    for (const tally of document.querySelectorAll(".room-tally")) {
      const chart = tally.querySelector(".tally-chart");
      const source = tally.querySelector(".tally-figure");
      if (!chart || !source) continue;
      const figure = JSON.parse(source.textContent);
      if (figure) Plotly.react(chart, figure.data, figure.layout, figure.config);
    }
  }

  function openQr(event) {
    const button = event.target instanceof Element && event.target.closest("#room-qr-button");
    const dialog = document.getElementById("room-qr");
    if (button && dialog && !dialog.open) dialog.showModal();
  }

  // ---------------------------------------------------------------- the lecturer's own bar

  // Ending the room is final for the whole class: the lecturer confirms it first.
  function confirmEnd(event) {
    const form = event.target instanceof HTMLFormElement && event.target.closest("form.room-end");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  }

  // The bar is not redrawn when the lecturer toggles projector mode (p): a scenario link takes the current mode.
  function keepMode(event) {
    const link = event.target instanceof Element && event.target.closest(".room-scenarios a");
    if (!link) return;
    const url = new URL(link.href);
    if (document.querySelector("#stepper.projector")) url.searchParams.set("mode", "projector");
    else url.searchParams.delete("mode");
    link.href = url.pathname + url.search;
  }

  // The lecturer's link goes to the clipboard without being shown (projector mode hides it).
  function copyLecturerLink(event) {
    if (!(event.target instanceof Element) || !event.target.closest("#room-copy-link")) return;
    const link = document.getElementById("room-lecturer-link");
    const status = document.getElementById("room-copy-status");
    const said = (text) => {
      if (status) status.textContent = text;
    };
    if (!link || !navigator.clipboard) {
      said("This browser cannot copy here: leave projector mode (p) to see the link.");
      return;
    }
    navigator.clipboard.writeText(link.value).then(
      () => said("Copied: paste it on the other device."),
      () => said("Not copied: leave projector mode (p) to see the link."),
    );
  }

  // htmx starts on a timer when its deferred script runs, so it may process the page before the SSE extension (a
  // later deferred script) has registered. The stream's element therefore names its URL in data-sse-connect, and
  // becomes an hx-sse:connect element once both have run (a timer set after theirs).
  function connectStreams() {
    for (const element of document.querySelectorAll("[data-sse-connect]:not([hx-sse\\:connect])")) {
      element.setAttribute("hx-sse:connect", element.dataset.sseConnect);
      htmx.process(element);
    }
  }

  document.addEventListener("DOMContentLoaded", () => setTimeout(connectStreams, 0));
  document.addEventListener("htmx:before:request", branch);
  document.addEventListener("htmx:after:swap", () => {
    drawTallies();
    report();
  });
  document.addEventListener("htmx:sse:after:connection", () => setStatus("live", true));
  document.addEventListener("htmx:sse:error", () => setStatus("reconnecting…", false));
  document.addEventListener("htmx:sse:close", (event) => {
    if (event.detail && event.detail.reason === "message") setStatus("ended", false);
  });
  document.addEventListener("click", openQr);
  document.addEventListener("click", keepMode);
  document.addEventListener("click", copyLecturerLink);
  document.addEventListener("submit", confirmEnd);
  const room = bar();
  if (room && room.dataset.roomUrl) reported = room.dataset.roomUrl;
  drawTallies();
  report();
})();
