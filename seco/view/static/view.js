// seco store view: the index page (map, viewed locations, store-wide charts, failures, check findings).
// Data come from data/summary.js (window.SECO_SUMMARY) and data/locations.js (window.SECO_LOCATIONS),
// the land outline from assets/basemap.js (window.SECO_BASEMAP). Plain DOM and canvas, no library.
"use strict";

const S = window.SECO_SUMMARY;
const L = window.SECO_LOCATIONS;
const RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];  // viridis stops
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf"];

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function fmt(x, nd) {
  if (x === null || x === undefined) return "-";
  return typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toFixed(nd === undefined ? 2 : nd)) : String(x);
}

function pageOf(i) { return "loc/" + i + ".html"; }

// ------------------------------------------------------------------------------------------------ map
const canvas = document.getElementById("map");
const ctx = canvas.getContext("2d");
const W = canvas.width, H = canvas.height;
function xy(lat, lon) { return [(lon + 180) / 360 * W, (90 - lat) / 180 * H]; }

function rampColour(t) {
  t = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const k = Math.min(Math.floor(t), RAMP.length - 2), f = t - k;
  const a = RAMP[k], b = RAMP[k + 1];
  const c = [1, 3, 5].map(j => Math.round(parseInt(a.substr(j, 2), 16) * (1 - f) + parseInt(b.substr(j, 2), 16) * f));
  return "rgb(" + c.join(",") + ")";
}

// A colour per viewed location for field `name`, and the legend entries.
function colours(name) {
  const vals = L[name];
  if (name === "warned") {
    return { of: i => vals[i] ? "#d62728" : "#1f77b4", legend: [["#d62728", "warned"], ["#1f77b4", "no warning"]] };
  }
  const nums = vals.filter(v => typeof v === "number");
  if (nums.length === vals.filter(v => v !== null).length && nums.length) {
    const lo = Math.min(...nums), hi = Math.max(...nums), span = hi > lo ? hi - lo : 1;
    return { of: i => vals[i] === null ? "#999" : rampColour((vals[i] - lo) / span),
             legend: [[rampColour(0), fmt(lo)], [rampColour(0.5), fmt((lo + hi) / 2)], [rampColour(1), fmt(hi)]] };
  }
  const cats = [...new Set(vals.map(String))].sort();
  return { of: i => PALETTE[cats.indexOf(String(vals[i])) % PALETTE.length],
           legend: cats.slice(0, 12).map((c, k) => [PALETTE[k % PALETTE.length], c]) };
}

