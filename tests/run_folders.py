"""Run folders for tests that read a trained model: an untrained model saved exactly as
``lstmkit train`` saves one (the pages and plots read any weights the same way)."""

from __future__ import annotations

from pathlib import Path

import torch

from lstmkit.lm.checkpoint import RunConfig, model_tensors, save_checkpoint, save_config
from lstmkit.lm.model import LanguageModel, LMConfig
from lstmkit.lm.vocab import Vocabulary

TEXT = 'She said "hello (and more)" to me.\nI grew up in France. I speak fluent French.\n'


def make_run(
    folder: Path,
    *,
    cell: str = "lstm",
    hidden: int = 12,
    layers: int = 2,
    text: str = TEXT,
    level: str = "char",
    seed: int = 0,
) -> Path:
    """A run folder holding a freshly initialised model over ``text``'s vocabulary."""
    torch.manual_seed(seed)
    vocabulary = Vocabulary.from_text(text, level)
    config = LMConfig(len(vocabulary), cell=cell, hidden_size=hidden, num_layers=layers)
    model = LanguageModel(config)
    save_config(folder, RunConfig(config, vocabulary, {}, {"name": "test"}))
    save_checkpoint(folder, model_tensors(model), {}, {})
    return Path(folder)
