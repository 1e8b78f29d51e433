"""Reading forecasting data into checked :class:`TimeSeries`: built-in sets, CSV files and
pandas objects.

Two entries: :func:`load_data` (a built-in name or a CSV path, what the CLI's ``DATA``
argument names) and :func:`from_pandas` (the Python API). Both return a list of
TimeSeries, one per series; many series share one global model.

Every series passes these checks, in this order, or a :class:`DataError` with a one-line
message says what is wrong, where (column, timestamp, counts) and what was expected:

1. every named column exists (the message lists the columns there are);
2. a target can be chosen: named, or the only column left (time, id and covariates aside),
   or else the only numeric one;
3. every timestamp can be read, as a date or as a whole number (integer steps);
4. at least 2 rows (a time step needs two timestamps);
5. timestamps unique, then sorted (never sorted here: rows out of order may be a mistake);
6. target and covariates numeric;
7. timestamps regularly spaced: a frequency pandas can infer (``pd.infer_freq``), or for
   integer time one step; a series that is regular except for missing steps is told
   about ``--fill``;
8. no missing value in the target or a covariate (the message mentions ``--fill``).

The only repair is ``fill``, and only when asked; without it the same data raise:

* ``"interpolate"``: put the missing timestamps back onto the regular grid, then fill
  every gap linearly in time between its two neighbours. A gap at the start or the end
  has only one neighbour and raises.
* ``"ffill"``: the same grid, then carry the last value forward. A gap at the start has
  nothing before it and raises.
* ``"zero"``: the same grid, then 0 for every missing value (counts, sales).

Messages cite a row as "row N": the N-th data row of the table given (a CSV's header is
not a row; in long format, rows of the whole table, not of one series).

Nothing else is done here: no windowing, no scaling (the model does those).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import pandas as pd
from pandas.errors import EmptyDataError, OptionError, ParserError
from pandas.tseries.frequencies import to_offset

from .builtin import BUILTIN, BuiltinSet
from .series import DataError, TimeSeries

Fill = Literal["interpolate", "ffill", "zero"]
FILLS: tuple[str, ...] = get_args(Fill)

TIME_NAMES = frozenset(
    {"date", "datetime", "time", "timestamp", "ds", "period", "year", "month", "week", "day"}
)
"""Column names a CSV's time column is recognised by when ``time`` is not given."""

_FILL_HINT = "repair with --fill interpolate|ffill|zero (fill= in Python)"
_FREQ_SAMPLE = 200  # triples of timestamps sampled to guess the step of a gappy series


class _Part(NamedTuple):
    """One series' share of the input, before its checks."""

    name: str
    frame: pd.DataFrame
    target: str
    rows: np.ndarray
    """(n,) the 1-based row numbers of the frame's rows in the table given, for messages."""


# --- the two entries ---------------------------------------------------------------------


def load_data(
    source: str,
    *,
    target: str | None = None,
    time: str | None = None,
    covariates: Sequence[str] = (),
    series_id: str | None = None,
    fill: Fill | None = None,
) -> list[TimeSeries]:
    """Read a built-in data set by name, or a CSV file, into checked series.

    A name in :data:`~lstmkit.forecast.builtin.BUILTIN` always means the built-in (write
    ``./airline`` for a file of that name). For a built-in, ``target`` and ``time`` default
    to its own columns and naming any other column is an error; its series is named after
    the set. For a CSV file, ``time`` defaults to the first column named like a time
    (``date``, ``time``, ``year``, ``month``, ...; see :data:`TIME_NAMES`) or else the first
    column if it holds dates; without one the rows are steps 0, 1, 2, ... The rest is
    :func:`from_pandas` on a DataFrame; errors from a file start with its name.
    """
    if source in BUILTIN:
        return _load_builtin(BUILTIN[source], target, time, covariates, series_id, fill)
    path = Path(source)
    frame = _read_csv(path, source)
    if time is None:
        time = _guess_time_column(frame, {target, series_id, *covariates})
    try:
        return from_pandas(
            frame,
            target=target,
            time=time,
            covariates=covariates,
            series_id=series_id,
            fill=fill,
        )
    except DataError as error:
        raise DataError(f"{path.name}: {error}") from None