function drawMap() {
  const name = document.getElementById("colour-by").value;
  ctx.fillStyle = "#dfe9f3";
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#f3efe4";
  ctx.strokeStyle = "#b9b2a0";
  ctx.lineWidth = 0.6;
  for (const ring of window.SECO_BASEMAP.rings) {
    // a ring across the antimeridian has longitudes beyond 180 (or -180): drawn again one world over
    let shifts = [0];
    for (let k = 0; k < ring.length; k += 2) {
      if (ring[k] > 180) { shifts = [0, -360]; break; }
      if (ring[k] < -180) { shifts = [0, 360]; break; }
    }
    for (const dx of shifts) {
      ctx.beginPath();
      for (let k = 0; k < ring.length; k += 2) {
        const [x, y] = xy(ring[k + 1], ring[k] + dx);
        if (k === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
      }
      ctx.closePath();
      ctx.fill();
      ctx.stroke();
    }
  }
  ctx.fillStyle = "rgba(80, 80, 80, 0.35)";
  const pts = S.map.points;
  for (let k = 0; k < pts.length; k += 2) {
    const [x, y] = xy(pts[k], pts[k + 1]);
    ctx.fillRect(x - 1, y - 1, 2, 2);
  }
  const c = colours(name);
  ctx.strokeStyle = "#222";
  for (let i = 0; i < L.i.length; i++) {
    if (L.lat[i] === null) continue;
    const [x, y] = xy(L.lat[i], L.lon[i]);
    ctx.beginPath();
    ctx.arc(x, y, L.warned[i] ? 4.5 : 3.5, 0, 2 * Math.PI);
    ctx.fillStyle = c.of(i);
    ctx.fill();
    ctx.stroke();
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren(el("b", {}, name + ": "));
  for (const [col, text] of c.legend) {
    const s = el("span");
    const sw = el("i");
    sw.style.background = col;
    s.append(sw, document.createTextNode(text));
    legend.append(s);
  }
}

function nearest(ev) {
  const r = canvas.getBoundingClientRect();
  const mx = (ev.clientX - r.left) * W / r.width, my = (ev.clientY - r.top) * H / r.height;
  let best = -1, bd = 64;  // within 8 canvas px
  for (let i = 0; i < L.i.length; i++) {
    if (L.lat[i] === null) continue;
    const [x, y] = xy(L.lat[i], L.lon[i]);
    const d = (x - mx) ** 2 + (y - my) ** 2;
    if (d < bd) { bd = d; best = i; }
  }
  return best;
}

function setupMap() {
  const sel = document.getElementById("colour-by");
  for (const k of Object.keys(L)) {
    if (["i", "key", "lat", "lon", "why"].includes(k)) continue;
    sel.append(el("option", { value: k }, k));
  }
  sel.value = "valid dates";
  sel.addEventListener("change", drawMap);
  const tip = document.getElementById("tip");
  canvas.addEventListener("mousemove", ev => {
    const i = nearest(ev);
    canvas.style.cursor = i < 0 ? "default" : "pointer";
    if (i < 0) { tip.hidden = true; return; }
    tip.textContent = "location " + L.i[i] + " (" + L.key[i] + "): " + L["valid dates"][i] + " valid dates"
      + (L.warned[i] ? ", warned" : "");
    tip.style.left = (ev.offsetX + 12) + "px";
    tip.style.top = (ev.offsetY + 12) + "px";
    tip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => { tip.hidden = true; });
  canvas.addEventListener("click", ev => {
    const i = nearest(ev);
    if (i >= 0) window.location.href = pageOf(L.i[i]);
  });
  document.getElementById("map-note").textContent = "Grey: locations of the store (" + S.map.points.length / 2
    + " of " + S.map.total + " drawn). Circles: the " + L.i.length + " viewed locations (larger: warned); "
    + "hover for its key, click to open its page. Plate carree projection.";
  drawMap();
}

// ------------------------------------------------------------------------------------------------ tables
function table(id, head, rows) {
  const t = typeof id === "string" ? document.getElementById(id) : id;
  const tr = el("tr");
  for (const h of head) tr.append(el("th", {}, h));
  t.replaceChildren(tr);
  for (const r of rows) {
    const row = el("tr");
    for (const c of r) {
      const td = el("td");
      if (c instanceof Node) td.append(c); else td.textContent = fmt(c);
      row.append(td);
    }
    t.append(row);
  }
  return t;
}

function locationsTable() {
  const order = [...L.i.keys()].sort((a, b) => (L.warned[b] - L.warned[a]) || (L.i[a] - L.i[b]));
  const rows = order.map(k => [el("a", { href: pageOf(L.i[k]) }, L.i[k]), L.key[k], L["valid dates"][k],
                               L["mean cloud"][k], L.why[k].join("; ")]);
  const t = table("locations", ["location", "key", "valid dates", "mean cloud", "warnings"], rows);
  order.forEach((k, r) => { if (L.warned[k]) t.rows[r + 1].className = "warned"; });
}

// ------------------------------------------------------------------------------------------------ charts
function bars(parent, title, counts, left, right, note) {
  const box = el("div", { class: "chart" });
  box.append(el("h3", {}, title));
  const cv = el("canvas", { width: 300, height: 110 });
  const c = cv.getContext("2d");
  const top = Math.max(1, ...counts);
  const bw = 300 / Math.max(1, counts.length);
  c.fillStyle = "#4c78a8";
  counts.forEach((n, k) => {
    const h = n / top * 105;
    c.fillRect(k * bw, 110 - h, Math.max(1, bw - 1), h);
  });
  box.append(cv);
  const axis = el("div", { class: "axis" });
  axis.append(el("span", {}, left), el("span", {}, right));
  box.append(axis);
  if (note) box.append(el("div", { class: "note" }, note));
  parent.append(box);
}

function charts() {
  const h = S.histograms, div = document.getElementById("histograms");
  h.bands.forEach((b, k) => {
    const st = h.stats[b];
    bars(div, b + " (DN)", h.counts[k], "1", "> " + h.max,
         st ? "mean " + st.mean + ", p2 " + st.p2 + ", p98 " + st.p98 : "");
  });
  if (S.s1) {
    const s = S.s1, d1 = document.getElementById("s1-histograms");
    s.bands.forEach((b, k) => {
      const st = s.stats[b];
      bars(d1, "S1 " + b + " (dB, " + s.source + ")", s.counts[k] || [], s.edges[0] + " dB",
           s.edges[s.edges.length - 1] + " dB", st ? "mean " + st.mean + ", p2 " + st.p2 + ", p98 " + st.p98 : "");
    });
  }
  const d = S.dates, dv = document.getElementById("date-views");
  bars(dv, "valid dates per location", d.valid_counts, "0", String(d.valid_counts.length - 1));
  bars(dv, "days between consecutive valid dates", d.spacing, "0", String(d.spacing.length * 7) + " d",
       "median " + fmt(d.spacing_median_days, 1) + " days; bins of 7 days");
  bars(dv, "day of year of valid dates", d.doy, "1 Jan", "31 Dec", "bins of 7 days");
  bars(dv, "cloud fraction of valid dates", d.cloud, "0", "1");
}

function failures() {
  const div = document.getElementById("failures");
  const f = S.failures;
  if (!f) { div.append(el("p", { class: "note" }, "No failures table (the store was not collected or imported here).")); return; }
  div.append(el("p", { class: "note" }, f.total + " row(s) in " + f.source));
  const rows = f.kinds.map(k => [k.kind, k.count,
    k.examples.map(e => Object.entries(e).filter(([, v]) => v !== null).map(([a, v]) => a + " " + v).join(", ")).join(" | ")]);
  div.append(table(el("table"), ["kind", "count", "examples"], rows));
}

function checks() {
  const div = document.getElementById("check");
  const c = S.check;
  if (!c) {
    div.append(el("p", { class: "note" }, "Not run: save `seco store check STORE --json > check.json` in this folder "
      + "(or pass --check-report) and rerun `seco store view`."));
    return;
  }
  div.append(el("p", { class: "note" }, (c.checked === null ? "?" : c.checked) + " location(s) checked; " + c.source));
  div.append(table(el("table"), ["check", "severity", "locations"], c.counts.map(r => [r.check, r.severity, r.count])));
  const known = new Set(L.i);
  const rows = c.findings.slice(0, 500).map(f => [known.has(f.location) ? el("a", { href: pageOf(f.location) }, f.location)
    : f.location, f.key, f.check, f.severity, f.problem]);
  div.append(table(el("table"), ["location", "key", "check", "severity", "problem"], rows));
  for (const n of c.notes) div.append(el("p", { class: "note" }, "note: " + n));
}

function header() {
  const s = S.store;
  document.getElementById("store-line").textContent = s.path + ": " + s.locations + " locations x " + s.dates
    + " dates, bands " + s.bands.join(" ") + ", " + s.patch_size + " px, grid " + s.grid + ", sensors "
    + s.sensors.join("+") + "; " + S.viewed + " viewed (" + S.warned + " warned).";
}

header();
setupMap();
locationsTable();
charts();
failures();
checks();
