"""What a language model's units did over one text, from a :class:`lstmkit.lm.record.TextRecord`.

- the strip (:func:`strip_figure`): the text's tokens in boxes coloured by one unit's value
  at each token, wrapped into lines, as Karpathy, Johnson & Fei-Fei (2015) show cells
  that track quotes or line length;
- the matrix (:func:`matrix_figure`): every unit of one layer against time, one quantity;
- the saturation (:func:`saturation_figure`): for each gate, the fraction of tokens each
  unit spends left-saturated (< 0.1) against right-saturated (> 0.9), one dot per unit
  (their Fig. 3), above a histogram of the gate's values.

A quantity is a gate (input, forget, output; reset, update: sigmoids in [0, 1]) or signed
(cell, hidden, candidate). Gates use a sequential colormap fixed to [0, 1], so the same
colour means the same opening in every figure; signed quantities a diverging one centred
on 0 (white) and symmetric, so red and blue compare as + and -.

Each ``*_figure`` returns the Figure (to show or adjust); each ``plot_*`` writes one with
:func:`lstmkit.plots.save`. Values arrive as (layers, T, units) arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.collections import PatchCollection
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from lstmkit.plots._figure import Paths, save

if TYPE_CHECKING:  # only the type: the plots sit below the language models' modules
    from lstmkit.lm.record import TextRecord

SIGNED_CMAP = "RdBu_r"
"""Diverging: blue below 0, white at 0, red above, as the explorer page colours them."""
GATE_CMAP = "Greens"
"""Sequential: white for a closed gate (0) to dark green for an open one (1)."""

LABELS = {
    "cell": "cell state c_t",
    "hidden": "hidden state h_t",
    "candidate": "candidate",
    "input": "input gate i_t",
    "forget": "forget gate f_t",
    "output": "output gate o_t",
    "reset": "reset gate r_t",
    "update": "update gate z_t",
}
"""How each quantity of lstmkit.trace is named on axes and colorbars."""

COLUMNS = 80
"""Characters per line of the strip, as a text editor's."""

# The strip's grid, in inches: one character cell is wider than a 10 pt monospace glyph
# (DejaVu Sans Mono advances 0.6 em = 0.083 in), one line taller than the glyph.
_CELL_W, _LINE_H, _FONT = 0.1, 0.25, 10
_MARGIN, _TITLE_H = 0.3, 0.45
_BAR_Y, _BAR_W, _BAR_H = 0.5, 0.14, 0.95  # the colorbar's bottom, its width, and all it needs
_MARKS = {" ": "·", "\n": "↵", "\t": "→"}  # whitespace drawn visibly, or its box is blank


# -- choosing and checking what to show --------------------------------------------------------


def is_gate(record: TextRecord, quantity: str) -> bool:
    """Whether ``quantity`` is one of the record's sigmoid gates (values in [0, 1])."""
    return quantity in record.gates


def check_choice(
    record: TextRecord, quantity: str, layer: int = 0, unit: int | None = None
) -> None:
    """ValueError, saying what was expected, unless the record holds ``quantity`` at
    ``layer`` (and ``unit``)."""
    if quantity not in record.quantities:
        raise ValueError(
            f"the {record.cell} model records no {quantity!r}; expected one of "
            f"{', '.join(record.quantities)}"
        )
    if not 0 <= layer < record.num_layers:
        raise ValueError(
            f"layer {layer} is out of range; the model has {record.num_layers} layer(s), "
            f"expected 0 to {record.num_layers - 1}"
        )
    if unit is not None and not 0 <= unit < record.num_units:
        raise ValueError(
            f"unit {unit} is out of range; layer {layer} has {record.num_units} units, "
            f"expected 0 to {record.num_units - 1}"
        )


def default_unit(record: TextRecord, quantity: str, layer: int = 0) -> int:
    """The unit whose ``quantity`` varies most over the text (largest standard deviation
    over the tokens; the lowest index on ties): the one most likely to be tracking it."""
    check_choice(record, quantity, layer)
    return int(np.argmax(record.quantities[quantity][layer].std(axis=0)))


