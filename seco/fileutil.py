"""Small file helpers shared by packages that must not depend on each other (no torch here)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tmp_path(path: str | Path) -> Path:
    """The temporary file of an atomic write of ``path``: ``.<name>.<pid>.tmp`` in the same folder.

    The one naming scheme of every atomic write in seco: hidden, beside the target (so ``os.replace`` is a
    rename within one file system), one per target and process.
    """
    p = Path(path)
    return p.parent / f".{p.name}.{os.getpid()}.tmp"


class AtomicFile:
    """A file written beside its target and moved over it only once complete.

    The protocol: the content goes to :func:`tmp_path` (created here, with the mode a plain
    ``open(path, "w")`` gives a new file: ``0o666 & ~umask``); :meth:`commit` fsyncs it, restores that mode
    (``tempfile.mkstemp`` and some writers, e.g. safetensors, create 0600), ``os.replace``-s it over the target
    and fsyncs the folder. A kill at any point leaves the previous file (or none) under the target's name,
    never a torn one; :meth:`discard` (or an exception in a ``with`` block) removes the temporary file.

    Local files only. An object store's PUT is already atomic (the object appears whole or not at all), so a
    writer to an fsspec URL writes the object directly and does not go through this class. One writer per
    target and process (the temporary name holds the pid, not the thread).

    Use it directly when a writer streams over a longer life (``pq.ParquetWriter(af.tmp, ...)`` ...
    ``af.commit()``); :func:`atomic_write` and :func:`atomic_open` cover the one-shot writes.
    """

    def __init__(self, path: str | Path, *, durable: bool = True):
        if "://" in str(path):
            raise ValueError(f"{str(path)!r} is a URL: an object store's put is already atomic; write it directly")
        self.path = Path(path)
        self.durable = durable
        self.tmp = tmp_path(self.path)
        self.mode = _create(self.tmp)

    def open(self, mode: str = "wb", **kw: Any) -> IO[Any]:
        """``open()`` the temporary file (``"w"``/``"wb"``; ``kw`` as :func:`open`, e.g. ``newline=""``)."""
        return open(self.tmp, mode, **kw)

    def commit(self) -> Path:
        """fsync the temporary file, give it its mode, move it over the target, fsync the folder (no fsync when
        not ``durable``: a file that is regenerated anyway, such as a picture of ``seco store view``, stays
        whole-or-absent on a kill, and an OS crash may lose it)."""
        try:
            fd = os.open(self.tmp, os.O_RDONLY)
            try:
                if self.durable:
                    os.fsync(fd)
                if stat.S_IMODE(os.fstat(fd).st_mode) != self.mode:
                    os.fchmod(fd, self.mode)
            finally:
                os.close(fd)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        if self.durable:
            _fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file (the target is left as it was)."""
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], object], *,
                 encoding: str = "utf-8", durable: bool = True) -> Path:
    """Replace ``path`` by ``content`` atomically (see :class:`AtomicFile` for the protocol).

    Args:
        path: the target (a local file; its folder must exist).
        content: text (written with ``encoding``), bytes, or a writer called with the temporary path, for
            libraries that want a file name (``lambda p: save_file(tensors, str(p))``,
            ``lambda p: pq.write_table(table, p)``).
        durable: fsync (the default); ``False`` for outputs that are rebuilt anyway (still atomic).

    Returns:
        ``path``.
    """
    with AtomicFile(path, durable=durable) as af:
        if isinstance(content, str | bytes):
            with af.open("wb") as f:
                f.write(content.encode(encoding) if isinstance(content, str) else content)
        else:
            content(af.tmp)
    return af.path


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kw: Any) -> Iterator[IO[Any]]:
    """``open()`` for writing, where the file replaces ``path`` only when the block completes.

    For writers that stream to a file object (``torch.save(obj, f)``, ``csv.writer(f)``, ``np.savez(f, ...)``,
    ``fig.savefig(f, format="png")``). An exception in the block leaves ``path`` as it was.

    Args:
        path: the target (a local file; its folder must exist).
        mode: ``"w"`` (text) or ``"wb"``.
        kw: passed on to :func:`open` (``encoding``, ``newline``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode {mode!r}: use 'w' or 'wb'")
    with AtomicFile(path) as af, af.open(mode, **kw) as f:
        yield f


def _create(tmp: Path) -> int:
    """Create ``tmp`` empty as ``open(tmp, "w")`` would (a stale one, of a killed process with this pid, is
    replaced); its permission bits."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(tmp, flags, 0o666)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, flags, 0o666)
    try:
        return stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """fsync a folder, so a rename in it survives a power loss (a no-op where the file system refuses it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: str | Path, busy: Callable[[str], Exception]) -> Iterator[None]:
    """Hold an ``flock`` on ``path`` (created if absent, this process's pid written into it) for the block.

    Args:
        path: the lock file.
        busy: builds the error raised when another process holds the lock, from the pid that process wrote
            (``"?"`` when unknown).
    """
    import fcntl

    with open(path, "a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            raise busy(f.read().strip() or "?") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
