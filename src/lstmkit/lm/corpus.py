"""Text corpora for language models: a user's file or folder, or Python's own source.

A language model trains on one text and is judged on another, so every corpus here is a
pair, ``train`` and ``valid``, and the one rule every way of splitting keeps is that the two
never share a piece: a line, in a single file, is never cut between them, and the files of
a folder go whole to one side or the other. Where a user gave their own split
(``valid=...``), it is taken as it is.

Where the text comes from:

- one file: the validation text is the file's last ``valid_fraction``, cut at a line break
  (the first one at or after the cut point, else the last one before it, else the cut
  point itself), so ``train + valid`` is the whole file;
- a folder: every regular file under it, recursively, in order of relative path; hidden
  files and folders (names starting with ".") are left out, and so are files that are not
  UTF-8 text or have no text (binary, undecodable, empty, unreadable): their relative paths
  are listed in :attr:`Corpus.skipped` so that the commands can say what they passed over.
  A file goes to validation when a hash of its relative path (CRC-32) falls in the first
  ``valid_fraction`` of the hash range: the split depends on the file's name only, not on
  which other files are there. When that leaves either side empty, the last files in path
  order are validation instead; a folder of one file is split like a file;
- :func:`stdlib_corpus`: the Python standard library's own ``.py`` source, text that every
  machine with Python has (the analogue of char-rnn's Linux kernel source).

Texts are read as UTF-8, a byte order mark dropped and Windows line ends ("\\r\\n") made
"\\n". Files are joined with a blank line between them ("\\n\\n", trailing newlines of each
file removed first).

Every problem with a user's text raises :class:`CorpusError` with a one-line message that
names the file and says what was wrong and what was expected; the command line prints it
as ``lstmkit: error: <message>`` and exits with status 2.
"""

from __future__ import annotations

import codecs
import math
import os
import sys
import sysconfig
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MIN_CHARS = 100
"""The fewest characters of training text a corpus may have: less is not a corpus, and
would not fill one training window of the usual lengths."""
DEFAULT_VALID_FRACTION = 0.05
FILE_SEPARATOR = "\n\n"
"""What goes between two files joined into one text: a blank line."""

_UTF8_EXPECTED = "expected UTF-8 text"
_STDLIB_SKIPPED = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "__pycache__"}
)
"""Folders of the standard library left out: installed packages, test suites (with data
files in odd encodings), IDLE and the retired 2to3."""


class CorpusError(ValueError):
    """A text that cannot be a corpus; the message names the file, what was wrong and what
    was expected, in one line."""


@dataclass(frozen=True)
class Corpus:
    """A training text and its validation text, never sharing a line or a file."""

    name: str
    """A short name for logs and checkpoint folders ("shakespeare", "stdlib")."""
    train: str
    """The text the model learns from; the vocabulary is built from it alone."""
    valid: str
    """The held-out text the model is judged on."""
    description: str
    """One line for logs: where the text came from, how it was split, how long it is."""
    skipped: tuple[str, ...] = ()
    """Files of a folder that were left out because they are not UTF-8 text or are empty,
    as paths relative to the folder (those of a ``valid`` folder joined to its path)."""


# ---- one file -------------------------------------------------------------------------------


def read_text(path: str | Path) -> str:
    """The text of the file at ``path``: UTF-8, a byte order mark dropped, "\\r\\n" made
    "\\n". A missing path, a folder, a binary or undecodable file, or one with no text
    (empty or only whitespace) raises :class:`CorpusError`."""
    path = Path(path)
    return _decode(_read_bytes(path), path)


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise CorpusError(f"{path}: no such file; expected a UTF-8 text file")
    if path.is_dir():
        raise CorpusError(f"{path} is a folder; expected a UTF-8 text file here")
    try:
        return path.read_bytes()
    except OSError as error:
        raise CorpusError(
            f"{path} cannot be read ({error.strerror or error}); expected a readable text file"
        ) from error


