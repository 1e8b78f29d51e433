"""The baselines forecasters trust: naive, seasonal naive, exponential smoothing (ETS) and
ARIMA, each a function of a plain NumPy history.

Every baseline comes in two forms with the same first three arguments:

- ``naive(history, horizon, season) -> (horizon,) array``: the point forecasts;
- ``naive_forecast(history, horizon, season, *, level=0.8) -> BaselineForecast``: the point
  forecasts, a central prediction interval at ``level``, the model actually used and notes
  (fallbacks, statsmodels' warnings).

``history`` is the 1-D training part (finite values, oldest first), ``horizon`` the number of
steps to forecast, ``season`` the seasonal period in steps or None for no season (1 means no
season too). :data:`BASELINES` lists them in display order.

ETS and ARIMA follow a small, deterministic rule and are otherwise statsmodels as it is (the
tests call statsmodels with the settings the rule picks and compare):

- ETS (:func:`ets_rule`): with a season m >= 2 and two seasons of history, ETS(A,Ad,A) and,
  for positive data, ETS(M,Ad,M), the lower AIC winning; otherwise ETS(A,Ad,N). Fallbacks:
  ETS(A,Ad,N), ETS(A,N,N), then the naive forecast.
- ARIMA (:func:`select_arima`): D = 1 when the seasonal strength exceeds 0.64, d = 1 when
  the KPSS test rejects stationarity at 5%; then the lowest AIC over p, q in 0..2 and,
  with D = 1, the seasonal parts (1,1,0)[m] and (0,1,1)[m]: 9 or 18 fits. A mean when
  d + D = 0, a drift when 1. Fallback: the naive forecast.

No warning reaches the user: statsmodels' warnings and every fallback are recorded in
``BaselineForecast.notes``. statsmodels is imported on first use, since it takes seconds to
import.

The default interval level, 0.8, matches the 0.1-0.9 quantiles of lstmkit's forecasters, so
that coverages compare.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import itertools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Literal, ParamSpec, TypeVar

import numpy as np
import pandas as pd

from lstmkit.forecast.metrics import as_vector, season_lag

_Params = ParamSpec("_Params")
_Result = TypeVar("_Result")

DEFAULT_LEVEL = 0.8
"""The central prediction interval's coverage probability, unless a call says otherwise."""


@dataclass(frozen=True)
class BaselineForecast:
    """What a baseline forecasts, and which model it used to do so."""

    mean: np.ndarray
    """(horizon,) point forecasts."""
    lower: np.ndarray | None
    """(horizon,) lower bounds of the central ``level`` interval, or None when the history
    is too short to estimate the forecast's spread."""
    upper: np.ndarray | None
    """(horizon,) upper bounds, None with ``lower``."""
    level: float
    """The interval's nominal coverage probability, e.g. 0.8."""
    model: str
    """The model used, e.g. "ETS(A,Ad,A)", "ARIMA(1,1,1)(0,1,1)[12]", "naive"."""
    fallback: bool = False
    """True when the rule's model could not be used and a simpler one stands in."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """What happened on the way: skipped or failed fits, statsmodels' warnings."""


# ---------------------------------------------------------------- arguments and helpers


def _check_args(history, horizon, season, owner: str) -> tuple[np.ndarray, int, int]:
    """The history as a float64 vector, the horizon, and the seasonal lag (1: no season)."""
    y = as_vector(history, "history", owner)
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"{owner}: horizon must be an integer >= 1, got {horizon!r}")
    return y, int(horizon), season_lag(season, owner)


def _check_level(level: float, owner: str) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"{owner}: level must lie strictly between 0 and 1, got {level!r}")
    return float(level)


