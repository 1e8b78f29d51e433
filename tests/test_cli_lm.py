"""The language-model commands: train, generate, complete, evaluate, facts; every kind of
bad input ends in one line and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from helpers import cli_error

from lstmkit.cli import main
from lstmkit.lm.checkpoint import load_model
from lstmkit.lm.evaluate import evaluate_ids
from lstmkit.lm.stories import StoryConfig, generate_stories

TINY = ["--steps", "3", "--hidden", "8", "--layers", "1", "--batch-size", "2", "--seq-len", "8"]
TINY += ["--warmup", "1", "--eval-tokens", "50", "--quiet", "--samples", "1"]


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "stories.txt"
    path.write_text(generate_stories(StoryConfig(words=1500, seed=2)))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, text_file) -> Path:
    out = tmp_path_factory.mktemp("runs") / "char"
    assert main(["train", str(text_file), *TINY, "--out", str(out)]) == 0
    return out


def test_train_reports_and_saves(run, capsys):
    for name in ("config.json", "metrics.jsonl", "loss.png", "checkpoint/model.safetensors"):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("valid_bpc" in r for r in records)


def test_train_prints_samples_and_where_the_run_is(text_file, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", str(text_file), *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bits per character" in printed and "--- sample 1" in printed
    assert f"run saved in {out}/" in printed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n\n  ", "only whitespace"),
        (b"\x00\x01\x02binary\x00" * 20, "binary"),
        (b"caf\xe9 au lait " * 20, "UTF-8"),
        (b"a short text that is long enough for the corpus reader but not a batch. " * 3, "batch"),
    ],
)
def test_train_refuses_bad_text(tmp_path, capsys, content, message):
    path = tmp_path / "text.txt"
    path.write_bytes(content)
    options = ["--batch-size", "64", "--seq-len", "128", "--out", str(tmp_path / "r")]
    assert message in cli_error(capsys, ["train", str(path), *options])


def test_train_refuses_a_missing_corpus_and_bad_settings(tmp_path, capsys):
    cli_error(capsys, ["train", str(tmp_path / "nothing.txt")])
    assert "dropout" in cli_error(capsys, ["train", "--dropout", "1.5"])
    assert "tie_weights" in cli_error(capsys, ["train", "--tie-weights", "--embedding", "4"])
    assert "stdlib" in cli_error(capsys, ["train", "stdlib", "--valid", str(tmp_path)])


def test_resume_rules(run, text_file, tmp_path, capsys):
    assert "drop" in cli_error(capsys, ["train", "--resume", str(run), "--steps", "9"])
    assert "no such run" in cli_error(capsys, ["train", "--resume", str(tmp_path / "none")])
    assert "already holds a run" in cli_error(capsys, ["train", str(text_file), "--out", str(run)])


def test_resume_of_a_finished_run_trains_no_more(run, capsys):
    before = (run / "metrics.jsonl").read_text()
    assert main(["train", "--resume", str(run), "--quiet", "--samples", "0"]) == 0
    assert (run / "metrics.jsonl").read_text() == before


def test_generate_is_reproducible_and_streams_the_prime(run, capsys):
    argv = ["generate", str(run), "--prime", "I grew", "--length", "40", "--seed", "7"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert main(argv) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("I grew") and len(first) == len("I grew") + 40 + 1


def test_generate_refuses_unknown_characters_and_bad_filters(run, capsys):
    err = cli_error(capsys, ["generate", str(run), "--prime", "naïve ☃"])
    assert "not in the model's vocabulary" in err and "'☃'" in err
    assert "top_p" in cli_error(capsys, ["generate", str(run), "--top-p", "1.5"])


def test_complete_gives_probabilities(run, capsys):
    assert main(["complete", str(run), "I grew up in", "--count", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    probs = [p for _, p in result["next_words"]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1 + 1e-9


def test_evaluate_agrees_with_the_library(run, text_file, capsys):
    assert main(["evaluate", str(run), str(text_file), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    model, config = load_model(run)
    ids = torch.tensor(config.vocabulary.encode(text_file.read_text(), unknown="unk"))
    assert printed["bpc"] == pytest.approx(evaluate_ids(model, ids, "char").bits_per_token)


def test_evaluate_names_bad_files_and_checkpoints(run, tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert "empty" in cli_error(capsys, ["evaluate", str(run), str(empty)])
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text((run / "config.json").read_text())
    (damaged / "checkpoint").mkdir()
    (damaged / "checkpoint/model.safetensors").write_bytes(b"\x10\x00\x00\x00garbage")
    assert "damaged" in cli_error(capsys, ["evaluate", str(damaged), str(empty)])


def test_facts_needs_a_stories_run(run, capsys):
    assert "not on stories" in cli_error(capsys, ["facts", str(run)])
