// Levee's live dashboard: reads /dashboard/stream (server-sent events,
// fetched so that the admin token can go in a header), keeps the last ten
// minutes per site and draws them with uPlot. Every value from the stream
// is put in the page as text, never as HTML: rule values and User-Agents
// come from attackers.
"use strict";
const OUTCOMES = ["origin", "cache", "challenged", "solved", "rate_limited", "blocked", "shed", "cut"];
const COLOURS = ["#2f7d32", "#66bb6a", "#f9a825", "#1e88e5", "#ef6c00", "#c62828", "#8e24aa", "#6d4c41"];
const KEEP = 600;
const SOLVE_BOUNDS = [1, 2, 3, 5, 10, 30, 60, 300]; // levee_incident::SOLVE_BUCKETS_S
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("levee-token") || "";
let sites = {};     // name -> {t:[], counts:[[]...], p50:[], p99:[], e5xx:[], modes:[]}
let current = null; // the site shown
let last = null;    // the last snapshot
let snapshots = 0;
let abort = null;
let plots = {};

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function table(id, head, rows) {
  const t = $(id);
  t.replaceChildren();
  const tr = el("tr");
  head.forEach((h) => tr.appendChild(el("th", h)));
  t.appendChild(tr);
  if (!rows.length) {
    const r = el("tr");
    const c = el("td", "none", "muted");
    c.colSpan = head.length;
    r.appendChild(c);
    t.appendChild(r);
  }
  rows.forEach((cells) => {
    const r = el("tr");
    cells.forEach((c) => r.appendChild(c instanceof Node ? wrap(c) : el("td", c)));
    t.appendChild(r);
  });
}

function wrap(node) {
  const td = el("td");
  td.appendChild(node);
  return td;
}

function authHeaders() {
  return token ? { Authorization: "Bearer " + token } : {};
}

async function act(method, path) {
  const r = await fetch(path, { method, headers: authHeaders(), cache: "no-store" });
  let text = await r.text();
  try { text = JSON.stringify(JSON.parse(text)); } catch (_) { /* as it is */ }
  $("msg").textContent = method + " " + path + ": " + r.status + " " + text;
  return r.status;
}

function button(label, onclick) {
  const b = el("button", label, "action");
  b.addEventListener("click", onclick);
  return b;
}

function site(name) {
  if (!sites[name]) {
    sites[name] = { t: [], counts: OUTCOMES.map(() => []), p50: [], p99: [], e5xx: [], modes: [], solves: [] };
  }
  return sites[name];
}

function absorb(s) {
  const d = site(s.name);
  for (const sec of s.seconds) {
    if (d.t.length && sec.t <= d.t[d.t.length - 1]) continue;
    d.t.push(sec.t);
    sec.counts.forEach((n, i) => d.counts[i].push(n));
    d.p50.push(sec.p50_ms);
    d.p99.push(sec.p99_ms);
    d.e5xx.push(sec.e5xx);
    d.modes.push(sec.mode);
    d.solves.push(sec.solves || []);
  }
  while (d.t.length > KEEP) {
    d.t.shift(); d.counts.forEach((c) => c.shift()); d.p50.shift(); d.p99.shift(); d.e5xx.shift(); d.modes.shift(); d.solves.shift();
  }
}

function plot(id, series, data, axes) {
  const box = $(id);
  const width = Math.max(300, box.clientWidth - 4);
  if (!plots[id] || plots[id].width !== width) {
    if (plots[id]) plots[id].u.destroy();
    const u = new uPlot({ width, height: 200, series, axes, scales: { x: { time: true } }, legend: { live: false } }, data, box);
    plots[id] = { u, width };
  } else {
    plots[id].u.setData(data);
  }
}

