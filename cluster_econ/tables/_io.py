"""Atomic file writes and byte-stable Office zip containers.

``atomic_write`` writes to a temporary file in the destination folder and renames it over the
target with :func:`os.replace`, so a reader never sees a half-written file and an interrupted
run leaves the previous file intact. The temporary name is built from the process id and a
counter (no randomness), and the file is created with mode ``0o666`` filtered by the umask, like
an ordinary ``open(path, "w")``.

``stable_zip`` rewrites an Office Open XML container (docx, xlsx) so that the same content gives
the same bytes: every entry gets a fixed date, fixed permissions and the same compression, and
the timestamps that python-docx and openpyxl embed in ``docProps/core.xml`` are replaced by a
fixed date. The libraries themselves stamp the current time into both places, which is why this
is written here rather than taken from them.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import zipfile
from pathlib import Path

_COUNTER = itertools.count()

#: Date written into zip entries and document properties (the earliest date zip can store).
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_W3CDTF = "1980-01-01T00:00:00Z"


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


_CORE_DATES = re.compile(
    rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")
_LAST_PRINTED = re.compile(rb"(<cp:lastPrinted>)[^<]*(</cp:lastPrinted>)")


def stable_zip(data: bytes) -> bytes:
    """Rewrite an OOXML zip with fixed entry dates and fixed core-property timestamps.

    The order of the entries is kept (it is already deterministic and ``[Content_Types].xml``
    stays first, which some readers expect).
    """
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = _CORE_DATES.sub(rb"\g<1>" + FIXED_W3CDTF.encode() + rb"\g<2>", body)
                body = _LAST_PRINTED.sub(rb"\g<1>" + FIXED_W3CDTF.encode() + rb"\g<2>", body)
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_DATE_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0
            entry.create_system = 0
            dst.writestr(entry, body, compresslevel=6)
    return out.getvalue()
