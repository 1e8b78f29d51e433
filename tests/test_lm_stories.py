"""The generated "stories" corpus: its facts, distances, probes and determinism."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from lstmkit.lm import stories as st
from lstmkit.lm.corpus import Corpus
from lstmkit.lm.stories import (
    DEFAULT_DISTANCE,
    DISTRACTORS,
    FEMALE_NAMES,
    MALE_NAMES,
    StoryConfig,
    france_probes,
    generate_stories,
    pronoun_probes,
    stories_corpus,
)
from lstmkit.lm.vocab import Vocabulary, detokenize, tokenize
from lstmkit.tasks.fact import COUNTRIES, LANGUAGES

NAMES = {**dict.fromkeys(FEMALE_NAMES, "she"), **dict.fromkeys(MALE_NAMES, "he")}
THIRD_PERSON = {"she": "she", "her": "she", "he": "he", "his": "he"}


def words(text: str) -> list[str]:
    return tokenize(text, "word")


@pytest.fixture(scope="module")
def text() -> str:
    return generate_stories(StoryConfig(seed=3), words=60_000)


@pytest.fixture(scope="module")
def stories(text) -> list[list[str]]:
    """Each story as its word tokens."""
    return [words(s) for s in text.split("\n\n")]


def distance(tokens: list[str], answer_at: int) -> int:
    """Tokens strictly between the first "." (the end of the story's first sentence) and
    the token at ``answer_at``."""
    return answer_at - tokens.index(".") - 1


# ---- determinism ----------------------------------------------------------------------------


def test_same_seed_same_text():
    config = StoryConfig(seed=7)
    assert generate_stories(config, count=50) == generate_stories(config, count=50)
    assert generate_stories(config, count=50) != generate_stories(StoryConfig(seed=8), count=50)


def test_count_and_words():
    assert len(generate_stories(StoryConfig(), count=5).split("\n\n")) == 5
    text = generate_stories(StoryConfig(), words=1_000)
    assert len(words(text)) >= 1_000
    assert len(words(text.rsplit("\n\n", 1)[0])) < 1_000  # no story more than needed
    assert generate_stories(StoryConfig(words=300)) == generate_stories(StoryConfig(), words=300)
    with pytest.raises(ValueError, match="not both"):
        generate_stories(StoryConfig(), count=1, words=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(distance=(2, 10)), "distance must be"),
        (dict(distance=(10, 5)), "distance must be"),
        (dict(distance=(5,)), "distance must be"),
        (dict(words=0), "words must be a positive integer"),
        (dict(seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_config_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StoryConfig(**kwargs)


def test_corpus_train_and_valid_share_no_story():
    corpus = stories_corpus(seed=1, train_words=30_000, valid_words=5_000, distance=(3, 12))
    assert isinstance(corpus, Corpus) and corpus.name == "stories"
    train, valid = corpus.train.split("\n\n"), corpus.valid.split("\n\n")
    assert len(valid) > 50 and not set(train) & set(valid)
    assert corpus.train == generate_stories(StoryConfig(seed=2, distance=(3, 12)), words=30_000)
    assert stories_corpus(seed=1, train_words=30_000, valid_words=5_000, distance=(3, 12)) == (
        corpus
    )


# ---- the facts ------------------------------------------------------------------------------


def test_one_country_and_its_language(stories):
    for tokens in stories:
        countries = [t for t in tokens if t in COUNTRIES]
        languages = [t for t in tokens if t in LANGUAGES]
        assert len(countries) == 1 and len(languages) == 1, " ".join(tokens)
        assert languages[0] == LANGUAGES[COUNTRIES.index(countries[0])]
        assert tokens.index(countries[0]) < tokens.index(".")  # in the first sentence
        at = tokens.index(languages[0])
        assert tokens[at + 1] == "."
        assert " ".join(tokens[:at]).endswith(st.QUESTIONS)  # the answer ends a question


def test_distances_cover_the_range(stories):
    found = Counter(
        distance(tokens, next(i for i, t in enumerate(tokens) if t in LANGUAGES))
        for tokens in stories
    )
    assert min(found) == DEFAULT_DISTANCE[0] and max(found) == DEFAULT_DISTANCE[1]
    assert len(found) == DEFAULT_DISTANCE[1] - DEFAULT_DISTANCE[0] + 1


def test_distractors_are_neutral():
    banned = {*COUNTRIES, *LANGUAGES, *NAMES, *THIRD_PERSON, *st.LEADS}
    for sentence in DISTRACTORS:
        assert not banned & set(words(sentence)), sentence
        assert sentence[0].isupper() and sentence.endswith(".")


def test_pronoun_agrees_with_the_name(stories):
    for tokens in stories:
        names = [t for t in tokens if t in NAMES]
        assert len(names) == 1
        pronouns = [(i, t) for i, t in enumerate(tokens) if t in THIRD_PERSON]
        assert pronouns, " ".join(tokens)
        name_at = tokens.index(names[0])
        for i, pronoun in pronouns:
            assert THIRD_PERSON[pronoun] == NAMES[names[0]]
            # a sentence or more, then a lead word, between the friend's sentence and pronoun
            assert i - tokens.index(".", name_at) - 1 >= st.MIN_PRONOUN_DISTANCE


def test_quotes_and_brackets_balanced(stories):
    with_marks = 0
    for tokens in stories:
        depth, quoted = 0, False
        for t in tokens:
            if t == "(":
                depth += 1
            elif t == ")":
                depth -= 1
                assert depth >= 0
            elif t == '"':
                quoted = not quoted
        assert depth == 0 and not quoted, " ".join(tokens)
        with_marks += "(" in tokens or '"' in tokens
    assert with_marks > len(stories) // 4  # common enough to be learnt


def test_vocabulary_small_and_text_round_trips(text):
    vocabulary = Vocabulary.from_text(text, "word")
    assert len(vocabulary) < 400
    assert vocabulary.decode(vocabulary.encode(text)) == text
    assert detokenize(words(text), "word") == text


def test_generation_is_fast():
    start = time.perf_counter()
    generate_stories(StoryConfig(), words=200_000)
    assert time.perf_counter() - start < 3.0  # about 0.15 s; generous for a busy machine


# ---- probes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [st.MIN_DISTANCE, 4, 5, 6, 17, 40, 80])
def test_france_probes(d):
    probes = france_probes(d, 25, seed=0)
    assert len(probes) == 25
    countries = Counter()
    for probe in probes:
        tokens = words(probe.prompt)
        assert probe.distance == d == distance(tokens, len(tokens))  # the answer comes next
        assert probe.prompt == probe.prompt.rstrip() and probe.prompt.endswith(st.QUESTIONS)
        (country,) = [t for t in tokens if t in COUNTRIES]
        assert probe.answer == LANGUAGES[COUNTRIES.index(country)]
        assert not set(tokens) & set(LANGUAGES)
        countries[country] += 1
    assert sorted(countries.values()) == [2] * 5 + [3] * 5  # balanced: 25 over 10
    assert france_probes(d, 25, seed=0) == probes
    assert france_probes(d, 25, seed=1) != probes


def test_probes_are_not_the_corpus_stream():
    """Probe stories come from their own generator, not the corpus's of the same seed."""
    corpus_prompts = {
        s.split(" " + lang + ".")[0]
        for s in generate_stories(StoryConfig(seed=0, distance=(30, 30)), count=20).split("\n\n")
        for lang in LANGUAGES
        if " " + lang + "." in s
    }
    assert not corpus_prompts & {p.prompt for p in france_probes(30, 20, seed=0)}


def test_pronoun_probes():
    for d in (st.MIN_PRONOUN_DISTANCE, 5, 6, 12, 30):
        probes = pronoun_probes(d, 10, seed=2)
        assert Counter(p.answer for p in probes) == {"she": 5, "he": 5}
        for probe in probes:
            tokens = words(probe.prompt)
            (name,) = [t for t in tokens if t in NAMES]
            intro_end = tokens.index(".", tokens.index(name))
            assert len(tokens) - intro_end - 1 == d == probe.distance
            assert probe.answer == NAMES[name]
            assert not set(tokens) & set(THIRD_PERSON)
            assert probe.prompt.endswith(st.LEADS)


def test_probe_checks():
    with pytest.raises(ValueError, match="distance must be at least 3"):
        france_probes(2, 10, seed=0)
    with pytest.raises(ValueError, match="count must be a positive integer"):
        france_probes(10, 0, seed=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        pronoun_probes(10, 10, seed=-1)
