"""The forecaster: windows and scaling (no leakage from the future), the network and its
loss, fitting, exact resume, run folders, predict, and the backtest's folds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.checkpoints import CheckpointError
from lstmkit.forecast import checkpoint as ckpt
from lstmkit.forecast.api import Forecaster, default_input_len
from lstmkit.forecast.backtest import backtest
from lstmkit.forecast.calibrate import corrections, holdout
from lstmkit.forecast.model import ForecastConfig, ForecastNet, pinball_loss
from lstmkit.forecast.series import DataError, TimeSeries
from lstmkit.forecast.train import FitConfig
from lstmkit.forecast.windows import Scaler, fit_scalers, windows

FAST = dict(steps=30, hidden_size=8, batch_size=16)


def monthly(values, covariates=None, names=()) -> TimeSeries:
    index = pd.date_range("2000-01-01", periods=len(values), freq="MS")
    values = np.asarray(values, dtype=np.float64)
    return TimeSeries("s", values, index, "MS", covariates, tuple(names))


def seasonal(n=96, seed=0) -> TimeSeries:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return monthly(10 + 0.05 * t + 2 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.3, n))


# -- windows and scaling --------------------------------------------------------------------------


def test_windows_are_the_past_and_the_following_targets():
    s = monthly(np.arange(10.0), covariates=np.arange(10.0)[:, None] * 2, names=("c",))
    scalers = fit_scalers(s)
    x, y = windows(s, scalers, input_len=3, horizon=2)
    assert x.shape == (6, 3, 2) and y.shape == (6, 2)  # 10 - 3 - 2 + 1 windows
    t = scalers.target
    np.testing.assert_allclose(t.inverse(x[0, :, 0]), [0, 1, 2], atol=1e-5)
    np.testing.assert_allclose(t.inverse(y[0]), [3, 4], atol=1e-5)
    np.testing.assert_allclose(t.inverse(y[-1]), [8, 9], atol=1e-5)
    np.testing.assert_allclose(scalers.covariates[0].inverse(x[-1, :, 1]), [10, 12, 14], atol=1e-5)


def test_scalers_see_only_the_part_they_are_given():
    s = seasonal()
    head = s.head(60)
    scaler = fit_scalers(head).target
    assert scaler.mean == pytest.approx(s.values[:60].mean())
    assert scaler.scale == pytest.approx(s.values[:60].std())
    assert Scaler.fit(np.full(5, 3.0)) == Scaler(3.0, 1.0)  # constant: no division by 0


def test_a_series_too_short_for_window_and_horizon_is_named():
    with pytest.raises(DataError, match=r"'s' has 5 steps, shorter than the window \(4\)"):
        windows(monthly(np.arange(5.0)), fit_scalers(monthly(np.arange(5.0))), 4, 2)
    with pytest.raises(DataError, match="too short to learn a horizon of 12"):
        default_input_len([monthly(np.arange(20.0))], 12, 12)


def test_the_future_is_never_seen():
    """A forecaster fitted on the first 72 steps forecasts the same whatever follows them,
    and so does the backtest's fold at that cut-off."""
    s = seasonal()
    poisoned = monthly(np.concatenate([s.values[:72], np.full(24, 1e6)]))
    forecasts = [
        Forecaster(12, season=12, **FAST).fit(x.head(72)).predict().forecast.to_numpy()
        for x in (s, poisoned)
    ]
    np.testing.assert_array_equal(*forecasts)
    # the backtest: the fold cut at 60 (forecasting 60..71) is blind to 72 onwards
    runs = [
        backtest([x], 12, 12, 3, {"lstm": Forecaster(12, season=12, **FAST)}, progress=False)
        for x in (s, poisoned)
    ]
    first = [[r for r in run.records if r["cutoff"] == 60] for run in runs]
    assert first[0] and len(first[0]) == len(first[1])
    for a, b in zip(*first, strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }


# -- the network ----------------------------------------------------------------------------------


def test_pinball_loss_by_hand():
    forecast = torch.tensor([[[1.0, 2.0]]])  # one step, quantiles 0.1 and 0.9
    target = torch.tensor([[3.0]])
    # errors 2 and 1 (target above): 0.1*2 = 0.2 and 0.9*1 = 0.9; mean 0.55
    assert pinball_loss(forecast, target, (0.1, 0.9)).item() == pytest.approx(0.55)
    # target below both: errors -1 and -2: (0.1-1)*-1 = 0.9, (0.9-1)*-2 = 0.2
    assert pinball_loss(forecast, torch.tensor([[0.0]]), (0.1, 0.9)).item() == pytest.approx(0.55)


