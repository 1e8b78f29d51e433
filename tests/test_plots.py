"""lstmkit.plots and ``lstmkit plot``: every figure is a valid PNG and SVG, the strip and the
matrix show the record's own values, the saturation dots are gate_saturation's numbers
(recomputed here with NumPy), and the command writes its files or fails in one line."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.colors import Normalize

from lstmkit import _cli_plot, plots
from lstmkit._cli_args import PROG, Parser
from lstmkit.cli import main
from lstmkit.experiments.gradients import GradientProfile
from lstmkit.experiments.horizon import CellHorizon
from lstmkit.lm.facts import FactScore
from lstmkit.lm.model import LanguageModel, LMConfig
from lstmkit.lm.record import TextRecord, record_text
from lstmkit.lm.vocab import Vocabulary

TEXT = "the cat sat on the mat.\nthe dog sat on the log, and the cat ran.\n" * 3
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--steps", "3", "--hidden", "8", "--layers", "2", "--batch-size", "2", "--seq-len", "8"]
TINY += ["--warmup", "1", "--eval-every", "2", "--eval-tokens", "50", "--quiet", "--samples", "0"]


def _assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path


def _assert_svg(path: Path) -> None:
    assert ET.parse(path).getroot().tag == "{http://www.w3.org/2000/svg}svg", path


@pytest.fixture(scope="module")
def record() -> TextRecord:
    """A two-layer character LSTM whose weights are scaled up so that its gates saturate:
    the saturation counts are then neither all 0 nor all 1."""
    vocabulary = Vocabulary.from_text(TEXT, "char")
    torch.manual_seed(0)
    model = LanguageModel(LMConfig(len(vocabulary), hidden_size=8, num_layers=2))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(6.0)
    return record_text(model, vocabulary, TEXT[:60])


# -- every figure, both formats ------------------------------------------------------------------


def _draw_every_figure(record: TextRecord, stem: Path) -> dict[str, list[Path]]:
    def both(name: str) -> list[Path]:
        return [stem.with_name(f"{name}.png"), stem.with_name(f"{name}.svg")]

    records = [
        {"step": 1, "tokens": 100, "train_loss": 3.0},
        {"step": 2, "tokens": 200, "train_loss": 2.5, "valid_loss": 2.6, "valid_tokens": 50},
        {"step": 2, "tokens": 200, "valid_loss": 2.55, "valid_tokens": 500},
    ]
    scores = [FactScore(d, 10, 1 / d, 0.5 / d) for d in (5, 10, 20)]
    horizons = [CellHorizon("lstm", 20, {10: 1.0, 20: 0.5}), CellHorizon("rnn", 0, {10: 0.0})]
    profiles = [GradientProfile("lstm", [1.0, 0.5, 0.0], [1.0, 0.9, 0.8])]
    profiles.append(GradientProfile("rnn", [1.0, 0.1, 0.01], None))
    return {
        "losses": plots.plot_losses(records, both("losses"), "char", "lstm on tiny"),
        "facts": plots.plot_fact_curves({"lstm": scores}, both("facts")),
        "horizon": plots.plot_horizon(horizons, "adding", "100 sequences", both("horizon")),
        "gradients": plots.plot_gradients([("init", profiles)], "gradients", both("gradients")),
        "strip": plots.plot_token_strip(record, both("strip"), "cell", layer=1, unit=3),
        "matrix": plots.plot_unit_matrix(record, both("matrix"), "forget", unit=2),
        "saturation": plots.plot_gate_saturation(record, both("saturation")),
    }


def test_every_figure_is_a_valid_png_and_svg(record, tmp_path):
    for name, written in _draw_every_figure(record, tmp_path / "x").items():
        assert [p.name for p in written] == [f"{name}.png", f"{name}.svg"]
        _assert_png(written[0])
        _assert_svg(written[1])
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writes left nothing behind


def test_a_figure_path_must_end_in_png_or_svg(record, tmp_path):
    for bad in (tmp_path / "x.pdf", tmp_path / "x", [tmp_path / "a.png", tmp_path / "b.jpg"], []):
        with pytest.raises(ValueError, match=r"\.png or \.svg"):
            plots.plot_unit_matrix(record, bad)
    assert not list(tmp_path.iterdir())  # checked before anything was written


# -- the strip, the matrix, the saturation: the record's own numbers ---------------------------


def test_the_strip_colours_each_token_by_its_value(record):
    cell = record.quantities["cell"][1]  # (T, units)
    unit = int(np.flatnonzero((cell.min(axis=0) < 0) & (cell.max(axis=0) > 0))[0])
    values = cell[:, unit]  # both signs: the diverging map's two sides are both used
    limit = np.abs(values).max()
    expected = colormaps["RdBu_r"](Normalize(-limit, limit)(values))
    fig = plots.strip_figure(record, "cell", layer=1, unit=unit)
    text_axes = fig.axes[0]
    colors = text_axes.collections[0].get_facecolor()
    np.testing.assert_allclose(colors, expected)
    biggest = np.argmax(np.abs(values))  # the end of the scale: the darkest red or blue
    end = colormaps["RdBu_r"](1.0 if values[biggest] > 0 else 0.0)
    np.testing.assert_allclose(colors[biggest], end)
    clear = np.abs(values) > 0.1 * limit  # away from the white middle
    red, blue = colors[:, 0], colors[:, 2]
    assert np.all((red > blue)[clear & (values > 0)]) and np.all((blue > red)[clear & (values < 0)])
    assert [t.get_text() for t in text_axes.texts] == [plots.token_label(t) for t in record.tokens]
    assert fig.axes[1].get_xlabel() == "cell state c_t"  # the colorbar says what it shows


def test_gate_colours_are_fixed_to_zero_and_one(record):
    values = record.quantities["forget"][0, :, 5]
    expected = colormaps["Greens"](values)  # a gate needs no normalising: already in [0, 1]
    np.testing.assert_allclose(plots.token_colors(record, "forget", 0, 5), expected)
    fig = plots.strip_figure(record, "forget", unit=5)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_facecolor(), expected)


def test_the_layout_wraps_lines_and_shows_whitespace():
    assert [plots.token_label(t) for t in (" ", "\n", "\t", "a")] == ["·", "↵", "→", "a"]
    boxes = plots.layout_tokens(list("ab cd\nef"), "char", columns=4)
    placed = [(b.label, b.line, b.column) for b in boxes]
    assert placed == [
        ("a", 0, 0),
        ("b", 0, 1),
        ("·", 0, 2),
        ("c", 0, 3),
        ("d", 1, 0),  # past column 4: the next line
        ("↵", 1, 1),
        ("e", 2, 0),  # after a newline: the next line
        ("f", 2, 1),
    ]
    words = plots.layout_tokens(["one", "two", "three"], "word", columns=8)
    assert [(b.line, b.column, b.width) for b in words] == [(0, 0, 3), (0, 4, 3), (1, 0, 5)]


def test_the_matrix_is_every_unit_against_time(record):
    fig = plots.matrix_figure(record, "hidden", layer=1)
    image = fig.axes[0].images[0]
    np.testing.assert_array_equal(image.get_array(), record.quantities["hidden"][1].T)
    assert image.norm.vmin == -image.norm.vmax  # centred on 0
    assert fig.axes[1].get_ylabel() == "hidden state h_t"


def test_the_saturation_dots_are_the_fractions_of_saturated_steps(record):
    fig = plots.saturation_figure(record)
    assert record.gates == ("input", "forget", "output")
    seen = []
    for column, gate in enumerate(record.gates):
        values = record.quantities[gate]  # (layers, T, units)
        for layer in range(record.num_layers):
            left = (values[layer] < 0.1).mean(axis=0)
            right = (values[layer] > 0.9).mean(axis=0)
            dots = fig.axes[column].collections[layer].get_offsets()
            np.testing.assert_allclose(dots, np.column_stack([left, right]))
            seen.extend([*left, *right])
    assert any(0 < f < 1 for f in seen)  # scaled weights: some units partly saturated


def test_choices_are_checked_and_the_default_unit_varies_most(record):
    spread = record.quantities["cell"][1].std(axis=0)
    assert plots.default_unit(record, "cell", 1) == int(np.argmax(spread))
    with pytest.raises(ValueError, match="expected one of input, forget"):
        plots.check_choice(record, "reset")
    with pytest.raises(ValueError, match="expected 0 to 1"):
        plots.check_choice(record, "cell", 2)
    with pytest.raises(ValueError, match="expected 0 to 7"):
        plots.check_choice(record, "cell", 0, 8)


# -- lstmkit plot -------------------------------------------------------------------------------


def _plot(argv: list[str]) -> int:
    """``lstmkit plot ...`` through its own parser, as cli.py registers it."""
    parser = Parser(prog=PROG, allow_abbrev=False)
    command = _cli_plot.add_plot(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plot", *argv])
    return args.handler(args, command)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A character LSTM and a plain RNN, each trained for three steps."""
    folder = tmp_path_factory.mktemp("runs")
    text = folder / "tiny.txt"
    text.write_text(TEXT * 4)
    out = {}
    for cell in ("lstm", "rnn"):
        out[cell] = folder / cell
        assert main(["train", str(text), *TINY, "--cell", cell, "--out", str(out[cell])]) == 0
    return out


