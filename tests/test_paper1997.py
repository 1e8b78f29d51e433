"""The lstm1997 mode: the 1997 network, its truncated gradient, the paper's specs, training."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from lstmkit.paper1997 import (
    SPECS,
    Architecture,
    MemoryBlockNetwork,
    StopRule,
    architecture_for,
    g_squash,
    h_squash,
    logistic,
    spec_for,
    train_online,
    train_trials,
)
from lstmkit.paper1997.online import derive_seed, mean_end_state
from lstmkit.paper1997.specs import (
    ADDING,
    DEFAULT_ARCHITECTURE,
    LONG_LAG,
    NOISE_SIGNAL_3A,
    REBER_3X2,
    REBER_4X1,
    TEMPORAL_ORDER,
    TEMPORAL_ORDER_8,
)
from lstmkit.tasks import make_task
from lstmkit.tasks.base import TargetKind, Task, TaskBatch, last_step_mask, value_correct

# -- tiny tasks of our own ----------------------------------------------------------------


@dataclass(frozen=True)
class FirstSign(Task):
    """Remember the sign of the first input until the end of a sequence of ``length`` to
    ``length + 2`` steps; the target there is 1 for +1 and 0 for -1."""

    name = "first-sign"
    kind = TargetKind.VALUE
    stop_window = 50
    test_size = 200

    @property
    def input_size(self) -> int:
        return 1

    @property
    def output_size(self) -> int:
        return 1

    def sample(self, batch_size: int, generator: torch.Generator) -> TaskBatch:
        lengths = torch.randint(self.length, self.length + 3, (batch_size,), generator=generator)
        steps = int(lengths.max())
        sign = torch.randint(0, 2, (batch_size,), generator=generator)
        inputs = torch.zeros(batch_size, steps, 1)
        inputs[:, 0, 0] = sign * 2.0 - 1.0
        mask = last_step_mask(lengths, steps)
        targets = torch.zeros(batch_size, steps, 1)
        targets[mask] = sign[:, None].float()
        return TaskBatch(inputs, lengths, targets, mask)

    def sequence_correct(self, prediction, batch):
        return value_correct(prediction, batch.targets, batch.target_mask, 0.3)


@dataclass(frozen=True)
class OutOfRange(FirstSign):
    """Targets of 2.0: out of reach of logistic output units."""

    name = "out-of-range"

    def sample(self, batch_size, generator):
        batch = super().sample(batch_size, generator)
        return TaskBatch(batch.inputs, batch.lengths, batch.targets + 2.0, batch.target_mask)


@dataclass(frozen=True)
class NamedLike(FirstSign):
    """A stand-in with a paper task's name and sizes, for ``architecture_for``."""

    name = "long-lag"
    inputs: int = 104
    outputs: int = 2

    @property
    def input_size(self) -> int:
        return self.inputs

    @property
    def output_size(self) -> int:
        return self.outputs


EASY = Architecture(1, 1, blocks=1, cells_per_block=1, input_gate_bias=(-1.0,))


def random_batch(arch: Architecture, k: int, b: int, steps: int, dtype, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(k, b, steps, arch.inputs, generator=gen, dtype=dtype)
    lengths = torch.randint(1, steps + 1, (k, b), generator=gen)
    lengths[0, 0] = steps  # at least one full-length sequence
    inputs = inputs * (torch.arange(steps) < lengths[..., None]).to(dtype)[..., None]
    return inputs, lengths


# -- architecture ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "weights"),
    [
        (ADDING.architecture, 93),  # Table 7
        (TEMPORAL_ORDER.architecture, 156),  # Table 9, Task 6a
        (TEMPORAL_ORDER_8.architecture, 308),  # Table 9, Task 6b
        (REBER_4X1.architecture, 264),  # Sec. 5.1, Table 1
        (REBER_3X2.architecture, 276),  # Sec. 5.1, Table 1
        (NOISE_SIGNAL_3A.architecture, 102),  # Tables 4-6
        (LONG_LAG.architecture, 364),  # Table 3, p = 50
        (LONG_LAG.architecture.with_io(1004, 2), 6064),  # Table 3, p = 1000
    ],
    ids=["adding", "6a", "6b", "reber-4x1", "reber-3x2", "3a", "2c-p50", "2c-p1000"],
)
def test_weight_counts_match_the_paper(arch, weights):
    assert arch.num_weights() == weights
    net = MemoryBlockNetwork(arch, trials=2)
    assert net.num_weights() == weights
    assert sum(p.numel() for p in net.parameters()) == 2 * weights


