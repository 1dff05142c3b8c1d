"""Mapping specifications: how one source file (one survey round) becomes canonical columns.

A specification is a YAML file checked against ``data_schemas/mapping.schema.json``::

    spec_version: 1
    name: my-survey-2008
    unit: enterprise_year          # one source row = one enterprise-year (also fills enterprise, manager)
    missing_codes: [-9, -8, -7, -6]  # the default; these become missing, never 0
    recodes:
      yes_no_12: {1: true, 2: false}
    columns:
      enterprise_id: {template: "KE-{firm_no}"}
      cluster_id:    {const: nairobi-garments}
      year:          {const: 2008}
      sales:         {from: q12_sales, scale: 1000}      # reported in thousands
      new_product:   {from: q30, recode: yes_no_12}
      value_added:   {derive: "sales - material_cost"}
      firm_age:      {derive: "year - year_established", extra: true}
    deflate: {columns: [sales, material_cost], deflator: cpi.csv, base_year: 2010}

Each column takes exactly one of ``from`` (a source column), ``const``, ``template`` (text from
source columns, for IDs) or ``derive`` (arithmetic over canonical columns). ``recode`` maps values
(values it does not list are an error unless ``unmatched: missing`` or ``keep``); ``missing`` adds
missing codes for one column; ``scale`` multiplies. Keys must be canonical column names (see
``cluster-econ schema``) unless marked ``extra: true``. Unmapped source columns are kept as
``src_<name>`` unless ``keep_unmapped: false``.
"""

from __future__ import annotations

import difflib
import hashlib
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster_econ import schema
from cluster_econ.errors import MappingError
from cluster_econ.harmonize.expressions import names_in
from cluster_econ.schema.yamlconf import YamlDocument, load_json_schema

DEFAULT_MISSING_CODES = (-9, -8, -7, -6)


def mapping_json_schema() -> dict[str, Any]:
    return load_json_schema(schema.schema_dir() / "mapping.schema.json")


@dataclass
class MappingSpec:
    """A checked mapping specification."""

    data: dict[str, Any]
    path: str
    sha256: str
    doc: YamlDocument | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return str(self.data.get("name") or Path(self.path).stem)

    @property
    def unit(self) -> str:
        return str(self.data.get("unit", "enterprise_year"))

    @property
    def columns(self) -> dict[str, dict[str, Any]]:
        return self.data["columns"]

    @property
    def missing_codes(self) -> tuple[Any, ...]:
        return tuple(self.data.get("missing_codes", DEFAULT_MISSING_CODES))

    @property
    def keep_unmapped(self) -> bool:
        return bool(self.data.get("keep_unmapped", True))

    @property
    def base_dir(self) -> Path:
        return Path(self.path).parent

    def where(self, *path: str | int) -> str:
        return self.doc.where(path) if self.doc else f"{self.path}, key '{'.'.join(map(str, path))}'"

    @property
    def recall_blocks(self) -> list[dict[str, Any]]:
        return list(self.data.get("recall", []))

    def column_blocks(self) -> list[tuple[tuple[str | int, ...], dict[str, dict[str, Any]]]]:
        """(path in the YAML, columns) for the main columns and each recall block."""
        blocks: list[tuple[tuple[str | int, ...], dict[str, dict[str, Any]]]] = [(("columns",), self.columns)]
        blocks += [(("recall", i, "columns"), b["columns"]) for i, b in enumerate(self.recall_blocks)]
        return blocks

    def recode_map(
        self, column: str, col: dict[str, Any] | None = None, path: tuple[str | int, ...] = ("columns",)
    ) -> dict[Any, Any] | None:
        col = self.columns[column] if col is None else col
        rec = col.get("recode")
        if rec is None:
            return None
        if isinstance(rec, str):
            named = self.data.get("recodes", {})
            if rec not in named:
                raise MappingError(
                    f"{self.where(*path, column, 'recode')}: no recode named {rec!r} under "
                    f"'recodes' (defined: {', '.join(named) or 'none'})"
                )
            rec = named[rec]
        return rec

    def source_columns_used(self) -> dict[tuple[str | int, ...], list[str]]:
        """YAML path of each mapped column -> source columns it reads."""
        used: dict[tuple[str | int, ...], list[str]] = {}
        for path, cols in self.column_blocks():
            for name, col in cols.items():
                if "from" in col:
                    used[(*path, name, "from")] = [str(col["from"])]
                elif "template" in col:
                    where = self.where(*path, name, "template")
                    used[(*path, name, "template")] = template_fields(col["template"], where)
        return used

    def check_against(self, source_columns: list[str], source_name: str) -> None:
        """Every source column the spec names must exist; suggest the closest names when not."""
        problems = []
        available = [str(c) for c in source_columns]
        for path, needed in self.source_columns_used().items():
            for col in needed:
                if col not in available:
                    close = difflib.get_close_matches(col, available, n=3, cutoff=0.5)
                    hint = f"; closest: {', '.join(close)}" if close else ""
                    problems.append(f"  - {self.where(*path)}: source column {col!r} is not in {source_name}{hint}")
        if problems:
            raise MappingError(f"mapping {self.path} does not fit {source_name}:\n" + "\n".join(problems))


