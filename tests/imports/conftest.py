"""Fake corpora shared by the import tests (written once per session: a few seconds each)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # fakes.py, also for child processes
    sys.path.insert(0, HERE)

from fakes import Fake, make_seco, make_ssl4eo  # noqa: E402


@pytest.fixture(scope="session")
def seco_fake(tmp_path_factory: pytest.TempPathFactory) -> Fake:
    return make_seco(tmp_path_factory.mktemp("corpus") / "seasonal_contrast_100k", locations=8, seed=1)


@pytest.fixture(scope="session")
def ssl4eo_fake(tmp_path_factory: pytest.TempPathFactory) -> Fake:
    return make_ssl4eo(tmp_path_factory.mktemp("corpus") / "ssl4eo-s12", locations=8, seed=2)


@pytest.fixture(scope="session")
def seco_store(seco_fake: Fake, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake SeCo corpus imported in this process (the reference other runs are compared with)."""
    from seco.imports import ImportConfig, run_import

    out = tmp_path_factory.mktemp("imported") / "seco.zarr"
    run_import(ImportConfig("seco", str(seco_fake.root), str(out), workers=0, patch_size=seco_fake.patch,
                            progress=False))
    return out
