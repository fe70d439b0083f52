"""Files from elsewhere: no entry point executes pickled code, and every malformed file is one typed error.

Each malicious file names ``os.system`` or ``builtins.open`` in its pickle (``__reduce__``), which full
unpickling would call to create a marker file; the tests prove the marker never appears, through the real CLI
of every command that loads weights: ``export``, ``pretrain --resume``, ``eval --weights``, ``embed --weights``
and ``export --from-official``.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from seco.backbones import build_backbone
from seco.cli import main
from seco.errors import CheckpointError
from seco.models.export import export_backbone, load_exported
from seco.models.safe_load import read_torch_file, to_safe
from seco.train.run_checkpoint import load_checkpoint
from tests.conftest import tiny_pretrain_args

torch.set_num_threads(1)


class _Payload:
    """Unpickling this (with full pickle) creates ``marker``: through os.system or builtins.open."""

    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = marker, how

    def __reduce__(self) -> tuple[Any, ...]:
        if self.how == "system":
            return (os.system, (f"touch {self.marker}",))
        return (open, (str(self.marker), "w"))


def _full_pickle_runs_it(path: Path, marker: Path) -> None:
    """The control: plain unpickling of the same file does create the marker (so the test can fail)."""
    try:
        torch.load(path, weights_only=False)
    except RuntimeError:  # a bare pickle: torch runs it as its "magic number", then gives up
        pass
    assert marker.exists(), path.name
    marker.unlink()


@pytest.fixture(scope="module")
def run(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-step seco pretrain run (its last.ckpt is the template of the hand-made files)."""
    out = tmp_path_factory.mktemp("untrusted") / "run"
    assert main(tiny_pretrain_args(tiny_store, out, "--max-steps", "1")) == 0
    return out


@pytest.fixture
def cli(capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str]]:
    def call(*argv: Any) -> tuple[int, str]:
        code = main([str(a) for a in argv])
        return code, capsys.readouterr().err

    return call


