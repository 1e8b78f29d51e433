"""``lstmkit compare``: the paired random search over cells and tasks.

The oracles are written here: medians and quartiles from NumPy, the best setting re-ranked
from the JSON record by a loop in the test, parameter counts from the closed forms of
torch.nn.LSTM/GRU/RNN's weight shapes (G gate blocks of H x I and H x H plus two biases).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import cli_error

from lstmkit import tasks
from lstmkit.cli import main
from lstmkit.experiments.compare import (
    LM_TASK,
    CompareConfig,
    CompareRun,
    quartiles,
    run_comparison,
    sample_settings,
    summarize,
)
from lstmkit.lm.stories import StoryConfig, generate_stories

CELLS = ("lstm", "gru")
HIDDEN = (4, 8)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on one thread, as the command runs them: torch's extra threads only
    spin on a shared machine (lstmkit._cli_args.one_thread_unless_asked)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "stories.txt"
    path.write_text(generate_stories(StoryConfig(words=3000, seed=5)))
    return path


def _config(text_file: Path, **kw) -> CompareConfig:
    settings = dict(
        cells=CELLS,
        tasks=("adding", "temporal-order", LM_TASK),
        trials=2,
        seeds=2,
        hidden_sizes=HIDDEN,
        length=12,
        max_sequences=64,
        lm_steps=3,
        corpus=str(text_file),
        seed=7,
        progress=False,
    )
    settings.update(kw)
    return CompareConfig(**settings)


@pytest.fixture(scope="module")
def found(text_file):
    return run_comparison(_config(text_file))


def _without_time(runs: list[CompareRun]) -> list[dict]:
    return [{k: v for k, v in r.to_json_dict().items() if k != "seconds"} for r in runs]


# -- reproducibility and the paired draws --------------------------------------------------------


def test_the_same_master_seed_gives_identical_results(found, text_file):
    again = run_comparison(_config(text_file))
    assert again.settings == found.settings
    assert _without_time(again.runs) == _without_time(found.runs)


def test_another_master_seed_draws_other_settings(text_file):
    a = sample_settings(_config(text_file, seed=7))
    b = sample_settings(_config(text_file, seed=8))
    assert [s.lr for s in a] != [s.lr for s in b]


def test_every_cell_trains_at_the_same_settings_and_seeds(found):
    c = found.config
    assert len(found.runs) == len(c.cells) * len(c.tasks) * c.trials * c.seeds
    draws = defaultdict(set)
    for r in found.runs:
        draws[r.cell].add((r.task, r.trial, r.lr, r.hidden, r.seed))
    assert draws["lstm"] == draws["gru"]
    assert len(draws["lstm"]) == len(c.tasks) * c.trials * c.seeds


def test_the_settings_lie_in_the_search_space_and_fill_it(text_file):
    c = _config(text_file, trials=3000, seeds=2, lr_min=1e-4, lr_max=1e-1, hidden_sizes=(4, 8, 16))
    settings = sample_settings(c)
    lrs = np.array([s.lr for s in settings])
    assert lrs.min() >= 1e-4 and lrs.max() <= 1e-1
    # log-uniform: log10(lr) uniform on [-4, -1], so each decade holds a third of the draws
    decades = np.histogram(np.log10(lrs), bins=[-4, -3, -2, -1])[0] / len(lrs)
    assert np.allclose(decades, 1 / 3, atol=0.04), decades
    sizes = np.array([s.hidden for s in settings])
    assert set(sizes) == {4, 8, 16}
    assert np.allclose([np.mean(sizes == h) for h in (4, 8, 16)], 1 / 3, atol=0.04)
    assert all(len(set(s.seeds)) == 2 for s in settings)


# -- the summaries, recomputed from the JSON record ------------------------------------------------


def test_the_best_setting_has_the_lowest_median_over_its_seeds(found):
    record = json.loads(json.dumps(found.to_json_dict()))
    groups = defaultdict(list)
    for r in record["runs"]:
        groups[(r["task"], r["cell"], r["trial"])].append(r)

    def value(x):
        return math.inf if x is None else x

    for task, summaries in record["summaries"].items():
        assert [s["cell"] for s in summaries] == list(CELLS)
        for s in summaries:
            trials = {
                t: g for (tk, cell, t), g in groups.items() if tk == task and cell == s["cell"]
            }
            ranked = sorted(
                trials,
                key=lambda t: (
                    float(np.median([value(r["metric"]) for r in trials[t]])),
                    float(np.median([value(r["loss"]) for r in trials[t]])),
                    t,
                ),
            )
            best = trials[ranked[0]]
            metrics = [value(r["metric"]) for r in best]
            assert s["best_trial"] == ranked[0]
            assert s["best_lr"] == best[0]["lr"] and s["best_hidden"] == best[0]["hidden"]
            assert s["best_median"] == pytest.approx(np.median(metrics))
            assert (s["best_min"], s["best_max"]) == (min(metrics), max(metrics))
            every = [value(r["metric"]) for g in trials.values() for r in g]
            assert [s["all_q1"], s["all_median"], s["all_q3"]] == pytest.approx(
                np.percentile(every, [25, 50, 75])
            )
            if task == LM_TASK:
                assert s["solved"] is None
            else:
                assert s["solved"] == sum(r["solved"] for g in trials.values() for r in g)


def _run(trial: int, seed: int, metric: float, loss: float = 1.0) -> CompareRun:
    return CompareRun(
        "adding", "lstm", trial, 1e-3 * (trial + 1), 8, seed, metric, loss, False, 1, 1, 0.0
    )


def test_ties_go_to_the_lower_loss_and_a_diverged_run_ranks_last():
    runs = [
        _run(0, 0, 1.0, loss=0.9),
        _run(0, 1, 1.0, loss=0.9),
        _run(1, 0, 1.0, loss=0.5),
        _run(1, 1, 1.0, loss=0.5),
        _run(2, 0, 0.2),
        _run(2, 1, math.inf),  # diverged: this setting's median is inf, so it is not best
        _run(2, 2, math.inf),
    ]
    summary = summarize("adding", "lstm", runs)
    assert summary.best_trial == 1
    assert summary.to_json_dict()["best_max"] == 1.0
    record = _run(2, 1, math.inf).to_json_dict()
    assert record["metric"] is None
    json.dumps(record, allow_nan=False)  # strict JSON: no Infinity


def test_quartiles_match_numpy_with_and_without_infinity():
    finite = [0.3, 0.1, 0.9, 0.4, 0.5]
    assert quartiles(finite) == pytest.approx(tuple(np.percentile(finite, [25, 50, 75])))
    with_inf = [0.3, 0.1, math.inf, 0.4]
    q1, median, q3 = quartiles(with_inf)
    assert (q1, median) == pytest.approx(tuple(np.percentile([0.3, 0.1, 1e300, 0.4], [25, 50])))
    assert q3 == math.inf  # between 0.4 and a diverged run
    assert quartiles([0.25]) == (0.25, 0.25, 0.25)


# -- parameters ------------------------------------------------------------------------------------


def _closed_form(cell: str, inputs: int, hidden: int) -> int:
    """torch.nn.LSTM/GRU's one-layer count: G blocks of (H x I + H x H + 2 H)."""
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    return gates * (hidden * inputs + hidden * hidden + 2 * hidden)


