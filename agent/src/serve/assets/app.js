// autoarch dashboard: table sorting and filtering without a reload, and live updates over
// server-sent events. Data from the server is only ever set as text (textContent), never as
// markup; the plots the server draws are parsed as SVG and adopted whole.
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function num(x, digits) {
  if (x === null || x === undefined || !isFinite(x)) return "–";
  return Number(x).toFixed(digits === undefined ? 4 : digits);
}

function grouped(x) {
  if (x === null || x === undefined || !isFinite(x)) return "–";
  return Math.round(x).toLocaleString("en-US");
}

function link(href, text) {
  const a = el("a", text);
  a.href = href;
  return a;
}

// ---------------------------------------------------------------- candidates table

function candidateRow(r) {
  const tr = el("tr");
  tr.dataset.id = r.id;
  const cells = [
    [r.rank === null ? "–" : r.rank, "num"],
    [null, ""],
    [r.name, ""],
    [r.status, ""],
    [r.proposer + (r.model ? " (" + r.model + ")" : ""), ""],
    [r.family, ""],
    [r.fidelity, "num"],
    [num(r.score), "num"],
    [num(r.short_score), "num"],
    [num(r.val_loss), "num"],
    [grouped(r.params), "num"],
    [grouped(r.flops), "num"],
  ];
  cells.forEach(function (c, i) {
    const td = el("td", i === 1 ? null : c[0], c[1]);
    if (i === 1) td.appendChild(link("/candidate/" + r.id, "#" + r.id));
    tr.appendChild(td);
  });
  return tr;
}

function loadCandidates(params, push) {
  const query = params.toString();
  return fetch("/api/candidates?" + query, { headers: { Accept: "application/json" } })
    .then(function (res) {
      if (!res.ok) throw new Error("the server answered " + res.status);
      return res.json();
    })
    .then(function (page) {
      const body = document.querySelector("#candidates tbody");
      body.replaceChildren.apply(body, page.rows.map(candidateRow));
      const count = document.getElementById("count");
      if (count) count.textContent = page.total + " shown";
      const info = document.getElementById("pageinfo");
      if (info) info.textContent = "page " + page.page + " of " + page.pages;
      document.querySelectorAll("#candidates th a").forEach(function (a) {
        const key = a.dataset.sort;
        a.classList.remove("sorted", "asc", "desc");
        if (key === page.sort) {
          a.classList.add("sorted", page.descending ? "desc" : "asc");
        }
      });
      document.body.dataset.sort = page.sort + ":" + (page.descending ? "desc" : "asc");
      if (push) history.replaceState(null, "", "/candidates?" + query);
    });
}

function setupCandidates() {
  const table = document.getElementById("candidates");
  const form = document.getElementById("filters");
  if (!table || !form) return;
  table.querySelectorAll("th a[data-sort]").forEach(function (a) {
    a.addEventListener("click", function (ev) {
      ev.preventDefault();
      const params = new URLSearchParams(location.search);
      const key = a.dataset.sort;
      const sorted = document.body.dataset.sort || "";
      const current = sorted.split(":");
      let dir = "";
      if (current[0] === key) dir = current[1] === "desc" ? "asc" : "desc";
      params.set("sort", key);
      if (dir) params.set("dir", dir); else params.delete("dir");
      params.delete("page");
      const hiddenSort = form.querySelector("input[name=sort]");
      loadCandidates(params, true).catch(function () { location.href = a.href; });
      if (hiddenSort) hiddenSort.value = key;
    });
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    const params = new URLSearchParams();
    new FormData(form).forEach(function (v, k) {
      if (String(v) !== "") params.set(k, String(v));
    });
    loadCandidates(params, true).catch(function () { form.submit(); });
  });
  const first = table.querySelector("th a.sorted");
  if (first) {
    document.body.dataset.sort = first.dataset.sort + ":" + (first.classList.contains("desc") ? "desc" : "asc");
  }
}

// ---------------------------------------------------------------- live overview

function adoptSvg(figureId, markup) {
  const figure = document.getElementById(figureId);
  if (!figure || !markup) return;
  const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
  if (doc.querySelector("parsererror")) return;
  figure.replaceChildren(document.importNode(doc.documentElement, true));
}

function fillCounts(id, pairs) {
  const table = document.getElementById(id);
  if (!table) return;
  table.replaceChildren.apply(table, pairs.map(function (p) {
    const tr = el("tr");
    tr.appendChild(el("td", p[0]));
    tr.appendChild(el("td", p[1], "num"));
    return tr;
  }));
}

function refreshOverview() {
  fetch("/api/overview").then(function (r) { return r.json(); }).then(function (v) {
    document.body.dataset.version = v.version;
    const status = document.getElementById("status");
    if (status) { status.textContent = v.status; status.className = "badge " + v.status; }
    const fresh = document.getElementById("freshness");
    if (fresh) fresh.textContent = v.note;
    const total = document.getElementById("total");
    if (total) total.textContent = v.counts.total;
    fillCounts("counts", v.counts.by_status);
    fillCounts("outcomes", v.counts.by_outcome);
    const best = document.getElementById("best");
    if (best && v.best) {
      best.replaceChildren(link("/candidate/" + v.best.id, "#" + v.best.id + " " + v.best.name),
        document.createTextNode(" · score "), el("span", num(v.best.score), "num"));
    }
    const body = document.querySelector("#latest tbody");
    if (body) {
      body.replaceChildren.apply(body, v.latest.map(function (r) {
        const tr = el("tr");
        tr.dataset.id = r.id;
        const first = el("td");
        first.appendChild(link("/candidate/" + r.id, "#" + r.id));
        tr.appendChild(first);
        [r.name, r.status, r.outcome || "–", r.fidelity].forEach(function (t) { tr.appendChild(el("td", t)); });
        tr.appendChild(el("td", num(r.score), "num"));
        tr.appendChild(el("td", grouped(r.params), "num"));
        return tr;
      }));
    }
    const updated = document.getElementById("updated");
    if (updated) updated.textContent = "updated " + new Date().toLocaleTimeString();
  });
  fetch("/api/plots").then(function (r) { return r.json(); }).then(function (p) {
    adoptSvg("plot-time", p.by_time);
    adoptSvg("plot-compute", p.by_compute);
  });
}

function addEvent(message) {
  const log = document.getElementById("events");
  if (!log) return;
  const li = el("li");
  li.appendChild(el("span", "run", "kind"));
  li.appendChild(document.createTextNode(" " + message));
  log.insertBefore(li, log.firstChild);
  while (log.children.length > 60) log.removeChild(log.lastChild);
}

function setupLive() {
  if (!window.EventSource) return;
  const source = new EventSource("/events");
  source.addEventListener("update", function (ev) {
    const v = JSON.parse(ev.data).version;
    if (document.body.dataset.page === "overview") refreshOverview();
    else {
      const fresh = document.getElementById("freshness");
      if (fresh) fresh.textContent = "new results: reload to see them (view " + v + ")";
    }
  });
  source.addEventListener("event", function (ev) {
    addEvent(JSON.parse(ev.data).message);
  });
}

document.addEventListener("DOMContentLoaded", function () {
  setupCandidates();
  setupLive();
});
