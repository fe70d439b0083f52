"""One location's page: its quicklooks (every date, every composite), metadata per date and warnings.

:func:`render_location` runs in worker processes: it reads the location once, writes the quicklooks that are
missing, then the page (``loc/<i>.html``, last, so a page on disk means its quicklooks are there too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seco.fileutil import atomic_write
from seco.view import quicklook as Q
from seco.view.summary import s1_bins

RGB = ("B04", "B03", "B02")
#: The bands the per-location radiometric consistency check compares (seco.radiometry.consistency).
DARK_BANDS = ("B02", "B03")


@dataclass(frozen=True)
class Plan:
    """What every page shows (the same for all locations of one view).

    Attributes:
        rgb: the true-colour bands, ``None`` when the store lacks one of them.
        false_colour: the user's false colour (three bands), or ``None``.
        s1: whether the store has an S1 group.
        thumb: quicklook side in pixels.
    """

    rgb: tuple[str, ...] | None
    false_colour: tuple[str, ...] | None
    s1: bool
    thumb: int

    def composites(self) -> list[tuple[str, str, tuple[str, ...]]]:
        """(id, title, bands) of each optical composite."""
        out = []
        if self.rgb:
            out.append(("rgb", "true colour (" + ", ".join(self.rgb) + ")", self.rgb))
        if self.false_colour:
            out.append(("fc", "false colour (" + ", ".join(self.false_colour) + ")", self.false_colour))
        return out


def page_path(out: Path, i: int) -> Path:
    return out / "loc" / f"{i}.html"


def _shift_text(shift: Any, bands: tuple[str, ...]) -> str | None:
    """A date's DN shift in words: one number when every band has it, else per band."""
    if shift is None:
        return None
    vals = sorted(set(shift))
    if len(vals) == 1:
        return f"{vals[0]:+d}" if vals[0] else "0"
    return ", ".join(f"{b} {s:+d}" for b, s in zip(bands, shift, strict=False) if s)


def _num(x: Any, nd: int = 3) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def _date_rows(store: Any, i: int) -> list[dict[str, Any]]:
    """The per-date metadata of the page (JSON-safe)."""
    rows = []
    for t, m in enumerate(store.meta(i)):
        rows.append({
            "t": t, "valid": m["valid"], "datetime": m["datetime"], "item_id": m["item_id"],
            "cloud_fraction": _num(m["cloud_fraction"]), "nodata_fraction": _num(m["nodata_fraction"]),
            "dn_shift": _shift_text(m["dn_shift"], tuple(store.bands)), "dn_rule": m["dn_rule"],
            "dn_warning": m["dn_warning"], "images": {},
        })
    return rows


def _consistency(images: np.ndarray, valid: np.ndarray, names: list[str]) -> list[str]:
    """The dates whose dark objects sit ~1000 DN off the others (``seco.radiometry.consistency``)."""
    from seco.radiometry.consistency import check_dates

    if not set(DARK_BANDS) <= set(names):
        return []
    flags = check_dates(images, valid, [names.index(b) for b in DARK_BANDS])
    return [f"date {f.date}: dark-object DN {f.statistic:.0f} vs {f.reference:.0f} on the other dates "
            f"({f.difference:+.0f}) - {f.kind}: check its provider flag (`seco catalog inspect`)" for f in flags]


def _optical(store: Any, i: int, plan: Plan, out: Path, rows: list[dict[str, Any]]) -> tuple[list[Any], list[str]]:
    """Write the missing optical quicklooks of location ``i``; return the composites' stretches and the
    consistency warnings."""
    comps = plan.composites()
    names = list(dict.fromkeys([b for _, _, bands in comps for b in bands]
                               + [b for b in DARK_BANDS if b in store.bands]))
    if not names:
        return [], []
    images = store.read(i, bands=names)  # (T, c, H, W) uint16
    valid = store.valid(i)
    folder = out / "ql" / str(i)
    folder.mkdir(parents=True, exist_ok=True)
    info = []
    for cid, title, bands in comps:
        sel = images[:, [names.index(b) for b in bands]]  # (T, 3, H, W)
        stretch = Q.location_stretch(sel, valid)
        info.append({"id": cid, "title": title, "stretch": [[round(lo), round(hi)] for lo, hi in stretch],
                     "units": "DN"})
        for t in np.flatnonzero(valid):
            name = f"{t}-{cid}{Q.SUFFIX}"
            if not (folder / name).is_file():
                Q.write_image(Q.optical_rgba(sel[t], stretch), folder / name, plan.thumb)
            rows[t]["images"][cid] = f"../ql/{i}/{name}"
    return info, _consistency(images, valid, names)


