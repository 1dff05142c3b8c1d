"""Writing a batch report: table files, figures and the self-contained HTML page.

Rendering is split into independent tasks (one per subset's regression table, the phase profile,
the timeline and one coefficient figure per specification) that run in parallel on local
processes through :mod:`cluster_econ.parallel`: each writes its own files (atomically) and returns
the HTML fragment it contributes; the page is then assembled in a fixed order. Rendering always
runs on this machine, even when the jobs ran on a Dask cluster, so that the bytes of tables and
figures never depend on another machine's fonts or library versions.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from cluster_econ.errors import ConfigError

TABLE_EXT = {"latex": "tex", "docx": "docx", "xlsx": "xlsx", "markdown": "md", "csv": "csv"}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
# names Windows will not create as files, whatever the extension
_RESERVED_FILE_NAMES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def inside(root: Path, *parts: str, doc: Any = None, key: Sequence[str | int] = ()) -> Path:
    """``root / parts`` if it stays inside ``root``, else a ConfigError naming the key."""
    target = root.joinpath(*parts).resolve()
    base = root.resolve()
    if target != base and base not in target.parents:
        msg = f"output path {'/'.join(parts)!r} escapes the output folder {base}"
        raise doc.fail(list(key), msg) if doc is not None else ConfigError(msg)
    return target


def slug(value: Any) -> str:
    """A file name stem from a label: letters, digits, ``_ . -`` only, no leading dot, never empty
    or a name Windows reserves. Two labels can share a slug; the configuration check refuses that."""
    text = _SAFE_NAME.sub("_", str(value)).strip("._") or "_"
    return "_" + text if text.split(".")[0].upper() in _RESERVED_FILE_NAMES else text


class RenderData:
    """What the rendering tasks read: output folder and formats, the phased panel, the subsets
    and each subset's specification results (their JSON states, by name in configuration order;
    plain data, so that it pickles for workers that are not forked)."""

    def __init__(self, out_dir: Path, outputs: Sequence[str], panel: Any, subsets: Sequence[str],
                 spec_states: Mapping[str, Mapping[str, Any]], profile_title: str) -> None:
        self.out_dir = out_dir
        self.outputs = list(outputs)
        self.exts = [TABLE_EXT[o] for o in outputs if o in TABLE_EXT]
        self.html = "html" in outputs
        self.panel = panel
        self.subsets = list(subsets)
        self.spec_states = {k: dict(v) for k, v in spec_states.items()}
        self.profile_title = profile_title
        self._results: dict[str, dict[str, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_results": {}}

    def results(self, subset: str) -> dict[str, Any]:
        """The subset's Results, rebuilt from their states once per process."""
        if subset not in self._results:
            from cluster_econ.report.cache import rebuild_result

            self._results[subset] = {name: rebuild_result(st) for name, st in self.spec_states.get(subset, {}).items()}
        return self._results[subset]


def early_tasks(data: RenderData, with_profile: bool) -> list[tuple[str, str]]:
    """The rendering tasks that need no job's result: they can run beside the jobs."""
    return ([("profile", "")] if with_profile else []) + ([("timeline", "")] if data.html else [])


def render_tasks(data: RenderData, spec_names: Sequence[str], with_profile: bool) -> list[tuple[str, str]]:
    """The rendering tasks of a report, in the order their fragments appear."""
    tasks = [("table", s) for s in data.subsets if data.spec_states.get(s) and (data.exts or data.html)]
    if with_profile:
        tasks.append(("profile", ""))
    if data.html:
        tasks.append(("timeline", ""))
        tasks += [("coefficients", name) for name in spec_names]
    return tasks


def render(task: tuple[str, str], shared: RenderData) -> dict[str, Any]:
    """Run one rendering task: write its files; return them and its HTML fragment."""
    kind, name = task
    if kind == "table":
        return _subset_tables(shared, name)
    if kind == "profile":
        return _profile(shared)
    if kind == "timeline":
        return _timeline(shared)
    return _coefficients(shared, name)


def _subset_tables(data: RenderData, sname: str) -> dict[str, Any]:
    from cluster_econ.tables import regression_table

    res = data.results(sname)
    tab = regression_table(res, title=f"Specifications: {sname}", digits=3)
    files = [tab.save(inside(data.out_dir, "tables", f"{slug(sname)}.{ext}")) for ext in data.exts]
    fragment = ""
    if data.html:
        fragment = tab.to_html() + "".join(frame_html(r.audit.to_frame(), f"Row audit: {name} ({sname})")
                                           for name, r in res.items())
    return {"files": files, "html": fragment}


