"""The memory-experiment subcommands: ``task``, ``horizon`` and ``gradients``.

Each ``add_*`` function registers one subcommand on the top-level parser; its handler
builds the configs (refusing bad values in one line through ``parser.error``), runs the
experiment and prints the result: a table on stdout, or one JSON object with ``--json``.
Progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch

from lstmkit import tasks
from lstmkit._cli_args import (
    Parser,
    forget_bias,
    list_of,
    non_negative_int,
    one_of,
    one_thread_unless_asked,
    positive_float,
    positive_int,
    seed,
)
from lstmkit.experiments.cells import CELL_NAMES, MODERN_CELLS
from lstmkit.experiments.result import RunResult
from lstmkit.experiments.train import TrainConfig

_TRAIN_DEFAULTS = TrainConfig()


def _add_training_options(p: Parser, *, cells: bool) -> None:
    """The options every command that trains shares."""
    d = _TRAIN_DEFAULTS
    if cells:
        p.add_argument(
            "--hidden", type=positive_int, default=d.hidden, help=f"hidden units ({d.hidden})"
        )
    p.add_argument("--seed", type=seed, default=d.seed, help=f"seeds init and data ({d.seed})")
    p.add_argument(
        "--max-sequences",
        type=positive_int,
        default=d.max_sequences,
        metavar="N",
        help=f"training sequences at most per run ({d.max_sequences})",
    )
    p.add_argument(
        "--budget",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="wall-clock cap per run (off by default: with it, results depend on the machine)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=d.batch_size,
        help=f"sequences per Adam update ({d.batch_size}; lstm1997 learns online)",
    )
    p.add_argument("--lr", type=positive_float, default=d.lr, help=f"Adam's rate ({d.lr:g})")
    p.add_argument(
        "--forget-bias",
        type=forget_bias,
        default=d.forget_bias,
        metavar="B",
        help=f"initial forget-gate bias of the LSTMs, or 'none' for torch's ({d.forget_bias})",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _train_config(args: argparse.Namespace, parser: Parser, **overrides) -> TrainConfig:
    """The training settings from the shared options; a bad value ends in parser.error."""
    try:
        return TrainConfig(
            hidden=getattr(args, "hidden", _TRAIN_DEFAULTS.hidden),
            seed=args.seed,
            batch_size=args.batch_size,
            lr=args.lr,
            forget_bias=args.forget_bias,
            max_sequences=args.max_sequences,
            budget_seconds=args.budget,
            progress=not args.quiet,
            **overrides,
        )
    except ValueError as err:
        parser.error(str(err))


def _make_task(parser: Parser, name: str, length: int | None) -> tasks.Task:
    try:
        return tasks.make_task(name, length)
    except ValueError as err:
        parser.error(str(err))


# -- lstmkit task -----------------------------------------------------------------------------


def add_task(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "task",
        help="train one cell on one memory task and report whether it solved it",
        description=(
            "Train CELL on task NAME until the task's stop rule fires (its most recent "
            "training sequences all correct, as in Hochreiter & Schmidhuber 1997) or the "
            "budget runs out, then test on fresh sequences. Reports solved or not, training "
            "sequences seen, test error and wall time."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "name",
        type=one_of(tasks.TASK_NAMES, "task"),
        metavar="NAME",
        help=f"one of {', '.join(tasks.TASK_NAMES)}",
    )
    p.add_argument(
        "--cell",
        type=one_of(CELL_NAMES, "cell"),
        default="lstm",
        help=f"one of {', '.join(CELL_NAMES)} (lstm)",
    )
    p.add_argument(
        "--length",
        type=positive_int,
        default=None,
        metavar="T",
        help="the task's lag or length (default: the paper's, usually 100)",
    )
    _add_training_options(p, cells=True)
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=_run_task)
    return p


def format_result(result: RunResult) -> str:
    """A few lines a person reads: verdict, sequences, test error, time."""
    verdict = "solved" if result.solved else "not solved"
    why = "stop rule fired" if result.stopped else "budget ran out before the stop rule fired"
    return "\n".join(
        [
            f"{result.task} (T={result.length}), cell {result.cell}, seed {result.seed}: {verdict}",
            f"  training sequences: {result.sequences:,} ({why})",
            f"  test: {result.test_wrong} wrong of {result.test_size:,} "
            f"(error {result.test_error:.4f}), loss {result.test_loss:.4g}",
            f"  wall time: {result.seconds:.1f} s",
        ]
    )


def _run_task(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit.experiments.train import run_task

    task = _make_task(parser, args.name, args.length)
    cfg = _train_config(args, parser, cell=args.cell)
    one_thread_unless_asked()
    result = run_task(task, cfg)
    if args.json:
        print(json.dumps(result.to_json_dict()))
    else:
        print(format_result(result))
    return 0


# -- lstmkit horizon --------------------------------------------------------------------------


def add_horizon(subparsers: argparse._SubParsersAction) -> Parser:
    from lstmkit.experiments.horizon import HorizonConfig

    d = HorizonConfig()
    p = subparsers.add_parser(
        "horizon",
        help="measure each cell's memory horizon: the longest lag it solves on a budget",
        description=(
            "For each cell, double the task's lag T from --start until a lag is not solved "
            "by at least --min-success of the seeds within the per-run budget, then bisect. "
            "Prints a table and writes a PNG of success against lag."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--task",
        type=one_of(tasks.TASK_NAMES, "task"),
        default="adding",
        help=f"one of {', '.join(tasks.TASK_NAMES)} (adding)",
    )
    p.add_argument(
        "--cells",
        type=list_of(CELL_NAMES, "cell"),
        default=d.cells,
        help=f"comma list from {{{','.join(CELL_NAMES)}}} ({','.join(d.cells)})",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=d.seeds,
        help=f"runs per lag and cell, seeds S, S+1, ... ({d.seeds})",
    )
    p.add_argument("--start", type=positive_int, default=d.start, help=f"first lag ({d.start})")
    p.add_argument(
        "--max-length",
        type=positive_int,
        default=d.max_length,
        help=f"longest lag tried ({d.max_length})",
    )
    p.add_argument(
        "--bisect",
        type=non_negative_int,
        default=d.bisect_steps,
        help=f"bisection steps after the doubling ({d.bisect_steps})",
    )
    p.add_argument(
        "--min-success",
        type=positive_float,
        default=d.min_success,
        help=f"fraction of seeds that must solve a lag ({d.min_success})",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="PNG path (default horizon-TASK.png in the current folder)",
    )
    _add_training_options(p, cells=True)
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=_run_horizon)
    return p


def _budget_label(cfg: TrainConfig) -> str:
    label = f"{cfg.max_sequences:,} sequences per run"
    if cfg.budget_seconds is not None:
        label += f", at most {cfg.budget_seconds:g} s"
    return label


def _run_horizon(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit import plots
    from lstmkit.experiments import horizon

    try:
        cfg = horizon.HorizonConfig(
            cells=args.cells,
            seeds=args.seeds,
            start=args.start,
            max_length=args.max_length,
            bisect_steps=args.bisect,
            min_success=args.min_success,
            train=_train_config(args, parser),
        )
    except ValueError as err:
        parser.error(str(err))
    _make_task(parser, args.task, args.start)  # refuse a bad start length before any training
    out = args.out or Path(f"horizon-{args.task}.png")
    try:
        plots.figure_paths(out)  # a .pdf refused now, not after minutes of training
    except ValueError as err:
        parser.error(str(err))
    one_thread_unless_asked()
    found = [
        horizon.measure_cell(lambda lag: tasks.make_task(args.task, lag), cell, cfg)
        for cell in cfg.cells
    ]
    plots.plot_horizon(found, args.task, _budget_label(cfg.train), out)
    if args.json:
        payload = {
            "task": args.task,
            "budget": _budget_label(cfg.train),
            "plot": str(out),
            "cells": [
                {
                    "cell": h.cell,
                    "horizon": h.horizon,
                    "success": {str(k): v for k, v in sorted(h.success.items())},
                    "seconds": h.seconds,
                    "runs": [r.to_json_dict() for r in h.runs],
                }
                for h in found
            ],
        }
        print(json.dumps(payload))
    else:
        print(
            f"Memory horizon on {args.task}: {_budget_label(cfg.train)}, seeds "
            f"{cfg.train.seed}..{cfg.train.seed + cfg.seeds - 1}, solved by at least "
            f"{cfg.min_success:g} of them"
        )
        print(horizon.format_table(found, cfg.max_length))
        print(f"plot: {out}")
    return 0


# -- lstmkit gradients ------------------------------------------------------------------------


def add_gradients(subparsers: argparse._SubParsersAction) -> Parser:
    # the measurement steps a single-step cell by hand; the stacks joined through their
    # memory have none (a step of theirs is a step of every layer)
    modern = tuple(name for name, cell in MODERN_CELLS.items() if cell.cell_class is not None)
    p = subparsers.add_parser(
        "gradients",
        help="plot how the loss's gradient fades back through time, per cell",
        description=(
            "Measure the mean norm of dLoss/dh_t (and dLoss/dc_t for LSTMs) against the "
            "distance back from the target step, at initialisation and after training, and "
            "write both as a PNG: the vanishing gradient as a picture."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "--cells",
        type=list_of(modern, "cell"),
        default=("rnn", "lstm", "gru"),
        help=f"comma list from {{{','.join(modern)}}} (rnn,lstm,gru)",
    )
    p.add_argument(
        "--task",
        type=one_of(tasks.TASK_NAMES, "task"),
        default="adding",
        help="the task whose loss is differentiated (adding)",
    )
    p.add_argument(
        "--length",
        type=positive_int,
        default=None,
        metavar="T",
        help="the task's lag or length (default: the paper's, usually 100)",
    )
    p.add_argument(
        "--sequences",
        type=positive_int,
        default=256,
        help="sequences the norms are averaged over (256)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("gradients.png"), help="PNG path (gradients.png)"
    )
    _add_training_options(p, cells=True)
    p.set_defaults(max_sequences=20_000)
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=_run_gradients)
    return p


def _run_gradients(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit import plots
    from lstmkit.experiments.gradients import gradient_profile
    from lstmkit.experiments.train import TaskModel, data_generators, train_modern

    task = _make_task(parser, args.task, args.length)
    cfg = _train_config(args, parser)
    try:
        plots.figure_paths(args.out)  # a .pdf refused now, not after minutes of training
    except ValueError as err:
        parser.error(str(err))
    one_thread_unless_asked()
    # The probe sequences come from the test stream: never seen in training.
    probe = task.sample(args.sequences, data_generators(cfg.seed)[1])
    before, after, runs = [], [], []
    for cell in args.cells:
        cell_cfg = replace(cfg, cell=cell)
        torch.manual_seed(cfg.seed)
        before.append(
            gradient_profile(TaskModel(cell, task, cfg.hidden, cfg.forget_bias), task, probe)
        )
        model, result = train_modern(task, cell_cfg)
        after.append(gradient_profile(model, task, probe))
        runs.append(result)
    labels = (
        "at initialisation",
        f"after training ({_budget_label(cfg)})",
    )
    title = f"Gradient of the loss on '{task.name}' (T={task.length}) back through time"
    plots.plot_gradients([(labels[0], before), (labels[1], after)], title, args.out)
    if args.json:
        payload = {
            "task": task.name,
            "length": task.length,
            "plot": str(args.out),
            "before": [p.__dict__ for p in before],
            "after": [p.__dict__ for p in after],
            "runs": [r.to_json_dict() for r in runs],
        }
        print(json.dumps(payload))
    else:
        print(title)
        for b, a, r in zip(before, after, runs, strict=True):
            print(f"  {_profile_line(b, 'init')}")
            print(
                f"  {_profile_line(a, 'trained')}  ({'solved' if r.solved else 'not solved'}, "
                f"test error {r.test_error:.3f})"
            )
        print(f"plot: {args.out}")
    return 0


def _profile_line(profile, when: str) -> str:
    h = profile.hidden
    ratio = h[-1] / h[0] if h[0] > 0 else float("nan")
    return (
        f"{profile.cell:<14} {when:<8} ||dL/dh|| at the target {h[0]:.3g}, "
        f"{len(h) - 1} steps back {h[-1]:.3g} (ratio {ratio:.2g})"
    )


# -- lstmkit replicate ------------------------------------------------------------------------


def add_replicate(subparsers: argparse._SubParsersAction) -> Parser:
    from lstmkit.paper1997.specs import SPECS

    rows = tuple(SPECS)
    p = subparsers.add_parser(
        "replicate",
        help="rerun one of the 1997 paper's experiments and print its figures beside ours",
        description=(
            "Train --trials 1997 networks the paper's way (online SGD, truncated gradient, "
            "its architecture and learning rate) and --seeds runs of each modern cell on the "
            "task of one of the paper's experiments, then print the paper's results beside "
            "lstmkit's: runs stopped by the stop rule, training sequences until then, wrong "
            "test sequences."
        ),
        allow_abbrev=False,
    )
    p.add_argument(
        "task", type=one_of(rows, "experiment"), metavar="TASK", help=f"one of {', '.join(rows)}"
    )
    p.add_argument(
        "--length",
        type=positive_int,
        default=None,
        metavar="T",
        help="the task's lag or length (default: the paper's main one)",
    )
    p.add_argument(
        "--cells",
        type=list_of(CELL_NAMES, "cell"),
        default=("lstm1997", "lstm", "rnn"),
        help=f"comma list from {{{','.join(CELL_NAMES)}}} (lstm1997,lstm,rnn)",
    )
    p.add_argument(
        "--trials", type=positive_int, default=4, help="1997 networks trained at once (4)"
    )
    p.add_argument("--seeds", type=positive_int, default=2, help="runs per modern cell (2)")
    p.add_argument(
        "--paper-lr",
        type=positive_float,
        default=None,
        metavar="RATE",
        help="lstm1997's SGD learning rate instead of the paper's for this experiment",
    )
    _add_training_options(p, cells=True)
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(handler=_run_replicate)
    return p


def _run_replicate(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit.experiments.replicate import format_replication, replicate

    _make_task(parser, args.task, args.length)  # refuse a bad length before any training
    cfg = _train_config(args, parser)
    one_thread_unless_asked()
    rep = replicate(
        args.task,
        args.length,
        cells=args.cells,
        trials=args.trials,
        seeds=args.seeds,
        train=cfg,
        paper_learning_rate=args.paper_lr,
    )
    if args.json:
        payload = {
            "task": rep.task.name,
            "length": rep.task.length,
            "experiment": rep.spec.experiment,
            "paper": [r.__dict__ for r in rep.paper],
            "runs": {cell: [r.to_json_dict() for r in runs] for cell, runs in rep.runs.items()},
        }
        print(json.dumps(payload, default=str))
    else:
        print(format_replication(rep))
    return 0
