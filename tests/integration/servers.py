"""Real servers on 127.0.0.1 for the integration tests and bench/bench_collect.py, plus their test data.

- :func:`run_nginx`: nginx serving a folder (static files, HTTP range requests), access log with
  ``$bytes_sent`` per request.
- :func:`run_postgres`: PostgreSQL 15 (+ PostGIS) in a fresh ``initdb`` folder, as the unprivileged
  ``postgres`` user when the test runs as root (postgres refuses root).
- :func:`install_pgstac` / :func:`load_archive`: ``pypgstac migrate`` and the items of a synth archive.
- :func:`run_stac_fastapi`: stac-fastapi-pgstac under uvicorn.
- :func:`archive_locations`: a locations GeoParquet whose points and date windows fall on a synth archive.

Every process is started by the test run, bound to 127.0.0.1, has a parent-death signal (it stops when the
test process dies, even by SIGKILL) and is stopped at teardown; every wait is bounded. A missing binary or
Python package skips the test with the reason (:func:`require`); anything else is an error.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


# ---------------------------------------------------------------------------------------------- plumbing


def _die_with_parent() -> None:  # runs in the child between fork and exec (after setuid)
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path | None = None,
              timeout: float = START_TIMEOUT_S) -> None:
    """Wait until 127.0.0.1:port accepts connections; fail with the log tail if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting:\n{tail}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Stop a server process: ``sig``, then SIGKILL after :data:`STOP_TIMEOUT_S`."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


def find_binary(name: str, *patterns: str) -> str | None:
    """``name`` on PATH, else the first existing match of ``patterns`` (globs, newest version first)."""
    hit = shutil.which(name)
    if hit:
        return hit
    for pat in patterns:
        found = sorted(glob.glob(pat), reverse=True)
        if found:
            return found[0]
    return None


def require(*, binaries: dict[str, str | None] | None = None, modules: tuple[str, ...] = ()) -> None:
    """Skip the calling test, naming what is missing, when a server binary or Python package is absent."""
    missing = [f"{name} (binary)" for name, path in (binaries or {}).items() if not path]
    for mod in modules:
        try:
            __import__(mod)
        except ImportError:
            missing.append(f"{mod} (Python package)")
    if missing:
        pytest.skip(
            "not installed: " + ", ".join(missing) + ". CI installs them: apt-get install -y postgresql-15 "
            "postgresql-15-postgis-3 nginx; pip install -c constraints.txt -e '.[dev]'"
        )


def readable_tmpdir(prefix: str) -> Path:
    """A fresh folder in the system temp dir that unprivileged server users can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


# ---------------------------------------------------------------------------------------------- nginx


NGINX = find_binary("nginx", "/usr/sbin/nginx")


@dataclass
class Nginx:
    """A running nginx serving ``root`` at ``base``."""

    root: Path
    port: int
    workdir: Path
    proc: subprocess.Popen

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.workdir / "access.log"

    def log_rows(self) -> list[tuple[str, str, int, int, str]]:
        """(method, uri, status, bytes sent incl. headers, Range header or "") per request so far."""
        rows = []
        if self.access_log.exists():
            for line in self.access_log.read_text().splitlines():
                m = re.match(r'(\S+) (\S+) (\d+) (\d+) "([^"]*)"', line)
                if m:
                    rng = "" if m.group(5) == "-" else m.group(5)
                    rows.append((m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), rng))
        return rows

    def bytes_sent(self) -> int:
        return sum(r[3] for r in self.log_rows())

    def requests(self) -> int:
        return len(self.log_rows())

    def clear_log(self) -> None:
        """Empty the access log (nginx keeps appending to the same open file)."""
        with open(self.access_log, "r+") as f:
            f.truncate(0)


NGINX_CONF = """\
{user}worker_processes 2;
daemon off;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format seco '$request_method $uri $status $bytes_sent "$http_range"';
    access_log {w}/access.log seco;
    types {{ image/tiff tif tiff; application/json json; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 60;
    keepalive_requests 100000;
    client_body_temp_path {w}/body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {root}; }}
    }}
}}
"""


@contextlib.contextmanager
def run_nginx(root: Path) -> Iterator[Nginx]:
    """nginx serving ``root`` on a free 127.0.0.1 port, stopped on exit."""
    if not NGINX:
        raise FileNotFoundError("nginx is not installed (apt-get install -y nginx)")
    workdir = readable_tmpdir("seco-nginx-")
    port = free_port()
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers must read the test's 0700 tmp folders
    (workdir / "nginx.conf").write_text(NGINX_CONF.format(user=user, w=workdir, port=port, root=Path(root).resolve()))
    log = workdir / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e",
                                 str(workdir / "error.log")], stdout=err, stderr=err, preexec_fn=_die_with_parent)
    try:
        wait_port(port, proc, "nginx", log)
        yield Nginx(root=Path(root), port=port, workdir=workdir, proc=proc)
    finally:
        stop(proc, signal.SIGQUIT)
        shutil.rmtree(workdir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- postgres


PG_BIN = os.path.dirname(find_binary("initdb", "/usr/lib/postgresql/15/bin/initdb",
                                     "/usr/lib/postgresql/*/bin/initdb") or "") or None
POSTGIS = sorted(glob.glob("/usr/share/postgresql/*/extension/postgis.control"))


@dataclass
class Postgres:
    """A running PostgreSQL cluster (trust authentication, loopback only)."""

    port: int
    datadir: Path
    proc: subprocess.Popen
    user: str = "postgres"

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"


def _as_user() -> dict:
    """subprocess arguments that drop root to the ``postgres`` user (nothing when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run the server as "
                    "(apt-get install postgresql-15 creates it)")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [], "env": {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}}


