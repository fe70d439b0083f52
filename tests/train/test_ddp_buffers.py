"""DDP without the per-step buffer broadcast (``wrap_ddp``), on 2 CPU ranks (gloo).

What ``seco.train.distributed.wrap_ddp`` documents: the queues stay identical on every rank without being
sent (each rank enqueues the keys gathered from all ranks), BatchNorm running statistics are per rank (each
rank's own batches), and rank 0 -- whose state the checkpoint holds -- ends exactly where DDP's default
``broadcast_buffers=True`` would have left it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seco.models.contrastive import ContrastiveModel
from seco.train.distributed import DistInfo, wrap_ddp
from tests.conftest import join_gloo, same_on_all_ranks

WORLD = 2
STEPS = 3


def _train(rank: int, broadcast: bool) -> ContrastiveModel:
    torch.manual_seed(0)  # identical initialisation on every rank, as the loop does
    model = ContrastiveModel("resnet18", in_chans=3, num_heads=3, emb_dim=8, queue_size=16).train()
    if broadcast:
        ddp: torch.nn.Module = torch.nn.parallel.DistributedDataParallel(model)  # DDP's default
    else:
        ddp = wrap_ddp(model, DistInfo(rank=rank, world_size=WORLD), torch.device("cpu"))
        assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel) and not ddp.broadcast_buffers
    opt = torch.optim.SGD(model.query_parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(100 + rank)  # each rank its own data
    for step in range(STEPS):
        q = torch.randn(2, 3, 32, 32, generator=g)
        keys = [torch.randn(2, 3, 32, 32, generator=g) for _ in range(3)]
        torch.manual_seed(step)  # the shuffle-BN permutation, the same on every rank (as the loop seeds it)
        out = ddp(q, keys)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    return model



def _worker(rank: int, init_file: str, out_dir: str) -> None:
    join_gloo(rank, init_file, WORLD)
    try:
        plain = _train(rank, broadcast=False)
        bn = [n for n, _ in plain.named_buffers() if n.endswith("running_mean")]
        res = {
            "queues_same": same_on_all_ranks(plain.queue.bank) and same_on_all_ranks(plain.queue.ptr),
            "params_same": all(same_on_all_ranks(p.detach()) for p in plain.parameters()),
            "bn_differ": [n for n, b in plain.named_buffers() if n in bn and not same_on_all_ranks(b)],
            "bn_names": bn,
        }
        sd_plain = plain.state_dict()
        sd_bcast = _train(rank, broadcast=True).state_dict()
        res["same_as_broadcast"] = sorted(k for k in sd_plain if torch.equal(sd_plain[k], sd_bcast[k]))
        res["keys"] = sorted(sd_plain)
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available in this build")
def test_queues_identical_and_bn_per_rank_without_buffer_broadcast(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD))
    for res in (r0, r1):
        assert res["queues_same"] and res["params_same"]
        # every BatchNorm of both encoders saw only its own rank's batches (shuffled ones for the key side)
        assert res["bn_differ"] == res["bn_names"] and any(n.startswith("backbone_k.") for n in res["bn_names"])
    # the checkpoint (rank 0) is what the broadcast would have given, entry for entry
    assert r0["same_as_broadcast"] == r0["keys"]
    # the other rank's own statistics are not rank 0's (the broadcast would have overwritten them)
    assert set(r1["keys"]) - set(r1["same_as_broadcast"]) >= {n for n in r1["bn_names"] if n.startswith("backbone.")}
