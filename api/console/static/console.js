// The console's progressive enhancement: the pages work without it. It draws the queues page's
// live charts and moves a job's progress bar until the job ends. Served by the service (the
// Content-Security-Policy allows no inline or foreign script); it talks to the service only.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const KEEP = 90; // points per series: three minutes at the default refresh

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

async function getJson(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) { window.location.assign("/console/login"); return null; }
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

// A line chart of several series over their samples (the last KEEP), scaled to the largest value:
// the oldest sample on the left, the newest on the right.
function drawLines(svg, series) {
  const width = 360, height = 160, left = 36, bottom = 14, top = 8;
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const values = series.flatMap((s) => s.points);
  const high = Math.max(1, ...values);
  const samples = Math.max(2, ...series.map((s) => s.points.length));
  const y = (v) => height - bottom - (v / high) * (height - bottom - top);
  const x = (i) => left + (i / (samples - 1)) * (width - left - 4);
  svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: height - bottom, x2: width - 4, y2: height - bottom }));
  svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }));
  const label = svgElement("text", { x: left - 4, y: top + 8, "text-anchor": "end" });
  label.textContent = String(Math.round(high * 100) / 100);
  svg.appendChild(label);
  const zero = svgElement("text", { x: left - 4, y: height - bottom, "text-anchor": "end" });
  zero.textContent = "0";
  svg.appendChild(zero);
  series.forEach((s, n) => {
    if (!s.points.length) return;
    const offset = samples - s.points.length;
    const d = s.points.map((v, i) => `${i ? "L" : "M"}${x(i + offset).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const path = svgElement("path", { class: `line series-${n % 4}`, fill: "none", d });
    const title = svgElement("title", {});
    title.textContent = s.name;
    path.appendChild(title);
    svg.appendChild(path);
  });
  svg.dataset.samples = String(Math.max(0, ...series.map((s) => s.points.length)));
}

function startQueues(root) {
  const url = root.dataset.url;
  const every = Math.max(1, Number(root.dataset.refresh || 2)) * 1000;
  const history = { depth: {}, age: {}, rate: [], failed: [] };
  const push = (list, value) => { list.push(value); if (list.length > KEEP) list.shift(); };
  const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };

  async function tick() {
    try {
      const figures = await getJson(url);
      if (!figures) return;
      for (const shard of figures.shards) {
        push(history.depth[shard.shard] ||= [], shard.queued + shard.running);
        push(history.age[shard.shard] ||= [], shard.oldest_age_seconds);
        const row = document.querySelector(`#shards tr[data-shard="${shard.shard}"]`);
        if (row) {
          const cells = row.querySelectorAll("td");
          cells[1].textContent = shard.queued; cells[2].textContent = shard.running;
          cells[3].textContent = shard.oldest_age_seconds;
          cells[4].textContent = shard.messages === null ? "?" : shard.messages;
        }
      }
      push(history.rate, figures.jobs_per_second);
      push(history.failed, figures.failed_share * 100);
      text("jobs-per-second", figures.jobs_per_second);
      text("failed-share", `${(figures.failed_share * 100).toFixed(1)}%`);
      text("as-of", figures.at);
      const perShard = (data) => Object.entries(data).map(([shard, points]) => ({ name: `shard ${shard}`, points }));
      drawLines(document.getElementById("chart-depth"), perShard(history.depth));
      drawLines(document.getElementById("chart-age"), perShard(history.age));
      drawLines(document.getElementById("chart-rate"), [{ name: "jobs/s", points: history.rate }]);
      drawLines(document.getElementById("chart-failed"), [{ name: "failed %", points: history.failed }]);
      root.dataset.updated = figures.at;
    } catch (error) {
      root.dataset.error = String(error);
    }
  }
  tick();
  window.setInterval(tick, every);
}

function startProgress(root) {
  if (root.dataset.done === "true") return;
  const bar = document.getElementById("progress-bar");
  const status = document.getElementById("job-status");
  async function tick() {
    try {
      const answer = await getJson(root.dataset.url);
      if (!answer) return;
      const progress = answer.progress;
      status.textContent = progress.status;
      status.className = `status ${progress.status}`;
      if (progress.status === "running" || progress.done) bar.value = progress.percent;
      if (progress.done) {
        // The finished page lists the failed lines: drawn by the server, once.
        window.location.reload();
        return;
      }
    } catch (error) {
      root.dataset.error = String(error);
    }
    window.setTimeout(tick, 700);
  }
  window.setTimeout(tick, 300);
}

document.addEventListener("DOMContentLoaded", () => {
  const queues = document.getElementById("queues");
  if (queues) startQueues(queues);
  const progress = document.getElementById("job-progress");
  if (progress) startProgress(progress);
});
