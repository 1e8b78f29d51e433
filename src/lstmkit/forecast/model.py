"""The forecaster network: a recurrent encoder over a window of the past, and a direct
multi-step head that gives every quantile of every future step at once.

    window (B, L, F) -> any lstmkit recurrent layer -> h_L (B, H_rnn)
        -> linear -> (B, horizon, Q) + the window's last target value -> quantiles

Direct multi-step output (one head for all ``horizon`` steps, no feeding of forecasts back
in) is what the MQ-RNN forecasters use (Wen et al. 2017): errors do not compound through
the horizon. The head predicts the change from the last observed value, not the level, so
a series that has drifted away from its training mean starts from where it is. Quantiles
come from the pinball loss (Koenker & Bassett 1978); at prediction time they are sorted,
so that they never cross (the rearrangement of Chernozhukov et al. 2010).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from lstmkit._checks import check_positive_int
from lstmkit._dataclass_json import dataclass_from_json
from lstmkit.layers.named import MODERN_CELLS

CELLS: tuple[str, ...] = tuple(MODERN_CELLS)


@dataclass(frozen=True)
class ForecastConfig:
    """Everything needed to rebuild a forecaster network; saved in the run's config.json."""

    horizon: int
    """Future steps forecast at once."""
    input_len: int
    """Past steps the encoder reads."""
    features: int = 1
    """Inputs per step: the target, then the covariates."""
    cell: str = "lstm"
    """Any modern lstmkit cell: lstm, gru, rnn, peephole, cifg, lstm-noforget."""
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    """Dropout between recurrent layers (with num_layers > 1)."""
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    """Quantile levels forecast; the median is the point forecast, the outer two the
    interval (0.1 and 0.9: an 80% interval)."""
    forget_bias: float | None = 1.0
    """Initial forget-gate bias of the LSTMs; None keeps torch's."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantiles", tuple(float(q) for q in self.quantiles))
        check_forecast_config(self)

    @property
    def median_index(self) -> int:
        return min(range(len(self.quantiles)), key=lambda k: abs(self.quantiles[k] - 0.5))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> ForecastConfig:
        return dataclass_from_json(cls, data, "forecaster config")


def check_forecast_config(c: ForecastConfig) -> None:
    """ValueError naming the first field out of range."""
    for name in ("horizon", "input_len", "features", "hidden_size", "num_layers"):
        check_positive_int(getattr(c, name), name)
    if c.cell not in MODERN_CELLS:
        raise ValueError(f"unknown cell {c.cell!r}; expected one of {', '.join(CELLS)}")
    if not 0.0 <= c.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {c.dropout!r}")
    qs = c.quantiles
    if not qs or any(not 0.0 < q < 1.0 for q in qs) or list(qs) != sorted(set(qs)):
        raise ValueError(f"quantiles must be increasing levels in (0, 1), got {list(qs)}")
    if c.forget_bias is not None and not math.isfinite(c.forget_bias):
        raise ValueError(f"forget_bias must be finite or None, got {c.forget_bias!r}")


class ForecastNet(nn.Module):
    """``forward(window (B, L, F)) -> (B, horizon, Q)`` scaled quantile forecasts."""

    def __init__(self, config: ForecastConfig) -> None:
        super().__init__()
        self.config = config
        cell = MODERN_CELLS[config.cell]
        self.rnn = cell.layer(
            config.features,
            config.hidden_size,
            config.forget_bias,
            num_layers=config.num_layers,
            dropout=config.dropout,
        )
        self.head = nn.Linear(config.hidden_size, config.horizon * len(config.quantiles))

    def forward(self, window: Tensor) -> Tensor:
        c = self.config
        if window.dim() != 3 or window.shape[1:] != (c.input_len, c.features):
            raise ValueError(
                f"expected windows of shape (batch, {c.input_len}, {c.features}), got "
                f"{tuple(window.shape)}"
            )
        output, _ = self.rnn(window)  # (B, L, H)
        change = self.head(output[:, -1]).view(-1, c.horizon, len(c.quantiles))
        return window[:, -1, :1, None] + change  # last target value (B, 1, 1) + change


def pinball_loss(forecast: Tensor, target: Tensor, quantiles: tuple[float, ...]) -> Tensor:
    """Mean pinball loss of ``forecast`` (B, H, Q) against ``target`` (B, H)."""
    q = torch.tensor(quantiles, dtype=forecast.dtype, device=forecast.device)
    error = target[..., None] - forecast  # (B, H, Q)
    return torch.maximum(q * error, (q - 1) * error).mean()
