"""A real HTTP file server on 127.0.0.1 that injects faults: 503s, connection resets and stalls.

It serves a folder itself with real HTTP/1.1 range semantics (single ranges -> 206 + ``Content-Range``,
several ranges -> 206 ``multipart/byteranges``, unsatisfiable -> 416, ``HEAD``, keep-alive), which is what
GDAL's ``/vsicurl/`` needs to read COGs. Faults are decided per request from a seed and the request itself
(path, range, how many times that request was seen), so the same requests get the same faults whatever the
order the client's threads send them in, and they are bounded: at most ``per_group`` faults for the files of
one folder (one STAC item) and ``max_faults`` in all. Every fault is logged (:attr:`FaultyServer.faults`).
A first path segment ``~tag`` is ignored, so each run of a test can read the same files under fresh URLs
(GDAL caches what it read per URL for the life of the process).

Kinds:
- ``503``: ``503 Service Unavailable`` with ``Retry-After: 0``;
- ``reset``: the connection is closed with an RST (``SO_LINGER`` 0) before any answer;
- ``stall``: nothing is sent for ``stall_s`` seconds, then the connection is closed (the client's timeout
  must fire first).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

KINDS = ("503", "reset", "stall")


@dataclass(frozen=True)
class FaultPlan:
    """Which requests fail, and how.

    Attributes:
        share: probability that a request is chosen for a fault (0: none).
        seed: seeds the choice.
        kinds: fault kinds to cycle through (chosen by the same hash).
        per_group: most faults for the files of one folder (one item); bounds the retries a read needs.
        max_faults: most faults in all.
        stall_s: how long a stall holds the connection before closing it.
        always: paths (relative to the served root) that fail with a 503 on every request (not counted
            in the bounds): a server that stays broken, for "given up" records.
    """

    share: float = 0.0
    seed: int = 0
    kinds: tuple[str, ...] = KINDS
    per_group: int = 2
    max_faults: int = 40
    stall_s: float = 2.5
    always: frozenset[str] = field(default_factory=frozenset)


class FaultyServer:
    """The running server: ``base`` URL, the current :class:`FaultPlan`, the log of faults and requests."""

    def __init__(self, root: Path, plan: FaultPlan):
        self.root = root.resolve()
        self.plan = plan
        self.faults: list[tuple[str, str]] = []  # (path, kind)
        self.requests = 0
        self._seen: Counter[tuple[str, str]] = Counter()
        self._groups: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def set_plan(self, plan: FaultPlan) -> None:
        """Switch plans and forget the counts and the log."""
        with self._lock:
            self.plan = plan
            self.faults.clear()
            self.requests = 0
            self._seen.clear()
            self._groups.clear()

    def decide(self, path: str, range_header: str) -> str | None:
        """The fault for this request, or None (thread-safe; counts it)."""
        with self._lock:
            self.requests += 1
            plan = self.plan
            if path in plan.always:
                self.faults.append((path, "503"))
                return "503"
            key = (path, range_header)
            self._seen[key] += 1
            if plan.share <= 0 or len(self.faults) >= plan.max_faults:
                return None
            group = path.rsplit("/", 1)[0]
            if self._groups[group] >= plan.per_group:
                return None
            h = hashlib.sha256(f"{plan.seed}|{path}|{range_header}|{self._seen[key]}".encode()).digest()
            if int.from_bytes(h[:8], "little") / 2**64 >= plan.share:
                return None
            kind = plan.kinds[h[8] % len(plan.kinds)]
            self._groups[group] += 1
            self.faults.append((path, kind))
            return kind


def _ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """``bytes=a-b,c-,-n`` -> inclusive (start, end) pairs within ``size``; None when unsatisfiable/invalid."""
    if not header.startswith("bytes="):
        return None
    out = []
    for part in header[len("bytes="):].split(","):
        a, _, b = part.strip().partition("-")
        if a == "":
            if not b:
                return None
            n = int(b)
            start, end = max(0, size - n), size - 1
        else:
            start = int(a)
            end = min(int(b), size - 1) if b else size - 1
        if start > end or start >= size:
            continue
        out.append((start, end))
    return out or None


def _handler(server: FaultyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def finish(self) -> None:  # the socket may already be reset by a fault
            with contextlib.suppress(OSError, ValueError):
                super().finish()

        def _fault(self, kind: str) -> None:
            if kind == "503":
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if kind == "stall":
                time.sleep(server.plan.stall_s)
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            self.close_connection = True

        def _serve(self, body: bool) -> None:
            rel = unquote(urlparse(self.path).path).lstrip("/")
            if rel.startswith("~"):  # a run tag (/~run1/...): same files under fresh URLs, beyond GDAL's caches
                rel = rel.partition("/")[2]
            path = (server.root / rel).resolve()
            rng = self.headers.get("Range", "")
            kind = server.decide(rel, rng)
            if kind is not None:
                self._fault(kind)
                return
            if server.root not in path.parents or not path.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            size = path.stat().st_size
            if not rng:
                self.send_response(200)
                self.send_header("Content-Length", str(size))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if body:
                    self.wfile.write(path.read_bytes())
                return
            spans = _ranges(rng, size)
            if spans is None:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with open(path, "rb") as f:
                chunks = [os.pread(f.fileno(), e - s + 1, s) for s, e in spans]
            if len(spans) == 1:
                (s, e), data = spans[0], chunks[0]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {s}-{e}/{size}")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if body:
                    self.wfile.write(data)
                return
            boundary = "seco-faulty-" + hashlib.sha1(rng.encode()).hexdigest()[:16]
            parts = b"".join(
                f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {s}-{e}/{size}"
                f"\r\n\r\n".encode() + data + b"\r\n" for (s, e), data in zip(spans, chunks, strict=True))
            payload = parts + f"--{boundary}--\r\n".encode()
            self.send_response(206)
            self.send_header("Content-Type", f"multipart/byteranges; boundary={boundary}")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            self._serve(body=True)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(body=False)

    return Handler


@contextlib.contextmanager
def run_faulty_server(root: Path, plan: FaultPlan | None = None) -> Iterator[FaultyServer]:
    """Serve ``root`` on 127.0.0.1 (a free port) until the block ends; stops within ~1 s plus any stall."""
    srv = FaultyServer(root, plan or FaultPlan())
    srv._thread.start()
    try:
        yield srv
    finally:
        srv._httpd.shutdown()
        srv._httpd.server_close()
        srv._thread.join(timeout=10)
