"""``seco eval oscd``: change detection on OSCD as in the SeCo paper.

Protocol (official ``main_oscd.py`` / ``datasets/oscd_datamodule.py``, read for reference):

- frozen backbone; features of both dates at conv1 and layer1..layer4, absolute differences, a U-Net
  decoder (:mod:`seco.models.unet`) trained with ``BCEWithLogitsLoss``, Adam (lr 1e-3, weight decay 1e-4),
  ``ExponentialLR(0.95)`` stepped per epoch, 100 epochs, batches of 32;
- training patches of 96 x 96 px at random positions of the train cities, each with a random horizontal
  flip and a random rotation by a multiple of 90 degrees (the same for both dates and the mask); an epoch
  is as many patches as the 96 px grid tiles of the train cities (the official epoch). The official code cuts
  a fixed grid instead of random positions;
- test: each test city cut into a grid of 96 px tiles (the last row / column zero-padded, the padding
  ignored by every metric), the predicted probabilities stitched back, change where ``p > threshold``.

Reported: precision, recall, F1 and IoU of the change class over **all test pixels** (the honest number),
and beside it the paper's number: the **mean of per-batch scores** over batches of 32 tiles in a seeded
shuffled order with the last partial batch dropped, which is what the official Lightning metrics log.

Normalisation (``normalization=``): ``"weights"`` (the default) uses the weights' own statistics, else (random
init) per-band statistics of the train cities (both dates); ``"data"`` uses the train-city statistics for
every backbone, which is the fair policy when backbones are compared: a pre-trained export's statistics come
from its pre-training store (e.g. L2A surface reflectance), which may not match the evaluation data (OSCD is
L1C), while a random init would see the evaluation data's own. ``levels=`` keeps a subset of the five
feature differences (the others are fed to the decoder as zeros): an ablation of which depths carry the
change signal.

Radar (``bands`` ``s1`` / ``s2`` / ``s1+s2`` where the cities have Sentinel-1 pairs, :mod:`seco.data.oscd`): S2
channels are reflectance, S1 channels dB, and each band is normalised with its own statistics in its own units
(the weights' ``Normalization``, or the train cities' per-band statistics). A multi-sensor backbone (e.g. a
``seco-s12`` export, S2 + VV / VH) given one sensor's bands only (``bands="s1"`` or ``"s2"``) sees the other
sensor's channels as zeros, i.e. at their normalised mean, as seco-s12's single-sensor views show them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from seco.backbones import build_backbone
from seco.bands import L1C, S1_BANDS, BandSelection, parse_bands, sensor_of
from seco.data.oscd import IMAGES_DIR, OSCD, has_s1, read_city_list
from seco.errors import ConfigError, DatasetError
from seco.eval.backbone import (
    InputTransform,
    LoadedBackbone,
    autocast_for,
    check_unchanged,
    load_weights,
    resolve_bands,
    resolve_device,
    snapshot,
)
from seco.eval.config import ChangeConfig
from seco.eval.features import image_stats
from seco.eval.metrics import ChangeCounts, change_counts, per_batch_average
from seco.eval.report import (
    FN_COLOUR,
    FP_COLOUR,
    TP_COLOUR,
    change_map_rgb,
    fmt,
    plot_history,
    rgb_preview,
    save_change_panel,
    write_json,
)
from seco.models.unet import ChangeDetector

#: Normalisation policies of :func:`run_change_detection` (see the module docstring).
NORM_POLICIES = ("weights", "data")
#: Names of the five feature levels of the difference encoder, shallow to deep.
LEVEL_NAMES = ("conv1", "layer1", "layer2", "layer3", "layer4")


class LevelSelect(torch.nn.Module):
    """The difference encoder with only the ``keep`` levels passed on; the others become zeros of their shape.

    The decoder keeps its architecture, so a run with fewer levels differs only in what it is shown.
    """

    def __init__(self, encoder: torch.nn.Module, keep: tuple[int, ...]) -> None:
        super().__init__()
        self.inner = encoder
        self.keep = tuple(keep)
        self.channels = encoder.channels

    def train(self, mode: bool = True) -> LevelSelect:
        """Frozen like the encoder it wraps."""
        super().train(False)
        return self

    def forward(self, x1: Tensor, x2: Tensor) -> list[Tensor]:
        feats = self.inner(x1, x2)  # five (N, c_i, H_i, W_i)
        return [f if i in self.keep else torch.zeros_like(f) for i, f in enumerate(feats)]


def parse_levels(levels: str | tuple[int, ...] | list[int] | None) -> tuple[int, ...]:
    """``None`` / ``"all"`` -> all five; ``"layer1,layer2"`` or ``(1, 2)`` -> those level indices, sorted.

    Raises:
        ConfigError: an unknown level name or index, or an empty selection.
    """
    if levels is None or levels == "all":
        return tuple(range(len(LEVEL_NAMES)))
    items = [x.strip() for x in levels.split(",") if x.strip()] if isinstance(levels, str) else list(levels)
    out = set()
    for it in items:
        if isinstance(it, str) and it in LEVEL_NAMES:
            out.add(LEVEL_NAMES.index(it))
        elif isinstance(it, int) and not isinstance(it, bool) and 0 <= it < len(LEVEL_NAMES):
            out.add(it)
        else:
            raise ConfigError(f"feature level {it!r} is not one of {', '.join(LEVEL_NAMES)} (or 0..4)")
    if not out:
        raise ConfigError(f"no feature levels chosen; give some of {', '.join(LEVEL_NAMES)} or 'all'")
    return tuple(sorted(out))


def _cities(cfg: ChangeConfig) -> tuple[list[str], list[str]]:
    images = Path(cfg.root) / IMAGES_DIR
    test = list(cfg.test_cities) if cfg.test_cities else read_city_list(images / "test.txt")
    if cfg.train_cities:
        train = list(cfg.train_cities)
    else:
        train = [c for c in read_city_list(images / "train.txt") if c not in test]
    if not train:
        raise DatasetError(f"no train cities left after removing the test cities {test}; give --train-cities")
    return train, test


def _load(cfg: ChangeConfig, cities: list[str], bands: tuple[str, ...], role: str) -> list[dict[str, Any]]:
    try:
        ds = OSCD(cfg.root, bands=bands, split=None, cities=cities)
    except DatasetError as e:
        raise DatasetError(
            f"{e}. For the {role} cities of seco eval oscd choose labelled cities, e.g. --test-cities rennes "
            "(then the remaining train.txt cities train)"
        ) from e
    return [ds[i] for i in range(len(ds))]


def pair_bands(weight_bands: tuple[str, ...] | None, requested: str | None, available: tuple[str, ...],
               source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(bands to read, bands the model takes): equal, except for a multi-sensor backbone asked for the bands of
    one of its sensors only (those are read, the other sensor's channels are zero-filled).

    Raises:
        BandError: bands the data lacks (S1 bands of cities without S1 pairs), or a set the weights do not take.
    """
    if weight_bands is not None and requested is not None and len({sensor_of(b) for b in weight_bands}) == 2:
        req = parse_bands(requested, available)
        for sensor in ("s2", "s1"):
            own = tuple(b for b in weight_bands if sensor_of(b) == sensor)
            if set(req) == set(own) and set(req) != set(weight_bands):
                resolve_bands(own, None, available, source)  # the data must hold them
                return BandSelection(own), tuple(weight_bands)
    read = resolve_bands(weight_bands, requested, available, source)
    return read, tuple(read)


