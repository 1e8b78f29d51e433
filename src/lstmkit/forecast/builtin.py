"""Built-in real data sets: ``lstmkit forecast fit airline`` works with nothing downloaded.

Each set is a function returning a pandas DataFrame with one column (the target) and a
DatetimeIndex that carries its frequency; :data:`BUILTIN` describes them. Every built-in
uses a DatetimeIndex, the yearly ones included (January 1st of each year, frequency
``"YS-JAN"``), so that code downstream meets one kind of time index for all of them.

Where the figures come from:

* ``airline`` is written out below: 144 numbers, the facts of Box & Jenkins' series G. The
  same figures are R's ``AirPassengers`` and statsmodels' SARIMAX test data (``air2``,
  from Stata), which the tests compare against when statsmodels is installed.
* ``sunspots``, ``nile`` and ``co2`` are read from the CSV files statsmodels installs with
  itself (``statsmodels.datasets``); they need statsmodels but never the network.

``season`` is the seasonal period in steps, or None where the series has no fixed
seasonal period. The sunspot cycle is about 11 years but varies from 9 to 14, so
``sunspots`` has ``season=None``: a seasonal naive forecast with period 11 would drift out
of phase, and the baselines skip seasonal models when ``season`` is None.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from .series import DataError

Behaviour = Literal["trend", "seasonality", "cycles", "level shift"]
"""What a set shows; an empty tuple of them means none (a level plus noise)."""


@dataclass(frozen=True)
class BuiltinSet:
    """One built-in data set: what it is, how to read it, what a forecaster should expect."""

    name: str
    """The name ``load_data`` and the CLI accept."""
    description: str
    """One or two sentences, including any preparation applied to the source's figures."""
    target: str
    """The name of the one value column."""
    time: str
    """The name of the DatetimeIndex."""
    frequency: str
    """The pandas frequency alias of the index ("MS", "YS-JAN")."""
    season: int | None
    """The seasonal period in steps (12 for monthly data), or None for no fixed season."""
    behaviour: tuple[Behaviour, ...]
    """What the series shows; empty for none of these."""
    units: str
    """What the target counts, for axis labels."""
    length: int
    """The number of steps, known without loading the set."""
    source: str
    """Where the figures come from (the citation)."""
    load: Callable[[], pd.DataFrame] = field(repr=False)
    """Returns the set as a DataFrame (index ``time``, one column ``target``)."""


# Monthly totals of international airline passengers, in thousands, January 1949 to
# December 1960: Box & Jenkins (1976), series G. One row per year, January to December.
_AIRLINE_PASSENGERS = (
    (112, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118),  # 1949
    (115, 126, 141, 135, 125, 149, 170, 170, 158, 133, 114, 140),  # 1950
    (145, 150, 178, 163, 172, 178, 199, 199, 184, 162, 146, 166),  # 1951
    (171, 180, 193, 181, 183, 218, 230, 242, 209, 191, 172, 194),  # 1952
    (196, 196, 236, 235, 229, 243, 264, 272, 237, 211, 180, 201),  # 1953
    (204, 188, 235, 227, 234, 264, 302, 293, 259, 229, 203, 229),  # 1954
    (242, 233, 267, 269, 270, 315, 364, 347, 312, 274, 237, 278),  # 1955
    (284, 277, 317, 313, 318, 374, 413, 405, 355, 306, 271, 306),  # 1956
    (315, 301, 356, 348, 355, 422, 465, 467, 404, 347, 305, 336),  # 1957
    (340, 318, 362, 348, 363, 435, 491, 505, 404, 359, 310, 337),  # 1958
    (360, 342, 406, 396, 420, 472, 548, 559, 463, 407, 362, 405),  # 1959
    (417, 391, 419, 461, 472, 535, 622, 606, 508, 461, 390, 432),  # 1960
)


def airline() -> pd.DataFrame:
    """Box & Jenkins' airline passengers: 144 months from 1949-01, column ``passengers``."""
    values = np.array(_AIRLINE_PASSENGERS, dtype=np.float64).ravel()  # (12 years * 12 months,)
    index = pd.date_range("1949-01-01", periods=len(values), freq="MS", name="month")
    return pd.DataFrame({"passengers": values}, index=index)


def _statsmodels_data(name: str) -> pd.DataFrame:
    """``statsmodels.datasets.<name>.load_pandas().data``: read from the CSV statsmodels
    installs, so no network. Imported here, not at the top, because statsmodels takes
    seconds to import and only these three sets need it."""
    try:
        module = importlib.import_module(f"statsmodels.datasets.{name}")
    except ImportError:
        raise DataError(
            f"the built-in data set {name!r} is read from statsmodels, which is not "
            f"installed; install it with: pip install statsmodels"
        ) from None
    return module.load_pandas().data


