"""Forecasting data: the built-in sets hold the published figures and load offline; every
bad input gets a one-line DataError naming the problem and where; the ``fill`` repairs
apply only when asked; the pandas API's forms all give checked TimeSeries."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest

from lstmkit.forecast.builtin import BUILTIN
from lstmkit.forecast.data import from_pandas, load_data
from lstmkit.forecast.series import DataError, TimeSeries

FILL_HINT = r"repair with --fill interpolate\|ffill\|zero"


def write(tmp_path, text: str | bytes, name: str = "data.csv") -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def monthly_csv(tmp_path, months: list[str], values=None, header: str = "date,y") -> str:
    values = range(len(months)) if values is None else values
    return write(
        tmp_path, header + "\n" + "".join(f"{m},{v}\n" for m, v in zip(months, values, strict=True))
    )


def month_starts(n: int, start: str = "2020-01-01") -> list[str]:
    return pd.date_range(start, periods=n, freq="MS").strftime("%Y-%m-%d").tolist()


def load_one(*args, **kwargs) -> TimeSeries:
    (series,) = load_data(*args, **kwargs)
    return series


def expect_error(pattern: str, *args, **kwargs) -> str:
    """load_data raises a DataError matching ``pattern``, on one line."""
    with pytest.raises(DataError, match=pattern) as info:
        load_data(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- built-in data sets -----------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a built-in data set tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", list(BUILTIN))
def test_builtin_loads_offline_and_matches_its_registry_entry(name, no_network):
    spec = BUILTIN[name]
    series = load_one(name)
    assert series.name == name
    assert len(series) == spec.length
    assert series.freq == spec.frequency
    assert isinstance(series.index, pd.DatetimeIndex)
    assert series.index.freqstr == spec.frequency
    assert series.values.dtype == np.float64
    assert np.isfinite(series.values).all()
    assert series.covariates is None
    frame = spec.load()
    assert list(frame.columns) == [spec.target]
    assert frame.index.name == spec.time


def test_registry_fields():
    assert set(BUILTIN) == {"airline", "sunspots", "nile", "co2"}
    for name, spec in BUILTIN.items():
        assert spec.name == name
        assert spec.description and spec.source and spec.units
        assert set(spec.behaviour) <= {"trend", "seasonality", "cycles", "level shift"}
    assert [BUILTIN[n].season for n in ("airline", "co2", "sunspots", "nile")] == [
        12,
        12,
        None,
        None,
    ]
    assert BUILTIN["nile"].behaviour == ("level shift",)


def test_airline_figures():
    """Box & Jenkins' series G: 144 months summing to 40,363 thousand passengers."""
    series = load_one("airline")
    values = series.values
    assert len(values) == 144
    assert values.sum() == 40363
    assert values[:12].tolist() == [112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118]
    assert values[-12:].tolist() == [417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432]
    assert series.index[0] == pd.Timestamp("1949-01-01")
    assert series.index[-1] == pd.Timestamp("1960-12-01")
    # the lowest month (November 1949) and the highest (July 1960)
    assert series.index[values.argmin()] == pd.Timestamp("1949-11-01") and values.min() == 104
    assert series.index[values.argmax()] == pd.Timestamp("1960-07-01") and values.max() == 622


def test_airline_figures_equal_statsmodels_copy():
    """An oracle nobody here wrote: statsmodels' SARIMAX tests carry the same series
    (``air2``, from Stata)."""
    from statsmodels.tsa.statespace.tests.results import results_sarimax

    assert load_one("airline").values.tolist() == list(results_sarimax.air2_data)


def test_sunspots_nile_co2_known_values():
    sunspots = load_one("sunspots")
    assert sunspots.index[0] == pd.Timestamp("1700-01-01") and sunspots.values[0] == 5.0
    assert sunspots.index[-1] == pd.Timestamp("2008-01-01") and sunspots.values[-1] == 2.9
    nile = load_one("nile")
    assert nile.index[0] == pd.Timestamp("1871-01-01") and nile.values[0] == 1120.0
    assert nile.index[-1] == pd.Timestamp("1970-01-01") and nile.values[-1] == 740.0
    years = nile.index.year
    # the level shift: the flow falls by about a fifth after 1898
    assert nile.values[years <= 1898].mean() - nile.values[years > 1898].mean() > 200
    co2 = load_one("co2")
    assert co2.index[0] == pd.Timestamp("1958-03-01") and co2.values[0] == pytest.approx(316.1)
    assert co2.index[-1] == pd.Timestamp("2001-12-01")


