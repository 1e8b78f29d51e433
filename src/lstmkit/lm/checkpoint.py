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

Writes are atomic, so a run killed at any moment leaves a whole checkpoint behind; the
scheme, shared with the forecasters, is :mod:`lstmkit.checkpoints`'s.

Every way a run folder can be wrong (missing, damaged, from another model, another format)
raises :class:`CheckpointError` with a message naming the file and the problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from lstmkit import checkpoints
from lstmkit._atomic import write_atomic  # also imported from here by lm.train and viz.html
from lstmkit.checkpoints import (
    CHECKPOINT,
    MODEL_FILE,
    TRAINER_FILE,
    TRAINER_JSON,
    CheckpointError,
    load_trainer,
    read_config,
    read_tensors,
    write_json_atomic,
)
from lstmkit.lm.model import LanguageModel, LMConfig
from lstmkit.lm.vocab import Vocabulary

# names of lstmkit.checkpoints that the language-model code imports from here
__all__ = [
    "CHECKPOINT", "MODEL_FILE", "TRAINER_FILE", "TRAINER_JSON", "CheckpointError",
    "load_trainer", "read_tensors", "write_atomic", "write_json_atomic",
]  # fmt: skip

FORMAT = "lstmkit-lm/1"
CONFIG = "config.json"
MADE_BY = "'lstmkit train'"
_TIED = "head.weight"  # the tied head is the embedding matrix; stored once


def save_checkpoint(
    run: Path, weights: dict[str, Tensor], trainer: dict[str, Tensor], trainer_json: dict
) -> None:
    """A language model's checkpoint (:func:`lstmkit.checkpoints.save_checkpoint`)."""
    checkpoints.save_checkpoint(run, weights, trainer, trainer_json, format=FORMAT)


def checkpoint_dir(run: Path) -> Path:
    """The folder holding the run's latest whole checkpoint."""
    return checkpoints.checkpoint_dir(run, MADE_BY)


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


# -- loading -----------------------------------------------------------------------------------


def load_config(run: Path) -> RunConfig:
    data = read_config(run, CONFIG, FORMAT, MADE_BY)
    path = Path(run) / CONFIG
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
