"""Scoring the France probes: a model that carries the country scores 1, one that cannot
see it scores chance, and the probabilities are decode's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lstmkit.lm.decode import next_words, word_probabilities
from lstmkit.lm.facts import fact_curve, score_probes, with_previous_story
from lstmkit.lm.stories import StoryConfig, france_probes, generate_stories
from lstmkit.lm.vocab import Vocabulary
from lstmkit.tasks.fact import COUNTRIES, LANGUAGES

VOCAB = Vocabulary.from_text(generate_stories(StoryConfig(words=20_000, seed=1)), "word")


class CountryMemory(nn.Module):
    """A perfect memory written by hand: it keeps the last country it read (in its state,
    batch on dim 1, as decode expects) and puts almost all its probability on that
    country's language; with ``blind`` it keeps nothing."""

    def __init__(self, vocab: Vocabulary, blind: bool = False) -> None:
        super().__init__()
        self.blind = blind
        self.scale = nn.Parameter(torch.tensor(10.0))  # decode wants a parameter's device
        self.country = {
            vocab.id(c): vocab.id(lang) for c, lang in zip(COUNTRIES, LANGUAGES, strict=True)
        }
        self.size = len(vocab)

    def forward(self, ids, state=None):
        batch, steps = ids.shape
        last = state[0][0, :, 0].clone() if state else torch.full((batch,), -1)
        logits = torch.zeros(batch, steps, self.size)
        for t in range(steps):
            for b in range(batch):
                language = self.country.get(int(ids[b, t]))
                if language is not None and not self.blind:
                    last[b] = language
                if last[b] >= 0:
                    logits[b, t, last[b]] = self.scale
        return logits, [last[None, :, None]]


@pytest.fixture(scope="module")
def probes():
    return france_probes(20, 20, seed=4)


def test_a_model_that_carries_the_country_scores_one(probes):
    score = score_probes(CountryMemory(VOCAB), VOCAB, probes)
    assert score.accuracy == 1.0
    assert score.confidence > 0.9
    assert score.distance == 20 and score.probes == 20


def test_a_model_that_cannot_see_the_country_scores_chance_or_less(probes):
    score = score_probes(CountryMemory(VOCAB, blind=True), VOCAB, probes)
    assert score.confidence == pytest.approx(1 / len(VOCAB))  # uniform over the vocabulary
    assert score.accuracy <= 0.2


def test_the_previous_story_names_another_country_that_must_be_overwritten(probes):
    texts = with_previous_story(probes)
    for text, probe, after in zip(texts, probes, probes[1:] + probes[:1], strict=True):
        before, _, prompt = text.partition("\n\n")
        assert prompt == probe.prompt
        assert before == f"{after.prompt} {after.answer}."
    model = CountryMemory(VOCAB)
    # the memory would answer the earlier story's language had it not read the new country
    assert any(p.answer != q.answer for p, q in zip(probes, probes[1:] + probes[:1], strict=True))
    assert score_probes(model, VOCAB, probes).accuracy == 1.0


def test_probabilities_agree_with_next_words(probes):
    model = CountryMemory(VOCAB)
    text = with_previous_story(probes)[0]
    best = next_words(model, VOCAB, text, count=3)
    found = word_probabilities(model, VOCAB, text, [w for w, _ in best] + ["nonexistentword"])
    for word, prob in best:
        assert found[word] == pytest.approx(prob)
    assert found["nonexistentword"] == 0.0


def test_curve_has_one_score_per_distance():
    scores = fact_curve(CountryMemory(VOCAB), VOCAB, (5, 12), probes=10)
    assert [s.distance for s in scores] == [5, 12]
    assert all(s.accuracy == 1.0 for s in scores)
