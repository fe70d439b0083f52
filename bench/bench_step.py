"""Training-step throughput: seco's SeCo step against a re-implementation of the paper's step.

The paper's step (its Lightning module) runs the torchvision ResNet as an ``nn.Sequential`` encoder,
projects every key view through every key head for each subspace, and clones the queue per head. The
reference below re-creates that structure (same arithmetic, same tensor sizes) on seco's ResNet so both
run in this process on the same weights. Reported: samples/s at batch 32, ResNet-18, 3 bands (the paper's
RGB setting) at 224/128/64 px in fp32, and seco with bf16 autocast and channels-last, and 12 bands.

    python -m bench.bench_step [--sizes 224,128,64] [--steps 4]
"""

from __future__ import annotations

import argparse
import copy

import torch
import torch.nn.functional as F
from torch import nn

from bench.common import machine, table, timeit
from seco.models.contrastive import ContrastiveModel


class PaperStyleStep(nn.Module):
    """The paper's forward pass, structurally: Sequential encoders, all-heads x all-views key projections."""

    def __init__(self, ours: ContrastiveModel) -> None:
        super().__init__()
        bb = ours.backbone
        seq = [bb.conv1, bb.bn1, bb.relu, bb.maxpool, bb.layer1, bb.layer2, bb.layer3, bb.layer4]
        self.encoder_q = nn.Sequential(*copy.deepcopy(seq), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.encoder_k = copy.deepcopy(self.encoder_q).requires_grad_(False)
        self.heads_q = copy.deepcopy(ours.heads_q)
        self.heads_k = copy.deepcopy(ours.heads_q).requires_grad_(False)
        h, e, k = ours.queue.bank.shape
        self.register_buffer("queue", F.normalize(torch.randn(h, e, k), dim=1))
        self.register_buffer("queue_ptr", torch.zeros(h, dtype=torch.long))
        self.t = 0.07

    def forward(self, img_q: torch.Tensor, img_k: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            for pk, pq in zip(
                [*self.encoder_k.parameters(), *self.heads_k.parameters()],
                [*self.encoder_q.parameters(), *self.heads_q.parameters()],
                strict=True,
            ):
                pk.data = pk.data * 0.999 + pq.data * 0.001
        v_q = self.encoder_q(img_q)
        with torch.no_grad():
            v_k = [self.encoder_k(x) for x in img_k]
        losses = []
        n = len(img_k)
        for i in range(n):
            z_q = F.normalize(self.heads_q[i](v_q), dim=1)
            with torch.no_grad():
                z_k = [F.normalize(self.heads_k[i](v), dim=1) for v in v_k]
            neg = self.queue[i].clone().detach()
            if i > 0:
                neg = torch.cat([neg, *[z_k[j].T for j in range(n) if j != i]], dim=1)
            logits = torch.cat([(z_q * z_k[i]).sum(1, keepdim=True), z_q @ neg], dim=1) / self.t
            losses.append(F.cross_entropy(logits, torch.zeros(len(z_q), dtype=torch.long)))
            with torch.no_grad():
                b = z_k[i].shape[0]
                p = int(self.queue_ptr[i])
                self.queue[i, :, p : p + b] = z_k[i].T
                self.queue_ptr[i] = (p + b) % self.queue.shape[2]
        return torch.stack(losses).sum()


def _runner(model: nn.Module, params, chans: int, size: int, batch: int, bf16: bool, cl: bool, ours: bool):
    opt = torch.optim.SGD(params, lr=0.03, momentum=0.9, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(batch, chans, size, size, generator=g)
    keys = [torch.randn(batch, chans, size, size, generator=g) for _ in range(3)]
    if cl:
        model = model.to(memory_format=torch.channels_last)
        q = q.contiguous(memory_format=torch.channels_last)
        keys = [k.contiguous(memory_format=torch.channels_last) for k in keys]

    def step() -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
        with ctx:
            loss = model(q, keys).loss if ours else model(q, keys)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="224,128,64")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    print(f"# training step, ResNet-18, batch {a.batch}, SeCo (3 subspaces, queue 16384); {machine()}\n")
    rows = []
    for size in [int(s) for s in a.sizes.split(",")]:
        steps = max(2, a.steps if size >= 200 else a.steps * 2)
        torch.manual_seed(0)
        base = ContrastiveModel("resnet18", in_chans=3, num_heads=3, queue_size=16384).train()
        ref = PaperStyleStep(base).train()
        runners = {
            "paper-style fp32 (3 bands)": _runner(
                ref, [*ref.encoder_q.parameters(), *ref.heads_q.parameters()], 3, size, a.batch, False, False, False
            )
        }
        for name, chans, bf16, cl in [
            ("seco fp32 (3 bands)", 3, False, False),
            ("seco bf16 (3 bands)", 3, True, False),
            ("seco fp32 channels-last (3 bands)", 3, False, True),
            ("seco fp32 (12 bands)", 12, False, False),
        ]:
            torch.manual_seed(0)
            m = ContrastiveModel("resnet18", in_chans=chans, num_heads=3, queue_size=16384).train()
            runners[name] = _runner(m, m.query_parameters(), chans, size, a.batch, bf16, cl, True)
        # interleaved rounds: every contender once per round, so load changes hit all of them alike
        times: dict[str, list[float]] = {n: [] for n in runners}
        for fn in runners.values():
            fn()  # warm-up
        for _ in range(steps):
            for n, fn in runners.items():
                times[n].append(timeit(fn, 1, warmup=0))
        med = {n: sorted(t)[len(t) // 2] for n, t in times.items()}
        t_ref = med["paper-style fp32 (3 bands)"]
        for name, t in med.items():
            rows.append((size, name, a.batch / t, t_ref / t))
        print(table(["px", "step", "samples/s", "x paper-style"], [r for r in rows if r[0] == size]), flush=True)
        print()


if __name__ == "__main__":
    main()
