"""The canonical schema, read from the Frictionless Table Schema files in ``data_schemas/``.

The JSON files are the single source of truth: column lists, types, constraints, keys and labels
used anywhere in the package come from here.

``cluster_econ.schema.validate`` is the validation function (the same as ``ce.validate``); its
module is imported by its dotted name, ``from cluster_econ.schema.validate import ...``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from cluster_econ._lazy import pin_functions

SCHEMA_VERSION = "1.0.0"
TABLES = ("enterprise", "manager", "enterprise_year", "cluster_year", "rct_assignment", "deflator")
REQUIRED_TABLES = ("enterprise", "enterprise_year")


def schema_dir() -> Path:
    """Folder holding the table schema JSON files."""
    return Path(str(resources.files("cluster_econ") / "data_schemas"))


@dataclass(frozen=True)
class Field:
    """One column of a canonical table."""

    name: str
    type: str
    title: str
    description: str
    unit: str | None
    constraints: dict[str, Any]

    @property
    def required(self) -> bool:
        return bool(self.constraints.get("required", False))

    @property
    def enum(self) -> list[str] | None:
        return self.constraints.get("enum")


@dataclass(frozen=True)
class TableSchema:
    """A canonical table: its fields, keys and cross-field rules."""

    name: str
    title: str
    description: str
    fields: tuple[Field, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[dict[str, Any], ...]
    cross_field_rules: tuple[dict[str, Any], ...]
    missing_values: tuple[str, ...]
    raw: dict[str, Any]

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"table {self.name!r} has no field {name!r}")

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.fields)

    def names_of_type(self, *types: str) -> list[str]:
        return [f.name for f in self.fields if f.type in types]


@cache
def load(table: str) -> TableSchema:
    """The schema of one canonical table."""
    if table not in TABLES:
        raise KeyError(f"unknown canonical table {table!r}; the tables are {', '.join(TABLES)}")
    raw = json.loads((schema_dir() / f"{table}.json").read_text(encoding="utf-8"))
    fields = tuple(
        Field(
            name=f["name"],
            type=f["type"],
            title=f.get("title", f["name"]),
            description=f.get("description", ""),
            unit=f.get("unit"),
            constraints=dict(f.get("constraints", {})),
        )
        for f in raw["fields"]
    )
    pk = raw.get("primaryKey", [])
    return TableSchema(
        name=raw["name"],
        title=raw.get("title", raw["name"]),
        description=raw.get("description", ""),
        fields=fields,
        primary_key=tuple([pk] if isinstance(pk, str) else pk),
        foreign_keys=tuple(raw.get("foreignKeys", [])),
        cross_field_rules=tuple(raw.get("crossFieldRules", [])),
        missing_values=tuple(raw.get("missingValues", [""])),
        raw=raw,
    )


def all_tables() -> dict[str, TableSchema]:
    return {t: load(t) for t in TABLES}


def labels() -> dict[str, str]:
    """Human labels (``title``) of every canonical column, for tables and figures."""
    out: dict[str, str] = {}
    for t in TABLES:
        for f in load(t).fields:
            out.setdefault(f.name, f.title)
    return out


def table_of(column: str) -> list[str]:
    """Canonical tables that have a column of this name."""
    return [t for t in TABLES if load(t).has(column)]


def describe(table: str | None = None) -> str:
    """Readable text of one table's schema, or a list of tables."""
    if table is None:
        return "\n".join(f"{t:16s} {load(t).description}" for t in TABLES)
    ts = load(table)
    lines = [f"{ts.name}: {ts.description}", f"primary key: {', '.join(ts.primary_key)}"]
    for fk in ts.foreign_keys:
        ref = fk["reference"]
        target = f"{ref['resource'] or ts.name}.{', '.join(ref['fields'])}"
        lines.append(f"foreign key: {', '.join(fk['fields'])} -> {target}")
    lines.append("")
    for f in ts.fields:
        cons = ", ".join(f"{k}={v}" for k, v in f.constraints.items())
        unit = f" [{f.unit}]" if f.unit else ""
        lines.append(f"  {f.name:26s} {f.type:8s}{unit} {f.description} {('(' + cons + ')') if cons else ''}")
    return "\n".join(lines)


pin_functions(__name__, {"validate": ("cluster_econ.schema.validate", "validate")})
