"""The ``lstmkit`` command line.

    lstmkit demo [--lag N] [--steps N] [--hidden N] [--batch-size N] [--seed N]
                 [--cells lstm,rnn,gru] [--forget-bias B|none] [--quiet]
    lstmkit task NAME [--cell CELL] [--length T] [--hidden H] [--seed S] [--budget SECONDS]
                 [--max-sequences N] [--json]
    lstmkit horizon --task NAME --cells lstm,gru,rnn,... [--seeds K] [--max-length T]
    lstmkit gradients [--cells rnn,lstm,gru] [--task NAME] [--length T] [--out PNG]
    lstmkit replicate TASK [--length T] [--trials K] [--seeds S] [--max-sequences N]
    lstmkit train [CORPUS] [--cell C] [--hidden H] [--layers L] [--minutes M | --steps N]
                  [--out RUN | --resume RUN] ...
    lstmkit generate RUN [--prime TEXT] [--length N] [--temperature T] [--top-k K] [--top-p P]
    lstmkit complete RUN TEXT [--count K] [--json]
    lstmkit evaluate RUN FILE [--json]
    lstmkit facts RUN [RUN ...] [--distances 5,10,20] [--out PNG]
    lstmkit explore RUN (--text TEXT | --file PATH [--start N] [--tokens N])
                    [--select START:STOP] [--out HTML] [--serve]
    lstmkit game [--out HTML] [--seed S] [--steps N]
    lstmkit plot RUN [--text TEXT | --file PATH [--start N] [--tokens N]] [--quantity Q]
                 [--layer L] [--unit U] [--out DIR] [--format png,svg]
    lstmkit forecast fit DATA [--target COL] [--horizon H] [--season M] [--cell C] ...
    lstmkit forecast predict RUN [--horizon H] [--csv FILE] [--plot PNG]
    lstmkit forecast resume RUN
    lstmkit forecast backtest DATA [--folds K] [--cells lstm,gru] ...
    lstmkit bench [--device cpu|cuda] [--sizes fastrnns,streaming,...] [--cells C,...]
                  [--backends B,...] [--dtype D,...] [--repeats N] [--quick] [--json]
    lstmkit cells [--input I] [--hidden H] [--json]
    lstmkit compare [--cells C,...] [--tasks adding,temporal-order,lm] [--trials K] [--seeds S]
                    [--hidden H,...] [--lr-range MIN,MAX] [--length T] [--max-sequences N]
                    [--lm-steps N] [--corpus TEXT] [--valid FILE] [--out DIR] [--json]

The experiment commands live in ``_cli_experiments``, the language-model ones in
``_cli_lm``, the pages in ``_cli_viz``, the figures in ``_cli_plot``, forecasting in
``_cli_forecast``, the speed benchmark in ``_cli_bench``, the cell list in ``_cli_cells``, the
comparison of cells in ``_cli_compare``;
the options that name a text in ``_cli_text``, argument types shared by all commands in
``_cli_args``.

Bad input prints one line, ``lstmkit: error: <what was wrong and what was expected>``, to
stderr and exits with status 2: no traceback and no usage dump, so the line that matters is
the only one. ``lstmkit`` without a subcommand prints the help and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from lstmkit import (
    _cli_bench,
    _cli_cells,
    _cli_compare,
    _cli_experiments,
    _cli_forecast,
    _cli_lm,
    _cli_plot,
    _cli_viz,
    demo,
)
from lstmkit._cli_args import (
    PROG,
    Parser,
    forget_bias,
    list_of,
    one_thread_unless_asked,
    positive_int,
    seed,
)

# -- parser ---------------------------------------------------------------------------------


def _add_demo(subparsers: argparse._SubParsersAction) -> Parser:
    d = demo.DemoConfig()
    p = subparsers.add_parser(
        "demo",
        help="train an LSTM and a plain RNN on a long time lag and compare",
        description=(
            "Train each cell on the long-lag task of Hochreiter & Schmidhuber (1997, Exp. 2): "
            "a class symbol, LAG random distractors, then name the class. Prints test "
            "accuracy, chance level and whether it is solved "
            f"(test accuracy >= {demo.SOLVED_ACCURACY}). Progress goes to stderr, the table "
            "to stdout."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--lag", type=positive_int, default=d.lag, help=f"distractor steps (default {d.lag})"
    )
    p.add_argument(
        "--steps", type=positive_int, default=d.steps, help=f"Adam updates (default {d.steps})"
    )
    p.add_argument(
        "--hidden", type=positive_int, default=d.hidden, help=f"hidden size (default {d.hidden})"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=d.batch_size,
        help=f"sequences per update (default {d.batch_size})",
    )
    p.add_argument(
        "--seed", type=seed, default=d.seed, help=f"seeds init and data (default {d.seed})"
    )
    p.add_argument(
        "--cells",
        type=list_of(demo.CELLS, "cell"),
        default=d.cells,
        help=f"comma list from {{{','.join(demo.CELLS)}}} (default {','.join(d.cells)})",
    )
    p.add_argument(
        "--forget-bias",
        type=forget_bias,
        default=d.forget_bias,
        metavar="B",
        help=f"the LSTM's initial forget-gate bias, or 'none' for torch's init "
        f"(default {d.forget_bias})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_demo)
    return p


def build_parser() -> tuple[Parser, dict[str, Parser]]:
    """The top-level parser and its subcommand parsers by name."""
    parser = Parser(
        prog=PROG,
        description="lstmkit: LSTM networks as the literature writes them, on PyTorch.",
        allow_abbrev=False,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {
        "demo": _add_demo(subparsers),
        "task": _cli_experiments.add_task(subparsers),
        "horizon": _cli_experiments.add_horizon(subparsers),
        "gradients": _cli_experiments.add_gradients(subparsers),
        "replicate": _cli_experiments.add_replicate(subparsers),
        "train": _cli_lm.add_train(subparsers),
        "generate": _cli_lm.add_generate(subparsers),
        "complete": _cli_lm.add_complete(subparsers),
        "evaluate": _cli_lm.add_evaluate(subparsers),
        "facts": _cli_lm.add_facts(subparsers),
        "explore": _cli_viz.add_explore(subparsers),
        "game": _cli_viz.add_game(subparsers),
        "plot": _cli_plot.add_plot(subparsers),
        "forecast": _cli_forecast.add_forecast(subparsers),
        "bench": _cli_bench.add_bench(subparsers),
        "cells": _cli_cells.add_cells(subparsers),
        "compare": _cli_compare.add_compare(subparsers),
    }
    return parser, commands


# -- commands -------------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace, parser: Parser) -> int:
    cfg = demo.DemoConfig(
        lag=args.lag,
        steps=args.steps,
        hidden=args.hidden,
        batch_size=args.batch_size,
        seed=args.seed,
        cells=args.cells,
        forget_bias=args.forget_bias,
        quiet=args.quiet,
    )
    try:
        demo.check_config(cfg)
    except ValueError as err:
        parser.error(str(err))
    one_thread_unless_asked()
    demo.run_demo(cfg)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (bad input exits 2 via SystemExit)."""
    parser, commands = build_parser()
    args, extras = parser.parse_known_args(argv)
    command = commands.get(args.command) if args.command else None
    if extras:
        owner = command or parser
        owner.error(
            f"unrecognized arguments: {' '.join(extras)}; see '{owner.prog} --help' for the options"
        )
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace, Parser], int] = args.handler
    try:
        return handler(args, command)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
