"""On-line training as the 1997 paper did it, for K independent trials at once.

Each trial is one network with its own initial weights and its own stream of fresh training
sequences. Round after round, every trial that is still training reads its next sequence,
and plain gradient descent changes its weights once, by the sum of the sequence's time step
contributions (App. A.1 eqs. 17, 22: dw = -alpha dE/dw), with the paper's truncated
gradient. The error is the squared error of the logistic output units at the target steps,
E = 1/2 sum_k (t_k - y_k)^2: App. A.1 writes eq. (16) without the 1/2, but its error
signals, eq. (19) e_k = f'(net_k) (t_k - y_k), are the derivatives of the halved form, and
the learning rates belong to those. The sequences of all trials in a round go through the
network together, padded to the longest, the cell states frozen past each sequence's end.

A trial stops (its weights freeze, its counter stops) when its stop rule fires: its
``task.stop_window`` most recent training sequences were right by ``task.sequence_correct``,
up to the wrong ones the experiment tolerates, and, where the paper asks for it, their mean
absolute error is below a threshold (``ExperimentSpec``). Training ends when every trial has
stopped, reached ``max_sequences``, or ``budget_seconds`` have passed. Each trial is then
tested on ``task.test_size`` fresh sequences.

Each result also records, per memory cell, the mean |s_c| at the last step of 256 fresh
sequences before and after training (``mean_end_state``): large values mean drifted,
saturated cells that pass almost no error back.

Reproducibility: trial k of a run with seed s is the run with seed s + k (its own initial
weights, training sequences and test sequences derive from s + k only), so it gives the same
weights whatever K is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from lstmkit.experiments.result import RunResult
from lstmkit.paper1997.network import Architecture, MemoryBlockNetwork
from lstmkit.paper1997.specs import (
    DEFAULT_LEARNING_RATE,
    SPECS,
    ExperimentSpec,
    architecture_for,
)
from lstmkit.progress import Progress
from lstmkit.tasks.base import TargetKind, Task, TaskBatch

CELL = "lstm1997"

_INIT, _TRAIN, _TEST, _PROBE = 0, 1, 2, 3  # the random streams of a trial
_PROBE_SIZE = 256  # sequences on which the cell states are measured
_SAMPLE_ELEMENTS = 2_000_000  # floats per trial in one chunk of training sequences
_TEST_ELEMENTS = 1_000_000  # floats per trial in one chunk of test sequences


@dataclass(frozen=True)
class StopRule:
    """When a trial stops training; see the module docstring."""

    window: int
    """How many of the most recent training sequences are judged."""
    allowed_wrong: tuple[int, int] = (0, 1)
    """(wrong, per): at most wrong * window // per of the window may be wrong."""
    max_mean_error: float | None = None
    """If set, the window's mean absolute error must also be below this."""

    @property
    def max_wrong(self) -> int:
        wrong, per = self.allowed_wrong
        return wrong * self.window // per


@dataclass(frozen=True)
class TrainingLog:
    """What ``train_trials`` did, per trial."""

    sequences: list[int]
    """Training sequences seen (until the stop rule fired, or the end)."""
    stopped: list[bool]
    """The stop rule fired."""
    seconds: list[float]
    """Wall time until the trial stopped or training ended (shared with the other trials)."""


@dataclass(frozen=True)
class TestScore:
    """One trial on its test set."""

    wrong: int
    size: int
    loss: float
    """Mean squared error over the target steps and output units."""

    @property
    def error(self) -> float:
        """Fraction of the test sequences wrong (0 for an empty test set)."""
        return self.wrong / self.size if self.size else 0.0


