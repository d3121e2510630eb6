// Timeline: matches per time bucket on a linear time axis, drawn as SVG from
// GET /api/cases/{id}/histogram (the search's own parameters). Drag to zoom (sets start/end
// in the URL), click a bar to narrow to it, hover for the count; a table lists every bucket.
// No framework, no CDN; every text goes in through textContent or setAttribute.
"use strict";
(function () {
  const section = document.getElementById("timeline");
  if (!section) { return; }
  const NS = "http://www.w3.org/2000/svg";
  const chart = document.getElementById("timeline-chart");
  const meta = document.getElementById("timeline-meta");
  const tbody = document.querySelector("#timeline-table tbody");
  const HEIGHT = 180;
  const M = { left: 64, right: 16, top: 12, bottom: 46 };
  const DRAG_PX = 4;
  let data = null;

  function svg(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) { node.setAttribute(key, String(value)); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function say(text) {
    chart.replaceChildren();
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = text;
    chart.appendChild(p);
  }

  function rangeUrl(startMs, endMs) {
    const url = new URL(section.dataset.nav, window.location.origin);
    url.searchParams.set("start", new Date(startMs).toISOString().replace(".000Z", "Z"));
    url.searchParams.set("end", new Date(endMs).toISOString().replace(".000Z", "Z"));
    return url.pathname + url.search;
  }

  function fillTable() {
    tbody.replaceChildren();
    for (const b of data.buckets) {
      const tr = document.createElement("tr");
      const when = document.createElement("td");
      const link = document.createElement("a");
      link.href = rangeUrl(Date.parse(b.start), Date.parse(b.end));
      link.textContent = b.label;
      when.appendChild(link);
      const count = document.createElement("td");
      count.textContent = b.events.toLocaleString("en");
      tr.append(when, count);
      tbody.appendChild(tr);
    }
  }

  function geometry(width) {
    const first = Date.parse(data.buckets[0].start);
    const last = Date.parse(data.buckets[data.buckets.length - 1].end);
    const plotW = width - M.left - M.right;
    const plotH = HEIGHT - M.top - M.bottom;
    const top = Math.max(1, data.max_events);
    return {
      first, last, plotW, plotH,
      x: (t) => M.left + ((t - first) / (last - first)) * plotW,
      t: (x) => first + ((Math.min(Math.max(x, M.left), M.left + plotW) - M.left) / plotW) * (last - first),
      y: (n) => M.top + plotH - (n / top) * plotH,
    };
  }

  function axes(root, g, width) {
    const base = M.top + g.plotH;
    root.appendChild(svg("line", { class: "axis", x1: M.left, x2: width - M.right, y1: base, y2: base }));
    root.appendChild(svg("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: base }));
    for (const n of [0, data.max_events]) {
      root.appendChild(svg("text", { class: "tick-label", x: M.left - 6, y: g.y(n) + 4, "text-anchor": "end" },
        n.toLocaleString("en")));
    }
    root.appendChild(svg("text", { class: "axis-title", x: 12, y: M.top + g.plotH / 2, "text-anchor": "middle",
      transform: `rotate(-90 12 ${M.top + g.plotH / 2})` }, "events"));
    for (const tick of data.ticks) {
      const x = g.x(Date.parse(tick.at));
      root.appendChild(svg("line", { class: "tick", x1: x, x2: x, y1: base, y2: base + 5 }));
      root.appendChild(svg("text", { class: "tick-label", x, y: base + 18, "text-anchor": "middle" }, tick.label));
    }
    root.appendChild(svg("text", { class: "axis-title", x: M.left + g.plotW / 2, y: HEIGHT - 6, "text-anchor": "middle" },
      `time (${data.tz}), ${data.bucket} per bar`));
  }

  function bars(root, g) {
    const group = svg("g", { class: "bars" });
    data.buckets.forEach((b, i) => {
      if (!b.events) { return; }
      const x0 = g.x(Date.parse(b.start));
      const x1 = g.x(Date.parse(b.end));
      const y = g.y(b.events);
      const rect = svg("rect", { class: "bar", x: x0, y, width: Math.max(1, x1 - x0 - 1),
        height: Math.max(1, M.top + g.plotH - y), "data-i": i });
      rect.appendChild(svg("title", {}, `${b.label}: ${b.events.toLocaleString("en")} events`));
      group.appendChild(rect);
    });
    root.appendChild(group);
  }

  function bucketAt(g, x) {
    const t = g.t(x);
    return data.buckets.findIndex((b) => Date.parse(b.start) <= t && t < Date.parse(b.end));
  }

  function readout(text) {
    let out = document.getElementById("timeline-readout");
    if (!out) {
      out = document.createElement("p");
      out.id = "timeline-readout";
      out.className = "timeline-readout";
      out.setAttribute("aria-live", "polite");
      chart.after(out);
    }
    out.textContent = text;
  }

  function interact(root, g) {
    const overlay = svg("rect", { class: "overlay", x: M.left, y: M.top, width: g.plotW, height: g.plotH });
    const brush = svg("rect", { class: "brush", x: 0, y: M.top, width: 0, height: g.plotH, visibility: "hidden" });
    root.append(brush, overlay);
    let from = null;
    const localX = (ev) => ev.clientX - root.getBoundingClientRect().left;
    overlay.addEventListener("pointerdown", (ev) => {
      from = localX(ev);
      overlay.setPointerCapture(ev.pointerId);
    });
    overlay.addEventListener("pointermove", (ev) => {
      const x = localX(ev);
      const i = bucketAt(g, x);
      if (i >= 0) {
        const b = data.buckets[i];
        readout(`${b.label}: ${b.events.toLocaleString("en")} events (${data.bucket})`);
      }
      if (from === null) { return; }
      brush.setAttribute("x", Math.min(from, x));
      brush.setAttribute("width", Math.abs(x - from));
      brush.setAttribute("visibility", "visible");
    });
    overlay.addEventListener("pointerup", (ev) => {
      if (from === null) { return; }
      const x = localX(ev);
      const start = from;
      from = null;
      if (Math.abs(x - start) >= DRAG_PX) {
        const lo = Math.floor(g.t(Math.min(start, x)) / 1000) * 1000;
        const hi = Math.ceil(g.t(Math.max(start, x)) / 1000) * 1000;
        window.location.assign(rangeUrl(lo, Math.max(hi, lo + 1000)));
        return;
      }
      const i = bucketAt(g, x);
      if (i >= 0) {
        const b = data.buckets[i];
        window.location.assign(rangeUrl(Date.parse(b.start), Date.parse(b.end)));
      }
    });
  }

  function draw() {
    if (!data || !data.buckets.length) { return; }
    const width = Math.max(360, chart.clientWidth);
    const g = geometry(width);
    const root = svg("svg", { class: "timeline-svg", width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`,
      role: "img", "aria-label": `${data.total.toLocaleString("en")} events over time, ${data.bucket} per bar; the table below lists the counts` });
    axes(root, g, width);
    bars(root, g);
    interact(root, g);
    chart.replaceChildren(root);
  }

  async function load() {
    const response = await fetch(section.dataset.src, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) { say(`timeline unavailable: ${body.detail || response.status}`); return; }
    data = body;
    const untimed = data.untimed ? `, ${data.untimed.toLocaleString("en")} without a time (not drawn)` : "";
    meta.textContent = data.buckets.length
      ? `(${data.total.toLocaleString("en")} events, ${data.bucket} per bar, ${data.tz}${untimed})`
      : `(no event with a time${untimed})`;
    if (!data.buckets.length) { say("No matching event has a time."); return; }
    draw();
    fillTable();
    section.dataset.ready = "1";
  }

  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(draw, 150);
  });
  load().catch((err) => say(`timeline unavailable: ${err}`));
})();
