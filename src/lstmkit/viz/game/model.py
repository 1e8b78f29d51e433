"""The model the player is compared with: a small lstmkit LSTM trained on the game's streams.

The network reads the stream one word at a time (one-hot over ``levels.WORDS``) and, at a
question's step, answers through a linear readout of h_t: the logits of the asked fact's
answers (``ANSWER_SLICES``) go through a softmax, trained with cross-entropy at question
steps only. It never sees the candidate values the player is given: its gates and cell
states are its own, learnt from the answers alone.

Training draws fresh streams from the levels' generator with a random stream of its own
(``levels.TRAIN_STREAMS``), so it does not replay the levels' streams (a short one may
still come up again by chance), cycling through the levels so that each gets the same
number of updates; Adam with clipped gradients for a fixed number of steps, deterministic
for a seed.

Which unit carries which fact (:func:`choose_units`): on fresh streams, for each fact,
the Pearson correlation r between every unit's cell state at that fact's question steps
and the fact's value there (+1/-1 for French/Japanese and open/closed, k for k stars). The
fact with the largest |r| anywhere takes its unit first, then the next among the units
left, so no unit stands for two facts. The sign of r is kept: a unit may carry France as
a negative cell state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from lstmkit.layers import LSTM
from lstmkit.progress import Progress
from lstmkit.trace import Trace
from lstmkit.viz.game.levels import (
    EVAL_STREAMS,
    FACTS,
    FACTS_BY_NAME,
    LEVELS,
    TRAIN_STREAMS,
    UNIT_STREAMS,
    WORDS,
    LevelSpec,
    Stream,
    generate_stream,
    stream_rng,
)

WORD_INDEX = {word.text: k for k, word in enumerate(WORDS)}


def _answer_slices() -> dict[str, slice]:
    slices, start = {}, 0
    for fact in FACTS:
        slices[fact.name] = slice(start, start + len(fact.answers))
        start += len(fact.answers)
    return slices


ANSWER_SLICES = _answer_slices()
"""Fact -> its answers' columns in the readout's logits."""
NUM_ANSWERS = sum(len(fact.answers) for fact in FACTS)
FACT_INDEX = {fact.name: k for k, fact in enumerate(FACTS)}


DEFAULT_STEPS = 1000
"""Training updates by default: about 20 s on 2 CPU cores. With seed 0 the model then
answered 99.7% or more of the questions right on fresh streams of every level."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything training depends on; ``build_game`` sets ``steps`` and ``seed``."""

    steps: int = DEFAULT_STEPS
    """Adam updates."""
    seed: int = 0
    """Seeds the initialisation and the training streams."""
    hidden: int = 24
    """Units of the LSTM."""
    batch_size: int = 32
    """Streams per update, all from one level."""
    lr: float = 1e-2
    """Adam's learning rate."""
    clip_norm: float = 1.0
    """Gradients are rescaled to at most this total norm before each update."""
    forget_bias: float = 2.0
    """Initial forget-gate bias: sigmoid(2) = 0.88 keeps the cell from the first update on,
    so the gradient reaches facts 30 steps back (Gers et al. 2000)."""


class GameModel(nn.Module):
    """An LSTM over one-hot words and a linear readout of every fact's answers."""

    def __init__(self, hidden: int, forget_bias: float) -> None:
        super().__init__()
        self.lstm = LSTM(len(WORDS), hidden, batch_first=True, forget_bias=forget_bias)
        self.readout = nn.Linear(hidden, NUM_ANSWERS)

    def forward(self, x: Tensor, *, return_trace: bool = False):
        """Logits (B, T, NUM_ANSWERS), and the LSTM's trace when asked for."""
        if return_trace:
            h, _, trace = self.lstm(x, return_trace=True)  # h: (B, T, H)
            return self.readout(h), trace
        h, _ = self.lstm(x)
        return self.readout(h)


@dataclass(frozen=True)
class Batch:
    """Streams as tensors, padded at the end (an all-zero input, no question)."""

    x: Tensor
    """(B, T, len(WORDS)) one-hot words."""
    fact: Tensor
    """(B, T) int64: index in FACTS of the fact asked at that step, -1 where none is."""
    answer: Tensor
    """(B, T) int64: the right answer's index within its fact's answers, 0 where none."""


