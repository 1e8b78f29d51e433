"""Decoding a trained language model: sampling text, and guessing the next word.

The model is any ``torch.nn.Module`` called as ``logits, state = model(ids, state)``::

    ids     (B, T)     token ids, long
    state   None for a fresh start, else what the previous call returned: a list with one
            entry per layer, each a Tensor or a tuple of Tensors with the batch on dim 1
            (torch.nn.LSTM's (num_layers * directions, B, H) convention)
    logits  (B, T, V)  unnormalised log-probabilities of the token after each position

Every call here runs under ``torch.no_grad()`` with the model in eval mode (dropout off),
and gives each submodule back the train/eval mode it had, call by call, so a half-consumed
:func:`generate` never leaves the model in a mode its owner did not choose.

Sampling (:func:`generate`). The prime is fed in one call, then tokens are drawn one at a
time from ``filter_probabilities(logits)`` with ``torch.multinomial``, so a seeded
``torch.Generator`` gives the same text every time. UNK (id 0) is never drawn: it stands for
"some token the training text did not have", which is not a token one can print, and a
trained model gives it little mass anyway. An empty prime starts after a newline token when
the vocabulary has one (the model has seen many lines begin there); otherwise the first
token is drawn uniformly from the vocabulary (UNK excluded), since without any context there
is no distribution of the model's to draw it from, and that token is part of the output.

Next words (:func:`next_words`). For a word-level model the next word is the next token, and
its probability is read off one softmax. A character-level model only gives the next
character, and a word's probability is a product over its characters, each conditioned on
the ones before it: finding the most likely words is a search over character strings,
exponential if done exhaustively. We run a beam search: keep the ``beam`` most probable
partial words, extend each by every character in one batched model call per step (each
partial's LSTM state follows it through :func:`select_state`), and collect the words that
end. The search stops at ``max_length`` characters, or once ``count`` words are found and the
best partial is less likely than the count-th of them (extending a partial only lowers its
probability). The beam only chooses which words to report. Their probabilities are then
computed exactly, in one more batched call that scores every path spelling each word (the
beam may have pruned some, e.g. the one with two leading spaces); they are products of the
model's probabilities, never renormalised over the beam.

What "the next word" is, at character level: the text after the prompt made of

- optional leading spaces (a newline or other whitespace before any word character ends
  the line, so such a path gives no word), then
- either a run of word characters (regex ``\\w``), ended by the first character that is not
  one (space, punctuation, newline, or UNK, whose stand-in "\\ufffd" is not a word
  character), or a single punctuation character (any other visible character).

The probability of a word is the probability of its characters and, for a run, of the
character after it not being a word character: P(" cat" then not ``\\w``) =
P(" ") P("c"|" ") P("a"|" c") P("t"|" ca") P(not \\w|" cat"). Words are returned without their
leading spaces, and the probability of a returned word sums every path that spells it
within ``max_length`` characters: "cat", " cat", "  cat", ... each a different string for
the model. If the prompt ends inside a word, the path without a space continues that word,
and only the continuation is returned ("t" after "the ca").
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
from torch import Tensor, nn

from lstmkit.lm.model import map_state
from lstmkit.lm.vocab import Vocabulary, detokenize, tokenize

State = list | tuple | Tensor | None
Unknown = Literal["error", "unk"]

UNK_ID = 0
NEWLINE = "\n"
_WORD_CHAR = re.compile(r"\w")


# ---------------------------------------------------------------------------------------
# Shared helpers


def select_state(state: State, index: Tensor) -> State:
    """The state of the batch entries ``index`` (in that order, repeats allowed).

    Indexes dim 1 of every tensor, recursing through lists and tuples; None stays None.
    Beam search uses it to give each surviving hypothesis its parent's state.
    """
    return map_state(state, lambda t: t.index_select(1, index))


@contextmanager
def _decoding(model: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd inside; every submodule's own mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _run(model: nn.Module, ids: Tensor, state: State, vocab: Vocabulary) -> tuple[Tensor, State]:
    """One model call on ``ids`` (B, T), its logits checked against the vocabulary."""
    with _decoding(model):
        logits, state = model(ids, state)
    expected = (ids.shape[0], ids.shape[1], len(vocab))
    if not isinstance(logits, Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"the model returned logits of shape {got}; expected (batch, steps, vocabulary "
            f"size) = {expected}: is this the model trained with this vocabulary?"
        )
    return logits, state


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_vocabulary(vocab: Vocabulary) -> None:
    if len(vocab) < 2:
        raise ValueError(
            f"the vocabulary has {len(vocab)} token (only UNK); decoding needs at least one "
            f"real token"
        )


# ---------------------------------------------------------------------------------------
# Sampling


def filter_probabilities(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> Tensor:
    """Sampling probabilities (..., V) from ``logits`` (..., V), filtered in this order:

    1. ``softmax(logits / temperature)``: below 1 sharpens, above 1 flattens;
    2. ``top_k``: only the k most likely tokens keep their probability;
    3. ``top_p`` (nucleus sampling, Holtzman et al. 2020): of what is left, renormalised,
       only the smallest set of most likely tokens whose total reaches ``top_p``; the most
       likely token is always kept;

    and renormalised to sum to 1. Tokens with logit -inf get probability 0. The top_p step
    works on the top_k result renormalised, so ``top_p`` is a share of what sampling can
    still pick.
    """
    _check_filters(temperature, top_k, top_p)
    dtype = torch.promote_types(logits.dtype, torch.float32)  # half precision softmax is coarse
    probs = torch.softmax(logits.to(dtype) / temperature, dim=-1)
    if top_k is not None and top_k < probs.shape[-1]:
        kept = torch.zeros_like(probs, dtype=torch.bool)
        kept.scatter_(-1, probs.topk(top_k, dim=-1).indices, True)
        probs = _renormalise(probs * kept)
    if top_p is not None and top_p < 1.0:
        ordered, order = probs.sort(dim=-1, descending=True)
        before = ordered.cumsum(dim=-1) - ordered  # mass of the more likely tokens; 0 first
        kept = torch.zeros_like(probs, dtype=torch.bool)
        kept.scatter_(-1, order, before < top_p)
        probs = _renormalise(probs * kept)
    return probs


def _renormalise(probs: Tensor) -> Tensor:
    return probs / probs.sum(dim=-1, keepdim=True)


def _check_filters(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not math.isfinite(temperature)
        or temperature <= 0
    ):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}")
    if top_p is not None and (
        isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1
    ):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}")


def generate(
    model: nn.Module,
    vocab: Vocabulary,
    prime: str,
    *,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    unknown: Unknown = "error",
) -> Iterator[str]:
    """Text pieces continuing ``prime``, one per sampled token, ``length`` of them.

    ``prime + "".join(pieces)`` is the prime followed by the sampled tokens: characters as
    they are; words spaced the way :func:`~lstmkit.lm.vocab.detokenize` spaces them after the
    prime's tokens (so the first piece of " sat" after "the cat" carries its space, a "."
    does not, and a closing quote knows the prime opened one). After a prime that ends in
    whitespace, the first piece drops its leading space. Pieces come as they are sampled,
    for printing while the model runs.

    The arguments and the prime are checked now, not at the first piece: an out-of-vocabulary
    prime raises :class:`~lstmkit.lm.vocab.UnknownTokensError` here unless
    ``unknown="unk"``. See the module docstring for UNK and for an empty prime.
    """
    _check_vocabulary(vocab)
    _check_count(length, "length", 0)
    _check_filters(temperature, top_k, top_p)
    prime_ids = vocab.encode(prime, unknown=unknown)
    history = tokenize(prime, vocab.level)
    if not prime_ids and NEWLINE in vocab:
        prime_ids, history = [vocab.id(NEWLINE)], [NEWLINE]  # context only, not printed
    sampler = _Sampler(model, vocab, temperature, top_k, top_p, generator)
    ids = sampler.sample_ids(prime_ids, length)
    drop_space = vocab.level == "word" and prime[-1:].isspace()  # spaces are no word tokens
    return _pieces(ids, vocab, history, drop_space=drop_space)


class _Sampler:
    """Draws token ids from the model, one call per token, with UNK masked out."""

    def __init__(self, model, vocab, temperature, top_k, top_p, generator) -> None:
        self.model, self.vocab, self.generator = model, vocab, generator
        self.filters = dict(temperature=temperature, top_k=top_k, top_p=top_p)
        self.device = _device(model)

    def sample_ids(self, context: list[int], length: int) -> Iterator[int]:
        if length == 0:
            return
        if not context:  # no prime and no newline token: the first token has no context
            first = self._draw_uniform()
            yield first
            context, length = [first], length - 1
        state: State = None
        ids = torch.tensor([context], dtype=torch.long, device=self.device)  # (1, T)
        for step in range(length):
            logits, state = _run(self.model, ids, state, self.vocab)
            token = self._draw(logits[0, -1])
            yield token
            if step + 1 < length:  # the last token's successor is never needed
                ids = torch.tensor([[token]], dtype=torch.long, device=self.device)

    def _draw(self, logits: Tensor) -> int:
        """One id from ``logits`` (V,) after the filters, never UNK."""
        logits = logits.clone()
        logits[UNK_ID] = -math.inf
        return self._multinomial(filter_probabilities(logits, **self.filters))

    def _draw_uniform(self) -> int:
        """One id, all but UNK equally likely; the filters have nothing to rank here."""
        probs = torch.ones(len(self.vocab), device=self.device)
        probs[UNK_ID] = 0.0
        return self._multinomial(probs)

    def _multinomial(self, probs: Tensor) -> int:
        if self.generator is not None:
            probs = probs.to(self.generator.device)
        return int(torch.multinomial(probs, 1, generator=self.generator))


def _pieces(
    ids: Iterator[int], vocab: Vocabulary, history: list[str], *, drop_space: bool
) -> Iterator[str]:
    """The text each new token adds to ``detokenize(history)``.

    Detokenizing only ever appends (a token's spacing depends on the tokens before it, never
    after), so the new suffix is exactly what the token adds. Re-detokenizing the whole
    history costs O(length) per token, nothing beside a model call, and keeps the spacing
    rules (quote parity included) in one place, :func:`~lstmkit.lm.vocab.detokenize`.
    """
    history = list(history)
    shown = len(detokenize(history, vocab.level))
    for i in ids:
        history.append(vocab.tokens[i])
        text = detokenize(history, vocab.level)
        piece, shown = text[shown:], len(text)
        if drop_space:
            piece, drop_space = piece.removeprefix(" "), False
        yield piece


# ---------------------------------------------------------------------------------------
# Next words


def next_words(
    model: nn.Module,
    vocab: Vocabulary,
    prompt: str,
    *,
    count: int = 5,
    beam: int = 32,
    max_length: int = 24,
    unknown: Unknown = "error",
) -> list[tuple[str, float]]:
    """The ``count`` most likely next words after ``prompt``, with their probabilities,
    most likely first (fewer if fewer words are possible).

    Word level: the next token's softmax; UNK and the newline token are not words and are
    skipped (their probabilities are not spread over the rest). ``beam`` and ``max_length``
    are not used. Character level: a beam search of ``beam`` partial words of at most
    ``max_length`` characters, leading spaces included (see the module docstring).

    An empty prompt means "at the start of a line" and needs a newline token in the
    vocabulary; an out-of-vocabulary prompt raises
    :class:`~lstmkit.lm.vocab.UnknownTokensError` unless ``unknown="unk"``.
    """
    _check_vocabulary(vocab)
    _check_count(count, "count", 1)
    _check_count(beam, "beam", 1)
    _check_count(max_length, "max_length", 1)
    state, first = _after_prompt(model, vocab, prompt, unknown)
    if vocab.level == "word":
        return _next_tokens(first, vocab, count)
    search = _CharSearch(model, vocab, state, first, max_length)
    candidates = search.candidates(beam, count)
    return search.exact(candidates)


def word_probabilities(
    model: nn.Module,
    vocab: Vocabulary,
    prompt: str,
    words: Sequence[str],
    *,
    max_length: int = 24,
    unknown: Unknown = "error",
) -> dict[str, float]:
    """The probability that the next word after ``prompt`` is each of ``words``, exactly
    as :func:`next_words` defines and computes it (every leading-space path summed, at
    character level); 0 for a word the vocabulary cannot spell."""
    _check_vocabulary(vocab)
    _check_count(max_length, "max_length", 1)
    state, first = _after_prompt(model, vocab, prompt, unknown)
    if vocab.level == "word":
        return {w: math.exp(float(first[vocab.id(w)])) if w in vocab else 0.0 for w in words}
    spellable = [w for w in words if w and len(w) <= max_length and all(c in vocab for c in w)]
    found = dict(_CharSearch(model, vocab, state, first, max_length).exact(spellable))
    return {w: found.get(w, 0.0) for w in words}


def _after_prompt(
    model: nn.Module, vocab: Vocabulary, prompt: str, unknown: Unknown
) -> tuple[State, Tensor]:
    """The model's state after ``prompt`` and its log-probabilities (V,) of the next token;
    an empty prompt starts after a newline token."""
    context = vocab.encode(prompt, unknown=unknown)
    if not context:
        if NEWLINE not in vocab:
            raise ValueError(
                "the prompt is empty and the vocabulary has no newline token to start a line "
                "from; give a prompt"
            )
        context = [vocab.id(NEWLINE)]
    device = _device(model)
    logits, state = _run(model, torch.tensor([context], device=device), None, vocab)
    return state, torch.log_softmax(logits[0, -1].double(), dim=-1)


def _next_tokens(logp: Tensor, vocab: Vocabulary, count: int) -> list[tuple[str, float]]:
    logp = logp.clone()
    logp[UNK_ID] = -math.inf
    if NEWLINE in vocab:
        logp[vocab.id(NEWLINE)] = -math.inf
    best = logp.topk(min(count, len(vocab))).indices.tolist()
    return [(vocab.tokens[i], math.exp(float(logp[i]))) for i in best if logp[i] > -math.inf]


class _CharSearch:
    """Beam search for the next word of a character model, from the prompt's state.

    A partial word is a string of spaces, or of spaces then word characters; ``word`` marks
    the second kind. Log-probabilities are float64, summed along a path.
    """

    def __init__(
        self, model: nn.Module, vocab: Vocabulary, state: State, first: Tensor, max_length: int
    ):
        self.model, self.vocab, self.state, self.first = model, vocab, state, first
        self.max_length = max_length
        self.device = first.device
        tokens = vocab.tokens
        flags = [
            (i != UNK_ID and _WORD_CHAR.fullmatch(t) is not None) for i, t in enumerate(tokens)
        ]
        self.is_word = torch.tensor(flags, device=self.device)  # (V,)
        self.is_space = torch.tensor([t == " " for t in tokens], device=self.device)
        self.ends_word = ~self.is_word  # UNK, spaces, newlines, punctuation
        self.punctuation = [
            i for i, t in enumerate(tokens) if i != UNK_ID and not flags[i] and not t.isspace()
        ]

    def candidates(self, beam: int, count: int) -> list[str]:
        """Up to ``count`` words, the most probable by the paths the beam found."""
        found: dict[str, float] = {}  # stripped word -> log-probability summed over paths
        texts, logps = [""], torch.zeros(1, dtype=torch.float64, device=self.device)  # (N,)
        words = torch.zeros(1, dtype=torch.bool, device=self.device)  # (N,) past the spaces?
        state, logp_next = self.state, self.first[None]  # logp_next: (N, V)
        for length in range(self.max_length + 1):
            can_grow = length < self.max_length
            self._complete(texts, logps, words, logp_next, found, can_grow=can_grow)
            if not can_grow:
                break
            parents, chars, logps = self._extend(logps, words, logp_next, beam)
            if not len(logps) or _settled(found, count, float(logps[0])):
                break
            texts = [texts[p] + self.vocab.tokens[c] for p, c in zip(parents, chars, strict=True)]
            ids = torch.tensor(chars, device=self.device)[:, None]  # (N, 1)
            words = self.is_word[ids[:, 0]]
            state = select_state(state, torch.tensor(parents, device=self.device))
            logits, state = _run(self.model, ids, state, self.vocab)
            logp_next = torch.log_softmax(logits[:, -1].double(), dim=-1)
        ranked = sorted(found.items(), key=lambda item: -item[1])
        return [word for word, _ in ranked[:count]]

    def _extend(
        self, logps: Tensor, words: Tensor, logp_next: Tensor, beam: int
    ) -> tuple[list[int], list[int], Tensor]:
        """The ``beam`` most probable partials one character longer, best first, as parent
        indices, appended character ids and log-probabilities. Spaces may only lead; UNK,
        punctuation and newlines never continue a partial."""
        allowed = torch.where(words[:, None], self.is_word, self.is_word | self.is_space)
        scores = torch.where(allowed, logps[:, None] + logp_next, -math.inf).flatten()  # (N*V,)
        best = scores.topk(min(beam, scores.numel()))
        keep = best.values > -math.inf
        flat = best.indices[keep]
        parents, chars = flat // len(self.vocab), flat % len(self.vocab)
        return parents.tolist(), chars.tolist(), best.values[keep]

    def _complete(self, texts, logps, words, logp_next, found, *, can_grow: bool) -> None:
        """Record the words that end after these partials: runs ended by a non-word
        character, and (if one more character fits) single punctuation after spaces."""
        ending = torch.logsumexp(logp_next[:, self.ends_word], dim=-1)  # (N,)
        for n, (text, word) in enumerate(zip(texts, words.tolist(), strict=True)):
            if word:
                _add(found, text.lstrip(" "), float(logps[n] + ending[n]))
            elif can_grow:
                for i in self.punctuation:
                    _add(found, self.vocab.tokens[i], float(logps[n] + logp_next[n, i]))

    def exact(self, words: Sequence[str]) -> list[tuple[str, float]]:
        """``words`` with their exact probabilities, most likely first: every path of k
        leading spaces then the word (within ``max_length`` characters) scored in one
        batched model call from the prompt's state."""
        if not words:
            return []
        space = self.vocab.id(" ") if " " in self.vocab else None
        paths, owners = [], []
        for w, word in enumerate(words):
            spaces = self.max_length - len(word) if space is not None else 0
            for k in range(spaces + 1):
                paths.append([space] * k + [self.vocab.id(c) for c in word])
                owners.append(w)
        logp = self._path_logps(paths)
        owner = torch.tensor(owners, device=self.device)
        totals = [float(torch.logsumexp(logp[owner == w], dim=0)) for w in range(len(words))]
        ranked = sorted(zip(words, totals, strict=True), key=lambda item: -item[1])
        return [(word, math.exp(total)) for word, total in ranked if total > -math.inf]

    def _path_logps(self, paths: list[list[int]]) -> Tensor:
        """log P(path, then a non-word character if the path ends in a word character)."""
        lengths = torch.tensor([len(p) for p in paths], device=self.device)  # (N,)
        width = int(lengths.max())
        ids = torch.tensor([p + [p[-1]] * (width - len(p)) for p in paths], device=self.device)
        start = select_state(
            self.state, torch.zeros(len(paths), dtype=torch.long, device=self.device)
        )
        logits, _ = _run(self.model, ids, start, self.vocab)  # (N, W, V), causal: padding is after
        after = torch.log_softmax(logits.double(), dim=-1)
        before = torch.cat([self.first.expand(len(paths), 1, -1), after], dim=1)  # (N, W+1, V)
        chars = before[:, :-1].gather(-1, ids[..., None]).squeeze(-1)  # (N, W)
        inside = torch.arange(width, device=self.device) < lengths[:, None]
        total = torch.where(inside, chars, 0.0).sum(dim=-1)
        last = ids.gather(1, (lengths - 1)[:, None]).squeeze(1)  # (N,)
        final = before[torch.arange(len(paths), device=self.device), lengths]  # (N, V)
        ending = torch.logsumexp(final[:, self.ends_word], dim=-1)
        return torch.where(self.is_word[last], total + ending, total)


def _add(found: dict[str, float], word: str, logp: float) -> None:
    """Merge one more path spelling ``word`` into its summed log-probability."""
    if logp > -math.inf:
        old = found.get(word, -math.inf)
        high, low = max(old, logp), min(old, logp)
        found[word] = high + math.log1p(math.exp(low - high))


def _settled(found: dict[str, float], count: int, best_partial: float) -> bool:
    """True when ``count`` words are found and the best partial word is already less likely
    than the count-th: extending it only lowers its probability."""
    if len(found) < count:
        return False
    return best_partial < sorted(found.values(), reverse=True)[count - 1]
