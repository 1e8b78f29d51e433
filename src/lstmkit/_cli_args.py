"""Pieces every ``lstmkit`` subcommand shares: the one-line-error parser and argument types.

Each type raises ``argparse.ArgumentTypeError`` saying what it expected, which the parser
turns into ``lstmkit: error: argument --x: expected ..., got ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from typing import NoReturn

import torch

PROG = "lstmkit"


class _WholeNamesFormatter(argparse.HelpFormatter):
    """argparse's help layout, but a line breaks only at a space or after a comma:
    textwrap's default breaks after hyphens and inside long words, which split cell names
    such as ``gru-cho`` and ``depth-gated`` in the comma lists of names over two lines."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap_whole_names(text, width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n".join(indent + line for line in wrap_whole_names(text, width - len(indent)))


def wrap_whole_names(text: str, width: int) -> list[str]:
    """Greedy line filling of ``text``'s words; a word wider than a line (a comma list
    without spaces) may break after any of its commas, nowhere else."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        pieces = re.findall(r"[^,]*,|[^,]+$", word) if len(word) > width else [word]
        for k, piece in enumerate(pieces):
            joined = line + ("" if k > 0 or not line else " ") + piece
            if line and len(joined) > width:
                lines.append(line)
                line = piece
            else:
                line = joined
    if line:
        lines.append(line)
    return lines


class Parser(argparse.ArgumentParser):
    """argparse, except that an error is one line on stderr and exit status 2, and help
    text keeps hyphenated names whole."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _WholeNamesFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())  # argparse messages can wrap; keep one line
        self.exit(2, f"{PROG}: error: {message}\n")


def one_thread_unless_asked() -> None:
    """Run torch on one thread unless OMP_NUM_THREADS says otherwise.

    The demo's and the experiments' matrices are tiny (tens of units): extra intra-op
    threads only add synchronisation, and on a busy machine torch's spinning OpenMP threads
    made a 10-second demo take minutes.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def _int_at_least(text: str, least: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a non-negative integer")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}")
    return value


def forget_bias(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number or 'none', got {text!r}")
    return value


def one_of(choices: Sequence[str], what: str) -> Callable[[str], str]:
    """A type accepting one name from ``choices`` (case-insensitive)."""

    def parse(text: str) -> str:
        name = text.strip().lower()
        if name not in choices:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {text!r}; expected one of {', '.join(choices)}"
            )
        return name

    return parse


def list_of(choices: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    """A type accepting a comma-separated list of names from ``choices``, repeats dropped."""

    def parse(text: str) -> tuple[str, ...]:
        names = [name.strip().lower() for name in text.split(",") if name.strip()]
        expected = f"a comma-separated list of {', '.join(choices)}"
        if not names:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        for name in names:
            if name not in choices:
                raise argparse.ArgumentTypeError(f"unknown {what} {name!r}; expected {expected}")
        return tuple(dict.fromkeys(names))  # drop repeats, keep the order

    return parse
