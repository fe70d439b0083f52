"""Child process of test_store_crash: appends locations 0..N-1 exactly once, resuming a previous run.

    python crash_writer.py STORE N COMMIT_EVERY HIST_EVERY [GRID]

GRID ``native`` writes a native-resolution store of ``NATIVE_BANDS`` (10, 20 and 60 m bands).

Prints ``ready`` once the writer is open, so the parent kills it while it appends.
"""

import sys

from store_helpers import BANDS, P, T, location, native_location

from seco.store import StoreLayout, create_store

NATIVE_BANDS = ("B02", "B05", "B01", "B11")


def intended(i: int, grid: str = "10m") -> dict:
    """Location ``i`` as the child appends it."""
    return native_location(i, NATIVE_BANDS, seed=7) if grid == "native" else location(i, seed=7)


def run(path: str, n: int, commit_every: int, hist_every: int, grid: str = "10m") -> None:
    """Create or continue the store and append every location not in it yet."""
    bands = NATIVE_BANDS if grid == "native" else BANDS
    w = create_store(path, bands, T, P, label_names=["a", "b", "c", "d"], exist_ok=True,
                     commit_every=commit_every, hist_every=hist_every, layout=StoreLayout(grid=grid))
    print("ready", flush=True)
    for i in range(n):
        loc = intended(i, grid)
        if not w.has(loc["key"]):
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"])
    w.close()
    print("done", flush=True)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6])
