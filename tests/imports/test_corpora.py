"""Value scales of the published corpora (seco.radiometry.corpora), against the downloaders' own rules."""

from __future__ import annotations

import numpy as np
import pytest

from seco.errors import CorpusError
from seco.radiometry.corpora import (
    SECO_UINT8,
    SSL4EO_DN,
    baseline_offset,
    seco_uint8_lut,
    seco_uint8_to_dn,
    to_dn,
)


def test_seco_lut_is_the_middle_of_the_truncation_interval():
    lut = seco_uint8_lut()
    assert lut.dtype == np.uint16 and lut.shape == (256,)
    assert lut[0] == 20 and lut[1] == 59 and lut[254] == 9980 and lut[255] == 10000
    assert np.all(np.diff(lut.astype(int)) > 0)  # strictly increasing: order of reflectances kept
    assert lut.min() > 0  # a dark uint8 0 is data, never seco's nodata


def test_seco_conversion_error_is_bounded_by_half_a_step():
    # the downloader: v = uint8(clip(r, 0, 1) * 255) (skimage rescale_intensity truncates)
    rng = np.random.default_rng(0)
    r = rng.uniform(0.0, 0.9999, size=100_000)
    v = (np.clip(r, 0, 1) * 255).astype(np.uint8)
    err = np.abs(seco_uint8_to_dn(v).astype(float) - r * 10000)
    assert err.max() <= SECO_UINT8.max_abs_error_dn + 0.5
    assert abs(float(np.mean(seco_uint8_to_dn(v) - r * 10000))) < 1.0  # unbiased (floor would be -19.6)


def test_saturated_values_map_to_reflectance_one():
    v = (np.clip(np.array([1.0, 1.3, 2.0]), 0, 1) * 255).astype(np.uint8)
    assert seco_uint8_to_dn(v).tolist() == [10000, 10000, 10000]


def test_wrong_dtypes_are_refused_with_the_corpus_named():
    with pytest.raises(CorpusError, match="expected uint8"):
        seco_uint8_to_dn(np.zeros(3, dtype=np.uint16))
    with pytest.raises(CorpusError, match="expected uint16"):
        to_dn(np.zeros(3, dtype=np.float32), SSL4EO_DN)
    with pytest.raises(CorpusError, match="do not fit uint16"):
        to_dn(np.array([-1, 5], dtype=np.int32), SSL4EO_DN)


def test_ssl4eo_is_passed_through_and_offset_keeps_nodata():
    v = np.array([0, 1, 999, 1000, 1001, 5000], dtype=np.uint16)
    assert to_dn(v, SSL4EO_DN).tolist() == v.tolist()
    assert to_dn(v, SSL4EO_DN, offset=1000).tolist() == [0, 1, 1, 1, 1, 4000]


@pytest.mark.parametrize("meta,want", [
    (None, 0), ({}, 0), ({"PROCESSING_BASELINE": "02.14"}, 0), ({"PROCESSING_BASELINE": "03.01"}, 0),
    ({"PROCESSING_BASELINE": "04.00"}, 1000), ({"PROCESSING_BASELINE": "05.10"}, 1000),
])
def test_baseline_offset(meta, want):
    assert baseline_offset(meta) == want


def test_bad_baseline_is_an_error():
    with pytest.raises(CorpusError, match="PROCESSING_BASELINE 'N/A'"):
        baseline_offset({"PROCESSING_BASELINE": "N/A"})


def test_scales_describe_themselves_honestly():
    assert SECO_UINT8.lossy and SECO_UINT8.source_scale == 255 and not SECO_UINT8.zero_is_nodata
    assert "lossy" in SECO_UINT8.note and "lossless" not in SECO_UINT8.note.replace("Never lossless", "")
    assert not SSL4EO_DN.lossy and SSL4EO_DN.zero_is_nodata
    assert SECO_UINT8.to_attrs()["source_scale"] == 255.0
