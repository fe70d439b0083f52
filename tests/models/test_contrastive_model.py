"""The contrastive model: SeCo semantics (subspaces, extra negatives, EMA, queues) and MoCo-v2."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from seco.errors import ConfigError
from seco.models.contrastive import ContrastiveConfig, ContrastiveModel

torch.set_num_threads(1)

N, C, S, K, E = 4, 5, 32, 16, 16


def _seco(**kw) -> ContrastiveModel:
    torch.manual_seed(0)
    args = dict(backbone="resnet18", in_chans=C, num_heads=3, emb_dim=E, queue_size=K)
    return ContrastiveModel(**{**args, **kw})


def _views(n: int = N, views: int = 3, seed: int = 1) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, C, S, S, generator=g), [torch.randn(n, C, S, S, generator=g) for _ in range(views)]


def test_key_side_is_a_frozen_copy() -> None:
    m = _seco()
    for (nq, pq), (nk, pk) in zip(
        m.backbone.named_parameters(), m.backbone_k.named_parameters(), strict=True
    ):
        assert nq == nk and torch.equal(pq, pk) and pq.requires_grad and not pk.requires_grad
    assert all(not p.requires_grad for p in m.heads_k.parameters())
    assert {id(p) for p in m.query_parameters()} == {id(p) for p in m.parameters() if p.requires_grad}
    sd = m.state_dict()
    assert sd["queue.bank"].shape == (3, E, K) and sd["queue.ptr"].tolist() == [0, 0, 0]
    assert "backbone.conv1.weight" in sd and not any(k.startswith("backbone.fc") for k in sd)


def test_seco_logit_shapes_loss_and_queue_update() -> None:
    m = _seco().train()
    q, keys = _views()
    bank0 = m.queue.bank.clone()
    out = m(q, keys)
    assert [tuple(t.shape) for t in out.logits] == [(N, 1 + K), (N, 1 + K + 2 * N), (N, 1 + K + 2 * N)]
    torch.testing.assert_close(out.loss, sum(out.loss_per_head))
    assert all(0.0 <= a.item() <= 1.0 for a in out.acc_per_head)
    assert m.queue.ptr.tolist() == [N, N, N]
    assert not torch.equal(m.queue.bank[:, :, :N], bank0[:, :, :N])
    torch.testing.assert_close(m.queue.bank[:, :, N:], bank0[:, :, N:])
    # negatives are read before the enqueue: had the batch's own keys entered the queue first, column
    # 1 + i of head 0 would repeat each row's positive logit
    diag = out.logits[0][torch.arange(N), 1 + torch.arange(N)].detach()
    assert (diag - out.logits[0][:, 0].detach()).abs().min() > 1e-3
    out.loss.backward()
    assert all(p.grad is None for p in m.backbone_k.parameters())
    assert all(p.grad is None for p in m.heads_k.parameters())
    assert m.backbone.conv1.weight.grad is not None and m.heads_q[2][2].weight.grad is not None


def test_logits_follow_the_official_recipe() -> None:
    """Head i: positive = key view i through key head i; queue i; then the other views' keys in view order."""
    m = _seco().eval()  # eval: BN uses running stats, and the forward pass changes nothing
    q, keys = _views()
    with torch.no_grad():
        out = m(q, keys)
        v_q = m.backbone.forward_features(q)
        v_k = [m.backbone_k.forward_features(k) for k in keys]
        for i in range(3):
            z_q = F.normalize(m.heads_q[i](v_q), dim=1)
            z_k = [F.normalize(m.heads_k[i](v), dim=1) for v in v_k]
            expected = [(z_q * z_k[i]).sum(1, keepdim=True), z_q @ m.queue.bank[i]]
            if i > 0:
                expected += [z_q @ z_k[j].T for j in range(3) if j != i]
            torch.testing.assert_close(out.logits[i], torch.cat(expected, 1) / 0.07, atol=1e-4, rtol=1e-5)


def test_eval_forward_changes_nothing() -> None:
    m = _seco()
    m.eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    q, keys = _views()
    with torch.no_grad():
        m(q, keys)
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_momentum_update_happens_first_in_train_mode() -> None:
    m = _seco(momentum=0.5)
    with torch.no_grad():
        for p in m.heads_q[0].parameters():
            p.add_(1.0)
    k_before = m.heads_k[0][0].bias.clone()
    q_now = m.heads_q[0][0].bias.clone()
    m.train()
    m(*_views())
    torch.testing.assert_close(m.heads_k[0][0].bias, 0.5 * k_before + 0.5 * q_now)


def test_queue_not_divisible_by_batch_is_config_error() -> None:
    m = _seco(queue_size=10).train()
    with pytest.raises(ConfigError, match=r"queue size 10 .*global batch size 4"):
        m(*_views())