def test_reber_counts_need_biases_on_the_gates_only():
    """Sec. 5.1 says 'The gate units are biased'. Of all choices of which units have biases,
    only that one gives both 264 (4 blocks of 1) and 276 (3 blocks of 2): cell biases alone
    also give 276, but not 264."""
    fitting = []
    for blocks, size, weights in ((4, 1, 264), (3, 2, 276)):
        fitting.append(
            {
                (gate, cell, out)
                for gate in (False, True)
                for cell in (False, True)
                for out in (False, True)
                if Architecture(7, 7, blocks, size, gate, cell, out).num_weights() == weights
            }
        )
    assert fitting[1] == {(True, False, False), (False, True, False)}
    assert fitting[0] & fitting[1] == {(True, False, False)}


def test_every_paper_row_has_the_weights_of_its_spec():
    for specs in SPECS.values():
        for spec in specs:
            for row in spec.results:
                arch = spec.architecture
                if "p" in row.details:  # Task 2c: p + 4 input units
                    arch = arch.with_io(int(row.details["p"]) + 4, arch.outputs)
                assert arch.num_weights() == row.weights, (spec.experiment, row)


def test_squashing_functions_have_the_papers_ranges():
    x = torch.linspace(-60, 60, 2001, dtype=torch.float64)
    for fn, low, high in ((logistic, 0.0, 1.0), (h_squash, -1.0, 1.0), (g_squash, -2.0, 2.0)):
        y = fn(x)
        assert y.min() >= low and y.max() <= high
        torch.testing.assert_close(y[[0, -1]], torch.tensor([low, high], dtype=x.dtype))
        assert (y[1:] > y[:-1]).sum() > 1000  # increasing, not a constant
    zero = torch.zeros(1, dtype=torch.float64)
    assert h_squash(zero).item() == 0.0 and g_squash(zero).item() == 0.0


def test_initialisation_follows_the_architecture():
    net = MemoryBlockNetwork(TEMPORAL_ORDER_8.architecture, trials=3, seeds=[1, 2, 3])
    torch.testing.assert_close(net.b_gate[:, :, 0], torch.tensor([[-2.0, -4.0, -6.0]] * 3))
    drawn = [net.w_input, net.w_recurrent, net.w_output, net.b_cell, net.b_gate[:, :, 1]]
    assert all(p.abs().max() <= 0.1 for p in drawn)
    assert not torch.equal(net.w_input[0], net.w_input[1])  # trials differ
    again = MemoryBlockNetwork(TEMPORAL_ORDER_8.architecture, trials=1, seeds=[2])
    assert torch.equal(again.w_recurrent[0], net.w_recurrent[1])  # ... by their own seed
    nothing = MemoryBlockNetwork(LONG_LAG.architecture)
    assert nothing.b_gate is None and nothing.b_cell is None and nothing.b_output is None


# -- forward --------------------------------------------------------------------------------


def test_forward_step_by_hand():
    """One block, one cell, two steps, every weight set by hand; App. A.1 eqs. (3)-(9)."""
    arch = Architecture(1, 1, blocks=1, cells_per_block=1)
    net = MemoryBlockNetwork(arch, dtype=torch.float64)
    with torch.no_grad():
        net.w_input[0] = torch.tensor([[0.5, -0.3, 0.8]])  # x -> [in, out, c]
        net.w_recurrent[0] = torch.tensor([[0.1, 0.2, 0.3], [0.0, -0.1, 0.2], [0.4, 0.5, -0.6]])
        net.b_gate[0] = torch.tensor([[-1.0, 0.5]])  # [in, out]
        net.b_cell[0] = torch.tensor([[0.2]])
        net.w_output[0] = torch.tensor([[1.5]])
        net.b_output[0] = torch.tensor([-0.25])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    y_in, y_out, y_c, s = 0.0, 0.0, 0.0, 0.0
    expected = []
    for x in (1.0, -2.0):
        prev = (y_in, y_out, y_c)  # y(t-1): in gate, out gate, cell output
        net_in = 0.5 * x + 0.1 * prev[0] + 0.0 * prev[1] + 0.4 * prev[2] - 1.0
        net_out = -0.3 * x + 0.2 * prev[0] - 0.1 * prev[1] + 0.5 * prev[2] + 0.5
        net_c = 0.8 * x + 0.3 * prev[0] + 0.2 * prev[1] - 0.6 * prev[2] + 0.2
        y_in, y_out = sig(net_in), sig(net_out)
        s = s + y_in * (4 * sig(net_c) - 2)
        y_c = y_out * (2 * sig(s) - 1)
        expected.append(sig(1.5 * y_c - 0.25))
    inputs = torch.tensor([1.0, -2.0], dtype=torch.float64).view(1, 1, 2, 1)
    lengths = torch.tensor([[2]])
    want = torch.tensor(expected, dtype=torch.float64).view(1, 1, 2, 1)
    torch.testing.assert_close(net(inputs, lengths), want)
    torch.testing.assert_close(net.forward_reference(inputs, lengths).output, want)


