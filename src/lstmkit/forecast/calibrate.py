"""Calibrating the prediction interval on windows the network never trained on: conformalized
quantile regression (Romano, Patterson & Candès 2019), one correction per horizon step.

A network fits its training windows more closely than it forecasts new ones, so quantiles
learnt by the pinball loss give intervals that cover far less than their nominal level
(docs/forecasting.md measured 22% for a nominal 80% before this). The fix:

1. hold out the last ``c`` windows of every series (the calibration windows) and train a
   network on the windows whose targets end before the calibration targets begin;
2. on each calibration window and horizon step j, score how far the actual value falls
   outside the interval: E = max(lower - y, y - upper) (negative when inside);
3. widen (or narrow) the interval at step j by Q_j, the ceil((m + 1)(1 - a)) / m empirical
   quantile of the m scores of step j, where 1 - a is the interval's nominal level.

Under exchangeability this gives at least the nominal coverage; a time series is not
exchangeable, so the guarantee is approximate, and the backtests measure what it gives. The
corrections come from this first network; the network that forecasts is then fitted on
every window (the caller does that), so the interval is calibrated for a model trained on
slightly less data than the one used: if anything, a little wide.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lstmkit.forecast.model import ForecastNet

MIN_TRAIN_WINDOWS = 8
"""Fewer proper training windows than this per series, and calibration is skipped."""


def holdout(windows_count: int, horizon: int) -> tuple[int, int] | None:
    """``(train_end, calib_start)`` window indices for one series with ``windows_count``
    windows: train on ``[0, train_end)``, calibrate on ``[calib_start, windows_count)``;
    None when the series is too short to spare any."""
    held = max(1, round(0.2 * windows_count))
    calib_start = windows_count - held
    train_end = calib_start - horizon + 1  # their targets end before calibration's begin
    if train_end < MIN_TRAIN_WINDOWS:
        return None
    return train_end, calib_start


@torch.no_grad()
def corrections(net: ForecastNet, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(horizon,) additive corrections of the outer quantiles, in scaled units, from the
    calibration windows ``x`` (m, L, F) and their targets ``y`` (m, H)."""
    q = torch.sort(net.eval()(torch.from_numpy(x)), dim=-1).values.numpy()  # (m, H, Q)
    levels = net.config.quantiles
    alpha = 1.0 - (levels[-1] - levels[0])
    scores = np.maximum(q[:, :, 0] - y, y - q[:, :, -1])  # (m, H)
    m = len(scores)
    rank = math.ceil((m + 1) * (1 - alpha))
    if rank > m:  # too few windows for the level: the largest score is the best there is
        return scores.max(axis=0)
    return np.sort(scores, axis=0)[rank - 1]
