"""Harmonization: mapping specifications that turn survey source files into canonical tables."""

from cluster_econ.harmonize.normalize import map_source, normalize
from cluster_econ.harmonize.spec import MappingSpec, load_mapping, mapping_from_dict

__all__ = ["MappingSpec", "load_mapping", "map_source", "mapping_from_dict", "normalize"]