def color_scale(values: np.ndarray, gate: bool) -> tuple[Colormap, Normalize]:
    """The colormap and its normalisation for ``values``: [0, 1] for a gate; otherwise
    symmetric about 0 out to the largest magnitude, so that white means zero."""
    if gate:
        return colormaps[GATE_CMAP], Normalize(0.0, 1.0)
    limit = float(np.abs(values).max()) if values.size else 0.0
    limit = limit if limit > 0 else 1.0  # an all-zero unit: any symmetric range shows white
    return colormaps[SIGNED_CMAP], Normalize(-limit, limit)


def token_colors(record: TextRecord, quantity: str, layer: int, unit: int) -> np.ndarray:
    """The RGBA colour (T, 4) of each token's box in the strip of ``unit``."""
    check_choice(record, quantity, layer, unit)
    values = record.quantities[quantity][layer, :, unit]  # (T,)
    cmap, norm = color_scale(values, is_gate(record, quantity))
    return cmap(norm(values))


def _label(quantity: str) -> str:
    return LABELS.get(quantity, quantity)


# -- the strip ---------------------------------------------------------------------------------


def token_label(token: str) -> str:
    """How a token is written in the figures: spaces, newlines and tabs as visible marks
    (· ↵ →), any other invisible character as its code point."""
    return "".join(_MARKS.get(ch, ch if ch.isprintable() else f"<U+{ord(ch):04X}>") for ch in token)


@dataclass(frozen=True)
class TokenBox:
    """Where one token's box goes in the strip, in character cells."""

    line: int
    column: int
    width: int
    label: str


def layout_tokens(tokens: Sequence[str], level: str, columns: int = COLUMNS) -> list[TokenBox]:
    """Place the tokens left to right, wrapping before a token that would pass ``columns``
    and after each newline. Characters abut as they do in the text; words keep one empty
    cell between boxes. A word longer than a line is shortened with an ellipsis."""
    if columns < 1:
        raise ValueError(f"columns must be a positive integer, got {columns!r}")
    gap = 0 if level == "char" else 1
    boxes: list[TokenBox] = []
    line = column = 0
    for token in tokens:
        label = token_label(token)
        if len(label) > columns:
            label = label[: columns - 1] + "…"
        if column > 0 and column + len(label) > columns:
            line, column = line + 1, 0
        boxes.append(TokenBox(line, column, len(label), label))
        column += len(label) + gap
        if token == "\n":
            line, column = line + 1, 0
    return boxes


def _ink(rgba: np.ndarray) -> str:
    """Black text on light boxes, white on dark (relative luminance, ITU-R BT.709)."""
    luminance = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
    return "black" if luminance > 0.5 else "white"


