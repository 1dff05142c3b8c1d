"""Byte-stable Office zip containers, and the package's atomic write (from :mod:`cluster_econ.io.atomic`).

``stable_zip`` rewrites an Office Open XML container (docx, xlsx) so that the same content gives
the same bytes: every entry gets a fixed date, fixed permissions and the same compression, and
the timestamps that python-docx and openpyxl embed in ``docProps/core.xml`` are replaced by a
fixed date. The libraries themselves stamp the current time into both places, which is why this
is written here rather than taken from them.
"""

from __future__ import annotations

import io
import re
import zipfile

from cluster_econ.io.atomic import atomic_write

__all__ = ["atomic_write", "stable_zip"]

#: Date written into zip entries and document properties (the earliest date zip can store).
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_W3CDTF = "1980-01-01T00:00:00Z"


_CORE_DATES = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")
_LAST_PRINTED = re.compile(rb"(<cp:lastPrinted>)[^<]*(</cp:lastPrinted>)")


def stable_zip(data: bytes) -> bytes:
    """Rewrite an OOXML zip with fixed entry dates and fixed core-property timestamps.

    The order of the entries is kept (it is already deterministic and ``[Content_Types].xml``
    stays first, which some readers expect).
    """
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
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