def _normal_interval(
    mean: np.ndarray, sd: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """mean -/+ z * sd, z the standard normal quantile at (1 + level) / 2."""
    z = NormalDist().inv_cdf((1.0 + level) / 2.0)
    return mean - z * sd, mean + z * sd


@contextmanager
def _recorded(notes: list[str], label: str) -> Iterator[None]:
    """Silence every warning raised inside, appending ``label: Category: message`` to
    ``notes``: statsmodels warns freely (convergence, starting values, frequency), and a
    backtest of hundreds of fits should neither print them nor lose them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:  # a fit that fails may have warned first: keep those too
            notes.extend(f"{label}: {w.category.__name__}: {w.message}" for w in caught)


def _one_blas_thread(function: Callable[_Params, _Result]) -> Callable[_Params, _Result]:
    """Run ``function`` with NumPy's BLAS on one thread, where threadpoolctl is installed.

    statsmodels' fits multiply matrices of a few dozen rows, where BLAS threads gain
    nothing and, on a busy machine, wait for each other: on 2 cores beside one other busy
    process, the ARIMA selection for the Nile series took 1.1 s with OpenBLAS's default
    threads and 0.37 s with one (up to 13 s under heavier load).
    """

    @functools.wraps(function)
    def wrapper(*args: _Params.args, **kwargs: _Params.kwargs) -> _Result:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            limits = contextlib.nullcontext()
        else:
            limits = threadpool_limits(limits=1, user_api="blas")
        with limits:
            return function(*args, **kwargs)

    return wrapper


def _finite(array: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise FloatingPointError(f"{what} are not all finite")
    return array


# ---------------------------------------------------------------- naive and seasonal naive


def _naive(y: np.ndarray, horizon: int, lag: int, level: float) -> BaselineForecast:
    """The value ``lag`` steps back, repeated season after season: y_hat[T+h] = y[T+h-lag*k]
    with k = floor((h-1)/lag) + 1 the number of seasons back, the smallest that reaches
    into the history.

    Interval (Hyndman & Athanasopoulos, Forecasting: Principles and Practice, 3rd ed.,
    Section 5.5, Table 5.2, whose k is ours less 1): normal, with standard deviation
    sigma * sqrt(k), sigma^2 the mean square of the in-sample residuals y_t - y_{t-lag}
    (t > lag); none when the history has no residual (T <= lag).
    """
    h = np.arange(1, horizon + 1)
    k = (h - 1) // lag + 1  # seasons back; 1 .. ceil(horizon / lag)
    mean = y[len(y) - lag * k + (h - 1)]  # (horizon,); index T - lag*k + (h - 1) < T
    model = "naive" if lag == 1 else f"seasonal naive (m={lag})"
    if len(y) <= lag:
        return BaselineForecast(mean, None, None, level, model)
    sigma = np.sqrt(np.mean((y[lag:] - y[:-lag]) ** 2))
    lower, upper = _normal_interval(mean, sigma * np.sqrt(k), level)
    return BaselineForecast(mean, lower, upper, level, model)


def naive_forecast(
    history, horizon: int, season: int | None = None, *, level: float = DEFAULT_LEVEL
) -> BaselineForecast:
    """The naive (random walk) forecast: the last value, at every step. ``season`` is
    ignored; it is accepted so that every baseline takes the same arguments."""
    y, horizon, _ = _check_args(history, horizon, season, "naive")
    return _naive(y, horizon, 1, _check_level(level, "naive"))


def seasonal_naive_forecast(
    history, horizon: int, season: int | None = None, *, level: float = DEFAULT_LEVEL
) -> BaselineForecast:
    """The seasonal naive forecast: the value one season back, y_hat[T+h] = y[T+h-m*k]
    (Hyndman & Athanasopoulos, FPP3, Section 5.2).

    It is the naive forecast when ``season`` is None or 1, and falls back to it (flagged,
    with a note) when the history is shorter than one season.
    """
    y, horizon, m = _check_args(history, horizon, season, "seasonal_naive")
    level = _check_level(level, "seasonal_naive")
    if len(y) >= m:
        return _naive(y, horizon, m, level)
    result = _naive(y, horizon, 1, level)
    note = f"history of {len(y)} values is shorter than one season ({m}): naive forecast"
    return dataclasses.replace(result, fallback=True, notes=(note,))


def _naive_fallback(
    y: np.ndarray, horizon: int, level: float, notes: list[str], reason: str
) -> BaselineForecast:
    """The naive forecast standing in for a model that could not be fitted."""
    result = _naive(y, horizon, 1, level)
    return dataclasses.replace(result, fallback=True, notes=(*notes, f"{reason}: naive forecast"))


# ---------------------------------------------------------------- exponential smoothing

Component = Literal["add", "mul"]


@dataclass(frozen=True)
class EtsSpec:
    """One ETS model, in the arguments of statsmodels' ``ETSModel``; :attr:`name` gives it
    in the notation ETS(error, trend, season) of Hyndman et al. (2008), "Forecasting with
    Exponential Smoothing: The State Space Approach"."""

    error: Component = "add"
    trend: Component | None = None
    damped_trend: bool = False
    seasonal: Component | None = None
    seasonal_periods: int | None = None

    @property
    def name(self) -> str:
        letter = {"add": "A", "mul": "M", None: "N"}
        trend = letter[self.trend] + ("d" if self.damped_trend else "")
        return f"ETS({letter[self.error]},{trend},{letter[self.seasonal]})"

    def kwargs(self) -> dict:
        """The keyword arguments of ``ETSModel(endog, **kwargs)``."""
        return dataclasses.asdict(self)


ETS_DAMPED = EtsSpec("add", "add", damped_trend=True)
"""ETS(A,Ad,N): damped additive trend, no season."""
ETS_SIMPLE = EtsSpec("add")
"""ETS(A,N,N): simple exponential smoothing."""


def ets_rule(history, season: int | None = None) -> tuple[list[EtsSpec], list[EtsSpec]]:
    """The ETS models :func:`ets_forecast` fits: ``(candidates, fallbacks)``.

    Candidates are fitted by maximum likelihood and the lowest AIC wins (ties: the first):

    - with a season ``m >= 2`` and two seasons of history (T >= 2m): ETS(A,Ad,A), damped
      additive trend and additive season; and ETS(M,Ad,M) as well when every value is
      positive, multiplicative error and season, so that a swing growing with the level
      can win on AIC. Multiplicative seasonality comes with multiplicative errors because
      ETS(A,Ad,M) is numerically unstable (Hyndman & Athanasopoulos, FPP3, Section 8.6);
      AICs compare across error types since both are likelihoods of the same data.
    - otherwise ETS(A,Ad,N).

    The trend is always additive and damped (Gardner & McKenzie 1985), the robust choice
    of the M competitions' "Damped" benchmark: it follows a trend where there is one and
    flattens out over long horizons.

    Fallbacks are tried in order only when every candidate fails: ETS(A,Ad,N) (the season
    dropped, when there was one) then ETS(A,N,N); after them :func:`ets_forecast` uses the
    naive forecast.
    """
    y = as_vector(history, "history", "ets")
    m = season_lag(season, "ets")
    if m < 2 or len(y) < 2 * m:
        return [ETS_DAMPED], [ETS_SIMPLE]
    candidates = [EtsSpec("add", "add", True, "add", m)]
    if np.all(y > 0):
        candidates.append(EtsSpec("mul", "add", True, "mul", m))
    return candidates, [ETS_DAMPED, ETS_SIMPLE]


def _fit_ets(y: np.ndarray, spec: EtsSpec):
    """``ETSModel(y, **spec).fit()``, or an error when the history is too short for it.

    A model of k parameters (statsmodels' count: smoothing, damping and every initial
    state) is fitted only to more than k + 4 values, so that a few degrees of freedom
    remain: the threshold of R's forecast::ets (``n <= npars + 4``), whose count has one
    seasonal state fewer.
    """
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    # a pandas Series: ETSModel's get_prediction fails on a plain array (statsmodels 0.15)
    model = ETSModel(pd.Series(y), **spec.kwargs())
    k = len(model.param_names)
    if len(y) <= k + 4:
        raise ValueError(f"{len(y)} values are too few for its {k} parameters (needs > {k + 4})")
    results = model.fit(disp=False)
    if not np.isfinite(results.aic):
        raise FloatingPointError("the likelihood is not finite")
    return results


def simulation_seed(results) -> dict:
    """The keyword that seeds ``ETSResults.simulate`` with a fixed seed: ``rng`` (a
    Generator) from statsmodels 0.15 on, ``random_state`` (an integer) before."""
    if "rng" in inspect.signature(results.simulate).parameters:
        return {"rng": np.random.default_rng(0)}
    return {"random_state": 0}


def _ets_predict(results, n: int, horizon: int, level: float, spec: EtsSpec) -> BaselineForecast:
    """Point forecasts and the ``level`` interval of a fitted ETS model: exact for additive
    errors; quantiles of 1000 simulated paths (fixed seed, so reproducible) for
    multiplicative ones, as statsmodels chooses."""
    prediction = results.get_prediction(start=n, end=n + horizon - 1, **simulation_seed(results))
    frame = prediction.summary_frame(alpha=1.0 - level)
    mean = _finite(frame["mean"].to_numpy(), "the forecasts")
    lower = _finite(frame["pi_lower"].to_numpy(), "the interval's bounds")
    upper = _finite(frame["pi_upper"].to_numpy(), "the interval's bounds")
    return BaselineForecast(mean, lower, upper, level, spec.name)


def _try_ets(
    y: np.ndarray, spec: EtsSpec, horizon: int, level: float, notes: list[str]
) -> tuple[float, BaselineForecast] | None:
    """(AIC, forecast) of one ETS model, or None (with a note) when it cannot be used."""
    try:
        with _recorded(notes, spec.name):
            results = _fit_ets(y, spec)
            return float(results.aic), _ets_predict(results, len(y), horizon, level, spec)
    except Exception as error:  # statsmodels raises many kinds (ValueError, LinAlgError, ...)
        notes.append(f"{spec.name} not used: {type(error).__name__}: {error}")
        return None


@_one_blas_thread
def ets_forecast(
    history, horizon: int, season: int | None = None, *, level: float = DEFAULT_LEVEL
) -> BaselineForecast:
    """Exponential smoothing in state-space form (statsmodels' ``ETSModel``), the model
    chosen by :func:`ets_rule`: the lowest-AIC candidate, else the first fallback that
    fits, else the naive forecast (``fallback`` True in both cases)."""
    y, horizon, _ = _check_args(history, horizon, season, "ets")
    level = _check_level(level, "ets")
    candidates, fallbacks = ets_rule(y, season)
    notes: list[str] = []
    fits = [fit for spec in candidates if (fit := _try_ets(y, spec, horizon, level, notes))]
    if fits:
        _, best = min(fits, key=lambda fit: fit[0])
        return dataclasses.replace(best, notes=tuple(notes))
    for spec in fallbacks:
        if fit := _try_ets(y, spec, horizon, level, notes):
            return dataclasses.replace(fit[1], fallback=True, notes=tuple(notes))
    return _naive_fallback(y, horizon, level, notes, "no ETS model could be fitted")


# ---------------------------------------------------------------- ARIMA

SEASONAL_STRENGTH_THRESHOLD = 0.64
"""Seasonal differencing (D = 1) when the seasonal strength exceeds this (R's
forecast::nsdiffs, test "seas")."""
KPSS_LEVEL = "5%"
"""The KPSS test's significance level for a first difference (as R's forecast::ndiffs)."""
AR_ORDERS = (0, 1, 2)
MA_ORDERS = (0, 1, 2)
SEASONAL_ORDERS = ((1, 0), (0, 1))
"""(P, Q) of the seasonal part when D = 1: (1,1,0)[m] or (0,1,1)[m]."""
MIN_ARIMA_HISTORY = 10
"""Shorter histories get the naive forecast: too few values to test for a unit root."""


@dataclass(frozen=True)
class ArimaSpec:
    """ARIMA(p,d,q)(P,D,Q)[m] in statsmodels' ``ARIMA`` terms; ``m`` is 0 without a
    seasonal part. The deterministic term follows from d + D: a mean when 0, a drift when
    1 (a constant in the differenced series), none when 2."""

    p: int
    d: int
    q: int
    P: int = 0
    D: int = 0
    Q: int = 0
    m: int = 0

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.p, self.d, self.q)

    @property
    def seasonal_order(self) -> tuple[int, int, int, int]:
        return (self.P, self.D, self.Q, self.m)

    @property
    def trend(self) -> Literal["c", "t", "n"]:
        """statsmodels' ``trend`` on the original series: constant, linear, none."""
        return ("c", "t", "n")[self.d + self.D]

    @property
    def name(self) -> str:
        seasonal = f"({self.P},{self.D},{self.Q})[{self.m}]" if self.m else ""
        term = (" with mean", " with drift", "")[self.d + self.D]
        return f"ARIMA({self.p},{self.d},{self.q}){seasonal}{term}"


