"""Fixtures of the evaluation tests: seeded fake datasets, a seco export, and a CLI runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from seco.bands import L1C
from tests.eval._helpers import fakes, make_export


@pytest.fixture(scope="session")
def fake_eurosat(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EuroSAT MS, 5 images per class (30 / 10 / 10 after the seeded split)."""
    return fakes.write_eurosat_ms(tmp_path_factory.mktemp("eurosat_ms"), per_class=5, seed=1)


@pytest.fixture(scope="session")
def fake_bigearthnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BigEarthNet, 48 patches (one unlabeled, dropped)."""
    root = tmp_path_factory.mktemp("bigearthnet")
    fakes.write_bigearthnet(root, num_patches=48, seed=0)
    return root


@pytest.fixture(scope="session")
def fake_oscd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OSCD, 3 train + 2 test cities of ~40 px, test labels included."""
    return fakes.write_oscd(tmp_path_factory.mktemp("oscd"), test_labels=True)


@pytest.fixture(scope="session")
def export_l1c_reversed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export taking the 13 L1C bands in reversed order (so loaders must reorder by name)."""
    return make_export(tmp_path_factory.mktemp("weights") / "rev", tuple(reversed(L1C)))


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """Run ``seco <argv>`` through :func:`seco.eval.commands.main`; returns (exit code, stdout, stderr)."""
    from seco.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        cap = capsys.readouterr()
        return code, cap.out, cap.err

    return run


@pytest.fixture
def forward_counter(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts images through ``ResNet.forward_features`` (any instance)."""
    from seco.models.resnet import ResNet

    counts = {"images": 0, "calls": 0}
    original = ResNet.forward_features

    def counting(self, x):
        counts["calls"] += 1
        counts["images"] += int(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(ResNet, "forward_features", counting)
    return counts
