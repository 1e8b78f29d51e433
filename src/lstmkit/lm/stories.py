"""The built-in corpus "stories": generated English whose facts must be carried a known distance.

Olah's example of a long-term dependency ("Understanding LSTM Networks", 2015) is a text
that names a country early and, many words later, asks for the word only the country
decides: "I grew up in France ... I speak fluent *French*". A language model trained on
ordinary text meets such pairs too rarely, and at distances nobody controls, to measure
how far it carries a fact. This module writes its own text instead: short stories, one a
paragraph, stories separated by a blank line, each carrying three kinds of fact.

1. A country and its language. A story opens with a sentence naming one of the ten
   ``COUNTRIES`` of :mod:`lstmkit.tasks.fact` ("I grew up in France.", seven phrasings)
   and ends its long part with a sentence whose next word is the country's language
   ("I speak fluent French.", "My first language is French.", six phrasings). A story names
   exactly one country, once, and one language, once, as that answer; no other sentence
   names either.
2. A friend and a pronoun. A friend is introduced by a first name ("My friend Anna lived
   next door.", ten female and ten male names) and, at least one sentence later, referred
   to as "she" or "he" after a lead word that only ever precedes the pronoun ("Later she
   moved to the city."). The pronoun (and "her"/"his") follows from the name alone; no
   other sentence has a third-person pronoun.
3. Brackets and quotes. Some sentences open a double quote or a bracket and close it a few
   words later ('My mother always said "never walk in the rain without a coat".',
   "The old bridge (as I remember it) was made of wood."); every story has them balanced.

Between the country and its language come neutral distractor sentences (and the friend's
sentences, when they fit), chosen so that the **distance** is exact: the number of word
tokens, as ``tokenize(text, "word")`` of :mod:`lstmkit.lm.vocab` splits them (words and
punctuation marks alike), strictly between the "." that ends the country's sentence and
the language. In "I grew up in France. It rained. I speak fluent French." the distance is
6 ("It", "rained", ".", "I", "speak", "fluent"); the country itself is ``distance + 2``
tokens before its language. Each story draws its distance from ``StoryConfig.distance``,
log-uniformly: as many short distances as long ones on a log scale, because a model first
finds the link between a country and its language where the two are close, and only then
learns to carry it further (in our trials, distances drawn uniformly from 5 to 40 left a
256-unit LSTM at chance for thousands of steps, when text with the two a sentence apart
taught it within a few hundred). The shortest possible distance is ``MIN_DISTANCE`` (a
question alone).

Text is ordinary English with capitalised sentence starts and single spaces, so that
``detokenize(tokenize(text, "word"), "word") == text`` and a word vocabulary of the whole
corpus stays under 400 tokens. Generation is deterministic for a seed (a numpy
``default_rng``), and fast: sentences are precomputed with their token counts, so a story
costs a handful of list look-ups.

Borrowed: the template of a fact, distractors and a question, from Olah's example. Ours:
every phrasing, sentence and name, the friend and quote facts, and the distance rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from lstmkit.lm.corpus import Corpus
from lstmkit.lm.vocab import tokenize
from lstmkit.tasks.fact import COUNTRIES, LANGUAGES

FACTS: tuple[str, ...] = (
    "I grew up in {country}.",
    "I was born in {country}.",
    "My family comes from {country}.",
    "I spent my childhood in {country}.",
    "As a child I lived in {country}.",
    "{country} is where I grew up.",
    "My parents moved to {country} when I was small.",
)
"""The first sentence of every story: where the narrator comes from."""
QUESTIONS: tuple[str, ...] = (
    "I speak fluent",
    "I dream in",
    "My first language is",
    "My mother tongue is",
    "At home we always spoke",
    "With my parents I spoke",
)
"""Sentence beginnings whose next word is the language of the story's country."""
FEMALE_NAMES: tuple[str, ...] = (
    "Anna", "Maria", "Emma", "Laura", "Clara", "Nina", "Julia", "Lena", "Rosa", "Eva",
)  # fmt: skip
MALE_NAMES: tuple[str, ...] = (
    "Paul", "Peter", "Tom", "David", "Daniel", "Simon", "Jonas", "Adam", "Leo", "Max",
)  # fmt: skip
PRONOUNS: tuple[str, str] = ("she", "he")
"""The pronoun of a female name, then of a male one (``NAMES`` is in the same order)."""
POSSESSIVES: tuple[str, str] = ("her", "his")
NAMES: tuple[tuple[str, ...], tuple[str, ...]] = (FEMALE_NAMES, MALE_NAMES)
FRIENDS: tuple[str, ...] = (
    "My friend {name} lived next door.",
    "I often played with my friend {name}.",
    "My best friend was called {name}.",
    "{name} was my best friend.",
    "Every summer I visited my friend {name}.",
)
"""How the friend is introduced."""
LEADS: tuple[str, ...] = ("Later", "Then", "One day", "Years later", "A year later")
"""The words that open the friend's later sentence; nothing but the pronoun follows them."""
DEEDS: tuple[str, ...] = (
    "moved to the city",
    "became a teacher",
    "wrote me a long letter",
    'said "we should leave before the rain starts"',
    'told me "the lake is frozen"',
    "sold {possessive} old bike",
    "lost {possessive} keys (again) on the bus",
    'asked me "can you come to the party"',
    "gave me a book about the sea",
    "laughed at my drawings",
)
"""What the friend did later: "{lead} {pronoun} {deed}."."""
DISTRACTORS: tuple[str, ...] = (
    "It rained.",
    "We laughed.",
    "Nobody came.",
    "It snowed.",
    "Time went by.",
    "It was fun.",
    "Summer came early.",
    "The dog barked.",
    "My teacher was kind.",
    "We moved house twice.",
    "We had a small dog.",
    "Our neighbours kept two cats.",
    "The train was often late.",
    "Music was my favourite subject.",
    "I liked to draw pictures.",
    "My uncle fixed old radios.",
    "On Sundays we ate lunch together.",
    "I read many books about birds.",
    "In summer the days were long.",
    "I learned to ride a bike.",
    "The school was near the river.",
    "The bus stopped near our house.",
    "My grandmother baked bread every Friday.",
    "The streets were quiet at night.",
    "We played cards in the evening.",
    "My brother liked to play football.",
    "The winters were long and dark.",
    "Our kitchen smelled of fresh coffee.",
    "Every year we painted the fence.",
    "The library was my favourite place.",
    "The old house had a red door.",
    "My father worked in a small shop.",
    "The garden was full of apple trees.",
    "We often went swimming in the lake.",
    "My sister wanted to become a doctor.",
    "We walked to the market every morning.",
    "I kept a diary for many years.",
    "In the morning, we fed the chickens.",
    "In the evening, we read stories by the fire.",
    'My grandfather used to say "time is money".',
    'Our teacher asked "who broke the window" twice.',
    "We stayed inside (it was too cold) all week.",
    "The old bridge (as I remember it) was made of wood.",
    'A sign on the door said "closed for the winter".',
    "The shop (the one near the station) sold cheap toys.",
    "We had a cat (a very lazy one) for ten years.",
    'My brother wrote "keep out" on the door of our room.',
    'My mother always said "never walk in the rain without a coat".',
)
"""Neutral sentences: no country, language, name or third-person pronoun."""

