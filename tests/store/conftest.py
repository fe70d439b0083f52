"""Makes the store tests' helper module (store_helpers.py) importable, also from child processes."""

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
