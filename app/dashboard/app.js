// partnerpulse dashboard: a live partner table (polled from /v1/partners),
// an alert feed (/v1/alerts, then the /v1/stream event stream) and a partner
// page with its daily pressure history drawn as a hand-made SVG chart.
//
// The stream is read with fetch() rather than EventSource so that the bearer
// token travels in the Authorization header (EventSource cannot set
// headers, and a token in the URL ends up in logs). Reconnection follows the
// SSE rules: wait `retry` ms, send Last-Event-ID, the server replays what
// was missed from its recent ring.
//
// Data from the server is only ever inserted with textContent: partner ids
// and summaries come from Kafka records, i.e. from other systems.
"use strict";

const FEED_MAX = 200;
const POLL_MS = 2000;

const state = {
  token: sessionStorage.getItem("pp-token") || "",
  lastEventId: null,
  seen: new Set(),
  retryMs: 3000,
  route: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function setStatus(text, st) {
  const s = $("status");
  s.textContent = text;
  s.dataset.state = st;
}

function headers() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

async function api(path) {
  const r = await fetch(path, { headers: headers(), cache: "no-store" });
  if (r.status === 401) {
    askToken();
    throw new Error("unauthorized");
  }
  if (!r.ok) {
    let msg = r.status + "";
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

function askToken() {
  const f = $("token-form");
  if (!f.hidden) return;
  f.hidden = false;
  setStatus("token required", "error");
  f.onsubmit = (ev) => {
    ev.preventDefault();
    state.token = $("token-input").value.trim();
    sessionStorage.setItem("pp-token", state.token);
    f.hidden = true;
    start();
  };
}

const fmt = (v, d = 0) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));

// ------------------------------------------------------------- partners

function partnerRow(p) {
  const pressure = p.pressure === null ? 0 : p.pressure;
  const firing = p.rules.some((r) => r.state === "firing");
  const bar = el("span", { class: "bar" + (firing ? " hot" : "") });
  bar.style.width = Math.min(120, Math.max(2, pressure * 0.6)) + "px";
  const link = el("a", { href: "#/partner/" + encodeURIComponent(p.partner_id) }, p.partner_id);
  const rules = el("td", {});
  for (const r of p.rules) {
    rules.append(el("span", { class: "tag " + r.state, title: r.value + " / " + r.threshold },
      r.rule_id + " " + r.state));
  }
  return el("tr", { "data-partner": p.partner_id },
    el("td", {}, link),
    el("td", { class: "num" }, bar, fmt(p.pressure)),
    el("td", { class: "num" }, fmt(p.cpi, 1)),
    el("td", { class: "num" }, fmt(p.health)),
    rules);
}

async function refreshPartners() {
  const data = await api("/v1/partners?sort=pressure&limit=100");
  const body = $("partners").tBodies[0];
  body.replaceChildren(...data.partners.map(partnerRow));
  if (data.partners.length === 0) {
    body.append(el("tr", {}, el("td", { colSpan: 5, class: "muted" }, "no partner state yet")));
  }
  $("evaluated").textContent = data.evaluated_day ? "evaluated through " + data.evaluated_day : "";
}

// ----------------------------------------------------------- alert feed

function feedItem(a, fresh) {
  const li = el("li", {
    class: fresh ? "new" : "",
    "data-status": a.status,
    "data-partner": a.partner_id,
    "data-alert-id": a.alert_id,
  },
  el("span", { class: "tag " + a.status }, a.status),
  el("b", {}, a.rule_id), " ",
  el("a", { href: "#/partner/" + encodeURIComponent(a.partner_id) }, a.partner_id),
  " ", el("span", { class: "muted" }, a.evaluated),
  el("span", { class: "summary" }, a.summary));
  return li;
}

function addAlert(a, fresh) {
  if (state.seen.has(a.seq)) return;
  state.seen.add(a.seq);
  const feed = $("feed");
  feed.prepend(feedItem(a, fresh));
  while (feed.children.length > FEED_MAX) feed.lastElementChild.remove();
  $("feed-count").textContent = "(" + feed.children.length + ")";
}

async function loadAlerts() {
  const data = await api("/v1/alerts?limit=" + FEED_MAX);
  // `recent` is newest first; prepend oldest first.
  for (const a of data.recent.slice().reverse()) addAlert(a, false);
  // The stream then replays from there: nothing fired in between is lost
  // (0 = everything the server still holds; duplicates are skipped by seq).
  if (state.lastEventId === null) state.lastEventId = data.recent.length ? data.recent[0].seq : 0;
}

// One SSE message block ("field: value" lines) → dispatch.
function onBlock(block) {
  let event = "message", data = [], id = null;
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const i = line.indexOf(":");
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
    else if (field === "id") id = value;
    else if (field === "retry" && /^\d+$/.test(value)) state.retryMs = Number(value);
  }
  if (id !== null) state.lastEventId = id;
  if (event === "alert" && data.length) {
    addAlert(JSON.parse(data.join("\n")), true);
    refreshPartners().catch(() => {});
    if (state.route && state.route.partner) showPartner(state.route.partner).catch(() => {});
  }
}