def test_input_and_config_errors() -> None:
    m = _seco()
    q, keys = _views()
    with pytest.raises(ConfigError, match="got 2 key view.*num_heads=3"):
        m(q, keys[:2])
    with pytest.raises(ConfigError, match="key view 1 has shape"):
        m(q, [keys[0], keys[1][:2], keys[2]])
    with pytest.raises(ConfigError, match="extra_negatives_heads"):
        ContrastiveConfig(num_heads=1)  # SeCo's (1, 2) default without passing () for MoCo
    with pytest.raises(ConfigError, match="extra_negatives_heads"):
        ContrastiveConfig(num_heads=3, extra_negatives_heads=(3,))
    with pytest.raises(ConfigError, match="unknown backbone 'resnet34'"):
        ContrastiveConfig(backbone="resnet34")
    with pytest.raises(ConfigError, match="unknown model option"):
        ContrastiveConfig.from_dict({"num_heads": 3, "bogus": 1})


def test_config_roundtrip_and_stacked_keys() -> None:
    m = _seco()
    cfg = ContrastiveConfig.from_dict(m.config.to_dict())
    assert cfg == m.config and cfg.extra_negatives_heads == (1, 2)
    m2 = ContrastiveModel.from_config(cfg)
    assert m2.state_dict().keys() == m.state_dict().keys()
    q, keys = _views()
    m.eval()
    with torch.no_grad():
        a = m(q, keys).logits
        b = m(q, torch.stack(keys)).logits  # (num_heads, N, C, H, W) is accepted as well
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_moco_config_loss_decreases() -> None:
    """MoCo-v2 = one subspace, no extra negatives. Two fixed batches alternate and the queue holds exactly
    one batch, so each batch is contrasted with the other's keys; training must lower that loss."""
    torch.manual_seed(0)
    m = ContrastiveModel(
        "resnet18", in_chans=4, num_heads=1, emb_dim=32, queue_size=8, momentum=0.99, extra_negatives_heads=()
    ).train()
    g = torch.Generator().manual_seed(10)
    x = torch.randn(2, 8, 4, 1, 1, generator=g) + 0.5 * torch.randn(2, 8, 4, 32, 32, generator=g)
    q = x + 0.1 * torch.randn(x.shape, generator=g)
    k = x + 0.1 * torch.randn(x.shape, generator=g)
    opt = torch.optim.SGD(m.query_parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    losses = []
    for step in range(16):
        out = m(q[step % 2], [k[step % 2]])
        assert [tuple(t.shape) for t in out.logits] == [(8, 1 + 8)]
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    early, late = sum(losses[2:6]) / 4, sum(losses[-4:]) / 4  # steps 0-1 still see the random initial queue
    assert late < 0.8 * early, losses


def test_channels_last_and_bf16_autocast_run() -> None:
    m = _seco().to(memory_format=torch.channels_last).train()
    q, keys = _views()
    q = q.contiguous(memory_format=torch.channels_last)
    keys = [k.contiguous(memory_format=torch.channels_last) for k in keys]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(q, keys)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32
    assert m.queue.bank.dtype == torch.float32 and m.queue.ptr.tolist() == [N, N, N]
    torch.testing.assert_close(m.queue.bank[:, :, :N].norm(dim=1), torch.ones(3, N), atol=1e-2, rtol=0)


def test_logits_are_float32_when_the_model_runs_under_bf16_autocast() -> None:
    m = _seco().train()
    q, keys = _views()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(q, keys)
    assert all(t.dtype == torch.float32 for t in out.logits)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


def test_multi_sensor_loss_equals_a_hand_written_computation() -> None:
    """seco-s12 (4 subspaces; heads 1-3 take the other keys as extra negatives): the loss, written out by hand
    from the embeddings as sum over heads of -log(exp(pos / tau) / sum of exp(all logits / tau))."""
    from seco.methods import get_method

    method = get_method("seco-s12")
    assert method.num_heads == 4 and method.extra_negatives_heads == (1, 2, 3)
    m = _seco(num_heads=4, extra_negatives_heads=method.extra_negatives_heads).eval()
    q, keys = _views(views=4, seed=5)
    with torch.no_grad():
        out = m(q, keys)
        v_q = m.backbone.forward_features(q)
        v_k = [m.backbone_k.forward_features(k) for k in keys]
        total = torch.zeros(())
        for i in range(4):
            z_q = F.normalize(m.heads_q[i](v_q), dim=1)  # (N, E)
            z_k = [F.normalize(m.heads_k[i](v), dim=1) for v in v_k]
            for n in range(N):
                pos = float(z_q[n] @ z_k[i][n])
                negs = [float(z_q[n] @ m.queue.bank[i][:, k]) for k in range(K)]
                if i > 0:  # every other key view of every sample of the batch
                    negs += [float(z_q[n] @ z_k[j][r]) for j in range(4) if j != i for r in range(N)]
                logits = torch.tensor([pos, *negs], dtype=torch.float64) / 0.07
                total += -(logits[0] - torch.logsumexp(logits, 0)) / N
    torch.testing.assert_close(out.loss.double(), total.double(), atol=1e-4, rtol=1e-5)