def _one_line_error(err: str, command: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"seco {command}: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], (n, err)


def _evil_files(d: Path, marker: Path) -> dict[str, Path]:
    """A torch zip, a bare pickle and a legacy (pre-1.6) torch file, each running the payload when unpickled."""
    d.mkdir(parents=True, exist_ok=True)
    files = {
        "zip-system": d / "zip_system.ckpt",
        "zip-open": d / "zip_open.ckpt",
        "pickle": d / "bare_pickle.ckpt",
        "legacy": d / "legacy.ckpt",
    }
    torch.save({"state_dict": _Payload(marker, "system")}, files["zip-system"])
    torch.save(_Payload(marker, "open"), files["zip-open"])
    with files["pickle"].open("wb") as f:
        pickle.dump({"model": _Payload(marker, "open")}, f)
    torch.save({"x": _Payload(marker, "system")}, files["legacy"], _use_new_zipfile_serialization=False)
    return files


def test_control_full_pickle_would_run_the_payload(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    files = _evil_files(tmp_path / "evil", marker)
    for path in files.values():
        _full_pickle_runs_it(path, marker)


@pytest.mark.parametrize("kind", ["zip-system", "zip-open", "pickle", "legacy"])
def test_no_entry_point_runs_pickled_code(run: Path, tmp_path: Path, cli, kind: str) -> None:
    marker = tmp_path / "marker"
    evil = _evil_files(tmp_path / "evil", marker)[kind]

    code, err = cli("export", evil, "--out", tmp_path / "w")
    assert code == 2 and not marker.exists()
    _one_line_error(err, "export", evil.name)

    code, err = cli("export", "--from-official", evil, "--out", tmp_path / "w")
    assert code == 2 and not marker.exists()
    _one_line_error(err, "export", evil.name)

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    (resumed / "last.ckpt").write_bytes(evil.read_bytes())
    cfg = json.loads(json.dumps(load_checkpoint(run / "last.ckpt")["config"]))
    code, err = cli(*tiny_pretrain_args(Path(cfg["store"]), resumed, "--max-steps", "2", "--resume"))
    assert code == 2 and not marker.exists()
    _one_line_error(err, "pretrain", "last.ckpt")

    for weights in (str(evil), f"official:{evil}"):
        code, err = cli("eval", "eurosat", "--root", tmp_path / "no_data", "--weights", weights,
                        "--weights-bands", "B04,B03,B02", "--out", tmp_path / "ev", "--no-progress")
        assert code == 2 and not marker.exists()
        _one_line_error(err, "eval", evil.name)

    scene = tmp_path / "scene.tif"
    scene.write_bytes(b"")  # the weights are read before the input
    code, err = cli("embed", "--weights", evil, "--weights-bands", "B04,B03,B02", "--input", scene,
                    "--out", tmp_path / "e.parquet", "--no-progress")
    assert code == 2 and not marker.exists()
    _one_line_error(err, "embed", evil.name)


def test_exported_pth_with_a_payload_is_refused(tmp_path: Path, cli) -> None:
    """An export whose .pth was replaced by a pickle with a payload (and the sidecar's sha256 updated)."""
    marker = tmp_path / "marker"
    bands = ("B04", "B03", "B02")
    st, pth, side = export_backbone(
        build_backbone("resnet18", 3, num_classes=0).state_dict(), tmp_path / "w",
        {"bands": list(bands), "normalization": None, "input_size": 32, "method": "seco", "training_steps": 1},
    )
    torch.save({"conv1.weight": _Payload(marker, "system")}, pth)
    meta = json.loads(side.read_text())
    from seco.fileutil import file_sha256

    meta["files"]["pth"]["sha256"] = file_sha256(pth)
    side.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="w.pth.*not a state dict of tensors"):
        load_exported(pth)
    code, err = cli("embed", "--weights", pth, "--input", side, "--out", tmp_path / "e.parquet", "--no-progress")
    assert code == 2 and not marker.exists()
    _one_line_error(err, "embed", "w.pth")


def test_a_payload_inside_a_valid_checkpoint_stays_inert(run: Path, tmp_path: Path, cli) -> None:
    """A whole, valid seco checkpoint carrying a payload in an extra entry: it loads (through the restricted
    unpickler: weights_only=True refuses it), exports and resumes, and the payload never runs."""
    marker = tmp_path / "marker"
    ckpt = load_checkpoint(run / "last.ckpt")
    trapped = tmp_path / "run" / "last.ckpt"
    trapped.parent.mkdir()
    for name in ("config.yaml", "normalization.json"):
        (trapped.parent / name).write_bytes((run / name).read_bytes())
    torch.save({**ckpt, "trap": _Payload(marker, "system"), "trap2": [_Payload(marker, "open")]}, trapped)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(trapped, weights_only=True)
    code, err = cli("export", trapped, "--out", tmp_path / "w")
    assert code == 0, err
    assert not marker.exists()
    code, err = cli(*tiny_pretrain_args(Path(ckpt["config"]["store"]), trapped.parent, "--max-steps", "2",
                                        "--resume"))
    assert code == 0, err
    assert not marker.exists()
    resumed = torch.load(trapped, weights_only=True)  # what seco writes back is plain again
    assert resumed["step"] == 2 and "trap" not in resumed


def test_run_checkpoints_load_with_weights_only(run: Path) -> None:
    ckpt = torch.load(run / "last.ckpt", weights_only=True)
    assert ckpt["format"] == "seco-pretrain" and ckpt["step"] == 1


def test_to_safe_converts_or_names_the_entry() -> None:
    sd = build_backbone("resnet18", 3, num_classes=0).state_dict()
    out = to_safe({"a": np.float32(1.5), "b": np.arange(3), "p": Path("/x"), "sd": sd, "s": {1, 2}})
    assert out["a"] == 1.5 and type(out["a"]) is float
    assert torch.equal(out["b"], torch.arange(3)) and out["p"] == "/x" and out["s"] == {1, 2}
    assert out["sd"]._metadata == sd._metadata  # load_state_dict's per-module versions survive
    with pytest.raises(CheckpointError, match=r"checkpoint\.config\.extra\.when is a datetime\.date"):
        import datetime

        to_safe({"config": {"extra": {"when": datetime.date(2021, 1, 1)}}})


#: Damage that ``--resume`` refuses but ``seco export`` need not: it reads only the query encoder (checked
#: exactly by backbone_arch), not the heads or the optimizer state.
EXPORT_NEEDS_ONLY_THE_BACKBONE = {"shape mismatch", "optimizer for other params"}


def _write_variants(run: Path, d: Path) -> dict[str, tuple[Path, str]]:
    """Malformed run checkpoints: name -> (file, what the one-line error must say)."""
    d.mkdir()
    good = load_checkpoint(run / "last.ckpt")
    raw = (run / "last.ckpt").read_bytes()

    def save(name: str, obj: Any) -> Path:
        p = d / f"{name}.ckpt"
        torch.save(obj, p)
        return p

    def write(name: str, data: bytes) -> Path:
        p = d / name
        p.write_bytes(data)
        return p

    npz = d / "arrays.npz"
    np.savez(npz, a=np.zeros(3))
    other_zip = d / "other.zip"
    with zipfile.ZipFile(other_zip, "w") as z:
        z.writestr("readme.txt", "hello")
    scripted = d / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(scripted))
    bad_shape = {**good, "model": {**good["model"], "heads_q.0.0.weight": torch.zeros(3, 3)}}
    opt = good["optimizer"]
    return {
        "missing config": (save("noconfig", {k: v for k, v in good.items() if k != "config"}), "lacks ['config']"),
        "missing model": (save("nomodel", {k: v for k, v in good.items() if k != "model"}), "lacks ['model']"),
        "step is text": (save("steptext", {**good, "step": "7"}), "'step' is '7'"),
        "model is a list": (save("modellist", {**good, "model": [1, 2]}), "'model' is a list"),
        "model entry not a tensor": (save("modelint", {**good, "model": {**good["model"], "x": 3}}),
                                     "not tensors"),
        "config is invalid": (save("badcfg", {**good, "config": {**good["config"], "crop": "big"}}),
                              "'config' is invalid"),
        "bands unknown": (save("bands", {**good, "bands": ["B99"] * len(good["bands"])}), "'bands'"),
        "shape mismatch": (save("shape", bad_shape), "heads_q.0.0.weight"),
        "backbone shape mismatch": (
            save("bshape", {**good, "model": {**good["model"], "backbone.layer1.0.conv1.weight": torch.zeros(1)}}),
            "layer1.0.conv1.weight' has shape (1,)",
        ),
        "optimizer for other params": (save("opt", {**good, "optimizer": {**opt, "param_groups": [
            {**opt["param_groups"][0], "params": [0, 1]}]}}), "optimizer state is for 2 parameters"),
        "sampler": (save("sampler", {**good, "sampler": {"epoch": "0"}}), "'sampler'"),
        "not a dict": (save("list", [1, 2, 3]), "not a seco pre-training checkpoint"),
        "official instead": (save("official", {"state_dict": {}, "hyper_parameters": {}}),
                             "--from-official"),
        "other version": (save("version", {**good, "version": 99}), "version 99"),
        "truncated": (write("truncated.ckpt", raw[: len(raw) // 2]), "corrupt, truncated"),
        "truncated tiny": (write("tiny.ckpt", raw[:100]), "corrupt, truncated"),
        "empty": (write("empty.ckpt", b""), "empty file"),
        "text": (write("notes.ckpt", b"this is not a checkpoint\n"), "a text file"),
        "json": (write("meta.ckpt", b'{"format": "seco-pretrain"}'), "JSON"),
        "npz": (npz, "NumPy .npz"),
        "other zip": (other_zip, "zip archive without a torch data.pkl"),
        "torchscript": (scripted, "TorchScript archive"),
        "safetensors": (run.parent / "st.safetensors", "safetensors"),
        "directory": (run, "is a directory"),
        "missing": (d / "nope.ckpt", "does not exist"),
    }


def test_malformed_run_checkpoints_give_one_typed_error(run: Path, tmp_path: Path, cli) -> None:
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2)}, str(run.parent / "st.safetensors"))
    variants = _write_variants(run, tmp_path / "bad")
    for name, (path, needle) in variants.items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(path)
        assert needle in str(info.value), (name, str(info.value))
        assert path.name in str(info.value), (name, str(info.value))
        code, err = cli("export", path, "--out", tmp_path / "w")
        if name in EXPORT_NEEDS_ONLY_THE_BACKBONE:
            assert code == 0, (name, err)
            continue
        assert code == 2, (name, err)
        _one_line_error(err, "export", path.name, needle)


