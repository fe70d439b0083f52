"""Train / val / test splits for the benchmark datasets: seeded stratified splits, or published split files.

Two ways to choose a subset, used the same way by every loader:

* **Seeded split** (default): :func:`stratified_split` deals the items of each stratum (EuroSAT: the
  class; BigEarthNet: the rarest label of the patch, see :func:`rarest_label_strata`) to train / val / test
  in the given fractions, with a ``numpy`` generator seeded by ``seed``. Same seed, same files -> same
  split on any machine (file lists are sorted before splitting).
* **Split file**: :func:`read_name_list` reads a published list, e.g. the SeCo / torchgeo
  ``eurosat-train.txt`` (one ``AnnualCrop_1.jpg`` per line) or ``bigearthnet-train.csv`` (S2 patch name in
  the first column, S1 name in the second). Accepted: one name per line, or CSV/TSV whose first column is
  the name; blank lines and ``#`` comments are skipped, as is a first row that is a header word
  (``name``, ``patch``, ``filename`` ...). Names are compared by file stem, so ``Forest_1.jpg``,
  ``Forest/Forest_1.tif`` and ``Forest_1`` are the same item (the EuroSAT lists name ``.jpg`` files and
  serve the multispectral ``.tif`` copy too). A name missing from the dataset root is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seco.errors import ConfigError, DatasetError

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Default train / val / test fractions (EuroSAT's common 16200 / 5400 / 5400 is 60 / 20 / 20).
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)

_HEADER_WORDS = {
    "name",
    "names",
    "patch",
    "patches",
    "patch_name",
    "file",
    "filename",
    "file_name",
    "image",
    "images",
    "id",
    "city",
    "cities",
    "s2",
    "s2_name",
}
_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}
_SEPARATORS = re.compile(r"[,;\s]+")


def check_split(split: str | None) -> str | None:
    """Validate a split name (``None`` = the whole dataset).

    Raises:
        ConfigError: if ``split`` is not ``None``, ``"train"``, ``"val"`` or ``"test"``.
    """
    if split is not None and split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or None for everything")
    return split


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Validate train / val / test fractions: three numbers >= 0 that sum to 1.

    Raises:
        ConfigError: on a wrong count, a negative value or a sum other than 1.
    """
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ConfigError(
            f"split fractions {fractions!r} must be three numbers >= 0 summing to 1, e.g. (0.6, 0.2, 0.2)"
        )
    return fr  # type: ignore[return-value]


def item_name(entry: str) -> str:
    """The item name an entry of a split list refers to: base name without an image extension.

    ``"2750/Forest/Forest_1.jpg"`` -> ``"Forest_1"``; ``"S2A_MSIL2A_20170613T101031_0_45"`` unchanged.
    """
    base = re.split(r"[/\\]", entry.strip())[-1]
    stem, dot, ext = base.rpartition(".")
    if dot and "." + ext.lower() in _EXTENSIONS:
        return stem
    return base


