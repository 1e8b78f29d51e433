"""Forecast metrics, baselines and rolling origins.

- the metrics against values computed by hand (the arithmetic is in the comments), their
  edge cases (0/0 in sMAPE, a zero MASE scale) and their argument checks;
- naive and seasonal naive by hand, intervals included;
- ETS and ARIMA against statsmodels called directly with the settings the rule picks: the
  wrappers add the rule and nothing else; the ARIMA selection is the AIC minimum of its grid;
- the folds' cut-offs, and a backtest of every baseline on the Nile series.

statsmodels is the oracle for ETS and ARIMA; those tests are skipped without it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from lstmkit.forecast import baselines
from lstmkit.forecast.baselines import (
    BASELINES,
    ArimaSpec,
    EtsSpec,
    arima,
    arima_forecast,
    arima_grid,
    choose_differencing,
    difference,
    ets,
    ets_forecast,
    ets_rule,
    naive,
    naive_forecast,
    seasonal_naive,
    seasonal_naive_forecast,
    seasonal_strength,
    select_arima,
    simulation_seed,
)
from lstmkit.forecast.folds import backtest_baselines, rolling_origins
from lstmkit.forecast.metrics import (
    METRICS,
    coverage,
    interval_width,
    mae,
    mase,
    mase_scale,
    rmse,
    score,
    smape,
)

Z80 = 1.2815515655446004  # the standard normal quantile at 0.9: an 80% central interval


@pytest.fixture(scope="module")
def nile() -> np.ndarray:
    """Yearly flow of the Nile at Aswan, 1871-1970: 100 values, a level shift in 1898."""
    import statsmodels.api as sm

    return sm.datasets.nile.load_pandas().data["volume"].to_numpy(dtype=np.float64)


def seasonal_series(n: int, m: int, *, grow: bool, seed: int = 0) -> np.ndarray:
    """A positive trending series with season ``m``, its swing growing with the level
    (multiplicative) when ``grow``, else constant (additive)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 50.0 + 0.8 * t
    wave = np.sin(2 * np.pi * t / m)
    season = 0.2 * level * wave if grow else 8.0 * wave
    return level + season + rng.normal(0.0, 1.0, n)


def direct_ets(y: np.ndarray, horizon: int, level: float = 0.8, **kwargs):
    """statsmodels' ETSModel, fitted and forecast without lstmkit."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = ETSModel(pd.Series(y), **kwargs).fit(disp=False)
        seed = simulation_seed(results)  # used by the multiplicative models' intervals
        frame = results.get_prediction(
            start=len(y), end=len(y) + horizon - 1, **seed
        ).summary_frame(alpha=1 - level)
    return results.aic, frame


def direct_arima(y: np.ndarray, spec: ArimaSpec, horizon: int):
    """statsmodels' ARIMA with ``spec``'s orders and trend, fitted to the original series
    and run to convergence (statsmodels stops at 50 iterations by default): forecasts and
    the 80% interval's bounds, each (horizon,)."""
    from statsmodels.tsa.arima.model import ARIMA

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ARIMA(y, order=spec.order, seasonal_order=spec.seasonal_order, trend=spec.trend)
        forecast = model.fit(method_kwargs={"maxiter": 500}).get_forecast(horizon)
    bounds = forecast.conf_int(alpha=0.2)
    return forecast.predicted_mean, bounds[:, 0], bounds[:, 1]


def assert_same_forecast(result, direct):
    """Our ARIMA forecast and statsmodels' direct one agree within 1% of the interval's
    half-width: the two optimisers stop at slightly different points of the same
    likelihood, a difference far below the forecast's own uncertainty."""
    mean, lower, upper = direct
    tolerance = 0.01 * (upper - lower) / 2
    for ours, theirs in [(result.mean, mean), (result.lower, lower), (result.upper, upper)]:
        assert np.all(np.abs(ours - theirs) <= tolerance), (ours, theirs, tolerance)


# ---------------------------------------------------------------- metrics by hand


def test_mae_and_rmse_by_hand():
    actual, forecast = [1.0, 2.0, 3.0], [2.0, 2.0, 5.0]
    # errors -1, 0, -2
    assert mae(actual, forecast) == pytest.approx((1 + 0 + 2) / 3)
    assert rmse(actual, forecast) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert isinstance(mae(actual, forecast), float)


