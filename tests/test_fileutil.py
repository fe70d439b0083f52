"""seco.fileutil.atomic_write / atomic_open / AtomicFile: the one way seco replaces a file."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seco import fileutil
from seco.fileutil import AtomicFile, atomic_open, atomic_write

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask_027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_replaces_content_of_every_kind_and_leaves_no_temporary(tmp_path: Path, umask_027: None) -> None:
    target = tmp_path / "a.json"
    assert atomic_write(target, "é\n") == target
    assert target.read_text(encoding="utf-8") == "é\n"
    atomic_write(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"

    def writer(p: Path) -> None:  # a library that creates its file itself, 0600 (as safetensors does)
        p.unlink()
        fd = os.open(p, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, b"lib")
        os.close(fd)

    atomic_write(target, writer)
    assert target.read_bytes() == b"lib"
    with atomic_open(tmp_path / "m.csv", newline="") as f:
        f.write("a,b\r\n")
    assert (tmp_path / "m.csv").read_bytes() == b"a,b\r\n"
    # the mode a plain open(path, "w") gives under this umask, whatever made the file
    assert _mode(target) == _mode(tmp_path / "m.csv") == 0o666 & ~0o027
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "m.csv"]


def test_a_failing_writer_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk"), atomic_open(target, "wb") as f:
        f.write(b"half")
        raise RuntimeError("disk gone")

    def failing(p: Path) -> None:
        p.write_bytes(b"half")
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_one_temporary_name_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.parquet"
    target.parent.mkdir()
    af = AtomicFile(target)
    assert af.tmp == tmp_path / "sub" / f".x.parquet.{os.getpid()}.tmp" == fileutil.tmp_path(target)
    af.tmp.write_bytes(b"stale")  # a killed writer's leftover of the same name is taken over
    again = AtomicFile(target)
    assert again.tmp.read_bytes() == b""
    with again.open() as f:
        f.write(b"new")
    again.commit()
    assert target.read_bytes() == b"new" and not af.tmp.exists()
    with pytest.raises(ValueError, match="object store"):
        AtomicFile("s3://bucket/x.json")


_KILLED_WRITER = """
import sys
from pathlib import Path
from seco.fileutil import atomic_open, atomic_write

target, form = Path(sys.argv[1]), sys.argv[2]

def half(f):
    f.write(b"new" * 100_000)
    f.flush()
    print("writing", flush=True)
    sys.stdin.read()  # blocks until the test kills this process

if form == "open":
    with atomic_open(target, "wb") as f:
        half(f)
else:
    def writer(p):
        with open(p, "wb") as f:
            half(f)
    atomic_write(target, writer)
"""


@pytest.mark.parametrize("form", ["open", "callback"])
@pytest.mark.parametrize("existed", [True, False])
def test_sigkill_mid_write_keeps_the_old_file(tmp_path: Path, form: str, existed: bool) -> None:
    target = tmp_path / "config.yaml"
    if existed:
        target.write_bytes(b"old: 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(target), form], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"writing"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if existed:
        assert target.read_bytes() == b"old: 1\n"
    else:
        assert not target.exists()
    # the half-written bytes are only in the writer's hidden temporary file
    left = sorted(p.name for p in tmp_path.iterdir() if p != target)
    assert left == [f".config.yaml.{proc.pid}.tmp"]
    atomic_write(target, "new: 2\n")  # a later write is not disturbed by the leftover
    assert target.read_text() == "new: 2\n"


def test_no_other_module_renames_files_into_place() -> None:
    """One tmp scheme: every atomic write in seco goes through seco.fileutil. The store keeps its own protocol
    (shards written as zarr's ``<name>.<uuid>.partial`` and swept when a writer reopens the store; a new store
    folder built beside its target and renamed), so store/shard.py, store/create.py and store/writer.py are the exceptions."""
    exceptions = {"seco/fileutil.py", "seco/store/shard.py", "seco/store/create.py", "seco/store/writer.py"}
    rename = re.compile(r"""\bos\.(replace|rename)\(|\btmp\w*\.(replace|rename)\(|["'][^"']*\.tmp\b""")
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
             for p in sorted((ROOT / "seco").rglob("*.py")) if str(p.relative_to(ROOT)) not in exceptions
             for i, line in enumerate(p.read_text().splitlines(), 1) if rename.search(line)]
    assert not found, "write through seco.fileutil.atomic_write / atomic_open / AtomicFile:\n" + "\n".join(found)