def test_the_parameter_counts_are_each_cells_layer(found):
    record = found.to_json_dict()
    for task, cells in record["parameters"].items():
        for cell, sizes in cells.items():
            for h in HIDDEN:
                inputs = h if task == LM_TASK else tasks.make_task(task, 12).input_size
                assert sizes[str(h)] == _closed_form(cell, inputs, h), (task, cell, h)
    for r in found.runs:  # the trained model: the layer plus the linear readout
        if r.task != LM_TASK:
            task = tasks.make_task(r.task, 12)
            readout = r.hidden * task.output_size + task.output_size
            assert r.parameters == _closed_form(r.cell, task.input_size, r.hidden) + readout


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"cells": ("lstm", "nope")}, "unknown cell 'nope'"),
        ({"cells": ("lstm", "lstm")}, "more than once"),
        ({"tasks": ("reading",)}, "unknown task 'reading'"),
        ({"trials": 0}, "trials must be a positive integer"),
        ({"lr_min": 0.1, "lr_max": 0.01}, "learning-rate range is empty"),
        ({"hidden_sizes": ()}, "at least one size"),
        ({"hidden_sizes": (8, 0)}, "every hidden size must be a positive integer"),
        ({"length": 2}, "adding: length must be at least"),
        ({"level": "byte"}, "level must be one of char, word"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, dict) else None,
)
def test_a_bad_config_is_named(text_file, change, words):
    with pytest.raises(ValueError, match=words):
        replace(_config(text_file), **change)


