// Jobs page: live progress of each unfinished operation over Server-Sent Events, and a
// confirmation before a cancel. The browser resumes a dropped stream with Last-Event-ID;
// text only via textContent.
"use strict";
(function () {
  const table = document.getElementById("operations");
  if (!table) { return; }
  for (const form of table.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (ev) => {
      if (!window.confirm(form.dataset.confirm)) { ev.preventDefault(); }
    });
  }
  if (typeof EventSource === "undefined") { return; }
  const caseId = table.dataset.case;
  const SHOWN = { pause: ["running"], resume: ["paused"], cancel: ["running", "paused"] };

  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return ""; }
    const s = Math.round(seconds);
    return s >= 60 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${s}s`;
  }

  function set(row, selector, text) {
    const el = row.querySelector(selector);
    if (el) { el.textContent = text; }
  }

  function update(row, p) {
    set(row, ".state", p.state);
    set(row, ".percent", `${p.percent}%`);
    const bar = row.querySelector("progress");
    if (bar) { bar.value = p.percent; }
    set(row, ".files", `${p.files_done} done, ${p.files_failed} failed, ` +
      `${p.files_cancelled} cancelled, ${p.files_paused} paused ` +
      `(${p.files_finished}/${p.files_total} finished)`);
    set(row, ".events", String(p.events));
    set(row, ".rate", `${p.files_per_second} files/s, ${p.events_per_second} events/s`);
    set(row, ".eta", duration(p.eta_seconds));
    for (const form of row.querySelectorAll("form[data-action]")) {
      const action = form.dataset.action;
      form.querySelector("button").hidden = action === "retry"
        ? !p.files_retryable
        : !SHOWN[action].includes(p.state);
    }
    row.dataset.finished = p.finished ? "true" : "false";
  }

  for (const row of table.querySelectorAll("tr[data-op]")) {
    if (row.dataset.finished === "true") { continue; }
    const url = `/api/cases/${caseId}/operations/${row.dataset.op}/events`;
    const source = new EventSource(url);
    source.addEventListener("progress", (ev) => {
      const p = JSON.parse(ev.data);
      update(row, p);
      if (p.finished) { source.close(); }
    });
  }
})();
