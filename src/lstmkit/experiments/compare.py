"""Cells compared the way Greff et al. (2015, "LSTM: A Search Space Odyssey") compared
LSTM variants, scaled down to a CPU budget: the engine behind ``lstmkit compare``.

Greff et al. (§4) trained every variant on every data set with hyperparameters drawn at
random (§4.1: the learning rate log-uniform, the hidden size from a range) and compared
the variants on the best trials and on the distribution over all trials (§5.1, Fig. 3).
Here, for every task:

1. ``trials`` settings are drawn from the master seed: a learning rate log-uniform in
   [lr_min, lr_max] and a hidden size uniformly from ``hidden_sizes``, each with
   ``seeds`` training seeds. Greff drew settings per variant; here **every cell gets the
   same draws** (same rates, sizes and seeds), so the comparison is paired: two cells
   differ only in the cell, never in the luck of the draw. The same master seed gives the
   same draws, and the same runs give the same results (budgets are counted in sequences
   and steps, never in seconds).
2. Every (cell, setting, seed) is trained once. Memory tasks (:mod:`lstmkit.tasks`) train
   with :func:`lstmkit.experiments.train.train_modern` (Adam, stop rule, at most
   ``max_sequences``) and are scored by the test error, the fraction of fresh test
   sequences wrong, with ``solved`` by the task's criterion. The language model (task
   ``lm``) trains with :func:`lstmkit.lm.train.train` for ``lm_steps`` steps with one
   recurrent layer (Greff et al. used a single hidden layer throughout, §4) and is scored
   by its loss on the whole validation text: bits per character at character level, nats
   per word at word level. Lower is better for every metric.
3. Per cell and task: the best setting, the one with the lowest median over its seeds
   (ties, common when short budgets leave many runs at error 1.0 or 0.0, go to the lower
   median test loss, then the earlier trial); its median and range over the seeds; and the
   median and quartiles over every run of every setting, which shows how forgiving a cell
   is of its hyperparameters (Greff et al.'s full boxes in Fig. 3).

A run that diverges (a non-finite loss) scores ``math.inf``: it ranks last, and the JSON
writes it as null.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from lstmkit import tasks
from lstmkit.layers.named import MODERN_CELLS
from lstmkit.progress import Progress

LM_TASK = "lm"
"""The task name of the language model on ``corpus``."""
TASK_CHOICES: tuple[str, ...] = (*tasks.TASK_NAMES, LM_TASK)
LEVELS = ("char", "word")

_SEED_RANGE = 2**31  # training seeds are drawn below this


@dataclass(frozen=True)
class CompareConfig:
    """One comparison: which cells on which tasks, the search space and the budgets."""

    cells: tuple[str, ...] = ("rnn", "gru", "lstm")
    """Names from :data:`lstmkit.layers.named.MODERN_CELLS`."""
    tasks: tuple[str, ...] = ("adding", "temporal-order")
    """Memory task names (:data:`lstmkit.tasks.TASK_NAMES`) and/or ``lm``."""
    trials: int = 4
    """Settings drawn from the search space (the same ones for every cell)."""
    seeds: int = 2
    """Training seeds per setting."""
    lr_min: float = 1e-4
    """Lower end of the learning rate's log-uniform range (Adam's rate for every task)."""
    lr_max: float = 3e-2
    """Upper end of that range."""
    hidden_sizes: tuple[int, ...] = (16, 32, 64)
    """Hidden sizes a setting draws from, each equally likely."""
    length: int | None = None
    """Lag or length of every memory task; None: each task's default (the paper's)."""
    max_sequences: int = 20_000
    """Training sequences per memory-task run at most (the stop rule may end it sooner)."""
    batch_size: int = 32
    """Sequences per Adam update on the memory tasks."""
    lm_steps: int = 300
    """Training steps per language-model run."""
    corpus: str = "stories"
    """The language model's corpus: a built-in one (stories, stdlib) or a UTF-8 text file."""
    valid: str | None = None
    """A separate validation file for ``corpus``; None splits the corpus."""
    level: str | None = None
    """'char' or 'word'; None: words for the stories, characters otherwise."""
    seed: int = 0
    """The master seed: every setting and training seed is drawn from it."""
    progress: bool = True
    """A progress bar over all runs on stderr."""

    def __post_init__(self) -> None:
        check_config(self)

    @property
    def memory_tasks(self) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if t != LM_TASK)

    def resolved_level(self) -> str:
        from lstmkit.lm.sources import default_level

        return self.level or default_level(self.corpus)


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_names(what: str, given: tuple[str, ...], known: tuple[str, ...]) -> None:
    """At least one name, each known, none twice."""
    if not given:
        raise ValueError(f"{what}s must name at least one {what}")
    for name in given:
        if name not in known:
            raise ValueError(f"unknown {what} {name!r}; expected one of {', '.join(known)}")
    if len(set(given)) != len(given):
        raise ValueError(f"{what}s are named more than once: {', '.join(given)}")