def seasonal_strength(history, season: int) -> float:
    """F_S = max(0, 1 - Var(R) / Var(S + R)), S and R the seasonal and remainder parts of
    an STL decomposition with period ``season`` (Wang, Smith & Hyndman 2006; Hyndman &
    Athanasopoulos, FPP3, Section 4.3): 0 for no seasonality, near 1 for a strong one.
    Needs two seasons of history.

    statsmodels' STL with its default settings; R's forecast::mstl sets the seasonal
    smoother differently, so strengths close to the threshold may differ from R's.
    """
    from statsmodels.tsa.seasonal import STL

    parts = STL(as_vector(history, "history", "seasonal_strength"), period=season).fit()
    remainder, seasonal = parts.resid, parts.seasonal
    return max(0.0, 1.0 - np.var(remainder) / np.var(seasonal + remainder))


def difference(y: np.ndarray, d: int, D: int, m: int) -> np.ndarray:
    """(1 - B)^d (1 - B^m)^D y, B the backshift: shorter by d + m D values."""
    if D:
        y = y[m:] - y[:-m]
    return np.diff(y, n=d)


def _kpss_rejects(w: np.ndarray) -> bool:
    """Does the KPSS test of level stationarity reject at KPSS_LEVEL? statsmodels' test
    with its automatic lag choice (Hobijn et al. 1998), the statistic compared with the
    critical value (the p-value is only interpolated within 0.01..0.1)."""
    from statsmodels.tsa.stattools import kpss

    if np.ptp(w) == 0:
        return False  # a constant is stationary, and the statistic would divide by zero
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the p-value's interpolation bounds; p is not used
        result = kpss(w, regression="c", nlags="auto")
    if isinstance(result, tuple):  # (statistic, p-value, lags, critical values)
        statistic, critical = result[0], result[3]
    else:  # KPSSResult, the default of later statsmodels
        statistic, critical = result.statistic, result.critical_values
    return bool(statistic > critical[KPSS_LEVEL])


