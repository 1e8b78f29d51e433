"""The gate game's rules: facts, words, levels, the seeded stream generator and the scorer.

The player is the gates of an LSTM with one memory cell per fact. Each word of the stream
offers every cell a candidate value C~_t (the word's own, listed in ``WORDS``); for each
cell the player sets the forget, input and output gates f, i, o to 0 or 1, and the cell
follows the LSTM equations exactly (Olah 2015, "Understanding LSTM Networks"):

    C_t = f_t * C_{t-1} + i_t * C~_t        (keep what the forget gate lets through,
                                             add what the input gate lets in)
    h_t = o_t * tanh(C_t)                    (show the cell through the output gate)

Facts, one cell each, in cell order (``FACTS``):

- ``country``: "France" writes +1, "Japan" writes -1; "I speak fluent ___?" is answered by
  the sign of h: positive = French, negative = Japanese.
- ``bracket``: "(" writes +1 and ")" writes -1 (brackets alternate, never nest);
  "is a bracket open?" is answered by the sign of h: positive = open, negative = closed.
- ``count``: every "star" writes +1; "how many stars?" is answered by the cell's value
  rounded to the nearest whole number (h = tanh(C) carries it, and tanh is one-to-one).

h = 0 (a closed output gate, or an empty cell) gives no answer, which is wrong. Every
other word writes 0 into every cell (neutral words, the question words and "¶", which
starts a new story) except the noise words, which each write a value between 0.6 and 1 in
size into one cell: an input gate left open on them corrupts that cell's memory.

A level's stream is a few stories. A story opens with "¶", then a body of filler words
with each fact's word(s) placed among them, then one question per fact, in random order.
The lag of a fact is the number of steps from the word that last set it (the country, the
last bracket, the last star) to its question; the level says its range. Stories are
independent, so a player who does not reset a cell at "¶" (forget gate closed) carries an
old count or bracket into the next story.

Scoring (:func:`play`, mirrored step for step by the page's script): a right answer earns
``RIGHT_POINTS``; every step at which a cell's output gate is open although that step does
not ask that cell's fact costs ``LEAK_COST`` (the cell "leaks" into an output nobody asked
for). A level is passed when every question is answered right; leaks only cost points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

RIGHT_POINTS = 10
"""Points for a question answered right."""
LEAK_COST = 1
"""Points lost per cell and step with an open output gate where that cell is not asked."""
STORY = "¶"
"""The word that starts every story: the moment to forget what the last story held."""
GATES = ("forget", "input", "output")
"""The order of the gates in a gate array's last axis."""


@dataclass(frozen=True)
class Fact:
    """A fact the player carries in one memory cell, and the question that asks for it."""

    name: str
    """Key in ``FACTS_BY_NAME`` and in the page's data: "country", "bracket", "count"."""
    word: str
    """The question word as it appears in the stream."""
    prompt: str
    """The question as the page asks it."""
    answers: tuple[str, ...]
    """The possible answers; a question's answer is an index into this tuple."""
    reading: Literal["sign", "count"]
    """How h answers: by its sign (answers[0] when positive, answers[1] when negative) or
    by the count C = atanh(h), rounded (answers[k - 1] for k)."""


MAX_COUNT = 4
"""The most stars a story holds; the count question's answers are 1..MAX_COUNT."""

FACTS: tuple[Fact, ...] = (
    Fact("country", "speak?", "I speak fluent ___?", ("French", "Japanese"), "sign"),
    Fact("bracket", "open?", "Is a bracket still open?", ("open", "closed"), "sign"),
    Fact(
        "count",
        "stars?",
        "How many stars in this story?",
        tuple(str(k) for k in range(1, MAX_COUNT + 1)),
        "count",
    ),
)
FACTS_BY_NAME = {fact.name: fact for fact in FACTS}

WordKind = Literal["story", "fact", "question", "neutral", "noise"]


@dataclass(frozen=True)
class Word:
    """A word of the vocabulary and the candidate values C~ it offers the cells."""

    text: str
    kind: WordKind
    writes: dict[str, float] = field(default_factory=dict)
    """Candidate value per fact's cell; cells not named get 0."""

    def candidate(self, fact: str) -> float:
        return self.writes.get(fact, 0.0)


COUNTRY_WORDS = {"France": 0, "Japan": 1}
"""Country word -> the index of its answer (French, Japanese)."""
OPEN, CLOSE = "(", ")"
STAR = "star"

