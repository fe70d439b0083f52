"""Makes the view tests' helpers (view_helpers.py, cdp.py) importable; the store every test views."""

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from view_helpers import make_store, write_failures  # noqa: E402


@pytest.fixture(scope="session")
def view_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store above (read-only for the tests: each test writes its view elsewhere)."""
    path = tmp_path_factory.mktemp("view") / "store.zarr"
    make_store(path)
    write_failures(path)
    return path