def test_trace_shows_the_constant_error_carrousel():
    arch = REBER_3X2.architecture
    net = MemoryBlockNetwork(arch, trials=2, seeds=[0, 1], dtype=torch.float64)
    inputs, lengths = random_batch(arch, 2, 3, 6, torch.float64)
    tr = net.trace(inputs, lengths)
    assert tr.input_gate.shape == (2, 3, 6, 3) and tr.state.shape == (2, 3, 6, 6)
    inside = (torch.arange(6) < lengths[..., None]).to(torch.float64)[..., None]
    written = tr.input_gate.repeat_interleave(2, dim=-1) * tr.cell_input * inside
    torch.testing.assert_close(tr.state, written.cumsum(dim=2))  # s(t) = s(t-1) + y_in g
    gate = tr.output_gate.repeat_interleave(2, dim=-1)
    torch.testing.assert_close(tr.cell_output, gate * h_squash(tr.state))
    torch.testing.assert_close(tr.output, net(inputs, lengths))


# -- the truncated gradient -----------------------------------------------------------------


class _Reference(nn.Module):
    """forward_reference as a module's forward, for torch.func.functional_call."""

    def __init__(self, net: MemoryBlockNetwork) -> None:
        super().__init__()
        self.net = net

    def forward(self, inputs, lengths, truncated):
        return self.net.forward_reference(inputs, lengths, truncated=truncated).output


def _as_function(net: MemoryBlockNetwork, inputs, lengths, path: str):
    """The network's output as a function of its parameters, for gradcheck."""
    names = [f"net.{n}" for n, _ in net.named_parameters()]
    wrapper = _Reference(net)

    def run(*params):
        values = dict(zip(names, params, strict=True))
        if path == "fast":
            return torch.func.functional_call(
                net, {n[4:]: p for n, p in values.items()}, (inputs, lengths)
            )
        return torch.func.functional_call(wrapper, values, (inputs, lengths, path == "truncated"))

    return run, [p.detach().clone().requires_grad_() for p in net.parameters()]


@pytest.mark.parametrize("path", ["truncated", "full", "fast"])
def test_one_step_gradient_matches_finite_differences(path):
    arch = ADDING.architecture
    net = MemoryBlockNetwork(arch, trials=2, seeds=[3, 4], dtype=torch.float64)
    inputs, _ = random_batch(arch, 2, 2, 1, torch.float64)
    run, params = _as_function(net, inputs, torch.ones(2, 2, dtype=torch.long), path)
    assert torch.autograd.gradcheck(run, params)


def test_truncation_changes_the_gradient_after_one_step():
    """Over several steps the truncated gradient is not the full one: gradcheck fails."""
    arch = ADDING.architecture
    net = MemoryBlockNetwork(arch, trials=1, seeds=[3], dtype=torch.float64)
    with torch.no_grad():
        net.w_recurrent.mul_(20)  # strong recurrent paths, so the cut ones matter
    inputs, _ = random_batch(arch, 1, 2, 4, torch.float64)
    lengths = torch.full((1, 2), 4)
    for path, exact in (("full", True), ("truncated", False), ("fast", False)):
        run, params = _as_function(net, inputs, lengths, path)
        assert torch.autograd.gradcheck(run, params, raise_exception=False) is exact, path


def test_errors_go_back_in_time_only_through_the_cell_state():
    arch = ADDING.architecture
    net = MemoryBlockNetwork(arch, trials=1, seeds=[5], dtype=torch.float64)
    inputs, _ = random_batch(arch, 1, 1, 4, torch.float64)
    lengths = torch.tensor([[4]])
    for truncated in (True, False):
        run = net.forward_reference(inputs, lengths, truncated=truncated)
        for tensor in run.hidden + run.state:
            tensor.retain_grad()
        run.output[:, :, -1].sum().backward()  # an error at the last step only
        earlier = [h.grad.abs().max().item() for h in run.hidden[:-1]]
        if truncated:
            # y(t-1) gets no error through the net inputs: only s(t-1) carries it back, and
            # unscaled: de/ds(t-1) = de/ds(t) (eq. 35)
            assert earlier == [0.0, 0.0, 0.0]
            assert run.state[0].grad.abs().max() > 0
            for t in range(3):
                torch.testing.assert_close(run.state[t].grad, run.state[3].grad)
        else:
            assert min(earlier) > 0


