"""The import benchmark still runs (tiny settings) and writes corpora the importer accepts."""

from __future__ import annotations

import pytest


def test_bench_import_runs_tiny(shared_dir, capsys):
    if not (shared_dir / "data" / "oscd").is_dir():
        pytest.skip("the OSCD sample is not in ../shared/data")
    from bench.bench_import import main

    main(["--locations", "2", "--reads", "3", "--workers", "0"])
    out = capsys.readouterr().out
    assert "| seco | in-process | 2 |" in out and "| ssl4eo-s12 | in-process | 2 |" in out
    assert "uint8 x 255 + lookup to DN" in out and "PretrainDataset" in out


def test_bench_import_s1_runs_tiny(capsys):
    from bench.bench_import_s1 import main

    main(["--locations", "2", "--rounds", "1", "--patch", "48"])
    out = capsys.readouterr().out
    assert "| without |" in out and "| with |" in out and "with / without: time x" in out