def _decode(data: bytes, path: Path) -> str:
    nul = data.find(b"\x00")
    if nul >= 0:  # no text encoding but UTF-16/32 has NUL bytes, and those are not UTF-8
        raise CorpusError(f"{path} looks binary (a NUL byte at offset {nul:,}); {_UTF8_EXPECTED}")
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        raise CorpusError(
            f"{path} is not valid UTF-8 (byte 0x{data[offset]:02x} at offset {offset:,}); "
            f"{_UTF8_EXPECTED} (convert it first, e.g. with iconv)"
        ) from error
    text = text.replace("\r\n", "\n")
    if not text:
        raise CorpusError(f"{path} is empty; expected a file with some text")
    if not text.strip():
        raise CorpusError(
            f"{path} has only whitespace ({len(text):,} characters); expected a file with some text"
        )
    return text


def _split_text(text: str, valid_fraction: float) -> tuple[str, str]:
    """``text`` cut in two at a line break near ``1 - valid_fraction`` of its length, so
    that no line is in both parts and ``train + valid == text``."""
    cut = int(len(text) * (1 - valid_fraction))
    after = text.find("\n", cut)
    before = text.rfind("\n", 0, cut)
    # the next line break, else the one before (the next may be the text's last character,
    # leaving nothing for validation), else the character itself (a text of one line)
    candidates = [i + 1 for i in (after, before) if i >= 0] + [cut]
    for at in candidates:
        if text[:at].strip() and text[at:].strip():
            return text[:at], text[at:]
    return text[:cut], text[cut:]


# ---- folders --------------------------------------------------------------------------------


def _files_under(folder: Path, *, skip_folders: frozenset[str] = frozenset()) -> list[str]:
    """Relative paths (with "/") of the regular files under ``folder``, sorted; hidden names
    and folders named in ``skip_folders`` left out. Folder links are not followed."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".") and f not in skip_folders]
        for name in files:
            if not name.startswith(".") and Path(root, name).is_file():
                found.append(Path(root, name).relative_to(folder).as_posix())
    return sorted(found)


def _read_files(folder: Path, relative: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(relative path, text) of every file that :func:`read_text` accepts, and the relative
    paths of the others."""
    texts, skipped = [], []
    for rel in relative:
        try:
            texts.append((rel, read_text(folder / rel)))
        except CorpusError:
            skipped.append(rel)
    return texts, skipped