def template_fields(template: str, where: str) -> list[str]:
    fields = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise MappingError(f"{where}: invalid template {template!r}: {exc}") from exc
    for _, fname, fspec, conv in parsed:
        if fname is None:
            continue
        if not fname or any(ch in fname for ch in ".[]") or fspec or conv:
            raise MappingError(f"{where}: template field {{{fname}}} must be a plain column name")
        fields.append(fname)
    return fields


def _check_column(
    spec: MappingSpec, path: tuple[str | int, ...], name: str, col: dict[str, Any], canonical: set[str]
) -> list[str]:
    problems = []
    if name not in canonical and not col.get("extra"):
        close = difflib.get_close_matches(name, sorted(canonical), n=3, cutoff=0.6)
        hint = (
            f"; did you mean {', '.join(close)}?" if close else "; mark it 'extra: true' to keep a non-canonical column"
        )
        problems.append(f"  - {spec.where(*path, name)}: {name!r} is not a canonical column{hint}")
    if "derive" in col:
        try:
            for ref in names_in(col["derive"]):
                if ref not in spec.columns and ref not in canonical:
                    problems.append(f"  - {spec.where(*path, name, 'derive')}: {ref!r} is neither mapped nor canonical")
        except Exception as exc:  # FormulaError
            problems.append(f"  - {spec.where(*path, name, 'derive')}: {exc}")
    if "template" in col:
        try:
            template_fields(col["template"], spec.where(*path, name, "template"))
        except MappingError as exc:
            problems.append(f"  - {exc}")
    if "recode" in col:
        try:
            spec.recode_map(name, col, path)
        except MappingError as exc:
            problems.append(f"  - {exc}")
    return problems


def _check_semantics(spec: MappingSpec) -> None:
    unit_table = spec.unit
    problems = []
    canonical = {f for t in schema.TABLES for f in schema.load(t).field_names}
    for path, cols in spec.column_blocks():
        for name, col in cols.items():
            problems.extend(_check_column(spec, path, name, col, canonical))
    keys = schema.load(unit_table).primary_key
    missing_keys = [k for k in keys if k not in spec.columns]
    if missing_keys:
        problems.append(
            f"  - {spec.where('columns')}: unit {unit_table!r} needs the key column(s) {', '.join(missing_keys)}"
        )
    if spec.recall_blocks and unit_table != "enterprise_year":
        problems.append(f"  - {spec.where('recall')}: recall rows need unit enterprise_year")
    if unit_table == "enterprise_year" and "cluster_id" not in spec.columns:
        problems.append(f"  - {spec.where('columns')}: enterprise_year sources must map cluster_id (const or from)")
    if problems:
        raise MappingError(f"{spec.path}: {len(problems)} problem(s) in the mapping:\n" + "\n".join(problems))


def load_mapping(path: str | Path) -> MappingSpec:
    """Read and check a mapping specification (YAML, safe loader, JSON Schema, then semantics)."""
    p = Path(path)
    if not p.exists():
        raise MappingError(f"{p}: mapping file not found")
    raw = p.read_bytes()
    doc = YamlDocument(p, raw.decode("utf-8", errors="replace"), MappingError)
    if not isinstance(doc.data, dict):
        raise MappingError(f"{p}: a mapping must be a YAML mapping (key: value), not {type(doc.data).__name__}")
    doc.check(mapping_json_schema())
    spec = MappingSpec(doc.data, str(p), hashlib.sha256(raw).hexdigest(), doc)
    _check_semantics(spec)
    return spec


def mapping_from_dict(data: dict[str, Any], name: str = "<dict>") -> MappingSpec:
    """A spec from a Python dict (same checks as a file)."""
    import yaml

    text = yaml.safe_dump(data, sort_keys=False)
    doc = YamlDocument(name, text, MappingError)
    doc.check(mapping_json_schema())
    spec = MappingSpec(doc.data, name, hashlib.sha256(text.encode()).hexdigest(), doc)
    _check_semantics(spec)
    return spec