def test_co2_interpolates_only_the_months_without_a_reading():
    from statsmodels.datasets import co2 as source

    weekly = source.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()
    empty = monthly.index[monthly.isna()]
    assert [d.strftime("%Y-%m") for d in empty] == [
        "1958-06",
        "1958-10",
        "1964-02",
        "1964-03",
        "1964-04",
    ]
    prepared = BUILTIN["co2"].load()["co2"]
    assert prepared[monthly.notna()].equals(monthly[monthly.notna()])
    june = prepared["1958-06-01"]
    assert min(prepared["1958-05-01"], prepared["1958-07-01"]) <= june
    assert june <= max(prepared["1958-05-01"], prepared["1958-07-01"])


def test_builtin_without_statsmodels_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "statsmodels.datasets.nile", None)  # import fails
    expect_error(
        r"'nile' is read from statsmodels, which is not installed; install it with: "
        r"pip install statsmodels",
        "nile",
    )


def test_builtin_names_only_its_own_columns():
    assert load_one("airline", target="passengers", time="month").name == "airline"
    expect_error(
        r"'airline' has no target column 'sales'; its columns are: month \(time\), "
        r"passengers \(target\)",
        "airline",
        target="sales",
    )
    expect_error(r"'nile' has no time column 'date'", "nile", time="date")
    expect_error(
        r"'co2' has one series and no covariates, so no column 'x'", "co2", covariates=["x"]
    )


def test_unknown_source():
    expect_error(
        r"'nowhere\.csv' is neither a file nor a built-in data set \(airline, ", "nowhere.csv"
    )


# --- reading a CSV file ------------------------------------------------------------------------


def test_csv_with_dates_and_covariates(tmp_path):
    path = write(
        tmp_path, "date,sales,price\n2021-01-04,10,1.5\n2021-01-11,12,1.4\n2021-01-18,11,1.6\n"
    )
    series = load_one(path, target="sales", covariates=["price"])
    assert series.name == "sales"
    assert series.freq == "W-MON"
    assert series.values.tolist() == [10, 12, 11]
    assert series.covariates.shape == (3, 1)
    assert series.covariate_names == ("price",)
    assert series.future_index(2).tolist() == [
        pd.Timestamp("2021-01-25"),
        pd.Timestamp("2021-02-01"),
    ]


def test_csv_time_column_is_recognised(tmp_path):
    """Without --time: a column named like a time, else a first column of dates, else
    the rows are steps 0, 1, 2."""
    by_name = load_one(write(tmp_path, "value,year\n5,1990\n6,1991\n7,1992\n"))
    assert by_name.index.tolist() == [1990, 1991, 1992] and by_name.freq is None
    assert by_name.future_index(1).tolist() == [1993]
    by_dates = load_one(write(tmp_path, "when,value\n2020-01-01,1\n2020-01-02,2\n"))
    assert by_dates.freq == "D"
    steps = load_one(write(tmp_path, "value\n3\n4\n5\n"))
    assert steps.index.tolist() == [0, 1, 2]


def test_csv_time_column_given(tmp_path):
    path = write(tmp_path, "t,a,b\n0,1,2\n5,2,3\n10,3,4\n")
    series = load_one(path, time="t", target="b")
    assert series.index.tolist() == [0, 5, 10]
    assert series.values.tolist() == [2, 3, 4]


def test_csv_spaces_after_commas_and_byte_order_mark(tmp_path):
    path = write(tmp_path, "\ufeffdate, value\n2020-01-01, 1\n2020-01-02, 2\n")
    assert load_one(path, target="value").values.tolist() == [1, 2]


def test_empty_file(tmp_path):
    expect_error(r"^data\.csv is empty$", write(tmp_path, ""))
    expect_error(r"^data\.csv is empty$", write(tmp_path, "\n\n"))


def test_header_only_and_one_row(tmp_path):
    expect_error(r"only 0 rows; a series needs at least 2", write(tmp_path, "date,y\n"))
    expect_error(
        r"only 1 row; a series needs at least 2", write(tmp_path, "date,y\n2020-01-01,1\n")
    )