DEFAULT_DISTANCE: tuple[int, int] = (3, 60)
"""Distances (in word tokens, see the module docstring) a story draws from by default: from
a fact right before its question to about five sentences between them; meant to be within
reach of a one-layer word-level LSTM trained for minutes on a CPU."""

T = TypeVar("T")
_PROBE_STREAM = 0x70726F62  # "prob": the spawn key that sets probe generators apart


# ---- sentences with their lengths -----------------------------------------------------------


def _length(text: str) -> int:
    return len(tokenize(text, "word"))


def _measured(texts: Sequence[str]) -> list[tuple[str, int]]:
    return [(t, _length(t)) for t in texts]


_FACT = [_measured([f.format(country=c) for f in FACTS]) for c in COUNTRIES]  # [country][k]
_QUESTION = _measured(QUESTIONS)
_DISTRACTOR = _measured(DISTRACTORS)
_INTRO = [[_measured([f.format(name=n) for f in FRIENDS]) for n in names] for names in NAMES]
_DEED = [  # [gender]: (lead, sentence, length) for every lead and deed
    [
        (lead, text, _length(text))
        for lead in LEADS
        for deed in DEEDS
        for text in [f"{lead} {PRONOUNS[g]} {deed.format(possessive=POSSESSIVES[g])}."]
    ]
    for g in range(2)
]
_LEAD_LENGTH = {lead: _length(lead) for lead in LEADS}