def read_name_list(path: str | Path) -> list[str]:
    """Read a split or exclusion list: one name per line, or a CSV/TSV whose first column is the name.

    Returns:
        Item names (see :func:`item_name`) in file order, duplicates removed.

    Raises:
        DatasetError: if the file is missing, unreadable or lists no names.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(
            f"split/exclusion list {p} does not exist; give the path of a text or CSV file of names"
        )
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read name list {p}: {e}; it must be a UTF-8 text or CSV file") from e
    names: list[str] = []
    seen: set[str] = set()
    first = True
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        field = _SEPARATORS.split(line)[0].strip().strip("\"'")
        if first and field.lower() in _HEADER_WORDS:
            first = False
            continue
        first = False
        name = item_name(field)
        if name and name not in seen:
            seen.add(name)
            names.append(name)
    if not names:
        raise DatasetError(
            f"name list {p} lists no names; expected one file or patch name per line (or CSV first column)"
        )
    return names


def match_names(
    wanted: Sequence[str], available: Sequence[str], source: str | Path, root: str | Path
) -> list[int]:
    """Positions in ``available`` of every name in ``wanted`` (in ``wanted`` order).

    Raises:
        DatasetError: if any name is not in ``available``; the message lists a few of them.
    """
    pos = {n: i for i, n in enumerate(available)}
    missing = [n for n in wanted if n not in pos]
    if missing:
        few = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DatasetError(
            f"{len(missing)} of {len(wanted)} names in {source} are not in the dataset at {root} ({few}); "
            "the split file does not belong to this dataset copy, or the copy is incomplete"
        )
    return [pos[n] for n in wanted]


def _allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Split ``n`` items into counts proportional to ``fractions`` (largest remainder; ties -> earlier split)."""
    exact = [n * f for f in fractions]
    counts = [int(np.floor(e)) for e in exact]
    order = sorted(range(len(fractions)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def stratified_split(
    strata: np.ndarray, seed: int = 0, fractions: Sequence[float] = DEFAULT_FRACTIONS
) -> dict[str, np.ndarray]:
    """Seeded stratified train / val / test split.

    Each stratum's items are shuffled and dealt in proportion to ``fractions`` (largest-remainder
    rounding per stratum, so every split gets each class in the same proportion to within one item).

    Args:
        strata: ``(N,)`` integer stratum per item (e.g. the class index).
        seed: seed of the ``numpy`` generator; strata are visited in sorted order.
        fractions: train, val, test fractions summing to 1.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each a sorted ``(n_split,)`` int64 index array;
        together they partition ``range(N)``.
    """
    fr = check_fractions(fractions)
    strata = np.asarray(strata)
    if strata.ndim != 1:
        raise ConfigError(f"strata must be one label per item, shape (N,), got {strata.shape}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for value in np.unique(strata):  # sorted -> deterministic
        members = np.flatnonzero(strata == value)
        members = members[rng.permutation(len(members))]
        start = 0
        for split, count in zip(SPLITS, _allocate(len(members), fr), strict=True):
            parts[split].append(members[start : start + count])
            start += count
    return {
        s: np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, dtype=np.int64)
        for s, p in parts.items()
    }


def rarest_label_strata(targets: np.ndarray) -> np.ndarray:
    """Stratum of each multi-label item: its rarest positive label (by frequency in ``targets``).

    A cheap, deterministic stand-in for iterative stratification: stratifying on the rarest label
    guarantees that rare classes reach every split in proportion, while frequent classes, present in
    most patches anyway, follow closely. Items with no positive label form their own stratum ``K``.

    Args:
        targets: ``(N, K)`` multi-hot array.

    Returns:
        ``(N,)`` int64 strata in ``[0, K]``.
    """
    t = np.asarray(targets).astype(bool)  # (N, K)
    n, k = t.shape
    freq = t.sum(axis=0)  # (K,)
    # Rank labels by frequency (ties by index); an item's stratum is its positive label of lowest rank.
    rank = np.empty(k, dtype=np.int64)
    rank[np.lexsort((np.arange(k), freq))] = np.arange(k)
    ranked = np.where(t, rank[None, :], k)  # (N, K)
    best = ranked.min(axis=1)  # (N,)
    by_rank = np.argsort(rank)  # label index of each rank
    return np.where(best < k, by_rank[np.minimum(best, k - 1)], k).astype(np.int64)


def select_indices(
    names: Sequence[str],
    strata: np.ndarray,
    split: str | None,
    split_file: str | Path | None,
    seed: int,
    fractions: Sequence[float],
    root: str | Path,
) -> np.ndarray:
    """The items of a dataset that one split holds; the common path of every loader.

    Args:
        names: ``(N,)`` item names of the whole dataset, sorted.
        strata: ``(N,)`` stratum per item, used by the seeded split.
        split: ``None`` (everything), ``"train"``, ``"val"`` or ``"test"``.
        split_file: a published list; when given it alone decides the items (``split`` is then only a
            label and ``seed``/``fractions`` are unused).
        seed: seed of the stratified split.
        fractions: train / val / test fractions of the stratified split.
        root: the dataset root, for error messages.

    Returns:
        ``(n,)`` int64 positions into ``names``: split-file order, or sorted for the seeded split.
    """
    check_split(split)
    if split_file is not None:
        return np.asarray(match_names(read_name_list(split_file), names, split_file, root), dtype=np.int64)
    if split is None:
        return np.arange(len(names), dtype=np.int64)
    return stratified_split(strata, seed=seed, fractions=fractions)[split]