def from_pandas(
    data: pd.Series | pd.DataFrame | Sequence[pd.Series | pd.DataFrame] | Mapping[str, pd.Series],
    *,
    target: str | None = None,
    time: str | None = None,
    covariates: Sequence[str] = (),
    series_id: str | None = None,
    fill: Fill | None = None,
) -> list[TimeSeries]:
    """Check pandas data into series; the Python API's entry.

    * a Series: one series, its index the time, named after the Series (or ``"series"``);
    * a DataFrame: the index is the time unless ``time`` names a column; ``target`` names
      the value column (required when more than one numeric column could be it);
      ``covariates`` names known-in-advance numeric columns. With ``series_id`` the frame
      is in long format: one series per value of that column, in order of appearance;
    * a list or dict of Series or DataFrames: many series, each read as above with the same
      arguments; a dict's keys name them, a list's Series names name them if they are all
      set and distinct, else ``series0``, ``series1``, ...

    Integer (or whole float) time values are steps, not dates: the index stays integer and
    ``freq`` is None. ``fill`` is the only repair; see the module docstring.
    """
    _check_fill(fill)
    named = _named_frames(data, target, time, covariates, series_id)
    if not named:
        raise DataError("no series given: the data hold no rows or no series")
    # a single series needs no name in its messages; one of many does
    one = len(named) == 1 and series_id is None and isinstance(data, pd.Series | pd.DataFrame)
    result = []
    for part in named:
        try:
            result.append(_series_from_part(part, time, covariates, fill))
        except DataError as error:
            if one:
                raise
            raise DataError(f"series {part.name!r}: {error}") from None
    return result


# --- sources -----------------------------------------------------------------------------


def _load_builtin(
    spec: BuiltinSet,
    target: str | None,
    time: str | None,
    covariates: Sequence[str],
    series_id: str | None,
    fill: Fill | None,
) -> list[TimeSeries]:
    """A built-in set, after checking that only its own columns are named."""
    columns = f"{spec.time} (time), {spec.target} (target)"
    for role, column, own in (("target", target, spec.target), ("time", time, spec.time)):
        if column is not None and column != own:
            raise DataError(
                f"the built-in data set {spec.name!r} has no {role} column {column!r}; "
                f"its columns are: {columns}"
            )
    if covariates or series_id is not None:
        extra = ", ".join(repr(c) for c in (*covariates, series_id) if c is not None)
        raise DataError(
            f"the built-in data set {spec.name!r} has one series and no covariates, so no "
            f"column {extra}; its columns are: {columns}"
        )
    (series,) = from_pandas(spec.load(), target=spec.target, fill=fill)
    return [replace(series, name=spec.name)]


def _read_csv(path: Path, source: str) -> pd.DataFrame:
    """The CSV at ``path`` as a DataFrame, or a DataError saying why it is not one."""
    if not path.exists():
        names = ", ".join(BUILTIN)
        raise DataError(f"{source!r} is neither a file nor a built-in data set ({names})")
    if path.is_dir():
        raise DataError(f"{source!r} is a directory, not a CSV file")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path.name} is empty")
    nul = raw.find(b"\x00")
    if nul >= 0:
        # NUL never occurs in text; read_csv would report something obscure or nothing
        raise DataError(f"{path.name} holds binary data (a NUL byte at offset {nul}), not CSV text")
    try:
        text = raw.decode("utf-8-sig")  # -sig: accept the byte-order mark spreadsheets write
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path.name} is not UTF-8 text (byte 0x{raw[error.start]:02x} at offset "
            f"{error.start}); save it as UTF-8"
        ) from None
    return _parse_csv(text, path.name)