WORDS: tuple[Word, ...] = (
    Word(STORY, "story"),
    Word("France", "fact", {"country": 1.0}),
    Word("Japan", "fact", {"country": -1.0}),
    Word(OPEN, "fact", {"bracket": 1.0}),
    Word(CLOSE, "fact", {"bracket": -1.0}),
    Word(STAR, "fact", {"count": 1.0}),
    *(Word(fact.word, "question") for fact in FACTS),
    *(
        Word(text, "neutral")
        for text in ("the", "a", "and", "then", "we", "it", "was", "very", "old", "went")
    ),
    # Noise: each writes into one cell, sizes 0.6..1 so that a single leak moves a count
    # past the rounding threshold and two or three can flip a sign.
    Word("rain", "noise", {"country": 0.6}),
    Word("wind", "noise", {"country": -0.8}),
    Word("snow", "noise", {"country": 0.9}),
    Word("fog", "noise", {"country": -0.7}),
    Word("comma", "noise", {"bracket": 0.7}),
    Word("dash", "noise", {"bracket": -0.6}),
    Word("colon", "noise", {"bracket": 0.8}),
    Word("quote", "noise", {"bracket": -0.9}),
    Word("moon", "noise", {"count": 0.7}),
    Word("sun", "noise", {"count": 0.6}),
    Word("cloud", "noise", {"count": -0.8}),
    Word("comet", "noise", {"count": -0.6}),
)
"""The vocabulary, in the order of the model's one-hot inputs."""
WORDS_BY_TEXT = {word.text: word for word in WORDS}
QUESTION_FACT = {fact.word: fact.name for fact in FACTS}
"""Question word -> the fact it asks for."""


@dataclass(frozen=True)
class LevelSpec:
    """What a level's streams look like; :func:`generate_stream` draws one."""

    name: str
    intro: str
    """What the level asks of the player, shown before it starts."""
    facts: tuple[str, ...]
    """The facts carried, one cell each, in ``FACTS`` order."""
    lag: tuple[int, int]
    """Least and most steps from the word that sets a fact to its question."""
    noise: float
    """Chance that a filler word is a noise word (one that writes into a cell)."""
    stories: int
    """Stories in the stream, each ending with one question per fact."""
    max_brackets: int = 3
    """The most bracket words a story holds (at least one)."""


LEVELS: tuple[LevelSpec, ...] = (
    LevelSpec(
        name="One fact",
        intro="A country is named; a few words later you are asked which language you "
        "speak. Let the country in (input gate), keep it (forget gate open), and show it "
        "(output gate) only at the question.",
        facts=("country",),
        lag=(3, 4),
        noise=0.0,
        stories=2,
    ),
    LevelSpec(
        name="Noisy words",
        intro="Some words now write into the cell too. Keep the input gate closed on "
        "them, or they drown the country.",
        facts=("country",),
        lag=(6, 9),
        noise=0.6,
        stories=3,
    ),
    LevelSpec(
        name="Brackets",
        intro="A second cell for brackets: '(' opens, ')' closes. At each bracket, forget "
        "the old one (forget gate closed) and let the new one in.",
        facts=("country", "bracket"),
        lag=(6, 10),
        noise=0.5,
        stories=2,
    ),
    LevelSpec(
        name="Counting stars",
        intro="A third cell counts stars: keep the forget gate open and let every star "
        "add to it. Empty the cells at '¶' so that a new story starts from zero.",
        facts=("country", "bracket", "count"),
        lag=(8, 12),
        noise=0.5,
        stories=2,
    ),
    LevelSpec(
        name="Longer lags",
        intro="Three facts, carried across longer stretches of noise.",
        facts=("country", "bracket", "count"),
        lag=(14, 20),
        noise=0.6,
        stories=2,
    ),
    LevelSpec(
        name="The long haul",
        intro="Three facts, carried across the longest stretches, most of the words noise.",
        facts=("country", "bracket", "count"),
        lag=(24, 30),
        noise=0.7,
        stories=2,
    ),
)


@dataclass(frozen=True)
class Question:
    step: int
    fact: str
    answer: int
    """Index of the right answer in the fact's ``answers``."""


@dataclass(frozen=True)
class Stream:
    """One level's words and questions, and the candidate values they offer its cells."""

    facts: tuple[str, ...]
    words: tuple[str, ...]
    questions: tuple[Question, ...]

    def __len__(self) -> int:
        return len(self.words)

    def candidates(self) -> np.ndarray:
        """C~ per step and cell, (time, cells) float64, cells in ``facts`` order."""
        return np.array(
            [[WORDS_BY_TEXT[w].candidate(f) for f in self.facts] for w in self.words],
            dtype=np.float64,
        ).reshape(len(self.words), len(self.facts))

    def asked(self) -> dict[int, str]:
        """Step -> the fact its question asks for."""
        return {q.step: q.fact for q in self.questions}


# -- the generator --------------------------------------------------------------------------