@contextlib.contextmanager
def run_postgres() -> Iterator[Postgres]:
    """``initdb`` into a fresh folder and start ``postgres`` on a free 127.0.0.1 port; removed on exit."""
    if not PG_BIN:
        raise FileNotFoundError("PostgreSQL is not installed (apt-get install -y postgresql-15)")
    base = readable_tmpdir("seco-pg-")
    datadir = base / "data"
    kw = _as_user()
    if "user" in kw:
        os.chown(base, kw["user"], kw["group"])
    log = base / "server.log"
    try:
        subprocess.run([f"{PG_BIN}/initdb", "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--no-instructions"], check=True, capture_output=True, timeout=120, **kw)
        port = free_port()
        with open(log, "wb") as out:
            if "user" in kw:
                os.chown(log, kw["user"], kw["group"])
            proc = subprocess.Popen(
                [f"{PG_BIN}/postgres", "-D", str(datadir), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
                 "-c", f"unix_socket_directories={base}", "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=60", "-c", "shared_buffers=64MB"],
                stdout=out, stderr=out, preexec_fn=_die_with_parent, **kw)
        try:
            wait_port(port, proc, "postgres", log)
            _wait_sql(f"postgresql://postgres@127.0.0.1:{port}/postgres", proc, log)
            yield Postgres(port=port, datadir=datadir, proc=proc)
        finally:
            stop(proc, signal.SIGINT)  # fast shutdown
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _wait_sql(dsn: str, proc: subprocess.Popen, log: Path) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2) as conn:
                conn.execute("select 1")
                return
        except psycopg.OperationalError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"postgres is not answering at {dsn}:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.2)


def install_pgstac(pg: Postgres, db: str = "stac") -> str:
    """Create database ``db`` with PostGIS and the pgstac schema (``pypgstac migrate``); its DSN."""
    import psycopg

    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")
    dsn = pg.dsn(db)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    out = subprocess.run([sys.executable, "-m", "pypgstac.pypgstac", "migrate", "--dsn", dsn],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"pypgstac migrate failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return dsn


def load_archive(dsn: str, archive: Path, href_base: str, workdir: Path) -> int:
    """Load the collection and items of a synth archive (hrefs under ``href_base``) with ``pypgstac load``."""
    import json

    from seco.synth.archive import archive_items

    coll = json.loads((archive / "collection.json").read_text())
    coll["links"] = []
    items = archive_items(archive, href_base)
    (workdir / "collection.json").write_text(json.dumps(coll))
    (workdir / "items.ndjson").write_text("".join(json.dumps(it) + "\n" for it in items))
    for what, path in (("collections", workdir / "collection.json"), ("items", workdir / "items.ndjson")):
        out = subprocess.run([sys.executable, "-m", "pypgstac.pypgstac", "load", what, str(path), "--dsn", dsn,
                              "--method", "insert"], capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"pypgstac load {what} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return len(items)


@contextlib.contextmanager
def run_stac_fastapi(pg: Postgres, db: str = "stac") -> Iterator[str]:
    """stac-fastapi-pgstac (uvicorn) on a free 127.0.0.1 port over database ``db``; yields its base URL."""
    port = free_port()
    env = {**os.environ, "PGUSER": pg.user, "PGPASSWORD": "unused", "PGHOST": "127.0.0.1", "PGPORT": str(pg.port),
           "PGDATABASE": db, "DB_MIN_CONN_SIZE": "1", "DB_MAX_CONN_SIZE": "8", "WEB_CONCURRENCY": "1",
           "STAC_FASTAPI_TITLE": "seco test pgstac", "STAC_FASTAPI_DESCRIPTION": "loopback test server",
           "STAC_FASTAPI_LANDING_ID": "seco-test", "STAC_FASTAPI_VERSION": "1.0.0"}
    workdir = readable_tmpdir("seco-stac-")
    log = workdir / "uvicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory", "--host", "127.0.0.1",
                                 "--port", str(port), "--log-level", "warning"], stdout=out, stderr=out, env=env,
                                preexec_fn=_die_with_parent)
    try:
        wait_port(port, proc, "stac-fastapi-pgstac", log)
        base = f"http://127.0.0.1:{port}"
        _wait_http(base + "/", proc, log)
        yield base
    finally:
        stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_http(url: str, proc: subprocess.Popen, log: Path) -> None:
    import requests

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