def _parse_csv(text: str, label: str) -> pd.DataFrame:
    """Parse CSV text; ``skipinitialspace`` so that ``date, value`` names ``value``."""
    from io import StringIO

    try:
        return pd.read_csv(StringIO(text), skipinitialspace=True)
    except EmptyDataError:
        raise DataError(f"{label} is empty") from None
    except ParserError as error:
        reason = str(error).strip().splitlines()[-1].removeprefix("Error tokenizing data. ")
        raise DataError(f"{label} is not a valid CSV file: {reason}") from None


def _guess_time_column(frame: pd.DataFrame, taken: set) -> str | None:
    """The first column named like a time; else the first column if all of it reads as
    dates; else None (rows are steps)."""
    free = [c for c in frame.columns if c not in taken]
    for column in free:
        if str(column).strip().lower() in TIME_NAMES:
            return column
    if free and free[0] == frame.columns[0] and _all_dates(frame[free[0]]):
        return free[0]
    return None


def _all_dates(column: pd.Series) -> bool:
    """Whether a text column reads entirely as dates (numbers are never guessed as time)."""
    if pd.api.types.is_numeric_dtype(column) or column.isna().any():
        return False
    with warnings.catch_warnings():
        # "Could not infer format": expected for columns that are not dates at all
        warnings.simplefilter("ignore", UserWarning)
        try:
            parsed = pd.to_datetime(column, errors="coerce")
        except (TypeError, ValueError):
            return False
    return bool(parsed.notna().all())


# --- pandas objects into parts, one per series ----------------------------------------------


def _named_frames(
    data, target: str | None, time: str | None, covariates: Sequence[str], series_id: str | None
) -> list[_Part]:
    """Split the input into one part per series, each with its name and target."""
    if isinstance(data, pd.Series):
        _check_series_arguments(target, time, covariates, series_id)
        name = "series" if data.name is None else str(data.name)
        return [_Part(name, data.to_frame(name), name, _row_numbers(len(data)))]
    if isinstance(data, pd.DataFrame):
        return _split_frame(data, target, time, covariates, series_id)
    if isinstance(data, Mapping):
        items = [(str(key), value) for key, value in data.items()]
    elif isinstance(data, Sequence) and not isinstance(data, str | bytes):
        items = list(zip(_list_names(data), data, strict=True))
    else:
        raise TypeError(
            "from_pandas takes a pandas Series, a DataFrame, or a list or dict of them, got "
            f"{type(data).__name__}"
        )
    named = []
    for name, item in items:
        if isinstance(item, pd.Series):
            item = item.rename(name)  # its column in messages is the name the series goes by
        parts = _named_frames(item, target, time, covariates, series_id)
        for part in parts:
            # a long frame in a list splits further: keep both names
            named.append(part._replace(name=name if len(parts) == 1 else f"{name}/{part.name}"))
    return named


def _row_numbers(n: int) -> np.ndarray:
    return np.arange(1, n + 1)


def _list_names(items: Sequence) -> list[str]:
    """Names for a list's series: their own if all set and distinct, else series0, ..."""
    names = [getattr(item, "name", None) for item in items]
    if None not in names and len(set(names)) == len(names):
        return [str(name) for name in names]
    return [f"series{i}" for i in range(len(items))]


def _check_series_arguments(target, time, covariates, series_id) -> None:
    """A Series is the target itself, indexed by time: column arguments cannot apply."""
    given = [
        f"{name}="
        for name, value in (
            ("target", target),
            ("time", time),
            ("covariates", covariates),
            ("series_id", series_id),
        )
        if value
    ]
    if given:
        raise DataError(
            f"a Series is the target itself, its index the time, so {', '.join(given)} (which "
            f"name DataFrame columns) cannot apply; pass a DataFrame to name columns"
        )


