"""``lstmkit forecast fit | resume | predict | backtest``: forecasting from the command line.

    lstmkit forecast fit DATA [--target COL] [--time COL] [--covariates A,B] [--id COL]
                              [--fill interpolate|ffill|zero] [--horizon H] [--season M] ...
    lstmkit forecast resume RUN
    lstmkit forecast predict RUN [--horizon H] [--csv FILE] [--plot PNG]
    lstmkit forecast backtest DATA [...the data options] [--folds K] [--cells lstm,gru]
                                   [--baselines naive,seasonal_naive,ets,arima]

DATA is a built-in data set (airline, sunspots, nile, co2) or a CSV file. Bad data (gaps,
unsorted or duplicated timestamps, irregular spacing, a non-numeric target, an unknown
column, a series too short for its window and horizon) ends in one line, ``lstmkit:
error: ...``, and exit 2; ``--fill`` is the one repair, applied only when asked.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lstmkit._cli_args import (
    Parser,
    list_of,
    one_of,
    one_thread_unless_asked,
    positive_float,
    positive_int,
    seed,
)
from lstmkit.checkpoints import CheckpointError
from lstmkit.forecast.builtin import BUILTIN
from lstmkit.forecast.model import CELLS
from lstmkit.forecast.series import DataError

_USER_ERRORS = (DataError, CheckpointError)
# the names of lstmkit.forecast.data.FILLS and .baselines.BASELINES, written out so that
# starting the CLI does not import pandas and statsmodels (a test keeps them equal)
FILLS = ("interpolate", "ffill", "zero")
BASELINE_NAMES = ("naive", "seasonal_naive", "ets", "arima")


def add_forecast(subparsers: argparse._SubParsersAction) -> Parser:
    p = subparsers.add_parser(
        "forecast",
        help="forecast time series with an LSTM, and backtest it against baselines",
        description=(
            "Fit an LSTM (or any lstmkit cell) forecaster, predict with it, or backtest it "
            "against naive, seasonal naive, ETS and ARIMA on rolling origins. DATA is a "
            f"built-in data set ({', '.join(BUILTIN)}) or a CSV file."
        ),
        allow_abbrev=False,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_fit(actions)
    _add_predict(actions)
    _add_backtest(actions)
    return p


# -- shared options --------------------------------------------------------------------------


def _add_data_options(p: Parser) -> None:
    p.add_argument("data", metavar="DATA", help=f"{', '.join(BUILTIN)} or a CSV file")
    p.add_argument("--target", help="the column to forecast (default: the only numeric one)")
    p.add_argument("--time", help="the time column (default: one named like date or year)")
    p.add_argument(
        "--covariates", type=_columns, default=(), help="more input columns, comma-separated"
    )
    p.add_argument("--id", dest="series_id", help="a column naming each series (long format)")
    p.add_argument(
        "--fill",
        type=one_of(FILLS, "fill"),
        help="repair gaps: interpolate (linear in time), ffill (carry the last value) or zero",
    )
    p.add_argument(
        "--horizon", type=positive_int, help="steps to forecast (default: the season, or 8)"
    )
    p.add_argument(
        "--season", type=positive_int, help="seasonal period in steps (default: the data set's)"
    )


def _add_model_options(p: Parser, *, one_cell: bool = True) -> None:
    if one_cell:  # a backtest names its cells with --cells instead
        p.add_argument("--cell", type=one_of(CELLS, "cell"), default="lstm", help="default lstm")
    p.add_argument("--hidden", type=positive_int, default=64, help="units (default 64)")
    p.add_argument("--layers", type=positive_int, default=1, help="recurrent layers (1)")
    p.add_argument("--input-len", type=positive_int, help="past steps read (default: two seasons)")
    p.add_argument("--steps", type=positive_int, default=800, help="training steps (800)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="windows per step (64)")
    p.add_argument("--lr", type=positive_float, default=3e-3, help="peak learning rate (3e-3)")
    p.add_argument("--seed", type=seed, default=0, help="seeds everything (default 0)")
    p.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="skip the interval's conformal calibration (one fit instead of two)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _columns(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def _load(args: argparse.Namespace):
    """The series DATA names, and the season and horizon to use for them."""
    from lstmkit.forecast.data import load_data  # pandas: only when a command reads data

    series = load_data(
        args.data,
        target=args.target,
        time=args.time,
        covariates=args.covariates,
        series_id=args.series_id,
        fill=args.fill,
    )
    builtin = BUILTIN.get(args.data)
    season = args.season if args.season is not None else (builtin.season if builtin else None)
    horizon = args.horizon if args.horizon is not None else (season or 8)
    return series, season, horizon


def _source(args: argparse.Namespace) -> dict:
    names = ("data", "target", "time", "covariates", "series_id", "fill")
    return {name: getattr(args, name) for name in names if getattr(args, name)}


def _forecaster(args: argparse.Namespace, horizon: int, season: int | None):
    from lstmkit.forecast.api import Forecaster

    return Forecaster(
        horizon,
        season=season,
        cell=args.cell,
        hidden_size=args.hidden,
        num_layers=args.layers,
        input_len=args.input_len,
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        seed=args.seed,
        calibrate=args.calibrate,
    )


# -- fit ---------------------------------------------------------------------------------------


def _add_fit(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "fit",
        help="fit a forecaster and save it in a run folder",
        description="Fit a forecaster on all of DATA and save it (and checkpoints) in RUN.",
        allow_abbrev=False,
    )
    _add_data_options(p)
    _add_model_options(p)
    p.add_argument("--out", type=Path, help="run folder (default runs/forecast-DATA-CELL)")
    p.set_defaults(handler=_run_fit)
    resume = actions.add_parser(
        "resume",
        help="continue a fit exactly where its last checkpoint stopped",
        allow_abbrev=False,
    )
    resume.add_argument("run", type=Path, metavar="RUN")
    resume.add_argument("--quiet", action="store_true", help="no progress bar")
    resume.set_defaults(handler=_run_resume)


def _run_fit(args: argparse.Namespace, parser: Parser) -> int:
    one_thread_unless_asked()  # a network of tens of units: threads only add overhead
    try:
        series, season, horizon = _load(args)
        model = _forecaster(args, horizon, season)
    except (*_USER_ERRORS, ValueError) as err:
        parser.error(str(err))
    run = args.out or _new_run(args.data, args.cell)
    if (run / "config.json").exists():
        parser.error(f"{run} already holds a run; choose another --out")
    try:
        model.fit(series, run=run, source=_source(args), progress=not args.quiet)
    except (*_USER_ERRORS, ValueError) as err:
        parser.error(str(err))
    _report_fit(model, run)
    return 0


def _run_resume(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit.forecast.api import Forecaster

    one_thread_unless_asked()
    try:
        model = Forecaster.resume(args.run, progress=not args.quiet)
    except _USER_ERRORS as err:
        parser.error(str(err))
    _report_fit(model, args.run)
    return 0


def _new_run(data: str, cell: str) -> Path:
    base = Path("runs") / f"forecast-{Path(data).stem}-{cell}"
    run, k = base, 2
    while run.exists():
        run, k = base.with_name(f"{base.name}-{k}"), k + 1
    return run


def _report_fit(model, run: Path) -> None:
    c = model.net.config
    names = ", ".join(s.name for s in model.series)
    print(
        f"fitted a {c.cell} ({c.num_layers} x {c.hidden_size} units) on {names}: reads "
        f"{c.input_len} steps, forecasts {c.horizon}; final loss {model.losses[-1]:.4f}"
    )
    levels = c.quantiles
    interval = f"{levels[0]:g}-{levels[-1]:g} quantile interval"
    if model.corrections is not None:
        print(f"the {interval} is calibrated on held-out windows (conformal)")
    elif model.calibrate:
        print(f"the {interval} is not calibrated: too few windows to hold some out")
    print(f"run saved in {run}/; next: lstmkit forecast predict {run}")


# -- predict -----------------------------------------------------------------------------------


def _add_predict(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "predict",
        help="forecast after the end of the data a run was fitted on",
        allow_abbrev=False,
    )
    p.add_argument("run", type=Path, metavar="RUN", help="a run folder of 'forecast fit'")
    p.add_argument("--horizon", type=positive_int, help="steps (default: the fitted horizon)")
    p.add_argument("--csv", type=Path, help="also write the forecast to this CSV file")
    p.add_argument("--plot", type=Path, help="also draw history and forecast (PNG or SVG)")
    p.set_defaults(handler=_run_predict)


def _run_predict(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit.forecast.api import Forecaster

    try:
        model = Forecaster.load(args.run)
        table = model.predict(args.horizon)
        if args.plot is not None:
            _plot_prediction(model, table, args.plot)
    except (*_USER_ERRORS, ValueError) as err:
        parser.error(str(err))
    shown = table[["series", "time", "forecast", "lower", "upper"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    levels = model.net.config.quantiles
    print(f"(forecast: the median; lower, upper: the {levels[0]:g} and {levels[-1]:g} quantiles)")
    if args.csv is not None:
        from lstmkit._atomic import write_atomic

        write_atomic(args.csv, table.to_csv(index=False).encode())
        print(f"wrote {args.csv}")
    if args.plot is not None:
        print(f"wrote {args.plot}")
    return 0


def _plot_prediction(model, table, path: Path) -> None:
    from lstmkit.plots import plot_forecast

    series = model.series[0]  # the first series: one figure, one history
    rows = table[table.series == series.name]
    levels = model.net.config.quantiles
    label = f"{levels[0]:g}-{levels[-1]:g} quantiles"
    plot_forecast(
        (series.index, series.values),
        {f"{model.net.config.cell} (median)": (rows.time, rows.forecast.to_numpy())},
        path,
        interval=(rows.time, rows.lower.to_numpy(), rows.upper.to_numpy(), label),
        title=f"{series.name}: forecast of {len(rows)} steps",
    )


# -- backtest ----------------------------------------------------------------------------------


def _add_backtest(actions: argparse._SubParsersAction) -> None:
    p = actions.add_parser(
        "backtest",
        help="rolling-origin backtest of lstmkit cells against naive, ETS and ARIMA",
        description=(
            "Cut DATA at several origins; at each, fit every cell and every baseline on the "
            "past and score its forecast of the next HORIZON steps (MAE, RMSE, sMAPE, MASE, "
            "and the cells' interval coverage). Prints the table of means over the folds "
            "and writes a plot of the last fold."
        ),
        allow_abbrev=False,
    )
    _add_data_options(p)
    _add_model_options(p, one_cell=False)
    p.add_argument("--folds", type=positive_int, default=5, help="origins (default 5)")
    p.add_argument(
        "--cells",
        type=list_of(CELLS, "cell"),
        default=("lstm", "gru"),
        help="lstmkit cells to compare (default lstm,gru)",
    )
    p.add_argument(
        "--baselines",
        type=list_of(BASELINE_NAMES, "baseline"),
        default=BASELINE_NAMES,
        help=f"baselines to run (default {','.join(BASELINE_NAMES)})",
    )
    p.add_argument(
        "--out", type=Path, help="folder for backtest.png and .json (runs/backtest-DATA)"
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(handler=_run_backtest)


def _run_backtest(args: argparse.Namespace, parser: Parser) -> int:
    from lstmkit.forecast.backtest import backtest
    from lstmkit.forecast.baselines import BASELINES

    one_thread_unless_asked()
    try:
        series, season, horizon = _load(args)
        models = {cell: _forecaster(_with_cell(args, cell), horizon, season) for cell in args.cells}
        baselines = {name: BASELINES[name] for name in args.baselines}
        result = backtest(
            series,
            horizon,
            season,
            args.folds,
            models,
            baselines=baselines,
            progress=not args.quiet,
        )
    except (*_USER_ERRORS, ValueError) as err:
        parser.error(str(err))
    out = args.out or Path("runs") / f"backtest-{Path(args.data).stem}"
    written = result.write(out, title=f"{args.data}: last fold")
    if args.json:
        json.dump(result.summary(), sys.stdout, indent=2)
        print()
    else:
        print(result.table())
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _with_cell(args: argparse.Namespace, cell: str) -> argparse.Namespace:
    copy = argparse.Namespace(**vars(args))
    copy.cell = cell
    return copy