def test_plot_writes_the_curves_and_the_text_figures(runs, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "figures"
    argv = [str(runs["lstm"]), "--text", "the cat sat", "--format", "png,svg", "--out", str(out)]
    assert _plot([*argv, "--quantity", "cell", "--layer", "1", "--unit", "7"]) == 0
    stems = ["loss", "strip-cell-layer1-unit7", "matrix-cell-layer1", "saturation"]
    expected = [out / f"{stem}.{fmt}" for stem in stems for fmt in ("png", "svg")]
    assert capsys.readouterr().out.splitlines() == [str(p) for p in expected]
    for path in expected:
        (_assert_png if path.suffix == ".png" else _assert_svg)(path)


def test_plot_defaults_to_the_run_folder_and_a_rule_for_the_unit(runs, capsys):
    capsys.readouterr()
    assert _plot([str(runs["rnn"]), "--text", "the dog"]) == 0
    printed = capsys.readouterr().out.splitlines()
    folder = runs["rnn"] / "plots"
    assert printed[0] == str(folder / "loss.png")
    assert printed[1].startswith(str(folder / "strip-hidden-layer0-unit"))
    assert printed[2:] == [str(folder / "matrix-hidden-layer0.png")]  # no gates to saturate


def test_plot_without_metrics_says_so_and_goes_on(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs["rnn"], run, ignore=shutil.ignore_patterns("plots"))
    (run / "metrics.jsonl").unlink()
    capsys.readouterr()
    assert _plot([str(run), "--text", "the"]) == 0
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "metrics.jsonl" in captured.err
    assert not (run / "plots" / "loss.png").exists()
    assert (run / "plots" / "matrix-hidden-layer0.png").is_file()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--text", "   "], "empty"),
        (["--text", "the zebra"], "not in the model's vocabulary"),
        (["--text", "the", "--layer", "2"], "expected 0 to 1"),
        (["--text", "the", "--unit", "8"], "expected 0 to 7"),
        (["--text", "the", "--quantity", "reset"], "expected one of input"),
        (["--format", "png,jpg"], "expected a comma-separated list of png, svg"),
        (["--unit", "1"], "give --text or --file"),
        (["--start", "3"], "give --file too"),
        (["--text", "the", "--file", "tiny.txt"], "not allowed"),
        (["--file", "/no/such/file.txt"], "no such file"),
    ],
)
def test_plot_refuses_bad_input_in_one_line(runs, tmp_path, capsys, options, message):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _plot([str(runs["lstm"]), "--out", str(tmp_path / "out"), *options])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstmkit: error: "), err
    assert message in err
    assert not (tmp_path / "out").exists()  # nothing written before everything is checked


@pytest.mark.parametrize("folder", ["missing", "empty", "file"])
def test_plot_refuses_a_folder_that_is_not_a_run(tmp_path, capsys, folder):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a run")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _plot([str(tmp_path / folder)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lstmkit: error: "), err


@pytest.mark.parametrize(
    "command", [["facts", "RUN"], ["gradients"], ["horizon", "--task", "adding", "--start", "20"]]
)
def test_other_figure_commands_refuse_another_suffix_before_working(tmp_path, capsys, command):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--out", str(tmp_path / "figure.pdf")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ".png or .svg" in err, err