def _profile(data: RenderData) -> dict[str, Any]:
    from cluster_econ.tables.phase_profile import phase_profile_table

    profile = phase_profile_table(data.panel, title=data.profile_title)
    files = [profile.save(inside(data.out_dir, "tables", f"phase_profile.{ext}")) for ext in data.exts]
    return {"files": files, "html": profile.to_html() if data.html else ""}


def _figure(fig: Any, out_dir: Path, name: str) -> tuple[Path, str]:
    from cluster_econ.figures import save

    (path,) = save(fig, inside(out_dir, "figures", f"{name}.png"))  # figures live outside pyplot
    return path, base64.b64encode(path.read_bytes()).decode("ascii")


def warm_up(outputs: Sequence[str]) -> None:
    """Import what rendering imports, so that forked workers inherit it instead of each paying
    for it again (about a second per process)."""
    import importlib

    names = ["cluster_econ.tables", "cluster_econ.tables.phase_profile", "cluster_econ.figures.plots",
             "matplotlib.figure", "matplotlib.backends.backend_agg"]
    names += [{"docx": "docx", "xlsx": "openpyxl"}[o] for o in outputs if o in ("docx", "xlsx")]
    for name in names:
        importlib.import_module(name)


def _timeline(data: RenderData) -> dict[str, Any]:
    """The first cluster's timeline with its phases shaded, as an embedded PNG."""
    from cluster_econ.figures import cluster_timeline

    cy = data.panel.with_cluster_year().cluster_year
    if cy is None or cy.empty:
        return {"files": [], "html": ""}
    first = sorted(cy["cluster_id"].astype(str).unique())[0]
    series = [c for c in ("n_firms", "n_entries", "n_exits", "price_index") if c in cy.columns and cy[c].notna().any()]
    fig = cluster_timeline(cy, first, series=series or None, title=f"{first}: firms, entry, exit and phases")
    path, b64 = _figure(fig, data.out_dir, f"timeline_{slug(first)}")
    esc = html.escape
    return {"files": [path], "html": f'<figure><img alt="timeline of {esc(first)}" src="data:image/png;base64,{b64}">'
                                     f"<figcaption>Timeline of cluster {esc(first)} with its phases shaded</figcaption>"
                                     "</figure>"}


def _coefficients(data: RenderData, spec: str) -> dict[str, Any]:
    """One specification's first slope across subsets (95% CI)."""
    from cluster_econ.figures import coefficient_plot

    by_subset = {s: data.results(s)[spec] for s in data.subsets if spec in data.spec_states.get(s, {})}
    terms = [t for r in by_subset.values() for t in r.params.index if t != "Intercept"]
    if not terms:
        return {"files": [], "html": ""}
    term = terms[0]
    by_subset = {k: r for k, r in by_subset.items() if term in r.params.index}
    fig = coefficient_plot(by_subset, term=term, by="subset", title=f"{spec}: {term}")
    path, b64 = _figure(fig, data.out_dir, f"spec_{slug(spec)}")
    esc = html.escape
    return {"files": [path], "html": f'<figure><img alt="{esc(spec)}: {esc(term)} by subset" '
                                     f'src="data:image/png;base64,{b64}"><figcaption>{esc(spec)}: coefficient of '
                                     f"{esc(term)} by subset (95% CI)</figcaption></figure>"}