def check_config(c: CompareConfig) -> None:
    """Raise ValueError naming the first setting that is wrong and what was expected."""
    _check_names("cell", c.cells, tuple(MODERN_CELLS))
    _check_names("task", c.tasks, TASK_CHOICES)
    for name in ("trials", "seeds", "max_sequences", "batch_size", "lm_steps"):
        _positive_int(name, getattr(c, name))
    if isinstance(c.seed, bool) or not isinstance(c.seed, int) or not 0 <= c.seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {c.seed!r}")
    for name in ("lr_min", "lr_max"):
        value = getattr(c, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if c.lr_min > c.lr_max:
        raise ValueError(f"the learning-rate range is empty: lr_min {c.lr_min:g} > {c.lr_max:g}")
    if not c.hidden_sizes:
        raise ValueError("hidden_sizes must list at least one size")
    for size in c.hidden_sizes:
        _positive_int("every hidden size", size)
    if c.length is not None:
        _positive_int("length", c.length)
        for name in c.memory_tasks:
            tasks.make_task(name, c.length)  # the task's own message for a length too short
    if c.level is not None and c.level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {c.level!r}")


# -- the search space -------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One draw from the search space, shared by every cell and task."""

    trial: int
    lr: float
    hidden: int
    seeds: tuple[int, ...]
    """The training seeds of this setting's runs."""


def sample_settings(c: CompareConfig) -> list[Setting]:
    """``c.trials`` settings drawn from the master seed, in trial order.

    log lr ~ U(log lr_min, log lr_max) (Greff et al. §4.1), the hidden size uniform over
    ``hidden_sizes``, and ``seeds`` training seeds; one generator, read in a fixed order, so
    the draws depend on nothing but the config.
    """
    gen = torch.Generator().manual_seed(c.seed)
    low, high = math.log(c.lr_min), math.log(c.lr_max)
    settings = []
    for trial in range(c.trials):
        u = torch.rand((), generator=gen, dtype=torch.float64).item()
        pick = int(torch.randint(len(c.hidden_sizes), (), generator=gen))
        seeds = torch.randint(_SEED_RANGE, (c.seeds,), generator=gen).tolist()
        lr = math.exp(low + u * (high - low))
        settings.append(Setting(trial, lr, c.hidden_sizes[pick], tuple(seeds)))
    return settings


# -- one run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompareRun:
    """One trained model: which cell, task, setting and seed, and how it scored."""

    task: str
    cell: str
    trial: int
    lr: float
    hidden: int
    seed: int
    metric: float
    """Lower is better: test error (memory tasks), bits per character or nats per word."""
    loss: float
    """Memory tasks: mean test loss (the tie-break); lm: validation nats per token."""
    solved: bool | None
    """Memory tasks: solved by the task's criterion; None for the language model."""
    budget_used: int
    """Training sequences (memory tasks; fewer than the budget when the stop rule fired)
    or steps (lm)."""
    parameters: int
    """Parameters of the whole trained model (recurrent layer, readout, embedding)."""
    seconds: float

    def to_json_dict(self) -> dict[str, object]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}


