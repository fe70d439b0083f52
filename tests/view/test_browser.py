"""``seco store view`` as a user sees it: headless Chromium opens the site from file://, no server, no internet.

Needs Debian's ``chromium`` (.ci/run installs it); skipped without it.
"""

from __future__ import annotations

import struct

import pytest
from cdp import CHROMIUM, Browser
from view_helpers import BRIGHT, make_store

from seco.view import ViewConfig, build_view

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# how many pixels of a canvas differ from its first pixel (drawn content, not an empty canvas)
DRAWN = """(sel => [...document.querySelectorAll(sel)].map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let k = 0; k < d.length; k += 4) if (d[k] !== d[0] || d[k + 1] !== d[1] || d[k + 2] !== d[2]) n++;
  return n; }))"""


def test_the_site_renders_and_a_click_on_the_map_opens_the_location(tmp_path):
    make_store(tmp_path / "store.zarr", n=6, s1=True)
    out = tmp_path / "view"
    build_view(tmp_path / "store.zarr", out, ViewConfig(max_locations=6), progress=False)
    with Browser(str(tmp_path / "profile")) as b:
        b.open((out / "index.html").as_uri())
        shot = b.screenshot()
        (tmp_path / "index.png").write_bytes(shot)
        assert png_size(shot)[0] >= 1000
        # the map: land drawn from the shipped basemap (land colour present), and one circle per location
        land = b.eval("""(() => { const c = document.getElementById('map'); const d = c.getContext('2d')
          .getImageData(0, 0, c.width, c.height).data; let n = 0;
          for (let k = 0; k < d.length; k += 4) if (d[k] === 243 && d[k + 1] === 239 && d[k + 2] === 228) n++;
          return n / (c.width * c.height); })()""")
        assert 0.15 < land < 0.5  # about a third of a plate carree world is land
        drawn = b.eval(DRAWN + "('#histograms canvas, #s1-histograms canvas, #date-views canvas')")
        assert len(drawn) == 6 + 2 + 4 and min(drawn) > 0  # 6 S2 bands, VV and VH, 4 date charts: all with bars
        assert b.eval("document.querySelectorAll('#failures table, #locations tr').length") >= 7
        # click the circle of location BRIGHT on the map
        x, y = b.eval(f"""(() => {{ const k = SECO_LOCATIONS.i.indexOf({BRIGHT});
          const c = document.getElementById('map'); const r = c.getBoundingClientRect();
          c.scrollIntoView(); const r2 = c.getBoundingClientRect();
          const px = (SECO_LOCATIONS.lon[k] + 180) / 360 * c.width, py = (90 - SECO_LOCATIONS.lat[k]) / 180 * c.height;
          return [r2.left + px * r2.width / c.width, r2.top + py * r2.height / c.height]; }})()""")
        b.click(x, y)
        assert b.eval("location.pathname").endswith(f"/loc/{BRIGHT}.html")
        assert b.eval("document.getElementById('title').textContent") == f"location {BRIGHT} ({BRIGHT})"
        # the time strip: every quicklook decoded (RGB, false colour, S1), and the flagged date's warning shown
        imgs = b.eval("[...document.querySelectorAll('#strip img')].map(i => i.complete && i.naturalWidth > 0)")
        assert len(imgs) == 4 * 3 - 1 and all(imgs)  # 4 dates x 3 composites, one date without S1
        assert "offset-kept" in b.eval("document.getElementById('warnings').textContent")
        (tmp_path / "location.png").write_bytes(b.screenshot())
        assert b.console_errors() == []
