"""The resumable, sharded batch sampler of pre-training (``ResumableSampler``) and the batch-size check.

The sample order of an epoch is a function of ``(seed, epoch)``; the position is what the loop has consumed,
so a run resumed from ``state_dict()`` sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch.utils.data import Sampler

from seco.errors import ConfigError

__all__ = ["ResumableSampler", "check_batch_size"]


def check_batch_size(n: int, batch_size: int, world_size: int = 1) -> None:
    """Raise before any work if ``n`` samples cannot fill one batch on every process.

    Raises:
        ConfigError: naming both numbers and the fix.
    """
    if n < batch_size * world_size:
        most = n // world_size
        raise ConfigError(
            f"the store has {n} usable locations, fewer than one batch of {batch_size}"
            + (f" per process x {world_size} processes" if world_size > 1 else "")
            + f"; lower the batch size to at most {most * world_size}"
            + (f" ({most} per process)" if world_size > 1 else "")
            + " or collect more locations"
        )


class ResumableSampler(Sampler[list[Any]]):
    """A batch sampler: a ``(seed, epoch)`` permutation, sharded over ranks, resumable mid-epoch.

    Rank ``r`` of ``world_size`` gets ``perm[r::world_size]`` (as ``DistributedSampler``). With ``drop_last``
    every rank gets the same number of full batches and the remainder of the permutation is dropped; without
    it, the permutation is padded by wrapping so every rank gets ``ceil(n / world_size)`` samples (the last
    batch may be short).

    The position is what the loop has *consumed*, counted by ``advance()`` after each step, not what the
    DataLoader has prefetched; ``state_dict()`` holds ``(epoch, position)`` and an iterator started after
    ``load_state_dict`` begins exactly at the next unconsumed batch. Use as ``DataLoader(batch_sampler=...)``.

    Args:
        n: dataset length.
        batch_size: samples per batch on this process.
        seed: permutation seed (the same on every rank).
        rank, world_size: this process and the number of processes.
        drop_last: drop samples that do not fill a batch on every rank.
        with_epoch: yield ``(epoch, i)`` pairs instead of ``i`` (``PretrainDataset`` accepts both), so
            persistent workers need no ``set_epoch``.

    Raises:
        ConfigError: on bad arguments, or fewer samples than one batch per process.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
        with_epoch: bool = False,
    ) -> None:
        if n < 1 or batch_size < 1 or world_size < 1:
            raise ConfigError(f"sampler needs n >= 1, batch_size >= 1, world_size >= 1; got {n}, {batch_size}, {world_size}")
        if seed < 0:
            raise ConfigError(f"seed {seed} must be >= 0")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is not in [0, {world_size}); check RANK and WORLD_SIZE")
        if drop_last:
            check_batch_size(n, batch_size, world_size)
        self.n, self.batch_size, self.seed = int(n), int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.drop_last, self.with_epoch = bool(drop_last), bool(with_epoch)
        self.epoch = 0
        self.position = 0

    @property
    def num_samples(self) -> int:
        """Samples of this rank in one epoch."""
        if self.drop_last:
            return (self.n // (self.batch_size * self.world_size)) * self.batch_size
        return math.ceil(self.n / self.world_size)

    @property
    def batches_per_epoch(self) -> int:
        """Batches of this rank in one full epoch."""
        return math.ceil(self.num_samples / self.batch_size)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """This rank's sample order for ``epoch`` (default: the current one): (num_samples,) int64."""
        e = self.epoch if epoch is None else int(epoch)
        perm = np.random.default_rng([self.seed, e]).permutation(self.n)  # (n,)
        total = self.num_samples * self.world_size
        if total > self.n:  # pad by wrapping, as DistributedSampler
            perm = np.resize(perm, total)
        return perm[self.rank : total : self.world_size]

    def __iter__(self):
        epoch, start = self.epoch, self.position
        idx = self.indices(epoch)
        for s in range(start, self.num_samples, self.batch_size):
            batch = idx[s : s + self.batch_size].tolist()
            yield [(epoch, i) for i in batch] if self.with_epoch else batch

    def __len__(self) -> int:
        """Batches left in the current epoch."""
        return math.ceil((self.num_samples - self.position) / self.batch_size)

    def advance(self, batches: int = 1) -> None:
        """Record that the loop consumed ``batches`` more batches of the current epoch."""
        if self.position >= self.num_samples:
            raise ConfigError(
                f"epoch {self.epoch} is already fully consumed ({self.num_samples} samples); call next_epoch()"
            )
        self.position = min(self.position + batches * self.batch_size, self.num_samples)

    def next_epoch(self) -> None:
        """Move to the start of the next epoch."""
        self.epoch += 1
        self.position = 0

    def set_epoch(self, epoch: int) -> None:
        """Go to ``epoch``; its start unless it is the current epoch (so a restored position survives)."""
        if int(epoch) != self.epoch:
            self.epoch = int(epoch)
            self.position = 0

    def state_dict(self) -> dict[str, Any]:
        """``epoch`` and ``position`` (samples consumed this epoch), with the settings they depend on."""
        return {
            "epoch": self.epoch,
            "position": self.position,
            "n": self.n,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "world_size": self.world_size,
            "drop_last": self.drop_last,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue from ``state_dict()`` of the same run (any rank's: they are equal).

        Raises:
            ConfigError: if the saved settings differ (another dataset size, batch size, seed or world size
                would give another sample order).
        """
        missing = [k for k in ("epoch", "position") if k not in state]
        if missing:
            raise ConfigError(f"sampler state lacks {missing}; pass ResumableSampler.state_dict() of a run")
        for key in ("n", "batch_size", "seed", "world_size", "drop_last"):
            if key in state and state[key] != getattr(self, key):
                raise ConfigError(
                    f"sampler state has {key}={state[key]!r} but this run has {key}={getattr(self, key)!r}; "
                    f"resume with the same {key} (and the same store), or start a new run"
                )
        position = int(state["position"])
        if not 0 <= position <= self.num_samples:
            raise ConfigError(f"sampler state position {position} is outside [0, {self.num_samples}]")
        self.epoch, self.position = int(state["epoch"]), position
