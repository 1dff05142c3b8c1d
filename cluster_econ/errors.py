"""Errors users see. Each names the file, table, column, rule and rows it is about."""

from __future__ import annotations


class ClusterEconError(Exception):
    """Base class of the package's own errors (the CLI prints these without a traceback)."""


class InputError(ClusterEconError):
    """A source file cannot be read: missing, corrupt, empty, unknown format."""


class MappingError(ClusterEconError):
    """A mapping specification is invalid or does not fit its source file."""


class SchemaError(ClusterEconError):
    """Canonical tables violate the schema. ``violations`` lists every problem found."""

    def __init__(self, message: str, violations: object | None = None) -> None:
        super().__init__(message)
        self.violations = violations


class EstimationError(ClusterEconError):
    """A model cannot be estimated as specified (for example, clustering on one group)."""


class FormulaError(ClusterEconError):
    """A formula uses syntax or transforms outside the accepted grammar."""


class ConfigError(ClusterEconError):
    """A configuration file is invalid; the message names the key and its line."""


class MissingDependencyError(ClusterEconError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra to install."""


class OutputBusyError(ClusterEconError):
    """Another process is writing the same output folder (its writer lock is held)."""
