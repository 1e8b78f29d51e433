"""The language-model subcommands: ``train``, ``generate``, ``complete``, ``evaluate`` and
``facts``.

A run is a folder (``runs/<corpus>-<cell>`` by default) holding config.json, the latest
checkpoint, metrics.jsonl and loss.png (:mod:`lstmkit.lm.checkpoint`); every command but
``train`` takes one. Bad input of any kind (an empty, binary or non-UTF-8 text, a corpus
shorter than one batch, a damaged checkpoint or one from another model, a prime with
characters the model never saw) ends in one line, ``lstmkit: error: ...``, and exit 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from lstmkit._cli_args import (
    Parser,
    forget_bias,
    non_negative_int,
    one_of,
    positive_float,
    positive_int,
    seed,
)
from lstmkit.lm.batches import CorpusTooShortError
from lstmkit.lm.checkpoint import CheckpointError, load_model
from lstmkit.lm.corpus import CorpusError, read_text
from lstmkit.lm.decode import generate, next_words
from lstmkit.lm.evaluate import evaluate_ids
from lstmkit.lm.facts import DEFAULT_DISTANCES, fact_curve
from lstmkit.lm.model import LM_CELLS
from lstmkit.lm.sources import BUILTIN_CORPORA
from lstmkit.lm.stories import france_probes
from lstmkit.lm.train import (
    LEVEL_DEFAULTS,
    PRECISIONS,
    TrainConfig,
    TrainResult,
    resume_config,
    train,
)
from lstmkit.lm.vocab import LEVELS, UnknownTokensError
from lstmkit.plots import figure_paths, plot_fact_curves

_D = TrainConfig()
_USER_ERRORS = (CorpusError, CheckpointError, CorpusTooShortError, UnknownTokensError)
_FRANCE_PROMPT = "I grew up in France. My sister liked to play football. I speak fluent"

# option name -> (TrainConfig field, argparse type, help); defaults come from TrainConfig
_TRAIN_OPTIONS: tuple[tuple[str, str, object, str], ...] = (
    ("--valid", "valid", str, "validation file or folder (default: split the corpus)"),
    ("--level", "level", one_of(LEVELS, "level"), "char or word (default: by corpus)"),
    ("--cell", "cell", one_of(LM_CELLS, "cell"), f"one of {', '.join(LM_CELLS)}"),
    ("--hidden", "hidden_size", positive_int, "units per layer"),
    ("--layers", "num_layers", positive_int, "recurrent layers"),
    ("--embedding", "embedding_size", positive_int, "embedding width (default: hidden)"),
    ("--dropout", "dropout", float, "dropout on embeddings, between layers, before the head"),
    ("--forget-bias", "forget_bias", forget_bias, "initial LSTM forget-gate bias, or 'none'"),
    ("--batch-size", "batch_size", positive_int, "streams per batch, all processes together"),
    ("--seq-len", "seq_len", positive_int, "steps of backpropagation through time"),
    ("--lr", "learning_rate", positive_float, "peak AdamW learning rate"),
    ("--min-lr-ratio", "min_lr_ratio", float, "the cosine ends at lr times this"),
    ("--warmup", "warmup_steps", non_negative_int, "warmup steps"),
    ("--weight-decay", "weight_decay", float, "AdamW weight decay on matrices"),
    ("--clip", "grad_clip", float, "gradient-norm clip, 0 for none"),
    ("--steps", "steps", positive_int, "training steps (default: as many as --minutes allow)"),
    ("--minutes", "minutes", positive_float, "time budget in minutes"),
    ("--eval-every", "eval_every", positive_int, "steps between evaluations and checkpoints"),
    ("--eval-tokens", "eval_tokens", positive_int, "validation tokens per interim evaluation"),
    ("--max-vocab", "max_vocab", positive_int, "word level: most frequent words kept"),
    ("--seed", "seed", seed, "seeds initialisation, data order and dropout"),
    ("--device", "device", one_of(("auto", "cpu", "cuda"), "device"), "auto, cpu or cuda"),
    (
        "--precision",
        "precision",
        one_of(PRECISIONS, "precision"),
        "32, or bf16-mixed: float32 weights, the forward in bfloat16 under autocast",
    ),
)


# -- train ---------------------------------------------------------------------------------------


def add_train(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "train",
        help="train a language model on a text, a folder or a built-in corpus",
        description=(
            "Train a language model with truncated BPTT, AdamW, warmup and cosine decay. "
            "CORPUS is a built-in corpus (stories: generated English-like stories that carry "
            "facts over long distances, read by words; stdlib: the Python standard library's "
            "source, read by characters) or a UTF-8 text file or folder (read by characters). "
            "Checkpoints, metrics.jsonl and loss.png go to the run folder; --resume RUN "
            "continues a run exactly where it stopped. Runs under torchrun as well."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "corpus",
        nargs="?",
        default=None,
        metavar="CORPUS",
        help=f"{' or '.join(BUILTIN_CORPORA)} or a path (default {_D.corpus})",
    )
    for flag, name, kind, text in _TRAIN_OPTIONS:
        default = getattr(_D, name)
        shown = f" (default {default})" if default is not None else ""
        if name in LEVEL_DEFAULTS["char"]:
            by_level = LEVEL_DEFAULTS["char"][name], LEVEL_DEFAULTS["word"][name]
            shown = " (default {} for characters, {} for words)".format(*by_level)
        metavar = flag.lstrip("-").upper().replace("-", "_")
        p.add_argument(flag, dest=name, type=kind, default=None, metavar=metavar, help=text + shown)
    p.add_argument("--tie-weights", action="store_true", default=None, help="tie embedding/head")
    p.add_argument("--out", type=Path, default=None, help="run folder (default runs/CORPUS-CELL)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN", help="continue RUN")
    p.add_argument("--samples", type=non_negative_int, default=2, help="samples printed at the end")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_train)
    return p


def _given_settings(args: argparse.Namespace) -> dict:
    names = [name for _, name, _, _ in _TRAIN_OPTIONS] + ["tie_weights"]
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.corpus is not None:
        given["corpus"] = args.corpus
    return given


def _run_train(args: argparse.Namespace, parser: Parser) -> int:
    given = _given_settings(args)
    try:
        if args.resume is not None:
            if given or args.out is not None:
                flags = ", ".join(sorted(given)) or "--out"
                parser.error(
                    f"--resume continues a run with its saved settings; drop {flags} "
                    "(start a new run to change them)"
                )
            config, run = resume_config(args.resume), args.resume
        else:
            config = TrainConfig(**given)
            run = args.out or _new_run_folder(config)
            if (run / "config.json").exists():
                parser.error(f"{run} already holds a run; pass --resume {run} or another --out")
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    try:
        result = train(config, run, resume=args.resume is not None, progress=not args.quiet)
    except _USER_ERRORS as err:
        parser.error(str(err))
    if _is_main_process():
        _report(result, config, args.samples)
    return 0


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def _new_run_folder(config: TrainConfig) -> Path:
    """runs/<corpus>-<cell>, then -2, -3, ... so that a new run never overwrites one."""
    name = Path(config.corpus).stem if config.corpus not in BUILTIN_CORPORA else config.corpus
    base = Path("runs") / f"{name}-{config.cell}"
    run, k = base, 2
    while run.exists():
        run, k = base.with_name(f"{base.name}-{k}"), k + 1
    return run


def _report(result: TrainResult, config: TrainConfig, samples: int) -> None:
    p = result.position
    print(
        f"trained {p.step:,} steps, {p.tokens:,} tokens in {p.seconds:.0f} s "
        f"({p.tokens / max(p.seconds, 1e-9):,.0f} tokens/s)"
    )
    print(f"validation: {result.valid.summary()}")
    model, vocab = result.model.eval(), result.vocabulary
    generator = torch.Generator().manual_seed(config.seed)
    length = 60 if vocab.level == "word" else 300
    for k in range(samples):
        print(f"\n--- sample {k + 1} (temperature 0.8) ---")
        for piece in generate(
            model, vocab, "", length=length, temperature=0.8, generator=generator
        ):
            print(piece, end="")
        print()
    if config.corpus == "stories":
        # read after a story about another country, as every story is read in training
        before = next(p for p in france_probes(12, 10, seed=0) if p.answer != "French")
        context = f"{before.prompt} {before.answer}.\n\n"
        heading = f'next words after "{_FRANCE_PROMPT}" (after a story answered {before.answer})'
        print(f"\n--- {heading} ---")
        for word, prob in next_words(model, vocab, context + _FRANCE_PROMPT, count=3):
            print(f"  {word:<12} {prob:6.1%}")
        score = fact_curve(model, vocab, (20,), probes=50)[0]
        print(
            f"  over {score.probes} new stories with the country 20 words back: the right "
            f"language first in {score.accuracy:.0%}, mean probability {score.confidence:.0%}"
        )
    print(f"\nrun saved in {result.run}/ (config.json, checkpoint/, metrics.jsonl, loss.png)")
    print(f'next: lstmkit generate {result.run}  |  lstmkit complete {result.run} "TEXT"')
    print(f'      lstmkit explore {result.run} --text "TEXT"   (its gates and states, as a page)')


# -- generate, complete, evaluate, facts -------------------------------------------------------


def _add_run_argument(p: Parser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="a run folder made by 'lstmkit train'")


def _load(parser: Parser, run: Path):
    try:
        return load_model(run)
    except CheckpointError as err:
        parser.error(str(err))


def add_generate(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "generate",
        help="sample text from a trained model",
        description="Sample text from RUN's model, printed as it comes.",
        allow_abbrev=False,
    )
    _add_run_argument(p)
    p.add_argument("--prime", default="", help="text to start from (default: a new line)")
    p.add_argument("--length", type=positive_int, default=500, help="tokens to sample (500)")
    p.add_argument("--temperature", type=positive_float, default=0.8, help="(default 0.8)")
    p.add_argument("--top-k", type=positive_int, default=None, help="keep the K likeliest")
    p.add_argument("--top-p", type=positive_float, default=None, help="nucleus mass in (0, 1]")
    p.add_argument("--seed", type=seed, default=0, help="seeds the sampling (0)")
    p.set_defaults(handler=_run_generate)
    return p


def _run_generate(args: argparse.Namespace, parser: Parser) -> int:
    model, config = _load(parser, args.run)
    generator = torch.Generator().manual_seed(args.seed)
    try:
        pieces = generate(
            model,
            config.vocabulary,
            args.prime,
            length=args.length,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            generator=generator,
        )
    except (UnknownTokensError, ValueError) as err:
        parser.error(str(err))
    sys.stdout.write(args.prime)
    for piece in pieces:
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0


def add_complete(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "complete",
        help="the most likely next words after a text, with probabilities",
        description="The most likely next words after TEXT under RUN's model.",
        allow_abbrev=False,
    )
    _add_run_argument(p)
    p.add_argument("text", metavar="TEXT", help="the text to complete")
    p.add_argument("--count", type=positive_int, default=5, help="words to show (5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_complete)
    return p


def _run_complete(args: argparse.Namespace, parser: Parser) -> int:
    model, config = _load(parser, args.run)
    try:
        words = next_words(model, config.vocabulary, args.text, count=args.count)
    except (UnknownTokensError, ValueError) as err:
        parser.error(str(err))
    if args.json:
        print(json.dumps({"text": args.text, "next_words": [[w, p] for w, p in words]}))
        return 0
    print(f"{args.text} ...")
    for word, prob in words:
        print(f"  {word:<16} {prob:7.2%}")
    return 0


def add_evaluate(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "evaluate",
        help="loss and bits per character (or perplexity) of a model on a text",
        description=(
            "Loss of RUN's model on FILE: bits per character for character models, "
            "perplexity for word models. Characters or words the model never saw count as "
            "its unknown token."
        ),
        allow_abbrev=False,
    )
    _add_run_argument(p)
    p.add_argument("file", type=Path, metavar="FILE", help="a UTF-8 text file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_evaluate)
    return p


def _run_evaluate(args: argparse.Namespace, parser: Parser) -> int:
    model, config = _load(parser, args.run)
    try:
        text = read_text(args.file)
    except CorpusError as err:
        parser.error(str(err))
    vocab = config.vocabulary
    unknown = vocab.unknown_tokens(text)
    ids = torch.tensor(vocab.encode(text, unknown="unk"), dtype=torch.long)
    if ids.numel() < 2:
        parser.error(f"{args.file}: needs at least 2 {vocab.level}s to evaluate")
    result = evaluate_ids(model, ids, vocab.level)
    if args.json:
        print(json.dumps({"file": str(args.file), **result.to_json(), "unknown": len(unknown)}))
        return 0
    print(f"{args.file}: {result.summary()}")
    if unknown:
        print(f"  {len(unknown)} distinct {vocab.level}s not in the vocabulary, read as <unk>")
    return 0


def add_facts(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "facts",
        help="does a model carry 'I grew up in France' to 'I speak fluent ___'?",
        description=(
            "For each distance, new stories with the country that many words before the "
            "question: accuracy (the right language is the most likely next word) and "
            "confidence (its mean probability), for each RUN; a table and a plot."
        ),
        allow_abbrev=False,
    )
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN", help="runs trained on stories")
    p.add_argument(
        "--distances",
        type=_distances,
        default=DEFAULT_DISTANCES,
        help=f"comma list (default {','.join(map(str, DEFAULT_DISTANCES))})",
    )
    p.add_argument("--probes", type=positive_int, default=100, help="stories per distance (100)")
    p.add_argument("--out", type=Path, default=None, help="PNG of the curves")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_run_facts)
    return p


def _distances(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers like 5,10,20, got {text!r}")
    return values


def _run_facts(args: argparse.Namespace, parser: Parser) -> int:
    try:
        if args.out is not None:
            figure_paths(args.out)  # a .pdf refused now, not after the probes
    except ValueError as err:
        parser.error(str(err))
    curves = {}
    for run in args.runs:
        model, config = _load(parser, run)
        if config.training.get("corpus") != "stories":
            parser.error(f"{run}: trained on {config.training.get('corpus')!r}, not on stories")
        label = f"{config.model.cell} ({run.name})"
        try:
            curves[label] = fact_curve(model, config.vocabulary, args.distances, probes=args.probes)
        except UnknownTokensError as err:
            parser.error(str(err))
    if args.out is not None:
        plot_fact_curves(curves, args.out)
    if args.json:
        print(json.dumps({k: [s.to_json() for s in v] for k, v in curves.items()}))
        return 0
    print(f"{'model':<28} {'distance':>8} {'accuracy':>9} {'confidence':>11}")
    for label, scores in curves.items():
        for s in scores:
            print(f"{label:<28} {s.distance:>8} {s.accuracy:>9.2f} {s.confidence:>11.2f}")
    if args.out is not None:
        print(f"plot: {args.out}")
    return 0