def strip_figure(
    record: TextRecord,
    quantity: str = "hidden",
    *,
    layer: int = 0,
    unit: int = 0,
    columns: int = COLUMNS,
) -> Figure:
    """The text's tokens, each in a box coloured by ``unit``'s ``quantity`` at that token
    (after reading it), wrapped into lines of ``columns`` characters, with a colorbar."""
    colors = token_colors(record, quantity, layer, unit)  # (T, 4)
    values = record.quantities[quantity][layer, :, unit]
    cmap, norm = color_scale(values, is_gate(record, quantity))
    boxes = layout_tokens(record.tokens, record.level, columns)
    lines = boxes[-1].line + 1
    # every length in inches, so a glyph fits its cell whatever the text's size
    width = columns * _CELL_W + 2 * _MARGIN
    height = lines * _LINE_H + _TITLE_H + _BAR_H
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes(
        (
            _MARGIN / width,
            _BAR_H / height,
            columns * _CELL_W / width,
            lines * _LINE_H / height,
        )
    )
    ax.set_xlim(0, columns)
    ax.set_ylim(lines, 0)  # line 0 at the top
    ax.axis("off")
    pad = 0.06  # a thin white gap between lines keeps them apart
    rects = [Rectangle((b.column, b.line + pad), b.width, 1 - 2 * pad) for b in boxes]
    ax.add_collection(PatchCollection(rects, facecolors=colors, edgecolors="none"))
    for box, color in zip(boxes, colors, strict=True):
        ax.text(
            box.column + box.width / 2,
            box.line + 0.5,
            box.label,
            ha="center",
            va="center_baseline",
            family="monospace",
            fontsize=_FONT,
            color=_ink(color),
        )
    bar = fig.add_axes((0.25, _BAR_Y / height, 0.5, _BAR_W / height))  # under the text
    fig.colorbar(ScalarMappable(norm, cmap), cax=bar, orientation="horizontal")
    bar.set_xlabel(_label(quantity), fontsize=9)
    fig.suptitle(
        f"{record.cell}, layer {layer}, unit {unit}: {_label(quantity)} at each of "
        f"{len(record.tokens)} {record.level} tokens",
        y=1 - 0.12 / height,
        va="top",
        fontsize=10,
    )
    return fig


def plot_token_strip(
    record: TextRecord,
    path: Paths,
    quantity: str = "hidden",
    *,
    layer: int = 0,
    unit: int = 0,
    columns: int = COLUMNS,
) -> list[Path]:
    """Write :func:`strip_figure` to ``path`` (PNG or SVG by suffix, or a list)."""
    fig = strip_figure(record, quantity, layer=layer, unit=unit, columns=columns)
    return save(fig, path, dpi=150)  # sharper glyphs than the default


# -- the matrix --------------------------------------------------------------------------------

_MAX_TOKEN_TICKS = 80  # beyond this the tokens under the matrix would overlap; steps instead


