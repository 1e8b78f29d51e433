"""``lstmkit forecast``: fit, predict, resume and backtest from the command line, and a
one-line error (exit 2) for every kind of bad input the issue names."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from helpers import cli_error

from lstmkit import _cli_forecast
from lstmkit.cli import main
from lstmkit.forecast.baselines import BASELINES
from lstmkit.forecast.data import FILLS

QUICK = ["--steps", "20", "--hidden", "8", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "air"
    assert main(["forecast", "fit", "airline", *QUICK, "--out", str(out)]) == 0
    return out


def test_fit_saves_a_run_and_predict_reads_it(run, tmp_path, capsys):
    capsys.readouterr()
    csv, png = tmp_path / "f.csv", tmp_path / "f.png"
    argv = ["forecast", "predict", str(run), "--horizon", "3", "--csv", str(csv)]
    assert main([*argv, "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert "1961-01-01" in printed and "1961-03-01" in printed and "1961-04-01" not in printed
    table = pd.read_csv(csv)
    assert len(table) == 3 and {"forecast", "lower", "upper"} <= set(table.columns)
    assert png.read_bytes().startswith(b"\x89PNG")


def test_resume_of_a_finished_fit_changes_nothing(run, capsys):
    before = (run / "checkpoint" / "model.safetensors").read_bytes()
    assert main(["forecast", "resume", str(run), "--quiet"]) == 0
    assert (run / "checkpoint" / "model.safetensors").read_bytes() == before


def test_backtest_prints_the_table_and_writes_json_and_plot(tmp_path, capsys):
    out = tmp_path / "bt"
    argv = ["forecast", "backtest", "nile", "--horizon", "5", "--folds", "2", *QUICK]
    argv += ["--cells", "lstm", "--baselines", "naive,ets", "--out", str(out)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    for name in ("naive", "ets", "lstm", "MASE", "coverage"):
        assert name in table
    data = json.loads((out / "backtest.json").read_text())
    assert {r["method"] for r in data["records"]} == {"naive", "ets", "lstm"}
    assert len({r["cutoff"] for r in data["records"]}) == 2
    assert (out / "backtest.png").read_bytes().startswith(b"\x89PNG")


def test_the_cli_lists_the_fills_and_baselines_the_library_has():
    assert _cli_forecast.FILLS == FILLS
    assert tuple(BASELINES) == _cli_forecast.BASELINE_NAMES


def _csv(tmp_path, text: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("date,y\n2020-01-01,1\n2020-02-01,\n2020-03-01,3\n", [], "missing value"),
        ("date,y\n2020-02-01,1\n2020-01-01,2\n2020-03-01,3\n", [], "not sorted"),
        ("date,y\n2020-01-01,1\n2020-01-01,2\n2020-02-01,3\n", [], "duplicated timestamp"),
        ("date,y\n2020-01-01,1\n2020-02-01,2\n2020-05-01,3\n2020-06-01,4\n", [], "irregular"),
        ("date,y\n2020-01-01,1\n2020-02-01,two\n2020-03-01,3\n", [], "not numeric"),
        ("date,y\n2020-01-01,1\n2020-02-01,2\n", ["--target", "z"], "unknown target column 'z'"),
        ("date,y\n" + "".join(f"2020-{m:02d}-01,{m}\n" for m in range(1, 13)), [], "too short"),
    ],
)
def test_bad_data_is_named_in_one_line(tmp_path, capsys, content, options, message):
    err = cli_error(capsys, ["forecast", "fit", _csv(tmp_path, content), *options, *QUICK])
    assert re.search(message, err), err


def test_fill_repairs_gaps_only_when_asked(tmp_path, capsys):
    rows = "".join(f"2020-{m:02d}-01,{m}\n" for m in range(1, 13) if m != 6)
    path = _csv(
        tmp_path, "date,y\n" + rows + "".join(f"2021-{m:02d}-01,{m}\n" for m in range(1, 13))
    )
    assert "--fill" in cli_error(capsys, ["forecast", "fit", path, "--horizon", "3", *QUICK])
    out = str(tmp_path / "run")
    argv = ["forecast", "fit", path, "--horizon", "3", "--fill", "interpolate", "--out", out]
    assert main([*argv, *QUICK]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["forecast", "fit", "airline", "--horizon", "0"], "expected a positive integer, got '0'"),
        (["forecast", "fit", "no-such.csv"], "neither a file nor a built-in"),
        (["forecast", "fit", "airline", "--cell", "lstn"], "unknown cell 'lstn'"),
        (["forecast", "predict", "no/such/run"], "no such run folder"),
        (["forecast", "backtest", "nile", "--folds", "40"], "too short"),
    ],
)
def test_bad_options_are_named_in_one_line(capsys, argv, message):
    quiet = [*argv, "--quiet"] if argv[1] != "predict" else argv  # predict has no bar
    assert re.search(message, cli_error(capsys, quiet))


def test_predict_longer_than_fitted_is_refused(run, capsys):
    err = cli_error(capsys, ["forecast", "predict", str(run), "--horizon", "13"])
    assert "forecasts at most 12 steps" in err


def test_many_series_with_a_covariate_fit_one_model(tmp_path, capsys):
    rows = ["date,shop,units,price"]
    for shop, scale in (("north", 1.0), ("south", 3.0)):
        for k in range(36):
            month = f"{2020 + k // 12}-{k % 12 + 1:02d}-01"
            rows.append(f"{month},{shop},{scale * (10 + k % 12)},{1 + (k % 3) / 10}")
    path = _csv(tmp_path, "\n".join(rows) + "\n")
    out = tmp_path / "run"
    argv = ["forecast", "fit", path, "--target", "units", "--id", "shop", "--covariates", "price"]
    assert main([*argv, "--horizon", "3", "--out", str(out), *QUICK]) == 0
    assert "north, south" in capsys.readouterr().out
    assert main(["forecast", "predict", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("north") == 3 and printed.count("south") == 3
    assert "2023-01-01" in printed