function draw() {
  const d = current && sites[current];
  if (!d) return;
  // Stacked: each series is the sum of those below it, drawn largest first.
  const stacked = [];
  let acc = d.t.map(() => 0);
  d.counts.forEach((c) => { acc = acc.map((v, i) => v + c[i]); stacked.push(acc); });
  const series = [{}];
  const data = [d.t];
  for (let i = OUTCOMES.length - 1; i >= 0; i--) {
    series.push({ label: OUTCOMES[i], stroke: COLOURS[i], fill: COLOURS[i], width: 1 });
    data.push(stacked[i]);
  }
  plot("rps", series, data, [{}, { size: 60 }]);
  plot("lat", [{}, { label: "p50", stroke: "#64b5f6" }, { label: "p99", stroke: "#1e88e5", width: 2 },
    { label: "5xx/s", stroke: "#c62828", scale: "e" }], [d.t, d.p50, d.p99, d.e5xx],
  [{}, { size: 60 }, { side: 1, scale: "e", grid: { show: false } }]);
  document.body.dataset.points = String(d.t.length);
  const m = $("modes");
  m.replaceChildren();
  d.modes.slice(-300).forEach((mode, i, all) => {
    const s = el("span", null, "m-" + mode);
    s.title = new Date(d.t[d.t.length - all.length + i] * 1000).toISOString() + " " + mode;
    m.appendChild(s);
  });
}

function render(v) {
  last = v;
  $("edge").textContent = "edge " + v.edge;
  $("who").textContent = v.authorized ? "operator (token accepted)" : (v.token_configured ? "read-only: give the admin token to act" : "read-only: no [admin] token is configured");
  const sel = $("site");
  if (sel.options.length !== v.sites.length) {
    sel.replaceChildren();
    v.sites.forEach((s) => sel.appendChild(el("option", s.name)));
  }
  if (!current && v.sites.length) current = v.sites[0].name;
  sel.value = current;
  const s = v.sites.find((x) => x.name === current);
  if (!s) return;
  const d = site(s.name);
  $("mode").textContent = s.mode;
  $("mode").className = "mode-" + s.mode;
  $("pinned").textContent = s.pinned ? "pinned by an operator" : "automatic";
  const n = d.t.length;
  $("rate").textContent = n ? d.counts.reduce((a, c) => a + c[n - 1], 0) : 0;
  $("conns").textContent = v.connections;
  const win = (i) => d.counts[i].slice(-300).reduce((a, b) => a + b, 0);
  const issued = win(2), solved = win(3);
  $("funnel").textContent = issued ? Math.round(100 * solved / issued) + "% solved" : "–";
  const hist = [];
  d.solves.slice(-300).forEach((h) => h.forEach((n, i) => { hist[i] = (hist[i] || 0) + n; }));
  const total = hist.reduce((a, b) => a + (b || 0), 0);
  let acc = 0, median = null;
  hist.forEach((n, i) => { acc += n || 0; if (median === null && total && acc * 2 >= total) median = i; });
  const med = median === null ? "" : (median < SOLVE_BOUNDS.length ? ", median ≤ " + SOLVE_BOUNDS[median] + " s" : ", median > 5 min");
  $("funnel2").textContent = issued + " challenged, " + solved + " solved" + med;
  if (s.incident) {
    const el2 = Math.max(0, Math.round(v.t_ms / 1000 - s.incident.opened_s));
    $("incident").textContent = s.incident.id;
    $("incident2").textContent = "since " + new Date(s.incident.opened_s * 1000).toISOString().slice(11, 19) + " UTC, " + el2 + " s, peak " + Math.round(s.incident.peak_rps) + " req/s";
  } else {
    $("incident").textContent = "none";
    $("incident2").textContent = "";
  }
  table("rules", ["id", "action", "on", "value", "evidence", "matches"].concat(v.authorized ? [""] : []),
    s.rules.map((r) => {
      const e = r.evidence || {};
      const row = [r.id, r.action, r.dim, r.value,
        Math.round(100 * (e.attack_share || 0)) + "% of attack, " + Math.round(100 * (e.baseline_share || 0)) + "% normal, " + (e.basis || ""), r.matches];
      if (v.authorized) row.push(button("drop", () => act("DELETE", "/rules?site=" + encodeURIComponent(s.name) + "&id=" + r.id)));
      return row;
    }));
  table("origins", ["origin", "up", "in flight", "limit", "waiting", "shed", "requests"],
    s.origins.map((o) => [o.name, o.up ? "up" : "DOWN", o.outstanding, o.limit, o.waiting, o.shed, o.requests]));
  for (const k of ["prefix", "path", "user_agent", "ja4"]) {
    const rows = s.top[k];
    table("top-" + k, [k.replace("_", "-"), "share"], rows === null ? [[el("span", "give the admin token to see these", "muted"), ""]]
      : rows.map(([label, share]) => [label, (100 * share).toFixed(1) + "%"]));
  }
  table("xdp", ["counter", "value"], Object.entries(v.xdp || {}).map(([k, x]) => [k, x]));
  if (v.blocks === null) {
    table("blocks", ["block"], [[el("span", "give the admin token to see these", "muted")]]);
  } else {
    table("blocks", ["cidr", "expires in", ""], v.blocks.map((b) => [b.cidr, b.expires_in_s + " s",
      button("remove", () => act("DELETE", "/blocks?cidr=" + encodeURIComponent(b.cidr)))]));
  }
  fleet(v.fleet || { enabled: false });
  actions(v.authorized);
  draw();
}

