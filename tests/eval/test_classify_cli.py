"""``seco eval eurosat|bigearthnet|compare`` end to end on seeded fakes (and the real samples when present)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from seco.bands import L1C, L2A, RGB
from seco.data.eurosat import EuroSAT
from seco.models.resnet import ResNet
from tests.eval._helpers import SHARED, make_export

FILES = ("metrics.json", "report.md", "config.yaml", "label_fractions.png")


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def random_run(fake_eurosat: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One fast-probe run with random weights (shared by the tests that only read its outputs)."""
    from seco.cli import main

    tmp = tmp_path_factory.mktemp("random_run")
    out = tmp / "random"
    code = main([str(a) for a in ("eval", "eurosat", "--root", fake_eurosat, "--weights", "random", "--out", out,
                                  "--fractions", "20,100", "--cs", "0.1,1", "--cache-dir", tmp / "cache",
                                  "--no-progress")])
    assert code == 0
    return out, ""


def test_eurosat_fast_probe_random_init(random_run: tuple[Path, str]) -> None:
    out = random_run[0]
    for f in (*FILES, "confusion_matrix.png", "per_class_accuracy.png"):
        assert (out / f).is_file(), f
    m = _metrics(out)
    assert m["protocol"] == "fast" and m["weights_kind"] == "random" and m["backbone_unchanged"] is True
    assert m["splits"] == {"train": 30, "val": 10, "test": 10, "test_is_val": False}
    assert set(m["fractions"]) == {"20", "100"}
    assert m["fractions"]["20"]["n_train"] == 10 and m["fractions"]["100"]["n_train"] == 30
    r = m["fractions"]["100"]
    assert np.asarray(r["confusion_matrix"]).sum() == 10 and len(r["per_class_accuracy"]) == 10
    assert r["accuracy"] >= 0.8  # the fakes carry a strong class signal
    assert set(r["c_search"]) == {"0.1", "1.0"} and r["best_c"] in (0.1, 1.0)
    assert m["headline"] == {"metric": "accuracy", "value": r["accuracy"], "fraction": 100.0,
                             "by_fraction": {"20": m["fractions"]["20"]["accuracy"], "100": r["accuracy"]}}
    assert m["normalization"].startswith("train split statistics")
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["weights"] == "random" and cfg["fractions"] == [20.0, 100.0] and cfg["task"] == "eurosat"
    assert "| 100 % | 30 |" in (out / "report.md").read_text()


def test_export_weights_and_feature_cache_hit(
    run_cli, fake_eurosat: Path, export_l1c_reversed: Path, tmp_path: Path, forward_counter: dict
) -> None:
    cache = tmp_path / "cache"
    args = ["eval", "eurosat", "--root", fake_eurosat, "--weights", export_l1c_reversed, "--cache-dir", cache,
            "--no-progress", "--batch-size", "16", "--cs", "1"]
    code, _, err = run_cli(*args, "--out", tmp_path / "a")
    assert code == 0, err
    assert forward_counter["images"] == 50  # train 30 + val 10 + test 10, once each
    a = _metrics(tmp_path / "a")
    assert a["cache"] == {"train": "miss", "val": "miss", "test": "miss"}
    assert a["weights_kind"] == "export" and a["bands"] == list(reversed(L1C))  # the weights' order
    assert a["normalization"] == "weights (export)"
    entries = sorted((cache / "features").glob("*.npz"))
    assert len(entries) == 3
    mtimes = [p.stat().st_mtime_ns for p in entries]

    forward_counter["images"] = 0
    code, _, err = run_cli(*args, "--out", tmp_path / "b")
    assert code == 0, err
    assert forward_counter["images"] == 0  # nothing recomputed
    b = _metrics(tmp_path / "b")
    assert b["cache"] == {"train": "hit", "val": "hit", "test": "hit"}
    assert b["fractions"]["100"]["accuracy"] == a["fractions"]["100"]["accuracy"]
    assert [p.stat().st_mtime_ns for p in entries] == mtimes

    forward_counter["images"] = 0  # another transform (bf16) is another key
    code, _, err = run_cli(*args, "--out", tmp_path / "c", "--bf16")
    assert code == 0, err
    assert forward_counter["images"] == 50 and _metrics(tmp_path / "c")["cache"]["train"] == "miss"


def test_a_backbone_that_changes_is_caught(run_cli, fake_eurosat: Path, tmp_path: Path, monkeypatch) -> None:
    original = ResNet.forward_features

    def drifting(self, x):  # an injected bug: every forward pass nudges a weight
        with torch.no_grad():
            self.layer3[0].conv2.weight.add_(1e-4)
        return original(self, x)

    monkeypatch.setattr(ResNet, "forward_features", drifting)
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", "random", "--out", out,
                           "--no-cache", "--no-progress")
    assert code == 2
    assert "frozen backbone changed" in err and "layer3.0.conv2.weight" in err
    assert not (out / "metrics.json").exists()