async function stream() {
  for (;;) {
    try {
      const h = headers();
      if (state.lastEventId !== null) h["Last-Event-ID"] = String(state.lastEventId);
      const r = await fetch("/v1/stream", { headers: h, cache: "no-store" });
      if (r.status === 401) { askToken(); return; }
      if (!r.ok || !r.body) throw new Error("stream: HTTP " + r.status);
      setStatus("live", "live");
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          onBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
      throw new Error("stream closed");
    } catch (e) {
      setStatus("reconnecting…", "error");
      await new Promise((res) => setTimeout(res, state.retryMs));
    }
  }
}

// ------------------------------------------------------- partner page

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// A line chart of history [{day, pressure}] with a dashed line at 100 (the
// threshold on the pressure scale).
function drawChart(history) {
  const W = 800, H = 240, L = 40, R = 10, T = 10, B = 26;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-label": "pressure by evaluated day" });
  const pts = history.filter((p) => p.pressure !== null);
  const max = Math.max(120, ...pts.map((p) => p.pressure));
  const x = (i) => L + (pts.length < 2 ? 0 : (i * (W - L - R)) / (pts.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  root.append(svg("line", { class: "axis", x1: L, y1: y(0), x2: W - R, y2: y(0) }));
  root.append(svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: y(0) }));
  root.append(svg("line", { class: "threshold", x1: L, y1: y(100), x2: W - R, y2: y(100) }));
  for (const v of [0, 100, Math.round(max)]) {
    const t = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" });
    t.textContent = String(v);
    root.append(t);
  }
  if (pts.length) {
    const d = pts.map((p, i) => (i ? "L" : "M") + x(i).toFixed(1) + " " + y(p.pressure).toFixed(1));
    root.append(svg("path", { class: "line", d: d.join(" ") }));
    for (const i of [0, pts.length - 1]) {
      const t = svg("text", { x: x(i), y: H - 8, "text-anchor": i ? "end" : "start" });
      t.textContent = pts[i].day;
      root.append(t);
    }
  } else {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
    t.textContent = "no evaluated day yet";
    root.append(t);
  }
  $("chart").replaceChildren(root);
}

async function showPartner(id) {
  const p = await api("/v1/partners/" + encodeURIComponent(id));
  $("partner-title").textContent = p.partner_id;
  const facts = [["pressure", fmt(p.pressure)], ["CPI", fmt(p.cpi, 1)], ["health", fmt(p.health)],
    ["evaluated through", p.evaluated_day || "—"]];
  for (const r of p.rules) facts.push([r.rule_id, r.state + " (" + r.value + " / " + r.threshold + ")"]);
  $("partner-facts").replaceChildren(...facts.map(([k, v]) => el("div", {}, el("b", {}, v), k)));
  drawChart(p.history);
  const list = $("partner-alerts");
  list.replaceChildren(...p.active_alerts.map((a) => feedItem(a, false)));
  if (!p.active_alerts.length) list.append(el("li", { class: "muted" }, "none"));
}

function route() {
  const m = location.hash.match(/^#\/partner\/(.+)$/);
  state.route = m ? { partner: decodeURIComponent(m[1]) } : {};
  $("overview").hidden = !!m;
  $("partner").hidden = !m;
  if (m) {
    showPartner(state.route.partner).catch((e) => {
      $("partner-title").textContent = state.route.partner + ": " + e.message;
    });
  }
}

// --------------------------------------------------------------- start

let started = false;
async function start() {
  try {
    await refreshPartners();
    await loadAlerts();
  } catch (e) {
    if (e.message !== "unauthorized") setStatus(e.message, "error");
    return;
  }
  route();
  if (!started) {
    started = true;
    window.addEventListener("hashchange", route);
    setInterval(() => refreshPartners().catch(() => {}), POLL_MS);
    stream();
  }
}

start();
