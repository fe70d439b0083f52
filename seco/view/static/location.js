// seco store view: one location's page, a time strip of its dates (window.SECO_LOC, embedded in the page).
"use strict";

const D = window.SECO_LOC;

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function pct(x) { return x === null || x === undefined ? "-" : (100 * x).toFixed(1) + " %"; }
function txt(x) { return x === null || x === undefined || x === "" ? "-" : String(x); }

function nav() {
  const L = window.SECO_LOCATIONS;
  if (!L) return;
  const k = L.i.indexOf(D.i);
  const span = document.getElementById("nav");
  if (k > 0) span.append(" | ", el("a", { href: L.i[k - 1] + ".html" }, "previous (" + L.i[k - 1] + ")"));
  if (k >= 0 && k + 1 < L.i.length) span.append(" | ", el("a", { href: L.i[k + 1] + ".html" }, "next (" + L.i[k + 1] + ")"));
}

function head() {
  document.getElementById("title").textContent = "location " + D.i + " (" + D.key + ")";
  let label = "";
  if (D.label !== null && D.label >= 0) label = ", label " + (D.label_names ? D.label_names[D.label] : D.label);
  document.getElementById("where").textContent = "lat " + txt(D.lat) + ", lon " + txt(D.lon) + label;
  const w = document.getElementById("warnings");
  const all = D.warned.concat(D.warnings);
  if (!all.length) { w.append(el("p", { class: "note" }, "No warning for this location.")); return; }
  const ul = el("ul", { class: "warn" });
  for (const x of [...new Set(all)]) ul.append(el("li", {}, x));
  w.append(el("h2", {}, "Warnings"), ul);
}

function row(t, name, cell) {
  const tr = el("tr");
  tr.append(el("th", { class: "row" }, name));
  D.dates.forEach(d => { const td = el("td"); cell(d, td); tr.append(td); });
  t.append(tr);
}

function strip() {
  const t = document.getElementById("strip");
  row(t, "date", (d, td) => { td.textContent = d.t + ": " + (d.valid ? txt(d.datetime).slice(0, 10) : "missing"); });
  for (const c of D.composites) {
    const tr = el("tr");
    tr.append(el("th", { class: "row" }, c.title));
    for (const d of D.dates) {
      const src = d.images[c.id];
      if (src) {
        const td = el("td");
        td.append(el("img", { src: src, alt: c.id + " date " + d.t, title: c.title + ", date " + d.t }));
        tr.append(td);
      } else {
        tr.append(el("td", { class: "none" }, "no data"));
      }
    }
    t.append(tr);
  }
  row(t, "scene id", (d, td) => { td.textContent = txt(d.item_id); });
  row(t, "time (UTC)", (d, td) => { td.textContent = txt(d.datetime); });
  row(t, "cloud", (d, td) => { td.textContent = pct(d.cloud_fraction); });
  row(t, "nodata", (d, td) => { td.textContent = pct(d.nodata_fraction); });
  row(t, "DN shift", (d, td) => { td.textContent = txt(d.dn_shift); });
  row(t, "rule", (d, td) => { td.textContent = txt(d.dn_rule); });
  row(t, "rule warning", (d, td) => { td.textContent = txt(d.dn_warning); if (d.dn_warning) td.className = "warn"; });
  if (D.s1) {
    row(t, "S1 scene", (d, td) => { td.textContent = d.s1 && d.s1.valid ? txt(d.s1.item_id) : "no S1"; });
    row(t, "S1 minus S2 (days)", (d, td) => { td.textContent = d.s1 && d.s1.valid ? txt(d.s1.time_offset_days) : "-"; });
    row(t, "S1 orbit", (d, td) => {
      td.textContent = d.s1 && d.s1.valid ? txt(d.s1.platform) + " " + txt(d.s1.orbit_state) + " " + txt(d.s1.relative_orbit) : "-";
    });
    row(t, "S1 product", (d, td) => {
      td.textContent = d.s1 && d.s1.valid ? txt(d.s1.product) + " " + txt(d.s1.quantity) + ", rule " + txt(d.s1.rule) : "-";
    });
    row(t, "S1 nodata", (d, td) => { td.textContent = d.s1 && d.s1.valid ? pct(d.s1.nodata_fraction) : "-"; });
  }
}

function stretchNote() {
  const div = document.getElementById("stretch");
  for (const c of D.composites) {
    const r = c.stretch.map(s => s[0] + ".." + s[1]).join(", ");
    const how = c.units === "dB" ? "fixed ranges (dB)" : "this location's 2nd..98th percentile over all its valid dates (DN)";
    div.append(el("p", {}, c.title + ": red, green, blue = " + r + "; " + how + "."));
  }
}

head();
nav();
strip();
stretchNote();
