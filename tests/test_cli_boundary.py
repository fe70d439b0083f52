"""The CLI-wide guarantees, through the real command line (``python -m seco`` in a subprocess, as a user runs it):

1. every command that writes holds an exclusive lock on its output (a second process gets one line with the
   holder's pid, exit 2, and the output stays as it was);
2. an OS error at the boundary (a read-only place, a full disk, a file where a folder is expected) is one line
   naming the path and the fix, for every command that writes;
3. Ctrl-C: one line saying how to continue, exit 130, no traceback (worker processes included), and a plain
   rerun finishes;
4. flags and small semantics (``--version``, negative ``--bbox``, ``catalog build`` of described single-band
   files, ``synth --overwrite`` on real data, ``export --bands`` / ``--out DIR/``, ``store info`` / ``check``,
   spares that do not fit, ``sample --bbox`` / ``--centres``).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from seco.boundary import Output, claim_output
from tests.conftest import tiny_pretrain_args

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
sys.path.insert(0, str(REPO / "tests" / "imports"))  # fakes.py


def seco(*args: object, timeout: float = 300, **kw: object) -> subprocess.CompletedProcess:
    """``python -m seco ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "seco", *map(str, args)], cwd=REPO, env=ENV, capture_output=True,
                          text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


def one_line_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """The single stderr line of a command that failed with exit status 2 (no traceback)."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def committed(store: Path) -> int:
    """Locations committed to a store, read from its root attributes (0 when there is none yet)."""
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["seco_manifest"]["num_locations"])
    except (OSError, ValueError, KeyError):
        return 0


# ---------------------------------------------------------------------------------------------- inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_store: Path) -> dict[str, Path]:
    """What the commands read: a one-tile scene archive with its catalog and locations, a small SeCo corpus,
    a synth store and a one-step pre-training checkpoint."""
    from fakes import make_seco

    from seco.synth.archive import DEFAULT_DATES, PARQUET, make_archive
    from tests.integration.servers import archive_locations

    root = tmp_path_factory.mktemp("inputs")
    archive = make_archive(root / "archive", seed=3, zones=(31,), dates=DEFAULT_DATES[:2], scene_px=120, corrupt=0,
                           missing=0, progress=False)
    locations = archive_locations(archive, root / "loc.parquet", per_side=1, patch_px=32)
    corpus = make_seco(root / "corpus", locations=12, seed=4, broken=False).root
    run = root / "run"
    r = seco(*tiny_pretrain_args(tiny_store, run, "--max-steps", "1"))
    assert r.returncode == 0, r.stderr
    return {"archive": archive, "catalog": archive / PARQUET, "locations": locations, "corpus": corpus,
            "store": tiny_store, "ckpt": run / "last.ckpt"}


#: Every command that writes: (name, argv given its output path and the inputs, what the output is).
#: ``"absent"`` outputs are checked by their command only after its input checks, which a pre-made output
#: would fail (collect and import continue a store of their own, nothing else).
WRITERS: list[tuple[str, Callable[[Path, dict[str, Path]], list[object]], str]] = [
    ("synth", lambda o, i: ["synth", "--out", o, "--locations", 2, "--dates", 2, "--patch-size", 32,
                            "--no-progress"], "dir"),
    ("sample", lambda o, i: ["sample", "--out", o.with_suffix(".parquet"), "--n", 3], "file"),
    ("catalog build", lambda o, i: ["catalog", "build", i["archive"], "--out", o.with_suffix(".parquet")], "file"),
    ("collect", lambda o, i: ["collect", "--locations", i["locations"], "--catalog", i["catalog"], "--out", o,
                              "--patch-size", 32, "--max-cloud", "none", "--no-progress"], "absent"),
    ("import", lambda o, i: ["import", "seco", i["corpus"], "--out", o, "--workers", 0, "--patch-size", 48,
                             "--no-progress"], "absent"),
    ("store migrate", lambda o, i: ["store", "migrate", i["store"], o, "--no-progress"], "dir"),
    ("export", lambda o, i: ["export", i["ckpt"], "--out", o], "stem"),
    ("eval eurosat", lambda o, i: ["eval", "eurosat", "--root", i["archive"], "--weights", "random", "--out", o],
     "dir"),
    ("eval bigearthnet", lambda o, i: ["eval", "bigearthnet", "--root", i["archive"], "--weights", "random",
                                       "--out", o], "dir"),
    ("eval oscd", lambda o, i: ["eval", "oscd", "--root", i["archive"], "--weights", "random", "--out", o], "dir"),
    ("eval compare", lambda o, i: ["eval", "compare", i["archive"], "--out", o], "dir"),
    ("embed", lambda o, i: ["embed", "--weights", "random", "--input", i["archive"], "--out",
                            o.with_suffix(".parquet")], "file"),
    ("experiment compare", lambda o, i: ["experiment", "compare", "--out", o, "--scale", "tiny"], "dir"),
    ("demo", lambda o, i: ["demo", "--out", o, "--quick", "--no-progress"], "dir"),
]
#: ``seco pretrain`` checks its --out here too; its lock is taken inside the training run (rank 0 only).
PRETRAIN = ("pretrain", lambda o, i: tiny_pretrain_args(i["store"], o, "--max-steps", "1"), "dir")


def _output_path(argv: list[object]) -> Path:
    """The output an argv names (the value of --out, or store migrate's DST)."""
    if "--out" in argv:
        return Path(str(argv[argv.index("--out") + 1]))
    return Path(str(argv[-2]))  # store migrate SRC DST --no-progress


def _make_sentinel(out: Path, kind: str) -> Callable[[], bool]:
    """Put something at ``out`` and return a check that it is still there, unchanged."""
    if kind == "dir":
        out.mkdir(parents=True)
        (out / "keep.txt").write_text("mine")
        return lambda: sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    if kind == "file":
        out.write_bytes(b"mine")
        return lambda: out.read_bytes() == b"mine"
    if kind == "stem":
        side = out.parent / (out.name + ".json")
        side.write_text("mine")
        return lambda: side.read_text() == "mine" and not (out.parent / (out.name + ".safetensors")).exists()
    return lambda: not out.exists()


# ---------------------------------------------------------------------------------------------- 1. locks


@pytest.mark.parametrize("name,argv,kind", WRITERS, ids=[w[0] for w in WRITERS])
def test_a_second_writer_of_an_output_is_refused_and_the_output_stays_intact(name, argv, kind, inputs, tmp_path):
    args = argv(tmp_path / "out", inputs)
    out = _output_path(args)
    intact = _make_sentinel(out, kind)
    with claim_output(Output(str(out)), "seco holder"):  # this process is the first writer
        r = seco(*args)
        assert (out.parent / f".{out.name}.seco-lock").read_text() == f"{os.getpid()} seco holder"
    one_line_error(r, f"another `seco holder` is writing to {out} (pid {os.getpid()})", "wait for it")
    assert intact(), f"seco {name} changed its output while another process held it"
    assert not (out.parent / f".{out.name}.seco-lock").exists()  # the holder's lock file goes with it


def test_synth_twice_at_once_on_one_store_one_wins_the_store_is_whole(tmp_path):
    out = tmp_path / "s.zarr"
    cmd = [sys.executable, "-m", "seco", "synth", "--out", str(out), "--locations", "48", "--dates", "2",
           "--patch-size", "32", "--no-progress"]
    procs = [subprocess.Popen(cmd, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    for code, err in results:
        assert code in (0, 2) and "Traceback" not in err, err
        if code == 2:  # the other one held it (or had finished, and this one continued the finished store)
            assert "another `seco synth` is writing to" in err and len(err.strip().splitlines()) == 1, err
    assert 0 in [c for c, _ in results]
    from seco.store import open_store

    assert len(open_store(out)) == 48


def test_every_interrupt_hint_names_a_flag_the_command_has():
    """Hints after Ctrl-C name only flags that exist: synth/collect/import continue by a plain rerun, pretrain
    by --resume (which it has)."""
    import argparse

    from seco.cli import build_parser

    def walk(p: argparse.ArgumentParser):
        yield p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sp in a.choices.values():
                    yield from walk(sp)

    seen = {}
    for p in walk(build_parser()):
        hint = p.get_default("seco_interrupt")
        if hint is None:
            continue
        flags = {s for a in p._actions for s in a.option_strings}
        for word in hint.replace(";", " ").split():
            if word.startswith("--"):
                assert word in flags, (p.prog, hint)
        seen[p.prog] = hint
    for prog in ("seco synth", "seco collect", "seco import seco", "seco store migrate"):
        assert "--resume" not in seen[prog] and "rerun the same command" in seen[prog]
    assert "--resume" in seen["seco pretrain"]


# ---------------------------------------------------------------------------------------------- 2. OS errors


@pytest.fixture(scope="module")
def unwritable(tmp_path_factory: pytest.TempPathFactory):
    """A folder in which no file can be created by this process: a chmod 0o555 folder for a normal user; as
    root (CI), whom permissions do not stop, a pseudo file system that refuses new files (sysfs)."""
    if os.geteuid() != 0:
        d = tmp_path_factory.mktemp("readonly")
        d.chmod(0o555)
        yield d
        d.chmod(0o755)
        return
    for cand in (Path("/sys"), Path("/proc/sys")):
        try:
            (cand / "seco-probe").mkdir()
        except OSError as e:
            if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                yield cand
                return
        else:
            (cand / "seco-probe").rmdir()
    pytest.skip("running as root and no folder here refuses new files (/sys, /proc/sys): no read-only place")


@pytest.mark.parametrize("name,argv,kind", [*WRITERS, PRETRAIN], ids=[w[0] for w in [*WRITERS, PRETRAIN]])
def test_an_output_in_a_read_only_place_is_one_line(name, argv, kind, inputs, unwritable):
    args = argv(unwritable / "seco-test" / "out", inputs)
    out = _output_path(args)
    line = one_line_error(seco(*args), "cannot write", str(out), "choose a writable")
    assert any(w in line for w in ("read-only", "permission denied", "not permitted")), line


@pytest.mark.parametrize("name,argv,kind", [*WRITERS, PRETRAIN], ids=[w[0] for w in [*WRITERS, PRETRAIN]])
def test_a_file_where_a_folder_is_expected_is_one_line(name, argv, kind, inputs, tmp_path):
    (tmp_path / "afile").write_text("x")
    args = argv(tmp_path / "afile" / "out", inputs)
    one_line_error(seco(*args), "cannot write", str(tmp_path / "afile"), "remove or rename that file")
    assert (tmp_path / "afile").read_text() == "x"


def test_pretrain_out_naming_a_file_is_one_line(inputs, tmp_path):
    f = tmp_path / "run.txt"
    f.write_text("x")
    one_line_error(seco(*tiny_pretrain_args(inputs["store"], f, "--max-steps", "1")), f"--out {f} is a file")


def _in_small_tmpfs(d: Path, size: str, *commands: str) -> subprocess.CompletedProcess:
    """Run shell ``commands`` in a private mount namespace where ``$D`` (= ``d``) is a tmpfs of ``size``."""
    d.mkdir(exist_ok=True)
    script = f'D="{d}" && mount -t tmpfs -o size={size} tmpfs "$D" && ' + " && ".join(commands)
    return subprocess.run(["unshare", "-m", "sh", "-c", script], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def small_tmpfs(tmp_path_factory: pytest.TempPathFactory) -> None:
    if shutil.which("unshare") is None or _in_small_tmpfs(tmp_path_factory.mktemp("probe"), "64k", "true").returncode:
        pytest.skip("cannot mount a small tmpfs here (needs unshare and mount rights): no full or read-only disk "
                    "to write to")


def test_a_full_disk_and_a_read_only_file_system_are_one_line(small_tmpfs, inputs, tmp_path):
    py = sys.executable
    synth = f'{py} -m seco synth --out "$D/s.zarr" --locations 40 --dates 3 --patch-size 64 --no-progress'
    r = _in_small_tmpfs(tmp_path / "a", "256k", f'{{ {synth}; echo "rc=$?"; ls -A "$D"; }} 2>&1')
    lines = r.stdout.strip().splitlines()
    assert lines[1:] == ["rc=2"], r.stdout + r.stderr  # one error line, and nothing left in $D
    assert "cannot write" in lines[0] and "no space left on device" in lines[0] and "s.zarr" in lines[0], lines
    export = f'{py} -m seco export {inputs["ckpt"]} --out "$D/w"'
    r = _in_small_tmpfs(tmp_path / "b", "256k", f'{{ {export}; echo "rc=$?"; ls -A "$D"; }} 2>&1')
    lines = r.stdout.strip().splitlines()
    assert lines[1:] == ["rc=2"], r.stdout + r.stderr  # SafetensorError as one line; no stray files
    assert "cannot write" in lines[0] and "w.safetensors" in lines[0] and "no space left" in lines[0], lines
    r = _in_small_tmpfs(tmp_path / "c", "1m", 'mount -o remount,ro "$D"', f'{{ {synth}; echo "rc=$?"; }} 2>&1')
    lines = r.stdout.strip().splitlines()
    assert lines[1:] == ["rc=2"], r.stdout + r.stderr
    assert "read-only file system" in lines[0] and "choose a writable --out" in lines[0], lines


# ---------------------------------------------------------------------------------------------- 3. Ctrl-C


def _interrupt_once_committed(cmd: list[str], store: Path, least: int) -> tuple[int, str]:
    """Start ``python -m seco *cmd`` in its own process group, send SIGINT to the group (as Ctrl-C in a
    terminal) once ``store`` holds ``least`` locations, and return (exit status, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "seco", *cmd], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while p.poll() is None and committed(store) < least and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.poll() is None, f"the command ended before it could be interrupted: {p.communicate()}"
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    return p.returncode, err


def test_ctrl_c_in_synth_is_one_line_and_a_plain_rerun_finishes(tmp_path):
    out = tmp_path / "s.zarr"
    cmd = ["synth", "--out", str(out), "--locations", "800", "--dates", "2", "--patch-size", "32", "--no-progress"]
    code, err = _interrupt_once_committed(cmd, out, 16)
    assert code == 130 and err.strip() == "seco synth: interrupted; rerun the same command to continue where it stopped"
    kept = committed(out)
    assert 16 <= kept < 800
    r = seco(*cmd)
    assert r.returncode == 0, r.stderr
    assert committed(out) == 800


def test_ctrl_c_in_import_with_worker_processes_is_one_line_without_tracebacks(inputs, tmp_path):
    out = tmp_path / "i.zarr"
    cmd = ["import", "seco", str(inputs["corpus"]), "--out", str(out), "--workers", "2", "--commit-every", "1",
           "--patch-size", "48", "--no-progress"]
    code, err = _interrupt_once_committed(cmd, out, 1)
    assert code == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip() == "seco import seco: interrupted; rerun the same command to continue where it stopped"
    r = seco(*cmd)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert committed(out) == 12


# ---------------------------------------------------------------------------------------------- 4. flags


def test_version():
    from seco import __version__

    r = seco("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"seco {__version__}"


def test_catalog_search_takes_a_bbox_of_negative_numbers(inputs):
    r = seco("catalog", "search", "--catalog", inputs["catalog"], "--bbox", "-180,-90,180,90", "--start", "2021-01-01",
             "--end", "2022-12-31", "--json")
    assert r.returncode == 0, r.stderr
    ids = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert len(ids) == 2  # the tile on both dates


def _write_band(path: Path, description: str, value: int) -> None:
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=24, height=24, count=1, dtype="uint16", crs="EPSG:32631",
                       transform=from_origin(500000, 5000000, 10, 10)) as dst:
        dst.write(np.full((1, 24, 24), value, np.uint16))
        dst.set_band_description(1, description)


def test_catalog_build_takes_single_band_files_named_by_their_description(tmp_path):
    scene = tmp_path / "scenes" / "T31UDQ_20200601T103021"
    scene.mkdir(parents=True)
    _write_band(scene / "T31UDQ_20200601T103021_blue.tif", "B02", 100)
    _write_band(scene / "T31UDQ_20200601T103021_green.tif", "B03", 200)
    _write_band(scene / "T31UDQ_20200601T103021_other.tif", "not a band", 300)
    r = seco("catalog", "build", tmp_path / "scenes", "--out", tmp_path / "c.parquet")
    assert r.returncode == 0, r.stderr
    assert "indexed 1 scenes" in r.stdout and "skipped 1 file" in r.stdout, r.stdout
    assert "other.tif" in r.stdout and "['not a band']" in r.stdout and "do not name" not in r.stdout
    from seco.collect.catalog import open_catalog

    items = open_catalog(tmp_path / "c.parquet", bands="B02,B03").search((-180, -90, 180, 90), "2020-01-01",
                                                                          "2020-12-31")
    assert len(items) == 1 and set(items[0].assets) >= {"B02", "B03"}


def test_synth_overwrite_refuses_a_store_of_real_data_without_the_second_flag(inputs, tmp_path):
    out = tmp_path / "real.zarr"
    r = seco("import", "seco", inputs["corpus"], "--out", out, "--workers", 0, "--limit", 3, "--patch-size", 48,
             "--no-progress")
    assert r.returncode == 0, r.stderr
    synth = ["synth", "--out", out, "--locations", 2, "--dates", 2, "--patch-size", 32, "--no-progress", "--overwrite"]
    one_line_error(seco(*synth), "imported from the seco corpus", "--overwrite-real-data")
    from seco.store import open_store

    assert len(open_store(out)) == 3  # untouched
    r = seco(*synth, "--overwrite-real-data")
    assert r.returncode == 0, r.stderr
    assert open_store(out).keys()[0].startswith("synth-")


def test_export_bands_and_an_output_folder(inputs, tmp_path):
    one_line_error(seco("export", inputs["ckpt"], "--bands", "RGB", "--out", tmp_path / "w"),
                   "--bands RGB", "first convolution", "B01")
    assert not list(tmp_path.iterdir())
    (tmp_path / "weights").mkdir()
    for out in (tmp_path / "weights", f"{tmp_path / 'new'}/"):
        r = seco("export", inputs["ckpt"], "--bands", "all", "--out", out)
        assert r.returncode == 0, r.stderr
        folder = Path(str(out))
        assert sorted(p.name for p in folder.iterdir()) == ["run.json", "run.pth", "run.safetensors"]  # run folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "weights"]  # nothing beside the folders


def test_store_info_counts_valid_dates_and_gives_band_statistics(inputs):
    from seco.store import open_store

    r = seco("store", "info", inputs["store"], "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    s = open_store(inputs["store"])
    per = s.valid_mask().sum(axis=1)
    assert info["valid_dates"]["total"] == int(per.sum())
    assert info["valid_dates"]["locations_with"] == {str(k): int((per == k).sum()) for k in set(per.tolist())}
    when = s.meta_array("datetime")[s.valid_mask()]
    assert info["date_range"] == [str(when.min())[:19] + "Z", str(when.max())[:19] + "Z"]
    st = s.stats()
    assert list(info["band_stats_dn"]) == list(s.bands)
    assert info["band_stats_dn"]["B04"]["mean"] == pytest.approx(st["mean"][s.bands.index("B04")], abs=0.05)


def test_store_check_on_an_empty_store_says_so(tmp_path):
    from seco.store import create_store

    create_store(tmp_path / "empty.zarr", "RGB", num_dates=2, patch_size=16).close()
    one_line_error(seco("store", "check", tmp_path / "empty.zarr"), "holds no locations", "nothing to check")
    r = seco("store", "info", tmp_path / "empty.zarr")
    assert r.returncode == 0 and "locations: 0" in r.stdout and "band_stats_dn: none" in r.stdout


def test_sample_targets_an_area_and_collect_counts_only_the_spares_that_fit(inputs, tmp_path):
    from seco.collect.sampling import read_centres, read_locations

    (name, lon, lat), = read_centres(inputs["catalog"])  # the archive's one tile
    box = (lon - 0.008, lat - 0.005, lon + 0.008, lat + 0.005)  # about 1.2 x 1.1 km
    loc = tmp_path / "l.parquet"
    r = seco("sample", "--out", loc, "--n", 2, "--centres", inputs["catalog"], "--sigma-km", 0.5, "--bbox",
             ",".join(f"{v:.6f}" for v in box), "--min-separation-km", 0.5, "--end", "2022-01-01")
    assert r.returncode == 0, r.stderr
    got = read_locations(loc)
    assert len(got) == 2 and set(got.city) == {name}
    assert np.all((got.lon >= box[0]) & (got.lon <= box[2]) & (got.lat >= box[1]) & (got.lat <= box[3]))
    r = seco("collect", "--locations", loc, "--catalog", inputs["catalog"], "--out", tmp_path / "s.zarr",
             "--patch-size", 32, "--dry-run", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "placed only" not in r.stdout + r.stderr
    assert "of the 9 replacement locations (--spares) fit" in r.stdout or "no replacement location fits" in r.stdout
    assert not (tmp_path / "s.zarr").exists()