def test_band_mismatch_is_refused(run_cli, fake_eurosat: Path, fake_bigearthnet: Path,
                                  export_l1c_reversed: Path, tmp_path: Path) -> None:
    rgb = make_export(tmp_path / "rgb", RGB)
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", rgb, "--bands", "B02,B03,B04,B08",
                           "--out", tmp_path / "x", "--no-progress")
    assert code == 2 and "trained on bands B04, B03, B02" in err and "extra B08" in err
    code, _, err = run_cli("eval", "bigearthnet", "--root", fake_bigearthnet, "--weights", export_l1c_reversed,
                           "--out", tmp_path / "y", "--no-progress")
    assert code == 2 and "B10" in err and "does not have" in err
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", tmp_path / "nope.pth",
                           "--out", tmp_path / "z", "--no-progress")
    assert code == 2 and "not found" in err


def test_rgb_export_reads_the_rgb_bands_of_ms_data(run_cli, fake_eurosat: Path, tmp_path: Path) -> None:
    rgb = make_export(tmp_path / "rgb", RGB)
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", rgb, "--bands", "B02,B03,B04",
                           "--out", tmp_path / "run", "--cs", "1", "--no-cache", "--no-progress")
    assert code == 0, err
    assert _metrics(tmp_path / "run")["bands"] == list(RGB)


def test_bigearthnet_fast_probe(run_cli, fake_bigearthnet: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "bigearthnet", "--root", fake_bigearthnet, "--weights", "random", "--out", out,
                           "--size", "64", "--fractions", "50,100", "--cs", "0.1,1", "--no-cache",
                           "--no-progress")
    assert code == 0, err
    for f in (*FILES, "per_class_ap.png"):
        assert (out / f).is_file(), f
    m = _metrics(out)
    assert m["bands"] == list(L2A) and len(m["classes"]) == 19
    r = m["fractions"]["100"]
    assert 0 <= r["micro_map"] <= 1 and 0 <= r["macro_map"] <= 1 and len(r["per_class_ap"]) == 19
    assert m["headline"]["metric"] == "micro_map"
    l2a_shuffled = tuple(L2A[i] for i in np.random.default_rng(0).permutation(len(L2A)))
    weights = make_export(tmp_path / "l2a", l2a_shuffled)
    code, _, err = run_cli("eval", "bigearthnet", "--root", fake_bigearthnet, "--weights", weights, "--out",
                           tmp_path / "export", "--size", "64", "--cs", "1", "--no-cache", "--no-progress")
    assert code == 0, err
    m = _metrics(tmp_path / "export")
    assert m["bands"] == list(l2a_shuffled) and m["normalization"] == "weights (export)"


def test_paper_and_finetune_protocols(run_cli, fake_eurosat: Path, tmp_path: Path) -> None:
    for proto in ("paper", "finetune"):
        out = tmp_path / proto
        code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", "random", "--out", out,
                               "--protocol", proto, "--epochs", "2", "--train-batch-size", "8", "--no-cache",
                               "--fractions", "50", "--no-progress")
        assert code == 0, err
        m = _metrics(out)
        assert m["protocol"] == proto and m["backbone_unchanged"] is True
        assert len(m["history"]["50"]) == 2 and (out / "training_loss.png").is_file()
        assert m["fractions"]["50"]["epochs_run"] == 2 and m["fractions"]["50"]["n_train"] == 20  # round(1.5) = 2 per class


def test_split_files_without_test_use_val_as_test(run_cli, fake_eurosat: Path, tmp_path: Path) -> None:
    names = EuroSAT(fake_eurosat).names
    (tmp_path / "train.txt").write_text("\n".join(f"{n}.jpg" for n in names[::2]))  # published lists name .jpg
    (tmp_path / "val.txt").write_text("\n".join(names[1::2]))
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", "random", "--out", out,
                           "--split-file", f"train={tmp_path / 'train.txt'}", "--split-file",
                           f"val={tmp_path / 'val.txt'}", "--cs", "1", "--no-cache", "--no-progress")
    assert code == 0, err
    m = _metrics(out)
    assert m["splits"] == {"train": 25, "val": 25, "test": 25, "test_is_val": True}
    assert "test = val" in (out / "report.md").read_text()
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", "random", "--out", out,
                           "--split-file", f"train={tmp_path / 'train.txt'}", "--no-progress")
    assert code == 2 and "val=PATH" in err


def test_compare_runs(run_cli, random_run: tuple[Path, str], fake_eurosat: Path, tmp_path: Path) -> None:
    other = tmp_path / "seed1"
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", "random", "--out", other,
                           "--seed", "1", "--fractions", "50,100", "--cs", "1", "--no-cache", "--no-progress")
    assert code == 0, err
    code, stdout, err = run_cli("eval", "compare", random_run[0], other, "--out", tmp_path / "cmp")
    assert code == 0, err
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert md.strip() in stdout
    rows = [line for line in md.splitlines() if line.startswith(("| random ", "| seed1 "))]
    assert len(rows) == 2 and "| 20 % | 50 % | 100 % |" in md
    cells = [c.strip() for c in rows[1].strip("|").split("|")]
    assert cells[7] == "n/a" and cells[6] == cells[9]  # no 20 % point; value = the 100 % column
    assert (tmp_path / "cmp" / "compare.png").is_file()
    code, _, err = run_cli("eval", "compare", tmp_path, "--out", tmp_path / "cmp2")
    assert code == 2 and "no metrics.json" in err


