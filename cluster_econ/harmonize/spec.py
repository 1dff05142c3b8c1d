"""Mapping specifications: how one source file (one survey round) becomes canonical columns.

A specification is a YAML file checked against ``data_schemas/mapping.schema.json``::

    spec_version: 1
    name: my-survey-2008
    unit: enterprise_year          # one source row = one enterprise-year (also fills enterprise, manager)
    source: {decimal: ",", header_row: 3, encoding: latin-1}   # how to read the file (see below)
    missing_codes: [-9, -8, -7, -6]  # the default; these become missing, never 0
    recodes:
      yes_no_12: {1: true, 2: false}
    columns:
      enterprise_id: {template: "KE-{firm_no}"}
      cluster_id:    {const: nairobi-garments}
      year:          {const: 2008}
      country:       {from: country, recode: country_iso3, param: country}
      sales:         {from: q12_sales, scale: 1000}      # reported in thousands
      new_product:   {from: q30, recode: yes_no_12, optional: true}
      value_added:   {derive: "sales - material_cost"}
      firm_age:      {derive: "year - year_established", extra: true}
    deflate: {columns: [sales, material_cost], deflator: cpi.csv, base_year: 2010}

Each column takes one of ``from`` (a source column), ``const``, ``template`` (text from source
columns, for IDs), ``derive`` (arithmetic over canonical columns) or ``param`` (a value given at run
time with ``--set NAME=VALUE``, or its ``default``). ``param`` may be combined with ``from``: the
value given at run time wins, else the source column is read (one mapping for single-country files
and for pooled files that carry the country in a column). ``recode`` maps values (values it does not
list are an error unless ``unmatched: missing`` or ``keep``); the built-in recode ``country_iso3``
turns country names and codes into ISO alpha-3. ``missing`` adds missing codes for one column;
``scale`` multiplies. ``optional: true`` says the question may be absent from a round: its column is
then missing, with an audit note, instead of an error. Keys must be canonical column names (see
``cluster-econ schema``) unless marked ``extra: true``. Unmapped source columns are kept as
``src_<name>`` unless ``keep_unmapped: false``.

The ``source`` block says how to read the file (:class:`cluster_econ.io.readers.ReadOptions`):
``format``, ``sheet`` (name, or position from 0), ``encoding`` (UTF-16 included), ``delimiter``,
``decimal`` and ``thousands`` marks, ``header_row`` (1-based) or ``skip_rows`` (rows above the
header), ``na_values`` (cell texts meaning missing; default empty and ``NA``). What is not declared
is detected, and the audit says what was assumed. Columns used as identifiers or template parts are
read as text exactly as written.

Recode keys are read as written: ``{Yes: true, No: false}`` maps the text "Yes", although YAML 1.1
would read the unquoted key Yes as a boolean (only ``true`` and ``false`` are booleans, as in YAML 1.2).

``load_mapping("wbes")`` (and ``-m wbes``) loads a mapping shipped with the package, from
``data_schemas/mappings/``.
"""

from __future__ import annotations

import difflib
import hashlib
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cluster_econ import schema
from cluster_econ.errors import MappingError
from cluster_econ.harmonize.expressions import names_in
from cluster_econ.io.readers import ReadOptions, SourceTable
from cluster_econ.schema.yamlconf import YamlDocument, load_json_schema

DEFAULT_MISSING_CODES = (-9, -8, -7, -6)
BUILTIN_RECODES = ("country_iso3",)
# words YAML 1.1 reads as booleans but YAML 1.2 (and people) read as text
_YAML11_BOOLEAN_WORDS = {"yes", "no", "on", "off", "y", "n"}


def mapping_json_schema() -> dict[str, Any]:
    return load_json_schema(schema.schema_dir() / "mapping.schema.json")