def _split_frame(
    frame: pd.DataFrame,
    target: str | None,
    time: str | None,
    covariates: Sequence[str],
    series_id: str | None,
) -> list[_Part]:
    """Check the columns once, choose the target, and split a long frame by its id."""
    _check_columns(frame, target, time, covariates, series_id)
    if target is None:
        target = _choose_target(frame, {time, series_id, *covariates})
    rows = _row_numbers(len(frame))
    if series_id is None:
        return [_Part(str(target), frame, target, rows)]
    empty = np.flatnonzero(frame[series_id].isna().to_numpy())
    if len(empty):
        raise DataError(f"id column {series_id!r} is empty in row {empty[0] + 1}")
    # positions, not labels: the frame's index may be the (repeating) time
    positions = frame.groupby(series_id, sort=False).indices
    return [
        _Part(str(key), frame.iloc[where].drop(columns=series_id), target, rows[where])
        for key, where in positions.items()
    ]


def _check_columns(
    frame: pd.DataFrame,
    target: str | None,
    time: str | None,
    covariates: Sequence[str],
    series_id: str | None,
) -> None:
    """Every named column exists, and no column has two roles."""
    there = ", ".join(str(c) for c in frame.columns)
    roles = [("target", target), ("time", time), ("id", series_id)]
    roles += [("covariate", c) for c in covariates]
    seen: dict[str, str] = {}
    for role, column in roles:
        if column is None:
            continue
        if column not in frame.columns:
            raise DataError(f"unknown {role} column {column!r}; the columns are: {there}")
        if column in seen:
            raise DataError(f"column {column!r} is named as both {seen[column]} and {role}")
        seen[column] = role


def _choose_target(frame: pd.DataFrame, taken: set) -> str:
    """The only column not otherwise used (checked for numbers later, so a stray word in it
    is reported as such), else the only numeric one; several or none is an error."""
    free = [c for c in frame.columns if c not in taken]
    if not free:
        raise DataError(
            "no column left to forecast: every column is the time, the id or a covariate"
        )
    if len(free) == 1 or frame.empty:  # an empty frame's dtypes say nothing
        return free[0]
    numeric = [c for c in free if _is_number_dtype(frame[c])]
    if len(numeric) == 1:
        return numeric[0]
    if not numeric:
        listed = ", ".join(str(c) for c in free) or "(none)"
        raise DataError(
            f"no numeric column to forecast among: {listed}; name the target with --target "
            f"(target= in Python)"
        )
    listed = ", ".join(str(c) for c in numeric)
    raise DataError(
        f"several numeric columns could be the target ({listed}); name one with --target "
        f"(target= in Python)"
    )


def _is_number_dtype(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


# --- one series ------------------------------------------------------------------------------


def _series_from_part(
    part: _Part, time: str | None, covariates: Sequence[str], fill: Fill | None
) -> TimeSeries:
    """Run the checks on one series (its columns already checked) and build it."""
    frame, target, rows = part.frame, part.target, part.rows
    label = "the index" if time is None else f"time column {time!r}"
    times = _read_times(frame.index if time is None else frame[time], label, rows)
    _check_length(len(times))
    # repeats first: long data read without its id column repeat and are also unsorted
    _check_unique(times, rows)
    _check_sorted(times, rows)
    columns = [target, *covariates]
    table = pd.DataFrame(
        {c: _numeric(frame[c], times, c) for c in columns}, index=times
    )  # (n, 1 + k) float64
    grid, freq = _regular_grid(times, fill is not None)
    table = table.reindex(grid)  # adds NaN rows for missing steps (only when fill is given)
    table = _fill_missing(table, fill) if fill is not None else _check_complete(table)
    index = pd.DatetimeIndex(grid, freq=freq) if freq is not None else grid
    covariate_values = table[list(covariates)].to_numpy(np.float64) if covariates else None
    return TimeSeries(
        name=part.name,
        values=table[target].to_numpy(np.float64),
        index=index,
        freq=freq,
        covariates=covariate_values,
        covariate_names=tuple(covariates),
    )


def _read_times(raw: pd.Index | pd.Series, label: str, rows: np.ndarray) -> pd.Index:
    """Timestamps as a DatetimeIndex, or an int64 Index for integer steps."""
    values = pd.Index(raw)
    empty = np.flatnonzero(pd.isna(values))
    if len(empty):
        raise DataError(
            f"{label} has {_plural(len(empty), 'empty value')}, the first in row "
            f"{rows[empty[0]]}; every row needs a timestamp"
        )
    if isinstance(values, pd.PeriodIndex):
        return values.to_timestamp()
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.DatetimeIndex(values)
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"{label} holds True/False; expected dates or whole-number steps")
    if pd.api.types.is_integer_dtype(values):
        return values.astype(np.int64)
    if pd.api.types.is_numeric_dtype(values):
        return _whole_numbers(values, label, rows)
    return _parse_dates(values, label, rows)