def test_malformed_resume_is_one_line_before_any_work(run: Path, tmp_path: Path, cli) -> None:
    cfg = load_checkpoint(run / "last.ckpt")["config"]
    variants = _write_variants(run, tmp_path / "bad")
    for name in ("missing config", "truncated", "shape mismatch", "json"):
        path, needle = variants[name]
        out = tmp_path / name.replace(" ", "_")
        out.mkdir()
        (out / "last.ckpt").write_bytes(path.read_bytes())
        code, err = cli(*tiny_pretrain_args(Path(cfg["store"]), out, "--max-steps", "2", "--resume"))
        assert code == 2, (name, err)
        _one_line_error(err, "pretrain", "last.ckpt", needle)
        assert not (out / "metrics.csv").exists()


def test_old_checkpoint_with_foreign_objects_still_loads(run: Path, tmp_path: Path) -> None:
    """A checkpoint written before checkpoints were plain (an object of a class that is gone) loads through
    the restricted unpickler, not full pickle: the object is an inert placeholder."""
    import sys
    import types

    mod = types.ModuleType("seco_old_module_for_tests")

    class Extra:
        def __init__(self) -> None:
            self.value = 3

    Extra.__module__, Extra.__qualname__ = mod.__name__, "Extra"
    mod.Extra = Extra  # type: ignore[attr-defined]
    sys.modules[mod.__name__] = mod
    try:
        old = tmp_path / "old.ckpt"
        torch.save({**load_checkpoint(run / "last.ckpt"), "extra_state": Extra()}, old)
    finally:
        del sys.modules[mod.__name__]
    ckpt = load_checkpoint(old)
    assert ckpt["step"] == 1 and ckpt["extra_state"].value == 3
    assert type(ckpt["extra_state"]) is not Extra
    assert read_torch_file(old)["step"] == 1