@pytest.mark.skipif(not (SHARED / "eurosat_ms").is_dir(), reason=f"real EuroSAT MS sample not at {SHARED}")
def test_real_eurosat_ms_sample(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli("eval", "eurosat", "--root", SHARED / "eurosat_ms", "--weights", "random", "--out", out,
                           "--fractions", "10,100", "--cs", "0.1,1", "--no-cache", "--no-progress")
    assert code == 0, err
    m = _metrics(out)
    assert m["splits"]["test"] == 54 and len(m["bands"]) == 13
    assert m["fractions"]["100"]["accuracy"] > 0.3  # random features: well above 10 % chance, far from perfect


@pytest.mark.skipif(not (SHARED / "bigearthnet").is_dir(), reason=f"real BigEarthNet sample not at {SHARED}")
def test_real_bigearthnet_sample(run_cli, tmp_path: Path) -> None:
    root = SHARED / "bigearthnet"
    names = sorted(p.name for p in (root / "BigEarthNet-v1.0").iterdir() if p.is_dir())
    for split, part in (("train", names[:8]), ("val", names[8:11]), ("test", names[11:])):
        (tmp_path / f"{split}.csv").write_text("\n".join(part))
    out = tmp_path / "run"
    splits = [a for s in ("train", "val", "test") for a in ("--split-file", f"{s}={tmp_path / f'{s}.csv'}")]
    code, _, err = run_cli("eval", "bigearthnet", "--root", root, "--weights", "random", "--out", out,
                           "--size", "64", *splits, "--cs", "1", "--no-cache", "--no-progress")
    assert code == 0, err
    m = _metrics(out)
    assert m["splits"]["train"] <= 8 and 0 <= m["headline"]["value"] <= 1


def test_official_checkpoint_weights(run_cli, fake_eurosat: Path, tmp_path: Path) -> None:
    from seco.models.contrastive import ContrastiveConfig, ContrastiveModel
    from seco.models.official import to_official_state_dict
    from tests.eval._helpers import fakes

    torch.manual_seed(0)
    model = ContrastiveModel.from_config(ContrastiveConfig(in_chans=3, emb_dim=16, queue_size=8))
    ckpt = tmp_path / "seco_resnet18_tiny.ckpt"
    torch.save({"state_dict": to_official_state_dict(model.state_dict()),
                "hyper_parameters": {"base_encoder": "resnet18", "emb_spaces": 3, "emb_dim": 16}}, ckpt)
    code, _, err = run_cli("eval", "eurosat", "--root", fake_eurosat, "--weights", f"official:{ckpt}",
                           "--out", tmp_path / "ms", "--cs", "1", "--no-cache", "--no-progress")
    assert code == 0, err
    m = _metrics(tmp_path / "ms")
    assert m["weights_kind"] == "official" and m["bands"] == list(RGB)
    assert m["transform"]["clip"] is not None and m["normalization"] == "weights (official)"
    rgb_root = fakes.write_eurosat_rgb(tmp_path / "rgb", per_class=5, seed=0)
    code, _, err = run_cli("eval", "eurosat", "--root", rgb_root, "--weights", f"official:{ckpt}",
                           "--out", tmp_path / "rgb_run", "--cs", "1", "--no-cache", "--no-progress")
    assert code == 0, err
    m = _metrics(tmp_path / "rgb_run")
    assert m["transform"] == {"normalization": None, "clip": None}  # pixels / 255 as main_eurosat.py
    assert "ToTensor" in (tmp_path / "rgb_run" / "report.md").read_text()


def test_the_seco_cli_routes_eval_and_embed(tmp_path: Path, capsys) -> None:
    from seco.cli import main

    assert main(["eval", "compare", str(tmp_path), "--out", str(tmp_path / "cmp")]) == 2
    assert main(["embed", "--weights", "random", "--input", str(tmp_path / "missing.tif"),
                 "--out", str(tmp_path / "e.parquet")]) == 2
    err = capsys.readouterr().err
    assert "no metrics.json" in err and "does not exist" in err


def test_a_split_too_small_to_exist_is_a_clear_error(run_cli, tmp_path: Path) -> None:
    from tests.eval._helpers import fakes

    fakes.write_bigearthnet(tmp_path / "ben", num_patches=6, seed=0)
    code, _, err = run_cli("eval", "bigearthnet", "--root", tmp_path / "ben", "--weights", "random",
                           "--out", tmp_path / "run", "--no-cache", "--no-progress")
    assert code == 2 and "is empty" in err and "--split-file" in err