def test_smape_by_hand():
    # terms 2|F - A| / (|A| + |F|): 2*2/(1+3) = 1, 0/4 = 0, 2*2/(4+2) = 2/3
    # sMAPE = 100/3 * (1 + 0 + 2/3) = 500/9
    assert smape([1.0, 2.0, 4.0], [3.0, 2.0, 2.0]) == pytest.approx(500 / 9)


def test_smape_counts_zero_over_zero_as_zero():
    # step 1: A = F = 0 counts 0; step 2: 2*2/(1+3) = 1; sMAPE = 100/2 * (0 + 1) = 50
    assert smape([0.0, 1.0], [0.0, 3.0]) == pytest.approx(50.0)
    assert smape([0.0, 0.0], [0.0, 0.0]) == 0.0
    # the bound: 2|F - A| / (|A| + |F|) = 2 when A = 0 and F != 0, or when the signs differ
    assert smape([0.0], [5.0]) == pytest.approx(200.0)
    assert smape([-1.0], [1.0]) == pytest.approx(200.0)


def test_mase_by_hand_without_season():
    history = [1.0, 3.0, 2.0, 5.0]
    # scale: mean |y_t - y_{t-1}| = (2 + 1 + 3) / 3 = 2
    # MAE of [6, 7] against [5, 9]: (1 + 2) / 2 = 1.5, so MASE = 1.5 / 2 = 0.75
    assert mase_scale(history) == pytest.approx(2.0)
    assert mase([6.0, 7.0], [5.0, 9.0], history) == pytest.approx(0.75)
    assert mase([6.0, 7.0], [5.0, 9.0], history, 1) == pytest.approx(0.75)


def test_mase_by_hand_with_season():
    history = [1.0, 2.0, 3.0, 2.0, 4.0, 5.0]
    # scale with lag 3: (|2 - 1| + |4 - 2| + |5 - 3|) / 3 = 5/3
    # MAE of [6, 4] against [4, 4]: (2 + 0) / 2 = 1, so MASE = 1 / (5/3) = 0.6
    assert mase_scale(history, 3) == pytest.approx(5 / 3)
    assert mase([6.0, 4.0], [4.0, 4.0], history, 3) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("history", "season"),
    [([3.0, 3.0, 3.0], None), ([1.0, 2.0, 1.0, 2.0, 1.0], 2)],
    ids=["constant", "exactly-periodic"],
)
def test_mase_rejects_a_zero_scale(history, season):
    with pytest.raises(ValueError, match="the scale is 0"):
        mase([1.0], [2.0], history, season)


def test_mase_rejects_a_history_without_an_in_sample_forecast():
    with pytest.raises(ValueError, match=r"history has 4 value.*lag 4\) needs at least 5"):
        mase([1.0], [2.0], [1.0, 2.0, 3.0, 4.0], 4)


def test_coverage_and_width_by_hand():
    actual = [1.0, 2.0, 3.0, 4.0]
    lower, upper = [1.0, 0.0, 3.5, 0.0], [2.0, 1.0, 4.0, 4.0]
    # 1 in [1, 2] (on the bound), 2 not in [0, 1], 3 not in [3.5, 4], 4 in [0, 4]: 2 of 4
    assert coverage(actual, lower, upper) == 0.5
    # widths 1, 1, 0.5, 4: mean 6.5 / 4
    assert interval_width(lower, upper) == pytest.approx(1.625)


def test_crossed_interval_is_rejected():
    with pytest.raises(ValueError, match=r"lower > upper at 1 step\(s\), the first at position 1"):
        coverage([1.0, 2.0], [0.0, 3.0], [2.0, 2.5])