# -- the command -----------------------------------------------------------------------------------


def test_the_command_end_to_end_with_json(text_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "compare", "--cells", "lstm,gru", "--tasks", "adding,lm", "--trials", "2",
        "--seeds", "2", "--hidden", "4,8", "--lr-range", "1e-3,1e-2", "--length", "12",
        "--max-sequences", "64", "--lm-steps", "3", "--corpus", str(text_file),
        "--seed", "3", "--out", str(out), "--json", "--quiet",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed["runs"]) == 2 * 2 * 2 * 2
    assert all(1e-3 <= s["lr"] <= 1e-2 and s["hidden"] in (4, 8) for s in printed["settings"])
    assert printed["metrics"]["lm"] == "validation bits per character"
    saved = json.loads((out / "results.json").read_text())
    assert saved["runs"] == printed["runs"] and saved["summaries"] == printed["summaries"]
    table = (out / "table.txt").read_text()
    assert "adding (T=12)" in table and "bits per character" in table
    for task in ("adding", "lm"):
        for kind in ("by-cell", "by-lr"):
            png = out / f"{task}-{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
            assert str(png) in printed["figures"][task]


def test_the_figures_write_svg_by_suffix(found, tmp_path):
    from lstmkit.plots.compare import plot_metric_by_cell, plot_metric_by_lr

    runs = found.runs_of("adding")
    by_cell = plot_metric_by_cell(found.summaries("adding"), runs, "error", "t", tmp_path / "a.svg")
    by_lr = plot_metric_by_lr(CELLS, runs, "error", "t", tmp_path / "b.svg")
    for path in (*by_cell, *by_lr):
        assert path.read_text().lstrip().startswith("<?xml")


_BASE = ["compare", "--quiet", "--cells", "lstm", "--tasks", "adding", "--trials", "1"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--cells", "lstm,nope"], "unknown cell 'nope'"),
        (["--cells", "lstm1997"], "unknown cell 'lstm1997'"),
        (["--tasks", "adding,reading"], "unknown task 'reading'"),
        (["--hidden", "8,0"], "comma-separated list of positive integers"),
        (["--hidden", "8,x"], "comma-separated list of positive integers"),
        (["--lr-range", "1e-2,1e-3"], "MIN <= MAX"),
        (["--lr-range", "1e-3"], "expected MIN,MAX"),
        (["--trials", "0"], "expected a positive integer"),
        (["--length", "2"], "adding: length must be at least"),
        (["--corpus", "stdlib"], "add 'lm' to --tasks"),
        (["--tasks", "lm", "--corpus", "/no/such/file.txt"], "/no/such/file.txt"),
        (["--tasks", "lm", "--valid", "/tmp/x.txt"], "--valid applies to a file"),
        (["--tasks", "lm", "--length", "20"], "--tasks names none"),
    ],
    ids=lambda v: "_".join(v).replace("/", "") if isinstance(v, list) else None,
)
def test_bad_input_is_one_line(capsys, extra, words):
    err = cli_error(capsys, [*_BASE, *extra])
    assert words in err, err