def test_the_head_adds_a_change_to_the_last_value():
    net = ForecastNet(ForecastConfig(horizon=3, input_len=4, features=2, hidden_size=5))
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.zeros_(net.head.bias)
    window = torch.randn(2, 4, 2)
    out = net(window)
    assert out.shape == (2, 3, 3)
    torch.testing.assert_close(out, window[:, -1, 0, None, None].expand(2, 3, 3))
    with pytest.raises(ValueError, match=r"expected windows of shape \(batch, 4, 2\)"):
        net(torch.randn(2, 5, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(horizon=0), "horizon must be a positive integer, got 0"),
        (dict(horizon=3, cell="lstn"), "unknown cell 'lstn'"),
        (dict(horizon=3, quantiles=(0.9, 0.1)), "quantiles must be increasing"),
        (dict(horizon=3, steps=0), "steps must be a positive integer"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Forecaster(**kwargs)


# -- fitting, predicting, run folders -------------------------------------------------------------


def test_fit_learns_a_seasonal_series_and_predicts_a_frame():
    s = seasonal(seed=1)
    model = Forecaster(12, season=12, steps=300, hidden_size=16).fit(s.head(84))
    table = model.predict()
    assert list(table.columns[:6]) == ["series", "time", "step", "forecast", "lower", "upper"]
    assert (table.time == s.index[84:96]).all()
    assert (table.lower <= table.forecast).all() and (table.forecast <= table.upper).all()
    error = np.abs(table.forecast.to_numpy() - s.values[84:96]).mean()
    naive = np.abs(s.values[83] - s.values[84:96]).mean()
    assert error < naive  # a seasonal series: the last value alone is a poor forecast
    assert len(model.predict(5)) == 5
    with pytest.raises(ValueError, match="forecasts at most 12 steps"):
        model.predict(13)
    with pytest.raises(ValueError, match="horizon must be a positive integer, got 0"):
        model.predict(0)


def test_many_series_make_one_global_model():
    a, b = seasonal(seed=2), seasonal(seed=3)
    b = TimeSeries("b", b.values * 3, b.index, b.freq)
    model = Forecaster(6, season=12, **FAST).fit([a, b])
    table = model.predict()
    assert table.series.tolist() == ["s"] * 6 + ["b"] * 6


def test_a_run_folder_reloads_and_resumes_exactly(tmp_path, monkeypatch):
    s = seasonal(seed=4)
    settings = dict(steps=40, hidden_size=8, batch_size=16)
    whole = Forecaster(6, season=12, **settings).fit(s, run=tmp_path / "whole")
    reloaded = Forecaster.load(tmp_path / "whole")
    pd.testing.assert_frame_equal(reloaded.predict(), whole.predict())

    real = ckpt.save_checkpoint

    def save_then_stop(run, weights, trainer, position):  # Ctrl-C just after a checkpoint
        real(run, weights, trainer, position)
        if position["step"] == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_checkpoint", save_then_stop)
    model = Forecaster(6, season=12, **settings)
    model.fit_config = FitConfig(**{**model.fit_config.to_json(), "checkpoint_every": 20})
    with pytest.raises(KeyboardInterrupt):
        model.fit(s, run=tmp_path / "cut")
    monkeypatch.setattr(ckpt, "save_checkpoint", real)
    resumed = Forecaster.resume(tmp_path / "cut")
    for name, value in whole.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[name], value, rtol=0, atol=0)
    pd.testing.assert_frame_equal(resumed.predict(), whole.predict())


def test_run_folders_that_are_not_forecasters_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no such run folder"):
        Forecaster.load(tmp_path / "missing")
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        Forecaster.load(tmp_path)
    (tmp_path / "config.json").write_text('{"format": "lstmkit-lm/1"}')
    with pytest.raises(CheckpointError, match="expected format 'lstmkit-forecast/1'"):
        Forecaster.load(tmp_path)


# -- the interval's calibration -------------------------------------------------------------------


def test_holdout_keeps_training_targets_before_the_calibration_targets():
    assert holdout(50, 12) == (29, 40)  # 10 held out; window 28's targets end at 28+L+12
    assert holdout(20, 10) is None  # 4 held out would leave 7 training windows
    train_end, calib_start = holdout(100, 5)
    assert calib_start - train_end == 5 - 1  # the gap: no training target in calibration


def test_corrections_are_the_conformal_quantile_of_the_scores():
    net = ForecastNet(ForecastConfig(horizon=2, input_len=3, hidden_size=4))
    torch.nn.init.zeros_(net.head.weight)
    torch.nn.init.zeros_(net.head.bias)  # every quantile is the last value: a zero-width interval
    x = np.zeros((9, 3, 1), dtype=np.float32)
    y = np.stack([np.arange(1.0, 10.0), -np.arange(1.0, 10.0)], axis=1).astype(np.float32)
    # scores |y - 0| are 1..9 at both steps; 80%: rank ceil(10 * 0.8) = 8 -> the 8th smallest
    np.testing.assert_allclose(corrections(net, x, y), [8.0, 8.0])
    # with 3 windows the rank ceil(4 * 0.8) = 4 exceeds 3: the largest score stands in
    np.testing.assert_allclose(corrections(net, x[:3], y[:3]), [3.0, 3.0])


def test_calibrated_intervals_are_wider_and_saved_with_the_run(tmp_path):
    s = seasonal(seed=5)
    plain = Forecaster(6, season=12, calibrate=False, **FAST).fit(s)
    calibrated = Forecaster(6, season=12, **FAST).fit(s, run=tmp_path / "run")
    assert calibrated.corrections is not None and len(calibrated.corrections) == 6
    a, b = plain.predict(), calibrated.predict()
    np.testing.assert_array_equal(a.forecast, b.forecast)  # the same final network
    shift = np.asarray(calibrated.corrections) * calibrated.scalers[0].target.scale
    np.testing.assert_allclose(b.upper, np.maximum(a.upper + shift, a.forecast), rtol=1e-6)
    pd.testing.assert_frame_equal(Forecaster.load(tmp_path / "run").predict(), b)