@pytest.mark.parametrize("metric", [mae, rmse, smape], ids=lambda f: f.__name__)
def test_metric_argument_errors(metric):
    with pytest.raises(ValueError, match="actual has 3 values but forecast has 2"):
        metric([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"actual must be 1-D, got shape \(2, 1\)"):
        metric([[1.0], [2.0]], [[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"forecast has 1 non-finite value.*position 1"):
        metric([1.0, 2.0], [1.0, np.nan])
    with pytest.raises(ValueError, match="actual is empty"):
        metric([], [])
    with pytest.raises(TypeError, match="must be an array of numbers"):
        metric(["a"], [1.0])


def test_mase_argument_errors():
    with pytest.raises(ValueError, match="season must be None or an integer >= 1, got 0"):
        mase([1.0], [1.0], [1.0, 2.0], 0)
    with pytest.raises(ValueError, match="history has 1 non-finite"):
        mase([1.0], [1.0], [1.0, np.inf])


def test_metric_registry_and_score():
    assert list(METRICS) == ["mae", "rmse", "smape", "mase"]
    assert [name for name, m in METRICS.items() if m.needs_history] == ["mase"]
    actual, forecast, history = [6.0, 7.0], [5.0, 9.0], [1.0, 3.0, 2.0, 5.0]
    scores = score(actual, forecast, history)
    assert scores == {
        "mae": mae(actual, forecast),
        "rmse": rmse(actual, forecast),
        "smape": smape(actual, forecast),
        "mase": mase(actual, forecast, history),
    }
    with pytest.raises(ValueError, match="'mase' needs the history"):
        score(actual, forecast)


# ---------------------------------------------------------------- naive and seasonal naive


def test_naive_by_hand():
    history = [3.0, 1.0, 4.0, 1.0, 5.0]
    result = naive_forecast(history, 3)
    np.testing.assert_array_equal(result.mean, [5.0, 5.0, 5.0])
    # residuals y_t - y_{t-1}: -2, 3, -3, 4; sigma^2 = (4 + 9 + 9 + 16) / 4 = 9.5
    # h-step standard deviation sigma * sqrt(h)
    sd = math.sqrt(9.5) * np.sqrt([1.0, 2.0, 3.0])
    np.testing.assert_allclose(result.lower, 5.0 - Z80 * sd)
    np.testing.assert_allclose(result.upper, 5.0 + Z80 * sd)
    assert (result.model, result.fallback, result.level) == ("naive", False, 0.8)
    np.testing.assert_array_equal(naive(history, 3, 12), result.mean)  # season is ignored


def test_seasonal_naive_by_hand():
    history = [1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 6.0]
    result = seasonal_naive_forecast(history, 5, 3)
    # the last season is [5, 7, 6], repeated: steps 4 and 5 go two seasons back
    np.testing.assert_array_equal(result.mean, [5.0, 7.0, 6.0, 5.0, 7.0])
    # residuals y_t - y_{t-3}: 4-1, 5-2, 7-3, 6-4 = 3, 3, 4, 2; sigma^2 = (9+9+16+4)/4 = 9.5
    # standard deviation sigma * sqrt(k), k = seasons back = 1, 1, 1, 2, 2
    sd = math.sqrt(9.5) * np.sqrt([1.0, 1.0, 1.0, 2.0, 2.0])
    np.testing.assert_allclose(result.upper - result.mean, Z80 * sd)
    assert result.model == "seasonal naive (m=3)"
    assert not result.fallback


def test_seasonal_naive_without_season_is_naive():
    history = [1.0, 2.0, 4.0]
    for season in (None, 1):
        result = seasonal_naive_forecast(history, 2, season)
        np.testing.assert_array_equal(result.mean, [4.0, 4.0])
        assert (result.model, result.fallback) == ("naive", False)


def test_seasonal_naive_falls_back_on_a_history_shorter_than_a_season():
    result = seasonal_naive_forecast([1.0, 2.0, 4.0], 2, 4)
    np.testing.assert_array_equal(result.mean, [4.0, 4.0])
    assert result.fallback
    assert "shorter than one season (4)" in result.notes[0]


def test_no_interval_without_residuals():
    # one season of history: the seasonal naive forecast exists, its spread cannot be estimated
    result = seasonal_naive_forecast([1.0, 2.0, 3.0], 3, 3)
    np.testing.assert_array_equal(result.mean, [1.0, 2.0, 3.0])
    assert result.lower is None and result.upper is None


def test_baseline_argument_errors():
    with pytest.raises(ValueError, match="naive: horizon must be an integer >= 1, got 0"):
        naive([1.0, 2.0], 0)
    with pytest.raises(ValueError, match="seasonal_naive: season must be None or an integer"):
        seasonal_naive([1.0, 2.0], 1, 0)
    with pytest.raises(ValueError, match=r"level must lie strictly between 0 and 1, got 1\.5"):
        naive_forecast([1.0, 2.0], 1, level=1.5)
    with pytest.raises(ValueError, match="history has 1 non-finite"):
        ets([1.0, np.nan, 2.0], 1)


def test_registry_order_and_point_functions():
    assert list(BASELINES) == ["naive", "seasonal_naive", "ets", "arima"]
    history = np.arange(1.0, 9.0)
    for name, function in [("naive", naive), ("seasonal_naive", seasonal_naive)]:
        np.testing.assert_array_equal(BASELINES[name](history, 3, 4), function(history, 3, 4))
        np.testing.assert_array_equal(
            BASELINES[name].forecast(history, 3, 4).mean, function(history, 3, 4)
        )


# ---------------------------------------------------------------- ETS against statsmodels


def test_ets_rule():
    damped, simple = EtsSpec("add", "add", True), EtsSpec("add")
    positive = seasonal_series(40, 4, grow=False)
    assert ets_rule(positive) == ([damped], [simple])
    assert ets_rule(positive, 1) == ([damped], [simple])
    assert ets_rule(positive[:7], 4) == ([damped], [simple])  # less than two seasons
    candidates, fallbacks = ets_rule(positive, 4)
    assert [c.name for c in candidates] == ["ETS(A,Ad,A)", "ETS(M,Ad,M)"]
    assert [f.name for f in fallbacks] == ["ETS(A,Ad,N)", "ETS(A,N,N)"]
    candidates, _ = ets_rule(positive - 60.0, 4)  # not all positive: additive only
    assert [c.name for c in candidates] == ["ETS(A,Ad,A)"]
    assert candidates[0].kwargs() == {
        "error": "add",
        "trend": "add",
        "damped_trend": True,
        "seasonal": "add",
        "seasonal_periods": 4,
    }


def test_ets_on_nile_is_statsmodels(nile):
    history, horizon = nile[:90], 10
    result = ets_forecast(history, horizon)
    _, frame = direct_ets(history, horizon, error="add", trend="add", damped_trend=True)
    assert result.model == "ETS(A,Ad,N)"
    np.testing.assert_allclose(result.mean, frame["mean"], rtol=1e-9)
    np.testing.assert_allclose(result.lower, frame["pi_lower"], rtol=1e-9)
    np.testing.assert_allclose(result.upper, frame["pi_upper"], rtol=1e-9)
    np.testing.assert_array_equal(ets(history, horizon), result.mean)  # the point function


@pytest.mark.parametrize("grow", [True, False], ids=["multiplicative", "additive"])
def test_ets_seasonal_keeps_the_lower_aic(grow):
    history, horizon = seasonal_series(48, 4, grow=grow), 6
    fits = {
        "ETS(A,Ad,A)": direct_ets(
            history,
            horizon,
            error="add",
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=4,
        ),
        "ETS(M,Ad,M)": direct_ets(
            history,
            horizon,
            error="mul",
            trend="add",
            damped_trend=True,
            seasonal="mul",
            seasonal_periods=4,
        ),
    }
    best = min(fits, key=lambda name: fits[name][0])
    result = ets_forecast(history, horizon, 4)
    assert result.model == best
    assert not result.fallback
    frame = fits[best][1]
    np.testing.assert_allclose(result.mean, frame["mean"], rtol=1e-9)
    # simulated for the multiplicative model: the same seed gives the same paths
    np.testing.assert_allclose(result.lower, frame["pi_lower"], rtol=1e-9)
    np.testing.assert_allclose(result.upper, frame["pi_upper"], rtol=1e-9)


def test_ets_multiplicative_season_wins_when_the_swing_grows():
    assert ets_forecast(seasonal_series(48, 4, grow=True), 4, 4).model == "ETS(M,Ad,M)"


def test_ets_falls_back_when_the_seasonal_models_have_too_many_parameters():
    # 12 values, season 6: ETS(A,Ad,A) has 4 smoothing/damping + 2 + 6 initial states = 12
    # parameters and needs more than 16 values; ETS(A,Ad,N)'s 5 need more than 9
    result = ets_forecast(seasonal_series(12, 6, grow=False), 3, 6)
    assert (result.model, result.fallback) == ("ETS(A,Ad,N)", True)
    assert any("ETS(A,Ad,A) not used" in note and "too few" in note for note in result.notes)


def test_ets_falls_back_to_naive_on_a_tiny_history():
    result = ets_forecast([3.0, 1.0, 4.0, 1.0, 5.0], 2)
    assert (result.model, result.fallback) == ("naive", True)
    np.testing.assert_array_equal(result.mean, [5.0, 5.0])
    assert result.notes[-1] == "no ETS model could be fitted: naive forecast"


# ---------------------------------------------------------------- ARIMA against statsmodels


def test_arima_spec_names_and_trends():
    assert ArimaSpec(1, 0, 2).name == "ARIMA(1,0,2) with mean"
    assert ArimaSpec(1, 0, 2).trend == "c"
    assert ArimaSpec(0, 1, 1).name == "ARIMA(0,1,1) with drift"
    assert ArimaSpec(0, 1, 1).trend == "t"
    spec = ArimaSpec(0, 1, 1, 0, 1, 1, 12)
    assert (spec.name, spec.trend) == ("ARIMA(0,1,1)(0,1,1)[12]", "n")
    assert (spec.order, spec.seasonal_order) == ((0, 1, 1), (0, 1, 1, 12))


def test_arima_grid():
    grid = arima_grid(1, 0, 12)
    assert len(grid) == 9
    assert {(s.p, s.q) for s in grid} == {(p, q) for p in range(3) for q in range(3)}
    assert all(s.seasonal_order == (0, 0, 0, 0) and s.d == 1 for s in grid)
    seasonal = arima_grid(0, 1, 12)
    assert len(seasonal) == 18
    assert {(s.P, s.D, s.Q, s.m) for s in seasonal} == {(1, 1, 0, 12), (0, 1, 1, 12)}
    with pytest.raises(ValueError, match="a seasonal difference needs a season >= 2, got None"):
        arima_grid(0, 1, None)


def test_difference_by_hand():
    y = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    np.testing.assert_array_equal(difference(y, 1, 0, 2), [1.0, 2.0, 3.0, 4.0, 5.0])
    # lag 2: 4-1, 7-2, 11-4, 16-7 = 3, 5, 7, 9; then once more: 2, 2, 2
    np.testing.assert_array_equal(difference(y, 0, 1, 2), [3.0, 5.0, 7.0, 9.0])
    np.testing.assert_array_equal(difference(y, 1, 1, 2), [2.0, 2.0, 2.0])


def test_choose_differencing():
    rng = np.random.default_rng(1)
    assert choose_differencing(rng.normal(size=200).cumsum()) == (1, 0)  # a random walk
    assert choose_differencing(rng.normal(size=200)) == (0, 0)  # white noise
    wave = seasonal_series(60, 4, grow=False)
    assert seasonal_strength(wave, 4) > 0.9
    assert seasonal_strength(rng.normal(size=60), 4) < 0.64
    assert choose_differencing(wave, 4)[1] == 1
    assert choose_differencing(wave)[1] == 0  # no season given: no seasonal difference


def direct_grid_aics(y: np.ndarray, season: int | None) -> dict[ArimaSpec, float]:
    """The AIC of every grid model, statsmodels' ARIMA fitted to the differenced series as
    select_arima does."""
    from statsmodels.tsa.arima.model import ARIMA

    d, D = choose_differencing(y, season)
    grid = arima_grid(d, D, season)
    w = difference(y, d, D, grid[0].m)
    aics = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in grid:
            seasonal = (s.P, 0, s.Q, s.m) if s.m else (0, 0, 0, 0)
            model = ARIMA(
                w,
                order=(s.p, 0, s.q),
                seasonal_order=seasonal,
                trend="c" if d + D <= 1 else "n",
                concentrate_scale=True,
            )
            aics[s] = model.fit().aic
    return aics


def test_arima_selection_is_the_grid_minimum_on_nile(nile):
    selection = select_arima(nile)
    aics = direct_grid_aics(nile, None)
    assert list(selection.aic) == list(aics)
    np.testing.assert_allclose(list(selection.aic.values()), list(aics.values()), rtol=1e-9)
    assert selection.best == min(aics, key=aics.__getitem__)
    assert selection.best.name == "ARIMA(1,1,1) with drift"


def test_arima_on_nile_is_statsmodels(nile):
    history, horizon = nile[:90], 10
    result = arima_forecast(history, horizon)
    spec = select_arima(history).best
    assert result.model == spec.name
    assert_same_forecast(result, direct_arima(history, spec, horizon))
    np.testing.assert_array_equal(arima(history, horizon), result.mean)  # the point function


def test_seasonal_arima_is_statsmodels():
    history, horizon = seasonal_series(60, 4, grow=False, seed=3), 8
    selection = select_arima(history, 4)
    assert len(selection.aic) == 18 and selection.best.D == 1 and selection.best.m == 4
    assert selection.best == min(selection.aic, key=selection.aic.__getitem__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing reaches the user...
        result = arima_forecast(history, horizon, 4)
    # ...but it is recorded: this series' seasonal MA sits at the invertibility bound, where
    # statsmodels stops at its 50 iterations and says so
    assert any("ConvergenceWarning" in note for note in result.notes)
    assert result.model == selection.best.name
    assert_same_forecast(result, direct_arima(history, selection.best, horizon))


def test_arima_falls_back_to_naive(monkeypatch):
    short = arima_forecast([1.0, 3.0, 2.0, 4.0], 2)
    assert (short.model, short.fallback) == ("naive", True)
    assert "ARIMA needs 10" in short.notes[-1]

    def fail(w, spec):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(baselines, "_fit_differenced", fail)
    result = arima_forecast(np.arange(30.0) ** 0.5, 3)
    assert (result.model, result.fallback) == ("naive", True)
    assert any("none of the 9 ARIMA models could be fitted" in note for note in result.notes)


# ---------------------------------------------------------------- folds


@pytest.mark.parametrize(
    ("n", "horizon", "folds", "step", "min_train", "expected"),
    [
        (20, 3, 3, None, 5, [11, 14, 17]),  # adjacent test windows
        (20, 3, 3, 1, 5, [15, 16, 17]),  # overlapping
        (30, 2, 3, 5, 10, [18, 23, 28]),  # gaps between test windows
        (100, 12, 5, None, 40, [40, 52, 64, 76, 88]),  # the first fold trains on min_train
        (10, 2, 1, None, 8, [8]),
    ],
    ids=lambda v: f"{v}",
)
def test_rolling_origins(n, horizon, folds, step, min_train, expected):
    cutoffs = rolling_origins(n, horizon, folds, step=step, min_train=min_train)
    assert cutoffs == expected
    assert cutoffs[-1] + horizon == n  # the last fold ends at the series' end


def test_rolling_origins_too_short():
    message = r"20 values is too short for 3 fold\(s\) of horizon 3.* = 21 values"
    with pytest.raises(ValueError, match=message):
        rolling_origins(20, 3, 3, min_train=12)
    with pytest.raises(ValueError, match="step must be an integer >= 1, got 0"):
        rolling_origins(20, 3, 3, step=0, min_train=5)
    with pytest.raises(ValueError, match="folds must be an integer >= 1, got 0"):
        rolling_origins(20, 3, 0, min_train=5)


def test_backtest_baselines_by_hand():
    values = np.array([1.0, 3.0, 2.0, 4.0, 3.0, 5.0, 4.0, 6.0, 6.0, 9.0])
    cutoffs = rolling_origins(len(values), 2, 2, min_train=4)
    assert cutoffs == [6, 8]
    simple = {name: BASELINES[name] for name in ("naive", "seasonal_naive")}
    records = backtest_baselines(values, 2, 2, cutoffs, simple)
    assert [(r.fold, r.cutoff, r.method) for r in records] == [
        (0, 6, "naive"),
        (0, 6, "seasonal_naive"),
        (1, 8, "naive"),
        (1, 8, "seasonal_naive"),
    ]
    # fold 1: history 1, 3, 2, 4, 3, 5, 4, 6; actual 6, 9
    # naive [6, 6]: errors 0, 3, MAE 1.5; sMAPE 100/2 * (0 + 2*3/(9+6)) = 20
    # seasonal naive (lag 2) [4, 6]: errors 2, 3, MAE 2.5
    # MASE scale, lag 2: |2-1|, |4-3|, |3-2|, |5-4|, |4-3|, |6-5| all 1, mean 1
    np.testing.assert_array_equal(records[2].forecast, [6.0, 6.0])
    np.testing.assert_array_equal(records[3].forecast, [4.0, 6.0])
    assert records[2].metrics["mae"] == pytest.approx(1.5)
    assert records[2].metrics["smape"] == pytest.approx(20.0)
    assert records[2].metrics["mase"] == pytest.approx(1.5)
    assert records[3].metrics["mase"] == pytest.approx(2.5)
    assert records[3].metrics == {
        **score([6.0, 9.0], [4.0, 6.0], values[:8], 2),
        "coverage": records[3].metrics["coverage"],
        "interval_width": records[3].metrics["interval_width"],
    }
    with pytest.raises(ValueError, match="cut-off 9 plus horizon 2 runs past the end"):
        backtest_baselines(values, 2, 2, [9], simple)


def test_backtest_every_baseline_on_nile(nile):
    cutoffs = rolling_origins(len(nile), 10, 2, min_train=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing reaches the user
        records = backtest_baselines(nile, 10, None, cutoffs)
    assert [r.method for r in records] == list(BASELINES) * 2
    for r in records:
        assert r.forecast.shape == (10,)
        assert set(r.metrics) == {"mae", "rmse", "smape", "mase", "coverage", "interval_width"}
        assert all(np.isfinite(v) for v in r.metrics.values())
        assert 0.0 <= r.metrics["coverage"] <= 1.0
