"""Where seco meets the operating system: exclusive claims on outputs, OS errors as one line, interruptions.

- :func:`claim_output` holds an exclusive lock on a command's output for the whole command (a second process
  gets one line naming the holder's command and pid), checks before any work that the output can be written
  there, and removes what the command half-wrote when it fails before producing anything worth keeping.
- :func:`describe_os_error` turns an ``OSError`` (a read-only or full disk, a file where a folder is expected)
  into one line naming the path and the fix; ``seco.cli.main`` uses it for every command.
- :func:`ignore_interrupts` is the initializer of worker processes: Ctrl-C reaches the whole process group,
  and only the main process should answer it (no traceback per worker).

No torch here.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import shutil
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seco.errors import OutputBusyError, OutputError, SecoError

#: How a command's Ctrl-C hint reads, by how the command continues.
RERUN_CONTINUES = "interrupted; rerun the same command to continue where it stopped"
RERUN_STARTS_OVER = "interrupted; nothing was kept, rerun the same command to start again"
INTERRUPTED = "interrupted"


def _is_url(path: str) -> bool:
    return "://" in path


def keep_store(path: Path) -> bool:
    """Whether ``path`` holds a seco store with at least one location (what a resumable rerun continues)."""
    try:
        from seco.store import open_store

        return len(open_store(path, verify=False)) > 0
    except Exception:  # nothing there, or not (yet) a readable store: nothing worth keeping
        return False


def keep_always(path: Path) -> bool:
    """Keep whatever the command wrote (commands that continue their own partial outputs)."""
    return True


@dataclass(frozen=True)
class Output:
    """One output of a command.

    Attributes:
        path: the output as given (a file, a folder, a stem of several files, or an fsspec URL).
        flag: the option that names it, for messages (``--out``, ``DST``).
        kind: ``"dir"`` (a folder, refused when a file is there), ``"file"`` (refused when a folder is there) or
            ``"any"``.
        keep: on failure, whether a new output is kept (``None``: never, it is removed); an output that existed
            before the command is never removed.
        also: sibling files the command writes besides ``path`` (``<stem>.json``...), removed with it.
        lock: the lock file (default ``.<name>.seco-lock`` beside ``path``; required for URLs).
    """

    path: str
    flag: str = "--out"
    kind: str = "any"
    keep: Callable[[Path], bool] | None = None
    also: tuple[str, ...] = ()
    lock: str | None = None

    def local(self) -> Path | None:
        """The local path, ``None`` for a URL."""
        return None if _is_url(self.path) else Path(self.path).expanduser().absolute()

    def lock_file(self) -> Path | None:
        """Where the lock lives (``None``: a URL without a lock folder, which is not locked)."""
        if self.lock is not None:
            return Path(self.lock).expanduser().absolute()
        p = self.local()
        return None if p is None else p.parent / f".{p.name}.seco-lock"


def _lock_holder(lock: Path, wait_s: float = 0.5) -> tuple[str, str]:
    """(command, pid) written in a lock file by its holder; ``("seco", "?")`` when unreadable.

    A holder writes its line right after it takes the lock; a reader that comes in between finds the file empty
    and looks again for up to ``wait_s``.
    """
    import time

    deadline = time.monotonic() + wait_s
    text = ""
    while True:
        try:
            text = lock.read_text().strip()
        except OSError:
            text = ""
        if text or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    pid, _, command = text.partition(" ")
    return (command or "seco"), (pid or "?")


class _Lock:
    """An ``flock`` on a lock file holding ``"<pid> <command>"``; the file is removed on release.

    Removal is safe because a process that acquires the lock checks that the file it locked is still the one
    at the path (otherwise it was removed by the previous holder, and it tries again).
    """

    def __init__(self, path: Path, command: str):
        self.path, self.command = path, command
        self.fd: int | None = None

    def acquire(self, busy: Callable[[str, str], Exception]) -> None:
        import fcntl

        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                command, pid = _lock_holder(self.path)
                if pid == "?" and not self.path.exists():
                    continue  # the holder released (and removed) it while we looked: take it now
                raise busy(command, pid) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {self.command}".encode())
                self.fd = fd
                return
            os.close(fd)  # the previous holder removed the file after we opened it: lock the new one
        raise OutputError(f"cannot lock {self.path}: it keeps being replaced; remove it and retry")

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)  # closing releases the flock
        self.fd = None


def _missing_parents(p: Path) -> list[Path]:
    """The folders above ``p`` that do not exist yet, outermost first."""
    out = []
    q = p.parent
    while not q.exists() and q != q.parent:
        out.append(q)
        q = q.parent
    return out[::-1]


def _check_kind(o: Output, p: Path, command: str) -> None:
    if o.kind == "dir" and p.exists() and not p.is_dir():
        raise OutputError(f"{o.flag} {o.path} is a file, and `{command}` writes a folder there; remove it or "
                          f"choose another {o.flag}")
    if o.kind == "file" and p.is_dir():
        raise OutputError(f"{o.flag} {o.path} is a folder, and `{command}` writes a file there; give a file "
                          f"path, or choose another {o.flag}")


def _probe_writable(folder: Path) -> None:
    """Create and remove a small file in ``folder`` (raises the ``OSError`` of a folder that takes no files)."""
    probe = folder / f".seco-write-test-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(folder)) from None  # the folder is what cannot be written
    os.close(fd)
    os.unlink(probe)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            p.unlink()


@dataclass
class _Claim:
    output: Output
    path: Path | None
    existed: bool
    also_existed: tuple[bool, ...]
    made_parents: list[Path] = field(default_factory=list)
    lock: _Lock | None = None

    def clean_up(self) -> None:
        """After a failure: remove the new output unless ``keep`` says it is worth keeping."""
        p, o = self.path, self.output
        if p is None:
            return
        gone = True  # whether the output is (now) absent: its new sibling files go with it
        if os.path.lexists(p):
            gone = not self.existed and not (o.keep is not None and o.keep(p))
            if gone:
                _remove(p)
        for name, existed in zip(o.also, self.also_existed, strict=True):
            q = Path(name).expanduser().absolute()
            if gone and not existed and os.path.lexists(q):
                _remove(q)

    def remove_made_parents(self) -> None:
        """Remove the folders this claim created, those still empty (after the lock file is gone)."""
        for q in reversed(self.made_parents):
            with contextlib.suppress(OSError):
                q.rmdir()


def _open_claim(o: Output, command: str, error: type[SecoError]) -> _Claim:
    p = o.local()
    claim = _Claim(o, p, True, (True,) * len(o.also), [] if p is None else _missing_parents(p))
    if p is not None:
        _check_kind(o, p, command)
    lock = o.lock_file()
    try:
        for q in claim.made_parents:
            q.mkdir(exist_ok=True)
        if lock is not None:
            lock.parent.mkdir(parents=True, exist_ok=True)
            claim.lock = _Lock(lock, command)
            claim.lock.acquire(lambda holder, pid: error(
                f"another `{holder}` is writing to {o.path} (pid {pid}); wait for it, or choose another {o.flag}"))
    except BaseException as e:  # not ours: touch nothing but the folders this claim made (when still empty)
        claim.remove_made_parents()
        if isinstance(e, OSError):
            raise OutputError(describe_os_error(e, [o])) from None
        raise
    if p is not None:  # what is there now, with the lock held, is what a failure must leave
        claim.existed = os.path.lexists(p)
        claim.also_existed = tuple(os.path.lexists(Path(a).expanduser().absolute()) for a in o.also)
    try:
        if p is not None:
            _check_kind(o, p, command)
            if p.is_dir():
                _probe_writable(p)
    except BaseException as e:
        _close(claim)
        if isinstance(e, OSError):
            raise OutputError(describe_os_error(e, [o])) from None
        raise
    return claim


def _close(claim: _Claim, failed: bool = True) -> None:
    """Release a claim, cleaning up first when the command failed."""
    try:
        if failed:
            claim.clean_up()
    finally:
        if claim.lock is not None:
            claim.lock.release()
    if failed:
        claim.remove_made_parents()


@contextlib.contextmanager
def claim_output(
    path: str | os.PathLike[str] | Output,
    command: str,
    *,
    flag: str = "--out",
    kind: str = "any",
    keep: Callable[[Path], bool] | None = None,
    lock: str | os.PathLike[str] | None = None,
    error: type[SecoError] = OutputBusyError,
) -> Iterator[Path | None]:
    """Hold ``path`` for ``command`` for the block: exclusive, checked before the work, cleaned after a failure.

    Before the block: the folders above ``path`` are created, the lock file (``.<name>.seco-lock`` beside it,
    or ``lock``) is taken, and an existing output folder is checked to take files. During it, a second
    claim from any process is refused with ``error``: "another `seco synth` is writing to out.zarr (pid 123);
    wait for it, or choose another --out". When the block raises (Ctrl-C included), an output that did not
    exist before is removed unless ``keep(path)`` says it holds something worth keeping (a store with
    locations that a rerun continues), and so are the folders the claim created. The lock file is removed on
    release. Under DDP only one process (rank 0) may hold the claim.

    Args:
        path: the output (file, folder, or an :class:`Output` with the settings below); an fsspec URL is
            locked only through ``lock``.
        command: the command, as the user typed it (``"seco synth"``), written into the lock for messages.
        flag: the option naming the output, for messages.
        kind: ``"dir"``, ``"file"`` or ``"any"`` (what may already be at ``path``).
        keep: see :class:`Output`.
        lock: the lock file, when not beside ``path``.
        error: the :class:`~seco.errors.SecoError` class raised when another process holds the output.

    Yields:
        The absolute local path (``None`` for a URL).

    Raises:
        OutputBusyError (or ``error``): another process holds it.
        OutputError: the output cannot be written there (read-only, permissions, a file where a folder is
            expected), naming the path and the fix.
    """
    o = path if isinstance(path, Output) else Output(
        os.fspath(path), flag=flag, kind=kind, keep=keep, lock=None if lock is None else os.fspath(lock))
    with claim_outputs([o], command, error=error) as paths:
        yield paths[0]


@contextlib.contextmanager
def claim_outputs(outputs: Sequence[Output], command: str, *,
                  error: type[SecoError] = OutputBusyError) -> Iterator[list[Path | None]]:
    """:func:`claim_output` for several outputs at once (all or none)."""
    claims: list[_Claim] = []
    try:
        for o in outputs:
            claims.append(_open_claim(o, command, error))
        yield [c.path for c in claims]
    except BaseException:
        for c in reversed(claims):
            _close(c)
        raise
    for c in reversed(claims):
        _close(c, failed=False)


# ---------------------------------------------------------------------------------------------- OS errors

_REASONS = {
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system or limit",
    errno.ENOTDIR: "a part of the path is a file where a folder is expected",
    errno.EEXIST: "a file is already there where a folder is expected",
    errno.EISDIR: "it is a folder where a file is expected",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the name is too long",
}
#: Errors that can only come from writing.
_WRITE_ONLY = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _under(path: Path, output: Path) -> bool:
    try:
        path.relative_to(output)
        return True
    except ValueError:
        return False


def _output_of(path: str | None, outputs: Sequence[Output]) -> Output | None:
    """The output whose path, sibling files, lock or folders above it ``path`` is in; ``None`` when none."""
    if path is None:
        return None
    p = Path(path).expanduser().absolute()
    for o in outputs:
        q = o.local()
        if q is None:
            continue
        near = [q, *(Path(a).expanduser().absolute() for a in o.also)]
        lock = o.lock_file()
        if any(_under(p, x) or _under(x, p) for x in near) or (lock is not None and p in (lock, lock.parent)):
            return o
        if p.parent == q.parent and p.name.startswith(f".{q.name}"):  # a temporary file beside it
            return o
    return None


def describe_os_error(e: OSError, outputs: Sequence[Output] = ()) -> str:
    """One line for an ``OSError``: the path, what is wrong, and the fix.

    An error on (or above) one of ``outputs`` reads "cannot write PATH: REASON; choose a writable --out"; a
    write-only error without a path (a full disk while writing) is blamed on the first output.
    """
    code = e.errno if isinstance(e.errno, int) else None
    reason = _REASONS.get(code) if code is not None else None
    reason = reason or (e.strerror or str(e)).lower()
    name = e.filename if isinstance(e.filename, str | bytes | os.PathLike) else None
    path = os.fsdecode(name) if name is not None else None
    o = _output_of(path, outputs)
    if o is None and path is None and code in _WRITE_ONLY and outputs:
        o = outputs[0]
    if o is not None:
        if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            fix = f"free space there, or choose another {o.flag} on a larger disk"
        elif code in (errno.ENOTDIR, errno.EEXIST):
            fix = f"remove or rename that file, or choose another {o.flag}"
        else:
            fix = f"choose a writable {o.flag}"
        q = o.local()
        if path is None or q is None or _under(Path(path).expanduser().absolute(), q):
            return f"cannot write {path or o.path}: {reason}; {fix}"
        return f"cannot write {o.path}: {reason} ({path}); {fix}"  # a folder above it, or its lock
    if path is None:
        return f"{reason} ({e})"
    if code in _WRITE_ONLY:
        return f"cannot write {path}: {reason}; free space there or choose another path"
    if code == errno.ENOENT:
        return f"cannot open {path}: {reason}; check the path"
    return f"cannot open {path}: {reason}; check the path and its permissions"


# ---------------------------------------------------------------------------------------------- interrupts


def ignore_interrupts() -> None:
    """Initializer of worker processes: leave Ctrl-C (SIGINT, sent to the whole process group) to the main
    process, which stops the workers itself; no ``KeyboardInterrupt`` traceback per worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def keep_nonempty(path: Path) -> bool:
    """Keep a folder that holds anything (commands whose every part is reused by a rerun: demo, experiment)."""
    return path.is_dir() and any(path.iterdir())


