"""``seco catalog inspect`` on real item JSON: from a file, a URL on loopback and a stac-geoparquet id; bad input."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from seco.cli import main
from seco.collect.build import write_stac_geoparquet
from seco.collect.inspect import inspect_item

ITEMS = Path(__file__).parent / "fixtures" / "items"
ES = ITEMS / "earth-search_sentinel-2-l2a_S2B_20EPT_20250731_0_L2A.json"
CDSE = ITEMS / "cdse_sentinel-2-l2a_S2C_MSIL2A_20250330T100051_N0511_R122_T33UWP_20250330T145914.json"


def run_json(args, capsys) -> dict:
    assert main(["catalog", "inspect", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_issue_item_from_file(capsys):
    rep = run_json([str(ES)], capsys)
    assert (rep["id"], rep["provider"], rep["collection"]) == ("S2B_20EPT_20250731_0_L2A", "earth-search",
                                                              "sentinel-2-l2a")
    assert rep["processing_baseline"] == "05.11" and rep["boa_offset_applied"] is True and rep["scl"] is True
    assert rep["epsg"] == 32720 and rep["cloud_cover"] == 5.0
    bands = {r["band"]: r for r in rep["bands"]}
    assert set(bands) == {"B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12", "SCL"}
    for b in ("B02", "B04", "B12"):  # the bands the issue saw shifted by -1000
        assert bands[b]["dn_shift"] == 0 and bands[b]["rule"] == "earth-search-l2a:boa-offset-applied"
        assert bands[b]["offset"] == -0.1 and bands[b]["scale"] == 0.0001
    assert bands["B02"]["asset"] == "blue" and bands["B02"]["resolution_m"] == 10
    assert bands["B02"]["href"].endswith("/S2B_20EPT_20250731_0_L2A/B02.tif")
    assert bands["B11"]["resolution_m"] == 20 and bands["B01"]["resolution_m"] == 60
    assert rep["ignored_assets"] == ["visual"] and rep["warnings"] == []
    assert main(["catalog", "inspect", str(ES)]) == 0
    text = capsys.readouterr().out
    assert "provider earth-search" in text and "baseline 05.11" in text and "boa_offset_applied true" in text
    assert text.count("earth-search-l2a:boa-offset-applied") == 12


def test_cdse_native_resolution_assets(capsys):
    rep = run_json([str(CDSE)], capsys)
    bands = {r["band"]: r for r in rep["bands"]}
    assert bands["B01"]["asset"] == "B01_60m" and bands["B02"]["asset"] == "B02_10m"  # not the resampled copies
    assert {r["dn_shift"] for r in rep["bands"]} == {-1000} and rep["scl"] is False
    assert sorted(rep["ignored_assets"]) == ["B01_20m", "B02_20m"]
    assert any("no asset for band(s) B03" in w for w in rep["warnings"])


@pytest.fixture
def served(tmp_path):
    """The fixture items over HTTP on 127.0.0.1 (a 404 for anything else)."""
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):  # noqa: N802
            f = ITEMS / self.path.lstrip("/")
            if f.suffix == ".json" and f.is_file():
                body = f.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/geo+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            else:
                self.send_error(404)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_from_url(served, capsys):
    rep = run_json([f"{served}/{ES.name}"], capsys)
    assert rep["id"] == "S2B_20EPT_20250731_0_L2A" and rep["bands"][1]["dn_shift"] == 0
    assert main(["catalog", "inspect", f"{served}/nope.json"]) == 2
    assert "cannot fetch" in capsys.readouterr().err


def test_by_id_from_geoparquet_and_feature_collection(tmp_path, capsys):
    items = [json.loads(p.read_text()) for p in sorted(ITEMS.glob("earth-search_sentinel-2-l2a_*.json"))]
    write_stac_geoparquet(items, tmp_path / "c.parquet")
    rep = run_json(["--id", "S2B_33UXP_20210305_0_L2A", "--catalog", str(tmp_path / "c.parquet")], capsys)
    assert rep["provider"] == "earth-search" and {r.get("rule") for r in rep["bands"] if r["band"] != "SCL"} == {
        "earth-search-l2a:baseline<04.00"}
    fc = tmp_path / "fc.json"
    fc.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    assert run_json([str(fc), "--id", "S2A_39QTA_20230628_0_L2A"], capsys)["processing_baseline"] == "05.09"
    assert main(["catalog", "inspect", str(fc)]) == 2
    assert "name one with --id" in capsys.readouterr().err
    assert main(["catalog", "inspect", "--id", "nope", "--catalog", str(tmp_path / "c.parquet")]) == 2
    assert "0 items with id 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("edit, code, message", [
    (lambda d: d["properties"].pop("datetime"), 2, "has no datetime"),
    (lambda d: d.pop("bbox"), 2, "no valid bbox"),
    (lambda d: d.update(assets={"thumbnail": {"href": "x.jpg", "roles": ["thumbnail"]}}), 0, None),
])
def test_bad_items(tmp_path, capsys, edit, code, message):
    d = json.loads(ES.read_text())
    edit(d)
    f = tmp_path / "i.json"
    f.write_text(json.dumps(d))
    assert main(["catalog", "inspect", str(f)]) == code
    out = capsys.readouterr()
    if message:
        assert message in out.err and len(out.err.strip().splitlines()) == 1
    else:
        assert "no asset for band(s) B01, B02" in out.out


def test_a_scale_other_than_0_0001_is_reported_per_band():
    d = json.loads(ES.read_text())
    d["assets"]["red"]["raster:bands"][0]["scale"] = 0.001
    rep = inspect_item(d)
    red = next(r for r in rep["bands"] if r["band"] == "B04")
    assert red["dn_shift"] is None and red["rule"] == "error" and "scale 0.001" in red["warning"]
    assert any(w.startswith("band B04: raster:bands scale 0.001") for w in rep["warnings"])


def test_usage_errors(tmp_path, capsys):
    assert main(["catalog", "inspect"]) == 2
    assert main(["catalog", "inspect", str(ES), "--catalog", "earth-search", "--id", "x"]) == 2
    assert main(["catalog", "inspect", "--catalog", "earth-search"]) == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["catalog", "inspect", str(tmp_path / "bad.json")]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_by_id_from_a_stac_api(stac_api, capsys):
    """--id with --catalog URL looks the item up in the API (here the loopback STAC API of conftest)."""
    rep = run_json(["--id", "s2-0003", "--catalog", stac_api.base, "--collection", "s2"], capsys)
    assert rep["id"] == "s2-0003" and rep["provider"] == "unknown" and rep["processing_baseline"] == "05.09"
    assert {r.get("rule") for r in rep["bands"] if r["band"] != "SCL"} == {"stac:raster-offset"}
    assert main(["catalog", "inspect", "--id", "s2-9999", "--catalog", stac_api.base, "--collection", "s2"]) == 2
    assert "not found" in capsys.readouterr().err
