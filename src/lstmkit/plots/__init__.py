"""Every lstmkit figure, drawn with matplotlib and written as PNG or SVG by suffix.

- ``training``: a language model's loss curves (``lstmkit train``, ``lstmkit plot``);
- ``facts``: the France probes' accuracy and confidence (``lstmkit facts``);
- ``experiments``: memory horizons and gradients through time (``lstmkit horizon``,
  ``lstmkit gradients``);
- ``inside``: what the units did over a text: the token strip, the units x time matrix
  and the gates' saturation (``lstmkit plot RUN --text ...``);
- ``forecast``: history, forecasts and the prediction interval (``lstmkit forecast``);
- ``compare``: the cell comparison's figures (``lstmkit compare``).

The package sits low: it imports matplotlib, NumPy and :mod:`lstmkit._atomic`, and the
data types it draws (FactScore, CellHorizon, TextRecord, ...) only for type checking, so
the training loops and commands above it can all use it.
"""

from lstmkit.plots._figure import FORMATS, figure_paths, save
from lstmkit.plots.compare import plot_metric_by_cell, plot_metric_by_lr
from lstmkit.plots.experiments import plot_gradients, plot_horizon
from lstmkit.plots.facts import plot_fact_curves
from lstmkit.plots.forecast import plot_forecast
from lstmkit.plots.inside import (
    check_choice,
    color_scale,
    default_unit,
    layout_tokens,
    matrix_figure,
    plot_gate_saturation,
    plot_token_strip,
    plot_unit_matrix,
    saturation_figure,
    strip_figure,
    token_colors,
    token_label,
)
from lstmkit.plots.training import plot_losses

__all__ = [
    "FORMATS",
    "check_choice",
    "color_scale",
    "default_unit",
    "figure_paths",
    "layout_tokens",
    "matrix_figure",
    "plot_fact_curves",
    "plot_forecast",
    "plot_gate_saturation",
    "plot_gradients",
    "plot_horizon",
    "plot_losses",
    "plot_metric_by_cell",
    "plot_metric_by_lr",
    "plot_token_strip",
    "plot_unit_matrix",
    "saturation_figure",
    "save",
    "strip_figure",
    "token_colors",
    "token_label",
]