def shipped_mappings() -> list[str]:
    """Names of the mappings shipped with the package (``-m NAME``)."""
    folder = resources.files("cluster_econ") / "data_schemas" / "mappings"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _string_fields() -> set[str]:
    return {f.name for t in schema.TABLES for f in schema.load(t).fields if f.type == "string"}


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

    @property
    def source_conf(self) -> dict[str, Any]:
        return dict(self.data.get("source", {}))

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

    def params_used(self) -> set[str]:
        """Names of the run-time parameters (``--set``) the mapping reads."""
        return {str(c["param"]) for _, cols in self.column_blocks() for c in cols.values() if "param" in c}

    def recode_map(
        self, column: str, col: dict[str, Any] | None = None, path: tuple[str | int, ...] = ("columns",)
    ) -> dict[Any, Any] | None:
        col = self.columns[column] if col is None else col
        rec = col.get("recode")
        if rec is None:
            return None
        if isinstance(rec, str):
            named = self.data.get("recodes", {})
            if rec in named:
                return named[rec]
            if rec in BUILTIN_RECODES:
                from cluster_econ.harmonize.countries import country_key, country_table

                return KeyedRecode(country_table(), country_key, rec)
            raise MappingError(
                f"{self.where(*path, column, 'recode')}: no recode named {rec!r} under "
                f"'recodes' (defined: {', '.join(named) or 'none'}; built in: {', '.join(BUILTIN_RECODES)})"
            )
        return rec

    def reads_from(self, col: dict[str, Any], params: dict[str, Any]) -> bool:
        """Whether a column is read from the source (a ``from`` not overridden by a given parameter)."""
        return "from" in col and not ("param" in col and col["param"] in params)

    def source_columns_used(self, params: dict[str, Any] | None = None) -> dict[tuple[str | int, ...], list[str]]:
        """YAML path of each mapped column -> source columns it reads."""
        params = params or {}
        used: dict[tuple[str | int, ...], list[str]] = {}
        for path, cols in self.column_blocks():
            for name, col in cols.items():
                if self.reads_from(col, params):
                    used[(*path, name, "from")] = [str(col["from"])]
                elif "template" in col:
                    where = self.where(*path, name, "template")
                    used[(*path, name, "template")] = source_fields(col["template"], where)
        return used

    def text_columns(self) -> frozenset[str]:
        """Source columns read as text exactly as written: template parts, and the source of every
        canonical text column (identifiers, codes such as ISIC, names)."""
        strings = _string_fields()
        out: set[str] = set()
        for path, cols in self.column_blocks():
            for name, col in cols.items():
                if "template" in col:
                    out.update(source_fields(col["template"], self.where(*path, name, "template")))
                elif "from" in col and name in strings:
                    out.add(str(col["from"]))
        return frozenset(out)

    def read_options(self) -> ReadOptions:
        """How to read this mapping's source file (its ``source:`` block and its text columns)."""
        conf = self.source_conf
        na = conf.get("na_values")
        return ReadOptions(
            format=conf.get("format"),
            sheet=conf.get("sheet"),
            encoding=conf.get("encoding"),
            delimiter=conf.get("delimiter"),
            decimal=conf.get("decimal"),
            thousands=conf.get("thousands"),
            header_row=conf.get("header_row"),
            skip_rows=conf.get("skip_rows"),
            na_values=tuple(str(v) for v in na) if na is not None else None,
            text_columns=self.text_columns(),
        )

    def check_against(
        self, source: SourceTable | list[str], source_name: str | None = None, params: dict[str, Any] | None = None
    ) -> None:
        """Every source column the spec needs must exist (``optional`` ones may be absent) and be named
        once; say which columns the file has and the closest names when not."""
        if isinstance(source, SourceTable):
            available, source_name, repeated = (
                [str(c) for c in source.data.columns],
                source.name,
                source.duplicate_columns,
            )
        else:
            available, repeated = [str(c) for c in source], {}
        problems = []
        for path, needed in self.source_columns_used(params).items():
            col = self._column_at(path)
            for name in needed:
                if name in repeated:
                    problems.append(
                        f"  - {self.where(*path)}: source column {name!r} appears {len(repeated[name])} times in "
                        f"{source_name} (read as {', '.join(repeated[name])}): name the one you mean, or rename "
                        "the others in the file"
                    )
                elif name not in available and not col.get("optional"):
                    close = difflib.get_close_matches(name, available, n=3, cutoff=0.5)
                    hint = f"; closest: {', '.join(close)}" if close else ""
                    if "param" in col:
                        hint += f"; or give it with --set {col['param']}=VALUE"
                    problems.append(f"  - {self.where(*path)}: source column {name!r} is not in {source_name}{hint}")
        if problems:
            shown = ", ".join(available[:40]) + (f" ... ({len(available)} in all)" if len(available) > 40 else "")
            raise MappingError(
                f"mapping {self.path} does not fit {source_name}:\n"
                + "\n".join(problems)
                + f"\n  columns found in {source_name}: {shown}"
                + "\n  (mark a question that some rounds lack 'optional: true')"
            )

    def _column_at(self, path: tuple[str | int, ...]) -> dict[str, Any]:
        node: Any = self.data
        for key in path[:-1]:
            node = node[key]
        return node


