"""Decoding a language model: filtered sampling probabilities against hand-computed cases,
sampling against its distribution and against a loop written here, and the beam search for
the next word against an exhaustive enumeration that runs the model on every full text."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from lstmkit.lm.decode import (
    filter_probabilities,
    generate,
    next_words,
    select_state,
    word_probabilities,
)
from lstmkit.lm.vocab import UnknownTokensError, Vocabulary, detokenize, tokenize

CHARS = Vocabulary.from_text("ab ab. ba\n", "char")  # <unk> a b ' ' . \n
CHARS_NO_NEWLINE = Vocabulary.from_text("ab ab. ba", "char")
WORDS = Vocabulary.from_text('the cat sat on the mat .\nhe said " hi " , ( ok )\n', "word")


class Bigram(nn.Module):
    """Logits are a fixed table row chosen by the last id: the state carries nothing the
    output depends on, so every sampling step can be predicted from the table alone."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = nn.Parameter(table)
        self.modes: list[bool] = []
        self.inputs: list[list[list[int]]] = []

    def forward(self, ids, state):
        self.modes.append(self.training)
        self.inputs.append(ids.tolist())
        steps = torch.zeros(1, ids.shape[0], 1) if state is None else state[0]
        return self.table[ids], [steps + ids.shape[1]]  # (B, T, V), [(1, B, 1)]


class SmallLSTM(nn.Module):
    """Embedding -> torch.nn.LSTM -> dropout -> linear, with sharpened random weights."""

    def __init__(self, vocab_size: int, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab_size, 8)
        self.lstm = nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.drop = nn.Dropout(0.5)
        self.out = nn.Linear(16, vocab_size)
        with torch.no_grad():
            self.out.weight.mul_(6.0)  # peaked distributions make the ranking meaningful

    def forward(self, ids, state):
        hidden, (h, c) = self.lstm(self.embed(ids), None if state is None else state[0])
        return self.out(self.drop(hidden)), [(h, c)]


def peaked_bigram(vocab: Vocabulary, successor: dict[str, str]) -> Bigram:
    """Every token in ``successor`` is followed by its successor with probability ~1."""
    table = torch.zeros(len(vocab), len(vocab))
    for token, after in successor.items():
        table[vocab.id(token), vocab.id(after)] = 30.0
    return Bigram(table)


# ---------------------------------------------------------------------------------------
# filter_probabilities

P = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)


def close(got, expected):
    torch.testing.assert_close(got, torch.as_tensor(expected, dtype=got.dtype), atol=1e-12, rtol=0)


def test_filter_plain_and_temperature():
    close(filter_probabilities(P.log()), P)
    root = P.sqrt()  # temperature 2 divides the log-probabilities by 2
    close(filter_probabilities(P.log(), temperature=2.0), root / root.sum())
    square = P**2
    close(filter_probabilities(P.log(), temperature=0.5), square / square.sum())


def test_filter_top_k_and_top_p_by_hand():
    close(filter_probabilities(P.log(), top_k=2), [0, 0, 3 / 7, 4 / 7])
    close(filter_probabilities(P.log(), top_k=10), P)
    close(filter_probabilities(P.log(), top_p=0.65), [0, 0, 3 / 7, 4 / 7])  # 0.4 + 0.3
    close(filter_probabilities(P.log(), top_p=0.75), [0, 2 / 9, 3 / 9, 4 / 9])
    close(filter_probabilities(P.log(), top_p=0.35), [0, 0, 0, 1])
    close(filter_probabilities(P.log(), top_p=1e-9), [0, 0, 0, 1])  # the best always stays
    close(filter_probabilities(P.log(), top_p=1.0), P)
    # nucleus of the top_k result renormalised: 4/7 > 0.55 alone, though 0.4 < 0.55
    close(filter_probabilities(P.log(), top_k=2, top_p=0.55), [0, 0, 0, 1])
    close(filter_probabilities(P.log(), top_k=3, top_p=0.5), [0, 0, 3 / 7, 4 / 7])


