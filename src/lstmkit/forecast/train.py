"""Fitting a forecaster network: Adam on random batches of windows, pinball loss, cosine
decay, gradient clipping; checkpoints and exact resume when a run folder is given.

One global model for every series (Salinas et al. 2020's DeepAR and Oreshkin et al.'s
N-BEATS train this way): the windows of all series go into one pool, each series scaled by
its own scalers. A batch is drawn by a seeded generator whose state is saved with the
checkpoint, as are the optimizer's moments and torch's RNG (dropout), so a resumed fit
ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from lstmkit._checks import check_positive_int
from lstmkit._dataclass_json import dataclass_from_json
from lstmkit.checkpoints import CheckpointError, optimizer_tensors, restore_optimizer
from lstmkit.forecast import checkpoint as ckpt
from lstmkit.forecast.model import ForecastConfig, ForecastNet, pinball_loss
from lstmkit.progress import Progress


@dataclass(frozen=True)
class FitConfig:
    """How the network is trained; saved beside it."""

    steps: int = 800
    """Adam updates."""
    batch_size: int = 64
    """Windows per update, drawn at random from every series' windows."""
    learning_rate: float = 3e-3
    """Peak rate; a cosine takes it to a tenth by the last step."""
    grad_clip: float = 1.0
    """Gradient-norm clip (0: none)."""
    seed: int = 0
    """Seeds the initialisation, the batches and dropout."""
    checkpoint_every: int = 200
    """Steps between checkpoints (with a run folder)."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> FitConfig:
        return dataclass_from_json(cls, data, "fit settings")


def learning_rate(step: int, c: FitConfig) -> float:
    """Cosine from the peak to a tenth of it over the run."""
    progress = step / max(1, c.steps - 1)
    return c.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def fit_network(
    x: np.ndarray,
    y: np.ndarray,
    model: ForecastConfig,
    fit: FitConfig,
    *,
    run: Path | None = None,
    resume: bool = False,
    progress: bool = True,
    desc: str = "fit",
) -> tuple[ForecastNet, list[float]]:
    """Train on windows ``x`` (N, L, F) and targets ``y`` (N, H); the network (in eval
    mode) and the mean loss of every 50 steps. With ``run``, checkpoints go there (the
    caller has written its config.json) and ``resume`` continues from the last one."""
    inputs, targets = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(fit.seed)
    net = ForecastNet(model)
    optimizer = torch.optim.Adam(net.parameters(), lr=fit.learning_rate)
    batches = torch.Generator().manual_seed(fit.seed + 1)
    start, losses = 0, []
    if resume:
        start, losses = _restore(run, net, optimizer, batches)
    net.train()
    window_loss: list[float] = []
    with Progress(total=fit.steps, desc=f"{desc} {model.cell}", disable=not progress) as bar:
        bar.update(start)
        for step in range(start, fit.steps):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, fit)
            index = torch.randint(len(inputs), (fit.batch_size,), generator=batches)
            loss = pinball_loss(net(inputs[index]), targets[index], model.quantiles)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if fit.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), fit.grad_clip)
            optimizer.step()
            window_loss.append(loss.item())
            if len(window_loss) == 50 or step + 1 == fit.steps:
                losses.append(float(np.mean(window_loss)))
                window_loss = []
            bar.update()
            bar.set_postfix(loss=loss.item())
            done = step + 1
            if run is not None and (done % fit.checkpoint_every == 0 or done == fit.steps):
                _save(run, net, optimizer, batches, done, losses)
    return net.eval(), losses


def _save(run, net, optimizer, batches, step: int, losses: list[float]) -> None:
    tensors = optimizer_tensors(optimizer)
    tensors["rng.batches"] = batches.get_state()
    tensors["rng.cpu"] = torch.get_rng_state()
    weights = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    ckpt.save_checkpoint(run, weights, tensors, {"step": step, "losses": losses})


def _restore(run, net, optimizer, batches) -> tuple[int, list[float]]:
    if run is None:
        raise ValueError("resume needs the run folder to resume from")
    folder = ckpt.checkpoint_dir(run)
    tensors, position = ckpt.load_trainer(folder)
    ckpt.load_weights(net, folder / ckpt.MODEL_FILE)
    restore_optimizer(optimizer, tensors, run)
    try:
        batches.set_state(tensors["rng.batches"])
        torch.set_rng_state(tensors["rng.cpu"])
        return int(position["step"]), list(position["losses"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{run}: damaged trainer state ({err})") from None