class KeyedRecode(dict):
    """A recode whose source values are matched through a key function (built-in recodes)."""

    def __init__(self, table: dict[Any, Any], key: Any, name: str) -> None:
        super().__init__(table)
        self.key = key
        self.name = name


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


def recode_key(value: Any) -> Any:
    """Recode lookup key: numbers as float, text stripped and lower-cased (numeric text as float)."""
    if isinstance(value, bool | np.bool_):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            return text.lower()
    return value


def _recode_collisions(rec: dict[Any, Any]) -> list[str]:
    """Keys that a source value cannot tell apart ("Yes" and "yes", 1 and "1") with different values."""
    seen: dict[Any, tuple[Any, Any]] = {}
    clashes = []
    for k, v in rec.items():
        key = recode_key(k)
        if key in seen and seen[key][1] != v:
            clashes.append(f"{seen[key][0]!r} and {k!r}")
        seen.setdefault(key, (k, v))
    return clashes


def source_fields(template: str, where: str) -> list[str]:
    """The template's fields that are source columns (``{=name}`` fields are canonical columns)."""
    return [f for f in template_fields(template, where) if not f.startswith("=")]


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
            fields = template_fields(col["template"], spec.where(*path, name, "template"))
        except MappingError as exc:
            problems.append(f"  - {exc}")
            fields = []
        block = spec._column_at((*path, name))
        earlier = list(block)[: list(block).index(name)] if name in block else []
        for ref in (f[1:] for f in fields if f.startswith("=")):
            if ref not in earlier or "derive" in block[ref]:
                problems.append(
                    f"  - {spec.where(*path, name, 'template')}: {{={ref}}} must name a canonical column mapped above "
                    f"it (from, const, param or template; not derive)"
                )
    if "recode" in col:
        try:
            rec = spec.recode_map(name, col, path)
        except MappingError as exc:
            problems.append(f"  - {exc}")
            rec = None
        if rec is not None and not isinstance(rec, KeyedRecode):
            for clash in _recode_collisions(rec):
                problems.append(
                    f"  - {spec.where(*path, name, 'recode')}: recode keys {clash} match the same source values "
                    "(case and spaces are ignored) but map to different values"
                )
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