def test_filter_batched_top_k_one_is_argmax_and_inf_is_zero():
    logits = torch.randn(3, 5, 11, generator=torch.Generator().manual_seed(0))
    one_hot = nn.functional.one_hot(logits.argmax(-1), 11).float()
    assert torch.equal(filter_probabilities(logits, top_k=1), one_hot)
    logits[..., 4] = -math.inf
    probs = filter_probabilities(logits, temperature=0.7, top_p=0.9)
    assert probs.shape == logits.shape
    assert (probs[..., 4] == 0).all()
    torch.testing.assert_close(probs.sum(-1), torch.ones(3, 5))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (dict(temperature=0.0), "temperature must be a finite number > 0, got 0.0"),
        (dict(temperature=-1), "temperature must be a finite number > 0, got -1"),
        (dict(temperature=math.inf), "temperature must be a finite number > 0, got inf"),
        (dict(temperature=math.nan), "temperature must be a finite number > 0, got nan"),
        (dict(top_k=0), "top_k must be None or an integer >= 1, got 0"),
        (dict(top_k=2.0), "top_k must be None or an integer >= 1, got 2.0"),
        (dict(top_p=0.0), r"top_p must be None or a number in \(0, 1\], got 0.0"),
        (dict(top_p=1.5), r"top_p must be None or a number in \(0, 1\], got 1.5"),
        (dict(top_p=math.nan), r"top_p must be None or a number in \(0, 1\], got nan"),
    ],
)
def test_filter_rejects_bad_arguments(options, message):
    with pytest.raises(ValueError, match=message):
        filter_probabilities(P.log(), **options)


# ---------------------------------------------------------------------------------------
# select_state


def test_select_state_indexes_dim_one_through_lists_and_tuples():
    h, c, extra = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.randn(1, 3, 1)
    index = torch.tensor([2, 0, 0])
    chosen = select_state([(h, c), extra], index)
    assert isinstance(chosen, list) and isinstance(chosen[0], tuple)
    assert torch.equal(chosen[0][0], h[:, [2, 0, 0]])
    assert torch.equal(chosen[0][1], c[:, [2, 0, 0]])
    assert torch.equal(chosen[1], extra[:, [2, 0, 0]])
    assert select_state(None, index) is None
    with pytest.raises(TypeError, match="got dict"):
        select_state({"h": h}, index)


# ---------------------------------------------------------------------------------------
# generate


def expected_samples(table, vocab, prime_ids, length, seed, **filters) -> list[int]:
    """The bigram's samples drawn here: the same filters and the same generator calls."""
    generator = torch.Generator().manual_seed(seed)
    last, ids = prime_ids[-1], []
    for _ in range(length):
        logits = table[last].clone()
        logits[0] = -math.inf
        probs = filter_probabilities(logits, **filters)
        last = int(torch.multinomial(probs, 1, generator=generator))
        ids.append(last)
    return ids


@pytest.mark.parametrize("vocab", [CHARS, WORDS], ids=["char", "word"])
def test_generate_streams_the_sampled_tokens(vocab):
    torch.manual_seed(1)
    model = Bigram(torch.randn(len(vocab), len(vocab)) * 2)
    prime = "ab a" if vocab.level == "char" else "he said"
    options = dict(temperature=0.9, top_k=5)
    pieces = list(
        generate(
            model, vocab, prime, length=40, generator=torch.Generator().manual_seed(3), **options
        )
    )
    ids = expected_samples(model.table.detach(), vocab, vocab.encode(prime), 40, 3, **options)
    assert len(pieces) == 40
    assert all(len(tokenize(piece, vocab.level)) == 1 for piece in pieces)  # one token each
    before = tokenize(prime, vocab.level)
    new = [vocab.tokens[i] for i in ids]
    whole = detokenize(before + new, vocab.level)
    assert prime + "".join(pieces) == whole
    joined = "".join(pieces)  # the prime only adds a space before the first word
    assert (joined.removeprefix(" ") if vocab.level == "word" else joined) == vocab.decode(ids)


def test_generate_after_a_newline_prime_is_the_decoded_ids():
    torch.manual_seed(2)
    model = Bigram(torch.randn(len(WORDS), len(WORDS)) * 2)
    generator = torch.Generator().manual_seed(5)
    pieces = list(generate(model, WORDS, "the cat .\n", length=30, generator=generator))
    ids = expected_samples(model.table.detach(), WORDS, WORDS.encode("the cat .\n"), 30, 5)
    if '"' not in (WORDS.tokens[i] for i in ids):  # quotes: spacing depends on parity only
        assert "".join(pieces) == WORDS.decode(ids)
    assert "".join(pieces) == detokenize(["\n"] + [WORDS.tokens[i] for i in ids], "word")[1:]


def test_generate_word_spacing_joins_onto_the_prime():
    model = peaked_bigram(WORDS, {"cat": "sat", "sat": "on", "said": '"', '"': "hi", "hi": '"'})
    assert list(generate(model, WORDS, "the cat", length=2)) == [" sat", " on"]
    assert list(generate(model, WORDS, "the cat ", length=2)) == ["sat", " on"]
    assert list(generate(model, WORDS, "he said", length=3)) == [' "', "hi", '"']
    assert list(generate(model, WORDS, 'he said " hi', length=1)) == ['"']  # closes the quote
    chars = peaked_bigram(CHARS, {" ": " ", "a": " "})
    assert list(generate(chars, CHARS, "a ", length=2)) == [" ", " "]  # spaces are tokens