def _finite_or_none(value: object) -> object:
    """JSON has no infinity or NaN: a diverged run's metric is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _score(value: float) -> float:
    """A finite metric as it is; NaN or infinity (a diverged run) as +inf: ranks last."""
    return value if math.isfinite(value) else math.inf


def run_memory(task: tasks.Task, cell: str, setting: Setting, seed: int, c: CompareConfig):
    """Train ``cell`` on a memory task at ``setting`` with ``seed``; one CompareRun."""
    from lstmkit.experiments.train import TrainConfig, train_modern

    cfg = TrainConfig(
        cell=cell,
        hidden=setting.hidden,
        seed=seed,
        batch_size=c.batch_size,
        lr=setting.lr,
        max_sequences=c.max_sequences,
        progress=False,
    )
    model, result = train_modern(task, cfg)
    return CompareRun(
        task=task.name,
        cell=cell,
        trial=setting.trial,
        lr=setting.lr,
        hidden=setting.hidden,
        seed=seed,
        metric=_score(result.test_error),
        loss=_score(result.test_loss),
        solved=result.solved,
        budget_used=result.sequences,
        parameters=sum(p.numel() for p in model.parameters()),
        seconds=result.seconds,
    )


def lm_train_config(cell: str, setting: Setting, seed: int, c: CompareConfig):
    """The language-model run for one (cell, setting, seed): one recurrent layer, the
    level's sequence length, ``lm_steps`` steps, one evaluation at the end."""
    from lstmkit.lm.train import TrainConfig

    return TrainConfig(
        corpus=c.corpus,
        valid=c.valid,
        level=c.level,
        cell=cell,
        hidden_size=setting.hidden,
        num_layers=1,
        learning_rate=setting.lr,
        steps=c.lm_steps,
        eval_every=c.lm_steps,
        warmup_steps=min(100, c.lm_steps // 10),  # the trainer's 100, shrunk for short runs
        seed=seed,
        device="cpu",
    )


def run_lm(cell: str, setting: Setting, seed: int, c: CompareConfig) -> CompareRun:
    """Train the language model with ``cell`` at ``setting``; the run's folder (checkpoint,
    metrics) is a temporary one, removed afterwards: only the score is kept."""
    from lstmkit.lm.model import count_parameters
    from lstmkit.lm.train import train

    start = time.perf_counter()
    config = lm_train_config(cell, setting, seed, c)
    with tempfile.TemporaryDirectory(prefix="lstmkit-compare-") as folder:
        result = train(config, Path(folder), progress=False)
    loss = _score(result.valid.loss)
    per_char = result.valid.level == "char"
    return CompareRun(
        task=LM_TASK,
        cell=cell,
        trial=setting.trial,
        lr=setting.lr,
        hidden=setting.hidden,
        seed=seed,
        metric=loss / math.log(2) if per_char else loss,
        loss=loss,
        solved=None,
        budget_used=result.position.step,
        parameters=count_parameters(result.model),
        seconds=time.perf_counter() - start,
    )


def check_lm_corpus(c: CompareConfig) -> None:
    """Read the language model's corpus as its runs will and raise its error now
    (CorpusError, CorpusTooShortError: both ValueErrors), not after the memory tasks'
    minutes. The built-in corpora are known to be long enough; only their --valid is
    checked."""
    from lstmkit.lm.batches import StreamBatches
    from lstmkit.lm.sources import BUILTIN_CORPORA, open_corpus
    from lstmkit.lm.train import prepare_data

    if c.corpus in BUILTIN_CORPORA:
        if c.valid is not None:
            open_corpus(c.corpus, valid=c.valid)
        return
    config = lm_train_config(c.cells[0], Setting(0, c.lr_min, c.hidden_sizes[0], (0,)), 0, c)
    config = config.resolved()
    data = prepare_data(config)
    StreamBatches(data.train, config.batch_size, config.seq_len)


# -- summaries --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CellSummary:
    """One cell on one task: its best setting and the spread over all settings."""

    task: str
    cell: str
    best_trial: int
    best_lr: float
    best_hidden: int
    best_median: float
    """Median metric over the best setting's seeds."""
    best_min: float
    best_max: float
    all_median: float
    """Median metric over every run of every setting."""
    all_q1: float
    all_q3: float
    solved: int | None
    """Memory tasks: runs solved, of ``runs``; None for the language model."""
    runs: int

    def to_json_dict(self) -> dict[str, object]:
        return {k: _finite_or_none(v) for k, v in asdict(self).items()}


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """First quartile, median and third quartile, linear between order statistics
    (numpy's default; statistics.quantiles' 'inclusive' method)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    if any(math.isinf(v) for v in values):  # statistics interpolates inf - inf into NaN
        ordered = sorted(values)
        return tuple(_interpolate(ordered, q) for q in (0.25, 0.5, 0.75))  # type: ignore[return-value]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def _interpolate(ordered: Sequence[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if ordered[low] == ordered[high] or position == low:
        return ordered[low]
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def summarize(task: str, cell: str, runs: Sequence[CompareRun]) -> CellSummary:
    """The summary of one cell's runs on one task (every setting, every seed)."""
    by_trial: dict[int, list[CompareRun]] = {}
    for run in runs:
        by_trial.setdefault(run.trial, []).append(run)

    def rank(trial: int) -> tuple[float, float, int]:
        group = by_trial[trial]
        return (
            quartiles([r.metric for r in group])[1],
            quartiles([r.loss for r in group])[1],
            trial,
        )

    best = min(by_trial, key=rank)
    chosen = [r.metric for r in by_trial[best]]
    q1, median, q3 = quartiles([r.metric for r in runs])
    solved = None if runs[0].solved is None else sum(bool(r.solved) for r in runs)
    return CellSummary(
        task=task,
        cell=cell,
        best_trial=best,
        best_lr=by_trial[best][0].lr,
        best_hidden=by_trial[best][0].hidden,
        best_median=quartiles(chosen)[1],
        best_min=min(chosen),
        best_max=max(chosen),
        all_median=median,
        all_q1=q1,
        all_q3=q3,
        solved=solved,
        runs=len(runs),
    )


def layer_input_size(task: str, hidden: int, c: CompareConfig) -> int:
    """What the recurrent layer reads: the memory task's input width, or for the language
    model its embedding, as wide as the hidden layer (LMConfig's default)."""
    if task == LM_TASK:
        return hidden
    return tasks.make_task(task, c.length).input_size


def parameter_table(c: CompareConfig) -> dict[str, dict[str, dict[int, int]]]:
    """task -> cell -> hidden size -> parameters of the cell's layer at that task's input."""
    return {
        task: {
            cell: {
                h: MODERN_CELLS[cell].parameter_count(layer_input_size(task, h, c), h)
                for h in c.hidden_sizes
            }
            for cell in c.cells
        }
        for task in c.tasks
    }


# -- the whole comparison ---------------------------------------------------------------------


def metric_name(task: str, c: CompareConfig) -> str:
    if task != LM_TASK:
        return "test error (fraction of test sequences wrong)"
    if c.resolved_level() == "char":
        return "validation bits per character"
    return "validation nats per word"


@dataclass
class Comparison:
    """Everything a comparison found, in the order it was run."""

    config: CompareConfig
    settings: list[Setting]
    runs: list[CompareRun] = field(default_factory=list)
    seconds: float = 0.0

    def runs_of(self, task: str, cell: str | None = None) -> list[CompareRun]:
        return [r for r in self.runs if r.task == task and (cell is None or r.cell == cell)]

    def summaries(self, task: str) -> list[CellSummary]:
        """One summary per cell that has runs on ``task``, in the config's cell order."""
        return [
            summarize(task, cell, self.runs_of(task, cell))
            for cell in self.config.cells
            if self.runs_of(task, cell)
        ]

    @classmethod
    def from_json_dict(cls, data: dict) -> Comparison:
        """The comparison a ``results.json`` holds (its runs as run; a null metric, a
        diverged run, read back as infinity), to redraw its table and figures."""
        config = data["config"]
        tuples = {k: tuple(v) for k, v in config.items() if isinstance(v, list)}
        c = CompareConfig(**{**config, **tuples, "progress": False})
        settings = [Setting(**{**s, "seeds": tuple(s["seeds"])}) for s in data["settings"]]
        runs = [
            CompareRun(**{**r, "metric": math.inf if r["metric"] is None else r["metric"]})
            for r in data["runs"]
        ]
        return cls(c, settings, runs, data.get("seconds", 0.0))

    def merged(self, other: Comparison) -> Comparison:
        """This comparison with ``other``'s cells added, for a cell that joins an existing
        comparison without training the others again. Allowed only where the pairing holds:
        the same config but for the cells (so the same settings and seeds were drawn) and no
        cell in both. Raises ValueError naming the first difference."""
        mine, theirs = asdict(self.config), asdict(other.config)
        for key in mine:
            if key not in ("cells", "progress") and mine[key] != theirs[key]:
                raise ValueError(
                    f"the comparisons differ in {key} ({mine[key]!r} and {theirs[key]!r}); "
                    "only comparisons that differ in their cells can be merged"
                )
        if self.settings != other.settings:  # the same master seed draws the same settings
            raise ValueError("the comparisons drew different settings; they cannot be merged")
        both = [cell for cell in other.config.cells if cell in self.config.cells]
        if both:
            raise ValueError(
                f"cell {both[0]!r} is in both comparisons; expected each cell in one of them"
            )
        config = replace(self.config, cells=(*self.config.cells, *other.config.cells))
        return Comparison(
            config, self.settings, [*self.runs, *other.runs], self.seconds + other.seconds
        )

    def to_json_dict(self) -> dict[str, object]:
        c = self.config
        return {
            "config": asdict(c),
            "paired": "every cell trains at the same settings and seeds",
            "settings": [asdict(s) for s in self.settings],
            "metrics": {task: metric_name(task, c) for task in c.tasks},
            "parameters": {
                task: {cell: {str(h): n for h, n in sizes.items()} for cell, sizes in cells.items()}
                for task, cells in parameter_table(c).items()
            },
            "summaries": {
                task: [s.to_json_dict() for s in self.summaries(task)] for task in c.tasks
            },
            "runs": [r.to_json_dict() for r in self.runs],
            "seconds": self.seconds,
        }


def run_comparison(
    c: CompareConfig, *, on_run: Callable[[CompareRun], None] | None = None
) -> Comparison:
    """Train every (task, setting, cell, seed) once and collect the scores; ``on_run`` is
    called after each run (a record to disk, a test's probe)."""
    start = time.perf_counter()
    found = Comparison(c, sample_settings(c))
    memory = {name: tasks.make_task(name, c.length) for name in c.memory_tasks}
    total = len(c.tasks) * len(found.settings) * c.seeds * len(c.cells)
    with Progress(total=total, desc="compare", unit="run", disable=not c.progress) as bar:
        for task in c.tasks:
            for setting in found.settings:
                for cell in c.cells:
                    for seed in setting.seeds:
                        if task == LM_TASK:
                            run = run_lm(cell, setting, seed, c)
                        else:
                            run = run_memory(memory[task], cell, setting, seed, c)
                        found.runs.append(run)
                        bar.update()
                        bar.set_postfix(task=task, cell=cell, metric=run.metric)
                        if on_run is not None:
                            on_run(run)
    found.seconds = time.perf_counter() - start
    return found


# -- the table --------------------------------------------------------------------------------


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.3f}"


