"""Atomic writes of files and of whole folders, shared by every writer in the package (Parquet
panels, tables, figures, reports).

Files: ``atomic_write`` writes to a temporary file in the destination folder and renames it over
the target with :func:`os.replace`, so a reader never sees a half-written file and an interrupted
run leaves the previous file intact. The temporary name is built from the process id and a
counter (no randomness), and the file is created with mode ``0o666`` filtered by the umask, like
an ordinary ``open(path, "w")``.

Folders (a Panel is a folder of files that must change together): :func:`atomic_directory`
builds the new folder beside the old one (``.NAME.staging-PID-N``) and switches them in one step:
on Linux by exchanging the two names (``renameat2`` with ``RENAME_EXCHANGE``), on macOS by
``renamex_np`` with ``RENAME_SWAP``, so that at every instant ``NAME`` is either the complete old
folder or the complete new one; the old one is then deleted. Where the system has no exchange,
the old folder is first renamed aside (``.NAME.old-PID-N``) and the new one put in its place; a run
killed between the two renames leaves ``NAME`` missing and the old folder aside, which the next
writer puts back. A writer holds an exclusive lock on ``.NAME.lock`` beside the folder
(:func:`writer_lock`, ``flock``; released by the system when the process dies, even by
``kill -9``), so a second writer of the same folder fails at once with
:class:`~cluster_econ.errors.OutputBusyError`; under the lock it first removes what an interrupted
writer left (its staging and old folders). The lock file itself stays (removing it would let two
writers lock two different files).

Nothing here depends on Python's own locking or randomness; it is written here because no
maintained library does the folder exchange and the clean-up of interrupted runs together.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import hashlib
import io
import itertools
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from cluster_econ.errors import InputError, OutputBusyError

_COUNTER = itertools.count()
_HELD: dict[str, tuple[int, int]] = {}  # lock path -> (file descriptor, depth) of locks this process holds


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary file beside it that is flushed,
    synced and renamed over ``path`` when the block ends, and removed if the block raises.

    For writers that stream (pyarrow writes Parquet itself); parent folders are created.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{next(_COUNTER)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically; ``str`` is encoded as UTF-8.

    Parent folders are created when missing. Returns the path written.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_file(path) as fh:
        fh.write(payload)
    return Path(path)


def atomic_write_csv(frame: Any, path: str | os.PathLike[str], **to_csv: Any) -> Path:
    """Write a DataFrame as UTF-8 CSV, atomically, with spreadsheet formulas neutralised.

    Text cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a line break, and not a plain number) get a leading ``'``; numbers stay
    numbers. Every CSV the package writes goes through here.
    """
    import pandas as pd

    from cluster_econ.tables._escape import neutralise_cell

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(
                lambda v: v if v is None or (isinstance(v, float) and v != v) else neutralise_cell(v)
            )
    if isinstance(out.columns, pd.Index) and out.columns.dtype == object:
        out.columns = [neutralise_cell(c) for c in out.columns]
    to_csv.setdefault("index", False)
    return atomic_write(path, out.to_csv(**to_csv))


# -- files written once, inside a private folder ----------------------------------------------------
class HashingFile(io.RawIOBase):
    """A write-only file that passes every byte to ``fh`` and to a SHA-256 as it goes, so that a
    file's hash is known without reading it back."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh, self._sha, self._size = fh, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._sha.update(view)
        self._fh.write(view)
        self._size += len(view)
        return len(view)

    def tell(self) -> int:
        return self._size

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