def choose_differencing(history, season: int | None = None) -> tuple[int, int]:
    """(d, D) in the manner of R's forecast::auto.arima (Hyndman & Khandakar 2008):

    - D = 1 when there is a season m >= 2, two seasons of history, and a seasonal strength
      (:func:`seasonal_strength`) above 0.64; else 0;
    - d = 1 when the KPSS test rejects level stationarity at 5% for the series after the
      seasonal difference; else 0 (at most one difference, where forecast::ndiffs allows
      two, to keep the grid small).
    """
    y = as_vector(history, "history", "choose_differencing")
    m = season_lag(season, "choose_differencing")
    seasonal = m >= 2 and len(y) >= 2 * m
    D = int(seasonal and seasonal_strength(y, m) > SEASONAL_STRENGTH_THRESHOLD)
    d = int(_kpss_rejects(difference(y, 0, D, m)))
    return d, D


def arima_grid(d: int, D: int, season: int | None = None) -> list[ArimaSpec]:
    """The models whose AIC :func:`select_arima` compares, for given d and D: p and q in
    0..2, and with D = 1 the seasonal part (1,1,0)[m] or (0,1,1)[m]; 9 models without a
    seasonal difference, 18 with one."""
    m = season_lag(season, "arima_grid") if D else 0
    if D and m < 2:
        raise ValueError(f"arima_grid: a seasonal difference needs a season >= 2, got {season!r}")
    seasonal = SEASONAL_ORDERS if D else ((0, 0),)
    return [
        ArimaSpec(p, d, q, P, D, Q, m)
        for (P, Q), p, q in itertools.product(seasonal, AR_ORDERS, MA_ORDERS)
    ]


