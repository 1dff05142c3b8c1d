"""Harmonization: mapping specifications that turn survey source files into canonical tables."""

from __future__ import annotations

from cluster_econ._lazy import lazy_attributes

_LAZY = {
    "normalize": "cluster_econ.harmonize.pipeline",
    "map_source": "cluster_econ.harmonize.mapping",
    "MappingSpec": "cluster_econ.harmonize.spec",
    "load_mapping": "cluster_econ.harmonize.spec",
    "mapping_from_dict": "cluster_econ.harmonize.spec",
}
__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
