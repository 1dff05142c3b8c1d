"""The one figure style of cluster_econ: colours, fonts, sizes and the deterministic save.

Everything visual is defined here once and used by every plot: the phase palette (Okabe-Ito,
readable in grey and by colour-blind readers), the matplotlib rc settings, and :func:`save`,
which writes PNG and SVG files whose bytes depend only on the figure (no date, no software
version, a fixed SVG id salt) and writes them atomically.

matplotlib is imported inside functions only, so importing this module is cheap.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cluster_econ.errors import ClusterEconError
from cluster_econ.tables._io import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class FigureError(ClusterEconError, ValueError):
    """Data or arguments given to a plot are unusable (missing column, unknown cluster...)."""


#: Okabe-Ito colours, in the order used for the canonical phases and then for other groups.
PALETTE: tuple[str, ...] = ("#e69f00", "#56b4e9", "#009e73", "#cc79a7", "#0072b2", "#d55e00",
                            "#f0e442", "#000000")
NEUTRAL = "#4d4d4d"
SHADE_ALPHA = 0.18
BAND_ALPHA = 0.20
SVG_HASHSALT = "cluster_econ"

RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "svg.hashsalt": SVG_HASHSALT,
    "svg.fonttype": "path",
    "path.simplify": True,
}
FIGURE_WIDTH = 6.5  # inches, a page width

PNG_METADATA: dict[str, str | None] = {"Software": None}
SVG_METADATA: dict[str, str | None] = {"Date": None, "Creator": "cluster_econ", "Format": None,
                                       "Type": None}


@cache
def phases() -> tuple[str, ...]:
    """Canonical phase codes, in the order of the schema (``cluster_year.phase`` enum)."""
    from cluster_econ import schema

    return tuple(schema.load("cluster_year").field("phase").enum or ())


def phase_color(phase: str) -> str:
    """Colour of a canonical phase (the same in every figure)."""
    order = phases()
    if phase in order:
        return PALETTE[order.index(phase)]
    return NEUTRAL


def group_colors(values: Sequence[Any]) -> dict[Any, str]:
    """Colours for groups: phase colours for canonical phases; other groups take the palette
    colours no phase uses, so a non-phase group never looks like a phase."""
    reserved = {phase_color(p) for p in phases()}
    free = [c for c in PALETTE if c not in reserved]
    out: dict[Any, str] = {}
    k = 0
    for v in values:
        if v in out:
            continue
        if str(v) in phases():
            out[v] = phase_color(str(v))
        else:
            out[v] = free[k % len(free)]
            k += 1
    return out


def order_groups(values: Sequence[Any]) -> list[Any]:
    """Distinct values, canonical phases first in phase order, others in order of appearance."""
    seen: list[Any] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    ph = [p for p in phases() if p in [str(s) for s in seen]]
    return [v for p in ph for v in seen if str(v) == p] + [v for v in seen if str(v) not in ph]


def pretty(value: Any) -> str:
    """Label of a phase or other group value (``quality_improvement`` -> ``Quality improvement``)."""
    from cluster_econ.tables._format import pretty_level

    return pretty_level(str(value))


@contextmanager
def style() -> Iterator[None]:
    """Apply the package's rc settings for the duration of a block."""
    import matplotlib

    with matplotlib.rc_context(RC):
        yield


def new_figure(nrows: int = 1, ncols: int = 1, *, height: float = 3.2, sharex: bool = False
               ) -> tuple[Figure, list[list[Axes]]]:
    """A Figure on the Agg canvas (no pyplot state) with a grid of axes; call inside ``style()``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FIGURE_WIDTH, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, sharex=sharex, squeeze=False)
    return fig, [list(row) for row in axes]


def save(fig: Figure, path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None
         ) -> list[Path]:
    """Write ``fig`` to each path (``.png`` or ``.svg``) atomically, with deterministic bytes."""
    if path is None:
        return []
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    written = []
    for p in paths:
        target = Path(p)
        fmt = target.suffix.lower().lstrip(".")
        if fmt not in ("png", "svg"):
            raise FigureError(f"cannot write a figure to {target.name!r}: use a .png or .svg path")
        buf = io.BytesIO()
        with style():
            fig.savefig(buf, format=fmt,
                        metadata=PNG_METADATA if fmt == "png" else SVG_METADATA)
        written.append(atomic_write(target, buf.getvalue()))
    return written
