"""Atomic file writes, shared by every writer in the package (Parquet panels, tables, figures,
reports).

``atomic_write`` writes to a temporary file in the destination folder and renames it over the
target with :func:`os.replace`, so a reader never sees a half-written file and an interrupted
run leaves the previous file intact. The temporary name is built from the process id and a
counter (no randomness), and the file is created with mode ``0o666`` filtered by the umask, like
an ordinary ``open(path, "w")``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

_COUNTER = itertools.count()


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