def _yearly(years: pd.Series, values: pd.Series, time: str, target: str) -> pd.DataFrame:
    """A yearly frame on January 1st dates ("YS-JAN") from float years such as 1871.0."""
    index = pd.DatetimeIndex(
        pd.to_datetime(years.astype(int).astype(str), format="%Y"), freq="YS-JAN", name=time
    )
    return pd.DataFrame({target: values.to_numpy(dtype=np.float64)}, index=index)


def sunspots() -> pd.DataFrame:
    """Yearly mean sunspot numbers 1700-2008 (statsmodels ``sunspots``), column
    ``sunactivity``."""
    data = _statsmodels_data("sunspots")
    return _yearly(data["YEAR"], data["SUNACTIVITY"], "year", "sunactivity")


def nile() -> pd.DataFrame:
    """Yearly flow of the Nile at Aswan 1871-1970 (statsmodels ``nile``), column ``volume``."""
    data = _statsmodels_data("nile")
    return _yearly(data["year"], data["volume"], "year", "volume")


def co2() -> pd.DataFrame:
    """Monthly mean CO2 at Mauna Loa 1958-03..2001-12 (statsmodels ``co2``), column ``co2``.

    The source is weekly (Saturdays) with 59 weeks missing. A monthly mean averages the
    weeks of a month that have a reading; five months have none (1958-06, 1958-10,
    1964-02..04) and are interpolated linearly in time between their neighbours. This is
    the set's documented preparation, not a repair the user asked for: the weekly gaps are
    part of the source, and the built-in is meant to be ready to forecast.
    """
    weekly = _statsmodels_data("co2")["co2"]
    monthly = weekly.resample("MS").mean().interpolate(method="time")
    monthly.index.name = "month"
    return monthly.to_frame("co2")


_AIRLINE = BuiltinSet(
    name="airline",
    description=(
        "Monthly totals of international airline passengers, 1949-1960: a rising trend with "
        "a yearly season whose swing grows with the level (multiplicative seasonality)."
    ),
    target="passengers",
    time="month",
    frequency="MS",
    season=12,
    behaviour=("trend", "seasonality"),
    units="thousands of passengers",
    length=144,
    source=(
        "Box, G. E. P. and Jenkins, G. M. (1976). Time Series Analysis: Forecasting and "
        "Control, revised edition. Holden-Day. Series G."
    ),
    load=airline,
)

_SUNSPOTS = BuiltinSet(
    name="sunspots",
    description=(
        "Yearly mean sunspot numbers, 1700-2008: cycles of about 11 years (9 to 14) with "
        "changing amplitude, no fixed season (season None), no trend."
    ),
    target="sunactivity",
    time="year",
    frequency="YS-JAN",
    season=None,
    behaviour=("cycles",),
    units="yearly mean sunspot number",
    length=309,
    source=(
        "NOAA National Geophysical Data Center, yearly sunspot numbers, as shipped by "
        "statsmodels (statsmodels.datasets.sunspots)."
    ),
    load=sunspots,
)

_NILE = BuiltinSet(
    name="nile",
    description=(
        "Yearly flow of the Nile at Aswan, 1871-1970: no trend and no season, but a drop in "
        "level around 1898 (the change point Cobb 1978 locates)."
    ),
    target="volume",
    time="year",
    frequency="YS-JAN",
    season=None,
    behaviour=("level shift",),
    units="10^8 cubic metres per year",
    length=100,
    source=(
        "Cobb, G. W. (1978). The problem of the Nile: conditional solution to a changepoint "
        "problem. Biometrika 65(2), 243-251; as shipped by statsmodels "
        "(statsmodels.datasets.nile)."
    ),
    load=nile,
)

_CO2 = BuiltinSet(
    name="co2",
    description=(
        "Atmospheric CO2 at Mauna Loa, 1958-03 to 2001-12: a rising trend with a yearly "
        "season. Prepared from the weekly source: monthly means of the weeks with a "
        "reading, and the five months with none interpolated linearly in time."
    ),
    target="co2",
    time="month",
    frequency="MS",
    season=12,
    behaviour=("trend", "seasonality"),
    units="ppm (parts per million by volume)",
    length=526,
    source=(
        "Keeling, C. D. and Whorf, T. P. (2004). Atmospheric CO2 concentrations derived from "
        "flask air samples at sites in the SIO network. In Trends: A Compendium of Data on "
        "Global Change. CDIAC, Oak Ridge National Laboratory; as shipped by statsmodels "
        "(statsmodels.datasets.co2)."
    ),
    load=co2,
)

BUILTIN: dict[str, BuiltinSet] = {s.name: s for s in (_AIRLINE, _SUNSPOTS, _NILE, _CO2)}
"""The built-in data sets by name."""