def format_task_table(found: Comparison, task: str) -> str:
    """One task's table: a row per cell with its parameters, the best setting, its median
    and range over seeds, and the median and quartiles over all settings."""
    c = found.config
    params = parameter_table(c)[task]
    sizes = "/".join(str(h) for h in c.hidden_sizes)
    header = [
        "cell",
        f"params at H={sizes}",
        "best lr",
        "best H",
        "best: median [min, max]",
        "all: median [q1, q3]",
    ]
    memory = task != LM_TASK
    if memory:
        header.append("solved")
    rows = [header]
    for s in found.summaries(task):
        row = [
            s.cell,
            "/".join(f"{params[s.cell][h]:,}" for h in c.hidden_sizes),
            f"{s.best_lr:.2e}",
            str(s.best_hidden),
            f"{_number(s.best_median)} [{_number(s.best_min)}, {_number(s.best_max)}]",
            f"{_number(s.all_median)} [{_number(s.all_q1)}, {_number(s.all_q3)}]",
        ]
        if memory:
            row.append(f"{s.solved}/{s.runs}")
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join([task_title(found, task), *lines])


def task_title(found: Comparison, task: str) -> str:
    c = found.config
    if task == LM_TASK:
        what = f"lm on {c.corpus} ({c.resolved_level()} level), {c.lm_steps:,} steps per run"
    else:
        length = tasks.make_task(task, c.length).length
        what = f"{task} (T={length}), at most {c.max_sequences:,} sequences per run"
    return f"{what}; metric: {metric_name(task, c)}, lower is better"


def format_tables(found: Comparison) -> str:
    c = found.config
    lrs = ", ".join(f"{s.lr:.2e}/H{s.hidden}" for s in found.settings)
    intro = (
        f"{len(c.cells)} cells x {c.trials} settings x {c.seeds} seeds per task, the same "
        f"settings for every cell (paired), master seed {c.seed}: {lrs}. Best: the setting "
        "with the lowest median over its seeds."
    )
    return "\n\n".join([intro, *(format_task_table(found, task) for task in c.tasks)])