@contextlib.contextmanager
def new_file(path: str | os.PathLike[str]) -> Iterator[HashingFile]:
    """A new file (it must not exist) written, flushed and synced to disk when the block ends; the
    writer's ``hexdigest()`` is its SHA-256. For files inside a folder nobody else sees yet (the
    staging folder of :func:`atomic_directory`), where a temporary name per file is not needed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as fh:
        writer = HashingFile(fh)
        yield writer
        fh.flush()
        os.fsync(fh.fileno())


# -- folders -----------------------------------------------------------------------------------------
def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # folders cannot be opened for syncing on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _holder(lock_file: Path) -> str:
    try:
        pid = lock_file.read_text(encoding="utf-8").strip()
    except OSError:
        pid = ""
    return f"process {pid}" if pid.isdigit() else "another process"


def _try_lock(fd: int) -> bool:
    if os.name == "nt":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


@contextlib.contextmanager
def writer_lock(target: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the exclusive writer lock of folder ``target`` (``.NAME.lock`` beside it).

    Fails at once with :class:`OutputBusyError` when another process holds it. Re-entrant within a
    process (a command may take the lock before a long computation, and the writer takes it again).
    """
    target = Path(os.path.abspath(target))
    lock_file = _lock_path(target)
    key = str(lock_file)
    if key in _HELD:
        fd, depth = _HELD[key]
        _HELD[key] = (fd, depth + 1)
        try:
            yield
        finally:
            fd, depth = _HELD[key]
            _HELD[key] = (fd, depth - 1)
        return
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    if not _try_lock(fd):
        os.close(fd)
        raise OutputBusyError(
            f"{target}: {_holder(lock_file)} is writing this folder right now; wait for it to finish, "
            f"or write somewhere else (lock: {lock_file})"
        )
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        _HELD[key] = (fd, 1)
        yield
    finally:
        del _HELD[key]
        os.close(fd)  # releases the lock


def _leftovers(target: Path, kind: str) -> list[Path]:
    prefix = f".{target.name}.{kind}-"
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefix))


def clean_interrupted(target: str | os.PathLike[str]) -> list[Path]:
    """Remove what interrupted writers of ``target`` left beside it; call with the writer lock held.

    If ``target`` is missing and a previous folder was set aside (a run killed between the two
    renames of the fallback switch), it is put back first. Returns the paths removed.
    """
    target = Path(os.path.abspath(target))
    if not target.parent.is_dir():
        return []
    aside = _leftovers(target, "old")
    if aside and not os.path.lexists(target):
        newest = max(aside, key=lambda p: p.stat().st_mtime_ns)
        os.rename(newest, target)
        aside.remove(newest)
    removed = []
    for p in [*_leftovers(target, "staging"), *aside]:
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step; False when the system or file system cannot."""
    try:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            func = libc.renameat2  # glibc 2.28 or later
            func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            at_fdcwd, rename_exchange = -100, 2
            result = func(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
        elif sys.platform == "darwin":
            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            func = libc.renamex_np
            func.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint]
            result = func(os.fsencode(a), os.fsencode(b), 2)  # RENAME_SWAP
        else:
            return False
    except (AttributeError, OSError):
        return False
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _switch(staging: Path, target: Path) -> None:
    """Put the complete folder ``staging`` in place of ``target`` (see the module docstring)."""
    if not os.path.lexists(target):
        os.rename(staging, target)
    elif _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now the old folder
    else:
        aside = target.parent / f".{target.name}.old-{os.getpid()}-{next(_COUNTER)}"
        os.rename(target, aside)
        os.rename(staging, target)
        shutil.rmtree(aside, ignore_errors=True)
    _fsync_dir(target.parent)


@contextlib.contextmanager
def atomic_directory(
    target: str | os.PathLike[str], replaceable: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Build a folder in a private staging folder and put it in place of ``target`` in one step.

    Yields the staging folder (empty). When the block ends, every folder in it is synced and the
    staging folder replaces ``target``; if the block raises (Ctrl-C included), the staging folder
    is removed and ``target`` is untouched. The writer lock is held throughout, and leftovers of
    interrupted writers are removed first.

    ``replaceable`` says whether an existing ``target`` may be replaced (for example: it is a panel
    folder); an existing file, or a folder it refuses, is an :class:`InputError`.
    """
    target = Path(os.path.abspath(target))
    if target.is_symlink():
        target = target.resolve()
    with writer_lock(target):
        clean_interrupted(target)
        if target.exists() and not target.is_dir():
            raise InputError(f"{target}: exists and is a file, not a folder; give a folder to write to")
        if target.is_dir() and replaceable is not None and any(target.iterdir()) and not replaceable(target):
            raise InputError(
                f"{target}: exists, is not empty and is not a folder this command wrote; refusing to replace "
                "it. Give a new or empty folder, or remove this one"
            )
        staging = target.parent / f".{target.name}.staging-{os.getpid()}-{next(_COUNTER)}"
        staging.mkdir()
        try:
            yield staging
            for folder, _, _ in os.walk(staging, topdown=False):
                _fsync_dir(Path(folder))
            _switch(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
