"""Atomic file writes, shared by every writer in the package (Parquet panels, tables, figures,
reports).

``atomic_write`` writes to a temporary file in the destination folder and renames it over the
target with :func:`os.replace`, so a reader never sees a half-written file and an interrupted
run leaves the previous file intact. The temporary name is built from the process id and a
counter (no randomness), and the file is created with mode ``0o666`` filtered by the umask, like
an ordinary ``open(path, "w")``.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

_COUNTER = itertools.count()


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically; ``str`` is encoded as UTF-8.

    Parent folders are created when missing. Returns the path written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
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
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
