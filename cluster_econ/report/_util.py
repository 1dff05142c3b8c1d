"""Small helpers shared by the replication runner and the batch report."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """The package's atomic write (temporary file, then rename)."""
    try:
        from cluster_econ.io.atomic import atomic_write as write
    except ImportError:  # older layout: the writer lived beside the table renderers
        from cluster_econ.tables._io import atomic_write as write
    return write(path, data)