def generate_stream(spec: LevelSpec, rng: np.random.Generator) -> Stream:
    """A stream of ``spec.stories`` stories drawn with ``rng`` (see the module docstring)."""
    words: list[str] = []
    questions: list[Question] = []
    for _ in range(spec.stories):
        story, asked = _story(spec, rng)
        questions += [Question(len(words) + step, fact, answer) for step, fact, answer in asked]
        words += story
    return Stream(spec.facts, tuple(words), tuple(questions))


Asked = tuple[int, str, int]
"""A question inside a story: (step in the story, fact, answer index)."""


def _story(spec: LevelSpec, rng: np.random.Generator) -> tuple[list[str], list[Asked]]:
    """One story's words and its questions, in the order they are asked."""
    n = len(spec.facts)
    rank = np.argsort(rng.permutation(n))  # rank[k]: when fact k is asked, 0 = first
    while True:  # draw lags until every fact's setting word has a step of its own
        lags = rng.integers(spec.lag[0], spec.lag[1] + 1, size=n)
        body = int(max(lags - rank))  # steps 1..body; step 0 is "¶"
        setters = body + 1 + rank - lags  # the question of fact k is at body + 1 + rank[k]
        if len(set(setters.tolist())) == n:
            break
    story: list[str | None] = [STORY] + [None] * body + [None] * n
    for step in setters.tolist():
        story[step] = ""  # reserved: no fact's extra brackets or stars may take it
    asked: list[Asked] = []
    for k, fact in enumerate(spec.facts):
        place = _PLACERS[fact]
        answer = place(story, int(setters[k]), spec, rng)
        question_step = body + 1 + int(rank[k])
        story[question_step] = FACTS_BY_NAME[fact].word
        asked.append((question_step, fact, answer))
    noise = [w.text for w in WORDS if w.kind == "noise" and set(w.writes) & set(spec.facts)]
    neutral = [w.text for w in WORDS if w.kind == "neutral"]
    words = [
        word if word is not None else _filler(noise, neutral, spec.noise, rng) for word in story
    ]
    return words, sorted(asked)


def _filler(noise: list[str], neutral: list[str], chance: float, rng: np.random.Generator) -> str:
    """A noise word with probability ``chance`` (when the level has any), else a neutral one."""
    pool = noise if noise and rng.random() < chance else neutral
    return pool[rng.integers(len(pool))]


def _free_before(story: list[str | None], step: int) -> list[int]:
    return [s for s in range(1, step) if story[s] is None]


def _pick_before(story, step: int, count: int, rng: np.random.Generator) -> list[int]:
    """Up to ``count`` free body steps before ``step``, in increasing order."""
    free = _free_before(story, step)
    count = min(count, len(free))
    return sorted(rng.choice(free, size=count, replace=False).tolist()) if count else []


def _place_country(story, step: int, spec: LevelSpec, rng: np.random.Generator) -> int:
    country = list(COUNTRY_WORDS)[rng.integers(len(COUNTRY_WORDS))]
    story[step] = country
    return COUNTRY_WORDS[country]


def _place_brackets(story, step: int, spec: LevelSpec, rng: np.random.Generator) -> int:
    # Brackets alternate, starting with "(", and the last one sits at ``step``: an odd
    # number leaves one open.
    wanted = int(rng.integers(1, spec.max_brackets + 1))
    steps = [*_pick_before(story, step, wanted - 1, rng), step]
    for j, s in enumerate(steps):
        story[s] = OPEN if j % 2 == 0 else CLOSE
    return 0 if len(steps) % 2 == 1 else 1  # open, closed


def _place_stars(story, step: int, spec: LevelSpec, rng: np.random.Generator) -> int:
    wanted = int(rng.integers(1, MAX_COUNT + 1))
    steps = [*_pick_before(story, step, wanted - 1, rng), step]
    for s in steps:
        story[s] = STAR
    return len(steps) - 1  # the answer "k" has index k - 1


_PLACERS = {"country": _place_country, "bracket": _place_brackets, "count": _place_stars}

# Purposes of the streams drawn from one seed, so that the levels, the training data and
# the evaluations never share a random stream.
LEVEL_STREAMS, TRAIN_STREAMS, UNIT_STREAMS, EVAL_STREAMS = range(4)


def stream_rng(seed: int, purpose: int, *key: int) -> np.random.Generator:
    """The generator for one purpose (``LEVEL_STREAMS``, ...) of ``seed``."""
    return np.random.default_rng([seed, purpose, *key])


def level_streams(seed: int) -> list[Stream]:
    """The stream of every level in ``LEVELS`` for game ``seed``: what the page plays."""
    return [
        generate_stream(spec, stream_rng(seed, LEVEL_STREAMS, index))
        for index, spec in enumerate(LEVELS)
    ]


