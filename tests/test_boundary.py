"""``seco.boundary`` in-process: what a failed claim leaves, what a refused claim touches, OS errors as one line."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from seco.boundary import Output, claim_output, claim_outputs, describe_os_error, keep_store
from seco.errors import OutputBusyError, OutputError


class Boom(Exception):
    pass


def test_a_failed_command_removes_only_what_it_created(tmp_path):
    new = tmp_path / "a" / "b" / "new.zarr"
    with pytest.raises(Boom), claim_output(new, "seco test") as p:
        assert p == new and new.parent.is_dir()
        new.mkdir()
        (new / "half").write_text("x")
        raise Boom
    assert not (tmp_path / "a").exists()  # the output and the folders the claim made
    old = tmp_path / "old"
    old.mkdir()
    (old / "mine").write_text("x")
    with pytest.raises(Boom), claim_output(old, "seco test"):
        (old / "half").write_text("x")
        raise Boom
    assert (old / "mine").read_text() == "x"  # an output that was there before is never removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]  # no lock file left


def test_keep_decides_for_a_new_output(tmp_path):
    from seco.synth import make_store

    kept = tmp_path / "kept.zarr"
    with pytest.raises(Boom), claim_output(kept, "seco test", keep=keep_store):
        make_store(kept, num_locations=1, num_dates=2, patch_size=32, progress=False)
        raise Boom
    assert kept.is_dir()  # a store with a location: a rerun continues it
    empty = tmp_path / "empty.zarr"
    from seco.store import create_store

    with pytest.raises(Boom), claim_output(empty, "seco test", keep=keep_store):
        create_store(empty, "RGB", 2, 16).close()
        raise Boom
    assert not empty.exists()  # an empty store would only lock its settings in


def test_stem_outputs_take_their_sibling_files_with_them(tmp_path):
    stem = tmp_path / "w"
    (tmp_path / "w.json").write_text("old")
    o = Output(str(stem), also=tuple(str(stem) + s for s in (".safetensors", ".json")))
    with pytest.raises(Boom), claim_outputs([o], "seco export"):
        (tmp_path / "w.safetensors").write_text("half")
        raise Boom
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.json"]


def test_a_refused_claim_touches_nothing_of_the_holder(tmp_path):
    out = tmp_path / "s.zarr"
    with claim_output(out, "seco first"):
        out.mkdir()  # the holder creates its output after the second claim looked
        with pytest.raises(OutputBusyError, match=r"another `seco first` is writing to .*s\.zarr \(pid \d+\)"):
            with claim_output(out, "seco second"):
                pass
        assert out.is_dir()
    assert out.is_dir() and not (tmp_path / ".s.zarr.seco-lock").exists()


def test_the_kind_of_output_is_checked_before_the_work(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file"), claim_output(tmp_path / "f", "seco synth", kind="dir"):
        pytest.fail("the command ran")
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputError, match="is a folder"), claim_output(tmp_path / "d", "seco sample", kind="file"):
        pytest.fail("the command ran")
    assert (tmp_path / "f").read_text() == "x" and (tmp_path / "d").is_dir()


@pytest.mark.parametrize("code,words", [
    (errno.EROFS, "read-only file system; choose a writable --out"),
    (errno.ENOSPC, "no space left on device; free space there"),
    (errno.EACCES, "permission denied; choose a writable --out"),
    (errno.ENOTDIR, "remove or rename that file"),
])
def test_os_errors_on_an_output_are_one_line_naming_it(tmp_path, code, words):
    o = Output(str(tmp_path / "out.zarr"))
    line = describe_os_error(OSError(code, "x", str(tmp_path / "out.zarr" / "images" / "c")), [o])
    assert line.startswith(f"cannot write {tmp_path / 'out.zarr'}") and words in line and "\n" not in line
    line = describe_os_error(OSError(code, "x"), [o])  # a failed write() has no file name: blamed on the output
    if code in (errno.EROFS, errno.ENOSPC):
        assert line.startswith(f"cannot write {o.path}")


def test_os_errors_elsewhere_name_the_path(tmp_path):
    line = describe_os_error(FileNotFoundError(errno.ENOENT, "x", "/no/such/input.tif"), [Output(str(tmp_path))])
    assert line == "cannot open /no/such/input.tif: no such file or folder; check the path"
    assert Path("/no/such").exists() is False