def frame_html(df: pd.DataFrame, caption: str | None = None) -> str:
    """A DataFrame as an HTML table; every cell and header escaped."""
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for v in row:
            text = f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))
            cells.append(f"<td>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f'<table class="frame">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border-bottom:1px solid #ccc;padding:0.2em 0.6em;text-align:right}
caption{font-weight:bold;text-align:left}
.failed{background:#fde8e8;border-left:4px solid #c00;padding:0.5em 1em;margin:0.5em 0}
.warning{background:#fff8e1;border-left:4px solid #e0a800;padding:0.5em 1em;margin:0.5em 0}
.synthetic{background:#fff3cd;border-left:4px solid #b58900;padding:0.5em 1em}
pre{background:#f6f6f6;padding:0.6em;overflow-x:auto;font-size:0.85em}
figure img{max-width:100%}
"""


def _failure_html(label: str, error: str, trace: str | None) -> str:
    esc = html.escape
    body = f"<b>{esc(label)}</b>: {esc(error)}"
    if trace:
        body += f"<details><summary>traceback</summary><pre>{esc(trace)}</pre></details>"
    return f'<div class="failed">{body}</div>'


def html_page(manifest: Mapping[str, Any], panel: Any, subsets: Sequence[str], jobs: Sequence[Mapping[str, Any]],
              results: Mapping[str, Any], fragments: Mapping[tuple[str, str], str],
              failures: Sequence[tuple[str, str, str, str | None]], task_label: Any) -> str:
    """The self-contained HTML report.

    ``fragments`` are the rendering tasks' HTML by task; ``failures`` are ``(subset, label, error,
    traceback)`` of every failed job and rendering task.
    """
    esc = html.escape
    title = str(manifest["title"])
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
             f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    if manifest.get("synthetic"):
        parts.append('<p class="synthetic">SYNTHETIC DATA: simulated by cluster_econ.simulate, not a real '
                     "survey.</p>")
    parts.append(f"<p>{len(jobs)} jobs ({len(subsets)} data subsets), {len(failures)} failed.</p>")
    if failures:
        parts.append('<section id="failures"><h2>Failed specifications</h2>')
        parts += [_failure_html(f"{sub} / {label}", err, trace) for sub, label, err, trace in failures]
        parts.append("</section>")
    warned = [(j, results[j["key"]]["warnings"]) for j in jobs if results[j["key"]].get("warnings")]
    if warned:
        parts.append('<section id="warnings"><h2>Warnings</h2>')
        for job, messages in warned:
            items = "".join(f"<li>{esc(m)}</li>" for m in messages)
            parts.append(f'<div class="warning"><b>{esc(job["subset"])} / {esc(task_label(job))}</b>'
                         f"<ul>{items}</ul></div>")
        parts.append("</section>")

    # data and row audit
    parts.append('<section id="data"><h2>Data</h2>')
    parts.append(f"<pre>{esc(panel.summary())}</pre>")
    audit = panel.audit_summary()
    if len(audit):
        parts.append(frame_html(audit, "Row audit: rows read, added, kept, dropped and rejected"))
    parts.append(fragments.get(("profile", ""), ""))
    parts.append("</section>")

    specs = [j for j in jobs if j["kind"] == "spec"]
    timeline = fragments.get(("timeline", ""), "")
    if specs:
        parts.append('<section id="specifications"><h2>Specifications</h2>')
        for sname in subsets:
            parts.append(f"<h3>Subset: {esc(sname)}</h3>")
            parts.append(fragments.get(("table", sname), ""))
            for job in specs:
                state = results[job["key"]]
                if job["subset"] == sname and state.get("error"):
                    parts.append(_failure_html(task_label(job), state["error"], None))
        parts.append("</section>")
        parts.append('<section id="figures"><h2>Figures</h2>' + timeline)
        for name in dict.fromkeys(j["task"]["name"] for j in specs):
            parts.append(fragments.get(("coefficients", name), ""))
        parts.append("</section>")

    props = [j for j in jobs if j["kind"] == "proposition"]
    if props and not specs:
        parts.append('<section id="figures"><h2>Figures</h2>' + timeline + "</section>")
    if props:
        parts.append('<section id="propositions"><h2>Propositions</h2>')
        rows = []
        for job in props:
            st = results[job["key"]]
            if st.get("error"):
                continue
            row = dict(st["row"])
            rows.append({"subset": job["subset"], "id": row.get("id"), "verdict": row.get("verdict"),
                         "test": row.get("test"), "estimate": row.get("estimate"),
                         "p_value": row.get("p_value"), "message": row.get("message")})
        if rows:
            parts.append(frame_html(pd.DataFrame(rows), "Verdicts by subset"))
        for job in props:
            st = results[job["key"]]
            if st.get("error") is None and len(st["tidy"]):
                parts.append(frame_html(st["tidy"], f"{job['task']['id']} estimates ({job['subset']})"))
        parts.append("</section>")

    parts.append('<section id="manifest"><h2>Manifest</h2>')
    man = pd.DataFrame([
        {"item": "data", "value": manifest["data"]},
        {"item": "data hash", "value": manifest["data_hash"]},
        {"item": "schema version", "value": manifest["schema_version"]},
        {"item": "seed", "value": "none (each proposition's default)" if manifest["seed"] is None
         else str(manifest["seed"])},
        {"item": "phase method", "value": manifest["phase_method"]},
        *({"item": k, "value": v} for k, v in manifest["package_versions"].items()),
    ])
    parts.append(frame_html(man, "Manifest"))
    parts.append("<h3>Configuration</h3><pre>"
                 + esc(json.dumps(manifest["configuration"], indent=2, sort_keys=True, default=str)) + "</pre>")
    parts.append("</section></body></html>")
    return "\n".join(p for p in parts if p) + "\n"
