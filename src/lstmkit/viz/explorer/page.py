"""The explorer page: one self-contained HTML file showing what a trained model did over a
text (see ``lstmkit explore --help`` and docs/explorer.md).

The page embeds the whole record (every quantity of every unit, layer and token as float32,
the top next tokens at each step, the gate saturation fractions), so it opens from disk in
any browser and every number on it is the model's own; the script only draws and ranks.
"""

from __future__ import annotations

from pathlib import Path

from lstmkit.lm.checkpoint import load_model
from lstmkit.lm.record import TextRecord, gate_saturation, record_text
from lstmkit.viz.html import asset, float32_base64, render, write_page

_ASSETS = "lstmkit.viz.explorer"


def explorer_data(
    record: TextRecord, *, title: str, selection: tuple[int, int] | None = None
) -> dict[str, object]:
    """The JSON the page reads: the record, with each quantity as base64 float32 laid out
    ``[layer][time][unit]``."""
    steps = len(record.tokens)
    if selection is not None:
        start, stop = selection
        if not 0 <= start < stop <= steps or stop - start == steps:
            raise ValueError(
                f"--select {start}:{stop} is not a span of this text: expected "
                f"0 <= START < STOP <= {steps}, leaving some tokens outside"
            )
    return {
        "title": title,
        "cell": record.cell,
        "family": record.family,
        "level": record.level,
        "tokens": list(record.tokens),
        "layers": record.num_layers,
        "units": record.num_units,
        "names": list(record.quantities),
        "gates": list(record.gates),
        "quantities": {name: float32_base64(v) for name, v in record.quantities.items()},
        "predictions": [[[tok, p] for tok, p in step] for step in record.predictions],
        "nextProbability": list(record.next_probability),
        "saturation": {
            gate: {"low": low.tolist(), "high": high.tolist()}
            for gate, (low, high) in gate_saturation(record).items()
        },
        "selection": list(selection) if selection is not None else None,
    }


def explorer_html(data: dict[str, object]) -> str:
    """The page for ``data`` (from :func:`explorer_data`)."""
    return render(
        asset(_ASSETS, "assets/explorer.html"),
        title=f"lstmkit explorer: {data['title']}",
        style=asset(_ASSETS, "assets/explorer.css"),
        script=asset(_ASSETS, "assets/explorer.js"),
        data=data,
    )


def build_explorer(
    run: Path,
    text: str,
    out: Path,
    *,
    selection: tuple[int, int] | None = None,
    top: int = 5,
) -> tuple[Path, TextRecord]:
    """Read ``text`` with the model of run folder ``run`` and write the explorer page to
    ``out``; returns the path and the record it shows. A folder that is not a run raises
    CheckpointError, a text the model cannot read TextError (both one-line messages)."""
    model, config = load_model(Path(run))
    record = record_text(model, config.vocabulary, text, top=top)
    data = explorer_data(record, title=Path(run).resolve().name, selection=selection)
    return write_page(Path(out), explorer_html(data)), record
