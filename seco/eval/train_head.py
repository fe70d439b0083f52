"""Classifier training through the backbone: the paper's linear protocol (frozen) and fine-tuning (all weights).

``paper`` follows the official scripts (ServiceNow/seasonal-contrast): a linear layer on the pooled features
of the frozen backbone (``main_eurosat.py``: cross-entropy; ``ssl_finetuner.py`` for BigEarthNet: dropout 0.2
then a linear layer, ``MultiLabelSoftMarginLoss``), Adam (lr 1e-3), the learning rate divided by 10 at 60 %
and 80 % of the epochs, 100 epochs, mini-batches of 32 (EuroSAT) / 256 (BigEarthNet) with the last partial
batch dropped, no augmentation; the scores of the last epoch are reported. Every step runs the backbone,
as the official code does. Unlike the official code the backbone stays in eval mode, so its BatchNorm
statistics do not drift (the paper's Lightning module left them in train mode).

``finetune`` trains the backbone too, with the same head, optimiser and schedule, keeps the weights of the
best validation epoch, and stops after ``patience`` epochs without improvement.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from seco.eval.backbone import autocast_for
from seco.eval.features import Transform
from seco.models.resnet import ResNet


@dataclass(frozen=True)
class HeadConfig:
    """How to train the classifier (see the module docstring for the paper's values)."""

    num_outputs: int
    multilabel: bool
    epochs: int = 100
    lr: float = 1e-3
    batch_size: int = 32
    milestones: tuple[float, ...] = (0.6, 0.8)
    dropout: float = 0.0
    finetune: bool = False
    patience: int = 10
    seed: int = 0


@dataclass
class HeadResult:
    """Scores of the reported model on val and test ((N, K) logits) and the training history."""

    val_scores: np.ndarray
    test_scores: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0


def _collate(samples: list[dict[str, Any]]) -> tuple[Tensor, Tensor]:
    return torch.stack([s["image"] for s in samples]), torch.stack([s["label"] for s in samples])


class _Classifier(nn.Module):
    def __init__(self, backbone: ResNet, cfg: HeadConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(backbone.feature_dim, cfg.num_outputs))
        self.finetune = cfg.finetune
        self.num_outputs = cfg.num_outputs

    def forward(self, x: Tensor) -> Tensor:
        with torch.set_grad_enabled(self.finetune and torch.is_grad_enabled()):
            f = self.backbone.forward_features(x)  # (B, D)
        return self.head(f.float())  # (B, K)


def _scores(
    clf: _Classifier, dataset: Dataset, transform: Transform | None, batch_size: int, device: torch.device,
    autocast: Callable[[], Any], num_workers: int,
) -> np.ndarray:
    clf.eval()
    out = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate)
    with torch.no_grad():
        for x, _ in loader:
            x = x.to(device).float()
            x = transform.apply(x) if transform is not None else x
            with autocast():
                out.append(clf(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, clf.num_outputs), np.float32)


def _train_epoch(
    clf: _Classifier, loader: DataLoader, loss_fn: nn.Module, opt: torch.optim.Optimizer,
    transform: Transform | None, device: torch.device, autocast: Callable[[], Any], multilabel: bool,
) -> float:
    """One pass over ``loader``; the mean training loss per sample."""
    clf.train()
    if not clf.finetune:
        clf.backbone.eval()  # frozen: BatchNorm statistics stay as trained
    total, n = 0.0, 0
    for x, y in loader:
        x = x.to(device).float()
        x = transform.apply(x) if transform is not None else x
        y = y.to(device)
        with autocast():
            logits = clf(x)
        loss = loss_fn(logits.float(), y.float() if multilabel else y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(x)
        n += len(x)
    return total / max(n, 1)


def train_head(
    backbone: ResNet,
    transform: Transform | None,
    train: Dataset,
    val: Dataset,
    test: Dataset,
    cfg: HeadConfig,
    val_score: Callable[[np.ndarray], float],
    device: torch.device,
    bf16: bool = False,
    num_workers: int = 0,
    eval_batch_size: int = 64,
    progress: bool = False,
) -> HeadResult:
    """Train a classifier on ``train`` through ``backbone`` (frozen unless ``cfg.finetune``).

    Args:
        backbone: the ResNet; with ``cfg.finetune`` it is trained in place (pass a copy to keep the original).
        transform: input normalisation applied on the device.
        train, val, test: sample-dict datasets (``image`` (C, H, W), ``label`` () or (K,)).
        cfg: schedule and head.
        val_score: higher-is-better score of val logits (N, K), for fine-tuning's early stopping.

    Returns:
        Val / test logits of the last epoch (paper) or of the best val epoch (finetune).
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    clf = _Classifier(backbone, cfg).to(device)
    for p in clf.backbone.parameters():
        p.requires_grad_(cfg.finetune)
    params = list(clf.parameters()) if cfg.finetune else list(clf.head.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(m * cfg.epochs) for m in cfg.milestones])
    loss_fn: nn.Module = nn.MultiLabelSoftMarginLoss() if cfg.multilabel else nn.CrossEntropyLoss()
    drop_last = len(train) > cfg.batch_size  # type: ignore[arg-type]
    loader = DataLoader(
        train, batch_size=cfg.batch_size, shuffle=True, drop_last=drop_last, generator=gen,
        num_workers=num_workers, collate_fn=_collate,
    )
    autocast = autocast_for(bf16, device)

    def scores(dataset: Dataset) -> np.ndarray:
        return _scores(clf, dataset, transform, eval_batch_size, device, autocast, num_workers)

    history: list[dict[str, float]] = []
    best, best_epoch, best_state, stale = -np.inf, 0, None, 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, desc="finetune" if cfg.finetune else "linear (paper)", unit="epoch", leave=False)
    epoch = 0
    for epoch in range(1, cfg.epochs + 1):
        row = {"epoch": float(epoch),
               "train_loss": _train_epoch(clf, loader, loss_fn, opt, transform, device, autocast, cfg.multilabel)}
        sched.step()
        if cfg.finetune:
            row["val_score"] = score = val_score(scores(val))
            if score > best:
                best, best_epoch, stale = score, epoch, 0
                best_state = copy.deepcopy(clf.state_dict())
            else:
                stale += 1
        history.append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}")
        if cfg.finetune and stale >= cfg.patience:
            break
    if bar is not None:
        bar.close()
    if best_state is not None:
        clf.load_state_dict(best_state)
    else:
        best_epoch = epoch
    return HeadResult(scores(val), scores(test), history, best_epoch, epoch)
