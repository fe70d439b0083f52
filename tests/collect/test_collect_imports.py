"""seco.collect must stay free of torch (it runs on download workers without it)."""

from __future__ import annotations

import subprocess
import sys


def test_collect_never_imports_torch(tmp_path):
    code = (
        "import sys\n"
        "import seco.collect as c\n"
        "from seco.collect import catalog, dates, geo, sampling\n"
        f"c.run_sample({str(tmp_path / 'l.parquet')!r}, 20, seed=1, end='2024-01-01')\n"
        "c.read_locations(" + repr(str(tmp_path / "l.parquet")) + ")\n"
        "import pystac_client, rasterio  # the lazy imports of catalog.py\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
