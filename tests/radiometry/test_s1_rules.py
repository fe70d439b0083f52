"""Sentinel-1 provider rules on real (recorded or reconstructed) items: tests/collect/fixtures/s1_items/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seco.collect.inspect import format_s1_report, inspect_s1_item, is_s1_item
from seco.collect.s1scene import s1_from_stac
from seco.errors import ConfigError, SecoError
from seco.radiometry.s1 import (
    S1RuleError,
    access_error,
    check_window,
    decide_s1,
    linear_to_db,
    polarization_of_key,
)

ITEMS = Path(__file__).resolve().parents[1] / "collect" / "fixtures" / "s1_items"


def load(prefix: str) -> dict:
    (path,) = sorted(ITEMS.glob(f"{prefix}*.json"))
    return json.loads(path.read_text())


@pytest.mark.parametrize(("prefix", "provider", "rule", "nodata"), [
    ("planetary-computer_sentinel-1-rtc", "planetary-computer", "planetary-computer-rtc:gamma0-linear-to-db", -32768),
    ("aws-indigo_sentinel1-rtc-aws", "aws-indigo", "aws-indigo-rtc:gamma0-linear-to-db", 0),
])
def test_rtc_items_get_their_provider_rule(prefix: str, provider: str, rule: str, nodata: float) -> None:
    it = s1_from_stac(load(prefix))
    assert it.provider == provider
    assert set(it.assets) == {"VV", "VH"} and it.dual_vv_vh
    r = it.rule()
    assert (r.rule, r.product, r.quantity, r.nodata) == (rule, "RTC", "gamma0", nodata)


@pytest.mark.parametrize("prefix", ["planetary-computer_sentinel-1-grd", "earth-search_sentinel-1-grd"])
def test_grd_items_are_refused_in_one_line(prefix: str) -> None:
    it = s1_from_stac(load(prefix))
    with pytest.raises(S1RuleError) as e:
        it.rule()
    msg = str(e.value)
    assert "\n" not in msg and it.id in msg and "GRD" in msg and "--s1 rtc" in msg


def test_the_rule_follows_the_collection_not_the_items_product_type() -> None:
    d = load("planetary-computer_sentinel-1-rtc")
    d["properties"]["sar:product_type"] = "GRD"  # an RTC item that names the product it came from
    assert s1_from_stac(d).rule().rule.startswith("planetary-computer-rtc")
    d = load("planetary-computer_sentinel-1-grd")
    d["properties"]["sar:product_type"] = "RTC"  # a GRD collection stays GRD
    with pytest.raises(S1RuleError):
        s1_from_stac(d).rule()


@pytest.mark.parametrize("key", ["sat:orbit_state", "sat:relative_orbit", "platform", "sar:instrument_mode"])
def test_an_item_without_the_metadata_its_rule_needs_is_named(key: str) -> None:
    d = load("planetary-computer_sentinel-1-rtc")
    del d["properties"][key]
    with pytest.raises(S1RuleError, match=key):
        s1_from_stac(d).rule()


def test_unknown_provider_collection_has_no_rule() -> None:
    with pytest.raises(S1RuleError, match="no Sentinel-1 rule"):
        decide_s1(item_id="x", provider="planetary-computer", collection="sentinel-1-foo",
                  properties=load("planetary-computer_sentinel-1-rtc")["properties"])


def test_linear_to_db_masks_what_is_not_power() -> None:
    lin = np.array([1.0, 0.1, 0.0, -2.0, np.nan, -32768.0, 10.0], dtype=np.float32)
    db = linear_to_db(lin, nodata=-32768.0)
    assert db.dtype == np.float32
    np.testing.assert_allclose(db[[0, 1, 6]], [0.0, -10.0, 10.0], atol=1e-5)
    assert np.isnan(db[2:6]).all()


def test_polarisation_keys_of_every_provider() -> None:
    assert [polarization_of_key(k) for k in ("vv", "VH", "vv-rtc", "gamma0_vh", "amplitude-vv-iw", "hh")] == \
        ["VV", "VH", "VV", "VH", "VV", "HH"]
    assert polarization_of_key("incidence") is None and polarization_of_key("schema-noise-vv") is None


def test_window_too_short_to_ever_match_is_refused() -> None:
    assert check_window(6) == 6.0
    with pytest.raises(ConfigError, match="can never match"):
        check_window(0.1)
    with pytest.raises(ConfigError):
        check_window(90)


def test_access_errors_name_the_account_or_variable() -> None:
    pc = access_error(403, "https://planetarycomputer.microsoft.com/api/sas/v1/token/sentinel1euwestrtc/x")
    assert pc is not None and "PC_SDK_SUBSCRIPTION_KEY" in str(pc) and "account" in str(pc)
    rp = access_error(403, "s3://sentinel-s1-l1c/GRD/x/iw-vv.tiff")
    assert rp is not None and "AWS_REQUEST_PAYER=requester" in str(rp)
    assert access_error(500, "https://x") is None
    assert isinstance(pc, SecoError)


def test_inspect_shows_an_s1_item_and_its_rule() -> None:
    d = load("planetary-computer_sentinel-1-rtc")
    assert is_s1_item(d)
    rep = inspect_s1_item(d)
    assert (rep["mode"], rep["polarizations"], rep["orbit_state"], rep["relative_orbit"], rep["platform"]) == \
        ("IW", ["VV", "VH"], "descending", 119, "sentinel-1a")
    assert rep["rule"] == "planetary-computer-rtc:gamma0-linear-to-db" and rep["error"] is None
    assert [a["polarization"] for a in rep["assets"]] == ["VH", "VV"]
    text = format_s1_report(rep)
    assert "planetary-computer-rtc:gamma0-linear-to-db" in text and "descending" in text
    es = inspect_s1_item(load("earth-search_sentinel-1-grd"))
    assert es["rule"] == "refused" and any("requester-pays" in w for w in es["warnings"])


def test_s2_items_are_not_taken_for_s1() -> None:
    s2 = Path(__file__).resolve().parents[1] / "collect" / "fixtures" / "items"
    for p in s2.glob("*.json"):
        assert not is_s1_item(json.loads(p.read_text())), p.name
