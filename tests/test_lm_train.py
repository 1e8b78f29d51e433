"""Training runs: exact resume, atomic checkpoints, damaged and foreign checkpoints, and
two processes under torchrun training the model one process trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from lstmkit import checkpoints
from lstmkit.lm import checkpoint as ckpt
from lstmkit.lm import train as train_module
from lstmkit.lm.checkpoint import CheckpointError, load_model
from lstmkit.lm.stories import StoryConfig, generate_stories
from lstmkit.lm.train import TrainConfig, Trainer, train


@pytest.fixture(scope="module")
def text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "stories.txt"
    path.write_text(generate_stories(StoryConfig(words=3000, seed=5)))
    return path


def _config(text_file: Path, **kw) -> TrainConfig:
    settings = dict(
        corpus=str(text_file),
        hidden_size=16,
        num_layers=2,
        dropout=0.1,  # so that resuming must restore the RNG too
        batch_size=4,
        seq_len=16,
        warmup_steps=3,
        steps=40,
        eval_every=10,
        eval_tokens=200,
        log_every=5,
        seed=3,
    )
    settings.update(kw)
    return TrainConfig(**settings)


class _Killed(Exception):
    pass


def _kill_at(step: int):
    def callback(record: dict) -> None:
        if record["step"] == step and "train_loss" in record:
            raise _Killed

    return callback


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.read_tensors(ckpt.checkpoint_dir(run) / ckpt.MODEL_FILE)


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_resume_takes_exactly_the_steps_of_an_uninterrupted_run(text_file, tmp_path, precision):
    # ~27 batches per epoch: 40 cross one
    config = _config(text_file, seq_len=64, batch_size=8, precision=precision)
    straight = train(config, tmp_path / "straight", progress=False)
    with pytest.raises(_Killed):  # killed at step 25, five steps after the checkpoint at 20
        train(config, tmp_path / "resumed", progress=False, callbacks=(_kill_at(25),))
    assert json.loads((tmp_path / "resumed/checkpoint/trainer.json").read_text())["step"] == 20
    resumed = train(config, tmp_path / "resumed", resume=True, progress=False)
    assert resumed.position.epoch == straight.position.epoch == 1
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # the killed run's records after step 20 were dropped, and written again on resuming
    assert _steps(tmp_path / "resumed") == _steps(tmp_path / "straight")


@pytest.mark.parametrize(
    ("precision", "native", "warns"),
    [("bf16-mixed", False, True), ("bf16-mixed", True, False), ("32", False, False)],
)
def test_bf16_mixed_warns_on_a_cpu_that_emulates_bfloat16(
    text_file, tmp_path, monkeypatch, precision, native, warns
):
    monkeypatch.setattr(train_module, "cpu_has_bfloat16", lambda: native)
    config = _config(text_file, precision=precision, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(config, tmp_path / "run", progress=False)
    emulated = [w for w in caught if "every bfloat16 product is emulated" in str(w.message)]
    assert len(emulated) == warns


def test_bf16_mixed_keeps_float32_weights_and_tracks_the_float32_run(text_file, tmp_path):
    """The same run in both precisions: the weights stay float32 under bf16-mixed, the
    losses differ (so bfloat16 was used) but stay within a few percent of each other."""
    full = train(_config(text_file), tmp_path / "full", progress=False)
    mixed = train(_config(text_file, precision="bf16-mixed"), tmp_path / "mixed", progress=False)
    weights = _weights(tmp_path / "mixed")
    assert all(w.dtype == torch.float32 for w in weights.values())
    assert any(not torch.equal(w, _weights(tmp_path / "full")[k]) for k, w in weights.items())
    assert mixed.valid.loss != full.valid.loss
    assert abs(mixed.valid.loss - full.valid.loss) < 0.03 * full.valid.loss


def test_an_unknown_precision_is_named():
    with pytest.raises(ValueError, match=r"precision must be one of 32, bf16-mixed, got 'fp8'"):
        TrainConfig(precision="fp8")


def _steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


def test_a_crash_while_saving_leaves_the_previous_checkpoint(text_file, tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(_config(text_file, steps=10), run, progress=False)
    before = _weights(run)
    real = ckpt.write_atomic

    def failing(path, data):
        if Path(path).name == ckpt.TRAINER_FILE:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(checkpoints, "write_atomic", failing)  # where the files are written
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_checkpoint(run, {"x": torch.zeros(1)}, {}, {})
    monkeypatch.setattr(checkpoints, "write_atomic", real)
    after = _weights(run)
    assert all(torch.equal(before[k], after[k]) for k in before)
    load_model(run)  # still whole


def test_a_crash_between_the_two_renames_is_recovered(text_file, tmp_path):
    run = tmp_path / "run"
    train(_config(text_file, steps=5), run, progress=False)
    os.replace(run / "checkpoint", run / "checkpoint.old")  # the state between the renames
    model, _ = load_model(run)
    assert model.config.hidden_size == 16


def test_damaged_and_foreign_checkpoints_are_named(text_file, tmp_path):
    small, big = tmp_path / "small", tmp_path / "big"
    train(_config(text_file, steps=2), small, progress=False)
    train(_config(text_file, steps=2, hidden_size=24), big, progress=False)
    weights = small / "checkpoint" / ckpt.MODEL_FILE
    weights.write_bytes((big / "checkpoint" / ckpt.MODEL_FILE).read_bytes())
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(small)
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="damaged"):
        load_model(small)
    (big / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(big)
    with pytest.raises(CheckpointError, match="no such run"):
        load_model(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        load_model(tmp_path)


def test_resume_refuses_another_world_size(text_file, tmp_path):
    run = tmp_path / "run"
    train(_config(text_file, steps=2), run, progress=False)
    data = json.loads((run / "checkpoint/trainer.json").read_text())
    data["world_size"] = 2
    (run / "checkpoint/trainer.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="same number of processes"):
        train(_config(text_file, steps=4), run, resume=True, progress=False)


def test_two_processes_train_the_model_one_process_trains(text_file, tmp_path):
    """torchrun with two gloo processes, each reading half the rows of every batch, ends
    with the weights of one process reading whole batches (dropout off: the two draw
    their masks from different streams)."""
    options = [
        str(text_file),
        "--steps", "6", "--hidden", "16", "--layers", "2", "--batch-size", "4",
        "--seq-len", "16", "--warmup", "2", "--eval-tokens", "100", "--samples", "0",
        "--quiet", "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = [sys.executable, "-m", "lstmkit", "train", *options, "--out", str(tmp_path / "one")]
    two = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "lstmkit", "train", *options, "--out", str(tmp_path / "two"),
    ]  # fmt: skip
    for command in (one, two):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-2000:]
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    saved = json.loads((tmp_path / "two/checkpoint/trainer.json").read_text())
    assert saved["world_size"] == 2 and saved["step"] == 6


def test_a_stack_records_the_layers_it_builds(text_file, tmp_path):
    """The depth-gated LSTM has no memory below its first layer without a second, so the
    registry builds two even when one is asked for; the run's config says what was built."""
    run = tmp_path / "run"
    train(_config(text_file, cell="depth-gated", num_layers=1, steps=2, eval_every=2), run)
    model, config = load_model(run)
    assert model.rnn.num_layers == 2 == config.model.num_layers