def _whole_numbers(values: pd.Index, label: str, rows: np.ndarray) -> pd.Index:
    """Float time values that are whole numbers (1871.0) as integer steps."""
    numbers = values.to_numpy(np.float64)
    fractional = np.flatnonzero(numbers != np.round(numbers))
    if len(fractional):
        raise DataError(
            f"{label} holds {numbers[fractional[0]]:g} (row {rows[fractional[0]]}); expected "
            f"dates or whole-number steps"
        )
    return pd.Index(numbers.astype(np.int64), name=values.name)


def _parse_dates(values: pd.Index, label: str, rows: np.ndarray) -> pd.DatetimeIndex:
    """Text timestamps as dates, all in the format of the first (pandas infers it)."""
    with warnings.catch_warnings():
        # pandas warns when it cannot infer a format; the bad value is reported below
        warnings.simplefilter("ignore", UserWarning)
        try:
            parsed = pd.to_datetime(values, errors="coerce")
        except (TypeError, ValueError) as error:
            raise DataError(f"{label} cannot be read as dates: {error}") from None
    bad = np.flatnonzero(pd.isna(parsed))
    if len(bad):
        raise DataError(
            f"{label}: cannot read {values[bad[0]]!r} (row {rows[bad[0]]}) as a date like the "
            f"first row's {values[0]!r}; {_plural(len(bad), 'value')} cannot be read"
        )
    return pd.DatetimeIndex(parsed, name=values.name)


def _check_length(n: int) -> None:
    if n < 2:
        raise DataError(f"only {_plural(n, 'row')}; a series needs at least 2 to have a time step")


def _check_sorted(times: pd.Index, rows: np.ndarray) -> None:
    """Timestamps must rise: sorting silently could hide rows in the wrong file or order."""
    step_back = np.flatnonzero(np.asarray(times[1:] < times[:-1]))
    if len(step_back):
        i = step_back[0]
        raise DataError(
            f"timestamps are not sorted: {_show(times[i + 1])} (row {rows[i + 1]}) comes after "
            f"{_show(times[i])}; sort the rows by time"
        )


def _check_unique(times: pd.Index, rows: np.ndarray) -> None:
    """Each timestamp once; a repeat often means several series in one file."""
    repeats = np.flatnonzero(times.duplicated())
    if len(repeats):
        i = repeats[0]
        raise DataError(
            f"duplicated timestamp {_show(times[i])} (row {rows[i]}); "
            f"{len(repeats)} row(s) repeat an earlier timestamp; each step needs one "
            f"row (several series in one table? name their id column with --id, "
            f"series_id= in Python)"
        )