# ---------------------------------------------------------------------------------------------- data


def make_test_archive(root: Path, seed: int = 3, scene_px: int = 360, revisits: bool = True, **kw) -> Path:
    """A small synth archive: 3 UTM zones x 5 dates (x 2 with revisits 5 days later), with faults."""
    from seco.synth.archive import make_archive

    n = 3 * 5 * (2 if revisits else 1)
    return make_archive(root, seed=seed, num_scenes=n, scene_px=scene_px, progress=False, **kw)


def archive_locations(archive: Path, out: Path, *, per_side: int = 3, patch_px: int = 64,
                      before_days: float = 1.0, after_days: float = 6.0) -> Path:
    """Locations on a synth archive: a ``per_side`` x ``per_side`` grid of non-overlapping patches inside each
    site's tile, each with one window ``[date - before_days, date + after_days]`` per archive date.

    The file has no sampling config (the points are not from the sampler), so collect draws no spares.
    """
    from rasterio.warp import transform

    from seco.collect.dates import DateWindows
    from seco.collect.sampling import Locations, write_locations
    from seco.synth.archive import read_manifest

    man = read_manifest(archive)
    size_m = man["config"]["scene_px"] * 10.0
    step = size_m / per_side
    if step < patch_px * 10.0 + 20:
        raise ValueError(f"{per_side}x{per_side} patches of {patch_px} px do not fit in a {size_m:.0f} m tile")
    lons, lats = [], []
    for site in man["sites"]:
        xs = [site["x0"] + step * (i + 0.5) for i in range(per_side)]
        ys = [site["y0"] - step * (j + 0.5) for j in range(per_side)]
        px = [x for _ in ys for x in xs]
        py = [y for y in ys for _ in xs]
        lo, la = transform(f"EPSG:{site['epsg']}", "EPSG:4326", px, py)
        lons += lo
        lats += la
    dates = [dt.datetime.fromisoformat(d).replace(tzinfo=None) for d in man["config"]["dates"]]
    n = len(lons)
    centre = np.array([[np.datetime64(d, "ms") for d in dates]] * n)
    day = np.timedelta64(86_400_000, "ms")
    win = DateWindows(centre=centre, start=centre - (before_days * day).astype("timedelta64[ms]"),
                      end=centre + (after_days * day).astype("timedelta64[ms]"))
    none = np.full(n, None, dtype=object)
    loc = Locations(id=np.arange(n, dtype=np.int64), lon=np.array(lons), lat=np.array(lats), city=none,
                    country=none.copy(), windows=win)
    return write_locations(loc, out)


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def served_archive() -> Iterator[tuple[Path, Nginx]]:
    """A synth archive in a readable temp folder, served by nginx; its indexes point at the HTTP URLs."""
    require(binaries={"nginx": NGINX})
    from seco.synth.archive import write_index

    base = readable_tmpdir("seco-archive-")
    try:
        archive = make_test_archive(base / "archive")
        with run_nginx(base) as web:
            write_index(archive, f"{web.base}/archive")
            yield archive, web
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def stac_server(served_archive) -> Iterator[str]:
    """stac-fastapi-pgstac on PostgreSQL 15 + PostGIS + pgstac, holding the served archive's items."""
    require(binaries={"initdb/postgres": PG_BIN, "postgis": POSTGIS[0] if POSTGIS else None},
            modules=("psycopg", "pypgstac", "stac_fastapi.pgstac", "uvicorn"))
    archive, web = served_archive
    with run_postgres() as pg:
        dsn = install_pgstac(pg)
        work = readable_tmpdir("seco-load-")
        try:
            load_archive(dsn, archive, f"{web.base}/archive", work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with run_stac_fastapi(pg) as base:
            yield base
