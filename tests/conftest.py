"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture
def shared_dir() -> Path:
    """The read-only shared material (``../shared`` beside the repository root)."""
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip(f"shared material not found at {path}; check it out beside the repository")
    return path