def _numeric(column: pd.Series, times: pd.Index, name: str) -> np.ndarray:
    """A value column as float64 (NaN kept for the missing-value check); text numbers such
    as "3.5" are accepted, anything else names the first offender."""
    if _is_number_dtype(column):
        return column.to_numpy(np.float64)
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        raise DataError(f"column {name!r} is not numeric: it holds {column.dtype} values")
    numbers = pd.to_numeric(column, errors="coerce")
    bad = np.flatnonzero((numbers.isna() & column.notna()).to_numpy())
    if len(bad):
        raise DataError(
            f"column {name!r} is not numeric: {column.iloc[bad[0]]!r} at {_show(times[bad[0]])} "
            f"is not a number ({_plural(len(bad), 'such value')} in all)"
        )
    return numbers.to_numpy(np.float64)


# --- spacing -----------------------------------------------------------------------------------


def _regular_grid(times: pd.Index, filling: bool) -> tuple[pd.Index, str | None]:
    """The regular grid the timestamps lie on and its pandas frequency (None for integer
    steps). Missing steps are an error unless ``filling``; off-grid timestamps always are."""
    if isinstance(times, pd.DatetimeIndex):
        freq = _infer_freq(times)
        if freq is not None:
            return times, freq
        freq = _guess_freq(times) or _smallest_fixed_step(times)
        if freq is None:
            raise _no_regular_step(times)
        grid = pd.date_range(times[0], times[-1], freq=freq, name=times.name)
        step_text = repr(freq)
    else:
        step = int(np.diff(times.to_numpy()).min())
        if (np.diff(times.to_numpy()) == step).all():
            return times, None
        grid = pd.Index(np.arange(times[0], times[-1] + 1, step), name=times.name)
        freq, step_text = None, str(step)
    _check_on_grid(times, grid, step_text, filling)
    return grid, freq


def _check_on_grid(times: pd.Index, grid: pd.Index, step: str, filling: bool) -> None:
    """Raise unless (filling and) every timestamp lies on the grid."""
    i = _first_gap(times, grid)
    if times[i] in grid:
        k = grid.get_loc(times[i]) + 1
        expected = f" (next {_show(grid[k])})" if k < len(grid) else ""
        where = (
            f"{_show(times[i])} is followed by {_show(times[i + 1])}, expected a step of "
            f"{step}{expected}"
        )
    else:
        where = f"{_show(times[i])} is off the step of {step} that the other timestamps follow"
    if not times.isin(grid).all():
        raise DataError(
            f"irregular spacing: {where}; the timestamps do not lie on one regular grid, so "
            f"--fill cannot repair them"
        )
    if not filling:
        raise DataError(
            f"irregular spacing: {where}; {_plural(len(grid) - len(times), 'step')} missing "
            f"in all; {_FILL_HINT}"
        )


def _first_gap(times: pd.Index, grid: pd.Index) -> int:
    """The position i of the first timestamp whose successor is not the next grid point."""
    on_grid = times.isin(grid)
    for i in range(len(times) - 1):
        if not on_grid[i]:
            return i
        k = grid.get_loc(times[i]) + 1
        if k >= len(grid) or grid[k] != times[i + 1]:
            return i
    return len(times) - 1  # the last timestamp is off the grid


def _infer_freq(times: pd.DatetimeIndex) -> str | None:
    """``pd.infer_freq`` as an alias string; two timestamps (too few for pandas) give a
    fixed step such as "31D"."""
    if len(times) < 3:
        return _fixed_offset(times[1] - times[0])
    try:
        # pandas 3 warns that infer_freq will return an offset; ask for that now
        with pd.option_context("future.infer_freq_returns_offset", True):
            freq = pd.infer_freq(times)
    except OptionError:  # an older pandas without the option returns a string
        freq = pd.infer_freq(times)
    return None if freq is None else to_offset(freq).freqstr


def _guess_freq(times: pd.DatetimeIndex) -> str | None:
    """The most common frequency among sampled runs of three consecutive timestamps: the
    step of a regular series with a few missing steps (whose gaps defeat infer_freq)."""
    count = min(_FREQ_SAMPLE, len(times) - 2)
    starts = np.unique(np.linspace(0, len(times) - 3, count).astype(int))
    found = [_infer_freq(times[i : i + 3]) for i in starts]
    counts = pd.Series([f for f in found if f is not None]).value_counts()
    return None if counts.empty else str(counts.index[0])


