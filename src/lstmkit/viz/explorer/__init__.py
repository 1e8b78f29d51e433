"""The explorer: ``lstmkit explore RUN --text ...`` writes one HTML page that shows every gate
and state of a trained model over a text (see :mod:`lstmkit.viz.explorer.page`)."""

from lstmkit.viz.explorer.page import build_explorer, explorer_data, explorer_html

__all__ = ["build_explorer", "explorer_data", "explorer_html"]