// Every edge of the fleet with what its heartbeat said of this site.
function fleet(f) {
  if (!f.enabled || !Array.isArray(f.edges)) {
    table("fleet", ["fleet"], [[f.enabled ? "no edge heard from yet" : "not in fleet mode ([fleet])"]]);
    return;
  }
  let total = 0;
  const rows = f.edges.map((e) => {
    const s = ((e.said || {}).sites || {})[current] || {};
    total += s.rate || 0;
    return [e.name, e.live ? "live" : "silent", s.mode || "–", Math.round(s.rate || 0), s.rules === undefined ? "–" : s.rules];
  });
  rows.push(["fleet", "", "", Math.round(total), ""]);
  table("fleet", ["edge", "heartbeat", "mode", "req/s", "rules"], rows);
}

function actions(on) {
  const box = $("actions");
  if (!on) {
    box.hidden = true;
    box.querySelectorAll(".action-row").forEach((e) => e.remove());
    return;
  }
  box.hidden = false;
  if (box.querySelector(".action-row")) return;
  const row = el("div", null, "action-row");
  const mode = el("select", null, "action");
  mode.id = "pin-mode";
  ["under_attack", "elevated", "normal", "auto"].forEach((m) => mode.appendChild(el("option", m)));
  row.append("Pin the mode: ", mode, " ", button("Pin", () =>
    act("POST", "/mode?site=" + encodeURIComponent(current) + "&mode=" + mode.value)));
  const cidr = el("input", null, "action");
  cidr.id = "block-cidr";
  cidr.placeholder = "192.0.2.0/24";
  const ttl = el("input", null, "action");
  ttl.id = "block-ttl";
  ttl.value = "3600";
  ttl.size = 6;
  row.append(el("br"), "Block: ", cidr, " for ", ttl, " s ", button("Block", () =>
    act("POST", "/blocks?cidr=" + encodeURIComponent(cidr.value) + "&ttl=" + encodeURIComponent(ttl.value))));
  box.insertBefore(row, $("msg"));
}

async function connect() {
  if (abort) abort.abort();
  abort = new AbortController();
  const mine = abort;
  try {
    const r = await fetch("/dashboard/stream", { headers: authHeaders(), cache: "no-store", signal: mine.signal });
    if (!r.ok || !r.body) throw new Error("stream: " + r.status);
    $("live").className = "on";
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const chunk = buf.slice(0, i);
        buf = buf.slice(i + 2);
        for (const line of chunk.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const v = JSON.parse(line.slice(6));
          v.sites.forEach(absorb);
          snapshots += 1;
          document.body.dataset.snapshots = String(snapshots);
          render(v);
        }
      }
    }
  } catch (e) {
    if (mine.signal.aborted) return;
  }
  $("live").className = "";
  setTimeout(() => { if (abort === mine) connect(); }, 2000);
}

$("use").addEventListener("click", () => {
  token = $("token").value.trim();
  sessionStorage.setItem("levee-token", token);
  $("token").value = "";
  sites = {};
  connect();
});
$("forget").addEventListener("click", () => {
  token = "";
  sessionStorage.removeItem("levee-token");
  sites = {};
  connect();
});
$("site").addEventListener("change", (e) => { current = e.target.value; if (last) render(last); });
window.addEventListener("resize", () => draw());
connect();
