"""Parity with the official SeCo implementation (golden outputs in ../shared/reference).

The official weights are written as a real Lightning-style checkpoint and imported with
``load_official_checkpoint``, the path a user takes with a downloaded ``.ckpt``. Two training steps are
replayed and compared: logits, losses, queues and pointers after every step, and a fingerprint of the final
state dict.

Fingerprint tolerance: for a tensor x of n elements, with every element off by at most eps * |x_i|,
|d sum(x)| <= eps * sum|x_i| <= eps * sqrt(n * sum(x^2)) (Cauchy-Schwarz) and |d sum(x^2)| <= 2 eps sum(x^2).
An independent float32 implementation agrees with the official logits to ~1e-5 (cosines to ~1e-6), so we
allow eps = FP_EPS = 2e-6 per element after two steps. That is still tight enough to catch a skipped key
EMA (measured 8e-6 / 1.7e-5 in those normalised units), a missing weight decay (3e-5) or SGD momentum (3e-3).
"""

from __future__ import annotations

import gzip
import io
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from seco.models.official import load_official_checkpoint, map_official_key

DEFAULT_GOLDEN = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "seco_official_golden.pt.gz"
)
LOGITS_ATOL = 1e-4
LOSS_RTOL = 1e-5
QUEUE_ATOL = 1e-5
FP_EPS = 2e-6


def load_golden() -> dict:
    """The fixture from $SECO_GOLDEN (must be readable) or the shared default (skip when absent)."""
    env = os.environ.get("SECO_GOLDEN")
    path = Path(env) if env else DEFAULT_GOLDEN
    if not env and not path.is_file():
        pytest.skip(f"golden fixture {path} not found; set SECO_GOLDEN to its path to run the parity test")
    try:
        with gzip.open(path, "rb") as f:
            golden = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
        golden["weights"]["codes"], golden["steps"]["step2"]["logits"], golden["final_fingerprint"]  # noqa: B018
    except Exception as e:  # noqa: BLE001 - any failure to read an explicitly given fixture is a test failure
        pytest.fail(f"golden fixture {path} is unreadable or malformed ({type(e).__name__}: {e})")
    return golden


def official_checkpoint(golden: dict, path: Path) -> Path:
    """Write the fixture's initial state as an official Lightning checkpoint (key side = copy of query side)."""
    w = golden["weights"]
    sd: dict[str, torch.Tensor] = {}
    for name, codes in w["codes"].items():
        value = codes.float() * 2.0 ** -int(w["exponents"][name])  # exact in float32
        sd[name] = value
        sd[name.replace("encoder_q", "encoder_k", 1).replace("heads_q", "heads_k", 1)] = value.clone()
    sd["queue"] = F.normalize(w["queue_codes"].float(), dim=1)
    sd["queue_ptr"] = torch.zeros(sd["queue"].shape[0], 1, dtype=torch.long)
    torch.save({"state_dict": sd, "hyper_parameters": dict(golden["hparams"]), "global_step": 0}, path)
    return path


def replay(golden: dict, tmp_path: Path) -> list[str]:
    """Run the two golden steps; return a description of every mismatch (empty = parity)."""
    torch.manual_seed(0)
    model, hp = load_official_checkpoint(official_checkpoint(golden, tmp_path / "official.ckpt"))
    model.train()
    opt = torch.optim.SGD(
        model.query_parameters(),
        lr=hp["learning_rate"],
        momentum=hp["momentum"],
        weight_decay=hp["weight_decay"],
    )
    bad: list[str] = []
    for name in ("step1", "step2"):
        st = golden["steps"][name]
        out = model(st["img_q"], list(st["img_k"]))
        for i, (ours, ref) in enumerate(zip(out.logits, st["logits"], strict=True)):
            if ours.shape != ref.shape:
                bad.append(f"{name} head {i}: logits shape {tuple(ours.shape)} != {tuple(ref.shape)}")
            elif not torch.allclose(ours.detach(), ref, rtol=0, atol=LOGITS_ATOL):
                bad.append(f"{name} head {i}: logits off by {(ours.detach() - ref).abs().max().item():.2e}")
        losses = torch.stack(out.loss_per_head).detach()
        if not torch.allclose(losses, st["loss_per_head"], rtol=LOSS_RTOL, atol=0):
            bad.append(f"{name}: loss_per_head {losses.tolist()} != {st['loss_per_head'].tolist()}")
        if not math.isclose(out.loss.item(), st["loss"].item(), rel_tol=LOSS_RTOL):
            bad.append(f"{name}: loss {out.loss.item()} != {st['loss'].item()}")
        if not torch.allclose(model.queue.bank, st["queue_after"], rtol=0, atol=QUEUE_ATOL):
            bad.append(
                f"{name}: queue off by {(model.queue.bank - st['queue_after']).abs().max().item():.2e}"
            )
        if model.queue.ptr.tolist() != st["queue_ptr_after"].reshape(-1).tolist():
            bad.append(f"{name}: queue_ptr {model.queue.ptr.tolist()} != {st['queue_ptr_after'].tolist()}")
        opt.zero_grad()
        out.loss.backward()
        opt.step()

    ours = model.state_dict()
    for name, (ref_sum, ref_sq) in golden["final_fingerprint"].items():
        t = ours[map_official_key(name)].double()
        s, sq = t.sum().item(), (t * t).sum().item()
        if abs(s - ref_sum) > FP_EPS * math.sqrt(t.numel() * ref_sq) + 1e-12:
            bad.append(f"fingerprint {name}: sum {s!r} != {ref_sum!r}")
        if abs(sq - ref_sq) > 2 * FP_EPS * ref_sq + 1e-12:
            bad.append(f"fingerprint {name}: sum of squares {sq!r} != {ref_sq!r}")
    return bad


def test_official_parity(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    golden = load_golden()
    assert golden["hparams"]["emb_spaces"] == 3 and golden["hparams"]["num_negatives"] == 64
    bad = replay(golden, tmp_path)
    assert not bad, "\n".join(bad)


def test_corrupted_fixture_breaks_parity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One weight code changed in a copy of the fixture must make the comparison fail."""
    torch.set_num_threads(1)
    golden = load_golden()
    codes = golden["weights"]["codes"]["heads_q.1.2.weight"]
    codes.view(-1)[0] += 8 if codes.view(-1)[0] < 100 else -8
    corrupt = tmp_path / "corrupt.pt.gz"
    buf = io.BytesIO()
    torch.save(golden, buf)
    corrupt.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1))
    monkeypatch.setenv("SECO_GOLDEN", str(corrupt))
    bad = replay(load_golden(), tmp_path)
    assert any("head 1: logits" in b for b in bad), bad


def test_unreadable_fixture_fails_instead_of_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.pt.gz"
    broken.write_bytes(gzip.compress(b"not a torch file"))
    monkeypatch.setenv("SECO_GOLDEN", str(broken))
    with pytest.raises(pytest.fail.Exception, match="unreadable or malformed"):
        load_golden()
    monkeypatch.setenv("SECO_GOLDEN", str(tmp_path / "missing.pt.gz"))
    with pytest.raises(pytest.fail.Exception, match="unreadable or malformed"):
        load_golden()