@pytest.mark.parametrize("loop", ["numpy", "torch"])
@pytest.mark.parametrize(
    "arch",
    [ADDING.architecture, REBER_3X2.architecture, LONG_LAG.architecture.with_io(5, 2)],
    ids=["all-biases", "gate-biases", "no-biases"],
)
def test_fast_path_matches_the_reference_loop(loop, arch):
    net = MemoryBlockNetwork(arch, trials=3, seeds=[0, 1, 2], dtype=torch.float64)
    inputs, lengths = random_batch(arch, 3, 4, 7, torch.float64, seed=1)
    fast = net(inputs, lengths, loop=loop)
    reference = net.forward_reference(inputs, lengths).output
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    upstream = torch.randn(fast.shape, generator=torch.Generator().manual_seed(2), dtype=fast.dtype)
    params = list(net.parameters())
    ours = torch.autograd.grad((fast * upstream).sum(), params)
    theirs = torch.autograd.grad((reference * upstream).sum(), params)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    subset = net(inputs[[2, 0]], lengths[[2, 0]], torch.tensor([2, 0]), loop=loop)
    torch.testing.assert_close(subset, fast[[2, 0]], rtol=1e-12, atol=1e-12)


# -- training -------------------------------------------------------------------------------


def test_trials_are_independent():
    """Each trial trains to the same weights beside two others as alone, although they stop
    at different times: the subset path runs, and a stopped trial's weights stay frozen."""
    task = FirstSign(length=4)
    rule = StopRule(window=task.stop_window)
    kwargs = dict(learning_rate=2.0, stop=rule, max_sequences=600, budget_seconds=None)
    init_seeds, data_seeds = [11, 12, 13], [21, 22, 23]
    three = MemoryBlockNetwork(EASY, 3, seeds=init_seeds, dtype=torch.float64)
    log = train_trials(task, three, data_seeds=data_seeds, progress=False, **kwargs)
    assert all(log.stopped) and len(set(log.sequences)) == 3  # stopped at different times
    for k in range(3):
        alone = MemoryBlockNetwork(EASY, 1, seeds=init_seeds[k : k + 1], dtype=torch.float64)
        log_alone = train_trials(
            task, alone, data_seeds=data_seeds[k : k + 1], progress=False, **kwargs
        )
        assert log_alone.sequences[0] == log.sequences[k]
        for a, b in zip(alone.parameters(), three.parameters(), strict=True):
            torch.testing.assert_close(a[0], b[k], rtol=1e-12, atol=1e-14)
    assert not torch.allclose(three.w_recurrent[0], three.w_recurrent[1])


def test_train_online_solves_an_easy_task():
    task = FirstSign(length=5)
    kwargs = dict(learning_rate=2.0, max_sequences=3000, budget_seconds=60, progress=False)
    results = train_online(task, EASY, trials=2, seed=7, **kwargs)
    assert [r.options["trial"] for r in results] == [0, 1]
    assert [r.seed for r in results] == [7, 8]
    for r in results:
        assert r.cell == "lstm1997" and r.task == "first-sign" and r.length == 5
        assert r.stopped and r.solved
        assert task.stop_window <= r.sequences < 3000
        assert r.test_size == task.test_size and r.test_wrong <= 2
        assert r.test_error == r.test_wrong / r.test_size
        assert 0 <= r.test_loss < 0.05 and r.seconds > 0
        assert r.options["weights"] == EASY.num_weights() and r.options["learning_rate"] == 2.0
        r.to_json_dict()
    # trial 1 of seed 7 is the run with seed 8
    again = train_online(task, EASY, trials=1, seed=8, **kwargs)[0]
    assert (again.sequences, again.test_wrong) == (results[1].sequences, results[1].test_wrong)
    assert again.test_loss == pytest.approx(results[1].test_loss, rel=1e-5)


@pytest.mark.parametrize("limit", [dict(budget_seconds=0), dict(max_sequences=0)])
def test_zero_budget_or_limit_stops_at_once(limit):
    task = FirstSign(length=3)
    kwargs = dict(budget_seconds=None, max_sequences=1000) | limit
    results = train_online(task, None, trials=2, seed=0, progress=False, **kwargs)
    assert [(r.sequences, r.stopped, r.solved) for r in results] == [(0, False, False)] * 2
    assert all(r.test_size == task.test_size for r in results)


# -- specs ----------------------------------------------------------------------------------