def _fit_differenced(w: np.ndarray, spec: ArimaSpec):
    """The ARMA part of ``spec`` fitted to the differenced series ``w`` by exact maximum
    likelihood, the variance concentrated out (same optimum, one parameter fewer)."""
    from statsmodels.tsa.arima.model import ARIMA

    seasonal = (spec.P, 0, spec.Q, spec.m) if spec.m else (0, 0, 0, 0)
    trend = "c" if spec.d + spec.D <= 1 else "n"  # the mean of w: y's mean or drift
    model = ARIMA(
        w, order=(spec.p, 0, spec.q), seasonal_order=seasonal, trend=trend, concentrate_scale=True
    )
    results = model.fit(cov_type="none")  # no standard errors: only the AIC is needed
    if not np.isfinite(results.aic):
        raise FloatingPointError("the likelihood is not finite")
    return results


@dataclass(frozen=True)
class ArimaSelection:
    """The outcome of :func:`select_arima`."""

    best: ArimaSpec
    aic: dict[ArimaSpec, float]
    """The AIC of every grid model that could be fitted, in grid order."""
    results: object = field(repr=False)
    """statsmodels' results for ``best`` on the differenced series."""
    notes: tuple[str, ...] = ()
    """Models that failed, and the warnings of the best one's fit."""