@dataclass(frozen=True)
class ZeroFill:
    """Input of a multi-sensor backbone shown one sensor: ``inner`` normalises the ``read`` bands, the model's
    other channels are 0 (their normalised mean)."""

    inner: InputTransform
    read: tuple[str, ...]
    model: tuple[str, ...]

    def apply(self, x: Tensor) -> Tensor:
        y = self.inner.apply(x)
        out = y.new_zeros((*y.shape[:-3], len(self.model), *y.shape[-2:]))
        out[..., [self.model.index(b) for b in self.read], :, :] = y
        return out

    def to_dict(self) -> dict[str, Any]:
        return {**self.inner.to_dict(), "model_bands": list(self.model),
                "zero_filled": [b for b in self.model if b not in self.read]}


def _pad_to(x: Tensor, h: int, w: int) -> Tensor:
    """Zero-pad the last two axes of ``x`` at the bottom / right to (h, w) (no copy when already that size)."""
    if x.shape[-2:] == (h, w):
        return x
    return F.pad(x, (0, w - x.shape[-1], 0, h - x.shape[-2]))


class PatchSampler:
    """Random training patches with flips and 90-degree rotations, seeded.

    Args:
        cities: dicts with normalised ``x1``, ``x2`` (C, H, W) and ``mask`` (H, W) tensors.
        patch: patch side; a city smaller than it is zero-padded (padding excluded from the loss).
        seed: seed of positions and augmentations.
    """

    def __init__(self, cities: list[dict[str, Tensor]], patch: int, seed: int) -> None:
        self.patch = patch
        self.rng = np.random.default_rng(seed)
        self.cities = []
        for c in cities:
            h, w = c["mask"].shape
            hh, ww = max(h, patch), max(w, patch)
            valid = torch.zeros(hh, ww, dtype=torch.bool)
            valid[:h, :w] = True
            self.cities.append({
                "x1": _pad_to(c["x1"], hh, ww), "x2": _pad_to(c["x2"], hh, ww),
                "mask": _pad_to(c["mask"].float(), hh, ww), "valid": valid,
            })
        areas = np.array([float(c["mask"].numel()) for c in cities])
        self.p = areas / areas.sum()
        self.tiles = sum(math.ceil(c["mask"].shape[0] / patch) * math.ceil(c["mask"].shape[1] / patch) for c in cities)

    def batch(self, n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x1, x2) (n, C, p, p), mask (n, 1, p, p) float, valid (n, 1, p, p) bool."""
        out: list[list[Tensor]] = [[], [], [], []]
        for ci in self.rng.choice(len(self.cities), size=n, p=self.p):
            c = self.cities[ci]
            hh, ww = c["valid"].shape
            top = int(self.rng.integers(0, hh - self.patch + 1))
            left = int(self.rng.integers(0, ww - self.patch + 1))
            k = int(self.rng.integers(0, 4))
            flip = bool(self.rng.random() < 0.5)
            for j, key in enumerate(("x1", "x2", "mask", "valid")):
                t = c[key][..., top : top + self.patch, left : left + self.patch]
                t = torch.flip(t, dims=(-1,)) if flip else t
                out[j].append(torch.rot90(t, k, dims=(-2, -1)))
        x1, x2 = torch.stack(out[0]), torch.stack(out[1])
        return x1, x2, torch.stack(out[2])[:, None], torch.stack(out[3])[:, None]


def tile_grid(h: int, w: int, patch: int) -> list[tuple[int, int]]:
    """Top-left corners of the patch grid covering (h, w), row-major; edge tiles overhang (padded)."""
    return [(t, left) for t in range(0, h, patch) for left in range(0, w, patch)]


@torch.no_grad()
def predict_city(
    model: ChangeDetector, x1: Tensor, x2: Tensor, patch: int, batch_size: int, device: torch.device, autocast
) -> tuple[np.ndarray, list[tuple[int, int]], np.ndarray]:
    """Change probabilities (H, W) of one city from grid tiles, and the tiles' corners and probabilities."""
    model.eval()
    h, w = x1.shape[-2:]
    hh, ww = math.ceil(h / patch) * patch, math.ceil(w / patch) * patch
    a, b = _pad_to(x1, hh, ww), _pad_to(x2, hh, ww)
    corners = tile_grid(h, w, patch)
    probs = np.zeros((len(corners), patch, patch), np.float32)
    for s in range(0, len(corners), batch_size):
        cs = corners[s : s + batch_size]
        t1 = torch.stack([a[:, t : t + patch, left : left + patch] for t, left in cs]).to(device)
        t2 = torch.stack([b[:, t : t + patch, left : left + patch] for t, left in cs]).to(device)
        with autocast():
            logits = model(t1, t2)
        probs[s : s + len(cs)] = torch.sigmoid(logits.float())[:, 0].cpu().numpy()
    full = np.zeros((hh, ww), np.float32)
    for (t, left), p in zip(corners, probs, strict=True):
        full[t : t + patch, left : left + patch] = p
    return full[:h, :w], corners, probs


