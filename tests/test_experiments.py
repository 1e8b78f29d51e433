"""The experiment engine: losses, the stop rule, the trainer, the horizon search and the
gradient measurement, on a small task defined here (the real tasks have their own tests)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import pytest
import torch
from torch.nn import functional as F

from lstmkit.experiments import objectives
from lstmkit.experiments.cells import CELL_NAMES, MODERN_CELLS, check_cell
from lstmkit.experiments.gradients import gradient_profile
from lstmkit.experiments.horizon import HorizonConfig, measure_cell, search_lags
from lstmkit.experiments.stop import StopRule
from lstmkit.experiments.train import TaskModel, TrainConfig, run_task, train_modern
from lstmkit.tasks.base import TargetKind, Task, TaskBatch, last_step_mask


@dataclass(frozen=True)
class FirstSymbol(Task):
    """Name the first of ``length`` random symbols (out of 3) after the last one."""

    name: ClassVar[str] = "first-symbol"
    kind: ClassVar[TargetKind] = TargetKind.CLASS
    stop_window: ClassVar[int] = 256
    test_size: ClassVar[int] = 300

    @property
    def input_size(self) -> int:
        return 3

    @property
    def output_size(self) -> int:
        return 3

    def sample(self, batch_size: int, generator: torch.Generator) -> TaskBatch:
        symbols = torch.randint(3, (batch_size, self.length), generator=generator)
        inputs = F.one_hot(symbols, 3).float()
        lengths = torch.full((batch_size,), self.length)
        mask = last_step_mask(lengths, self.length)
        targets = torch.zeros(batch_size, self.length, 3)
        targets[:, -1] = F.one_hot(symbols[:, 0], 3).float()
        return TaskBatch(inputs, lengths, targets, mask)

    def sequence_correct(self, prediction, batch):
        step = prediction.argmax(-1) == batch.targets.argmax(-1)
        return (step | ~batch.target_mask).all(dim=1)


QUICK = TrainConfig(hidden=16, max_sequences=6000, progress=False, lr=1e-2)


# -- losses and read-outs -------------------------------------------------------------------


def _batch(targets: torch.Tensor, mask: torch.Tensor) -> TaskBatch:
    b, t = mask.shape
    return TaskBatch(torch.zeros(b, t, 1), torch.full((b,), t), targets, mask)


def test_losses_count_target_steps_only():
    mask = torch.tensor([[False, True], [True, True]])
    targets = torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    outputs = torch.randn(2, 2, 2)
    picked_out, picked_target = outputs[mask], targets[mask]
    batch = _batch(targets, mask)
    value = objectives.loss(outputs, batch, TargetKind.VALUE)
    assert torch.allclose(value, (picked_out - picked_target).pow(2).sum(1).mean())
    ce = objectives.loss(outputs, batch, TargetKind.CLASS)
    assert torch.allclose(ce, F.cross_entropy(picked_out, picked_target.argmax(1)))
    bce = objectives.loss(outputs, batch, TargetKind.MULTI, reduction="sum")
    expected = F.binary_cross_entropy_with_logits(picked_out, picked_target, reduction="sum")
    assert torch.allclose(bce, expected)
    outputs[0, 0] = 1e6  # a step without a target changes nothing
    assert torch.allclose(objectives.loss(outputs, batch, TargetKind.VALUE), value)


def test_predictions_live_in_the_targets_space():
    x = torch.randn(2, 3, 4)
    assert torch.equal(objectives.prediction(x, TargetKind.VALUE), x)
    assert torch.allclose(objectives.prediction(x, TargetKind.CLASS).sum(-1), torch.ones(2, 3))
    assert torch.allclose(objectives.prediction(x, TargetKind.MULTI), torch.sigmoid(x))


# -- the stop rule and the trainer -----------------------------------------------------------


def _verdicts(text: str) -> torch.Tensor:
    return torch.tensor([c == "1" for c in text])


def test_stop_rule_needs_a_full_window_of_correct_sequences():
    rule = StopRule(window=4)
    assert not rule.update(_verdicts("111"))  # not yet 4 seen
    assert rule.update(_verdicts("1"))
    rule = StopRule(window=4)
    assert not rule.update(_verdicts("11101"))
    assert not rule.update(_verdicts("11"))  # the 0 is still among the last 4
    assert rule.update(_verdicts("1"))


def test_stop_rule_with_an_allowance_counts_wrong_ones_in_the_window_only():
    rule = StopRule(window=5, max_wrong=1)
    assert not rule.update(_verdicts("00111"))
    assert rule.wrong == 2
    assert rule.update(_verdicts("1"))  # the first 0 left the window
    assert rule.wrong == 1
    with pytest.raises(ValueError, match="window"):
        StopRule(window=0)


def test_cells_are_known_by_name():
    assert check_cell("lstm1997") == "lstm1997"
    assert set(MODERN_CELLS) < set(CELL_NAMES)
    with pytest.raises(ValueError, match=r"unknown cell 'lstm2'.*lstm, gru, rnn"):
        check_cell("lstm2")


def test_lstm_solves_a_short_lag_and_the_result_is_consistent():
    task = FirstSymbol(length=8)
    _, result = train_modern(task, replace(QUICK, cell="lstm"))
    assert result.stopped and result.solved
    assert result.sequences % QUICK.batch_size == 0 and result.sequences < QUICK.max_sequences
    assert result.test_size == 300 and result.test_wrong == round(result.test_error * 300)
    assert result.test_error <= task.solved_error_rate
    assert (result.task, result.cell, result.length, result.seed) == ("first-symbol", "lstm", 8, 0)
    assert result.options["hidden"] == 16 and result.options["length"] == 8


def test_training_is_reproducible_for_a_seed_and_differs_across_seeds():
    task = FirstSymbol(length=5)
    cfg = replace(QUICK, cell="gru", max_sequences=640)
    first, second = train_modern(task, cfg)[1], train_modern(task, cfg)[1]
    assert replace(first, seconds=0) == replace(second, seconds=0)
    other = train_modern(task, replace(cfg, seed=1))[1]
    assert other.test_loss != first.test_loss


def test_budget_stops_training_without_the_stop_rule():
    result = train_modern(FirstSymbol(length=30), replace(QUICK, cell="rnn", max_sequences=64))
    assert result[1].sequences == 64 and not result[1].stopped
    timed = train_modern(FirstSymbol(length=30), replace(QUICK, cell="rnn", budget_seconds=0.0))
    assert timed[1].sequences == 0 and not timed[1].stopped


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hidden", 0),
        ("batch_size", -1),
        ("lr", 0.0),
        ("seed", -3),
        ("cell", "tree"),
        ("budget_seconds", -1.0),
        ("max_sequences", 1.5),
    ],
)
def test_bad_training_configs_are_refused(field, value):
    with pytest.raises(ValueError, match=field if field != "cell" else "unknown cell"):
        replace(QUICK, **{field: value})


# -- the horizon search -------------------------------------------------------------------------


def _search(threshold: int, start=10, max_length=1000, bisect_steps=2):
    tried = []

    def solves(lag):
        tried.append(lag)
        return lag <= threshold

    return search_lags(solves, start, max_length, bisect_steps), tried


def test_search_doubles_then_bisects():
    assert _search(37) == (35, [10, 20, 40, 30, 35])
    assert _search(37, bisect_steps=0) == (20, [10, 20, 40])


def test_search_credits_the_full_range_and_reports_zero_when_start_fails():
    assert _search(5000, max_length=1000) == (1000, [10, 20, 40, 80, 160, 320, 640, 1000])
    assert _search(5) == (0, [10])  # nothing below start is tried


def test_measure_cell_keeps_every_lag_it_tried():
    cfg = HorizonConfig(
        cells=("lstm",), seeds=2, start=2, max_length=4, bisect_steps=0, train=QUICK
    )
    found = measure_cell(lambda lag: FirstSymbol(length=lag), "lstm", cfg)
    assert set(found.success) <= {2, 4} and 2 in found.success
    assert len(found.runs) == 2 * len(found.success)
    assert {r.seed for r in found.runs} == {0, 1}
    assert found.horizon in (0, 2, 4)


@pytest.mark.parametrize(
    ("field", "value"), [("seeds", 0), ("start", 0), ("min_success", 0.0), ("bisect_steps", -1)]
)
def test_bad_horizon_configs_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        HorizonConfig(**{field: value})


# -- the gradient measurement -------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell", ["rnn", "gru", "lstm", "peephole", "gru-cho", "mgu", "slstm", "minlstm"]
)
def test_gradient_profile_matches_restarting_the_layer_at_each_step(cell):
    # Oracle: dL/dh_t is the gradient of the loss with respect to the initial state of
    # the layer run on the rest of the sequence, x_{t+1..T}, from (h_t, c_t).
    task = FirstSymbol(length=6)
    torch.manual_seed(0)
    model = TaskModel(cell, task, hidden=5, forget_bias=1.0)
    batch = task.sample(4, torch.Generator().manual_seed(1))
    profile = gradient_profile(model, task, batch)
    assert len(profile.hidden) == task.length
    assert (profile.cell_state is not None) == (cell in ("lstm", "peephole"))
    _, state = model.rnn(batch.inputs[:, :3])  # state after steps 0, 1, 2
    state = (
        tuple(s.detach().requires_grad_() for s in state)
        if isinstance(state, tuple)
        else (state.detach().requires_grad_(),)
    )
    hx = state if len(state) > 1 else state[0]
    rest, _ = model.rnn(batch.inputs[:, 3:], hx)
    logits = model.readout(rest[:, -1])
    loss = F.cross_entropy(logits, batch.targets[:, -1].argmax(-1), reduction="sum")
    grads = torch.autograd.grad(loss, state)
    distance = task.length - 3  # h_2 is this many steps before the target step
    assert profile.hidden[distance] == pytest.approx(
        grads[0][0].norm(dim=1).mean().item(), rel=1e-4
    )
    if profile.cell_state is not None:  # the LSTMs
        assert profile.cell_state[distance] == pytest.approx(
            grads[1][0].norm(dim=1).mean().item(), rel=1e-4
        )


def test_the_1997_network_runs_its_seeds_as_parallel_trials_with_the_same_results():
    cfg = HorizonConfig(
        cells=("lstm1997",),
        seeds=2,
        start=3,
        max_length=3,
        bisect_steps=0,
        train=replace(QUICK, seed=4, max_sequences=40),
    )
    found = measure_cell(lambda lag: FirstSymbol(length=lag), "lstm1997", cfg)
    assert [r.seed for r in found.runs] == [4, 5]
    for run in found.runs:
        alone = run_task(FirstSymbol(length=3), replace(cfg.train, cell="lstm1997", seed=run.seed))
        assert (alone.sequences, alone.test_wrong, alone.test_loss) == (
            run.sequences,
            run.test_wrong,
            pytest.approx(run.test_loss),
        )
