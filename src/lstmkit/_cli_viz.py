"""The pages: ``explore`` (what a trained model did over a text) and ``game`` (the player
is the gates).

Both write one self-contained HTML file that opens from disk in any browser. Bad input
(a folder that is not a run, an empty text, tokens the model never saw, a span outside the
text) ends in one line, ``lstmkit: error: ...``, and exit 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lstmkit._cli_args import Parser, non_negative_int, positive_int, seed
from lstmkit._cli_text import add_text_options, check_text_options, text_from_args
from lstmkit.lm.checkpoint import CheckpointError
from lstmkit.lm.corpus import CorpusError
from lstmkit.lm.record import TextError

_USER_ERRORS = (CheckpointError, CorpusError, TextError)


def span(text: str) -> tuple[int, int]:
    """START:STOP, token indices, STOP exclusive."""
    parts = text.split(":")
    try:
        start, stop = (int(p) for p in parts)
    except ValueError:
        start = stop = -1
    if len(parts) != 2 or not 0 <= start < stop:
        raise argparse.ArgumentTypeError(
            f"expected START:STOP, token indices with 0 <= START < STOP, got {text!r}"
        )
    return start, stop


# -- explore -------------------------------------------------------------------------------------


def add_explore(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "explore",
        help="write an interactive page of a model's gates and states over a text",
        description=(
            "Read a text with the model of RUN and write one self-contained HTML page "
            "(no network; open it from disk) that shows the cell diagram with this step's "
            "numbers, the text coloured by any unit's gate or state, all units against time, "
            "the units that best track a selected span, gate saturation, and the model's "
            "next-token predictions."
        ),
        allow_abbrev=False,
    )
    p.add_argument("run", type=Path, metavar="RUN", help="a run folder of 'lstmkit train'")
    add_text_options(p, required=True)
    p.add_argument(
        "--select",
        type=span,
        metavar="START:STOP",
        help="tokens to select when the page opens; it ranks the units that track them",
    )
    p.add_argument(
        "--top", type=positive_int, default=5, help="next-token predictions per step (default 5)"
    )
    p.add_argument("--out", type=Path, help="the page to write (default RUN/explore.html)")
    p.add_argument(
        "--serve", action="store_true", help="then serve it on 127.0.0.1 and open a browser"
    )
    p.add_argument(
        "--port", type=non_negative_int, default=0, help="with --serve (default: any free port)"
    )
    p.set_defaults(handler=_run_explore)
    return p


def _run_explore(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit.lm.checkpoint import load_config
    from lstmkit.viz.explorer import build_explorer
    from lstmkit.viz.serve import serve_page

    check_text_options(args, parser)
    out = args.out or args.run / "explore.html"
    try:
        text = text_from_args(args, load_config(args.run).vocabulary)
        path, record = build_explorer(args.run, text, out, selection=args.select, top=args.top)
    except (*_USER_ERRORS, ValueError) as err:  # ValueError: a --select outside the text
        parser.error(str(err))
    except OSError as err:
        parser.error(f"cannot write {out}: {err.strerror or err}")
    size = path.stat().st_size / 1e6
    print(
        f"wrote {path} ({size:.1f} MB): {len(record.tokens):,} tokens, {record.num_layers} "
        f"layer(s) x {record.num_units} units of {record.cell}"
    )
    if args.serve:
        serve_page(path, args.port)
    else:
        print(f"open it in a browser: {path.resolve().as_uri()}")
    return 0


# -- game ----------------------------------------------------------------------------------------


def add_game(subparsers: argparse._SubParsersAction) -> Parser:
    from lstmkit.viz.game import DEFAULT_STEPS

    p = subparsers.add_parser(
        "game",
        help="write the LSTM game: you are the gates, carry the facts",
        description=(
            "Write a browser game (one HTML file, no network) in which you set the forget, "
            "input and output gates of a few memory cells to carry facts across a stream "
            "of words. It first trains a small lstmkit LSTM on the game's streams, so that "
            "after each level the page shows how the model set its gates beside yours."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--out", default="game.html", help="an .html file, or a folder for game.html (game.html)"
    )
    p.add_argument("--seed", type=seed, default=0, help="seeds the levels and the model")
    p.add_argument(
        "--steps",
        type=positive_int,
        default=DEFAULT_STEPS,
        help=f"training steps of the model (default {DEFAULT_STEPS})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_game)
    return p


def _run_game(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit._cli_args import one_thread_unless_asked
    from lstmkit.viz.game import build_game

    one_thread_unless_asked()  # a model of a few units: threads only add overhead
    # Path() drops a trailing slash, the only sign that a folder not made yet was meant
    out = Path(args.out) / "game.html" if args.out.endswith(("/", "\\")) else Path(args.out)
    try:
        path = build_game(out, seed=args.seed, steps=args.steps, progress=not args.quiet)
    except ValueError as err:
        parser.error(str(err))
    except OSError as err:
        parser.error(f"cannot write {out}: {err.strerror or err}")
    print(f"wrote {path}; open it in a browser: {Path(path).resolve().as_uri()}")
    return 0
