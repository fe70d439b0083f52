"""The demo's evaluation stage: EuroSAT probe when asked for, synthetic OSCD always, numbers from the runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from seco.bands import L2A
from seco.demo.evaluate import EUROSAT_ENV, _eurosat, eurosat_from_env, run_demo_eval
from seco.errors import DatasetError
from tests.eval._helpers import SHARED, make_export


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seco export of a fresh ResNet-18 on the demo's 12 L2A bands, with a normalisation."""
    return make_export(tmp_path_factory.mktemp("weights") / "seco_resnet18", L2A)


def _check_links(md: str, out: Path) -> None:
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert links
    missing = [p for p in links if not (out / p).is_file()]
    assert not missing, missing


def _check_oscd(r: dict, out: Path) -> None:
    md = r["markdown"]
    section = md.split("### Change detection")[1]
    for key in ("seco", "random"):
        m = json.loads((out / f"eval_oscd_{key}" / "metrics.json").read_text())
        g = m["test"]["all_pixels"]
        assert m["bands"] == list(L2A)  # random init reads the same bands as the weights (no B10)
        assert m["normalization_policy"] == "data" and m["normalization"].startswith("train city statistics")
        assert r["oscd"][key]["f1"] == g["f1"] and r["oscd"][key]["precision"] == g["precision"]
        row = next(line for line in section.splitlines() if line.startswith("| SeCo" if key == "seco" else "| random"))
        assert f"{100 * g['f1']:.1f} %" in row and f"{100 * g['recall']:.1f} %" in row
        assert r["oscd"][key]["change_maps"]
    assert m["weights_kind"] == "random"
    assert (out / "synth_oscd" / "synth_oscd.json").is_file()
    saved = json.loads((out / "demo_eval.json").read_text())
    assert saved["oscd"]["seco"]["f1"] == r["oscd"]["seco"]["f1"] and "markdown" not in saved
    _check_links(md, out)


@pytest.mark.skipif(not (SHARED / "eurosat_ms").is_dir(), reason=f"real EuroSAT MS sample not at {SHARED}")
def test_quick_with_the_eurosat_ms_sample(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EUROSAT_ENV, str(SHARED / "eurosat_ms"))
    r = run_demo_eval(tmp_path, weights, quick=True)
    e = r["eurosat"]
    assert e["status"] == "ran" and e["kind"] == "ms"
    section = r["markdown"].split("### EuroSAT")[1].split("###")[0]
    for key in ("seco", "random"):
        assert e[key]["bands"] == list(L2A)  # 12 of the 13 file bands, picked by name
        assert e[key]["normalization"] == "EuroSAT train split statistics"  # one policy for both backbones
        assert 0.0 <= e[key]["accuracy"] <= 1.0 and sum(e[key]["splits"].values()) == 270
        row = next(line for line in section.splitlines() if line.startswith("| SeCo" if key == "seco" else "| random"))
        assert f"{100 * e[key]['accuracy']:.1f} %" in row
    _check_oscd(r, tmp_path)


def test_quick_without_eurosat(weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EUROSAT_ENV, raising=False)
    r = run_demo_eval(tmp_path, weights, quick=True)
    assert r["eurosat"]["status"] == "skipped" and EUROSAT_ENV in r["eurosat"]["reason"]
    assert not (tmp_path / "eval_eurosat_seco").exists()
    assert f"Skipped: {EUROSAT_ENV} is not set" in r["markdown"]
    _check_oscd(r, tmp_path)


def test_eurosat_rgb_is_skipped_and_a_bad_root_refused(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seco.demo.evaluate import QUICK

    if (SHARED / "eurosat_rgb").is_dir():
        monkeypatch.setenv(EUROSAT_ENV, str(SHARED / "eurosat_rgb"))
        assert eurosat_from_env() == (SHARED / "eurosat_rgb", "rgb")
        res = _eurosat(tmp_path, weights, L2A, "resnet18", 0, QUICK, "cpu", False)
        assert res["status"] == "skipped" and "RGB release" in res["reason"] and "multispectral" in res["reason"]
        assert not (tmp_path / "eval_eurosat_seco").exists()
    monkeypatch.setenv(EUROSAT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match=EUROSAT_ENV):
        eurosat_from_env()
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv(EUROSAT_ENV, str(tmp_path / "empty"))
    with pytest.raises(DatasetError, match="no EuroSAT class folders"):
        eurosat_from_env()