_LENGTHS = [n for _, n in _DISTRACTOR]
_SHORTEST = min(_LENGTHS)
# Every r >= _SHORTEST is a sum of sentence lengths when each of _SHORTEST .. 2*_SHORTEST - 1
# is the length of some sentence (take one of those, then sentences of _SHORTEST words).
if not set(range(_SHORTEST, 2 * _SHORTEST)) <= set(_LENGTHS):
    raise AssertionError(
        f"DISTRACTORS need a sentence of each length {_SHORTEST}..{2 * _SHORTEST - 1} tokens"
    )


def _fillable(words: int) -> bool:
    """Whether whole distractor sentences can make exactly ``words`` word tokens."""
    return words == 0 or words >= _SHORTEST


_LIMIT = max(_LENGTHS) + _SHORTEST  # from here on every sentence fits
_FITS = [[k for k, n in enumerate(_LENGTHS) if n <= r and _fillable(r - n)] for r in range(_LIMIT)]
_ALL = list(range(len(_DISTRACTOR)))

MIN_DISTANCE = min(n for _, n in _QUESTION)
"""The shortest distance a story can have: its question right after the country's sentence."""
if not all(any(_fillable(d - n) for _, n in _QUESTION) for d in range(MIN_DISTANCE, _LIMIT)):
    raise AssertionError("QUESTIONS' lengths leave some distance without a story")
MIN_PRONOUN_DISTANCE = _SHORTEST + min(_LEAD_LENGTH.values())
"""The shortest distance from a friend's introduction to the pronoun in the stories: one
distractor sentence and a lead word."""


class _Draws:
    """Uniform integers from one numpy generator, drawn in blocks (a call into numpy costs
    about a microsecond, a list look-up a few nanoseconds)."""

    _BLOCK = 4096

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._u: list[float] = []
        self._i = 0

    def below(self, n: int) -> int:
        """An integer in [0, n), uniform."""
        if self._i == len(self._u):
            self._u = self._rng.random(self._BLOCK).tolist()
            self._i = 0
        self._i += 1
        return int(self._u[self._i - 1] * n)

    def log_uniform(self, lo: int, hi: int) -> int:
        """An integer in [lo, hi] whose logarithm is near uniform: as many stories with
        distances 4 to 8 as with 30 to 60."""
        if self._i == len(self._u):
            self._u = self._rng.random(self._BLOCK).tolist()
            self._i = 0
        self._i += 1
        return min(int(lo * ((hi + 1) / lo) ** self._u[self._i - 1]), hi)

    def pick(self, items: Sequence[T]) -> T:
        """One of ``items``, uniform."""
        return items[self.below(len(items))]

    def permutation(self, n: int) -> list[int]:
        """0..n-1 in random order."""
        return self._rng.permutation(n).tolist()


def _fill(words: int, draw: _Draws) -> list[tuple[str, int]]:
    """Distractor sentences of exactly ``words`` word tokens in all (``_fillable(words)``):
    random sentences among those that leave a fillable rest."""
    out = []
    while words > 0:
        sentence = _DISTRACTOR[draw.pick(_FITS[words] if words < _LIMIT else _ALL)]
        out.append(sentence)
        words -= sentence[1]
    return out


# ---- stories --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Story:
    sentences: list[tuple[str, int]]
    """(text, word tokens) of each sentence, the question's answer included."""
    question_at: int
    """The index of the question sentence in ``sentences``."""
    question: str
    """The question's words before its answer ("I speak fluent")."""

    @property
    def text(self) -> str:
        return " ".join(t for t, _ in self.sentences)

    @property
    def words(self) -> int:
        return sum(n for _, n in self.sentences)

    def prompt(self) -> str:
        """The story up to its answer: everything before the question, then its words."""
        return " ".join([*(t for t, _ in self.sentences[: self.question_at]), self.question])


