// casescope pages: upload with progress polling. No framework, no CDN; text only via textContent.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const form = document.getElementById("upload-form");
  const statusEl = document.getElementById("upload-status");
  const progressEl = document.getElementById("progress");

  function say(el, text) { if (el) { el.textContent = text; } }

  async function poll(caseId, first, last) {
    const url = `/api/cases/${caseId}/progress?first_id=${first}&last_id=${last}`;
    for (;;) {
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) { say(progressEl, `progress unavailable (${r.status})`); return; }
      const p = await r.json();
      say(progressEl, `${p.done}/${p.total} files done, ${p.failed} failed, ` +
        `${p.events_done} events` + (p.searchable ? " — complete" : ""));
      if (p.searchable) { window.location.reload(); return; }
      await new Promise((ok) => setTimeout(ok, 1000));
    }
  }

  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const input = document.getElementById("upload-files");
      if (!input.files.length) { say(statusEl, "choose files first"); return; }
      const data = new FormData();
      for (const f of input.files) { data.append("files", f, f.name); }
      say(statusEl, `uploading ${input.files.length} files...`);
      const caseId = form.dataset.case;
      const r = await fetch(`/api/cases/${caseId}/files/upload`, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf },
      });
      const body = await r.json();
      if (!r.ok) { say(statusEl, `upload failed: ${body.detail}`); return; }
      say(statusEl, `${body.queued.length} queued, ${body.duplicates.length} duplicates, ` +
        `${body.empty.length} empty, ${body.rejected.length} rejected`);
      if (body.first_id !== null) { poll(caseId, body.first_id, body.last_id); }
    });
  }
})();