def _read_folder(folder: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """The texts of ``folder``'s files and the skipped paths; a folder without a single
    text raises :class:`CorpusError`."""
    relative = _files_under(folder)
    if not relative:
        raise CorpusError(
            f"{folder} has no files (hidden ones aside); expected a folder of UTF-8 text files"
        )
    texts, skipped = _read_files(folder, relative)
    if not texts:
        shown = ", ".join(skipped[:5]) + (
            f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        )
        raise CorpusError(
            f"{folder}: none of its files is UTF-8 text with content ({shown}); "
            "expected at least one text file"
        )
    return texts, skipped


def _in_valid(relative: str, valid_fraction: float) -> bool:
    """Whether the file at ``relative`` belongs to validation: CRC-32 of the path, which is
    the same on every machine and run (Python's ``hash`` of a string is not)."""
    return zlib.crc32(relative.encode("utf-8")) < valid_fraction * 2**32


def _split_files(
    texts: list[tuple[str, str]], valid_fraction: float
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Training and validation files (at least two files given): by hash of the path, or,
    when that leaves a side empty, the last ``round(n * valid_fraction)`` files (at least
    one, at most n - 1) for validation."""
    valid = [t for t in texts if _in_valid(t[0], valid_fraction)]
    train = [t for t in texts if not _in_valid(t[0], valid_fraction)]
    if not valid or not train:
        k = min(len(texts) - 1, max(1, round(len(texts) * valid_fraction)))
        train, valid = texts[:-k], texts[-k:]
    return train, valid


def _join(texts: list[str]) -> str:
    return FILE_SEPARATOR.join(t.rstrip("\n") for t in texts)


# ---- checks ---------------------------------------------------------------------------------


def _check_fraction(valid_fraction: float) -> None:
    if not (isinstance(valid_fraction, (int, float)) and math.isfinite(valid_fraction)) or not (
        0 < valid_fraction <= 0.5
    ):
        raise CorpusError(
            f"valid_fraction must be a number in (0, 0.5], the share held out for "
            f"validation; got {valid_fraction!r}"
        )


def _check_min_chars(min_chars: int) -> None:
    if isinstance(min_chars, bool) or not isinstance(min_chars, int) or min_chars < 1:
        raise ValueError(f"min_chars must be a positive integer, got {min_chars!r}")


def _check_parts(train: str, valid: str, where: str, min_chars: int) -> None:
    if not valid.strip():
        raise CorpusError(
            f"{where}: no text is left for validation; expected a longer text, or a "
            "validation file of its own"
        )
    if len(train) < min_chars:
        raise CorpusError(
            f"{where} is too short: {len(train):,} characters of training text, "
            f"expected at least {min_chars:,}"
        )


def _name(path: Path) -> str:
    """A file's stem or a folder's name; "train" (one side of a user's own split) gives way
    to the folder it is in, so data/shakespeare/train.txt is "shakespeare"."""
    path = path.resolve()
    name = path.name if path.is_dir() else path.stem
    return path.parent.name if name == "train" and path.parent.name else name


# ---- corpora --------------------------------------------------------------------------------


def load_corpus(
    source: str | Path,
    *,
    valid: str | Path | None = None,
    valid_fraction: float = DEFAULT_VALID_FRACTION,
    min_chars: int = MIN_CHARS,
) -> Corpus:
    """The corpus of a text file or a folder of them, split as the module docstring says.

    ``valid``: a file or folder of validation text; ``source`` is then all training text
    and ``valid_fraction`` is not used (but still checked). ``min_chars``: the fewest
    characters of training text accepted.
    """
    _check_fraction(valid_fraction)
    _check_min_chars(min_chars)
    source = Path(source)
    if not source.exists():
        raise CorpusError(
            f"{source}: no such file or folder; expected a UTF-8 text file or a folder of them"
        )
    if valid is not None:
        return _given_split(source, Path(valid), min_chars)
    if source.is_dir():
        return _folder_corpus(source, valid_fraction, min_chars)
    train, valid_text = _split_text(read_text(source), valid_fraction)
    _check_parts(train, valid_text, str(source), min_chars)
    description = (
        f"{source}: {len(train):,} characters for training, {len(valid_text):,} for "
        f"validation (its last {valid_fraction:.0%}, cut at a line break)"
    )
    return Corpus(_name(source), train, valid_text, description)


def _whole(path: Path) -> tuple[str, list[str], int]:
    """All the text of a file or folder, the skipped files and the number of files read."""
    if not path.is_dir():
        return read_text(path), [], 1
    texts, skipped = _read_folder(path)
    return _join([t for _, t in texts]), skipped, len(texts)


def _given_split(source: Path, valid: Path, min_chars: int) -> Corpus:
    if not valid.exists():
        raise CorpusError(
            f"{valid}: no such file or folder; expected the validation text (a UTF-8 text "
            "file or a folder of them)"
        )
    if valid.resolve() == source.resolve():
        raise CorpusError(
            f"{valid} is also the training text; expected a validation text of its own"
        )
    train, train_skipped, train_files = _whole(source)
    valid_text, valid_skipped, valid_files = _whole(valid)
    _check_parts(train, valid_text, str(source), min_chars)
    skipped = (*train_skipped, *(f"{valid.as_posix()}/{rel}" for rel in valid_skipped))

    def files(n: int, path: Path) -> str:
        return f" in {_count(n, 'file')}" if path.is_dir() else ""

    description = (
        f"{source}: {len(train):,} characters{files(train_files, source)} for training; "
        f"{valid}: {len(valid_text):,}{files(valid_files, valid)} for validation"
        + _skipped_note(skipped)
    )
    return Corpus(_name(source), train, valid_text, description, skipped)


def _folder_corpus(folder: Path, valid_fraction: float, min_chars: int) -> Corpus:
    texts, skipped = _read_folder(folder)
    if len(texts) == 1:
        train, valid = _split_text(texts[0][1], valid_fraction)
        how = f"its one text file's last {valid_fraction:.0%}, cut at a line break"
    else:
        train_files, valid_files = _split_files(texts, valid_fraction)
        train = _join([t for _, t in train_files])
        valid = _join([t for _, t in valid_files])
        how = f"{len(valid_files)} of its {len(texts)} text files"
    _check_parts(train, valid, str(folder), min_chars)
    description = (
        f"{folder}: {len(train):,} characters for training, {len(valid):,} for validation "
        f"({how})" + _skipped_note(skipped)
    )
    return Corpus(_name(folder), train, valid, description, tuple(skipped))


def _skipped_note(skipped: list[str] | tuple[str, ...]) -> str:
    if not skipped:
        return ""
    return f"; {_count(len(skipped), 'file')} skipped (not UTF-8 text, or empty)"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def stdlib_corpus(
    *, max_chars: int = 4_000_000, valid_fraction: float = DEFAULT_VALID_FRACTION
) -> Corpus:
    """The ``.py`` source of this Python's standard library, about ``max_chars`` characters.

    Files are taken in order of their path relative to the library's folder; installed
    packages, test suites, IDLE and lib2to3 are left out, and so is any file that is not
    UTF-8 text (listed in ``skipped``). Each file goes to training or validation by the hash
    of its path, as for a folder; each side takes files until it holds its share of
    ``max_chars`` (the last file cut at a line break), so a smaller corpus is the beginning
    of a larger one. The same Python version gives the same corpus on every machine.
    """
    _check_fraction(valid_fraction)
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1_000:
        raise ValueError(f"max_chars must be an integer of at least 1,000, got {max_chars!r}")
    root = Path(sysconfig.get_paths()["stdlib"])
    relative = [r for r in _files_under(root, skip_folders=_STDLIB_SKIPPED) if r.endswith(".py")]
    if not relative:
        raise CorpusError(
            f"{root} holds no Python source; expected the standard library's .py files "
            "(this Python may ship it compiled only)"
        )
    valid_chars = int(max_chars * valid_fraction)
    sides = {False: _Side(max_chars - valid_chars), True: _Side(valid_chars)}  # valid: True
    skipped: list[str] = []
    for rel in relative:
        if all(side.full for side in sides.values()):
            break
        side = sides[_in_valid(rel, valid_fraction)]
        if side.full:
            continue
        texts, bad = _read_files(root, [rel])
        skipped += bad
        for _, text in texts:
            side.add(text.rstrip("\n"))
    train, valid = (FILE_SEPARATOR.join(sides[v].texts) for v in (False, True))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    _check_parts(train, valid, f"the Python {version} standard library at {root}", MIN_CHARS)
    description = (
        f"Python {version} standard library source ({root}): "
        f"{_count(len(sides[False].texts), 'file')}, "
        f"{len(train):,} characters for training; {_count(len(sides[True].texts), 'file')}, "
        f"{len(valid):,} "
        "for validation" + _skipped_note(skipped)
    )
    return Corpus("stdlib", train, valid, description, tuple(skipped))


@dataclass
class _Side:
    """One side (training or validation) of :func:`stdlib_corpus` as it fills up."""

    budget: int
    texts: list[str] = field(default_factory=list)
    used: int = 0  # characters, separators included

    @property
    def full(self) -> bool:
        return self.used >= self.budget

    def add(self, text: str) -> None:
        """Take ``text``, or as much of it as fits; a side that had to cut is full."""
        separator = len(FILE_SEPARATOR) if self.texts else 0
        head = _head(text, self.budget - self.used - separator)
        if head:
            self.texts.append(head)
            self.used += separator + len(head)
        if len(head) < len(text):
            self.used = self.budget


def _head(text: str, room: int) -> str:
    """``text`` if it fits in ``room`` characters, else its longest beginning that fits and
    ends at a line break (the break itself dropped), else its first ``room`` characters."""
    if len(text) <= room:
        return text
    cut = text.rfind("\n", 0, room + 1)
    return text[:cut] if cut > 0 else text[: max(room, 0)]