def matrix_figure(
    record: TextRecord, quantity: str = "hidden", *, layer: int = 0, unit: int | None = None
) -> Figure:
    """Every unit of ``layer`` (rows) against the tokens (columns), coloured by
    ``quantity``; ``unit``, if given, is marked with a triangle on the left edge."""
    check_choice(record, quantity, layer, unit)
    values = record.quantities[quantity][layer].T  # (units, T)
    units, steps = values.shape
    cmap, norm = color_scale(values, is_gate(record, quantity))
    size = (min(max(4 + steps * 0.12, 7), 20), min(max(2 + units * 0.02, 4), 12))
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(values, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
    if steps <= _MAX_TOKEN_TICKS:
        labels = [token_label(t) for t in record.tokens]
        ax.set_xticks(range(steps), labels, rotation=90, family="monospace", fontsize=8)
        ax.set_xlabel("token")
    else:
        ax.set_xlabel("step (token index)")
    ax.set_ylabel("unit")
    if unit is not None:
        ax.plot(
            [-0.5], [unit], marker=">", ms=9, color="black", clip_on=False, ls="none"
        )  # outside the image, so no value is hidden
        ax.set_xlim(-0.5, steps - 0.5)
    fig.colorbar(image, ax=ax, label=_label(quantity))
    marked = f", unit {unit} marked" if unit is not None else ""
    ax.set_title(
        f"{record.cell}, layer {layer}: {_label(quantity)} of {units} units over {steps} "
        f"{record.level} tokens{marked}",
        fontsize=10,
    )
    return fig


def plot_unit_matrix(
    record: TextRecord,
    path: Paths,
    quantity: str = "hidden",
    *,
    layer: int = 0,
    unit: int | None = None,
) -> list[Path]:
    """Write :func:`matrix_figure` to ``path`` (PNG or SVG by suffix, or a list)."""
    return save(matrix_figure(record, quantity, layer=layer, unit=unit), path)


# -- gate saturation ---------------------------------------------------------------------------


def saturation_figure(record: TextRecord, *, layer: int = 0, unit: int | None = None) -> Figure:
    """For each gate, one column: above, each unit's fraction of tokens right-saturated
    against left-saturated (one dot per unit, coloured by layer; ``unit`` of ``layer``, if
    given, ringed in red as the explorer marks it); below, the histogram of the gate's
    values, one line per layer. ValueError for a cell without gates."""
    # imported here, not at the top: lstmkit.lm.record brings the model and torch, and the
    # caller, holding a TextRecord, has imported it already
    from lstmkit.lm.record import SATURATION, gate_saturation

    if not record.gates:
        raise ValueError(f"the {record.cell} model has no gates, so no gate saturation to show")
    check_choice(record, record.gates[0], layer, unit)
    low, high = SATURATION
    fractions = gate_saturation(record)  # gate -> (left, right), each (layers, units)
    gates = record.gates
    fig = Figure(figsize=(3.6 * len(gates), 7.2), layout="constrained")
    axes = fig.subplots(2, len(gates), squeeze=False)
    bins = np.linspace(0.0, 1.0, 41)
    for column, gate in enumerate(gates):
        left, right = fractions[gate]
        dots, hist = axes[0, column], axes[1, column]
        for k in range(record.num_layers):
            color = f"C{k}"
            dots.scatter(left[k], right[k], s=12, alpha=0.6, color=color)
            gate_values = record.quantities[gate][k].ravel()  # (T * units,)
            weights = np.full(gate_values.shape, 1 / max(gate_values.size, 1))
            hist.hist(gate_values, bins=bins, weights=weights, histtype="step", color=color)
        if unit is not None:
            dots.scatter(
                left[layer, unit],
                right[layer, unit],
                s=60,
                facecolors="none",
                edgecolors="red",
                linewidths=1.5,
            )
        # left + right <= 1 for every unit: nothing can lie beyond this line
        dots.plot([0, 1], [1, 0], color="grey", lw=0.8, ls=":")
        dots.set_xlim(-0.03, 1.03)
        dots.set_ylim(-0.03, 1.03)
        dots.set_aspect("equal")
        dots.set_xlabel(f"fraction of tokens left-saturated (< {low:g})")
        dots.set_ylabel(f"fraction right-saturated (> {high:g})")
        dots.set_title(f"{gate} gate: one dot per unit", fontsize=10)
        dots.grid(alpha=0.3)
        for start, stop in ((0.0, low), (high, 1.0)):  # the saturated ranges, shaded
            hist.axvspan(start, stop, color="grey", alpha=0.15, lw=0)
        hist.set_xlim(0, 1)
        hist.set_xlabel(f"{gate} gate value")
        hist.set_ylabel("fraction of values")
    _saturation_legend(fig, record.num_layers, layer, unit)
    fig.suptitle(
        f"Gate saturation of the {record.cell} model over {len(record.tokens)} "
        f"{record.level} tokens (as Karpathy, Johnson & Fei-Fei 2015, Fig. 3)",
        fontsize=10,
    )
    return fig


def _saturation_legend(fig: Figure, layers: int, layer: int, unit: int | None) -> None:
    """One legend under all the panels: which colour is which layer, which ring the unit."""
    handles, labels = [], []
    if layers > 1:
        for k in range(layers):
            handles.append(Line2D([], [], marker="o", ls="none", color=f"C{k}"))
            labels.append(f"layer {k}")
    if unit is not None:
        ring = Line2D([], [], marker="o", ls="none", mfc="none", mec="red", mew=1.5, ms=8)
        handles.append(ring)
        labels.append(f"unit {unit} of layer {layer}")
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=len(handles), fontsize=8)


def plot_gate_saturation(
    record: TextRecord, path: Paths, *, layer: int = 0, unit: int | None = None
) -> list[Path]:
    """Write :func:`saturation_figure` to ``path`` (PNG or SVG by suffix, or a list)."""
    return save(saturation_figure(record, layer=layer, unit=unit), path)
