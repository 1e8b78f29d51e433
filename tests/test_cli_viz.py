"""``lstmkit explore``: the page it writes, and one-line errors (exit 2) for every kind of
bad input the issue names: unknown tokens, an empty text, a folder that is not a model."""

from __future__ import annotations

import json
import re

import pytest
from helpers import cli_error
from run_folders import TEXT, make_run

from lstmkit.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "lstm", layers=1)


def _page_data(path) -> dict:
    html = path.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_explore_writes_a_self_contained_page(run, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["explore", str(run), "--text", "I grew up in France.", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "20 tokens" in printed
    html = out.read_text(encoding="utf-8")
    # nothing to fetch: no external script, style, image or font
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    data = _page_data(out)
    assert data["tokens"] == list("I grew up in France.")
    assert data["selection"] is None


def test_explore_reads_a_slice_of_a_file_and_preselects(run, tmp_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "p.html"
    argv = ["explore", str(run), "--file", str(text), "--start", "3", "--tokens", "30"]
    assert main([*argv, "--select", "2:9", "--out", str(out)]) == 0
    data = _page_data(out)
    assert "".join(data["tokens"]) == TEXT[3:33]
    assert data["selection"] == [2, 9]


def test_explore_defaults_to_a_page_in_the_run(run, capsys):
    assert main(["explore", str(run), "--text", "hello"]) == 0
    assert (run / "explore.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "I grew up in Zürich"], r"not in the model's vocabulary.*'Z'"),
        (["--text", "   "], "the text is empty"),
        (["--text", "hello", "--select", "1:99"], "not a span of this text"),
        (["--text", "hello", "--select", "3-4"], "expected START:STOP"),
        (["--text", "hello", "--tokens", "5"], "--start and --tokens choose an excerpt of --file"),
        (["--file", "no/such.txt"], "no such file"),
        (["--file", "stories", "--start", "99999999"], "past its end"),
        ([], "one of the arguments --text --file is required"),
    ],
)
def test_explore_names_bad_text(run, capsys, args, message):
    assert re.search(message, cli_error(capsys, ["explore", str(run), *args]))


def test_explore_names_a_folder_that_is_not_a_model(tmp_path, capsys):
    err = cli_error(capsys, ["explore", str(tmp_path), "--text", "hi"])
    assert "no config.json" in err
    (tmp_path / "config.json").write_text("{not json")
    assert "not valid JSON" in cli_error(capsys, ["explore", str(tmp_path), "--text", "hi"])
    missing = tmp_path / "missing"
    assert "no such run folder" in cli_error(capsys, ["explore", str(missing), "--text", "hi"])


def test_game_writes_its_page_into_a_new_folder(tmp_path, capsys):
    out = tmp_path / "new" / "folder"
    assert main(["game", "--out", f"{out}/", "--steps", "2", "--quiet"]) == 0
    assert (out / "game.html").is_file()
    assert f"wrote {out / 'game.html'}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "game.txt"], "must end in .html"),
        (["--steps", "0"], "expected a positive integer"),
        (["--seed", "-1"], r"expected an integer in \[0, 2\*\*32\)"),
    ],
)
def test_game_names_bad_options(capsys, args, message):
    assert re.search(message, cli_error(capsys, ["game", "--quiet", *args]))
