"""Corpora: reading a user's text, splitting it without leakage, and the stdlib corpus."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from lstmkit.lm.corpus import (
    FILE_SEPARATOR,
    MIN_CHARS,
    Corpus,
    CorpusError,
    load_corpus,
    read_text,
    stdlib_corpus,
)

SHAKESPEARE = Path("/work/shared/data/shakespeare")


def lines(n: int, prefix: str = "line") -> str:
    """``n`` distinct lines of text, each ending with a newline."""
    return "".join(f"{prefix} {i}: the quick brown fox jumps over the lazy dog\n" for i in range(n))


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# ---- read_text ------------------------------------------------------------------------------


def test_read_text_plain(tmp_path):
    assert read_text(write(tmp_path / "a.txt", "héllo\nworld\n")) == "héllo\nworld\n"


def test_read_text_strips_bom_and_crlf(tmp_path):
    path = write(tmp_path / "a.txt", b"\xef\xbb\xbfone\r\ntwo\r\nthree")
    assert read_text(path) == "one\ntwo\nthree"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf", "is empty"),
        (b"  \n\t\r\n ", "only whitespace"),
        (b"text\x00more", "looks binary"),
        (b"hello \xff world", "not valid UTF-8 (byte 0xff at offset 6)"),
        (b"\xef\xbb\xbfab\xc3", "at offset 5"),  # the offset counts the byte order mark
    ],
)
def test_read_text_rejects(tmp_path, content, expected):
    path = write(tmp_path / "bad.txt", content)
    with pytest.raises(CorpusError, match=r"bad\.txt") as info:
        read_text(path)
    assert expected in str(info.value)
    assert "expected" in str(info.value) and "\n" not in str(info.value)


def test_read_text_missing_and_folder(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        read_text(tmp_path / "missing.txt")
    with pytest.raises(CorpusError, match="is a folder; expected a UTF-8 text file"):
        read_text(tmp_path)


# ---- one file -------------------------------------------------------------------------------


@pytest.mark.parametrize("fraction", [0.05, 0.2, 0.5])
def test_file_split_at_line_break_without_overlap(tmp_path, fraction):
    text = lines(200)
    corpus = load_corpus(write(tmp_path / "book.txt", text), valid_fraction=fraction)
    assert isinstance(corpus, Corpus) and corpus.name == "book"
    assert corpus.train + corpus.valid == text  # nothing lost, nothing doubled
    assert corpus.train.endswith("\n")  # the cut is at a line break
    assert not set(corpus.train.splitlines()) & set(corpus.valid.splitlines())
    assert len(corpus.valid) == pytest.approx(fraction * len(text), abs=60)
    assert corpus.skipped == () and "\n" not in corpus.description


def test_file_split_last_line_long(tmp_path):
    """The cut falls in a last line without a break after it: the line before is the cut."""
    text = lines(30) + "x" * 200
    corpus = load_corpus(write(tmp_path / "a.txt", text), valid_fraction=0.1)
    assert corpus.train + corpus.valid == text
    assert corpus.valid == "x" * 200


def test_file_split_one_line(tmp_path):
    """A text of one line can only be cut at a character."""
    text = "word " * 100
    corpus = load_corpus(write(tmp_path / "a.txt", text), valid_fraction=0.1)
    assert corpus.train + corpus.valid == text
    assert len(corpus.valid) == len(text) - int(len(text) * 0.9)


def test_user_split_is_kept(tmp_path):
    train, valid = lines(20, "train"), lines(5, "valid")
    corpus = load_corpus(
        write(tmp_path / "data" / "train.txt", train), valid=write(tmp_path / "valid.txt", valid)
    )
    assert (corpus.train, corpus.valid) == (train, valid)
    assert corpus.name == "data"  # "train" gives way to its folder


def test_user_split_errors(tmp_path):
    source = write(tmp_path / "a.txt", lines(20))
    with pytest.raises(CorpusError, match=r"missing\.txt: no such file or folder"):
        load_corpus(source, valid=tmp_path / "missing.txt")
    with pytest.raises(CorpusError, match="also the training text"):
        load_corpus(source, valid=source)
    with pytest.raises(CorpusError, match=r"empty\.txt is empty"):
        load_corpus(source, valid=write(tmp_path / "empty.txt", ""))


def test_too_short(tmp_path):
    path = write(tmp_path / "short.txt", "a few words\nand a few more\n")
    with pytest.raises(CorpusError, match=r"short\.txt is too short: \d+ characters") as info:
        load_corpus(path)
    assert f"at least {MIN_CHARS}" in str(info.value)
    assert load_corpus(path, min_chars=10, valid_fraction=0.5).valid == "and a few more\n"


@pytest.mark.parametrize("fraction", [0, -0.1, 0.6, 1.0, float("nan"), "0.1"])
def test_bad_valid_fraction(tmp_path, fraction):
    path = write(tmp_path / "a.txt", lines(20))
    with pytest.raises(CorpusError, match=r"valid_fraction must be a number in \(0, 0\.5\]"):
        load_corpus(path, valid_fraction=fraction)


def test_bad_min_chars(tmp_path):
    with pytest.raises(ValueError, match="min_chars must be a positive integer"):
        load_corpus(write(tmp_path / "a.txt", lines(20)), min_chars=0)


def test_missing_source(tmp_path):
    with pytest.raises(CorpusError, match="no such file or folder; expected a UTF-8 text"):
        load_corpus(tmp_path / "nothing")


# ---- folders --------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "texts"
    for i in range(40):
        write(root / f"part{i // 10}" / f"file{i:02d}.txt", lines(3, f"file {i}"))
    write(root / "binary.dat", b"\x89PNG\x00\x01")
    write(root / "part1" / "latin1.txt", "caf\xe9\n".encode("latin-1"))
    write(root / "empty.txt", "")
    write(root / ".hidden.txt", "hidden text\n")
    write(root / ".git" / "config", "hidden folder\n")
    return root


def test_folder_split_by_file_hash(folder):
    corpus = load_corpus(folder, valid_fraction=0.2)
    assert corpus.skipped == ("binary.dat", "empty.txt", "part1/latin1.txt")  # sorted
    assert "hidden" not in corpus.train + corpus.valid
    # every file whole on the side its path's CRC-32 puts it, in path order
    relative = sorted(f"part{i // 10}/file{i:02d}.txt" for i in range(40))
    in_valid = [r for r in relative if zlib.crc32(r.encode()) / 2**32 < 0.2]
    assert 0 < len(in_valid) < 40  # the hash leaves both sides non-empty here
    texts = {r: (folder / r).read_text() for r in relative}
    assert corpus.valid == FILE_SEPARATOR.join(texts[r].rstrip("\n") for r in in_valid)
    assert corpus.train == FILE_SEPARATOR.join(
        texts[r].rstrip("\n") for r in relative if r not in in_valid
    )
    assert "3 files skipped" in corpus.description
    assert load_corpus(folder, valid_fraction=0.2) == corpus  # deterministic


def test_folder_fallback_to_last_files(tmp_path):
    """Two files whose hashes both say "train": the last one is validation."""
    names = [n for n in (f"f{i}.txt" for i in range(100)) if zlib.crc32(n.encode()) >= 2**31]
    first, last = sorted(names[:2])
    write(tmp_path / first, lines(10, "first"))
    write(tmp_path / last, lines(10, "last"))
    corpus = load_corpus(tmp_path, valid_fraction=0.05)
    assert corpus.train == lines(10, "first").rstrip("\n")
    assert corpus.valid == lines(10, "last").rstrip("\n")


def test_folder_of_one_file_splits_it(tmp_path):
    text = lines(100)
    write(tmp_path / "only.txt", text)
    write(tmp_path / "junk.bin", b"\x00\x00")
    corpus = load_corpus(tmp_path)
    assert corpus.train + corpus.valid == text and corpus.train.endswith("\n")
    assert corpus.skipped == ("junk.bin",)


def test_folder_without_text(tmp_path):
    with pytest.raises(CorpusError, match="has no files"):
        load_corpus(tmp_path)
    write(tmp_path / "a.bin", b"\x00")
    write(tmp_path / "b.txt", "  \n")
    with pytest.raises(CorpusError, match=r"none of its files is UTF-8 text .*a\.bin, b\.txt"):
        load_corpus(tmp_path)


def test_valid_folder(tmp_path, folder):
    source = write(tmp_path / "train.txt", lines(50))
    corpus = load_corpus(source, valid=folder)
    assert corpus.train == lines(50)
    assert corpus.valid.startswith("file 0 0: ") and corpus.valid.endswith(
        "file 39 2: the quick brown fox jumps over the lazy dog"
    )
    assert corpus.skipped == tuple(
        f"{folder.as_posix()}/{r}" for r in ("binary.dat", "empty.txt", "part1/latin1.txt")
    )


# ---- built-in and shared corpora ------------------------------------------------------------


def test_stdlib_corpus():
    corpus = stdlib_corpus(max_chars=20_000)
    assert corpus.name == "stdlib"
    assert corpus.train and corpus.valid and len(corpus.train) + len(corpus.valid) <= 20_000
    assert "import" in corpus.train + corpus.valid
    assert stdlib_corpus(max_chars=20_000) == corpus  # deterministic
    larger = stdlib_corpus(max_chars=40_000)  # a smaller corpus begins the larger one
    assert larger.train.startswith(corpus.train) and larger.valid.startswith(corpus.valid)


def test_stdlib_corpus_arguments():
    with pytest.raises(ValueError, match="max_chars must be an integer of at least 1,000"):
        stdlib_corpus(max_chars=10)
    with pytest.raises(CorpusError, match="valid_fraction"):
        stdlib_corpus(valid_fraction=0.9)


@pytest.mark.skipif(not SHAKESPEARE.is_dir(), reason="the shared Shakespeare files are absent")
def test_shakespeare_loads():
    corpus = load_corpus(SHAKESPEARE / "train.txt", valid=SHAKESPEARE / "valid.txt")
    assert corpus.name == "shakespeare"
    assert len(corpus.train) > 1_000_000 and len(corpus.valid) > 100_000
    assert "\r" not in corpus.train
