"""Vocabularies: text to token ids and back, at the level of characters or of words.

A vocabulary is built from the training text only, so nothing of the validation text
leaks into it. Index 0 is always ``UNK``, the stand-in for anything the training text did
not have; the other tokens follow in order of first appearance, which makes a vocabulary
a pure function of its text.

Levels:

- ``"char"``: every character is a token, newlines and spaces included (char-rnn's choice).
- ``"word"``: a word is a run of letters, digits or underscores; every other visible
  character (".", ",", a quote) is a token of its own; a newline is a token; other
  whitespace only separates. ``decode`` puts the spaces back by simple rules (none before
  closing punctuation or after an opening bracket, a double quote alternately opens and
  closes), so ``decode(encode(text))`` gives normally spaced text, not the exact input.

Unknown tokens: ``encode(text)`` raises :class:`UnknownTokensError` naming them, which is
what the commands show a user whose prompt has characters the model never saw;
``encode(text, unknown="unk")`` maps them to ``UNK`` instead, which is how a validation or
evaluation text is read (each unknown token then costs the model's probability of UNK).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Level = Literal["char", "word"]
LEVELS: tuple[Level, ...] = ("char", "word")
UNK = "<unk>"
"""The token at index 0: whatever the training text did not contain."""

_WORD_PATTERN = re.compile(r"\w+|\n|[^\w\s]")
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%'")
_NO_SPACE_AFTER = frozenset("([{")


class UnknownTokensError(ValueError):
    """A text has tokens outside the vocabulary; ``tokens`` lists them, first seen first."""

    def __init__(self, tokens: Sequence[str], vocabulary: Vocabulary) -> None:
        self.tokens = tuple(tokens)
        shown = ", ".join(repr(t) for t in self.tokens[:8])
        more = f" and {len(self.tokens) - 8} more" if len(self.tokens) > 8 else ""
        super().__init__(
            f"{len(self.tokens)} {vocabulary.level}{'s' if len(self.tokens) != 1 else ''} "
            f"not in the model's vocabulary of {len(vocabulary)}: {shown}{more}"
        )


def tokenize(text: str, level: Level) -> list[str]:
    """The tokens of ``text`` at ``level``, in order."""
    if level == "char":
        return list(text)
    if level == "word":
        return _WORD_PATTERN.findall(text)
    raise ValueError(f"unknown vocabulary level {level!r}; expected one of {', '.join(LEVELS)}")


def detokenize(tokens: Iterable[str], level: Level) -> str:
    """Text from tokens: joined as they are for characters, spaced by rule for words."""
    if level == "char":
        return "".join(tokens)
    out: list[str] = []
    quote_open = False
    previous = "\n"
    for token in tokens:
        closing_quote = token == '"' and quote_open
        space = not (
            previous == "\n"
            or token == "\n"
            or token in _NO_SPACE_BEFORE
            or closing_quote
            or previous in _NO_SPACE_AFTER
            or (previous == '"' and quote_open)  # just after an opening quote
        )
        if token == '"':
            quote_open = not quote_open
        out.append(" " + token if space and out else token)
        previous = token
    return "".join(out)


@dataclass(frozen=True)
class Vocabulary:
    """Tokens at one ``level``; ``tokens[0]`` is ``UNK``."""

    level: Level
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(
                f"unknown vocabulary level {self.level!r}; expected one of {', '.join(LEVELS)}"
            )
        if not self.tokens or self.tokens[0] != UNK:
            raise ValueError(f"a vocabulary's first token must be {UNK!r}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("a vocabulary's tokens must be distinct")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    @classmethod
    def from_text(cls, text: str, level: Level, *, max_size: int | None = None) -> Vocabulary:
        """Every token of ``text``, in order of first appearance, after ``UNK``.

        ``max_size`` (UNK included) keeps only the most frequent tokens, ties broken by
        first appearance; the rest become UNK. Word vocabularies of real text need it.
        """
        if max_size is not None and max_size < 2:
            raise ValueError(f"max_size must be at least 2 (UNK and one token), got {max_size}")
        tokens = tokenize(text, level)
        counts = Counter(tokens)
        order = list(dict.fromkeys(tokens))
        if max_size is not None and len(order) > max_size - 1:
            first_seen = {t: i for i, t in enumerate(order)}
            kept = sorted(order, key=lambda t: (-counts[t], first_seen[t]))[: max_size - 1]
            kept_set = set(kept)
            order = [t for t in order if t in kept_set]
        return cls(level, (UNK, *(t for t in order if t != UNK)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids  # type: ignore[attr-defined]

    def id(self, token: str) -> int:
        """The id of ``token``, or 0 (UNK) when it is not in the vocabulary."""
        return self._ids.get(token, 0)  # type: ignore[attr-defined]

    def unknown_tokens(self, text: str) -> list[str]:
        """The distinct tokens of ``text`` outside the vocabulary, first seen first."""
        ids = self._ids  # type: ignore[attr-defined]
        return list(dict.fromkeys(t for t in tokenize(text, self.level) if t not in ids))

    def encode(self, text: str, *, unknown: Literal["error", "unk"] = "error") -> list[int]:
        """Token ids of ``text``; unknown tokens raise :class:`UnknownTokensError`, or
        become ``UNK`` (id 0) with ``unknown="unk"``."""
        if unknown not in ("error", "unk"):
            raise ValueError(f"unknown must be 'error' or 'unk', got {unknown!r}")
        ids = self._ids  # type: ignore[attr-defined]
        tokens = tokenize(text, self.level)
        if unknown == "error":
            missing = list(dict.fromkeys(t for t in tokens if t not in ids))
            if missing:
                raise UnknownTokensError(missing, self)
        return [ids.get(t, 0) for t in tokens]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; UNK shows as "\\ufffd" in character text and as "<unk>" among
        words."""
        tokens = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"token id {i} is outside the vocabulary of {len(self)}")
            tokens.append("\ufffd" if i == 0 and self.level == "char" else self.tokens[i])
        return detokenize(tokens, self.level)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict; :meth:`from_json` reads it back."""
        return {"level": self.level, "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, data: object) -> Vocabulary:
        """The vocabulary of :meth:`to_json`; anything else raises ValueError saying why."""
        if not isinstance(data, dict) or set(data) != {"level", "tokens"}:
            raise ValueError("a vocabulary must be a JSON object with 'level' and 'tokens'")
        tokens = data["tokens"]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("a vocabulary's 'tokens' must be a list of strings")
        return cls(data["level"], tuple(tokens))
