// Search page: the field sidebar (fields of the results, their top values), the menu on every
// value (filter for / filter out / search everywhere, through the server's pivot route, which
// writes the query-language clause), column toggles, and field-name completion in the query
// box. No framework, no CDN; data goes in only through textContent, setAttribute and URLs.
"use strict";
(function () {
  const results = document.getElementById("results");
  const sidebar = document.getElementById("fields");
  const menu = document.getElementById("pivot-menu");
  const query = document.getElementById("q");
  const COLUMNS = [["computer", "computer"], ["event_id", "EventID"], ["channel", "channel"],
    ["provider", "provider"], ["user_name", "user"], ["level", "level"]];
  const OPEN_AT_START = new Set(["event_id", "computer"]);
  const PAGE_STATE = ["cursor", "direction", "at", "size"];

  function node(tag, className, text) {
    const el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) { throw new Error(body.detail || String(response.status)); }
    return body;
  }

  // ------------------------------------------------------------------ the pivot menu
  function pivotUrl(button, mode) {
    const url = new URL(results.dataset.pivot, window.location.origin);
    url.searchParams.set("field", button.dataset.field);
    url.searchParams.set("source", button.dataset.source);
    url.searchParams.set("value", JSON.parse(button.dataset.value));
    url.searchParams.set("mode", mode);
    return url.pathname + url.search;
  }

  function openMenu(button) {
    const shown = JSON.parse(button.dataset.value);
    document.getElementById("pivot-what").textContent =
      `${button.dataset.field}: ${shown.length > 80 ? shown.slice(0, 80) + "…" : shown}`;
    const filterable = button.dataset.filterable === "1";
    for (const mode of ["for", "out", "everywhere"]) {
      const item = document.getElementById(`pivot-${mode}`);
      item.href = pivotUrl(button, mode);
      item.hidden = mode !== "everywhere" && !filterable;
    }
    const everywhere = document.getElementById("pivot-everywhere");
    everywhere.hidden = shown === "";
    const box = button.getBoundingClientRect();
    menu.style.left = `${Math.round(box.left + window.scrollX)}px`;
    menu.style.top = `${Math.round(box.bottom + window.scrollY + 2)}px`;
    menu.hidden = false;
    const first = menu.querySelector("a:not([hidden])");
    if (first) { first.focus(); }
  }

  function closeMenu() { if (menu) { menu.hidden = true; } }

  if (menu) {
    document.addEventListener("click", (ev) => {
      const button = ev.target.closest("button.pv");
      if (button) { ev.preventDefault(); openMenu(button); return; }
      if (!menu.contains(ev.target)) { closeMenu(); }
    });
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape") { closeMenu(); } });
  }

  // ------------------------------------------------------------------ the field sidebar
  function pageUrl(change) {
    const url = new URL(window.location.href);
    for (const name of PAGE_STATE) { url.searchParams.delete(name); }
    change(url.searchParams);
    return url.pathname + url.search;
  }

  function columnToggle(name) {
    const current = (new URLSearchParams(window.location.search).get("columns") || "")
      .split(",").filter((c) => c);
    const shown = current.includes(name);
    const link = node("a", "col-toggle", shown ? "− column" : "+ column");
    link.href = pageUrl((params) => {
      const next = shown ? current.filter((c) => c !== name) : [...current, name];
      if (next.length) { params.set("columns", next.join(",")); } else { params.delete("columns"); }
    });
    link.setAttribute("aria-label", `${shown ? "remove" : "add"} column ${name}`);
    return link;
  }

  function valueButton(field, source, value, filterable) {
    const button = node("button", "pv", value === null ? "(none)" : String(value));
    button.type = "button";
    if (value === null) { button.disabled = true; return button; }
    button.dataset.field = field;
    button.dataset.source = source;
    button.dataset.value = JSON.stringify(String(value));
    if (filterable) { button.dataset.filterable = "1"; }
    button.setAttribute("aria-haspopup", "menu");
    return button;
  }

  async function loadValues(details) {
    const box = details.querySelector(".values");
    if (details.dataset.loaded) { return; }
    details.dataset.loaded = "1";
    const url = `${sidebar.dataset.facets}&field=${encodeURIComponent(details.dataset.field)}&limit=10`;
    try {
      const rows = await getJson(url);
      box.replaceChildren();
      if (!rows.length) { box.appendChild(node("p", "muted", "no values")); return; }
      const list = node("ul", "facet-values");
      const top = Math.max(...rows.map((r) => r.events));
      for (const row of rows) {
        const li = node("li");
        li.append(valueButton(details.dataset.field, details.dataset.source, row.value,
          details.dataset.filterable === "1"));
        const meter = node("meter");
        meter.max = top;
        meter.value = row.events;
        li.append(" ", node("span", "count", row.events.toLocaleString("en")), meter);
        list.appendChild(li);
      }
      box.appendChild(list);
      if (rows[0].sample) {
        box.appendChild(node("p", "muted sample-note", `sample: counted over the first ${rows[0].sample.toLocaleString("en")} matches`));
      }
    } catch (err) {
      box.replaceChildren(node("p", "error", `values unavailable: ${err.message}`));
    }
  }

  function fieldEntry(name, label, source, count, filterable) {
    const details = node("details", "field");
    details.dataset.field = name;
    details.dataset.source = source;
    if (filterable) { details.dataset.filterable = "1"; }
    const summary = node("summary");
    summary.append(node("span", "field-name", label));
    if (count !== null) { summary.append(" ", node("span", "count", count.toLocaleString("en"))); }
    details.append(summary);
    if (source === "field") { details.append(columnToggle(name)); }
    details.append(node("div", "values"));
    details.addEventListener("toggle", () => { if (details.open) { loadValues(details); } });
    return details;
  }

  async function loadSidebar() {
    const list = document.getElementById("field-list");
    const note = document.getElementById("fields-note");
    for (const [name, label] of COLUMNS) {
      const entry = fieldEntry(name, label, "column", null, true);
      list.appendChild(entry);
      if (OPEN_AT_START.has(name)) { entry.open = true; }
    }
    try {
      const found = await getJson(sidebar.dataset.fields);
      note.textContent = found.sample
        ? `Event fields of the first ${found.sample.toLocaleString("en")} matches (sample); click a field for its top values.`
        : "Event fields of the matches; click a field for its top values.";
      for (const f of found.fields) {
        list.appendChild(fieldEntry(f.name, f.name, "field", f.events, f.filterable));
      }
      sidebar.dataset.ready = "1";
    } catch (err) {
      note.textContent = `fields unavailable: ${err.message}`;
    }
  }

  if (sidebar && results) { loadSidebar(); }

  // ------------------------------------------------------------------ field-name completion
  let names = null;
  const suggest = document.getElementById("q-suggest");
  let active = -1;

  async function loadNames() {
    if (names !== null) { return names; }
    names = query.dataset.core.split(" ").map((n) => ({ name: n, events: null }));
    try {
      const found = await getJson(query.dataset.names);
      names = names.concat(found.fields.map((f) => ({ name: f.name, events: f.events })));
      const datalist = document.getElementById("field-names");
      for (const f of found.fields) { const o = document.createElement("option"); o.value = f.name; datalist.appendChild(o); }
    } catch (err) { /* completion is a convenience: the core names still complete */ }
    return names;
  }

  function currentWord() {
    const before = query.value.slice(0, query.selectionStart);
    const match = /(^|[\s(!-])([A-Za-z_@][A-Za-z0-9_.@-]*)$/.exec(before);
    return match ? { word: match[2], start: before.length - match[2].length } : null;
  }

  function hideSuggest() {
    suggest.hidden = true;
    active = -1;
    query.setAttribute("aria-expanded", "false");
    query.removeAttribute("aria-activedescendant");
  }

  function accept(name) {
    const at = currentWord();
    if (!at) { return; }
    const end = query.selectionStart;
    query.value = query.value.slice(0, at.start) + name + ":" + query.value.slice(end);
    const caret = at.start + name.length + 1;
    query.setSelectionRange(caret, caret);
    hideSuggest();
    query.focus();
  }

  function mark(index) {
    const items = suggest.querySelectorAll("li");
    items.forEach((li, i) => li.setAttribute("aria-selected", i === index ? "true" : "false"));
    active = index;
    if (index >= 0) { query.setAttribute("aria-activedescendant", items[index].id); }
  }

  async function showSuggest() {
    const all = await loadNames();
    const at = currentWord();  // after the wait: the text as it is now, not as it was
    if (!at) { hideSuggest(); return; }
    const lower = at.word.toLowerCase();
    const hits = all.filter((n) => n.name.toLowerCase().startsWith(lower) && n.name !== at.word).slice(0, 10);
    suggest.replaceChildren();
    if (!hits.length) { hideSuggest(); return; }
    hits.forEach((n, i) => {
      const li = node("li", "", n.name);
      li.id = `q-suggest-${i}`;
      li.setAttribute("role", "option");
      if (n.events !== null) { li.append(" ", node("span", "count", n.events.toLocaleString("en"))); }
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); accept(n.name); });
      suggest.appendChild(li);
    });
    suggest.hidden = false;
    query.setAttribute("aria-expanded", "true");
    mark(-1);
  }

  if (query && suggest) {
    query.addEventListener("input", showSuggest);
    query.addEventListener("blur", () => setTimeout(hideSuggest, 100));
    query.addEventListener("keydown", (ev) => {
      if (suggest.hidden) { return; }
      const items = suggest.querySelectorAll("li");
      if (ev.key === "ArrowDown") { ev.preventDefault(); mark((active + 1) % items.length); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); mark((active - 1 + items.length) % items.length); }
      else if ((ev.key === "Enter" || ev.key === "Tab") && active >= 0) {
        ev.preventDefault();
        accept(items[active].firstChild.textContent);
      } else if (ev.key === "Escape") { hideSuggest(); }
    });
  }
})();