def threshold_free(prob: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Scores of the change probabilities that do not depend on the 0.5 threshold (all test pixels).

    ``average_precision`` (area under the precision-recall curve) and ``best_f1`` with its threshold: the F1
    an oracle threshold would give. A short decoder schedule leaves the probabilities badly calibrated, so
    F1 at 0.5 can rank two backbones by calibration rather than by what their features hold; these two say
    which. ``best_f1`` chooses its threshold on the test pixels: a diagnostic, never the headline.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    if not mask.any() or mask.all():
        return {"average_precision": float("nan"), "best_f1": float("nan"), "best_threshold": float("nan")}
    p, r, t = precision_recall_curve(mask, prob)
    f1 = 2 * p * r / np.maximum(p + r, 1e-12)
    i = int(np.argmax(f1[:-1])) if len(t) else 0
    return {"average_precision": float(average_precision_score(mask, prob)), "best_f1": float(f1[i]),
            "best_threshold": float(t[i]) if len(t) else float("nan")}


def _normalised_cities(
    cfg: ChangeConfig, lb: LoadedBackbone, train_raw: list[dict[str, Any]], test_raw: list[dict[str, Any]],
    bands: tuple[str, ...], normalization: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], InputTransform | ZeroFill, str]:
    """(train, test, transform, where its normalisation came from): the cities' dates normalised (``x1``,
    ``x2`` (C, H, W)); the raw reflectance (and dB) is kept for the test cities only, where a change map shows
    it. ``bands`` are the bands read; fewer than the model's (one sensor of a multi-sensor backbone): zero-filled."""
    transform: InputTransform | ZeroFill = lb.transform
    norm_source = f"weights ({lb.kind})"
    if lb.normalization is None or normalization == "data":
        transform = InputTransform(image_stats([c[k] for c in train_raw for k in ("image1", "image2")], bands))
        norm_source = f"train city statistics ({len(train_raw)} cities, both dates)"
    elif tuple(bands) != lb.bands:
        transform = InputTransform(lb.normalization.select(bands))
    if tuple(bands) != lb.bands:
        assert isinstance(transform, InputTransform)
        transform = ZeroFill(transform, tuple(bands), lb.bands)
        norm_source += f"; {', '.join(b for b in lb.bands if b not in bands)} zero-filled"

    def prep(cities: list[dict[str, Any]], keep_raw: bool) -> list[dict[str, Any]]:
        return [{"x1": transform.apply(c["image1"]), "x2": transform.apply(c["image2"]), "mask": c["mask"],
                 "city": c["city"], **({"raw1": c["image1"], "raw2": c["image2"]} if keep_raw else {})}
                for c in cities]

    return prep(train_raw, keep_raw=False), prep(test_raw, keep_raw=True), transform, norm_source


