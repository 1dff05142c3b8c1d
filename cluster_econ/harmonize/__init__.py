"""Harmonization: mapping specifications that turn survey source files into canonical tables."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "normalize": "cluster_econ.harmonize.pipeline",
    "map_source": "cluster_econ.harmonize.pipeline",
    "MappingSpec": "cluster_econ.harmonize.spec",
    "load_mapping": "cluster_econ.harmonize.spec",
    "mapping_from_dict": "cluster_econ.harmonize.spec",
}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'cluster_econ.harmonize' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
