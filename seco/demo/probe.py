"""Steps 4 and 7 of the demo: a labelled store of the same simulator, and a linear probe of SeCo vs random init.

The collected store has no labels, so the probe runs on a labelled store of the same simulator
(:func:`seco.synth.make_store`); both backbones are normalised with the probe data's own statistics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from seco.demo.plots import plot_probe


def make_probe_store(out: Path, locations: int, patch_size: int, seed: int, progress: bool) -> Any:
    """Write the labelled synth store ``out/probe_store`` and open it."""
    from seco.store import open_store
    from seco.synth import make_store

    path = out / "probe_store"
    print(f"[4/9] labelled synth store for the probe: {locations} locations x 5 dates x 12 bands x {patch_size} px")
    make_store(path, num_locations=locations, patch_size=patch_size, seed=seed, progress=progress)
    return open_store(path)


def linear_probe(out: Path, store: Any, bands: tuple[str, ...], crop: int, seed: int, weights: Path
                 ) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Linear probe of SeCo and random init, both normalised with the probe data's own statistics.

    Writes ``probe.json`` and ``probe.png`` into ``out``.

    Returns:
        Test and validation accuracy and C per backbone name, and the land-cover class names.
    """
    from seco.experiment.evaluate import probe, probe_images

    print("[7/9] linear probe on the synth land-cover labels: SeCo vs random init")
    x, y = probe_images(store, bands, crop, seed)
    results = {}
    for name, w in (("SeCo (this run)", str(weights)), ("random init", "random")):
        r = probe(w, bands, seed, x, y, split_seed=seed)  # checks that the frozen backbone did not change
        results[name] = {"test_acc": r["value"], "val_acc": r["val"], "C": r["C"]}
        print(f"    {name}: test accuracy {100 * r['value']:.1f} % (C={r['C']:g})")
    (out / "probe.json").write_text(json.dumps(results, indent=2))
    plot_probe(results, out / "probe.png")
    names = store.label_names or [str(c) for c in np.unique(y)]
    return results, names