def derive_seed(seed: int, stream: int) -> int:
    """A 32-bit seed for one of a trial's random streams (init, training or test data)."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"train_online: {name} must be an integer >= {low}, got {value!r}")
    return value


def _check_number(value, name: str, *, positive: bool) -> float:
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or value != value
    if bad or value < 0 or (positive and value == 0):
        need = "> 0" if positive else ">= 0"
        raise ValueError(f"train_online: {name} must be a number {need}, got {value!r}")
    return float(value)


# -- data ---------------------------------------------------------------------------------


def _pad(batch: TaskBatch, steps: int) -> TaskBatch:
    """The batch with its time axis zero-padded to ``steps``."""
    extra = steps - batch.inputs.shape[1]
    if extra == 0:
        return batch
    return TaskBatch(
        inputs=torch.nn.functional.pad(batch.inputs, (0, 0, 0, extra)),
        lengths=batch.lengths,
        targets=torch.nn.functional.pad(batch.targets, (0, 0, 0, extra)),
        target_mask=torch.nn.functional.pad(batch.target_mask, (0, extra)),
    )


def _concat(batches: list[TaskBatch], dtype: torch.dtype) -> TaskBatch:
    """Batches of different lengths as one, padded to the longest, values in ``dtype``."""
    steps = max(b.inputs.shape[1] for b in batches)
    padded = [_pad(b, steps) for b in batches]
    return TaskBatch(
        inputs=torch.cat([b.inputs for b in padded]).to(dtype),
        lengths=torch.cat([b.lengths for b in padded]),
        targets=torch.cat([b.targets for b in padded]).to(dtype),
        target_mask=torch.cat([b.target_mask for b in padded]),
    )


def _chunk_size(task: Task, limit: int, elements: int, per_step: int) -> int:
    """Sequences per call to ``task.sample``: about ``elements`` floats of ``per_step``
    floats per time step, at most ``limit``. It does not depend on K, so neither does a
    trial's stream of sequences."""
    return max(1, min(limit, elements // ((task.length + 1) * per_step)))


class _Stream:
    """One trial's fresh training sequences, one at a time, drawn in chunks."""

    def __init__(self, task: Task, seed: int) -> None:
        self.task = task
        self.generator = torch.Generator().manual_seed(seed)
        per_step = task.input_size + task.output_size + 1
        self.chunk = _chunk_size(task, 64, _SAMPLE_ELEMENTS, per_step)
        self.batch: TaskBatch | None = None
        self.next_index = 0

    def next(self) -> TaskBatch:
        if self.batch is None or self.next_index == self.batch.batch_size:
            self.batch = self.task.sample(self.chunk, self.generator)
            _check_targets(self.task, self.batch)
            self.next_index = 0
        i, self.next_index = self.next_index, self.next_index + 1
        steps = int(self.batch.lengths[i])
        return TaskBatch(
            inputs=self.batch.inputs[i : i + 1, :steps],
            lengths=self.batch.lengths[i : i + 1],
            targets=self.batch.targets[i : i + 1, :steps],
            target_mask=self.batch.target_mask[i : i + 1, :steps],
        )


def _check_targets(task: Task, batch: TaskBatch) -> None:
    """The 1997 output units are logistic: value targets outside [0, 1] are unreachable."""
    if task.kind is not TargetKind.VALUE:
        return
    values = batch.targets[batch.target_mask]
    if values.numel() and (values.min() < 0 or values.max() > 1):
        raise ValueError(
            f"train_online: task {task.name!r} has targets in [{float(values.min()):.3g}, "
            f"{float(values.max()):.3g}], but the 1997 network's output units are logistic "
            "sigmoids in [0, 1] (the paper scales its targets into [0, 1])"
        )


def _errors(prediction: Tensor, batch: TaskBatch) -> tuple[Tensor, Tensor]:
    """Per sequence: the mean absolute error and the sum of squared errors over the target
    steps and output units, and the number of such entries."""
    mask = batch.target_mask[..., None].to(prediction.dtype)  # (B, T, 1)
    diff = (prediction - batch.targets) * mask
    entries = mask.sum(dim=(1, 2)) * prediction.shape[-1]
    mean_abs = diff.abs().sum(dim=(1, 2)) / entries.clamp(min=1)
    return mean_abs, (diff * diff).sum(dim=(1, 2)), entries


# -- training -------------------------------------------------------------------------------


class _Window:
    """Each trial's verdicts and errors on its most recent training sequences."""

    def __init__(self, trials: int, size: int) -> None:
        self.size = size
        self.correct = np.zeros((trials, size), dtype=bool)
        self.error = np.zeros((trials, size))
        self.seen = np.zeros(trials, dtype=np.int64)

    def push(self, trials: np.ndarray, correct: np.ndarray, error: np.ndarray) -> None:
        slots = self.seen[trials] % self.size
        self.correct[trials, slots] = correct
        self.error[trials, slots] = error
        self.seen[trials] += 1

    def fired(self, trials: np.ndarray, rule: StopRule) -> np.ndarray:
        full = self.seen[trials] >= self.size
        wrong = self.size - self.correct[trials].sum(axis=1)
        ok = full & (wrong <= rule.max_wrong)
        if rule.max_mean_error is not None:
            ok &= self.error[trials].mean(axis=1) < rule.max_mean_error
        return ok

    def accuracy(self, trials: np.ndarray) -> float:
        filled = np.minimum(self.seen[trials], self.size)
        if trials.size == 0 or filled.sum() == 0:
            return float("nan")
        return float(self.correct[trials].sum() / filled.sum())


def train_trials(
    task: Task,
    network: MemoryBlockNetwork,
    *,
    learning_rate: float,
    data_seeds: list[int],
    stop: StopRule,
    max_sequences: int,
    budget_seconds: float | None,
    progress: bool = True,
) -> TrainingLog:
    """Train the K networks of ``network`` on-line, in place; trial k draws its training
    sequences from a generator seeded with ``data_seeds[k]``. See the module docstring."""
    k_all = network.trials
    if len(data_seeds) != k_all:
        raise ValueError(
            f"train_trials: data_seeds needs one seed per trial ({k_all}), got {len(data_seeds)}"
        )
    streams = [_Stream(task, s) for s in data_seeds]
    window = _Window(k_all, stop.window)
    counts = np.zeros(k_all, dtype=np.int64)
    stopped = np.zeros(k_all, dtype=bool)
    finished = np.full(k_all, np.nan)
    params = list(network.parameters())
    dtype = params[0].dtype
    start = time.perf_counter()
    desc = f"{CELL} {task.name}"
    with Progress(total=k_all * max_sequences, desc=desc, unit="seq", disable=not progress) as bar:
        rounds = 0
        while True:
            now = time.perf_counter() - start
            active = np.flatnonzero(~stopped & (counts < max_sequences))
            if active.size == 0 or (budget_seconds is not None and now >= budget_seconds):
                break
            batch = _concat([streams[k].next() for k in active], dtype)
            trials = None if active.size == k_all else torch.as_tensor(active)
            output = network(batch.inputs[:, None], batch.lengths[:, None], trials)[:, 0]
            weight = batch.target_mask[..., None].to(output.dtype)
            loss = 0.5 * ((output - batch.targets) ** 2 * weight).sum()  # eqs. (16), (19)
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for param, grad in zip(params, grads, strict=True):
                    param.sub_(grad, alpha=learning_rate)  # eq. (17); stopped rows get 0
                prediction = output.detach()
                correct = task.sequence_correct(prediction, batch).cpu().numpy()
                mean_abs = _errors(prediction, batch)[0].cpu().numpy()
            counts[active] += 1
            window.push(active, correct, mean_abs)
            fired = active[window.fired(active, stop)]
            stopped[fired] = True
            finished[fired] = time.perf_counter() - start
            bar.update(active.size)
            rounds += 1
            if rounds % 50 == 0 or fired.size:
                recent = window.accuracy(active)
                bar.set_postfix(stopped=f"{int(stopped.sum())}/{k_all}", recent=recent)
    end = time.perf_counter() - start
    seconds = [float(end if np.isnan(f) else f) for f in finished]
    return TrainingLog(counts.tolist(), stopped.tolist(), seconds)


@torch.no_grad()
def evaluate_trials(
    task: Task, network: MemoryBlockNetwork, *, data_seeds: list[int], size: int
) -> list[TestScore]:
    """Each trial on ``size`` fresh sequences from its own generator, in chunks that keep
    memory bounded; wrong by ``task.sequence_correct``."""
    k_all = network.trials
    gens = [torch.Generator().manual_seed(s) for s in data_seeds]
    a = network.architecture
    per_step = task.input_size + task.output_size + 2 * a.hidden_units + a.cells + a.outputs
    chunk = _chunk_size(task, 256, _TEST_ELEMENTS, per_step)
    wrong = [0] * k_all
    squared = [0.0] * k_all
    entries = [0.0] * k_all
    done = 0
    while done < size:
        n = min(chunk, size - done)
        batches = [task.sample(n, g) for g in gens]
        steps = max(b.inputs.shape[1] for b in batches)
        batches = [_pad(b, steps) for b in batches]
        inputs = torch.stack([b.inputs for b in batches])  # (K, n, T, I)
        lengths = torch.stack([b.lengths for b in batches])  # (K, n)
        output = network(inputs.to(network.w_input.dtype), lengths)
        for k, batch in enumerate(batches):
            prediction = output[k].to(batch.targets.dtype)
            wrong[k] += int((~task.sequence_correct(prediction, batch)).sum())
            _, sq, count = _errors(prediction, batch)
            squared[k] += float(sq.sum())
            entries[k] += float(count.sum())
        done += n
    return [TestScore(wrong[k], size, squared[k] / max(entries[k], 1.0)) for k in range(k_all)]


@torch.no_grad()
def mean_end_state(
    task: Task, network: MemoryBlockNetwork, *, data_seeds: list[int], size: int = _PROBE_SIZE
) -> list[list[float]]:
    """Per trial and memory cell, the mean of |s_c| at the last step of ``size`` fresh
    sequences. A cell whose state has drifted far from 0 has h'(s) near 0, so almost no
    error reaches its input and input gate through the carrousel: the paper's "internal
    state drift" (Sec. 4). Measured before and after training, it shows whether a run
    that did not learn was stuck that way."""
    batches = [task.sample(size, torch.Generator().manual_seed(s)) for s in data_seeds]
    steps = max(b.inputs.shape[1] for b in batches)
    batches = [_pad(b, steps) for b in batches]
    inputs = torch.stack([b.inputs for b in batches]).to(network.w_input.dtype)
    lengths = torch.stack([b.lengths for b in batches])
    states = network.trace(inputs, lengths).state  # (K, B, T, C); frozen past each end
    return states[:, :, -1].abs().mean(dim=1).tolist()


# -- the whole run ---------------------------------------------------------------------------


def _resolve(
    task: Task, how: ExperimentSpec | Architecture | None
) -> tuple[ExperimentSpec | None, Architecture]:
    if how is None:
        specs = SPECS.get(task.name)
        return (specs[0] if specs else None), architecture_for(task)
    if isinstance(how, ExperimentSpec):
        return how, how.architecture.with_io(task.input_size, task.output_size)
    if isinstance(how, Architecture):
        for name, want in (("inputs", task.input_size), ("outputs", task.output_size)):
            if getattr(how, name) != want:
                raise ValueError(
                    f"train_online: the architecture has {name}={getattr(how, name)}, but task "
                    f"{task.name!r} needs {want}"
                )
        return None, how
    raise TypeError(
        "train_online: spec_or_architecture must be an ExperimentSpec, an Architecture or "
        f"None, got {type(how).__name__}"
    )


def train_online(
    task: Task,
    spec_or_architecture: ExperimentSpec | Architecture | None,
    *,
    trials: int,
    seed: int,
    learning_rate: float | None = None,
    max_sequences: int,
    budget_seconds: float | None,
    progress: bool = True,
) -> list[RunResult]:
    """Train and test ``trials`` independent 1997 networks on ``task``, on-line.

    Args:
        task: any lstmkit task.
        spec_or_architecture: a paper experiment (its architecture adapted to the task's
            inputs and outputs, its learning rate and extra stop conditions), a network of
            your own, or None for the paper's experiment for this task (``spec_for``) or
            else ``DEFAULT_ARCHITECTURE`` and ``DEFAULT_LEARNING_RATE``.
        trials: K, networks trained at once; trial k is the run with seed ``seed + k``.
        seed: base seed (>= 0) of initial weights, training and test sequences.
        learning_rate: overrides the experiment's rate.
        max_sequences: training sequences per trial at most.
        budget_seconds: wall time for training at most (None: no limit); testing follows.
        progress: show a progress bar on stderr.

    Returns one ``RunResult`` per trial (cell "lstm1997"), in trial order.
    """
    if not isinstance(task, Task):
        raise TypeError(f"train_online: task must be a lstmkit Task, got {type(task).__name__}")
    _check_int(trials, "trials", 1)
    _check_int(seed, "seed", 0)
    _check_int(max_sequences, "max_sequences", 0)
    if budget_seconds is not None:
        budget_seconds = _check_number(budget_seconds, "budget_seconds", positive=False)
    spec, architecture = _resolve(task, spec_or_architecture)
    if learning_rate is None:
        learning_rate = spec.learning_rate if spec is not None else DEFAULT_LEARNING_RATE
    learning_rate = _check_number(learning_rate, "learning_rate", positive=True)
    stop = StopRule(
        window=task.stop_window,
        allowed_wrong=spec.allowed_wrong if spec is not None else (0, 1),
        max_mean_error=spec.max_mean_error if spec is not None else None,
    )
    trial_seeds = [seed + k for k in range(trials)]
    network = MemoryBlockNetwork(
        architecture, trials, seeds=[derive_seed(s, _INIT) for s in trial_seeds]
    )
    probe_seeds = [derive_seed(s, _PROBE) for s in trial_seeds]
    state_before = mean_end_state(task, network, data_seeds=probe_seeds)
    log = train_trials(
        task,
        network,
        learning_rate=learning_rate,
        data_seeds=[derive_seed(s, _TRAIN) for s in trial_seeds],
        stop=stop,
        max_sequences=max_sequences,
        budget_seconds=budget_seconds,
        progress=progress,
    )
    scores = evaluate_trials(
        task, network, data_seeds=[derive_seed(s, _TEST) for s in trial_seeds], size=task.test_size
    )
    state_after = mean_end_state(task, network, data_seeds=probe_seeds)
    a = architecture
    shared = {
        **task.options(),
        "trials": trials,
        "base_seed": seed,
        "experiment": spec.experiment if spec is not None else None,
        "blocks": a.blocks,
        "cells_per_block": a.cells_per_block,
        "weights": a.num_weights(),
        "gate_bias": a.gate_bias,
        "cell_bias": a.cell_bias,
        "output_bias": a.output_bias,
        "input_gate_bias": a.input_gate_bias,
        "output_gate_bias": a.output_gate_bias,
        "init_range": a.init_range,
        "learning_rate": learning_rate,
        "update": "sequence",
        "stop_window": stop.window,
        "max_wrong_in_window": stop.max_wrong,
        "max_mean_error": stop.max_mean_error,
        "max_sequences": max_sequences,
        "budget_seconds": budget_seconds,
    }
    return [
        RunResult(
            task=task.name,
            cell=CELL,
            length=task.length,
            seed=trial_seeds[k],
            solved=score.error <= task.solved_error_rate,
            stopped=log.stopped[k],
            sequences=log.sequences[k],
            test_error=score.error,
            test_wrong=score.wrong,
            test_size=score.size,
            test_loss=score.loss,
            seconds=log.seconds[k],
            options={
                **shared,
                "trial": k,
                "end_state_initial": [round(v, 4) for v in state_before[k]],
                "end_state_trained": [round(v, 4) for v in state_after[k]],
            },
        )
        for k, score in enumerate(scores)
    ]
