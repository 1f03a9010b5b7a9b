// The forewarm dashboard (`GET /ui`): what an operator reads from the node's API, drawn.
"use strict";
// The token comes from the address's fragment (#token=..., never sent to the server in the
// URL) or the sign-in form, and stays in this tab's sessionStorage.
const params = new URLSearchParams(location.hash.slice(1));
if (params.get("token")) {
  sessionStorage.setItem("forewarm-token", params.get("token"));
  history.replaceState(null, "", location.pathname);
}
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
}

async function get(path) {
  const token = sessionStorage.getItem("forewarm-token");
  const r = await fetch(path, { headers: { authorization: "Bearer " + token } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(path + ": " + r.status + " " + (body.message || body.error || ""));
  return body;
}

function regions(c) {
  $("node").textContent = "node " + c.node + " in " + c.region + " · Raft " + c.state +
    (c.leader_name ? " · leader " + c.leader_name : " · no leader") + " · term " + c.term;
  const body = $("regions").tBodies[0];
  body.replaceChildren();
  for (const m of c.members) {
    const row = body.insertRow();
    row.className = "member";
    cell(row, m.name + (m.name === c.node ? " (this node)" : ""));
    cell(row, m.region);
    cell(row, m.name === c.leader_name && m.role !== "leader" ? m.role + ", leader" : m.role);
    cell(row, m.rtt_ms == null ? "–" : m.rtt_ms.toFixed(1), "num");
    cell(row, m.queue_ms == null ? "–" : m.queue_ms.toFixed(2), "num");
  }
}

function pool(p) {
  const body = $("pool").tBodies[0];
  body.replaceChildren();
  for (const c of p.containers) {
    const row = body.insertRow();
    row.className = "container";
    cell(row, c.tenant);
    cell(row, c.code);
    cell(row, c.class);
    cell(row, c.state);
    cell(row, c.prewarmed ? "yes" : "");
    cell(row, (c.idle_ms / 1000).toFixed(0), "num");
  }
  if (!p.containers.length) {
    const row = body.insertRow();
    cell(row, "no containers");
  }
}

function chart(h) {
  const svg = $("starts");
  svg.replaceChildren();
  const width = +svg.getAttribute("width"), height = +svg.getAttribute("height") - 16;
  const text = (x, y, anchor, words) => {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", x);
    t.setAttribute("y", y);
    t.setAttribute("text-anchor", anchor);
    t.setAttribute("font-size", "11");
    t.setAttribute("fill", "#5b6475");
    t.textContent = words;
    svg.appendChild(t);
  };
  const minutes = h.minutes;
  const top = Math.max(1, ...minutes.map((m) => m.cold + m.warm + m.prewarmed));
  const slot = width / Math.max(minutes.length, 1);
  const sums = { cold: 0, warm: 0, prewarmed: 0 };
  minutes.forEach((m, i) => {
    let y = height;
    for (const kind of ["warm", "prewarmed", "cold"]) {
      sums[kind] += m[kind];
      if (!m[kind]) continue;
      const h = (m[kind] / top) * (height - 10);
      y -= h;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", (i * slot + 1).toFixed(1));
      rect.setAttribute("y", y.toFixed(1));
      rect.setAttribute("width", Math.max(slot - 2, 1).toFixed(1));
      rect.setAttribute("height", h.toFixed(1));
      rect.setAttribute("class", kind);
      const title = document.createElementNS(SVG, "title");
      title.textContent = new Date(m.minute * 60000).toISOString().slice(11, 16) + " UTC: " + m[kind] + " " + kind;
      rect.appendChild(title);
      svg.appendChild(rect);
    }
  });
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("x1", 0);
  axis.setAttribute("x2", width);
  axis.setAttribute("y1", height + 0.5);
  axis.setAttribute("y2", height + 0.5);
  axis.setAttribute("stroke", "#9aa3b2");
  svg.appendChild(axis);
  text(0, height + 13, "start", "60 min ago");
  text(width, height + 13, "end", "now");
  text(0, 10, "start", top + " per minute");
  $("totals").textContent = "last hour: " + sums.cold + " cold, " + sums.warm + " warm, " + sums.prewarmed + " pre-warmed";
}

// One code type's minutes, the last hour and the 10 to come: bars of what ran, a line of what
// the model forecast from its latest training; a tick marks now.
function spark(c, nowMinute) {
  const width = 280, height = 36, first = nowMinute - 59, slot = width / 70;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("class", "spark");
  const forecast = c.model ? c.model.demand_per_min : [];
  const top = Math.max(1, ...c.ran.map((r) => r.count), ...forecast);
  const y = (v) => (height - 2 - (v / top) * (height - 4)).toFixed(1);
  for (const r of c.ran) {
    const rect = document.createElementNS(SVG, "rect");
    rect.setAttribute("x", ((r.minute - first) * slot).toFixed(1));
    rect.setAttribute("y", y(r.count));
    rect.setAttribute("width", Math.max(slot - 1, 1).toFixed(1));
    rect.setAttribute("height", (height - 2 - y(r.count)).toFixed(1));
    rect.setAttribute("class", "warm");
    svg.appendChild(rect);
  }
  const now = document.createElementNS(SVG, "line");
  now.setAttribute("x1", (60 * slot).toFixed(1));
  now.setAttribute("x2", (60 * slot).toFixed(1));
  now.setAttribute("y1", 0);
  now.setAttribute("y2", height);
  now.setAttribute("stroke", "#9aa3b2");
  now.setAttribute("stroke-dasharray", "2,2");
  svg.appendChild(now);
  if (c.model && forecast.length) {
    const points = forecast.map((v, i) => {
      const x = (c.model.trained_minute + i - first + 0.5) * slot;
      return Math.min(Math.max(x, 0), width).toFixed(1) + "," + y(v);
    });
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#d1495b");
    line.setAttribute("stroke-width", "1.5");
    line.setAttribute("class", "forecast");
    svg.appendChild(line);
  }
  return svg;
}

function codes(h) {
  const body = $("codes").tBodies[0];
  body.replaceChildren();
  const nowMinute = h.minutes.length ? h.minutes[h.minutes.length - 1].minute : 0;
  for (const c of h.codes) {
    const row = body.insertRow();
    row.className = "code";
    const m = c.model;
    cell(row, c.code);
    cell(row, m ? String(m.samples) : "no model yet", "num");
    cell(row, m ? m.peak_mib.p50.toFixed(1) + " / " + m.peak_mib.p99.toFixed(1) : "–", "num");
    cell(row, m ? m.duration_ms.p50.toFixed(1) : "–", "num");
    cell(row, m && m.cold_start_ms != null ? m.cold_start_ms.toFixed(0) : "–", "num");
    row.insertCell().appendChild(spark(c, nowMinute));
  }
  if (!h.codes.length) {
    const row = body.insertRow();
    cell(row, "nothing ran here in the last hour");
  }
}

function remote(h) {
  const body = $("remote").tBodies[0];
  body.replaceChildren();
  for (const m of h.members) {
    const busy = m.busy || {};
    const starting = m.starting || {};
    const prewarmed = m.prewarmed || {};
    const codes = [...new Set([...Object.keys(m.idle), ...Object.keys(busy),
      ...Object.keys(starting)])].sort();
    const classes = (held, code) => (held[code] || []).join(", ");
    for (const code of codes.length ? codes : [null]) {
      const row = body.insertRow();
      row.className = "remote";
      cell(row, m.node);
      cell(row, m.region);
      cell(row, code || "no container");
      cell(row, code ? classes(m.idle, code) : "");
      cell(row, code ? String(prewarmed[code] || 0) : "", "num");
      cell(row, code ? classes(busy, code) : "");
      cell(row, code ? classes(starting, code) : "");
      cell(row, String(m.age_ms), "num");
    }
  }
  if (!h.members.length) {
    const row = body.insertRow();
    cell(row, "no other member");
  }
}

function routes(h) {
  const body = $("routes").tBodies[0];
  body.replaceChildren();
  for (const r of h.routes) {
    const row = body.insertRow();
    row.className = "route";
    cell(row, new Date(r.at_ms).toISOString().slice(11, 19));
    cell(row, r.code);
    cell(row, r.node);
    cell(row, r.region);
    cell(row, r.start);
    cell(row, r.latency_ms.toFixed(1), "num");
    cell(row, r.why);
  }
  if (!h.routes.length) {
    const row = body.insertRow();
    cell(row, "none yet");
  }
}

async function refresh() {
  if (!sessionStorage.getItem("forewarm-token")) {
    $("signin").hidden = false;
    return;
  }
  try {
    const [c, p, h] = await Promise.all([get("/v1/cluster"), get("/v1/pool"), get("/v1/history")]);
    regions(c);
    pool(p);
    chart(h);
    routes(h);
    codes(h);
    remote(h);
    $("error").textContent = "";
    $("signin").hidden = true;
  } catch (e) {
    $("error").textContent = String(e.message || e);
    $("signin").hidden = false;
  }
}

$("signin").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("forewarm-token", $("token").value);
  refresh();
});
refresh();
setInterval(refresh, 5000);
