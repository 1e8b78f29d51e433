"""``lstmkit plot``: a run's figures, as PNG or SVG files.

    lstmkit plot RUN [--text TEXT | --file PATH_OR_CORPUS [--start N] [--tokens N]]
                     [--quantity Q] [--layer L] [--unit U] [--out DIR] [--format png,svg]

Always the training curves, from RUN/metrics.jsonl. With a text, what the model did while
reading it (:mod:`lstmkit.plots.inside`): the strip (one unit's QUANTITY at each token), the
matrix (every unit of the layer against the tokens) and, for cells with gates, the gates'
saturation. Every file written is printed. Bad input (a folder that is not a run, an empty
text, tokens the model never saw, a layer, unit or quantity it does not have, a format other
than png and svg) ends in one line, ``lstmkit: error: ...``, and exit status 2; nothing is
written before everything is checked.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lstmkit._cli_args import Parser, list_of, non_negative_int
from lstmkit._cli_text import add_text_options, check_text_options, text_from_args
from lstmkit.lm.checkpoint import CheckpointError, RunConfig, load_model
from lstmkit.lm.corpus import CorpusError
from lstmkit.lm.model import LanguageModel
from lstmkit.lm.record import TextError, TextRecord, record_text
from lstmkit.lm.train import METRICS, read_metrics
from lstmkit.plots import (
    check_choice,
    default_unit,
    plot_gate_saturation,
    plot_losses,
    plot_token_strip,
    plot_unit_matrix,
)

FORMATS = ("png", "svg")
DEFAULT_QUANTITY = "hidden"  # every cell has it, and it is what the next layer reads


def add_plot(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "plot",
        help="draw a run's training curves and what its units do over a text",
        description=(
            "Write RUN's training curves and, with --text or --file, what the model did "
            "while reading that text: one unit's QUANTITY at each token (the strip), every "
            "unit of the layer against the tokens (the matrix) and, for cells with gates, "
            "how often each gate is saturated (below 0.1 or above 0.9). PNG or SVG files in "
            "--out; each one written is printed."
        ),
        allow_abbrev=False,
    )
    p.add_argument("run", type=Path, metavar="RUN", help="a run folder made by 'lstmkit train'")
    add_text_options(p, required=False)
    p.add_argument(
        "--quantity",
        default=None,
        help="what colours the strip and the matrix: hidden, cell, candidate or a gate "
        f"(input, forget, output; reset, update) (default {DEFAULT_QUANTITY})",
    )
    p.add_argument("--layer", type=non_negative_int, default=None, help="layer, from 0 (0)")
    p.add_argument(
        "--unit",
        type=non_negative_int,
        default=None,
        help="the strip's unit, from 0 (default: the unit whose QUANTITY varies most over "
        "the text, by standard deviation)",
    )
    p.add_argument("--out", type=Path, default=None, help="folder for the figures (RUN/plots)")
    p.add_argument(
        "--format",
        type=list_of(FORMATS, "format"),
        default=("png",),
        help="png, svg or png,svg (png)",
    )
    p.set_defaults(handler=_run_plot)
    return p


def _run_plot(args: argparse.Namespace, parser: Parser) -> int:
    _check_options(args, parser)
    try:
        model, config = load_model(args.run)
    except CheckpointError as err:
        parser.error(str(err))
    record = _record(args, parser, model, config)
    choice = _choose(args, parser, record) if record is not None else None
    out = args.out if args.out is not None else args.run / "plots"
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = _curves(args.run, config, out, args.format)
        if record is not None:
            written += _inside(record, *choice, out, args.format)
    except OSError as err:  # a file where the folder should be, no permission, a full disk
        parser.error(f"{out}: cannot write the figures there ({err.strerror or err})")
    for path in written:
        print(path)
    return 0


def _check_options(args: argparse.Namespace, parser: Parser) -> None:
    """Refuse options that only mean something with others, before loading anything."""
    check_text_options(args, parser)
    if args.text is None and args.file is None:
        given = [f"--{n}" for n in ("quantity", "layer", "unit") if getattr(args, n) is not None]
        if given:
            verb = "chooses" if len(given) == 1 else "choose"
            parser.error(
                f"{', '.join(given)} {verb} what a text's figures show; give --text or --file"
            )


def _record(
    args: argparse.Namespace, parser: Parser, model: LanguageModel, config: RunConfig
) -> TextRecord | None:
    """The model read over --text or the --file excerpt; None when neither is given."""
    if args.text is None and args.file is None:
        return None
    try:
        return record_text(model, config.vocabulary, text_from_args(args, config.vocabulary))
    except (TextError, CorpusError) as err:
        parser.error(str(err))


def _choose(args: argparse.Namespace, parser: Parser, record: TextRecord) -> tuple[str, int, int]:
    """The quantity, layer and unit to draw: the options, checked, or their defaults."""
    quantity = (args.quantity or DEFAULT_QUANTITY).strip().lower()
    layer = args.layer or 0
    try:
        check_choice(record, quantity, layer, args.unit)
    except ValueError as err:
        parser.error(str(err))
    unit = args.unit if args.unit is not None else default_unit(record, quantity, layer)
    return quantity, layer, unit


def _curves(run: Path, config: RunConfig, out: Path, formats: tuple[str, ...]) -> list[Path]:
    records = read_metrics(run / METRICS)
    if not records:
        print(
            f"lstmkit: {run} has no training records ({METRICS}); no loss curves", file=sys.stderr
        )
        return []
    title = f"{config.model.cell} on {config.corpus.get('name', 'its corpus')}"
    paths = [out / f"loss.{fmt}" for fmt in formats]
    return plot_losses(records, paths, config.vocabulary.level, title)


def _inside(
    record: TextRecord, quantity: str, layer: int, unit: int, out: Path, formats: tuple[str, ...]
) -> list[Path]:
    def paths(stem: str) -> list[Path]:
        return [out / f"{stem}.{fmt}" for fmt in formats]

    written = plot_token_strip(
        record, paths(f"strip-{quantity}-layer{layer}-unit{unit}"), quantity, layer=layer, unit=unit
    )
    written += plot_unit_matrix(
        record, paths(f"matrix-{quantity}-layer{layer}"), quantity, layer=layer, unit=unit
    )
    if record.gates:
        written += plot_gate_saturation(record, paths("saturation"), layer=layer, unit=unit)
    return written
