// The IPC lab page: run the chosen points one at a time (/api/lab/point), draw each as it comes.
(function () {
  "use strict";

  const traces = new Map(); // mode -> {x: sizes, y: KiB/s}

  function draw() {
    const host = document.getElementById("lab-chart");
    if (!host || typeof Plotly === "undefined") return;
    // New arrays each time: Plotly.react redraws only what it sees change.
    const data = Array.from(traces, ([mode, t]) => ({
      type: "scatter", mode: "lines+markers", name: mode, x: t.x.slice(), y: t.y.slice(),
      hovertemplate: "%{x:,} B: %{y:,.0f} KiB/s<extra>" + mode + "</extra>",
    }));
    const layout = {
      margin: { l: 80, r: 20, t: 40, b: 60 },
      xaxis: { type: "log", title: { text: "buffer size (bytes, log scale)" }, tickformat: "~s" },
      yaxis: { title: { text: "bandwidth (KiB/s)" }, rangemode: "tozero" },
      legend: { orientation: "h", x: 0, y: 1.12 },
      font: { size: 16 },
    };
    Plotly.react(host, data, layout, { responsive: true, displaylogo: false });
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function addRow(mode, size, result) {
    const row = document.createElement("tr");
    row.dataset.mode = mode;
    row.dataset.size = size;
    cell(row, mode);
    cell(row, size.toLocaleString("en"), "num");
    if (result.refused) {
      cell(row, result.refused, "refused").colSpan = 3;
    } else {
      cell(row, result.bandwidth_kib_s.toLocaleString("en", { maximumFractionDigits: 0 }), "num");
      cell(row, result.syscalls.toLocaleString("en"), "num");
      const link = document.createElement("a");
      link.href = result.trace_url;
      link.textContent = result.trace_total === 16777216 ? "trace" : `trace (-t ${result.trace_total.toLocaleString("en")})`;
      link.title = "DTrace over this point's command line";
      cell(row, "").appendChild(link);
    }
    document.querySelector("#lab-table tbody").appendChild(row);
  }

  async function sweep(event) {
    event.preventDefault();
    const form = event.target;
    const modes = Array.from(form.querySelectorAll("input[name=modes]:checked"), (i) => i.value);
    const sizes = Array.from(form.querySelectorAll("input[name=sizes]:checked"), (i) => Number(i.value));
    const profile = form.querySelector("select[name=profile]").value;
    const progress = document.getElementById("lab-progress");
    const button = document.getElementById("lab-run");
    traces.clear();
    document.querySelector("#lab-table tbody").replaceChildren();
    button.disabled = true;
    const total = modes.length * sizes.length;
    let done = 0;
    for (const mode of modes) {
      const [ipc, benchmarkMode] = mode.split(" ");
      traces.set(mode, { x: [], y: [] });
      for (const size of sizes) {
        progress.textContent = `running ${mode} at ${size.toLocaleString("en")} bytes (${done + 1} of ${total})…`;
        const query = new URLSearchParams({ ipc, mode: benchmarkMode, b: String(size), profile });
        const response = await fetch(`/api/lab/point?${query}`);
        const result = await response.json();
        if (!response.ok) {
          progress.textContent = result.detail || `the point failed (${response.status})`;
          button.disabled = false;
          return;
        }
        addRow(mode, size, result);
        if (!result.refused && result.bandwidth_kib_s !== null) {
          traces.get(mode).x.push(size);
          traces.get(mode).y.push(result.bandwidth_kib_s);
          draw();
        }
        done += 1;
      }
    }
    progress.textContent = `done: ${done} points`;
    button.disabled = false;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("lab-form");
    if (form) form.addEventListener("submit", sweep);
    draw();
  });
})();
