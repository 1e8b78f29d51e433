"""Run folders on disk, for any trainer: JSON for settings, safetensors for tensors, never
pickle, every write atomic.

    RUN/checkpoint/
      model.safetensors    the model's weights
      trainer.safetensors  optimizer moments, RNG states, anything else the trainer carries
      trainer.json         the trainer's position (step, ...)

Every file is written to a temporary name, flushed and renamed over the old one; the
checkpoint folder is built as ``checkpoint.tmp`` and swapped in with two renames (old to
``checkpoint.old``, new to ``checkpoint``). A reader that finds no ``checkpoint`` takes
``checkpoint.old``, the only state in which a crash can leave it. Loading reads only JSON
and safetensors, so opening a checkpoint cannot run code from it. Every way a folder can be
wrong raises :class:`CheckpointError` naming the file and the problem.

The language models (:mod:`lstmkit.lm.checkpoint`) and the forecasters
(:mod:`lstmkit.forecast.checkpoint`) keep their own config.json beside this.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from lstmkit._atomic import fsync_dir, write_atomic

CHECKPOINT = "checkpoint"
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.safetensors"
TRAINER_JSON = "trainer.json"


class CheckpointError(ValueError):
    """A run folder or checkpoint that cannot be used, and why."""


def write_json_atomic(path: Path, value: object) -> None:
    write_atomic(path, (json.dumps(value, indent=2) + "\n").encode())


def save_checkpoint(
    run: Path,
    weights: dict[str, Tensor],
    trainer: dict[str, Tensor],
    trainer_json: dict,
    *,
    format: str,
) -> None:
    """Write a whole checkpoint into ``run/checkpoint``, atomically (see the module doc);
    ``format`` goes into the safetensors metadata."""
    run = Path(run)
    tmp, final, old = run / f"{CHECKPOINT}.tmp", run / CHECKPOINT, run / f"{CHECKPOINT}.old"
    if tmp.exists():
        shutil.rmtree(tmp)  # a crash's leftovers
    tmp.mkdir(parents=True)
    meta = {"format": format}
    write_atomic(tmp / MODEL_FILE, save_safetensors(weights, metadata=meta))
    write_atomic(tmp / TRAINER_FILE, save_safetensors(trainer, metadata=meta))
    write_json_atomic(tmp / TRAINER_JSON, trainer_json)
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    fsync_dir(run)
    if old.exists():
        shutil.rmtree(old)


def check_run_folder(run: Path, made_by: str) -> None:
    if not run.exists():
        raise CheckpointError(f"{run}: no such run folder")
    if not run.is_dir():
        raise CheckpointError(f"{run}: expected a run folder (made by {made_by}), got a file")


def checkpoint_dir(run: Path, made_by: str) -> Path:
    """The folder holding the run's latest whole checkpoint."""
    run = Path(run)
    check_run_folder(run, made_by)
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
        if (run / name / MODEL_FILE).is_file():
            return run / name
    raise CheckpointError(f"{run}: no checkpoint in this folder; is it a run of {made_by}?")


def read_json(path: Path) -> object:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: damaged, not valid JSON ({err})") from None


def read_config(run: Path, name: str, format: str, made_by: str) -> dict:
    """The run's JSON config file ``name`` as a dict, checked to be of ``format``."""
    check_run_folder(Path(run), made_by)
    path = Path(run) / name
    if not path.is_file():
        raise CheckpointError(f"{run}: no {name}; is it a run folder of {made_by}?")
    data = read_json(path)
    if not isinstance(data, dict) or data.get("format") != format:
        got = data.get("format") if isinstance(data, dict) else None
        raise CheckpointError(f"{path}: expected format {format!r}, got {got!r}")
    return data


def read_tensors(path: Path) -> dict[str, Tensor]:
    """The tensors of a safetensors file; a damaged file raises CheckpointError."""
    try:
        return load_safetensors(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: damaged, not a readable safetensors file ({err})") from None


def load_trainer(folder: Path) -> tuple[dict[str, Tensor], dict]:
    """The trainer's tensors and JSON in checkpoint folder ``folder`` (see
    :func:`checkpoint_dir`)."""
    tensors = read_tensors(folder / TRAINER_FILE)
    path = folder / TRAINER_JSON
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    data = read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return tensors, data


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """The optimizer's per-parameter state as ``optimizer.<index>.<name>`` tensors."""
    # the index optimizer.state_dict() gives each parameter: its place across the groups
    params = [q for group in optimizer.param_groups for q in group["params"]]
    names = {id(q): i for i, q in enumerate(params)}
    tensors = {}
    for param, moments in optimizer.state.items():
        for key, value in moments.items():
            tensors[f"optimizer.{names[id(param)]}.{key}"] = value.detach().cpu()
    return tensors


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], run) -> None:
    """Load :func:`optimizer_tensors`' output back; CheckpointError if it does not fit."""
    state = optimizer.state_dict()
    moments: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            moments.setdefault(int(index), {})[name] = value
    state["state"] = moments
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(
            f"{run}: the optimizer state does not fit the model ({err})"
        ) from None
