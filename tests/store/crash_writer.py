"""Child process of test_store_crash: appends locations 0..N-1 exactly once, resuming a previous run.

    python crash_writer.py STORE N COMMIT_EVERY HIST_EVERY

Prints ``ready`` once the writer is open, so the parent kills it while it appends.
"""

import sys

from store_helpers import BANDS, P, T, location

from seco.store import create_store


def run(path: str, n: int, commit_every: int, hist_every: int) -> None:
    """Create or continue the store and append every location not in it yet."""
    w = create_store(path, BANDS, T, P, label_names=["a", "b", "c", "d"], exist_ok=True,
                     commit_every=commit_every, hist_every=hist_every)
    print("ready", flush=True)
    for i in range(n):
        loc = location(i, seed=7)
        if not w.has(loc["key"]):
            w.append(loc["key"], loc["images"], loc["valid"], loc["dates_meta"], label=loc["label"])
    w.close()
    print("done", flush=True)


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