def test_not_utf8(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,caf\xe9\n".encode("latin-1"))
    expect_error(
        r"^data\.csv is not UTF-8 text \(byte 0xe9 at offset 21\); save it as UTF-8$", path
    )


def test_not_a_csv(tmp_path):
    expect_error(
        r"holds binary data \(a NUL byte at offset 4\), not CSV text",
        write(tmp_path, b"\x89PNG\x00\x00\x00\rIHDR"),
    )
    expect_error(
        r"is not a valid CSV file: .*Expected 2 fields in line 3, saw 3",
        write(tmp_path, "a,b\n1,2\n1,2,3\n"),
    )
    expect_error(r"is a directory, not a CSV file", str(tmp_path))


# --- the checks --------------------------------------------------------------------------------


def test_unknown_columns(tmp_path):
    path = write(tmp_path, "date,y,x\n2020-01-01,1,2\n2020-01-02,2,3\n")
    columns = "the columns are: date, y, x"
    expect_error(rf"data\.csv: unknown target column 'z'; {columns}$", path, target="z")
    expect_error(rf"unknown time column 'when'; {columns}", path, time="when")
    expect_error(rf"unknown covariate column 'w'; {columns}", path, target="y", covariates=["w"])
    expect_error(rf"unknown id column 'store'; {columns}", path, target="y", series_id="store")
    expect_error(
        r"column 'y' is named as both target and covariate", path, target="y", covariates=["y"]
    )


def test_target_must_be_chosen_among_several_numeric_columns(tmp_path):
    path = write(tmp_path, "date,y,x\n2020-01-01,1,2\n2020-01-02,2,3\n")
    expect_error(
        r"several numeric columns could be the target \(y, x\); name one with --target", path
    )
    assert load_one(path, target="x").values.tolist() == [2, 3]


def test_non_numeric_target_and_covariate(tmp_path):
    path = write(tmp_path, "date,y,x\n2020-01-01,1,2\n2020-01-02,two,3\n2020-01-03,n/a!,4\n")
    expect_error(
        r"column 'y' is not numeric: 'two' at 2020-01-02 is not a number "
        r"\(2 such values in all\)",
        path,
        target="y",
    )
    path = write(tmp_path, "date,y,x\n2020-01-01,1,2\n2020-01-02,2,high\n")
    expect_error(
        r"column 'x' is not numeric: 'high' at 2020-01-02", path, target="y", covariates=["x"]
    )


def test_numbers_written_as_text_are_numbers():
    frame = pd.DataFrame({"y": ["1.5", "2", None]}, index=pd.date_range("2020", periods=3))
    assert from_pandas(frame.iloc[:2])[0].values.tolist() == [1.5, 2.0]


def test_missing_values(tmp_path):
    path = write(tmp_path, "date,y,x\n2020-01-01,1,\n2020-01-02,,1\n2020-01-03,,1\n")
    expect_error(
        rf"column 'y' has 2 missing values, the first at 2020-01-02; {FILL_HINT}", path, target="y"
    )
    path = write(tmp_path, "date,y,x\n2020-01-01,1,\n2020-01-02,2,1\n")
    expect_error(
        rf"column 'x' has 1 missing value, the first at 2020-01-01; {FILL_HINT}",
        path,
        target="y",
        covariates=["x"],
    )


def test_unsorted_timestamps(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,1\n2020-01-03,2\n2020-01-02,3\n")
    expect_error(
        r"timestamps are not sorted: 2020-01-02 \(row 3\) comes after 2020-01-03; "
        r"sort the rows by time$",
        path,
    )


def test_duplicated_timestamps(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n2020-01-03,4\n")
    message = expect_error(r"duplicated timestamp 2020-01-02 \(row 3\); 1 row\(s\) repeat an", path)
    assert "--id" in message and "series_id=" in message


def test_long_data_without_its_id_column_hits_duplicates_first(tmp_path):
    path = write(
        tmp_path, "store,date,y\na,2020-01-01,1\na,2020-01-02,2\nb,2020-01-01,3\nb,2020-01-02,4\n"
    )
    expect_error(r"duplicated timestamp 2020-01-01 \(row 3\); 2 row\(s\) repeat .*--id", path)


def test_missing_steps_are_irregular_spacing_with_a_fill_hint(tmp_path):
    months = month_starts(24)
    path = monthly_csv(tmp_path, months[:5] + months[7:])
    expect_error(
        r"irregular spacing: 2020-05-01 is followed by 2020-08-01, expected a step of "
        rf"'MS' \(next 2020-06-01\); 2 steps missing in all; {FILL_HINT}",
        path,
    )


def test_integer_steps_with_a_missing_step(tmp_path):
    path = write(tmp_path, "year,y\n1990,1\n1991,2\n1993,4\n1994,5\n")
    expect_error(
        rf"1991 is followed by 1993, expected a step of 1 \(next 1992\); 1 step missing "
        rf"in all; {FILL_HINT}",
        path,
    )


def test_timestamps_off_the_grid_cannot_be_filled(tmp_path):
    months = month_starts(24)
    months[5] = "2020-06-17"
    path = monthly_csv(tmp_path, months)
    pattern = (
        r"irregular spacing: 2020-05-01 is followed by 2020-06-17, expected a step of 'MS' "
        r"\(next 2020-06-01\); the timestamps do not lie on one regular grid, so --fill "
        r"cannot repair them"
    )
    expect_error(pattern, path)
    expect_error(pattern, path, fill="interpolate")


def test_timestamps_with_no_regular_step(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,1\n2020-01-03,2\n2020-01-06,3\n")
    expect_error(
        r"irregular spacing: no regular step fits these timestamps: 2020-01-03 to "
        r"2020-01-06 is 3 days, not a multiple of the smallest step, 2 days "
        r"\(2020-01-01 to 2020-01-03\)",
        path,
    )


def test_unreadable_time_column(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,1\n2020-01-02,2\nyesterday,3\n")
    expect_error(
        r"time column 'date': cannot read 'yesterday' \(row 3\) as a date like the "
        r"first row's '2020-01-01'; 1 value cannot be read",
        path,
        time="date",
    )
    path = write(tmp_path, "year,y\n1990,1\n1990.5,2\n1991,3\n")
    expect_error(
        r"time column 'year' holds 1990\.5 \(row 2\); expected dates or whole-number", path
    )
    path = write(tmp_path, "date,y\n2020-01-01,1\n,2\n2020-01-03,3\n")
    expect_error(
        r"time column 'date' has 1 empty value, the first in row 2; every row needs a "
        r"timestamp",
        path,
        time="date",
    )


# --- the repairs ----------------------------------------------------------------------------------


def test_fill_interpolate_is_linear_in_time(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,0\n2020-02-01,\n2020-03-01,60\n")
    expect_error(r"column 'y' has 1 missing value", path)  # never repaired unasked
    series = load_one(path, fill="interpolate")
    # January has 31 days, February 29 (2020): the gap is weighted by days, not steps
    assert series.values[1] == pytest.approx(60 * 31 / 60)


def test_fill_puts_missing_steps_back_onto_the_grid(tmp_path):
    months = month_starts(12)
    path = monthly_csv(tmp_path, months[:3] + months[5:], values=[1, 2, 3, 6, 7, 8, 9, 10, 11, 12])
    series = load_one(path, fill="ffill")
    assert series.index.equals(pd.date_range("2020-01-01", periods=12, freq="MS"))
    assert series.freq == "MS"
    assert series.values[:6].tolist() == [1, 2, 3, 3, 3, 6]
    assert load_one(path, fill="zero").values[:6].tolist() == [1, 2, 3, 0, 0, 6]
    interpolated = load_one(path, fill="interpolate").values[:6]
    assert 3 < interpolated[3] < interpolated[4] < 6


def test_fill_on_integer_steps_and_covariates(tmp_path):
    path = write(tmp_path, "year,y,x\n1,10,1\n2,,2\n4,40,\n5,50,5\n")
    series = load_one(path, target="y", covariates=["x"], fill="interpolate")
    assert series.index.tolist() == [1, 2, 3, 4, 5]
    assert series.values.tolist() == [10, 20, 30, 40, 50]
    assert series.covariates[:, 0].tolist() == [1, 2, 3, 4, 5]


def test_fill_cannot_invent_values_at_the_edges(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,\n2020-01-02,2\n2020-01-03,\n")
    expect_error(
        r"column 'y': 2 missing values at the start or end, the first at 2020-01-01, "
        r"have no value on both sides to interpolate between; remove those rows or "
        r"use --fill ffill or zero",
        path,
        fill="interpolate",
    )
    expect_error(
        r"1 missing value at the start, the first at 2020-01-01, have nothing "
        r"before them to carry forward",
        path,
        fill="ffill",
    )
    assert load_one(path, fill="zero").values.tolist() == [0, 2, 0]


def test_unknown_fill(tmp_path):
    path = write(tmp_path, "date,y\n2020-01-01,1\n2020-01-02,2\n")
    expect_error(r"fill must be one of interpolate, ffill, zero, got 'mean'", path, fill="mean")


# --- the pandas API ----------------------------------------------------------------------------


def test_series_with_dates_steps_or_periods():
    dated = pd.Series([1.0, 2.0, 3.0], index=pd.date_range("2020-01-01", periods=3), name="temp")
    (series,) = from_pandas(dated)
    assert series.name == "temp" and series.freq == "D"
    (steps,) = from_pandas(pd.Series([1.0, 2.0, 3.0]))
    assert steps.name == "series" and steps.index.tolist() == [0, 1, 2] and steps.freq is None
    periods = pd.Series([1.0, 2.0], index=pd.period_range("2020-01", periods=2, freq="M"))
    assert from_pandas(periods)[0].index[1] == pd.Timestamp("2020-02-01")


def test_series_rejects_column_arguments():
    with pytest.raises(
        DataError,
        match=r"a Series is the target itself, its index the time, so "
        r"target=, covariates= \(which name DataFrame columns\) cannot apply",
    ):
        from_pandas(pd.Series([1.0, 2.0]), target="y", covariates=["x"])


def test_dataframe_with_covariates_and_time_column():
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2020-01-01", periods=4, freq="QS"),
            "demand": [1.0, 2.0, 3.0, 4.0],
            "price": [9.0, 8.0, 7.0, 6.0],
            "promo": [0, 1, 0, 1],
        }
    )
    (series,) = from_pandas(frame, target="demand", time="when", covariates=["price", "promo"])
    assert series.freq == "QS-JAN"
    assert series.covariates.tolist() == [[9, 0], [8, 1], [7, 0], [6, 1]]
    assert series.covariate_names == ("price", "promo")
    with pytest.raises(
        DataError,
        match=r"several numeric columns could be the target \(demand, "
        r"price, promo\)",
    ):
        from_pandas(frame, time="when")


def test_dataframe_index_is_the_time():
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0]}, index=pd.Index([1871.0, 1872.0, 1873.0]))
    (series,) = from_pandas(frame)
    assert series.index.tolist() == [1871, 1872, 1873]


def test_list_and_dict_of_series():
    index = pd.date_range("2020-01-01", periods=3, freq="MS")
    a = pd.Series([1.0, 2.0, 3.0], index=index, name="a")
    b = pd.Series([4.0, 5.0, 6.0], index=index, name="b")
    assert [s.name for s in from_pandas([a, b])] == ["a", "b"]
    assert [s.name for s in from_pandas([a, a])] == ["series0", "series1"]
    assert [s.name for s in from_pandas({"north": a, "south": b})] == ["north", "south"]
    broken = b.copy()
    broken.iloc[1] = np.nan
    with pytest.raises(DataError, match=r"^series 'south': column 'south' has 1 missing value"):
        from_pandas({"north": a, "south": broken})


def test_long_format_splits_by_id_into_one_global_set():
    frame = pd.DataFrame(
        {
            "store": ["b", "b", "b", "a", "a", "a"],
            "date": ["2020-01-01", "2020-01-02", "2020-01-03"] * 2,
            "sales": [1.0, 2.0, 3.0, 10.0, 20.0, 30.0],
            "open": [1, 1, 0, 1, 0, 1],
        }
    )
    stores = from_pandas(frame, time="date", series_id="store", covariates=["open"])
    assert [s.name for s in stores] == ["b", "a"]  # in order of appearance
    assert stores[1].values.tolist() == [10, 20, 30]
    assert stores[1].covariates[:, 0].tolist() == [1, 0, 1]
    frame.loc[4, "date"] = "2020-01-05"
    # rows are counted in the whole table, so the user can find them
    with pytest.raises(
        DataError,
        match=r"^series 'a': timestamps are not sorted: 2020-01-03 "
        r"\(row 6\) comes after 2020-01-05",
    ):
        from_pandas(frame, time="date", series_id="store", covariates=["open"])


def test_long_format_csv(tmp_path):
    path = write(
        tmp_path,
        "id,date,y\nA,2020-01-01,1\nA,2020-01-02,2\nB,2020-01-01,3\nB,2020-01-03,5\n"
        "B,2020-01-04,6\n",
    )
    expect_error(
        r"data\.csv: series 'B': irregular spacing: 2020-01-01 is followed by "
        r"2020-01-03, expected a step of 'D'",
        path,
        series_id="id",
    )
    a, b = load_data(path, series_id="id", fill="interpolate")
    assert len(a) == 2 and b.values.tolist() == [3, 4, 5, 6]


def test_from_pandas_rejects_other_types():
    with pytest.raises(
        TypeError,
        match=r"takes a pandas Series, a DataFrame, or a list or dict "
        r"of them, got str",
    ):
        from_pandas("airline")
    with pytest.raises(DataError, match=r"no series given"):
        from_pandas([])