def encode(streams: Sequence[Stream]) -> Batch:
    """One-hot inputs and question targets of ``streams``."""
    steps = max(len(s) for s in streams)
    words = np.full((len(streams), steps), -1)
    fact = np.full((len(streams), steps), -1)
    answer = np.zeros((len(streams), steps), dtype=np.int64)
    for b, stream in enumerate(streams):
        words[b, : len(stream)] = [WORD_INDEX[w] for w in stream.words]
        for q in stream.questions:
            fact[b, q.step] = FACT_INDEX[q.fact]
            answer[b, q.step] = q.answer
    index = torch.from_numpy(words)
    x = nn.functional.one_hot(index.clamp(min=0), len(WORDS)).float()
    x[index < 0] = 0.0  # padding
    return Batch(x, torch.from_numpy(fact), torch.from_numpy(answer))


def question_loss(logits: Tensor, batch: Batch) -> Tensor:
    """Mean cross-entropy over all question steps, each over its own fact's answers."""
    total = logits.new_zeros(())
    for name, columns in ANSWER_SLICES.items():
        asked = batch.fact == FACT_INDEX[name]  # (B, T)
        if asked.any():
            total = total + nn.functional.cross_entropy(
                logits[asked][:, columns], batch.answer[asked], reduction="sum"
            )
    return total / (batch.fact >= 0).sum()


def predictions(logits: Tensor, batch: Batch) -> Tensor:
    """(B, T) the answer index the model gives at each question step (-1 elsewhere)."""
    out = torch.full(batch.fact.shape, -1, dtype=torch.int64)
    for name, columns in ANSWER_SLICES.items():
        asked = batch.fact == FACT_INDEX[name]
        out[asked] = logits[asked][:, columns].argmax(dim=-1)
    return out


@dataclass(frozen=True)
class Trained:
    model: GameModel
    config: TrainConfig
    final_loss: float
    """Mean loss over the last tenth of the updates."""
    seconds: float


def train(config: TrainConfig, *, progress: bool = True) -> Trained:
    """Train a fresh ``GameModel`` for ``config.steps`` updates; deterministic per seed."""
    with training_threads():
        return _train(config, progress)


