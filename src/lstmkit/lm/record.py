"""A language model read over one text: every gate and state of every unit at every token,
and the model's next-token predictions. The explorer page and the static plots both draw
from it, so the two show the same numbers.

    record = record_text(model, vocabulary, "I grew up in France ...")
    record.tokens                     # the text as the model reads it
    record.quantities["forget"]       # (layers, T, units) float32, the model's own values
    record.predictions[t]             # top next tokens after reading tokens[0..t]

The model starts from a zero state, as a story at the start of a stream does, and runs in
evaluation mode (no dropout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lstmkit._checks import check_positive_int
from lstmkit.layers.named import MODERN_CELLS
from lstmkit.lm.corpus import read_text
from lstmkit.lm.model import LanguageModel
from lstmkit.lm.sources import BUILTIN_CORPORA, open_corpus
from lstmkit.lm.vocab import Vocabulary, detokenize, tokenize

MAX_TOKENS = 5000
"""The longest text one record takes: a page holds tokens x units x quantities floats."""

GATES: dict[str, tuple[str, ...]] = {
    "lstm": ("input", "forget", "output"),
    "gru": ("reset", "update"),
    "rnn": (),
    "mgu": ("forget",),
    "slstm": ("output",),
    "mingru": ("update",),
    "minlstm": ("forget", "input"),  # its input and forget gates are exponential (or stabilised)
    "depth-gated-lstm": ("input", "forget", "output", "depth"),
    "grid-lstm": ("input", "forget", "output", "depth_input", "depth_forget", "depth_output"),
}
"""The sigmoid gates of each cell family, whose saturation is worth counting."""

SATURATION = (0.1, 0.9)
"""A gate value below the first is left-saturated (closed), above the second right-saturated
(open): the thresholds of Karpathy, Johnson & Fei-Fei (2015, Sec. 4.2)."""


class TextError(ValueError):
    """The text cannot be read by the model: empty, too long, or with unknown tokens."""


@dataclass(frozen=True)
class TextRecord:
    """What a model did at every token of one text."""

    tokens: tuple[str, ...]
    level: str
    """'char' or 'word': how the text was split."""
    cell: str
    """The model's cell name (lstm, gru, peephole, ...)."""
    family: str
    """'lstm', 'gru' or 'rnn': which quantities and which diagram apply."""
    quantities: dict[str, np.ndarray]
    """Name -> (layers, T, units) float32, in the trace's names (lstmkit.trace)."""
    predictions: tuple[tuple[tuple[str, float], ...], ...]
    """For each step t, the ``top`` most likely next tokens and their probabilities."""
    next_probability: tuple[float, ...]
    """For each step t < T-1, the probability the model gave to the token that came next."""

    @property
    def num_layers(self) -> int:
        return next(iter(self.quantities.values())).shape[0]

    @property
    def num_units(self) -> int:
        return next(iter(self.quantities.values())).shape[2]

    @property
    def gates(self) -> tuple[str, ...]:
        return tuple(g for g in GATES.get(self.family, ()) if g in self.quantities)


def text_ids(text: str, vocabulary: Vocabulary) -> tuple[list[str], list[int]]:
    """The tokens of ``text`` at the vocabulary's level and their ids; TextError when the
    text is empty, too long, or has tokens the model never saw (all of them named)."""
    if not isinstance(text, str) or not text.strip():
        raise TextError("the text is empty; give the model something to read")
    tokens = tokenize(text, vocabulary.level)
    if len(tokens) > MAX_TOKENS:
        raise TextError(
            f"the text has {len(tokens):,} {vocabulary.level} tokens; at most {MAX_TOKENS:,} "
            "fit in one page (cut it, e.g. with --tokens)"
        )
    try:
        ids = vocabulary.encode(text)
    except ValueError as err:  # UnknownTokensError names them
        raise TextError(str(err)) from None
    return tokens, ids


def text_excerpt(source: str, vocabulary: Vocabulary, *, start: int = 0, tokens: int = 400) -> str:
    """Tokens ``[start, start + tokens)`` of a built-in corpus's validation text (by name)
    or of a UTF-8 file, cut at the vocabulary's level and joined back into text."""
    if source in BUILTIN_CORPORA:
        text = open_corpus(source).valid
    else:
        text = read_text(source)  # CorpusError names a missing, binary or empty file
    pieces = tokenize(text, vocabulary.level)
    if start >= len(pieces):
        raise TextError(
            f"{source} has {len(pieces):,} {vocabulary.level} tokens; --start {start} is past "
            "its end"
        )
    return detokenize(pieces[start : start + tokens], vocabulary.level)


@torch.no_grad()
def record_text(
    model: LanguageModel, vocabulary: Vocabulary, text: str, *, top: int = 5
) -> TextRecord:
    """Run ``model`` over ``text`` and keep its trace and predictions (see the module doc)."""
    check_positive_int(top, "top")
    tokens, token_ids = text_ids(text, vocabulary)
    ids = torch.tensor([token_ids], dtype=torch.long)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        logits, _, trace = model(ids.to(device), return_trace=True)
    finally:
        model.train(was_training)
    quantities = {
        name: trace[name][:, 0, 0].float().cpu().numpy()  # (layers, T, units), direction 0
        for name in trace.names
    }
    probs = torch.softmax(logits[0].float(), dim=-1).cpu()  # (T, V)
    best = torch.topk(probs, min(top, probs.shape[1]), dim=-1)
    predictions = tuple(
        tuple(
            (vocabulary.tokens[i], float(p))
            for p, i in zip(best.values[t].tolist(), best.indices[t].tolist(), strict=True)
        )
        for t in range(len(tokens))
    )
    following = probs[torch.arange(len(tokens) - 1), ids[0, 1:]]
    cell = model.config.cell
    return TextRecord(
        tokens=tuple(tokens),
        level=vocabulary.level,
        cell=cell,
        family=MODERN_CELLS[cell].family,
        quantities=quantities,
        predictions=predictions,
        next_probability=tuple(following.tolist()),
    )


def gate_saturation(record: TextRecord) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """For each gate, the fraction of steps each unit spends left-saturated (< 0.1) and
    right-saturated (> 0.9): two (layers, units) arrays."""
    low, high = SATURATION
    out = {}
    for gate in record.gates:
        values = record.quantities[gate]  # (layers, T, units)
        out[gate] = ((values < low).mean(axis=1), (values > high).mean(axis=1))
    return out


def span_scores(values: np.ndarray, start: int, stop: int) -> np.ndarray:
    """How well each unit is on inside tokens [start, stop) and off outside, as LSTMVis
    selects cells (Strobelt et al. 2018): each unit's values (T, units) scaled to [0, 1]
    over the text, then mean inside minus mean outside. +1 is a unit fully on exactly
    over the span, -1 one fully off exactly over it, 0 a unit that ignores it."""
    steps = values.shape[0]
    if not 0 <= start < stop <= steps:
        raise ValueError(f"a span must satisfy 0 <= start < stop <= {steps}, got [{start}, {stop})")
    if stop - start == steps:
        raise ValueError("the span covers the whole text; nothing is left outside to compare")
    low, high = values.min(axis=0), values.max(axis=0)
    width = np.where(high > low, high - low, 1.0)
    scaled = (values - low) / width  # constant units become all zeros: score 0
    inside = np.zeros(steps, dtype=bool)
    inside[start:stop] = True
    return scaled[inside].mean(axis=0) - scaled[~inside].mean(axis=0)