def _train_decoder(
    model: ChangeDetector, train: list[dict[str, Any]], cfg: ChangeConfig, device: torch.device,
    autocast: Callable[[], Any],
) -> tuple[list[dict[str, float]], int]:
    """Train the decoder on random patches of the train cities; (loss and lr per epoch, steps per epoch)."""
    opt = torch.optim.Adam(model.decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.gamma)
    sampler = PatchSampler(train, cfg.patch, cfg.seed)
    steps = max(1, sampler.tiles // cfg.batch_size)
    history: list[dict[str, float]] = []
    bar = None
    if cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.epochs, desc="oscd decoder", unit="epoch", leave=False)
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        total = 0.0
        for _ in range(steps):
            x1, x2, mask, valid = (t.to(device) for t in sampler.batch(cfg.batch_size))
            with autocast():
                logits = model(x1, x2)  # (B, 1, p, p)
            loss_px = F.binary_cross_entropy_with_logits(logits.float(), mask, reduction="none")
            loss = (loss_px * valid).sum() / valid.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        sched.step()
        history.append({"epoch": float(epoch), "train_loss": total / steps, "lr": float(sched.get_last_lr()[0])})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total / steps:.4f}")
    if bar is not None:
        bar.close()
    return history, steps


@dataclass
class _TestScores:
    """What the test cities gave: counts over all pixels and per city, every grid tile's (prediction, mask,
    valid) for the paper's per-batch scores, and the threshold-free scores."""

    overall: ChangeCounts
    per_city: dict[str, dict[str, Any]]
    tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    threshold_free: dict[str, float]


