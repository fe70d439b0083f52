"""``seco import ... --grid native``: the corpus' 20 m / 60 m files kept at their resolution, equal through
``Store.read`` to the 10 m import; reruns keep the grid; a corpus resampled off the grid fails at once."""

from __future__ import annotations

import dataclasses

import numpy as np
from test_import import _same_store

from seco.cli import main
from seco.imports import ImportConfig, run_import
from seco.store import open_store


def _cmd(root, out, *extra: str) -> list[str]:
    return ["import", "seco", str(root), "--out", str(out), "--workers", "0", "--patch-size", "48", "--no-progress",
            *extra]


def test_native_import_reads_equal_to_the_10m_import(seco_fake, seco_store, tmp_path):
    out = tmp_path / "native.zarr"
    assert main(_cmd(seco_fake.root, out, "--grid", "native")) == 0
    s = open_store(out)
    assert s.grid_factors["B01"] == 6 and s.grid_factors["B11"] == 2 and s.grid_factors["B02"] == 1
    assert s.attrs["import"]["config"]["grid"] == "native" and "native" in s.attrs["import"]["grid"]
    assert open_store(seco_store).attrs["import"]["config"]["grid"] == "10m"
    _same_store(seco_store, out)  # pixels (crops and nodata pads included), metadata, histograms


def test_rerun_keeps_the_store_grid(seco_fake, tmp_path, capsys):
    out = tmp_path / "n.zarr"
    cfg = ImportConfig("seco", str(seco_fake.root), str(out), workers=0, patch_size=48, progress=False,
                       grid="native", limit=3)
    run_import(cfg)
    assert main(_cmd(seco_fake.root, out, "--grid", "10m")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'native' grid" in err and "drop --grid" in err
    assert main(_cmd(seco_fake.root, out)) == 0  # no --grid: continues on the store's grid
    s = open_store(out)
    assert s.grid_factors["B09"] == 6 and len(s) > 3


def test_corpus_resampled_off_the_grid_fails_at_the_first_location(seco_fake, tmp_path, monkeypatch, capsys):
    """A corpus whose 20 m bands are not whole 2 x 2 blocks (here: shifted by one 10 m pixel, as a resampling
    onto another grid would leave them) stops with a typed one-line error naming --grid 10m, before the rest."""
    from seco.imports import pipeline, readers

    calls = []

    def shifted(ref, job):
        calls.append(ref.name)
        r = readers.read_location(ref, job)
        if r.images is not None:
            r = dataclasses.replace(r, images=np.roll(r.images, 1, axis=-1))
        return r

    monkeypatch.setattr(pipeline, "read_location", shifted)
    out = tmp_path / "bad.zarr"
    assert main(_cmd(seco_fake.root, out, "--grid", "native")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--grid 10m" in err and "not constant on" in err
    assert len(calls) <= 4 + 2  # the reorder window, not the whole corpus
    assert not out.exists()  # the store it created holds no location: removed, so a rerun may choose other settings
    assert main(_cmd(seco_fake.root, tmp_path / "ok.zarr", "--grid", "10m")) == 0  # the fix works
