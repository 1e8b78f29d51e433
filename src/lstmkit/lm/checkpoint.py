"""A training run on disk: JSON for settings, safetensors for tensors, never pickle.

    RUN/
      config.json            model config, vocabulary, training settings, corpus summary
      checkpoint/
        model.safetensors    the model's weights (a tied head is stored once)
        trainer.safetensors  optimizer moments, RNG states, the carried hidden state
        trainer.json         step, epoch, batch, tokens, elapsed time, schedule length
      metrics.jsonl          one JSON object per line: training and validation metrics
      loss.png               the loss curves

Loading reads only JSON and safetensors, so opening a checkpoint cannot run code from it.

Writes are atomic, so a run killed at any moment leaves a whole checkpoint behind: every
file is written to a temporary name, flushed to disk and renamed over the old one
(``os.replace``); the checkpoint folder is built as ``checkpoint.tmp`` and swapped in with
two renames (old to ``checkpoint.old``, new to ``checkpoint``). A reader that finds no
``checkpoint`` takes ``checkpoint.old``, the only state in which a crash can leave it.

Every way a run folder can be wrong (missing, damaged, from another model, another format)
raises :class:`CheckpointError` with a message naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from lstmkit._atomic import fsync_dir as _fsync_dir
from lstmkit._atomic import write_atomic  # also imported from here by lm.train and viz.html
from lstmkit.lm.model import LanguageModel, LMConfig
from lstmkit.lm.vocab import Vocabulary

FORMAT = "lstmkit-lm/1"
CONFIG = "config.json"
CHECKPOINT = "checkpoint"
MODEL_FILE = "model.safetensors"
TRAINER_FILE = "trainer.safetensors"
TRAINER_JSON = "trainer.json"
_TIED = "head.weight"  # the tied head is the embedding matrix; stored once


class CheckpointError(ValueError):
    """A run folder or checkpoint that cannot be used, and why."""


@dataclass(frozen=True)
class RunConfig:
    """What config.json holds."""

    model: LMConfig
    vocabulary: Vocabulary
    training: dict
    """The training settings as given (lstmkit.lm.train.TrainConfig's fields)."""
    corpus: dict
    """A summary of the corpus: name, description, token counts."""

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model.to_json(),
            "vocabulary": self.vocabulary.to_json(),
            "training": self.training,
            "corpus": self.corpus,
        }


# -- atomic writes (lstmkit._atomic) --------------------------------------------------------


def write_json_atomic(path: Path, value: object) -> None:
    write_atomic(path, (json.dumps(value, indent=2) + "\n").encode())


# -- saving ------------------------------------------------------------------------------------


def save_config(run: Path, config: RunConfig) -> None:
    Path(run).mkdir(parents=True, exist_ok=True)
    write_json_atomic(Path(run) / CONFIG, config.to_json())


def model_tensors(model: LanguageModel) -> dict[str, Tensor]:
    """The weights to save: the state dict on the CPU, a tied head left out."""
    state = model.state_dict()
    if model.config.tie_weights:
        del state[_TIED]
    return {k: v.detach().to("cpu").contiguous() for k, v in state.items()}


def save_checkpoint(
    run: Path, weights: dict[str, Tensor], trainer: dict[str, Tensor], trainer_json: dict
) -> None:
    """Write a whole checkpoint into ``run/checkpoint``, atomically (see the module doc)."""
    run = Path(run)
    tmp, final, old = run / f"{CHECKPOINT}.tmp", run / CHECKPOINT, run / f"{CHECKPOINT}.old"
    if tmp.exists():
        shutil.rmtree(tmp)  # a crash's leftovers
    tmp.mkdir(parents=True)
    meta = {"format": FORMAT}
    write_atomic(tmp / MODEL_FILE, save_safetensors(weights, metadata=meta))
    write_atomic(tmp / TRAINER_FILE, save_safetensors(trainer, metadata=meta))
    write_json_atomic(tmp / TRAINER_JSON, trainer_json)
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(run)
    if old.exists():
        shutil.rmtree(old)


# -- loading -----------------------------------------------------------------------------------


def _check_run_folder(run: Path) -> None:
    if not run.exists():
        raise CheckpointError(f"{run}: no such run folder")
    if not run.is_dir():
        raise CheckpointError(f"{run}: expected a run folder (made by 'lstmkit train'), got a file")


def checkpoint_dir(run: Path) -> Path:
    """The folder holding the run's latest whole checkpoint."""
    run = Path(run)
    _check_run_folder(run)
    for name in (CHECKPOINT, f"{CHECKPOINT}.old"):
        if (run / name / MODEL_FILE).is_file():
            return run / name
    raise CheckpointError(f"{run}: no checkpoint in this folder; is it a run of 'lstmkit train'?")


def load_config(run: Path) -> RunConfig:
    _check_run_folder(Path(run))
    path = Path(run) / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{run}: no {CONFIG}; is it a run folder of 'lstmkit train'?")
    data = _read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else None
        raise CheckpointError(f"{path}: expected format {FORMAT!r}, got {got!r}")
    try:
        model = LMConfig.from_json(data.get("model"))
        vocabulary = Vocabulary.from_json(data.get("vocabulary"))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from None
    if len(vocabulary) != model.vocab_size:
        raise CheckpointError(
            f"{path}: the vocabulary has {len(vocabulary)} tokens but the model expects "
            f"{model.vocab_size}"
        )
    return RunConfig(model, vocabulary, data.get("training", {}), data.get("corpus", {}))


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: damaged, not valid JSON ({err})") from None


def read_tensors(path: Path) -> dict[str, Tensor]:
    """The tensors of a safetensors file; a damaged file raises CheckpointError."""
    try:
        return load_safetensors(Path(path).read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing") from None
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: damaged, not a readable safetensors file ({err})") from None


def load_weights(model: LanguageModel, path: Path) -> None:
    """Load ``path`` into ``model``, checking that every tensor's name and shape fit."""
    weights = read_tensors(path)
    expected = model_tensors(model)
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    wrong = [
        f"{k} {tuple(weights[k].shape)} (the config needs {tuple(v.shape)})"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or extra or wrong:
        problems = [f"missing {missing[:3]}"] if missing else []
        problems += [f"unexpected {extra[:3]}"] if extra else []
        problems += wrong[:3]
        raise CheckpointError(
            f"{path}: the weights do not fit the run's config.json (from another model?): "
            + "; ".join(problems)
        )
    model.load_state_dict(weights, strict=False)


def load_model(run: Path, device: str | torch.device = "cpu") -> tuple[LanguageModel, RunConfig]:
    """The trained model of run folder ``run`` (in eval mode) and its config."""
    config = load_config(run)
    folder = checkpoint_dir(run)
    model = LanguageModel(config.model)
    load_weights(model, folder / MODEL_FILE)
    return model.to(device).eval(), config


def load_trainer(folder: Path) -> tuple[dict[str, Tensor], dict]:
    """The trainer's tensors and JSON in checkpoint folder ``folder`` (see
    :func:`checkpoint_dir`)."""
    tensors = read_tensors(folder / TRAINER_FILE)
    path = folder / TRAINER_JSON
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return tensors, data