def check_outputs(outputs: Sequence[Output], command: str) -> None:
    """The checks :func:`claim_output` makes before any work, without the lock and without creating anything:
    for commands that lock their output later themselves (``seco pretrain`` on rank 0).

    Raises:
        OutputError: a file where a folder is expected (or the reverse), or a place that takes no files.
    """
    for o in outputs:
        p = o.local()
        if p is None:
            continue
        _check_kind(o, p, command)
        folder = p if p.is_dir() else p.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        try:
            if folder.is_dir():
                _probe_writable(folder)
            elif folder.exists():  # a file where a folder of the path should be
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
        except OSError as e:
            raise OutputError(describe_os_error(e, [o])) from None


# ---------------------------------------------------------------------------------------------- the CLI


def declare(
    parser: argparse.ArgumentParser,
    outputs: Callable[[argparse.Namespace], list[Output]] | None = None,
    *,
    lock: bool = True,
    interrupt: str = RERUN_STARTS_OVER,
) -> None:
    """Tell ``seco.cli.main`` what a subcommand writes and how it continues after Ctrl-C.

    Args:
        parser: the subcommand's parser (its ``prog``, e.g. ``seco catalog build``, names it in messages).
        outputs: the command's outputs from its parsed arguments (``[]``: this invocation writes nothing).
        lock: whether ``main`` claims them (:func:`claim_outputs`) around the command; ``False`` for commands
            that claim their outputs themselves (collect, import, pretrain on rank 0): ``main`` then only checks
            them (:func:`check_outputs`) and names them in OS error messages.
        interrupt: the line printed after Ctrl-C (exit status 130): how to continue.
    """
    parser.set_defaults(seco_command=parser.prog, seco_outputs=outputs, seco_lock=lock, seco_interrupt=interrupt)


def keep_run(path: Path) -> bool:
    """Keep a run folder that holds a checkpoint (``seco pretrain --resume`` continues it)."""
    return path.is_dir() and any(path.glob("*.ckpt"))