def _train(config: TrainConfig, progress: bool) -> Trained:
    start = time.perf_counter()
    rng = stream_rng(config.seed, TRAIN_STREAMS)
    with torch.random.fork_rng(devices=[]):  # seed the initialisation, leave the caller's RNG
        torch.manual_seed(config.seed)
        model = GameModel(config.hidden, config.forget_bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    model.train()
    tail = max(1, config.steps // 10)
    losses: list[float] = []
    with Progress(total=config.steps, desc="game model", unit="step", disable=not progress) as bar:
        for step in range(config.steps):
            spec = LEVELS[step % len(LEVELS)]
            batch = encode([generate_stream(spec, rng) for _ in range(config.batch_size)])
            loss = question_loss(model(batch.x), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            optimizer.step()
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=float(np.mean(losses[-tail:])))
    model.eval()
    return Trained(model, config, float(np.mean(losses[-tail:])), time.perf_counter() - start)


@torch.no_grad()
def run(model: GameModel, streams: Sequence[Stream]) -> tuple[Batch, Tensor, Trace]:
    """The model on ``streams``: the batch, the logits (B, T, NUM_ANSWERS) and the trace."""
    batch = encode(streams)
    logits, trace = model(batch.x, return_trace=True)
    return batch, logits, trace


@dataclass(frozen=True)
class UnitChoice:
    unit: int
    r: float
    """Pearson correlation of the unit's cell state with the fact's value at its questions."""


def fact_value(fact: str, answer: Tensor) -> Tensor:
    """The value a fact stands for: +1/-1 for a sign fact's two answers, k for k stars."""
    if FACTS_BY_NAME[fact].reading == "sign":
        return 1.0 - 2.0 * answer.double()
    return answer.double() + 1.0


def correlations(model: GameModel, streams: Sequence[Stream]) -> dict[str, np.ndarray]:
    """Fact -> r of every unit's cell state with the fact's value, (hidden,)."""
    batch, _, trace = run(model, streams)
    cell = trace["cell"][0, 0].double()  # (B, T, H)
    result = {}
    for name in ANSWER_SLICES:
        asked = batch.fact == FACT_INDEX[name]
        if not asked.any():
            continue
        states = cell[asked]  # (questions, H)
        value = fact_value(name, batch.answer[asked])
        states = states - states.mean(dim=0)
        value = value - value.mean()
        scale = states.norm(dim=0) * value.norm()
        r = (states * value[:, None]).sum(dim=0) / scale.clamp(min=1e-12)
        result[name] = r.numpy()
    return result


def choose_units(model: GameModel, seed: int, streams_per_level: int = 64) -> dict[str, UnitChoice]:
    """Each fact's unit by the rule in the module docstring, over fresh streams of every
    level (``levels.UNIT_STREAMS``)."""
    rng = stream_rng(seed, UNIT_STREAMS)
    streams = [generate_stream(spec, rng) for spec in LEVELS for _ in range(streams_per_level)]
    r = correlations(model, streams)
    choices: dict[str, UnitChoice] = {}
    taken: set[int] = set()
    while len(choices) < len(r):
        best = max(
            (
                (abs(float(r[fact][unit])), fact, unit)
                for fact in r
                if fact not in choices
                for unit in range(len(r[fact]))
                if unit not in taken
            ),
            key=lambda item: (item[0], -FACT_INDEX[item[1]], -item[2]),
        )
        _, fact, unit = best
        choices[fact] = UnitChoice(unit, float(r[fact][unit]))
        taken.add(unit)
    return choices


def fresh_accuracy(model: GameModel, spec: LevelSpec, seed: int, level: int, count: int) -> float:
    """The fraction of questions answered right on ``count`` fresh streams of a level."""
    rng = stream_rng(seed, EVAL_STREAMS, level)
    batch, logits, _ = run(model, [generate_stream(spec, rng) for _ in range(count)])
    answers = predictions(logits, batch)
    asked = batch.fact >= 0
    return float((answers[asked] == batch.answer[asked]).double().mean())


TRACED = ("forget", "input", "output", "candidate", "cell", "hidden")
"""The trace quantities the page shows for each fact's unit."""


@dataclass(frozen=True)
class ModelOnLevel:
    """The model on one level's exact stream: its chosen units and its answers."""

    units: dict[str, dict[str, np.ndarray]]
    """Fact -> quantity in ``TRACED`` -> (time,) float32, the values of the fact's unit."""
    answers: tuple[int, ...]
    """The model's answer (an index into the fact's answers) to each question, in order."""
    confidence: tuple[float, ...]
    """The softmax probability it gave that answer, among the fact's answers."""
    right: tuple[bool, ...]


def on_level(model: GameModel, stream: Stream, units: dict[str, UnitChoice]) -> ModelOnLevel:
    """Trace ``model`` on ``stream`` and keep each of the stream's facts' units."""
    _, logits, trace = run(model, [stream])
    kept = {
        fact: {name: trace[name][0, 0, 0, :, units[fact].unit].numpy() for name in TRACED}
        for fact in stream.facts
    }  # trace[name]: (layer, direction, batch, time, unit)
    answers, confidence, right = [], [], []
    for q in stream.questions:
        probabilities = logits[0, q.step, ANSWER_SLICES[q.fact]].softmax(dim=-1)
        answer = int(probabilities.argmax())
        answers.append(answer)
        confidence.append(float(probabilities[answer]))
        right.append(answer == q.answer)
    return ModelOnLevel(kept, tuple(answers), tuple(confidence), tuple(right))


@contextmanager
def training_threads() -> Iterator[None]:
    """One torch thread inside the block unless OMP_NUM_THREADS says otherwise.

    The model's matrices are tiny (24 units): on 2 CPU cores an update took 22 ms on one
    thread and 59 ms on two, where the threads only synchronise. The caller's setting comes
    back afterwards.
    """
    before = torch.get_num_threads()
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
