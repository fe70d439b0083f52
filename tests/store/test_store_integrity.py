"""Store integrity: per-chunk checksums, damaged shards as StoreCorruptError, `seco store check`, old stores."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from store_helpers import BANDS, P, T, location, stored

from seco.cli import main
from seco.errors import StoreCorruptError
from seco.store import StoreLayout, create_store, open_store
from seco.store.check import NO_CHECKSUMS, check_store

OLD = Path(__file__).parent / "data" / "v1_no_checksums.zarr"  # written by seco 510f953 (no checksums)


def _write(path: Path, n: int = 6, layout: StoreLayout | None = None) -> list[dict]:
    locs = [location(i) for i in range(n)]
    with create_store(path, BANDS, T, P, layout=layout) as w:
        for loc in locs:
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], loc["label"])
    return locs


def _shard(path: Path, i: int) -> Path:
    return path / "images" / "c" / str(i) / "0" / "0" / "0" / "0"


def _chunk(path: Path, i: int, t: int, b: int) -> tuple[int, int]:
    """(offset, nbytes) of inner chunk (date t, band b) of location i, from the shard index."""
    data = _shard(path, i).read_bytes()
    index = np.frombuffer(data[-(16 * T * len(BANDS) + 4) : -4], "<u8").reshape(T, len(BANDS), 2)
    return int(index[t, b, 0]), int(index[t, b, 1])


def _flip(path: Path, i: int, t: int = 0, b: int = 1, at: int = 40) -> None:
    """Flip a few bytes inside the compressed data of one chunk (not the header, not the index)."""
    off, n = _chunk(path, i, t, b)
    f = _shard(path, i)
    data = bytearray(f.read_bytes())
    for k in range(3):
        data[off + min(at + k, n - 5)] ^= 0x5A
    f.write_bytes(bytes(data))


@pytest.fixture
def damaged(tmp_path):
    """A 6-location store: location 1 flipped bytes, 3 truncated, 4 deleted; 0, 2, 5 intact."""
    path = tmp_path / "s.zarr"
    locs = _write(path)
    _flip(path, 1, t=0)
    with open(_shard(path, 3), "r+b") as f:
        f.truncate(os.path.getsize(_shard(path, 3)) // 2)
    _shard(path, 4).unlink()
    return path, locs


def test_new_stores_checksum_every_chunk_and_plain_zarr_verifies_them(tmp_path):
    path = tmp_path / "s.zarr"
    locs = _write(path, n=2)
    s = open_store(path)
    assert s.has_checksums and s.config.layout.checksum
    codecs = json.loads((path / "images" / "zarr.json").read_text())["codecs"][0]["configuration"]["codecs"]
    assert [c["name"] for c in codecs] == ["bytes", "blosc", "crc32c"]
    np.testing.assert_array_equal(zarr.open_group(str(path), mode="r")["images"][1], stored(locs[1]))
    _flip(path, 1, t=0)
    with pytest.raises(ValueError, match="checksum"):  # zarr itself checks the crc32c codec
        zarr.open_group(str(path), mode="r")["images"][1]


def test_a_clean_store_passes(tmp_path):
    path = tmp_path / "s.zarr"
    _write(path)
    report = check_store(path, progress=False)
    assert report.ok and report.checked == 6 and report.findings == [] and report.notes == []
    assert main(["store", "check", str(path), "--no-progress"]) == 0


def test_reads_of_damaged_locations_raise_naming_location_key_and_file(damaged):
    path, locs = damaged
    s = open_store(path)
    for i, what in ((1, "checksum mismatch in 1 chunk"), (3, "truncated"), (4, "missing")):
        with pytest.raises(StoreCorruptError, match=what) as e:
            s.read(i, [0, 1])  # location 1's damage is in date 0
        err = e.value
        assert err.location == i and err.key == locs[i]["key"] and err.path == str(_shard(path, i))
        msg = str(err)
        assert f"location {i}" in msg and locs[i]["key"] in msg and str(_shard(path, i)) in msg
        assert "seco store check" in msg and "--on-corrupt skip" in msg
    for i in (0, 2, 5):  # the others still read
        np.testing.assert_array_equal(s.read(i), stored(locs[i]))


def test_checksums_are_checked_once_per_shard_and_process(tmp_path):
    path = tmp_path / "s.zarr"
    locs = _write(path, n=2)
    s = open_store(path)
    s.read(1, [0, 2])
    assert s.shard_reader()._verified[1].tolist() == [True, False, True]  # the dates read were checked
    _flip(path, 1, t=2)  # damage after that: this process no longer checks them (the cost stays off the hot path)
    assert s.read(1, [2]).shape == (1, len(BANDS), P, P)
    with pytest.raises(StoreCorruptError, match=r"checksum mismatch in 1 chunk\(s\): \(date 2, chunk 1\)"):
        open_store(path).read(1, [2, 0])  # a new reader (a new process) checks at its first read
    np.testing.assert_array_equal(open_store(path).read(1, [0]), stored(locs[1])[[0]])  # date 0 is intact
    assert open_store(path, verify=False).read(1, [2]).shape == (1, len(BANDS), P, P)


def test_store_check_finds_flipped_truncated_and_missing_shards(damaged, capsys):
    path, locs = damaged
    report = check_store(path, progress=False)
    assert report.bad_locations == [1, 3, 4]
    by_loc = {f.location: f for f in report.findings}
    assert "checksum mismatch" in by_loc[1].problem and "(date 0, chunk 1)" in by_loc[1].problem
    assert "truncated" in by_loc[3].problem and "missing" in by_loc[4].problem
    assert all(by_loc[i].key == locs[i]["key"] and by_loc[i].path == str(_shard(path, i)) for i in (1, 3, 4))
    parallel = check_store(path, workers=2, batch=2, progress=False)  # 3 tasks over 2 spawned processes
    assert parallel.findings == report.findings

    assert main(["store", "check", str(path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    for i in (1, 3, 4):
        assert f"location {i} (key '{locs[i]['key']}')" in out and str(_shard(path, i)) in out
    assert "3 bad: 1, 3, 4" in out

    assert main(["store", "check", str(path), "--no-progress", "--json", "--workers", "2"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["bad_locations"] == [1, 3, 4] and not rep["ok"]
    assert [f["location"] for f in rep["findings"]] == [1, 3, 4]


def test_store_check_rejects_bad_options(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    _write(path, n=1)
    assert main(["store", "check", str(path), "--checks", "nonsense", "--no-progress"]) == 2
    assert "unknown check" in capsys.readouterr().err
    assert main(["store", "check", str(path), "--workers", "0", "--no-progress"]) == 2
    assert main(["store", "check", str(tmp_path / "nowhere.zarr"), "--no-progress"]) == 2


def test_a_store_of_an_older_seco_reads_and_is_checked_for_decodability(tmp_path, capsys):
    s = open_store(OLD)
    assert not s.has_checksums and len(s) == 4
    for i in range(4):
        loc = location(i)
        np.testing.assert_array_equal(s.read(i), stored(loc))
        assert s.key(i) == loc["key"]
    report = check_store(OLD, progress=False)
    assert report.ok and report.notes == [NO_CHECKSUMS]
    assert main(["store", "check", str(OLD), "--no-progress"]) == 0
    assert "no checksums (written by an older seco)" in capsys.readouterr().out

    old = tmp_path / "old.zarr"
    shutil.copytree(OLD, old)
    off, _ = _chunk(old, 2, 1, 0)
    data = bytearray(_shard(old, 2).read_bytes())
    data[off + 12 : off + 16] = b"\xff\xff\xff\x7f"  # the Blosc header's compressed size: garbage
    _shard(old, 2).write_bytes(bytes(data))
    report = check_store(old, progress=False)
    assert report.bad_locations == [2] and "do not decode" in report.findings[0].problem
    with pytest.raises(StoreCorruptError, match="cannot be decoded") as e:
        open_store(old).read(2, [1])
    assert e.value.location == 2 and e.value.key == location(2)["key"]


def test_migrate_converts_an_old_store_and_resumes(tmp_path, capsys):
    dst = tmp_path / "new.zarr"
    src = open_store(OLD)
    # an interrupted migration: the first two locations are already in the destination
    with create_store(dst, src.bands, src.num_dates, src.patch_size, label_names=src.label_names) as w:
        for i in range(2):
            w.append(src.key(i), src.read(i), src.valid(i), src.meta(i), int(src.labels()[i]))
    assert main(["store", "migrate", str(OLD), str(dst), "--no-progress"]) == 0
    assert "2 location(s) copied, 2 already there" in capsys.readouterr().out
    new = open_store(dst)
    assert new.has_checksums and new.config.layout == StoreLayout() and len(new) == 4
    assert new.keys() == src.keys() and (new.labels() == src.labels()).all()
    for i in range(4):
        np.testing.assert_array_equal(new.read(i), src.read(i))
        assert new.meta(i) == src.meta(i)
    assert check_store(dst, progress=False).ok
    assert main(["store", "migrate", str(OLD), str(dst), "--no-progress"]) == 0  # nothing left to do
    assert "0 location(s) copied, 4 already there" in capsys.readouterr().out
    assert main(["store", "migrate", str(OLD), str(dst), "--shuffle", "shuffle", "--no-progress"]) == 2  # other layout
    assert main(["store", "migrate", str(OLD), str(OLD), "--no-progress"]) == 2
    capsys.readouterr()
    assert main(["store", "info", str(dst), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["locations"] == 4 and info["checksums"] and info["layout"]["shuffle"] == "noshuffle"


def test_migrate_skips_damaged_locations_only_when_asked(damaged, tmp_path):
    from seco.store.migrate import migrate_store

    path, locs = damaged
    with pytest.raises(StoreCorruptError):
        migrate_store(path, tmp_path / "a.zarr", progress=False)
    r = migrate_store(path, tmp_path / "b.zarr", on_corrupt="skip", progress=False)
    assert r.skipped == [1, 3, 4] and r.copied == 3
    assert open_store(tmp_path / "b.zarr").keys() == [locs[i]["key"] for i in (0, 2, 5)]


def test_direct_blosc_calls_decode_as_numcodecs_does(tmp_path, monkeypatch):
    """The reader calls c-blosc directly when numcodecs' library exports it; the numcodecs path is the fallback."""
    import seco.store.shard as shard

    path = tmp_path / "s.zarr"
    locs = _write(path, n=3)
    if shard._BLOSC_C is None:
        pytest.skip("this numcodecs build does not export blosc_decompress_ctx: only the fallback runs here")
    direct = [open_store(path).read(i, [2, 0], ["B08", "B02", "B04"]) for i in range(3)]
    monkeypatch.setattr(shard, "_BLOSC_C", None)
    fallback = [open_store(path).read(i, [2, 0], ["B08", "B02", "B04"]) for i in range(3)]
    for i in range(3):
        np.testing.assert_array_equal(direct[i], fallback[i])
        np.testing.assert_array_equal(direct[i], stored(locs[i])[[2, 0]][:, [3, 0, 2]])


