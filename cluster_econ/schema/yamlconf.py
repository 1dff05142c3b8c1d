"""Safe YAML configuration files checked against a JSON Schema, with errors that name the key and line.

Used by mapping specifications (harmonize) and batch report configurations. YAML is loaded with
``yaml.SafeLoader`` only; nothing in a configuration is ever evaluated as Python.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cluster_econ.errors import ConfigError


def line_of(root: yaml.Node | None, path: Sequence[str | int]) -> int | None:
    """1-based line of the node at ``path`` (keys and list indices) in a composed YAML tree."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if str(k.value) == str(key):
                    node, line = v, k.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
            line = node.start_mark.line + 1
        else:
            return line
    return line


class YamlDocument:
    """A parsed YAML file with its node tree, so that later checks can point to lines."""

    def __init__(self, path: str | Path | None, text: str, error_class: type[Exception] = ConfigError) -> None:
        self.path = str(path) if path is not None else "<string>"
        self.error_class = error_class
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.load(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise error_class(f"{self.path}:{where}: invalid YAML: {problem}") from exc
        if self.data is None:
            raise error_class(f"{self.path}: the file is empty")

    @classmethod
    def from_file(cls, path: str | Path, error_class: type[Exception] = ConfigError) -> YamlDocument:
        p = Path(path)
        if not p.exists():
            raise error_class(f"{p}: file not found")
        return cls(p, p.read_text(encoding="utf-8"), error_class)

    def where(self, path: Sequence[str | int]) -> str:
        line = line_of(self.root, path)
        key = ".".join(str(k) for k in path) or "(top level)"
        return f"{self.path}, key '{key}'" + (f" (line {line})" if line else "")

    def fail(self, path: Sequence[str | int], message: str) -> Exception:
        return self.error_class(f"{self.where(path)}: {message}")

    def check(self, json_schema: dict[str, Any]) -> None:
        """Validate against a JSON Schema; raise one error listing every problem with its line."""
        import jsonschema

        validator = jsonschema.Draft202012Validator(json_schema)
        errors = sorted(validator.iter_errors(self.data), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            lines = [f"  - {self.where(list(e.absolute_path))}: {_explain(e)}" for e in errors]
            raise self.error_class(f"{self.path}: {len(errors)} problem(s) in the configuration:\n" + "\n".join(lines))


def _explain(err: Any) -> str:
    if err.validator == "additionalProperties":
        allowed = sorted((err.schema.get("properties") or {}).keys())
        return f"{err.message}; allowed keys: {', '.join(allowed)}"
    return err.message


def load_json_schema(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