def _smallest_fixed_step(times: pd.DatetimeIndex) -> str | None:
    """The smallest step, if every step is a whole multiple of it (daily data with missing
    days that are too few to sample); else None."""
    steps = times[1:] - times[:-1]
    smallest = steps.min()
    return _fixed_offset(smallest) if (steps % smallest == pd.Timedelta(0)).all() else None


def _fixed_offset(delta: pd.Timedelta) -> str:
    """A fixed step as a pandas alias: whole days as "7D", else pandas' own ("90min")."""
    if delta == pd.Timedelta(days=delta.days):
        return pd.offsets.Day(delta.days).freqstr
    return to_offset(delta).freqstr


def _no_regular_step(times: pd.DatetimeIndex) -> DataError:
    """The error for timestamps that fit no frequency: name a step that fits no grid."""
    steps = times[1:] - times[:-1]
    j = int(np.argmin(steps))  # the smallest step, which the others are not multiples of
    i = int(np.flatnonzero(steps % steps[j] != pd.Timedelta(0))[0])
    return DataError(
        f"irregular spacing: no regular step fits these timestamps: {_show(times[i])} to "
        f"{_show(times[i + 1])} is {_show(steps[i])}, not a multiple of the smallest step, "
        f"{_show(steps[j])} ({_show(times[j])} to {_show(times[j + 1])}); expected one step "
        f"such as daily, weekly, monthly or yearly"
    )


# --- missing values ----------------------------------------------------------------------------


def _check_complete(table: pd.DataFrame) -> pd.DataFrame:
    """Raise on the first column with a missing value (target first)."""
    for column in table.columns:
        missing = table[column].isna()
        if missing.any():
            raise DataError(
                f"column {column!r} has {_plural(int(missing.sum()), 'missing value')}, the "
                f"first at {_show(table.index[missing.to_numpy()][0])}; {_FILL_HINT}"
            )
    return table


def _fill_missing(table: pd.DataFrame, fill: Fill) -> pd.DataFrame:
    """Apply the requested repair to every column; gaps it cannot fill raise."""
    if fill == "zero":
        return table.fillna(0.0)
    if fill == "ffill":
        filled = table.ffill()
        where, cannot, fix = "start", "nothing before them to carry forward", "--fill zero"
    else:
        # "time" weighs a gap by its duration (months differ in length), "index" by steps
        method = "time" if isinstance(table.index, pd.DatetimeIndex) else "index"
        filled = table.interpolate(method=method, limit_area="inside")
        where = "start or end"
        cannot, fix = "no value on both sides to interpolate between", "--fill ffill or zero"
    for column in filled.columns:
        left = filled[column].isna()
        if left.any():
            raise DataError(
                f"column {column!r}: {_plural(int(left.sum()), 'missing value')} at the "
                f"{where}, the first at {_show(filled.index[left.to_numpy()][0])}, have "
                f"{cannot}; remove those rows or use {fix}"
            )
    return filled


def _check_fill(fill: object) -> None:
    if fill is not None and fill not in FILLS:
        raise DataError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")


def _show(stamp: object) -> str:
    """A timestamp as the user wrote it (2020-01-01, not 2020-01-01 00:00:00); a whole
    number of days as "31 days"."""
    if isinstance(stamp, pd.Timestamp) and stamp == stamp.normalize():
        return stamp.date().isoformat()
    if isinstance(stamp, pd.Timedelta) and stamp == pd.Timedelta(days=stamp.days):
        return _plural(stamp.days, "day")
    return str(stamp)


def _plural(n: int, noun: str) -> str:
    """A count and its noun: "1 row", "2 rows"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
