"""Two CPU processes (gloo): shuffle-BN across ranks, keys gathered into identical queues, DDP training step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seco.errors import ConfigError
from seco.models.contrastive import ContrastiveModel, batch_shuffle, batch_unshuffle, concat_all_gather
from tests.conftest import join_gloo, same_on_all_ranks

WORLD = 2
LOCAL_BATCH = 2



def _worker(rank: int, init_file: str, out_dir: str) -> None:
    join_gloo(rank, init_file, WORLD)
    try:
        res: dict = {}
        # shuffle / unshuffle helpers
        torch.manual_seed(123 + rank)  # different local RNG: the permutation must come from rank 0
        x = torch.arange(3 * rank, 3 * rank + 3, dtype=torch.float32)[:, None]  # (3, 1), rank-specific rows
        shuffled, idx_unshuffle = batch_shuffle(x)
        res["global_perm_ok"] = sorted(concat_all_gather(shuffled).flatten().tolist()) == list(range(6))
        res["roundtrip_ok"] = torch.equal(batch_unshuffle(shuffled, idx_unshuffle), x)
        res["perm_shared"] = same_on_all_ranks(idx_unshuffle)

        # one DDP training step of a tiny SeCo model
        torch.manual_seed(0)  # identical initialisation on every rank
        model = ContrastiveModel("resnet18", in_chans=3, num_heads=3, emb_dim=8, queue_size=8).train()
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        opt = torch.optim.SGD(model.query_parameters(), lr=0.1, momentum=0.9)
        g = torch.Generator().manual_seed(rank)  # each rank its own data
        q = torch.randn(LOCAL_BATCH, 3, 32, 32, generator=g)
        keys = [torch.randn(LOCAL_BATCH, 3, 32, 32, generator=g) for _ in range(3)]
        out = ddp(q, keys)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        res["logit_widths"] = [t.shape[1] for t in out.logits]
        res["ptr"] = model.queue.ptr.tolist()
        res["queue_same"] = same_on_all_ranks(model.queue.bank)
        res["query_same"] = all(same_on_all_ranks(p.detach()) for p in model.query_parameters())
        res["key_same"] = all(same_on_all_ranks(p) for p in model.backbone_k.parameters())

        # the queue must be a multiple of the GLOBAL batch (2 ranks x 2 = 4), not of the local one
        torch.manual_seed(0)
        bad = ContrastiveModel(
            "resnet18", in_chans=3, num_heads=1, emb_dim=8, queue_size=6, extra_negatives_heads=()
        ).train()
        try:
            bad(q, keys[:1])
            res["global_batch_error"] = ""
        except ConfigError as e:
            res["global_batch_error"] = str(e)
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_two_process_shuffle_bn_and_queue(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    for rank in range(WORLD):
        res = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert res["global_perm_ok"] and res["roundtrip_ok"] and res["perm_shared"], res
        assert res["logit_widths"] == [1 + 8, 1 + 8 + 2 * LOCAL_BATCH, 1 + 8 + 2 * LOCAL_BATCH]
        assert res["ptr"] == [WORLD * LOCAL_BATCH] * 3  # gathered keys from both ranks were enqueued
        assert res["queue_same"] and res["query_same"] and res["key_same"], res
        assert (
            "queue size 6" in res["global_batch_error"] and "global batch size 4" in res["global_batch_error"]
        )


def _row_major_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for s in reversed(shape):
        strides.append(acc)
        acc *= s
    return tuple(reversed(strides))


def test_all_gather_buffers_match_the_sent_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """``concat_all_gather`` of channels-last key images: the receive buffers have the layout of the tensor it
    sends. The stand-in all_gather writes raw row-major bytes into each buffer, as NCCL does (gloo on the CPU
    honours strides and cannot show this, see issue 19): buffers laid out channels-last would scramble."""
    import seco.models.contrastive as contrastive

    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def nccl_like_all_gather(outputs: list[torch.Tensor], tensor: torch.Tensor) -> None:
        for o in outputs:
            seen.append((o.stride(), tensor.stride()))
            o.as_strided(o.shape, _row_major_strides(tuple(o.shape))).copy_(tensor)  # raw bytes, no strides

    monkeypatch.setattr(contrastive, "world_size", lambda: WORLD)
    monkeypatch.setattr(contrastive.dist, "all_gather", nccl_like_all_gather)
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)  # (N, C, H, W) channels-last
    got = concat_all_gather(x)
    assert seen and all(out == sent for out, sent in seen), seen
    assert torch.equal(got, torch.cat([x] * WORLD)), "gathered images are scrambled"
