"""One row of the 1997 paper's results, rerun: the paper's figures beside lstmkit's.

``replicate(task, length)`` looks up the paper's experiment for the task
(``lstmkit.paper1997.specs``), trains ``trials`` 1997 networks the paper's way (online SGD,
truncated gradient, its architecture and learning rate) and ``seeds`` runs of each modern
cell asked for (Adam, full BPTT), all on the same task and with the same stop rule, and
reports for each: how many runs stopped within the budget, the training sequences until the
stop rule fired, and the wrong test sequences.

The paper reports means over its trials (10 to 30 of them); with a handful of runs lstmkit
reports the median and range instead, which says more about so few runs.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from lstmkit.experiments.cells import PAPER_CELL, check_cell
from lstmkit.experiments.result import RunResult
from lstmkit.experiments.train import TrainConfig, train_modern
from lstmkit.paper1997.specs import ExperimentSpec, PaperResult, spec_for
from lstmkit.tasks import Task, make_task


@dataclass
class Replication:
    """The paper's rows for one task and length, and lstmkit's runs by cell."""

    task: Task
    spec: ExperimentSpec
    paper: list[PaperResult]
    runs: dict[str, list[RunResult]] = field(default_factory=dict)


def paper_rows(spec: ExperimentSpec, task: Task) -> list[PaperResult]:
    """The spec's results that apply to ``task``: its length (rows for any length
    included) and, where a row names one, its number of distractor symbols p (Exp. 2c)."""
    p = getattr(task, "p", None)
    return [r for r in spec.results_for(task.length) if r.details.get("p", p) == p]


def replicate(
    task_name: str,
    length: int | None,
    *,
    cells: Sequence[str] = (PAPER_CELL, "lstm", "rnn"),
    trials: int = 4,
    seeds: int = 2,
    train: TrainConfig | None = None,
    paper_learning_rate: float | None = None,
) -> Replication:
    """Rerun the paper's experiment for ``task_name`` at ``length`` (None: the task's
    default). ``train`` carries the budget (``max_sequences``, ``budget_seconds``), the base
    seed and the modern cells' settings; lstm1997 runs seeds S .. S + trials - 1 at once,
    each modern cell seeds S .. S + seeds - 1. ``paper_learning_rate`` replaces the
    experiment's SGD rate for lstm1997 (None: the paper's)."""
    train = train or TrainConfig()
    for cell in cells:
        check_cell(cell)
    for name, value in (("trials", trials), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    task = make_task(task_name, length)
    spec = spec_for(task_name, task.length)
    found = Replication(task, spec, paper_rows(spec, task))
    for cell in cells:
        if cell == PAPER_CELL:
            from lstmkit.paper1997.online import train_online

            found.runs[cell] = train_online(
                task,
                spec,
                trials=trials,
                seed=train.seed,
                learning_rate=paper_learning_rate,
                max_sequences=train.max_sequences,
                budget_seconds=train.budget_seconds,
                progress=train.progress,
            )
        else:
            found.runs[cell] = [
                train_modern(task, replace(train, cell=cell, seed=train.seed + k))[1]
                for k in range(seeds)
            ]
    return found


def _median_range(values: Sequence[float], fmt: str = ",.0f") -> str:
    if not values:
        return "-"
    middle = statistics.median(values)
    if len(values) == 1:
        return format(middle, fmt)
    return f"{format(middle, fmt)} ({format(min(values), fmt)} to {format(max(values), fmt)})"


def format_paper(rep: Replication) -> list[str]:
    lines = []
    for r in rep.paper:
        parts = [f"{r.weights} weights", f"lr {r.learning_rate:g}"]
        if r.sequences is not None:
            over = f", mean of {r.trials} trials" if r.trials else ""
            parts.append(f"{r.sequences:,} sequences until the stop rule{over}")
        if r.success_percent is not None:
            parts.append(f"{r.success_percent:g}% of trials successful")
        if r.test_wrong is not None and r.test_size:
            parts.append(f"{r.test_wrong} wrong of {r.test_size:,} test sequences")
        extra = ", ".join(f"{k} {v}" for k, v in r.details.items())
        if extra:
            parts.append(extra)
        lines.append(f"paper ({r.where}): " + "; ".join(parts))
    return lines or ["paper: no published row for this length"]


def format_replication(rep: Replication) -> str:
    """The paper's rows, then one row per cell of lstmkit's runs."""
    task = rep.task
    lines = [f"{task.name}, length {task.length}: {rep.spec.experiment}", *format_paper(rep)]
    header = ("cell", "runs", "stopped", "sequences until stop", "test wrong", "solved", "seconds")
    rows = [header]
    for cell, runs in rep.runs.items():
        stopped = [r.sequences for r in runs if r.stopped]
        rows.append(
            (
                cell,
                str(len(runs)),
                f"{len(stopped)}/{len(runs)}",
                _median_range(stopped),
                _median_range([r.test_wrong for r in runs]) + f" of {task.test_size:,}",
                f"{sum(r.solved for r in runs)}/{len(runs)}",
                _median_range([r.seconds for r in runs]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    budget = next(iter(rep.runs.values()))[0].options.get("max_sequences") if rep.runs else None
    if budget:
        lines.append(
            f"budget: {budget:,} training sequences per run; 'sequences until stop' counts "
            "stopped runs only; ranges are min to max"
        )
    lines += _format_end_states(rep.runs.get(PAPER_CELL, []))
    return "\n".join(lines)


def _format_end_states(runs: Sequence[RunResult]) -> list[str]:
    """Each 1997 trial's cells: mean |s| at the last step, before and after training.
    Values far above 2 mean saturated cells that pass little error back (state drift)."""
    lines = []
    for r in runs:
        before, after = r.options.get("end_state_initial"), r.options.get("end_state_trained")
        if before is not None and after is not None:
            show = ", ".join
            lines.append(
                f"  trial {r.options.get('trial', '?')}: {show(f'{v:.1f}' for v in before)} -> "
                f"{show(f'{v:.1f}' for v in after)}"
            )
    if lines:
        lines.insert(
            0, f"mean |s| of each {PAPER_CELL} cell at the last step, at the start -> trained:"
        )
    return lines
