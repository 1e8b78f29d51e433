"""The ``cells`` subcommand: every cell lstmkit can train, with its parameter count at one
size and the backends that run it, so the explainers' "an LSTM has four times the
parameters of a plain RNN" can be read off rather than taken on trust.

``add_cells`` registers it; the handler prints a table on stdout, or one JSON object with
``--json``. The counts are those of one layer built from the registry
(:data:`lstmkit.layers.named.MODERN_CELLS`), the same layer the tasks, the language model
and the forecaster train; of two layers for the stacks joined through their memory (the
depth-gated and the Grid LSTM), which the registry never builds with fewer.
"""

from __future__ import annotations

import argparse
import json

import torch

from lstmkit._cli_args import Parser, positive_int
from lstmkit.layers._memory_stack import STACK_BACKENDS, MemoryJoinedStack
from lstmkit.layers.backends import Backend, unsupported_reason
from lstmkit.layers.named import MODERN_CELLS, ModernCell

DEFAULT_SIZE = 128


def cell_rows(input_size: int, hidden: int) -> list[dict]:
    """One row per registered cell: its name, family, description, parameter count of its
    smallest stack (one layer, or ``min_layers``) at this size, that stack's layers, that
    count over the plain RNN's, and the backends that run it
    (``auto`` takes the fastest of them for the device)."""
    counts = {name: cell.parameter_count(input_size, hidden) for name, cell in MODERN_CELLS.items()}
    rnn = counts["rnn"]
    return [
        {
            "cell": name,
            "family": cell.family,
            "description": cell.description,
            "parameters": counts[name],
            "layers": cell.min_layers,
            "ratio_to_rnn": counts[name] / rnn,
            "backends": _backends(cell),
        }
        for name, cell in MODERN_CELLS.items()
    ]


def _backends(cell: ModernCell) -> list[str]:
    with torch.device("meta"):
        layer = cell.layer(4, 4, None)
    if isinstance(layer, MemoryJoinedStack):  # it chooses among its own backends
        return [b.value for b in STACK_BACKENDS if b is not Backend.AUTO]
    family = layer.family
    return [
        b.value for b in Backend if b is not Backend.AUTO and unsupported_reason(b, family) is None
    ]


def format_rows(rows: list[dict], input_size: int, hidden: int) -> str:
    lines = [
        f"input size {input_size} and hidden size {hidden}, one layer unless 'layers' says "
        "more; x RNN: parameters over the plain RNN's",
        f"{'cell':<14} {'parameters':>10} {'x RNN':>6} {'layers':>6}  {'backends':<30}  "
        "description",
    ]
    for r in rows:
        lines.append(
            f"{r['cell']:<14} {r['parameters']:>10,} {r['ratio_to_rnn']:>5.2f}x {r['layers']:>6}  "
            f"{','.join(r['backends']):<30}  {r['description']}"
        )
    return "\n".join(lines)


def add_cells(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "cells",
        help="list every cell with its parameter count and the backends that run it",
        description=(
            "List every cell lstmkit trains (the names --cell takes), with the parameters of "
            "one layer at --input and --hidden (two for the depth-gated and Grid LSTM, "
            "which need a layer below to mean anything), that count over the plain RNN's, and the "
            "backends that run it ('auto' takes the fastest of them)."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--input", type=positive_int, default=DEFAULT_SIZE, help=f"input size ({DEFAULT_SIZE})"
    )
    p.add_argument(
        "--hidden", type=positive_int, default=DEFAULT_SIZE, help=f"hidden size ({DEFAULT_SIZE})"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run)
    return p


def _run(args: argparse.Namespace, parser: Parser) -> int:
    rows = cell_rows(args.input, args.hidden)
    if args.json:
        print(json.dumps({"input_size": args.input, "hidden_size": args.hidden, "cells": rows}))
    else:
        print(format_rows(rows, args.input, args.hidden))
    return 0