def answer_from_words(stream: Stream, question: Question) -> int:
    """The answer the words decide, read off the story directly (not through the cells):
    the last country word, the last bracket, or the number of stars since "¶"."""
    start = max(s for s in range(question.step + 1) if stream.words[s] == STORY)
    story = stream.words[start : question.step]
    if question.fact == "country":
        return COUNTRY_WORDS[[w for w in story if w in COUNTRY_WORDS][-1]]
    if question.fact == "bracket":
        return 0 if [w for w in story if w in (OPEN, CLOSE)][-1] == OPEN else 1
    return story.count(STAR) - 1


# -- the scorer -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Play:
    """What a player's gates did on a stream, as the page shows it."""

    cell: np.ndarray
    """C_t per step and cell, (time, cells)."""
    hidden: np.ndarray
    """h_t per step and cell, (time, cells)."""
    answers: tuple[str | None, ...]
    """The player's answer to each question (None: h = 0, no answer)."""
    right: tuple[bool, ...]
    leaks: int
    score: int
    max_score: int

    @property
    def passed(self) -> bool:
        return all(self.right)


def read_answer(fact: Fact, cell: float, output: float) -> str | None:
    """The answer a cell gives through its output gate; None when h = o * tanh(C) = 0.

    The count is floor(C + 1/2), which the page computes with the same float operations,
    so the two agree even on a cell at exactly x.5."""
    if output == 0 or cell == 0:
        return None
    if fact.reading == "sign":
        return fact.answers[0] if cell > 0 else fact.answers[1]
    return str(math.floor(cell + 0.5))


def play(stream: Stream, gates: np.ndarray | Sequence) -> Play:
    """Score ``gates`` (time, cells, 3) of 0s and 1s (forget, input, output) on ``stream``.

    The cell update is written as the page's script writes it, f * C + i * C~ in float64,
    so that both give bit-identical cell states.
    """
    gates = np.asarray(gates, dtype=np.float64)
    expected = (len(stream), len(stream.facts), len(GATES))
    if gates.shape != expected:
        raise ValueError(f"gates must have shape (time, cells, 3) = {expected}, got {gates.shape}")
    if not np.isin(gates, (0.0, 1.0)).all():
        raise ValueError("gates must be 0 or 1")
    candidates = stream.candidates()
    asked = stream.asked()
    cell = np.zeros(len(stream.facts))
    cells, hiddens, leaks = [], [], 0
    for t in range(len(stream)):
        forget, input_, output = gates[t].T
        cell = forget * cell + input_ * candidates[t]
        cells.append(cell)
        hiddens.append(output * np.tanh(cell))
        leaks += sum(
            1 for k, fact in enumerate(stream.facts) if output[k] == 1 and asked.get(t) != fact
        )
    answers, right = [], []
    for q in stream.questions:
        k = stream.facts.index(q.fact)
        fact = FACTS_BY_NAME[q.fact]
        answer = read_answer(fact, cells[q.step][k], gates[q.step, k, 2])
        answers.append(answer)
        right.append(answer == fact.answers[q.answer])
    score = RIGHT_POINTS * sum(right) - LEAK_COST * leaks
    return Play(
        np.array(cells).reshape(expected[:2]),
        np.array(hiddens).reshape(expected[:2]),
        tuple(answers),
        tuple(right),
        leaks,
        score,
        RIGHT_POINTS * len(stream.questions),
    )


def perfect_gates(stream: Stream) -> np.ndarray:
    """Gates (time, cells, 3) that answer every question right with no leak.

    At "¶" empty every cell (f = i = 0); at a word that sets a cell's fact, let it in
    (i = 1), replacing the old value (f = 0) except for stars, which add up (f = 1);
    elsewhere keep the cell (f = 1) and shut out the word (i = 0); open the output gate
    only where the cell's fact is asked.
    """
    asked = stream.asked()
    gates = np.zeros((len(stream), len(stream.facts), len(GATES)))
    for t, text in enumerate(stream.words):
        word = WORDS_BY_TEXT[text]
        for k, fact in enumerate(stream.facts):
            sets = word.kind == "fact" and fact in word.writes
            if word.kind == "story":
                forget, input_ = 0, 0
            elif sets:
                forget, input_ = int(FACTS_BY_NAME[fact].reading == "count"), 1
            else:
                forget, input_ = 1, 0
            gates[t, k] = (forget, input_, int(asked.get(t) == fact))
    return gates


def constant_gates(stream: Stream, forget: int, input_: int) -> np.ndarray:
    """Gates that never change, with the output gate open only at each cell's questions:
    the baseline of a player who does not read the words."""
    asked = stream.asked()
    gates = np.zeros((len(stream), len(stream.facts), len(GATES)))
    gates[:, :, 0], gates[:, :, 1] = forget, input_
    for t, fact in asked.items():
        gates[t, stream.facts.index(fact), 2] = 1
    return gates