def test_check_through_zarr_for_layouts_the_direct_reader_does_not_handle(tmp_path, monkeypatch):
    """Object stores and unsharded layouts are read through zarr: damage is still found and named."""
    import seco.store.reader as reader_mod

    path = tmp_path / "s.zarr"
    locs = _write(path, n=3)
    monkeypatch.setattr(reader_mod.ShardReader, "for_array", classmethod(lambda cls, *a, **k: None))  # as for a URL
    _flip(path, 1, t=0)
    _shard(path, 2).unlink()
    report = check_store(path, progress=False)
    assert report.bad_locations == [1, 2]
    assert "checksum" in report.findings[0].problem.lower() and "missing" in report.findings[1].problem
    with pytest.raises(StoreCorruptError, match="location 1") as e:
        open_store(path).read(1)
    assert e.value.key == locs[1]["key"] and e.value.path.endswith("images/c/1/0/0/0/0")


def test_reads_without_mmap_give_the_same_pixels(tmp_path, monkeypatch):
    """A file system that cannot memory-map falls back to reading the shard."""
    import mmap as mmap_mod

    import seco.store.shard as shard

    path = tmp_path / "s.zarr"
    locs = _write(path, n=2)

    def no_mmap(*a, **k):
        raise OSError("mmap not supported here")

    monkeypatch.setattr(shard.mmap, "mmap", no_mmap)
    assert shard.mmap is mmap_mod
    np.testing.assert_array_equal(open_store(path).read(1, [2, 0]), stored(locs[1])[[2, 0]])


def test_an_index_pointing_outside_the_file_is_damage_even_with_a_valid_crc(tmp_path):
    """Entries past the end (or wrapping around 2**64) are refused before any decode touches memory."""
    import google_crc32c

    path = tmp_path / "s.zarr"
    _write(path, n=1)
    f = _shard(path, 0)
    data = bytearray(f.read_bytes())
    n = 16 * T * len(BANDS)
    index = np.frombuffer(bytes(data[-n - 4 : -4]), "<u8").reshape(T, len(BANDS), 2).copy()
    index[1, 2] = (2**63, 2**63 + 16)  # off + nbytes wraps around to 16
    raw = index.tobytes()
    data[-n - 4 :] = raw + google_crc32c.value(raw).to_bytes(4, "little")
    f.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptError, match="points outside"):
        open_store(path).read(0, [0])
    assert check_store(path, progress=False).bad_locations == [0]