def test_generate_is_reproducible_with_a_seed():
    model = SmallLSTM(len(CHARS))

    def sample(seed):
        generator = torch.Generator().manual_seed(seed)
        return "".join(generate(model, CHARS, "ab", length=20, top_p=0.95, generator=generator))

    first = sample(7)
    assert len(first) == 20
    assert sample(7) == first
    assert sample(8) != first


@pytest.mark.parametrize(
    "filters",
    [dict(), dict(temperature=0.7, top_k=4), dict(temperature=1.3, top_p=0.8)],
    ids=["plain", "top_k", "top_p"],
)
def test_generate_samples_follow_the_filtered_distribution_without_unk(filters):
    row = torch.tensor([4.0, 0.5, -0.3, 1.0, 0.1, -1.0])  # UNK the most likely of all
    model = Bigram(row.expand(len(CHARS), -1).clone())  # every step the same distribution
    n = 2000
    generator = torch.Generator().manual_seed(11)
    text = "".join(generate(model, CHARS, "a", length=n, generator=generator, **filters))
    counts = torch.tensor([0] + [text.count(t) for t in CHARS.tokens[1:]], dtype=torch.float64)
    masked = row.clone()
    masked[0] = -math.inf
    expected = filter_probabilities(masked.double(), **filters) * n
    assert counts.sum() == n and "\ufffd" not in text
    assert (counts[expected == 0] == 0).all()
    seen = expected > 0
    chi2 = float(((counts[seen] - expected[seen]) ** 2 / expected[seen]).sum())
    assert chi2 < 25.0, (chi2, counts.tolist(), expected.tolist())  # df <= 4: p < 1e-4


def test_generate_checks_the_prime_and_arguments_at_the_call():
    model = SmallLSTM(len(CHARS))
    with pytest.raises(UnknownTokensError, match="'z'"):
        generate(model, CHARS, "abz", length=3)
    assert len("".join(generate(model, CHARS, "abz", length=3, unknown="unk"))) == 3
    with pytest.raises(ValueError, match="length must be an integer >= 0, got -1"):
        generate(model, CHARS, "ab", length=-1)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, CHARS, "ab", length=3, temperature=0)
    assert list(generate(model, CHARS, "ab", length=0)) == []
    wrong = Bigram(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"expected \(batch, steps, vocabulary size\)"):
        list(generate(wrong, Vocabulary("char", ("<unk>", "a", "b")), "ab", length=2))


def test_generate_empty_prime_starts_after_a_newline():
    model = Bigram(torch.randn(len(CHARS), len(CHARS)))
    list(generate(model, CHARS, "", length=3, generator=torch.Generator().manual_seed(0)))
    assert model.inputs[0] == [[CHARS.id("\n")]]


def test_generate_empty_prime_without_newline_starts_uniformly():
    model = Bigram(torch.randn(len(CHARS_NO_NEWLINE), len(CHARS_NO_NEWLINE)))
    firsts = [
        "".join(
            generate(
                model, CHARS_NO_NEWLINE, "", length=1, generator=torch.Generator().manual_seed(s)
            )
        )
        for s in range(200)
    ]
    assert model.inputs == []  # the first token needs no model call
    assert sorted(set(firsts)) == sorted(CHARS_NO_NEWLINE.tokens[1:])
    assert min(firsts.count(t) for t in CHARS_NO_NEWLINE.tokens[1:]) > 25  # 50 expected each
    pieces = list(
        generate(model, CHARS_NO_NEWLINE, "", length=5, generator=torch.Generator().manual_seed(0))
    )
    assert len(pieces) == 5 and model.inputs[0] == [[CHARS_NO_NEWLINE.id(pieces[0])]]


# ---------------------------------------------------------------------------------------
# next_words


def enumerate_next_words(model, vocab, prompt, max_length) -> dict[str, float]:
    """Every next word within ``max_length`` characters and its probability, by walking all
    strings that can start a word, length by length, running the model afresh on the whole
    text of each (one call per length, all texts of that length side by side)."""
    model.eval()
    words: dict[str, float] = {}
    ends = [i == 0 or not re.fullmatch(r"\w", t) for i, t in enumerate(vocab.tokens)]

    def add(word, p):
        words[word] = words.get(word, 0.0) + p

    level = {"": 1.0}  # text (spaces, or spaces then word characters) -> its probability
    while level:
        texts = list(level)
        with torch.no_grad():
            logits, _ = model(torch.tensor([vocab.encode(prompt + t) for t in texts]), None)
        probs = torch.softmax(logits[:, -1].double(), -1).tolist()  # after each text
        longer = {}
        for text, after in zip(texts, probs, strict=True):
            p, in_word = level[text], text.strip(" ") != ""
            if in_word:  # the word ends at any character that is not a word character
                add(text.strip(" "), p * sum(q for q, end in zip(after, ends, strict=True) if end))
            if len(text) == max_length:
                continue
            for i, t in enumerate(vocab.tokens[1:], start=1):
                if re.fullmatch(r"\w", t) or (t == " " and not in_word):
                    longer[text + t] = p * after[i]
                elif not in_word and not t.isspace():
                    add(t, p * after[i])
        level = longer
    return {w: p for w, p in words.items() if p > 0}


