"""The ``bench`` subcommand: every cell and backend timed against torch.nn.LSTM.

``add_bench`` registers it on the top-level parser; its handler builds a
:class:`~lstmkit.bench.BenchConfig` (refusing bad values in one line through
``parser.error``), runs :func:`~lstmkit.bench.run_bench` and prints a table on stdout, or one
JSON object with ``--json``. The progress bar goes to stderr either way, unless ``--quiet``.

``--cells`` takes names of the registry (``lstmkit.layers.named.MODERN_CELLS``) and
``rnn-relu``, or ``all`` for every one of them; without it, the seven cells the fast
kernels run (:data:`~lstmkit.bench.DEFAULT_CELLS`), a few minutes in all.

``--dtype`` takes one dtype or a comma list (``--dtype float32,bfloat16``): every candidate
is then timed in each, in the same rounds, and each row of a later dtype gets its time as a
ratio to the same cell and backend in the first.

Unlike the experiment commands this one leaves torch's thread count alone unless
``--threads`` sets it: a benchmark should measure what a user gets by default, and report it.
"""

from __future__ import annotations

import argparse
import json

import torch

from lstmkit._cli_args import Parser, list_of, non_negative_int, one_of, positive_int
from lstmkit.bench import (
    ALL_CELLS,
    BACKEND_NAMES,
    CELL_NAMES,
    DEFAULT_CELLS,
    DTYPES,
    PRESET_NAMES,
    BenchConfig,
    check_dtypes,
    format_table,
    preset_sizes,
    run_bench,
    to_json,
)

_D = BenchConfig()


def dtype_list(text: str) -> tuple[str, ...]:
    """``--dtype``: a comma list of dtypes, in order; unlike ``--cells`` a repeat is refused,
    not dropped (:func:`~lstmkit.bench.run.check_dtypes` says why)."""
    names = tuple(name.strip().lower() for name in text.split(",") if name.strip())
    try:
        check_dtypes(names)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return names


_named_cells = list_of((*CELL_NAMES, ALL_CELLS), "cell")


def cell_list(text: str) -> tuple[str, ...]:
    """``--cells``: a comma list of cell names, repeats dropped; ``all`` anywhere in it
    stands for every cell, in :data:`~lstmkit.bench.CELL_NAMES`' order."""
    names = _named_cells(text)
    return CELL_NAMES if ALL_CELLS in names else names


def add_bench(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "bench",
        help="time every cell and backend against torch.nn.LSTM, in the same run",
        description=(
            "Time forward and forward+backward of every cell on every backend that can run "
            "it (and on 'auto', shown with what it picks), of torch.nn.LSTM and of a Python "
            "loop over torch.nn.LSTMCell, on the sizes of the presets. Reports median "
            "milliseconds, milliseconds per step (forward), the ratio to torch.nn.LSTM and "
            "GFLOP/s. With several dtypes (--dtype float32,bfloat16) every candidate runs in "
            "each, all taking turns in the same rounds; the ratio to torch.nn.LSTM stays within "
            "a dtype, and each row of a later dtype adds its time / the same cell and "
            "backend's time in the first dtype. Forward runs in eval mode under "
            "torch.no_grad(); forward+backward backpropagates a random output gradient. "
            "FLOPs per step are 2*B*E, E the entries of the layer's weight matrices (its "
            "parameters of two or more dimensions: weight_ih, weight_hh and extras such as "
            "full gate recurrence's or the depth gate's; biases, peepholes and other vectors "
            "left out), which is 2*B*G*H*(I+H) for G gate blocks (LSTM 4, CIFG and "
            "lstm-noforget 3, GRU 3, RNN 1); forward+backward counts 3x the forward. The "
            "cells are the registry's (lstmkit cells) and rnn-relu, each built as the "
            "registry builds it: the stacks joined through their memory (depth-gated, "
            "grid-lstm) with two layers, timed whole."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--device",
        type=one_of(("cpu", "cuda"), "device"),
        default=_D.device,
        help=f"cpu or cuda ({_D.device})",
    )
    p.add_argument(
        "--cells",
        type=cell_list,
        default=_D.cells,
        metavar="CELLS",
        help=f"comma list from {{{','.join(CELL_NAMES)}}}, or '{ALL_CELLS}' for every one "
        f"(default: {','.join(DEFAULT_CELLS)})",
    )
    p.add_argument(
        "--backends",
        type=list_of(BACKEND_NAMES, "backend"),
        default=_D.backends,
        help=f"comma list from {{{','.join(BACKEND_NAMES)}}} (all); a cell runs on those "
        "that support it",
    )
    sizes = p.add_mutually_exclusive_group()
    sizes.add_argument(
        "--sizes",
        type=list_of(PRESET_NAMES, "size preset"),
        default=("default",),
        metavar="PRESETS",
        help=f"comma list from {{{','.join(PRESET_NAMES)}}} (default: fastrnns and one "
        "streaming point, a few minutes on 2 CPU cores)",
    )
    sizes.add_argument(
        "--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement"
    )
    p.add_argument(
        "--dtype",
        type=dtype_list,
        default=_D.dtypes,
        metavar="DTYPES",
        help=f"comma list from {{{','.join(DTYPES)}}}, each once ({','.join(_D.dtypes)}); "
        "with several, the later ones' times are also given as ratios to the first's",
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=_D.repeats,
        metavar="N",
        help=f"timed rounds, the median reported ({_D.repeats})",
    )
    p.add_argument(
        "--warmup",
        type=non_negative_int,
        default=_D.warmup,
        metavar="N",
        help=f"untimed rounds first ({_D.warmup})",
    )
    p.add_argument("--forward-only", action="store_true", help="skip forward+backward")
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="torch.set_num_threads(N) (default: torch's own, reported with the figures)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_bench)
    return p


def _run_bench(args: argparse.Namespace, parser: Parser) -> int:
    try:
        config = BenchConfig(
            sizes=preset_sizes(("quick",) if args.quick else args.sizes),
            cells=args.cells,
            backends=args.backends,
            device=args.device,
            dtypes=args.dtype,
            repeats=args.repeats,
            warmup=args.warmup,
            forward_only=args.forward_only,
            progress=not args.quiet,
        )
    except ValueError as err:
        parser.error(str(err))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    rows = run_bench(config)
    if args.json:
        print(json.dumps(to_json(rows, config)))
    else:
        print(format_table(rows, config))
    return 0
