"""The options that name a text for a model to read, shared by ``explore`` and ``plot``:
``--text TEXT``, or ``--file PATH_OR_CORPUS`` cut by ``--start`` and ``--tokens``."""

from __future__ import annotations

import argparse

from lstmkit._cli_args import Parser, non_negative_int, positive_int
from lstmkit.lm.record import MAX_TOKENS, text_excerpt
from lstmkit.lm.sources import BUILTIN_CORPORA
from lstmkit.lm.vocab import Vocabulary

EXCERPT_TOKENS = 400


def add_text_options(p: Parser, *, required: bool) -> None:
    source = p.add_mutually_exclusive_group(required=required)
    source.add_argument("--text", help="a text for the model to read, as it is")
    source.add_argument(
        "--file",
        metavar="PATH_OR_CORPUS",
        help="read an excerpt of a UTF-8 file, or of the validation text of a built-in "
        f"corpus ({', '.join(BUILTIN_CORPORA)})",
    )
    p.add_argument(
        "--start", type=non_negative_int, default=None, help="with --file: first token (0)"
    )
    p.add_argument(
        "--tokens",
        type=positive_int,
        default=None,
        help=f"with --file: tokens to read ({EXCERPT_TOKENS}, at most {MAX_TOKENS:,})",
    )


def check_text_options(args: argparse.Namespace, parser: Parser) -> None:
    """Refuse --start and --tokens without --file, before anything is loaded."""
    if args.file is None and (args.start is not None or args.tokens is not None):
        parser.error("--start and --tokens choose an excerpt of --file; give --file too")


def text_from_args(args: argparse.Namespace, vocabulary: Vocabulary) -> str | None:
    """The text the options name, or None when neither --text nor --file was given;
    TextError or CorpusError when the file or the excerpt cannot be had."""
    if args.file is None:
        return args.text
    start = args.start or 0
    tokens = args.tokens or EXCERPT_TOKENS
    return text_excerpt(args.file, vocabulary, start=start, tokens=tokens)
