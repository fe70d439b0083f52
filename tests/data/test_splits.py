"""Seeded stratified splits and published split-file reading (seco.data.splits)."""

from __future__ import annotations

import numpy as np
import pytest

from seco.data.splits import (
    _allocate,
    item_name,
    match_names,
    rarest_label_strata,
    read_name_list,
    select_indices,
    stratified_split,
)
from seco.errors import ConfigError, DatasetError


@pytest.mark.parametrize(
    ("entry", "name"),
    [
        ("AnnualCrop_1.jpg", "AnnualCrop_1"),
        ("2750/Forest/Forest_12.JPG", "Forest_12"),
        ("Forest\\Forest_12.tif", "Forest_12"),
        ("  River_3.tiff ", "River_3"),
        ("S2A_MSIL2A_20170613T101031_0_45", "S2A_MSIL2A_20170613T101031_0_45"),
        ("patch.v2", "patch.v2"),  # not an image extension: kept
    ],
)
def test_item_name(entry: str, name: str) -> None:
    assert item_name(entry) == name


def test_read_name_list_lines_csv_header_comments(tmp_path) -> None:
    p = tmp_path / "list.csv"
    p.write_text(
        'name,s1_name\n# a comment\n\nA_1.jpg,S1_x\n"B_2",S1_y\nA_1.jpg,dup\nC_3\tignored\nD_4 5\n',
        encoding="utf-8",
    )
    assert read_name_list(p) == ["A_1", "B_2", "C_3", "D_4"]


def test_read_name_list_header_only_skipped_on_first_row(tmp_path) -> None:
    p = tmp_path / "list.txt"
    p.write_text("X_1\nname\n", encoding="utf-8")  # 'name' after data is a name, not a header
    assert read_name_list(p) == ["X_1", "name"]


def test_read_name_list_errors(tmp_path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_name_list(tmp_path / "nope.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# only a comment\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="lists no names"):
        read_name_list(empty)


def test_match_names_reports_missing(tmp_path) -> None:
    assert match_names(["c", "a"], ["a", "b", "c"], "f.txt", tmp_path) == [2, 0]
    with pytest.raises(DatasetError) as e:
        match_names(["a", "zz1", "zz2"], ["a", "b"], "f.txt", tmp_path)
    msg = str(e.value)
    assert "2 of 3" in msg and "zz1" in msg and "zz2" in msg and str(tmp_path) in msg


@pytest.mark.parametrize("n", range(0, 40))
def test_allocate_sums_and_proportions(n: int) -> None:
    counts = _allocate(n, (0.6, 0.2, 0.2))
    assert sum(counts) == n
    for c, f in zip(counts, (0.6, 0.2, 0.2), strict=True):
        assert abs(c - n * f) < 1.0


def test_stratified_split_partition_stratification_determinism() -> None:
    rng = np.random.default_rng(1)
    strata = np.repeat(np.arange(5), [30, 25, 20, 7, 3])
    strata = strata[rng.permutation(len(strata))]
    a = stratified_split(strata, seed=7)
    b = stratified_split(strata, seed=7)
    c = stratified_split(strata, seed=8)
    for s in a:
        np.testing.assert_array_equal(a[s], b[s])
    assert any(not np.array_equal(a[s], c[s]) for s in a)
    together = np.concatenate([a["train"], a["val"], a["test"]])
    assert sorted(together.tolist()) == list(range(len(strata)))  # a partition
    for k, n in zip(range(5), [30, 25, 20, 7, 3], strict=True):
        for s, f in zip(("train", "val", "test"), (0.6, 0.2, 0.2), strict=True):
            got = int((strata[a[s]] == k).sum())
            assert abs(got - n * f) < 1.0, (k, s, got)
    assert (strata[a["train"]] == 0).sum() == 18 and (strata[a["val"]] == 0).sum() == 6


def test_stratified_split_fractions_validated() -> None:
    with pytest.raises(ConfigError, match="fractions"):
        stratified_split(np.zeros(10), fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ConfigError, match="fractions"):
        stratified_split(np.zeros(10), fractions=(1.2, -0.1, -0.1))
    with pytest.raises(ConfigError, match="fractions"):
        stratified_split(np.zeros(10), fractions=(0.5, 0.5))
    out = stratified_split(np.zeros(10), fractions=(1.0, 0.0, 0.0))
    assert len(out["train"]) == 10 and len(out["val"]) == 0 and len(out["test"]) == 0


def test_rarest_label_strata() -> None:
    t = np.array(
        [
            [1, 0, 0, 0],  # only label 0
            [1, 1, 0, 0],  # label 1 (freq 2) rarer than label 0 (freq 4)
            [1, 1, 1, 0],  # label 2 (freq 1) is the rarest
            [1, 0, 0, 0],
            [0, 0, 0, 0],  # no label -> stratum K = 4
        ]
    )
    np.testing.assert_array_equal(rarest_label_strata(t), [0, 1, 2, 0, 4])


def test_select_indices_modes(tmp_path) -> None:
    names = ["a", "b", "c", "d"]
    strata = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(
        select_indices(names, strata, None, None, 0, (0.6, 0.2, 0.2), tmp_path), [0, 1, 2, 3]
    )
    f = tmp_path / "split.txt"
    f.write_text("d.jpg\nb.jpg\n", encoding="utf-8")
    # the file decides, in file order; split is only a label
    np.testing.assert_array_equal(
        select_indices(names, strata, "train", f, 0, (0.6, 0.2, 0.2), tmp_path), [3, 1]
    )
    with pytest.raises(ConfigError, match="unknown split"):
        select_indices(names, strata, "training", None, 0, (0.6, 0.2, 0.2), tmp_path)