def _test_cities(
    model: ChangeDetector, test: list[dict[str, Any]], cfg: ChangeConfig, device: torch.device,
    autocast: Callable[[], Any], bands: tuple[str, ...], maps: Path,
) -> _TestScores:
    """Predict every test city from grid tiles, score it, and save its change map panel under ``maps``."""
    overall = ChangeCounts()
    per_city: dict[str, dict[str, Any]] = {}
    tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (pred, mask, valid) per tile
    maps.mkdir(exist_ok=True)
    all_probs: list[np.ndarray] = []
    all_masks: list[np.ndarray] = []
    for c in test:
        prob, corners, tile_probs = predict_city(model, c["x1"], c["x2"], cfg.patch, cfg.batch_size, device, autocast)
        all_probs.append(prob.ravel())
        all_masks.append(c["mask"].numpy().astype(bool).ravel())
        pred = prob > cfg.threshold
        mask = c["mask"].numpy().astype(bool)
        counts = change_counts(pred, mask)
        overall = overall + counts
        per_city[c["city"]] = {**counts.scores(), **asdict(counts), "changed_fraction": float(mask.mean())}
        h, w = mask.shape
        pm = np.zeros((math.ceil(h / cfg.patch) * cfg.patch, math.ceil(w / cfg.patch) * cfg.patch), bool)
        pv = np.zeros_like(pm)
        pm[:h, :w], pv[:h, :w] = mask, True
        for (t, left), p in zip(corners, tile_probs, strict=True):
            sl = (slice(t, t + cfg.patch), slice(left, left + cfg.patch))
            tiles.append((p > cfg.threshold, pm[sl], pv[sl]))
        save_change_panel(
            rgb_preview(c["raw1"].numpy(), bands), rgb_preview(c["raw2"].numpy(), bands),
            change_map_rgb(pred, mask), maps / f"{c['city']}.png",
        )
    return _TestScores(overall, per_city, tiles,
                       threshold_free(np.concatenate(all_probs), np.concatenate(all_masks)))


def _paper_batches(tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]], batch_size: int,
                  seed: int) -> list[ChangeCounts]:
    """Counts per batch of ``batch_size`` tiles in a seeded shuffled order, the last partial batch dropped (all
    tiles in one batch when there are fewer): what the official Lightning metrics average."""
    order = np.random.default_rng(seed).permutation(len(tiles))
    n_batches = len(tiles) // batch_size if len(tiles) >= batch_size else 1
    batch_counts = []
    for bi in range(n_batches):
        sel = order[bi * batch_size : (bi + 1) * batch_size]
        bc = ChangeCounts()
        for i in sel:
            bc = bc + change_counts(*tiles[i])
        batch_counts.append(bc)
    return batch_counts


def training_bytes(backbone: str, in_chans: int, patch: int, batch_size: int, dropout: float = 0.3) -> int:
    """Estimated peak memory of one decoder training step at ``patch`` px and ``batch_size`` (bytes).

    Shapes only (the model runs on the meta device, nothing is allocated): the decoder's layer outputs, kept for
    the backward pass and matched by their gradients (x2), the five difference features, and three of the largest
    encoder outputs in flight (the frozen encoder keeps nothing for backward), all float32.
    """
    with torch.device("meta"):
        model = ChangeDetector(build_backbone(backbone, in_chans, num_classes=0), dropout)
        sizes: dict[str, list[int]] = {"encoder": [], "decoder": []}
        hooks = []
        for part in ("encoder", "decoder"):
            for m in getattr(model, part).modules():
                if not list(m.children()):
                    hooks.append(m.register_forward_hook(
                        lambda _m, _i, o, part=part: sizes[part].append(o.numel() if isinstance(o, Tensor) else 0)))
        x = torch.empty(batch_size, in_chans, patch, patch)
        feats = model.encoder(x, x)
        model.decoder(feats, (patch, patch))
        for h in hooks:
            h.remove()
    elems = 2 * sum(sizes["decoder"]) + sum(f.numel() for f in feats) + 3 * max(sizes["encoder"], default=0)
    return 4 * elems


