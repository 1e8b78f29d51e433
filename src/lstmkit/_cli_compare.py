"""The ``compare`` subcommand: cells compared on tasks after Greff et al. (2015), with a
small random search over the learning rate and hidden size and several seeds per setting
(:mod:`lstmkit.experiments.compare`).

``add_compare`` registers it. The handler checks every option before any training (one
line through ``parser.error``), shows one progress bar over all runs on stderr, prints the
tables on stdout (or one JSON object with ``--json``) and writes table.txt, results.json
and two figures per task into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from lstmkit._atomic import write_atomic
from lstmkit._cli_args import (
    Parser,
    list_of,
    one_of,
    one_thread_unless_asked,
    positive_int,
    seed,
)
from lstmkit.experiments.compare import (
    LEVELS,
    LM_TASK,
    TASK_CHOICES,
    CompareConfig,
    Comparison,
    check_lm_corpus,
    format_tables,
    metric_name,
    task_title,
)
from lstmkit.layers.named import MODERN_CELLS

_D = CompareConfig()
_CELLS = tuple(MODERN_CELLS)


def _hidden_list(text: str) -> tuple[int, ...]:
    """'16,32,64' -> (16, 32, 64): positive integers, repeats dropped."""
    sizes = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of positive integers, got {text!r}"
            )
        sizes.append(int(part))
    return tuple(dict.fromkeys(sizes))


def _lr_range(text: str) -> tuple[float, float]:
    """'1e-4,3e-2' -> (1e-4, 3e-2): two positive numbers, the first at most the second."""
    parts = text.split(",")
    expected = f"expected MIN,MAX, two positive numbers with MIN <= MAX, got {text!r}"
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(expected)
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(expected) from None
    if not all(math.isfinite(v) and v > 0 for v in (low, high)) or low > high:
        raise argparse.ArgumentTypeError(expected)
    return low, high


def add_compare(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "compare",
        help="compare cells on tasks with a small random search, as Greff et al. (2015) did",
        description=(
            "For each task, draw --trials settings (learning rate log-uniform in --lr-range, "
            "hidden size from --hidden) and --seeds training seeds each, the same draws for "
            "every cell (a paired comparison), train every cell at every setting and seed, "
            "and report per cell the best setting (lowest median over its seeds) with its "
            "median and range, and the median and quartiles over all settings. Memory tasks "
            "score the test error, 'lm' the validation bits per character (nats per word at "
            "word level). Writes table.txt, results.json and per task TASK-by-cell.png and "
            "TASK-by-lr.png into --out."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--cells",
        type=list_of(_CELLS, "cell"),
        default=_D.cells,
        help=f"comma list from {{{','.join(_CELLS)}}} ({','.join(_D.cells)})",
    )
    p.add_argument(
        "--tasks",
        type=list_of(TASK_CHOICES, "task"),
        default=_D.tasks,
        help=f"comma list from {{{','.join(TASK_CHOICES)}}} ({','.join(_D.tasks)}); "
        f"'{LM_TASK}' is the language model on --corpus",
    )
    p.add_argument(
        "--trials", type=positive_int, default=_D.trials, help=f"settings drawn ({_D.trials})"
    )
    p.add_argument(
        "--seeds", type=positive_int, default=_D.seeds, help=f"seeds per setting ({_D.seeds})"
    )
    p.add_argument(
        "--hidden",
        type=_hidden_list,
        default=_D.hidden_sizes,
        metavar="H,H,...",
        help=f"hidden sizes to draw from ({','.join(map(str, _D.hidden_sizes))})",
    )
    p.add_argument(
        "--lr-range",
        type=_lr_range,
        default=(_D.lr_min, _D.lr_max),
        metavar="MIN,MAX",
        help=f"learning rates, drawn log-uniformly ({_D.lr_min:g},{_D.lr_max:g})",
    )
    p.add_argument(
        "--length",
        type=positive_int,
        default=None,
        metavar="T",
        help="lag or length of the memory tasks (default: each task's, usually 100)",
    )
    p.add_argument(
        "--max-sequences",
        type=positive_int,
        default=_D.max_sequences,
        metavar="N",
        help=f"training sequences per memory-task run at most ({_D.max_sequences})",
    )
    p.add_argument(
        "--lm-steps",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"training steps per language-model run ({_D.lm_steps})",
    )
    p.add_argument(
        "--corpus",
        default=None,
        help=f"the language model's text: stories, stdlib or a UTF-8 file ({_D.corpus})",
    )
    p.add_argument("--valid", default=None, help="its validation file (default: split the text)")
    p.add_argument(
        "--level",
        type=one_of(LEVELS, "level"),
        default=None,
        help="char or word (default: words for stories, characters otherwise)",
    )
    p.add_argument(
        "--seed", type=seed, default=_D.seed, help=f"master seed of every draw ({_D.seed})"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("compare"),
        metavar="DIR",
        help="folder for table.txt, results.json and the PNGs (compare)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--replot",
        type=Path,
        nargs="+",
        default=None,
        metavar="RESULTS",
        help="train nothing: redraw the table and figures of a results.json into --out; "
        "several files that differ only in their cells (run with the same options and "
        "--seed) are merged into one comparison, their cells in the order given",
    )
    p.set_defaults(handler=_run_compare)
    return p


def _config(args: argparse.Namespace, parser: Parser) -> CompareConfig:
    lm_options = {"--corpus": args.corpus, "--valid": args.valid, "--level": args.level}
    lm_options["--lm-steps"] = args.lm_steps
    named = [option for option, value in lm_options.items() if value is not None]
    if named and LM_TASK not in args.tasks:
        parser.error(f"{', '.join(named)} set the language model; add '{LM_TASK}' to --tasks")
    if args.length is not None and all(t == LM_TASK for t in args.tasks):
        parser.error("--length sets the memory tasks; --tasks names none")
    try:
        config = CompareConfig(
            cells=args.cells,
            tasks=args.tasks,
            trials=args.trials,
            seeds=args.seeds,
            lr_min=args.lr_range[0],
            lr_max=args.lr_range[1],
            hidden_sizes=args.hidden,
            length=args.length,
            max_sequences=args.max_sequences,
            lm_steps=_D.lm_steps if args.lm_steps is None else args.lm_steps,
            corpus=_D.corpus if args.corpus is None else args.corpus,
            valid=args.valid,
            level=args.level,
            seed=args.seed,
            progress=not args.quiet,
        )
        if LM_TASK in config.tasks:
            check_lm_corpus(config)
    except ValueError as err:  # CorpusError and CorpusTooShortError are ValueErrors
        parser.error(str(err))
    return config


def _prepare_out(parser: Parser, out: Path) -> None:
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out}: exists and is not a folder; expected a folder to write into")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"--out {out}: cannot create the folder ({err.strerror})")


def write_outputs(found: Comparison, out: Path) -> dict[str, list[str]]:
    """table.txt, results.json and two figures per task in ``out``; returns the figures'
    paths by task."""
    from lstmkit.plots.compare import plot_metric_by_cell, plot_metric_by_lr

    c = found.config
    figures: dict[str, list[str]] = {}
    for task in c.tasks:
        runs = found.runs_of(task)
        title = task_title(found, task)
        metric = metric_name(task, c)
        by_cell, by_lr = out / f"{task}-by-cell.png", out / f"{task}-by-lr.png"
        plot_metric_by_cell(found.summaries(task), runs, metric, title, by_cell)
        plot_metric_by_lr(c.cells, runs, metric, title, by_lr)
        figures[task] = [str(by_cell), str(by_lr)]
    write_atomic(out / "table.txt", (format_tables(found) + "\n").encode())
    payload = {**found.to_json_dict(), "figures": figures}
    write_atomic(out / "results.json", (json.dumps(payload, indent=1) + "\n").encode())
    return figures


def _replot(args: argparse.Namespace, parser: Parser) -> int:
    found = None
    for path in args.replot:
        part = _read_results(path, parser)
        try:
            found = part if found is None else found.merged(part)
        except ValueError as err:
            parser.error(f"--replot {path}: {err}")
    _prepare_out(parser, args.out)
    write_outputs(found, args.out)
    print(format_tables(found))
    return 0


def _read_results(path: Path, parser: Parser) -> Comparison:
    try:
        return Comparison.from_json_dict(json.loads(path.read_text(encoding="utf-8")))
    except OSError as err:
        parser.error(f"--replot {path}: cannot read it ({err.strerror})")
    except (ValueError, KeyError, TypeError) as err:
        parser.error(f"--replot {path}: not a results.json of lstmkit compare ({err})")


def _run_compare(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit.experiments.compare import run_comparison

    if args.replot is not None:
        return _replot(args, parser)
    config = _config(args, parser)
    _prepare_out(parser, args.out)
    one_thread_unless_asked()
    found = run_comparison(config)
    figures = write_outputs(found, args.out)
    if args.json:
        print(json.dumps({**found.to_json_dict(), "figures": figures, "out": str(args.out)}))
    else:
        print(format_tables(found))
        print(f"\n{len(found.runs)} runs in {found.seconds:.0f} s; written to {args.out}/")
    return 0
