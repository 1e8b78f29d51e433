"""Does a trained model carry the fact? "I grew up in France ... I speak fluent ___".

For each distance, probes from :func:`lstmkit.lm.stories.france_probes` (stories cut just
before the language, the country that decides it ``distance`` words back) are scored by:

- **accuracy**: the share of probes whose most likely next word is the right language;
- **confidence**: the mean probability the model gives the right language.

Each probe is read after another whole story and the blank line that ends it, as every
story is read in training: a model trained on the running text has only ever started a
story from the state the previous one left, never from zeros, and scored from zeros it
misjudges even short distances. The story before probe k is probe k + 1's, completed with
its answer, so the countries before the probes are as balanced as the probes'.

Both come from :mod:`lstmkit.lm.decode`, exact at both levels: for a word model, the
softmax of the word's token after the prompt; for a character model, the probability of
its characters after optional spaces, then of a character that ends a word
(:func:`~lstmkit.lm.decode.word_probabilities`), and the most likely word by a beam search
(:func:`~lstmkit.lm.decode.next_words`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from torch import nn

from lstmkit.lm.decode import next_words, word_probabilities
from lstmkit.lm.stories import Probe, france_probes
from lstmkit.lm.vocab import Vocabulary

DEFAULT_DISTANCES: tuple[int, ...] = (5, 10, 20, 40, 80, 160)
PROBES_PER_DISTANCE = 100
PROBE_SEED = 0


@dataclass(frozen=True)
class FactScore:
    distance: int
    probes: int
    accuracy: float
    confidence: float

    def to_json(self) -> dict:
        return asdict(self)


def word_probability(model: nn.Module, vocab: Vocabulary, prompt: str, word: str) -> float:
    """The model's probability that the word after ``prompt`` is ``word``."""
    return word_probabilities(model, vocab, prompt, [word])[word]


def top_word(model: nn.Module, vocab: Vocabulary, prompt: str) -> str:
    """The model's most likely next word after ``prompt`` (UNK and newline are no words)."""
    return next_words(model, vocab, prompt, count=1)[0][0]


def score_probes(model: nn.Module, vocab: Vocabulary, probes: Sequence[Probe]) -> FactScore:
    """Accuracy and confidence over probes that share one distance."""
    if not probes:
        raise ValueError("no probes to score")
    pairs = list(zip(with_previous_story(probes), probes, strict=True))
    right = sum(top_word(model, vocab, text) == p.answer for text, p in pairs)
    confidence = sum(word_probability(model, vocab, text, p.answer) for text, p in pairs)
    return FactScore(probes[0].distance, len(probes), right / len(probes), confidence / len(probes))


def with_previous_story(probes: Sequence[Probe]) -> list[str]:
    """Each probe's prompt after the next probe's whole story and a blank line."""
    stories = [f"{p.prompt} {p.answer}." for p in probes]
    return [f"{stories[(k + 1) % len(probes)]}\n\n{p.prompt}" for k, p in enumerate(probes)]


def fact_curve(
    model: nn.Module,
    vocab: Vocabulary,
    distances: Sequence[int] = DEFAULT_DISTANCES,
    *,
    probes: int = PROBES_PER_DISTANCE,
    seed: int = PROBE_SEED,
) -> list[FactScore]:
    """One :class:`FactScore` per distance."""
    return [score_probes(model, vocab, france_probes(d, probes, seed=seed + d)) for d in distances]
