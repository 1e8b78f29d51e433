"""How every lstmkit figure is made and written.

Figures are ``matplotlib.figure.Figure`` objects made directly, not through pyplot: no
backend is chosen and nothing is registered globally, so no display is needed, a notebook's
own backend is left alone, and a figure is freed like any object when its last reference
goes (pyplot keeps every figure until it is closed). Saving picks matplotlib's file canvas
from the format: Agg for PNG, the SVG writer for SVG.

:func:`save` writes one figure to one or more paths, the format chosen by each suffix,
atomically (:func:`lstmkit._atomic.write_atomic`): a reader, or a browser reloading the
file, never sees half a picture.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import TypeAlias

import matplotlib
from matplotlib.figure import Figure

from lstmkit._atomic import write_atomic

FORMATS: dict[str, str] = {".png": "png", ".svg": "svg"}
"""The suffixes a figure can be written to and matplotlib's name for each format."""

DPI = 110
"""Pixels per inch of PNGs (SVGs are vectors; it only scales their raster parts)."""

Paths: TypeAlias = str | PathLike[str] | Sequence[str | PathLike[str]]
"""One path or several; each suffix says the format."""

# SVG text kept as text (searchable, small files; token strips hold thousands of glyphs), and
# no date and fixed ids inside, so the same figure gives the same bytes twice.
_SVG_STYLE = {"svg.fonttype": "none", "svg.hashsalt": "lstmkit"}


def figure_paths(paths: Paths) -> list[Path]:
    """``paths`` as a list of Paths; ValueError for one whose suffix is not .png or .svg."""
    items = [paths] if isinstance(paths, (str, PathLike)) else list(paths)
    if not items:
        raise ValueError("no path to write the figure to; expected a .png or .svg path")
    out = [Path(p) for p in items]
    for path in out:
        if path.suffix.lower() not in FORMATS:
            raise ValueError(
                f"{path}: expected a figure path ending in {' or '.join(FORMATS)}, got "
                f"{path.suffix or 'no suffix'}"
            )
    return out


def save(fig: Figure, paths: Paths, *, dpi: int = DPI) -> list[Path]:
    """Write ``fig`` to each of ``paths`` (PNG or SVG by suffix), atomically; returns them.
    The folders must exist. The paths are checked before anything is written."""
    targets = figure_paths(paths)
    for path in targets:
        fmt = FORMATS[path.suffix.lower()]
        buffer = io.BytesIO()
        if fmt == "svg":
            with matplotlib.rc_context(_SVG_STYLE):
                fig.savefig(buffer, format=fmt, dpi=dpi, metadata={"Date": None})
        else:
            fig.savefig(buffer, format=fmt, dpi=dpi)
        write_atomic(path, buffer.getvalue())
    return targets
