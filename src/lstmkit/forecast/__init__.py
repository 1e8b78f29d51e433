"""Time-series forecasting with lstmkit's recurrent cells, measured against the baselines
forecasters trust (see docs/forecasting.md).

- :mod:`.series`, :mod:`.data`, :mod:`.builtin`: checked series from CSV files, pandas
  objects and the built-in data sets;
- :mod:`.windows`, :mod:`.model`, :mod:`.train`, :mod:`.checkpoint`: scaling, windows, the
  encoder with its direct multi-step quantile head, fitting, run folders;
- :mod:`.api`: :class:`Forecaster`, ``fit`` and ``predict``;
- :mod:`.metrics`, :mod:`.baselines`, :mod:`.folds`, :mod:`.backtest`: the scores, naive,
  seasonal naive, ETS and ARIMA, rolling origins, and the backtest that runs them all.
"""

from lstmkit.forecast.api import Forecaster
from lstmkit.forecast.data import from_pandas, load_data
from lstmkit.forecast.series import DataError, TimeSeries

__all__ = ["DataError", "Forecaster", "TimeSeries", "from_pandas", "load_data"]
