"""The ``lstmkit`` command line.

    lstmkit demo [--lag N] [--steps N] [--hidden N] [--batch-size N] [--seed N]
                 [--cells lstm,rnn,gru] [--forget-bias B|none] [--quiet]

Bad input prints one line, ``lstmkit: error: <what was wrong and what was expected>``, to
stderr and exits with status 2: no traceback and no usage dump, so the line that matters is
the only one. ``lstmkit`` without a subcommand prints the help and exits with status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import torch

from lstmkit import demo

PROG = "lstmkit"


class _Parser(argparse.ArgumentParser):
    """argparse, except that an error is one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse messages can wrap; keep one line
        self.exit(2, f"{PROG}: error: {message}\n")


# -- argument types: each raises ArgumentTypeError saying what it expected -------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}")
    return value


def _cells(text: str) -> tuple[str, ...]:
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    expected = f"a comma-separated list of {', '.join(demo.CELLS)}"
    if not names:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    for name in names:
        if name not in demo.CELLS:
            raise argparse.ArgumentTypeError(f"unknown cell {name!r}; expected {expected}")
    return tuple(dict.fromkeys(names))  # drop repeats, keep the order


def _forget_bias(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number or 'none', got {text!r}")
    return value


# -- parser ---------------------------------------------------------------------------------


def _add_demo(subparsers: argparse._SubParsersAction) -> _Parser:
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
        "--lag", type=_positive_int, default=d.lag, help=f"distractor steps (default {d.lag})"
    )
    p.add_argument(
        "--steps", type=_positive_int, default=d.steps, help=f"Adam updates (default {d.steps})"
    )
    p.add_argument(
        "--hidden", type=_positive_int, default=d.hidden, help=f"hidden size (default {d.hidden})"
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=d.batch_size,
        help=f"sequences per update (default {d.batch_size})",
    )
    p.add_argument(
        "--seed", type=_seed, default=d.seed, help=f"seeds init and data (default {d.seed})"
    )
    p.add_argument(
        "--cells",
        type=_cells,
        default=d.cells,
        help=f"comma list from {{{','.join(demo.CELLS)}}} (default {','.join(d.cells)})",
    )
    p.add_argument(
        "--forget-bias",
        type=_forget_bias,
        default=d.forget_bias,
        metavar="B",
        help=f"the LSTM's initial forget-gate bias, or 'none' for torch's init "
        f"(default {d.forget_bias})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_demo)
    return p


def build_parser() -> tuple[_Parser, dict[str, _Parser]]:
    """The top-level parser and its subcommand parsers by name."""
    parser = _Parser(
        prog=PROG,
        description="lstmkit: LSTM networks as the literature writes them, on PyTorch.",
        allow_abbrev=False,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = {"demo": _add_demo(subparsers)}
    return parser, commands


# -- commands -------------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace, parser: _Parser) -> int:
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
    if "OMP_NUM_THREADS" not in os.environ:
        # The demo's matrices are tiny (32 x 32): extra intra-op threads only add
        # synchronisation, and on a busy machine torch's spinning OpenMP threads made a
        # 10-second run take minutes. One thread unless the user asks otherwise.
        torch.set_num_threads(1)
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
    handler: Callable[[argparse.Namespace, _Parser], int] = args.handler
    try:
        return handler(args, command)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