@_one_blas_thread
def select_arima(history, season: int | None = None) -> ArimaSelection:
    """The lowest-AIC model of :func:`arima_grid` (ties: the first), d and D from
    :func:`choose_differencing`.

    Every model is fitted to the differenced series, with statsmodels' default optimiser
    settings: its exact likelihood equals (up to rounding) the diffuse likelihood of the
    full ARIMA on the original series, so the AICs are the same, and its state space is
    smaller (seasonal fits take half the time). AICs compare because d and D are the same
    across the grid.
    """
    y = as_vector(history, "history", "select_arima")
    d, D = choose_differencing(y, season)
    grid = arima_grid(d, D, season)
    w = difference(y, d, D, grid[0].m)
    aic, fits, warned, failed = {}, {}, {}, []
    for spec in grid:
        warned[spec] = []
        try:
            with _recorded(warned[spec], spec.name):
                fits[spec] = _fit_differenced(w, spec)
            aic[spec] = float(fits[spec].aic)
        except Exception as error:  # statsmodels raises many kinds
            failed.append(f"{spec.name} failed: {type(error).__name__}: {error}")
    if not aic:
        raise RuntimeError(f"none of the {len(grid)} ARIMA models could be fitted")
    best = min(aic, key=aic.__getitem__)
    return ArimaSelection(best, aic, fits[best], (*failed, *warned[best]))