def test_an_out_path_that_is_a_file_is_refused(capsys, tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("")
    err = cli_error(capsys, [*_BASE, "--out", str(taken)])
    assert "is not a folder" in err


def test_a_text_too_short_for_one_batch_is_refused(capsys, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("a short text. " * 20)
    err = cli_error(capsys, [*_BASE, "--tasks", "lm", "--corpus", str(short)])
    assert "fewer than one batch" in err or "validation" in err, err


def test_replot_redraws_a_results_file_without_training(found, tmp_path, capsys):
    """A diverged run (a null metric in the JSON) survives the round trip as infinity and
    ranks last; the redrawn table is the one the run printed."""
    from lstmkit._cli_compare import write_outputs

    first = tmp_path / "first"
    first.mkdir()
    diverged = replace(found, runs=[replace(found.runs[0], metric=math.inf), *found.runs[1:]])
    write_outputs(diverged, first)
    assert (
        main(["compare", "--replot", str(first / "results.json"), "--out", str(tmp_path / "again")])
        == 0
    )
    assert (tmp_path / "again" / "table.txt").read_text() == (first / "table.txt").read_text()
    assert capsys.readouterr().out.strip() == (first / "table.txt").read_text().strip()
    again = json.loads((tmp_path / "again" / "results.json").read_text())
    assert again["runs"] == json.loads((first / "results.json").read_text())["runs"]
    assert again["runs"][0]["metric"] is None
    for name in again["figures"][diverged.config.tasks[0]]:
        assert Path(name).read_bytes()[:4] == b"\x89PNG"


def test_replot_of_a_file_that_is_not_results_is_one_line(capsys, tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"runs": []}')
    assert "not a results.json of lstmkit compare" in cli_error(
        capsys, ["compare", "--replot", str(bad)]
    )


def _write_results(found, folder: Path) -> Path:
    from lstmkit._cli_compare import write_outputs

    folder.mkdir()
    write_outputs(found, folder)
    return folder / "results.json"


def test_replot_merges_comparisons_that_differ_only_in_their_cells(
    found, text_file, tmp_path, capsys
):
    """A cell run on its own joins an earlier comparison: with the same options and master
    seed it trains at the same settings and seeds, so the merged table is the one a joint
    run prints."""
    lstm_only = replace(
        found,
        config=replace(found.config, cells=("lstm",)),
        runs=[r for r in found.runs if r.cell == "lstm"],
    )
    gru_alone = run_comparison(_config(text_file, cells=("gru",)))
    files = [_write_results(lstm_only, tmp_path / "a"), _write_results(gru_alone, tmp_path / "b")]
    joint = _write_results(found, tmp_path / "joint")
    out = tmp_path / "merged"
    assert main(["compare", "--replot", *map(str, files), "--out", str(out)]) == 0
    capsys.readouterr()
    assert (out / "table.txt").read_text() == (joint.parent / "table.txt").read_text()
    merged = json.loads((out / "results.json").read_text())
    assert merged["config"]["cells"] == ["lstm", "gru"]
    assert _without_seconds(merged["runs"]) == _without_seconds(
        json.loads(joint.read_text())["runs"]
    )


def _without_seconds(runs: list[dict]) -> list[dict]:
    return sorted(
        ({k: v for k, v in r.items() if k != "seconds"} for r in runs),
        key=lambda r: (r["task"], r["cell"], r["trial"], r["seed"]),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cells": ("lstm",)}, "'lstm' is in both"),
        ({"cells": ("rnn",), "length": 13}, "differ in length"),
        ({"cells": ("rnn",), "seed": 8}, "differ in seed"),
    ],
)
def test_replot_refuses_to_merge_unpaired_comparisons_in_one_line(
    found, tmp_path, capsys, change, message
):
    cells = change["cells"]
    runs = [replace(r, cell=cells[0]) for r in found.runs if r.cell == "lstm"]
    other = replace(found, config=replace(found.config, **change), runs=runs)
    files = [_write_results(found, tmp_path / "a"), _write_results(other, tmp_path / "b")]
    err = cli_error(capsys, ["compare", "--replot", *map(str, files), "--out", str(tmp_path)])
    assert message in err, err