def _radar(store: Any, i: int, plan: Plan, out: Path, rows: list[dict[str, Any]]) -> np.ndarray | None:
    """Write the missing S1 quicklooks, add each date's S1 metadata; return (2, bins) dB counts of the valid
    S1 dates (for the store-wide histogram when the store's own is not available)."""
    s1 = store.s1
    valid = s1.valid(i)
    meta = s1.meta(i)
    edges = s1_bins()
    counts = np.zeros((2, len(edges) - 1), np.int64)
    if not valid.any():
        for row in rows:
            row["s1"] = {"valid": False}
        return counts
    db = s1.read(i)  # (T, 2, H, W) float32 dB, NaN = nodata
    folder = out / "ql" / str(i)
    folder.mkdir(parents=True, exist_ok=True)
    for t, row in enumerate(rows):
        m = {k: (v if not isinstance(v, float) else _num(v)) for k, v in meta[t].items()}
        row["s1"] = {k: (str(v) if k == "datetime" and v is not None else v) for k, v in m.items()}
        if not valid[t]:
            continue
        name = f"{t}-s1{Q.SUFFIX}"
        if not (folder / name).is_file():
            Q.write_image(Q.s1_rgba(db[t]), folder / name, plan.thumb)
        row["images"]["s1"] = f"../ql/{i}/{name}"
        for c in range(2):
            v = db[t, c]
            counts[c] += np.histogram(v[np.isfinite(v)], bins=edges)[0]
    return counts


def render_location(store: Any, i: int, plan: Plan, out: Path, warned: list[str], template: str
                    ) -> dict[str, Any]:
    """Write location ``i``'s quicklooks and page under ``out``.

    Returns:
        ``{"i", "warnings", "s1_counts"}``: the number of warnings shown and the S1 dB counts (or ``None``).
    """
    rows = _date_rows(store, i)
    comps, warnings = _optical(store, i, plan, out, rows)
    s1_counts = None
    if plan.s1:
        s1_counts = _radar(store, i, plan, out, rows)
        comps.append({"id": "s1", "title": "Sentinel-1 (R = VV, G = VH, B = VV - VH)",
                      "stretch": [list(r) for r in Q.S1_RANGES], "units": "dB"})
    warnings += [f"date {r['t']}: {r['dn_warning']}" for r in rows if r["valid"] and r["dn_warning"]]
    valid = [r for r in rows if r["valid"]]
    first = store.meta(i)[rows.index(valid[0])] if valid else {}
    label = store.labels()
    data = {
        "i": int(i), "key": store.key(i), "lat": _num(first.get("lat"), 5), "lon": _num(first.get("lon"), 5),
        "label": None if label is None else int(label[i]), "label_names": store.label_names,
        "warned": warned, "warnings": warnings, "composites": comps, "dates": rows, "s1": plan.s1,
    }
    html = template.replace("{{TITLE}}", f"location {int(i)}").replace("{{DATA}}", to_script(data))
    path = page_path(out, i)
    atomic_write(path, html, durable=False)  # written last: a rerun finds the page only once its pictures are there
    return {"i": int(i), "warnings": len(warnings), "s1_counts": s1_counts}


def to_script(data: Any) -> str:
    """JSON safe to embed in a ``<script>`` element (no ``</`` that could close it)."""
    return json.dumps(data, separators=(",", ":"), default=str).replace("</", "<\\/")