def _story(draw: _Draws, country: int, distance: int) -> _Story:
    """A story whose language is ``distance`` word tokens after its first sentence's "."."""
    fact = draw.pick(_FACT[country])
    question, question_words = draw.pick(
        [q for q in _QUESTION if _fillable(distance - q[1])]  # not empty: checked at import
    )
    gap = distance - question_words
    gender = draw.below(2)
    intro = draw.pick(draw.pick(_INTRO[gender]))
    _, deed, deed_words = draw.pick(_DEED[gender])
    answer = (f"{question} {LANGUAGES[country]}.", question_words + 2)
    middle = gap - intro[1] - deed_words
    if middle >= _SHORTEST:  # the friend fits between the country and its language
        fill = _fill(middle, draw)
        i = draw.below(len(fill))
        j = i + 1 + draw.below(len(fill) - i)  # at least one sentence between intro and deed
        sentences = [fact, *fill[:i], intro, *fill[i:j], (deed, deed_words), *fill[j:], answer]
        return _Story(sentences, len(sentences) - 1, question)
    between = [draw.pick(_DISTRACTOR) for _ in range(1 + draw.below(2))]
    fill = _fill(gap, draw)
    sentences = [fact, *fill, answer, intro, *between, (deed, deed_words)]
    return _Story(sentences, 1 + len(fill), question)


@dataclass(frozen=True)
class StoryConfig:
    """What :func:`generate_stories` writes."""

    distance: tuple[int, int] = DEFAULT_DISTANCE
    """(lo, hi): each story's distance from its country to its language is drawn
    log-uniformly from lo..hi inclusive, counted in word tokens strictly between the "."
    ending the country's sentence and the language (see the module docstring);
    lo >= MIN_DISTANCE."""
    words: int = 100_000
    """How many word tokens to write: stories are added until the text has at least this
    many (the blank line between two stories counts as its two newline tokens); a story is
    never cut."""
    seed: int = 0
    """Seed of ``np.random.default_rng``; the same seed gives the same text."""

    def __post_init__(self) -> None:
        distance = tuple(self.distance)
        if (
            len(distance) != 2
            or not all(isinstance(d, (int, np.integer)) for d in distance)
            or not MIN_DISTANCE <= distance[0] <= distance[1]
        ):
            raise ValueError(
                f"distance must be (lo, hi), integers with {MIN_DISTANCE} <= lo <= hi, "
                f"got {self.distance!r}"
            )
        object.__setattr__(self, "distance", (int(distance[0]), int(distance[1])))
        _check_positive("words", self.words)
        _check_seed(self.seed)


def _check_positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _stories(config: StoryConfig, *, count: int | None, words: int) -> tuple[list[str], int]:
    """The stories (count of them, else until ``words`` tokens) and their word tokens,
    separators included."""
    draw = _Draws(np.random.default_rng(config.seed))
    lo, hi = config.distance
    stories: list[str] = []
    total = 0
    while len(stories) < count if count is not None else total < words:
        story = _story(draw, draw.below(len(COUNTRIES)), draw.log_uniform(lo, hi))
        total += story.words + (2 if stories else 0)  # "\n\n" before all but the first
        stories.append(story.text)
    return stories, total


def generate_stories(
    config: StoryConfig = StoryConfig(), *, count: int | None = None, words: int | None = None
) -> str:
    """Stories as one text, separated by blank lines (no newline at the end): ``count``
    stories if given, else stories until ``words`` word tokens (``config.words`` when
    neither is given)."""
    if count is not None and words is not None:
        raise ValueError("give count (stories) or words (word tokens), not both")
    if count is not None:
        _check_positive("count", count)
    if words is not None:
        _check_positive("words", words)
    stories, _ = _stories(config, count=count, words=words or config.words)
    return "\n\n".join(stories)