def available_bytes(device: torch.device) -> int:
    """Memory free for a run on ``device``: the GPU's free memory, or the RAM available to processes."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    import psutil

    return int(psutil.virtual_memory().available)


def check_fits(cfg: ChangeConfig, backbone: str, in_chans: int, device: torch.device) -> None:
    """Refuse a ``--patch`` / ``--batch-size`` whose training step would not fit in memory, before any work.

    Raises:
        ConfigError: with the estimate, what is free, and settings that fit.
    """
    free = available_bytes(device)
    need = fit_need = training_bytes(backbone, in_chans, cfg.patch, cfg.batch_size, cfg.dropout)
    if need <= 0.8 * free:
        return
    fit = cfg.batch_size
    while fit > 1 and fit_need > 0.8 * free:
        fit //= 2
        fit_need = training_bytes(backbone, in_chans, cfg.patch, fit, cfg.dropout)
    hint = f"--batch-size {fit}" if fit_need <= 0.8 * free else "a smaller --patch (the paper uses 96)"
    raise ConfigError(
        f"--patch {cfg.patch} with --batch-size {cfg.batch_size} needs about {need / 2**30:.1f} GiB for a training "
        f"step of the {backbone} U-Net on {in_chans} bands, and {device.type} has {free / 2**30:.1f} GiB free; "
        f"use {hint}"
    )


def run_change_detection(
    cfg: ChangeConfig, *, normalization: str = "weights", levels: str | tuple[int, ...] | None = None
) -> dict[str, Any]:
    """Train the decoder on the train cities, score the test cities, write the run folder.

    Args:
        cfg: the run's configuration.
        normalization: ``"weights"`` or ``"data"`` (see the module docstring); recorded in ``metrics.json``.
        levels: feature levels fed to the decoder (:func:`parse_levels`; default all five).

    Raises:
        SecoError subclasses on bad input; FrozenBackboneError when the encoder changed.
    """
    if normalization not in NORM_POLICIES:
        raise ConfigError(f"normalization={normalization!r} is not one of {', '.join(NORM_POLICIES)}")
    keep = parse_levels(levels)
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    spec = load_weights(cfg.weights, cfg.backbone, cfg.weights_bands, cfg.seed)
    train_names, test_names = _cities(cfg)
    available = (*L1C, *S1_BANDS) if has_s1(cfg.root, train_names[0]) else L1C
    bands, model_bands = pair_bands(spec.bands, cfg.bands, available, cfg.weights)
    check_fits(cfg, spec.name, len(model_bands), device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    train_raw = _load(cfg, train_names, bands, "train")
    test_raw = _load(cfg, test_names, bands, "test")
    lb = spec.build(model_bands)
    train, test, transform, norm_source = _normalised_cities(cfg, lb, train_raw, test_raw, bands, normalization)
    del train_raw, test_raw
    before = snapshot(lb.model)
    torch.manual_seed(cfg.seed)
    model = ChangeDetector(lb.model, cfg.dropout)
    if len(keep) < len(LEVEL_NAMES):
        model.encoder = LevelSelect(model.encoder, keep)  # type: ignore[assignment]
    model = model.to(device)
    autocast = autocast_for(cfg.bf16, device)
    t_train = time.perf_counter()
    history, steps = _train_decoder(model, train, cfg, device, autocast)
    train_s = time.perf_counter() - t_train
    scores = _test_cities(model, test, cfg, device, autocast, bands, out / "change_maps")
    batch_counts = _paper_batches(scores.tiles, cfg.batch_size, cfg.seed)
    check_unchanged(before, lb.model, "OSCD decoder training")

    g = scores.overall.scores()
    metrics = {
        "task": "oscd",
        "protocol": "frozen encoder + U-Net decoder",
        "weights": cfg.weights,
        "weights_kind": lb.kind,
        "weights_sha256": lb.sha256,
        "backbone": lb.name,
        "bands": list(bands),
        **({"model_bands": list(model_bands)} if model_bands != tuple(bands) else {}),
        "normalization": norm_source,
        "normalization_policy": normalization,
        "levels": [LEVEL_NAMES[i] for i in keep],
        "transform": transform.to_dict(),
        "train": {"cities": train_names, "patches_per_epoch": steps * cfg.batch_size, "steps_per_epoch": steps,
                  "history": history},
        "test": {
            "cities": test_names,
            "all_pixels": {**g, **asdict(scores.overall)},
            "per_batch_average": per_batch_average(batch_counts),
            "batches": len(batch_counts),
            "tiles": len(scores.tiles),
            "per_city": scores.per_city,
            "threshold_free": scores.threshold_free,
        },
        "headline": {"metric": "f1", "value": g["f1"], "fraction": None, "by_fraction": {}},
        "timing": {"train_s": train_s, "total_s": time.perf_counter() - t0},
        "backbone_unchanged": True,
        "device": str(device),
    }
    write_json(out / "metrics.json", metrics)
    plot_history(history, out / "training_loss.png", "OSCD decoder training")
    (out / "report.md").write_text(_report(cfg, metrics))
    return metrics


def _report(cfg: ChangeConfig, m: dict[str, Any]) -> str:
    g, b = m["test"]["all_pixels"], m["test"]["per_batch_average"]
    colour = {"TP": TP_COLOUR, "FP": FP_COLOUR, "FN": FN_COLOUR}
    lines = [
        "# OSCD change detection: frozen encoder, feature differences, U-Net decoder",
        "",
        f"- weights: `{cfg.weights}` ({m['weights_kind']}, {m['backbone']}); bands {', '.join(m['bands'])}",
        f"- normalisation: {m['normalization']} (policy `{m['normalization_policy']}`); decoder fed the "
        f"differences of {', '.join(m['levels'])}",
        f"- train cities: {', '.join(m['train']['cities'])}; test cities: {', '.join(m['test']['cities'])}",
        f"- {cfg.epochs} epochs x {m['train']['steps_per_epoch']} steps of {cfg.batch_size} random {cfg.patch} px "
        f"patches (flips, 90-degree rotations); Adam lr {cfg.lr:g}, wd {cfg.weight_decay:g}, ExponentialLR "
        f"{cfg.gamma:g}; dropout {cfg.dropout:g}; threshold {cfg.threshold:g}",
        f"- time {m['timing']['total_s']:.1f} s on {m['device']}; frozen backbone unchanged: yes",
        "",
        "| change class | precision | recall | F1 | IoU |",
        "|---|---|---|---|---|",
        f"| all test pixels | {fmt(g['precision'])} | {fmt(g['recall'])} | {fmt(g['f1'])} | {fmt(g['iou'])} |",
        f"| mean of {m['test']['batches']} per-batch scores (paper) | {fmt(b['precision'])} | {fmt(b['recall'])} | "
        f"{fmt(b['f1'])} | {fmt(b['iou'])} |",
        "",
        f"Threshold-free (all test pixels): average precision {fmt(m['test']['threshold_free']['average_precision'])}, "
        f"F1 at the best threshold {fmt(m['test']['threshold_free']['best_f1'])} (threshold "
        f"{m['test']['threshold_free']['best_threshold']:.2f}, chosen on the test pixels: a diagnostic of calibration).",
        "",
        "| city | precision | recall | F1 | IoU | changed pixels |",
        "|---|---|---|---|---|---|",
    ]
    for city, r in m["test"]["per_city"].items():
        lines.append(f"| {city} | {fmt(r['precision'])} | {fmt(r['recall'])} | {fmt(r['f1'])} | {fmt(r['iou'])} | "
                     f"{fmt(r['changed_fraction'])} % |")
    lines += [
        "",
        "Change maps (date 1 | date 2 | prediction): "
        + ", ".join(f"{k} rgb{v}" for k, v in colour.items()) + ", no change black.",
        "",
        *[f"![{city}](change_maps/{city}.png)" for city in m["test"]["per_city"]],
        "",
        "![training loss](training_loss.png)",
        "",
        "Scores in percent. Configuration: `config.yaml`; every number: `metrics.json`.",
        "",
    ]
    return "\n".join(lines)
