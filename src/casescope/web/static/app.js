// casescope pages: uploads with byte progress (each file and the total), then the new files
// in the evidence table at once, their rows updated live while they are processed (the
// operation's Server-Sent Events say when; polling without them). No framework, no CDN;
// text only via textContent.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const form = document.getElementById("upload-form");
  const statusEl = document.getElementById("upload-status");
  const progressEl = document.getElementById("progress");
  const listEl = document.getElementById("upload-list");
  const totalBar = document.getElementById("upload-total");
  const table = document.getElementById("file-table");
  const TERMINAL = ["completed", "failed", "cancelled", "rejected"];

  function say(el, text) { if (el) { el.textContent = text; } }

  // as the server writes sizes (casescope/units.py human_size): 1024 steps, "912 bytes", "1.4 MB"
  function human(bytes) {
    const units = ["bytes", "KB", "MB", "GB", "TB", "PB"];
    let n = bytes, i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return i ? `${n.toLocaleString("en-US", {minimumFractionDigits: 1, maximumFractionDigits: 1})} ${units[i]}`
      : `${Math.trunc(n).toLocaleString("en-US")} ${units[i]}`;
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }

  // One line per file: name, bar, bytes sent.
  function fileItems(files) {
    listEl.replaceChildren();
    return Array.from(files, (f) => {
      const bar = el("progress"); bar.max = f.size || 1; bar.value = 0;
      const text = el("span", `0 B / ${human(f.size)}`, "bytes");
      const item = el("li"); item.append(el("span", f.name, "name"), " ", bar, " ", text);
      listEl.append(item);
      return { size: f.size, bar, text };
    });
  }

  // The body is the files in order (plus small multipart headers): bytes sent map to files.
  function showBytes(items, loaded, total, started) {
    const sizes = items.reduce((sum, it) => sum + it.size, 0);
    const scale = total > 0 ? sizes / total : 1;
    let offset = 0;
    for (const it of items) {
      const done = Math.max(0, Math.min(it.size, loaded * scale - offset));
      it.bar.value = done;
      it.text.textContent = `${human(done)} / ${human(it.size)}`;
      offset += it.size;
    }
    totalBar.max = total || 1; totalBar.value = loaded; totalBar.hidden = false;
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? `, ${human(loaded / seconds)}/s` : "";
    say(statusEl, `uploading: ${human(loaded)} of ${human(total)}${rate}`);
  }

  // A completed file whose events the index owner has not loaded yet is not searchable yet:
  // shown as "indexing" until it is (as the server draws it, evidence.html).
  function shownStatus(f) {
    return f.status === "completed" && f.index_state === "pending" ? "indexing" : f.status;
  }

  function cells(f) {
    const shown = shownStatus(f);
    const warnings = (f.warnings || "").split("\n").filter(Boolean);
    const bar = el("progress"); bar.max = 100; bar.value = f.percent;
    return [
      ["", null], [String(f.id)], [f.name, "name"], [f.file_type], [human(f.size_bytes), "size"],
      [shown + (f.hidden ? " (hidden)" : ""), `status status-${shown}`], [bar],
      [String(f.event_count || f.events_processed), "events"],
      [f.error || warnings[0] || "", "err"],
    ];
  }

  function upsert(f) {
    const tbody = table.tBodies[0];
    let row = tbody.querySelector(`tr[data-id="${f.id}"]`);
    const fresh = !row;
    if (fresh) {
      row = el("tr"); row.dataset.id = String(f.id);
      tbody.querySelectorAll("tr:not([data-id])").forEach((r) => r.remove());  // "No files yet."
      tbody.append(row);
    }
    row.className = f.hidden ? "hidden-file" : "";
    const parts = cells(f);
    parts.forEach(([value, cls], i) => {
      let td = row.children[i];
      if (!td) { td = el("td"); row.append(td); }
      if (cls) { td.className = cls; }
      if (i === 0) {
        if (fresh && document.getElementById("file-actions")) {
          const box = el("input"); box.type = "checkbox"; box.name = "file_ids";
          box.value = String(f.id); box.setAttribute("form", "file-actions");
          box.setAttribute("aria-label", `select file ${f.id}`);
          td.append(box);
        }
      } else if (value instanceof Node) {
        td.replaceChildren(value);
      } else {
        td.textContent = value;
      }
    });
  }

  function follow(caseId, first, last, operationId) {
    let from = first, busy = false, again = false, source = null, indexing = false,
      timer = null;
    async function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      try {
        const url = `/api/cases/${caseId}/files/rows?first_id=${from}&last_id=${last}`;
        const r = await fetch(url, { credentials: "same-origin" });
        if (!r.ok) { say(progressEl, `progress unavailable (${r.status})`); return; }
        const rows = await r.json();
        rows.forEach(upsert);
        const open = rows.filter((f) => !TERMINAL.includes(shownStatus(f)));
        const done = rows.length - open.length;
        indexing = open.some((f) => shownStatus(f) === "indexing");
        say(progressEl, `${done} of ${rows.length} new files finished`);
        if (open.length) { from = open[0].id; } else if (rows.length) { from = rows[rows.length - 1].id + 1; }
        if (from > last) {
          say(progressEl, "every new file is processed and searchable");
          if (source) { source.close(); }
          return;
        }
      } finally { busy = false; }
      if (again) { again = false; refresh(); }
      // loading into the index sends no operation event: poll while nothing else will come
      if ((!source || indexing) && !timer) {
        timer = setTimeout(() => { timer = null; refresh(); }, 1000);
      }
    }
    if (operationId !== null && typeof EventSource !== "undefined") {
      source = new EventSource(`/api/cases/${caseId}/operations/${operationId}/events`);
      source.addEventListener("progress", refresh);
    }
    refresh();
  }

  function send(caseId, data, items) {
    const xhr = new XMLHttpRequest();
    const started = performance.now();
    xhr.open("POST", `/api/cases/${caseId}/files/upload`);
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) { showBytes(items, ev.loaded, ev.total, started); }
    });
    xhr.addEventListener("error", () => say(statusEl, "upload failed: the connection was lost"));
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = { detail: xhr.statusText }; }
      if (xhr.status !== 200) { say(statusEl, `upload failed: ${body.detail}`); return; }
      say(statusEl, `uploaded: ${body.queued.length} queued, ${body.duplicates.length} ` +
        `duplicates, ${body.empty.length} empty, ${body.rejected.length} rejected`);
      const ids = body.queued.concat(body.empty);
      if (ids.length) {
        follow(caseId, Math.min(...ids), Math.max(...ids), body.operation_id);
      }
    });
    xhr.send(data);
  }

  if (form && table) {
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const input = document.getElementById("upload-files");
      if (!input.files.length) { say(statusEl, "choose files first"); return; }
      const data = new FormData();
      for (const f of input.files) { data.append("files", f, f.name); }
      send(form.dataset.case, data, fileItems(input.files));
    });
  }
})();
