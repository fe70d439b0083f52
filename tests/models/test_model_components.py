"""Projection head, negative queue, EMA update and the InfoNCE loss, each against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seco.errors import ConfigError
from seco.models.heads import ProjectionHead
from seco.models.losses import contrastive_logits, info_nce, top1_accuracy
from seco.models.momentum import frozen_copy, momentum_update
from seco.models.queue import NegativeQueue


def test_projection_head_layout_matches_official_keys() -> None:
    h = ProjectionHead(512, 128)
    assert {k: tuple(v.shape) for k, v in h.state_dict().items()} == {
        "0.weight": (512, 512),
        "0.bias": (512,),
        "2.weight": (128, 512),
        "2.bias": (128,),
    }
    x = torch.randn(3, 512)
    assert torch.allclose(h(x), h[2](torch.relu(h[0](x))))
    with pytest.raises(ConfigError, match="out_dim"):
        ProjectionHead(512, 0)


def test_queue_is_normalized_buffers_in_state_dict() -> None:
    torch.manual_seed(0)
    q = NegativeQueue(3, 16, 32)
    assert q.bank.shape == (3, 16, 32)
    torch.testing.assert_close(q.bank.norm(dim=1), torch.ones(3, 32))
    assert q.ptr.tolist() == [0, 0, 0] and q.ptr.dtype == torch.long
    assert set(q.state_dict()) == {"bank", "ptr"}


def test_enqueue_writes_at_pointer_and_wraps() -> None:
    torch.manual_seed(0)
    q = NegativeQueue(2, 4, 6)
    before = q.bank.clone()
    a, b, c = (F.normalize(torch.randn(3, 4), dim=1) for _ in range(3))
    q.enqueue(1, a)
    torch.testing.assert_close(q.bank[1, :, :3], a.T)
    torch.testing.assert_close(q.bank[1, :, 3:], before[1, :, 3:])
    torch.testing.assert_close(q.bank[0], before[0])  # other subspace untouched
    assert q.ptr.tolist() == [0, 3]
    q.enqueue(1, b)
    assert q.ptr.tolist() == [0, 0]  # wrapped
    q.enqueue(1, c)  # overwrites the oldest (a)
    torch.testing.assert_close(q.bank[1], torch.cat([c.T, b.T], dim=1))
    assert q.ptr.tolist() == [0, 3]
    negs = q.negatives(1)
    negs.zero_()  # a copy: the bank is not affected
    assert q.bank[1].abs().sum() > 0


def test_queue_pointer_is_a_host_int_that_round_trips() -> None:
    """The pointer stays on the CPU whatever the bank's device or dtype (reading it never waits on a device),
    is not a buffer (DDP does not broadcast it) and keeps its ``ptr`` entry in ``state_dict``."""
    torch.manual_seed(0)
    q = NegativeQueue(2, 4, 6)
    q.enqueue(1, F.normalize(torch.randn(3, 4), dim=1))
    q = q.to(torch.float64).to("meta")  # the bank moves; the pointer does not
    assert q.bank.device.type == "meta" and q.ptr.device.type == "cpu" and q.ptr.tolist() == [0, 3]
    assert "ptr" not in dict(q.named_buffers())
    torch.manual_seed(0)
    src = NegativeQueue(2, 4, 6)
    src.enqueue(0, F.normalize(torch.randn(3, 4), dim=1))
    sd = src.state_dict()
    assert list(sd) == ["bank", "ptr"] and sd["ptr"].device.type == "cpu" and sd["ptr"].tolist() == [3, 0]
    sd["ptr"].fill_(0)  # a copy: the queue's pointer is not affected
    assert src.ptr.tolist() == [3, 0]
    dst = NegativeQueue(2, 4, 6)
    dst.load_state_dict(src.state_dict())
    assert dst.ptr.tolist() == [3, 0] and torch.equal(dst.bank, src.bank)


def test_queue_loads_old_checkpoints_and_names_bad_pointers() -> None:
    """A checkpoint written when ``ptr`` was a buffer (an int64 tensor, possibly saved from a GPU) loads."""
    old = {"bank": F.normalize(torch.randn(3, 4, 8), dim=1), "ptr": torch.tensor([4, 0, 4])}
    q = NegativeQueue(3, 4, 8)
    q.load_state_dict(old)
    assert q.ptr.tolist() == [4, 0, 4] and q.ptr.device.type == "cpu"
    with pytest.raises(RuntimeError, match=r"size mismatch for ptr"):
        q.load_state_dict({"bank": old["bank"], "ptr": torch.zeros(2, dtype=torch.long)})
    with pytest.raises(RuntimeError, match=r"Missing key\(s\).*\"ptr\""):
        q.load_state_dict({"bank": old["bank"]})
    q.load_state_dict({"bank": old["bank"]}, strict=False)  # non-strict: the pointer is kept
    assert q.ptr.tolist() == [4, 0, 4]


def test_queue_size_must_be_divisible_by_global_batch() -> None:
    q = NegativeQueue(1, 8, 100)
    with pytest.raises(ConfigError, match=r"queue size 100 .*global batch size 24"):
        q.enqueue(0, torch.randn(24, 8))
    q.check_batch_size(25)  # divisible: fine
    assert q.ptr.tolist() == [0]
    with pytest.raises(ConfigError, match="size must be a positive integer"):
        NegativeQueue(1, 8, 0)


def _pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    query = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    key = frozen_copy(query)
    with torch.no_grad():
        for p in query.parameters():
            p.add_(torch.randn_like(p))
        query[1].running_mean.fill_(5.0)
    return key, query


def test_momentum_update_math() -> None:
    key, query = _pair()
    k0 = {n: p.clone() for n, p in key.named_parameters()}
    momentum_update(key, query, 0.9)
    for n, p in key.named_parameters():
        expected = 0.9 * k0[n] + 0.1 * dict(query.named_parameters())[n]
        torch.testing.assert_close(p, expected, rtol=0, atol=1e-6)
        assert not p.requires_grad
    assert torch.all(key[1].running_mean == 0)  # buffers are not averaged


def test_momentum_one_keeps_key_and_zero_copies_query() -> None:
    key, query = _pair()
    k0 = [p.clone() for p in key.parameters()]
    momentum_update(key, query, 1.0)
    assert all(torch.equal(a, b) for a, b in zip(key.parameters(), k0, strict=True))
    momentum_update(key, query, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(key.parameters(), query.parameters(), strict=True))
    with pytest.raises(ConfigError, match="momentum must be in"):
        momentum_update(key, query, 1.5)
    with pytest.raises(ConfigError, match="differ in parameters"):
        momentum_update(nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 4)), 0.5)


def _reference_info_nce(q, pos, neg, tau):
    """Per-sample -log(exp(q.k+/tau) / sum_k exp(q.k/tau)) with Python floats."""
    total = 0.0
    for i in range(q.shape[0]):
        sims = [sum(float(q[i, c]) * float(pos[i, c]) for c in range(q.shape[1]))]
        sims += [
            sum(float(q[i, c]) * float(neg[c, j]) for c in range(q.shape[1])) for j in range(neg.shape[1])
        ]
        m = max(sims)
        log_z = m / tau + math.log(sum(math.exp((s - m) / tau) for s in sims))
        total += log_z - sims[0] / tau
    return total / q.shape[0]


def test_info_nce_matches_hand_written_reference() -> None:
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    pos = F.normalize(q + 0.3 * torch.randn(5, 8, generator=g), dim=1)
    neg = F.normalize(torch.randn(8, 7, generator=g), dim=0)
    logits = contrastive_logits(q, pos, neg, temperature=0.07)
    assert logits.shape == (5, 8)
    torch.testing.assert_close(logits[:, 0], (q * pos).sum(1) / 0.07)
    torch.testing.assert_close(logits[:, 1:], q @ neg / 0.07)
    loss = info_nce(logits)
    assert loss.item() == pytest.approx(_reference_info_nce(q, pos, neg, 0.07), rel=1e-5)
    # the temperature matters
    assert info_nce(contrastive_logits(q, pos, neg, 0.5)).item() == pytest.approx(
        _reference_info_nce(q, pos, neg, 0.5), rel=1e-5
    )
    with pytest.raises(ConfigError, match="temperature"):
        contrastive_logits(q, pos, neg, temperature=0.0)


def test_top1_accuracy() -> None:
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0], [2.0, 1.0, 1.5], [1.0, 1.0, 4.0]])
    assert top1_accuracy(logits).item() == pytest.approx(0.5)


def _unit(*shape: int, seed: int, dim: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=dim)


def test_logits_are_float32_under_bf16_autocast() -> None:
    """Under bf16 autocast the logits stay float32 (autocast is off inside), so the loss equals the float32
    reference for float32 inputs; the bf16 einsum the autocast would otherwise run is measurably off."""
    q = _unit(64, 128, seed=0, dim=1)  # (N, E)
    k = F.normalize(q + 0.3 * _unit(64, 128, seed=1, dim=1), dim=1)  # positives close to the queries
    neg = _unit(128, 4096, seed=2, dim=0)  # (E, K)
    ref = contrastive_logits(q, k, neg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = contrastive_logits(q, k, neg)
        from_bf16 = contrastive_logits(q.bfloat16(), k.bfloat16(), neg)  # what heads give under autocast
        old = torch.cat([torch.einsum("nc,nc->n", q, k)[:, None], torch.einsum("nc,ck->nk", q, neg)], 1) / 0.07
    assert old.dtype == torch.bfloat16  # the old code: autocast ran the einsum in bf16
    assert got.dtype == from_bf16.dtype == torch.float32
    assert torch.equal(got, ref)
    loss_ref, loss_old = info_nce(ref).item(), info_nce(old).item()
    assert abs(info_nce(got).item() - loss_ref) < abs(loss_old - loss_ref)
    assert abs(info_nce(from_bf16).item() - loss_ref) < abs(loss_old - loss_ref)