def _recode_nodes(doc: YamlDocument) -> list[tuple[yaml.MappingNode, dict[Any, Any]]]:
    """(YAML node, loaded dict) of every recode map written in the document."""
    found: list[tuple[yaml.MappingNode, dict[Any, Any]]] = []

    def child(node: Any, key: str) -> Any:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == key:
                    return v
        return None

    def column_recodes(cols_node: Any, cols: Any) -> None:
        if isinstance(cols_node, yaml.MappingNode) and isinstance(cols, dict):
            for k, v in cols_node.value:
                rec = child(v, "recode")
                col = cols.get(k.value) if isinstance(cols.get(k.value), dict) else None
                if isinstance(rec, yaml.MappingNode) and col is not None and isinstance(col.get("recode"), dict):
                    found.append((rec, col))

    data, root = doc.data, doc.root
    recodes = child(root, "recodes")
    if isinstance(recodes, yaml.MappingNode) and isinstance(data.get("recodes"), dict):
        for k, v in recodes.value:
            if isinstance(v, yaml.MappingNode) and isinstance(data["recodes"].get(k.value), dict):
                found.append((v, {"recode": data["recodes"][k.value], "_holder": (data["recodes"], k.value)}))
    column_recodes(child(root, "columns"), data.get("columns"))
    recall = child(root, "recall")
    if isinstance(recall, yaml.SequenceNode) and isinstance(data.get("recall"), list):
        for node, block in zip(recall.value, data["recall"], strict=False):
            if isinstance(block, dict):
                column_recodes(child(node, "columns"), block.get("columns"))
    return found


def _recode_keys_as_written(doc: YamlDocument) -> None:
    """Unquoted Yes/No/On/Off recode keys stay text (YAML 1.1 would make them booleans and merge them)."""
    constructor = yaml.constructor.SafeConstructor()
    for node, holder in _recode_nodes(doc):
        if not any(
            isinstance(k, yaml.ScalarNode)
            and k.tag.endswith(":bool")
            and k.style is None
            and k.value.lower() in _YAML11_BOOLEAN_WORDS
            for k, _ in node.value
        ):
            continue
        rebuilt: dict[Any, Any] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag.endswith(":bool") and k.value.lower() in _YAML11_BOOLEAN_WORDS:
                key: Any = k.value
            else:
                key = constructor.construct_object(k, deep=True)
            if key in rebuilt:
                raise MappingError(f"{doc.path}, line {k.start_mark.line + 1}: recode key {k.value!r} is given twice")
            rebuilt[key] = constructor.construct_object(v, deep=True)
        if "_holder" in holder:
            container, name = holder["_holder"]
            container[name] = rebuilt
        else:
            holder["recode"] = rebuilt


def _resolve_path(path: str | Path) -> Path:
    """A mapping file, or the name of a shipped mapping ("wbes")."""
    p = Path(path)
    if p.exists():
        return p
    text = str(path)
    if "/" not in text and "\\" not in text and p.suffix in ("", ".yaml", ".yml"):
        stem = p.stem if p.suffix else text
        shipped = resources.files("cluster_econ") / "data_schemas" / "mappings" / f"{stem}.yaml"
        if shipped.is_file():
            return Path(str(shipped))
        raise MappingError(
            f"{p}: mapping file not found, and no mapping of that name ships with cluster_econ "
            f"(shipped: {', '.join(shipped_mappings())})"
        )
    raise MappingError(f"{p}: mapping file not found")


def _finish(doc: YamlDocument, name: str | Path, raw: bytes) -> MappingSpec:
    if not isinstance(doc.data, dict):
        raise MappingError(f"{name}: a mapping must be a YAML mapping (key: value), not {type(doc.data).__name__}")
    _recode_keys_as_written(doc)
    doc.check(mapping_json_schema())
    spec = MappingSpec(doc.data, str(name), hashlib.sha256(raw).hexdigest(), doc)
    _check_semantics(spec)
    return spec


def load_mapping(path: str | Path) -> MappingSpec:
    """Read and check a mapping specification (YAML, safe loader, JSON Schema, then semantics).

    ``path`` is a YAML file, or the name of a mapping shipped with the package (``"wbes"``).
    """
    p = _resolve_path(path)
    raw = p.read_bytes()
    doc = YamlDocument(p, raw.decode("utf-8", errors="replace"), MappingError)
    return _finish(doc, p, raw)


def mapping_from_dict(data: dict[str, Any], name: str = "<dict>") -> MappingSpec:
    """A spec from a Python dict (same checks as a file)."""
    text = yaml.safe_dump(data, sort_keys=False)
    doc = YamlDocument(name, text, MappingError)
    return _finish(doc, name, text.encode())