def _sidecar_variants(tmp_path: Path) -> list[tuple[str, Callable[[dict], Any] | bytes, str]]:
    return [
        ("not json", b"{not json", "not readable JSON"),
        ("format_version text", lambda m: m.update(format_version="1"), "format_version '1'"),
        ("files not a dict", lambda m: m.update(files=[1]), "malformed 'files'"),
        ("bands a number", lambda m: m.update(bands=3), "bands must be a list"),
        ("mean too short", lambda m: m["normalization"].update(mean=[0.1]), "normalization mean must be 3"),
        ("mean text", lambda m: m["normalization"].update(mean=["a", "b", "c"]), "normalization mean must be"),
        ("std nan", lambda m: m["normalization"].update(std=[float("nan")] * 3), "finite"),
        ("input_size text", lambda m: m.update(input_size="224"), "input_size must be a positive int"),
        ("method missing", lambda m: m.pop("method"), "lacks ['method']"),
    ]


def test_malformed_exports_give_one_typed_error(tmp_path: Path, cli) -> None:
    """Hand-edited or damaged sidecars and weight files of an export, through load_exported and the CLI."""
    meta = {"bands": ["B04", "B03", "B02"], "input_size": 32, "method": "seco", "training_steps": 1,
            "normalization": {"bands": ["B04", "B03", "B02"], "mean": [0.1] * 3, "std": [0.2] * 3}}
    sd = build_backbone("resnet18", 3, num_classes=0).state_dict()
    for i, (name, change, needle) in enumerate(_sidecar_variants(tmp_path)):
        st, _, side = export_backbone(sd, tmp_path / f"v{i}", meta)
        if isinstance(change, bytes):
            side.write_bytes(change)
        else:
            m = json.loads(side.read_text())
            change(m)
            side.write_text(json.dumps(m))
        code, err = cli("embed", "--weights", st, "--input", side, "--out", tmp_path / "e.parquet", "--no-progress")
        assert code == 2, (name, err)
        _one_line_error(err, "embed", f"v{i}.", needle)
    st, pth, side = export_backbone(sd, tmp_path / "trunc", meta)
    st.write_bytes(st.read_bytes()[:1000])
    meta_j = json.loads(side.read_text())
    from seco.fileutil import file_sha256

    meta_j["files"]["safetensors"]["sha256"] = file_sha256(st)  # damaged after the sidecar was "fixed up"
    side.write_text(json.dumps(meta_j))
    with pytest.raises(CheckpointError, match="trunc.safetensors.*as safetensors"):
        load_exported(st)
    pth.write_bytes(b"")
    with pytest.raises(CheckpointError, match="trunc.pth"):
        load_exported(pth)


def test_only_safe_load_unpickles() -> None:
    """Source guard: the only calls of torch.load / pickle.load(s) in seco are in seco/models/safe_load.py, no
    call anywhere passes allow_pickle=True, and weights_only=False only comes with the restricted pickle."""
    import ast

    root = Path(__file__).resolve().parents[2] / "seco"
    loads, unsafe = [], []
    for p in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text())):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            where = f"{p.relative_to(root).as_posix()}:{node.lineno}"
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                    and (f.value.id, f.attr) in {("torch", "load"), ("pickle", "load"), ("pickle", "loads")}):
                loads.append(where)
            kw = {k.arg: k.value for k in node.keywords}
            wo, ap = kw.get("weights_only"), kw.get("allow_pickle")
            if (isinstance(wo, ast.Constant) and wo.value is False and "pickle_module" not in kw) or (
                isinstance(ap, ast.Constant) and ap.value is True
            ):
                unsafe.append(where)
    assert loads and all(w.startswith("models/safe_load.py:") for w in loads), loads
    assert not unsafe, unsafe


def test_weights_that_are_not_weights(tmp_path: Path, cli) -> None:
    """--weights given a directory, an empty file, a text file or a truncated safetensors: one line each."""
    d = tmp_path / "dir"
    d.mkdir()
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pth"
    text.write_text("not weights\n")
    st = tmp_path / "cut.safetensors"
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(100)}, str(st))
    st.write_bytes(st.read_bytes()[:60])
    cases = [(str(d), "is a directory"), (str(empty), "empty file"), (str(text), "a text file"),
             (str(st), "as safetensors"), (f"official:{d}", "a directory"), (f"official:{empty}", "empty file")]
    for weights, needle in cases:
        code, err = cli("embed", "--weights", weights, "--weights-bands", "B04,B03,B02", "--input", text,
                        "--out", tmp_path / "e.parquet", "--no-progress")
        assert code == 2, (weights, err)
        _one_line_error(err, "embed", Path(weights.split(":", 1)[-1]).name, needle)