def ranked(words: dict[str, float]) -> list[str]:
    return sorted(words, key=lambda w: -words[w])


@pytest.mark.parametrize("prompt", ["ab ba", "ab ", "ba.", "\n"], ids=repr)
def test_char_next_words_match_exhaustive_enumeration(prompt):
    model = SmallLSTM(len(CHARS), seed=3)
    oracle = enumerate_next_words(model, CHARS, prompt, max_length=5)
    model.train()  # next_words must switch dropout off itself
    got = next_words(model, CHARS, prompt, count=4, beam=8, max_length=5)
    assert model.training and model.drop.training
    assert len(got) == 4
    assert got[0][0] == ranked(oracle)[0]
    for word, p in got:
        assert p == pytest.approx(oracle[word], abs=1e-5), word
    assert [p for _, p in got] == sorted((p for _, p in got), reverse=True)
    wide = next_words(model, CHARS, prompt, count=4, beam=64, max_length=5)
    assert [w for w, _ in wide] == ranked(oracle)[:4]


def test_char_next_words_finds_every_word_with_a_wide_beam():
    model = SmallLSTM(len(CHARS), seed=4)
    oracle = enumerate_next_words(model, CHARS, "ba ab", max_length=4)
    got = dict(next_words(model, CHARS, "ba ab", count=10_000, beam=10_000, max_length=4))
    assert set(got) == set(oracle)
    for word, p in oracle.items():
        assert got[word] == pytest.approx(p, abs=1e-5), word


def test_word_next_words_is_the_softmax_without_unk_and_newline():
    torch.manual_seed(5)
    table = torch.randn(len(WORDS), len(WORDS))
    table[:, 0] = table[:, WORDS.id("\n")] = 10.0  # the two most likely, and skipped
    model = Bigram(table)
    model.train()
    got = next_words(model, WORDS, "the cat", count=3)
    probs = torch.softmax(table[WORDS.id("cat")].double(), -1)
    probs[0] = probs[WORDS.id("\n")] = 0
    best = probs.topk(3).indices.tolist()
    assert [w for w, _ in got] == [WORDS.tokens[i] for i in best]
    assert [p for _, p in got] == pytest.approx([float(probs[i]) for i in best], abs=1e-6)
    assert model.modes == [False] and model.training


def test_next_words_errors():
    model = SmallLSTM(len(CHARS_NO_NEWLINE))
    with pytest.raises(UnknownTokensError, match="'z'"):
        next_words(model, CHARS_NO_NEWLINE, "az")
    with pytest.raises(ValueError, match="prompt is empty and the vocabulary has no newline"):
        next_words(model, CHARS_NO_NEWLINE, "")
    for name in ("count", "beam", "max_length"):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= 1, got 0"):
            next_words(model, CHARS_NO_NEWLINE, "ab", **{name: 0})
    assert next_words(model, CHARS_NO_NEWLINE, "az", unknown="unk", count=2, max_length=3)


def test_decoding_restores_each_submodule_mode():
    model = SmallLSTM(len(CHARS))
    model.train()
    model.lstm.eval()  # a mixed state: must come back as it was, not as model.train()
    pieces = generate(model, CHARS, "ab", length=3, generator=torch.Generator().manual_seed(0))
    next(pieces)
    assert model.training and model.drop.training and not model.lstm.training  # mid-stream
    list(pieces)
    next_words(model, CHARS, "ab", count=2, max_length=4)
    assert model.training and model.drop.training and not model.lstm.training
    bigram = Bigram(torch.zeros(len(CHARS), len(CHARS)))
    list(generate(bigram, CHARS, "ab", length=4))
    assert bigram.modes == [False] * 4 and bigram.training


def test_word_probabilities_match_next_words_at_character_level():
    model = SmallLSTM(len(CHARS), seed=3)
    best = next_words(model, CHARS, "ab b", count=4, beam=64)
    found = word_probabilities(model, CHARS, "ab b", [w for w, _ in best] + ["zz", ""])
    for word, prob in best:
        assert found[word] == pytest.approx(prob, rel=1e-9)
    assert found["zz"] == 0.0 and found[""] == 0.0  # unspellable, and no word at all