def _full_results(y: np.ndarray, selection: ArimaSelection):
    """statsmodels' results for the full ARIMA on the original series, filtered with the
    parameters estimated on the differenced one: forecasts and intervals in y's units."""
    from statsmodels.tsa.arima.model import ARIMA

    spec = selection.best
    if spec.d + spec.D == 0:
        return selection.results  # nothing differenced: the same model
    params = np.array(selection.results.params, dtype=np.float64)
    if spec.d + spec.D == 1:
        # y_t = beta t + eta_t gives y_t - y_{t-s} = beta s + ...: the differenced series'
        # constant is the drift beta times the differencing lag s (1, or m for D = 1)
        params[0] /= spec.m if spec.D else 1
    model = ARIMA(
        y,
        order=spec.order,
        seasonal_order=spec.seasonal_order,
        trend=spec.trend,
        concentrate_scale=True,
    )
    return model.filter(params)


@_one_blas_thread
def arima_forecast(
    history, horizon: int, season: int | None = None, *, level: float = DEFAULT_LEVEL
) -> BaselineForecast:
    """ARIMA by a small automatic order selection (:func:`select_arima`), forecast with
    statsmodels' ``ARIMA``; the naive forecast (``fallback`` True) when no model of the
    grid can be fitted or the history has fewer than 10 values."""
    y, horizon, _ = _check_args(history, horizon, season, "arima")
    level = _check_level(level, "arima")
    if len(y) < MIN_ARIMA_HISTORY:
        reason = f"history of {len(y)} values, ARIMA needs {MIN_ARIMA_HISTORY}"
        return _naive_fallback(y, horizon, level, [], reason)
    notes: list[str] = []
    try:
        selection = select_arima(y, season)
        notes.extend(selection.notes)
        with _recorded(notes, selection.best.name):
            forecast = _full_results(y, selection).get_forecast(horizon)
            mean = _finite(forecast.predicted_mean, "the forecasts")
            bounds = _finite(forecast.conf_int(alpha=1.0 - level), "the interval's bounds")
    except Exception as error:  # statsmodels raises many kinds
        notes.append(f"{type(error).__name__}: {error}")
        return _naive_fallback(y, horizon, level, notes, "no ARIMA model could be used")
    return BaselineForecast(
        mean, bounds[:, 0], bounds[:, 1], level, selection.best.name, notes=tuple(notes)
    )


# ---------------------------------------------------------------- the registry


def naive(history, horizon: int, season: int | None = None) -> np.ndarray:
    """(horizon,) point forecasts of :func:`naive_forecast`."""
    return naive_forecast(history, horizon, season).mean


def seasonal_naive(history, horizon: int, season: int | None = None) -> np.ndarray:
    """(horizon,) point forecasts of :func:`seasonal_naive_forecast`."""
    return seasonal_naive_forecast(history, horizon, season).mean


def ets(history, horizon: int, season: int | None = None) -> np.ndarray:
    """(horizon,) point forecasts of :func:`ets_forecast`."""
    return ets_forecast(history, horizon, season).mean


def arima(history, horizon: int, season: int | None = None) -> np.ndarray:
    """(horizon,) point forecasts of :func:`arima_forecast`."""
    return arima_forecast(history, horizon, season).mean


@dataclass(frozen=True)
class Baseline:
    """A registered baseline: called like the point functions, ``baseline(history,
    horizon, season) -> (horizon,) array``; :attr:`forecast` gives the full result."""

    name: str
    description: str
    forecast: Callable[..., BaselineForecast]
    """``forecast(history, horizon, season, *, level=0.8) -> BaselineForecast``."""

    def __call__(self, history, horizon: int, season: int | None = None) -> np.ndarray:
        return self.forecast(history, horizon, season).mean


BASELINES: dict[str, Baseline] = {
    "naive": Baseline("naive", "the last value", naive_forecast),
    "seasonal_naive": Baseline(
        "seasonal_naive", "the value one season back", seasonal_naive_forecast
    ),
    "ets": Baseline("ets", "exponential smoothing, damped trend (statsmodels)", ets_forecast),
    "arima": Baseline("arima", "ARIMA, orders chosen by AIC (statsmodels)", arima_forecast),
}
"""The baselines in display order."""