def test_specs_carry_the_papers_conditions_and_results():
    adding = spec_for("adding", length=100)
    assert adding.learning_rate == 0.5 and adding.max_mean_error == 0.01
    assert adding.architecture.input_gate_bias == (-3.0, -6.0)
    (row,) = adding.results
    assert (row.sequences, row.test_wrong, row.test_size, row.weights) == (74_000, 1, 2560, 93)
    assert spec_for("adding", length=123).results == ()
    assert spec_for("reber").architecture.blocks == 3 and len(SPECS["reber"]) == 2
    assert spec_for("multiplication").allowed_wrong == (12, 2000)


def test_architecture_for_adapts_to_the_task():
    assert architecture_for(NamedLike(length=100)).num_weights() == 664  # Table 3, p = 100
    arch = architecture_for(FirstSign(length=3))  # not a paper task: the default
    assert arch == DEFAULT_ARCHITECTURE.with_io(1, 1)


def test_value_targets_outside_the_logistic_range_are_refused():
    with pytest.raises(ValueError, match=r"targets in \[2"):
        task = OutOfRange(length=3)
        train_online(task, EASY, trials=1, seed=0, max_sequences=5, budget_seconds=None)


def _train(how=EASY, **overrides):
    kwargs = dict(trials=1, seed=0, max_sequences=1, budget_seconds=None, progress=False)
    return train_online(FirstSign(length=3), how, **(kwargs | overrides))


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: Architecture(1, 1, blocks=0, cells_per_block=1), "blocks"),
        (lambda: Architecture(0, 1, 1, 1), "inputs"),
        (lambda: Architecture(1, 1, 2, 1, input_gate_bias=(-1.0,)), "input_gate_bias"),
        (lambda: Architecture(1, 1, 1, 1, False, output_gate_bias=(-1.0,)), "output_gate_bias"),
        (lambda: Architecture(1, 1, 1, 1, init_range=-0.1), "init_range"),
        (lambda: MemoryBlockNetwork(EASY, trials=0), "trials"),
        (lambda: MemoryBlockNetwork(EASY, trials=2, seeds=[1]), "seeds"),
        (lambda: _train(trials=0), "trials"),
        (lambda: _train(seed=-1), "seed"),
        (lambda: _train(learning_rate=0.0), "learning_rate"),
        (lambda: _train(max_sequences=-1), "max_sequences"),
        (lambda: _train(budget_seconds=-1.0), "budget_seconds"),
        (lambda: _train(ADDING.architecture), "inputs"),
        (lambda: spec_for("copy"), "adding, long-lag, multiplication"),
    ],
)
def test_bad_arguments_name_the_field(call, field):
    with pytest.raises(ValueError, match=field):
        call()


def test_bad_forward_arguments_name_the_argument():
    net = MemoryBlockNetwork(EASY, trials=2)
    inputs = torch.zeros(2, 3, 4, 1)
    with pytest.raises(ValueError, match="inputs"):
        net(torch.zeros(3, 3, 4, 1), torch.ones(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="lengths"):
        net(inputs, torch.full((2, 3), 5))
    with pytest.raises(ValueError, match="trials"):
        net(inputs[:1], torch.ones(1, 3, dtype=torch.long), torch.tensor([2]))
    with pytest.raises(ValueError, match="loop"):
        net(inputs, torch.ones(2, 3, dtype=torch.long), loop="fortran")


def test_derived_seeds_differ_by_stream():
    assert len({derive_seed(s, k) for s in range(3) for k in range(3)}) == 9


def test_end_state_drift_grows_with_the_lag_at_initialisation():
    """Without biases, a cell's input has a constant part from the gates' activations (about
    0.5 each), so its state drifts in proportion to the sequence length (Sec. 4, "internal
    state drift"); the measurement must see it."""
    drift = {}
    for lag in (5, 200):
        task = make_task("long-lag", length=lag)
        net = MemoryBlockNetwork(architecture_for(task), 4, seeds=[0, 1, 2, 3])
        states = mean_end_state(task, net, data_seeds=[10, 11, 12, 13], size=64)
        assert len(states) == 4 and all(len(cells) == 2 for cells in states)
        drift[lag] = sum(map(sum, states)) / 8
    assert drift[200] > 5 * drift[5]


def test_results_record_the_end_state_before_and_after_training():
    task = FirstSign(length=3)
    results = train_online(
        task,
        DEFAULT_ARCHITECTURE.with_io(1, 1),
        trials=2,
        seed=0,
        max_sequences=20,
        budget_seconds=None,
        progress=False,
    )
    cells = DEFAULT_ARCHITECTURE.cells
    for result in results:
        for key in ("end_state_initial", "end_state_trained"):
            values = result.options[key]
            assert len(values) == cells and all(v >= 0 for v in values)
        assert result.options["end_state_initial"] != result.options["end_state_trained"]