def stories_corpus(
    *,
    seed: int = 0,
    train_words: int = 1_000_000,
    valid_words: int = 50_000,
    distance: tuple[int, int] = DEFAULT_DISTANCE,
) -> Corpus:
    """The "stories" corpus: training text from seed ``2 * seed``, validation text from
    ``2 * seed + 1``, so that the two are different draws; a validation story that happens
    to be word for word a training story (short ones can be) is dropped."""
    _check_seed(seed)
    train_config = StoryConfig(distance=distance, words=train_words, seed=2 * seed)
    valid_config = StoryConfig(distance=distance, words=valid_words, seed=2 * seed + 1)
    train, train_total = _stories(train_config, count=None, words=train_words)
    valid, _ = _stories(valid_config, count=None, words=valid_words)
    seen = set(train)
    kept = [s for s in valid if s not in seen]
    valid_text = "\n\n".join(kept)
    lo, hi = train_config.distance
    description = (
        f"generated stories (seed {seed}, distances {lo} to {hi} words): {len(train):,} "
        f"stories, {train_total:,} word tokens for training; {len(kept):,} stories, "
        f"{len(tokenize(valid_text, 'word')):,} for validation"
    )
    return Corpus("stories", "\n\n".join(train), valid_text, description)


# ---- probes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A text cut just before a word that a fact decides."""

    prompt: str
    """The text up to the word, without a trailing space."""
    answer: str
    """The word that comes next."""
    distance: int
    """Word tokens strictly between the end of the fact's sentence and ``answer``."""


def _probe_draws(seed: int, kind: int, distance: int) -> _Draws:
    """A generator for probes: its spawn key keeps it apart from the corpus generators
    (seeded ``default_rng(seed)``) of every seed, so probes are fresh draws, and apart for
    each kind and distance."""
    sequence = np.random.SeedSequence(seed, spawn_key=(_PROBE_STREAM, kind, distance))
    return _Draws(np.random.default_rng(sequence))


def _balanced(draw: _Draws, count: int, n: int) -> list[int]:
    """``count`` values in 0..n-1, each ``count // n`` or one more times, in random order."""
    offset = draw.below(n)  # keeps a single probe's value uniform
    return [(i + offset) % n for i in draw.permutation(count)]


def _check_probe_args(distance: int, count: int, seed: int, least: int) -> None:
    if isinstance(distance, bool) or not isinstance(distance, (int, np.integer)):
        raise ValueError(f"distance must be an integer, got {distance!r}")
    if distance < least:
        raise ValueError(f"distance must be at least {least} word tokens, got {distance}")
    _check_positive("count", count)
    _check_seed(seed)


def france_probes(distance: int, count: int, *, seed: int) -> list[Probe]:
    """``count`` stories cut just before their language, exactly ``distance`` word tokens
    after the "." of the country's sentence, the countries balanced (each ``count // 10``
    or one more times). The prompt is one story from its first word (without the blank
    line that precedes a story in the corpus), ending with the question's words ("... I
    speak fluent"); the answer is the language ("French"). Stories of the corpus at the
    same distance are drawn the same way, so a probe is an ordinary story, only fresh."""
    _check_probe_args(distance, count, seed, MIN_DISTANCE)
    draw = _probe_draws(seed, 0, distance)
    probes = []
    for country in _balanced(draw, count, len(COUNTRIES)):
        story = _story(draw, country, distance)
        probes.append(Probe(story.prompt(), LANGUAGES[country], distance))
    return probes


def pronoun_probes(distance: int, count: int, *, seed: int) -> list[Probe]:
    """``count`` texts cut just before the friend's pronoun, exactly ``distance`` word
    tokens after the "." of the sentence that introduced the friend by name, female and
    male names balanced. The prompt is a story's beginning (the country's sentence, the
    friend's, distractors, a lead word such as "Later"); the answer is "she" or "he"."""
    _check_probe_args(distance, count, seed, MIN_PRONOUN_DISTANCE)
    draw = _probe_draws(seed, 1, distance)
    probes = []
    for gender in _balanced(draw, count, 2):
        leads = [lead for lead, n in _LEAD_LENGTH.items() if distance - n >= _SHORTEST]
        lead = draw.pick(leads)
        fill = _fill(distance - _LEAD_LENGTH[lead], draw)
        fact = draw.pick(draw.pick(_FACT))
        intro = draw.pick(draw.pick(_INTRO[gender]))
        prompt = " ".join([t for t, _ in [fact, intro, *fill]] + [lead])
        probes.append(Probe(prompt, PRONOUNS[gender], distance))
    return probes
