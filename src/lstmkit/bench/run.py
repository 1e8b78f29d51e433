"""Building the candidates of ``lstmkit bench`` and timing them, size by size.

A candidate is one cell on one backend, or one of the two peers every size also times:

- ``torch.nn.LSTM``: torch's fused LSTM, the denominator of every ratio (for the GRU and RNN
  rows too, so that all rows of a size share one yardstick);
- ``torch.nn.LSTMCell loop``: ``torch.nn.LSTMCell`` called once per step from Python, what
  a user writes for a cell torch lacks; the floor a custom cell must beat.

The cells are the registry's (:mod:`.cells`), each built through it, so a cell added there
is timed with no change here. The backends come from the
:class:`~lstmkit.layers.backends.Backend` enum itself: every member but ``auto`` that
:func:`~lstmkit.layers.backends.unsupported_reason` allows for the cell (and
``choose_backend`` accepts on the device), then ``auto`` labelled with what it resolves to.
A backend added to the enum is timed with no change here. The depth-gated and the Grid
LSTM, stacks joined through their memory that are not
:class:`~lstmkit.layers.base.RecurrentLayer` s, choose among their own backends
(``reference``, ``fused``, ``auto``): their layer says what runs on the device.

Every candidate is built and timed in every dtype asked for, and all of them, every dtype
of a size together, take turns in the same rounds, so a slow moment of the machine hits each
dtype alike and the ratio between two dtypes is as fair as the ratio to torch.nn.LSTM. The
input and the output gradient hold the same random values in every dtype (drawn once, cast).
A row's ``x LSTM`` ratios compare it with torch.nn.LSTM in its own dtype; with several dtypes
it also carries its time as a ratio to the same cell and backend in the first dtype listed.

What is timed, per candidate, size and dtype (input x of shape (T, B, I)):

- forward: the layer in eval mode under ``torch.no_grad()``, as inference runs it;
- forward+backward: the layer in training mode, forward, then ``backward`` of a fixed random
  gradient on the output (T, B, H), with the parameters' gradients set to None first. x
  requires a gradient, so backward computes dL/dx as it must for a layer inside a network.

FLOPs per step count the matrix products, 2*B*E with E the entries of the layer's weight
matrices (:mod:`.cells` says which), 2*B*G*H*(I+H) for G gate blocks of the shared layout
(LSTM 4, CIFG and the cell without a forget gate 3, GRU 3, RNN 1); the elementwise gate
arithmetic is left out. Forward+backward counts 3x the forward: the backward forms
dL/dinputs and dL/dweights, one product each the size of the forward's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor, nn

from lstmkit.bench.cells import (
    CELL_NAMES,
    DEFAULT_CELLS,
    build_layer,
    flops_per_step,
    matrix_entries,
)
from lstmkit.bench.configs import BenchSize, preset_sizes
from lstmkit.bench.memory import saved_activation_bytes
from lstmkit.bench.timing import Timing, describe_error, interleaved_medians
from lstmkit.cellmath.family import CellFamily
from lstmkit.layers._memory_stack import STACK_BACKENDS, MemoryJoinedStack
from lstmkit.layers.backends import Backend, choose_backend, unsupported_reason
from lstmkit.progress import Progress

# -- what can be benchmarked --------------------------------------------------------------------

BACKEND_NAMES: tuple[str, ...] = tuple(b.value for b in Backend)
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
}
TORCH_LSTM = "torch.nn.LSTM"
CELL_LOOP = "torch.nn.LSTMCell loop"
PEERS = (TORCH_LSTM, CELL_LOOP)


def supported_backends(family: CellFamily) -> list[Backend]:
    """Every backend but ``auto`` that can run ``family``, in the enum's order."""
    return [b for b in Backend if b is not Backend.AUTO and unsupported_reason(b, family) is None]


def check_dtypes(names: Sequence[str]) -> None:
    """Refuse an empty list, a name that is not a key of :data:`DTYPES` and a name given twice.

    A repeat is an error rather than dropped (as a repeated cell is) because the order of
    the dtypes means something: the first is the yardstick of the others."""
    expected = ", ".join(DTYPES)
    if isinstance(names, str):  # dtypes="bfloat16" would otherwise be read letter by letter
        raise ValueError(f"dtypes must be a sequence of names, got the string {names!r}")
    if not names:
        raise ValueError(f"dtypes must name at least one of {expected}")
    for k, name in enumerate(names):
        if name not in DTYPES:
            raise ValueError(f"unknown dtype {name!r}; expected one of {expected}")
        if name in names[:k]:
            raise ValueError(
                f"dtype {name!r} given twice; expected each of {expected} at most once"
            )


# -- settings and results -------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchConfig:
    """What to time and how; every field checked when the config is made."""

    sizes: tuple[BenchSize, ...] = preset_sizes(("default",))
    """The shapes to time, each in its own block of rows."""
    cells: tuple[str, ...] = DEFAULT_CELLS
    """Names from :data:`~lstmkit.bench.cells.CELL_NAMES` (the registry's and ``rnn-relu``);
    the default is the seven the fast kernels run. The two peers are timed whatever this
    says."""
    backends: tuple[str, ...] = BACKEND_NAMES
    """Backend values (``"auto"`` included) to time each cell on, where the cell allows."""
    device: str = "cpu"
    """``"cpu"`` or ``"cuda"``."""
    dtypes: tuple[str, ...] = ("float32",)
    """Keys of :data:`DTYPES`, each once: the parameters', input's and gradients' types. Every
    candidate is timed in each; the first is the one the others' times are divided by."""
    repeats: int = 5
    """Timed rounds; the median is reported."""
    warmup: int = 1
    """Untimed rounds first."""
    forward_only: bool = False
    """Skip forward+backward (its columns stay empty)."""
    seed: int = 0
    """Seeds the weights and the input of each size."""
    progress: bool = True
    """Show a progress bar on stderr."""

    def __post_init__(self) -> None:
        if not self.sizes:
            raise ValueError("sizes must name at least one size")
        for what, given, known in [
            ("cell", self.cells, CELL_NAMES),
            ("backend", self.backends, BACKEND_NAMES),
            ("device", (self.device,), ("cpu", "cuda")),
        ]:
            for name in given:
                if name not in known:
                    raise ValueError(f"unknown {what} {name!r}; expected one of {', '.join(known)}")
        check_dtypes(self.dtypes)
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device 'cuda' asked for, but torch {torch.__version__} sees no CUDA device"
            )
        if self.repeats < 1 or self.warmup < 0:
            raise ValueError(
                f"repeats must be >= 1 and warmup >= 0, got {self.repeats} and {self.warmup}"
            )

    @property
    def first_dtype(self) -> str:
        """The dtype the other dtypes' times are divided by."""
        return self.dtypes[0]


class Resolved(NamedTuple):
    """What runs a candidate in one dtype: for ``auto`` the backends it chooses, else the
    requested one; a forward under ``torch.no_grad()`` and a forward+backward apart, since
    ``auto`` weighs whether the call builds a graph."""

    fwd: str
    fwd_bwd: str


@dataclass(frozen=True)
class Entry:
    """One candidate of a size, before it is built."""

    cell: str
    backend: str
    """As requested: a Backend value, or a peer's name."""
    resolved: dict[str, Resolved]
    """What runs in each of the run's dtypes (keys of :data:`DTYPES`)."""
    matrix_entries: int
    """E of :mod:`.cells`: the entries of the layer's weight matrices, all layers."""
    num_layers: int = 1


@dataclass(frozen=True)
class BenchRow:
    """One candidate's timings at one size in one dtype; times are medians in milliseconds,
    None when not measured (forward-only, or an error, which ``error`` then gives)."""

    size: BenchSize
    cell: str
    backend: str
    resolved: str
    """What ran the forward: for ``auto`` the backend it chose, else ``backend``."""
    matrix_entries: int
    """The entries of the layer's weight matrices (:mod:`.cells`), all its layers."""
    fwd_ms: float | None
    fwd_bwd_ms: float | None
    ratio_fwd: float | None
    """fwd_ms / torch.nn.LSTM's fwd_ms at this size in this dtype."""
    ratio_fwd_bwd: float | None
    error: str | None = None
    saved_mb: float | None = None
    """MB of activations autograd keeps for the backward of one training forward
    (:mod:`.memory`); None when forward-only or on an error."""
    ratio_saved: float | None = None
    """saved_mb / torch.nn.LSTM's saved_mb at this size in this dtype."""
    dtype: str = "float32"
    """The key of :data:`DTYPES` the candidate ran in."""
    ratio_first_dtype_fwd: float | None = None
    """fwd_ms / the same cell and backend's fwd_ms at this size in the first dtype of the
    run; None in the first dtype's own rows, or when either time is missing."""
    ratio_first_dtype_fwd_bwd: float | None = None
    """The same for fwd_bwd_ms."""
    num_layers: int = 1
    """Layers of the candidate: its times, FLOPs and memory are the whole stack's."""
    resolved_fwd_bwd: str | None = None
    """What ran the forward+backward, where it differs from ``resolved`` (``auto`` trains a
    plain LSTM on lstmkit's kernels at the sizes where they were measured faster, and runs
    its forward on torch's: ``_torch_lstm_wins`` in :mod:`lstmkit.layers.backends`)."""

    @property
    def flops_per_step(self) -> int:
        """Forward FLOPs of one step, 2*B*E (:func:`~lstmkit.bench.cells.flops_per_step`)."""
        return flops_per_step(self.matrix_entries, self.size.B)

    @property
    def ms_per_step(self) -> float | None:
        """Forward milliseconds per time step: the latency a streaming user pays."""
        return None if self.fwd_ms is None else self.fwd_ms / self.size.T

    @property
    def gflops_fwd(self) -> float | None:
        return _gflops(self.flops_per_step * self.size.T, self.fwd_ms)

    @property
    def gflops_fwd_bwd(self) -> float | None:
        return _gflops(3 * self.flops_per_step * self.size.T, self.fwd_bwd_ms)


def _gflops(flops: int, ms: float | None) -> float | None:
    return None if ms is None else flops / (ms * 1e-3) / 1e9


# -- candidates ------------------------------------------------------------------------------------


def candidate_entries(config: BenchConfig, size: BenchSize) -> list[Entry]:
    """The peers, then each cell on each backend it supports and ``auto``, as asked.

    A backend that supports the cell but not the device (``choose_backend`` refuses it, as
    it refuses ``fused`` on CUDA without Triton) is left out like an unsupported one. A
    cell without a backend choice gets one entry, ``reference``, if ``reference`` or
    ``auto`` is asked for. Each layer is built on the meta device to learn its family and
    weight shapes: no memory, no initialisation cost."""
    peer_entries = matrix_entries(nn.LSTM(size.I, size.H, device="meta"))
    entries = [
        Entry("lstm", peer, {name: Resolved(peer, peer) for name in config.dtypes}, peer_entries)
        for peer in PEERS
    ]
    for cell in config.cells:
        entries += _cell_entries(cell, config, size)
    return entries


def _stack_entries(
    cell: str, layer: MemoryJoinedStack, config: BenchConfig, counted: dict
) -> list[Entry]:
    """The depth-gated and Grid LSTM stacks run outside ``choose_backend``'s dispatch: their
    layer says which of its backends runs on the device (an explicit one it cannot run
    there is left out, as for the other cells)."""
    entries = []
    for backend in STACK_BACKENDS:
        if backend.value not in config.backends:
            continue
        layer.backend = backend

        def resolve(dtype: torch.dtype, graph: bool, layer=layer) -> str:
            return layer.resolve_backend(False, config.device, dtype).value

        try:
            resolved = _resolutions(resolve, backend.value, config.dtypes)
        except ValueError:
            continue
        entries.append(Entry(cell, backend.value, resolved, **counted))
    return entries


def _cell_entries(cell: str, config: BenchConfig, size: BenchSize) -> list[Entry]:
    layer = build_layer(cell, size.I, size.H, device="meta")
    counted = {"matrix_entries": matrix_entries(layer), "num_layers": layer.num_layers}
    if isinstance(layer, MemoryJoinedStack):  # it chooses its backend itself
        return _stack_entries(cell, layer, config, counted)
    entries = []
    for backend in (*supported_backends(layer.family), Backend.AUTO):
        if backend.value not in config.backends:
            continue

        def resolve(dtype: torch.dtype, graph: bool, backend=backend) -> str:
            chosen = choose_backend(
                backend, layer.family, False, config.device, dtype=dtype, graph=graph,
                batch=size.B,
            )  # fmt: skip
            return chosen.value

        try:
            resolved = _resolutions(resolve, backend.value, config.dtypes)
        except ValueError:
            continue
        entries.append(Entry(cell, backend.value, resolved, **counted))
    return entries


def _resolutions(
    resolve: Callable[[torch.dtype, bool], str], requested: str, dtypes: Sequence[str]
) -> dict[str, Resolved]:
    """``resolve(dtype, graph)`` for each of ``dtypes``, without and with a graph. A
    ValueError for float32's forward (a backend the device refuses) passes through, and the
    entry is left out; one for another dtype keeps ``requested`` there: the candidate's own
    call raises it again, into the row's error column."""
    resolve(torch.float32, False)
    resolved = {}
    for name in dtypes:
        try:
            resolved[name] = Resolved(resolve(DTYPES[name], False), resolve(DTYPES[name], True))
        except ValueError:
            resolved[name] = Resolved(requested, requested)
    return resolved


@dataclass(frozen=True)
class _Candidate:
    module: nn.Module
    forward: Callable[[Tensor], Tensor]
    """(T, B, I) -> output (T, B, H)."""


def _build(entry: Entry, size: BenchSize, device: torch.device, dtype: torch.dtype) -> _Candidate:
    factory = {"device": device, "dtype": dtype}
    if entry.backend == TORCH_LSTM:
        module = nn.LSTM(size.I, size.H, **factory)
        return _Candidate(module, lambda x: module(x)[0])
    if entry.backend == CELL_LOOP:
        cell = nn.LSTMCell(size.I, size.H, **factory)
        return _Candidate(cell, partial(_cell_loop, cell))
    factory["backend"] = entry.backend
    layer = build_layer(entry.cell, size.I, size.H, **factory)
    return _Candidate(layer, lambda x: layer(x)[0])


def _cell_loop(cell: nn.LSTMCell, x: Tensor) -> Tensor:
    """The plain per-step loop: one torch.nn.LSTMCell call per step, (T, B, I) -> (T, B, H)."""
    h = x.new_zeros(x.shape[1], cell.hidden_size)  # (B, H)
    c = torch.zeros_like(h)
    outputs = []
    for x_t in x:  # (B, I)
        h, c = cell(x_t, (h, c))
        outputs.append(h)
    return torch.stack(outputs)  # (T, B, H)


def _forward(candidate: _Candidate, x: Tensor) -> None:
    with torch.no_grad():
        candidate.forward(x)


def forward_backward(
    module: nn.Module, forward: Callable[[Tensor], Tensor], x: Tensor, grad_output: Tensor
) -> None:
    """One forward+backward as the bench times it: the module's and the input's gradients
    reset first, then the backward of ``grad_output`` through ``forward(x)``."""
    module.zero_grad(set_to_none=True)
    x.grad = None
    forward(x).backward(grad_output)


# -- running -------------------------------------------------------------------------------------


class _Key(NamedTuple):
    """One candidate of a size: an entry (by its index) built in one dtype."""

    dtype: str
    index: int


@dataclass(frozen=True)
class _Inputs:
    """What every candidate of one dtype is fed."""

    x: Tensor
    """(T, B, I), a leaf that requires a gradient."""
    grad_output: Tensor
    """(T, B, H), backpropagated through the output."""


def run_bench(config: BenchConfig | None = None) -> list[BenchRow]:
    """Time every candidate at every size of ``config`` in each of its dtypes; rows size by
    size, within a size dtype by dtype in the config's order, within a dtype in the order of
    :func:`candidate_entries`. A candidate that fails gets a row with its error."""
    config = config or BenchConfig()
    plan = [(size, candidate_entries(config, size)) for size in config.sizes]
    runs = sum(len(entries) for _, entries in plan) * len(config.dtypes)
    total = runs * _calls_per_entry(config)
    rows: list[BenchRow] = []
    with Progress(total=total, desc="bench", unit="run", disable=not config.progress) as bar:
        for size, entries in plan:
            bar.set_postfix(size=size.name)
            rows += _bench_size(size, entries, config, bar)
    return rows


def _calls_per_entry(config: BenchConfig) -> int:
    """Timed and warm-up calls of one candidate at one size in one dtype, both modes."""
    return (config.warmup + config.repeats) * (1 if config.forward_only else 2)


def _bench_size(
    size: BenchSize, entries: Sequence[Entry], config: BenchConfig, bar: Progress
) -> list[BenchRow]:
    device = torch.device(config.device)
    torch.manual_seed(config.seed)
    inputs = _inputs(size, config.dtypes, device)
    built, build_errors = _build_all(size, entries, config.dtypes, device)
    bar.update(len(build_errors) * _calls_per_entry(config))  # their turns are skipped

    # One mapping over every dtype: all candidates of the size share each round.
    timing = partial(
        interleaved_medians, device=device, repeats=config.repeats, warmup=config.warmup
    )
    for candidate in built.values():
        candidate.module.eval()
    forward = {key: partial(_forward, c, inputs[key.dtype].x) for key, c in built.items()}
    fwd = timing(forward, tick=bar.update)
    fwd_bwd: dict[_Key, Timing] = {}
    saved: dict[_Key, float | None] = {}
    if not config.forward_only:
        for candidate in built.values():
            candidate.module.train()
        calls = {
            key: partial(
                forward_backward,
                c.module,
                c.forward,
                inputs[key.dtype].x,
                inputs[key.dtype].grad_output,
            )
            for key, c in built.items()
        }
        fwd_bwd = timing(calls, tick=bar.update)
        saved = {key: _saved_mb(c, inputs[key.dtype].x) for key, c in built.items()}
    results = _Results(build_errors, fwd, fwd_bwd, saved)
    rows = [row for dtype in config.dtypes for row in _rows(size, dtype, entries, results)]
    return _with_first_dtype_ratios(rows, config.first_dtype)


def _inputs(size: BenchSize, dtypes: Sequence[str], device: torch.device) -> dict[str, _Inputs]:
    """The same random x and output gradient in each dtype: drawn once in float32 and cast,
    so that the dtypes differ in their precision only, not in what was drawn."""
    x = torch.randn(size.T, size.B, size.I, device=device)  # (T, B, I)
    grad_output = torch.randn(size.T, size.B, size.H, device=device)  # (T, B, H)
    return {
        name: _Inputs(x.to(DTYPES[name]).detach().requires_grad_(), grad_output.to(DTYPES[name]))
        for name in dtypes
    }


def _build_all(
    size: BenchSize, entries: Sequence[Entry], dtypes: Sequence[str], device: torch.device
) -> tuple[dict[_Key, _Candidate], dict[_Key, str]]:
    """Every entry in every dtype, dtype by dtype; what could not be built, with why."""
    built: dict[_Key, _Candidate] = {}
    errors: dict[_Key, str] = {}
    for dtype in dtypes:
        for k, entry in enumerate(entries):
            key = _Key(dtype, k)
            try:
                built[key] = _build(entry, size, device, DTYPES[dtype])
            except Exception as err:  # e.g. out of memory for the weights: the row says so
                errors[key] = describe_error(err)
    return built, errors


def _saved_mb(candidate: _Candidate, x: Tensor) -> float | None:
    try:
        held = list(candidate.module.parameters())
        return saved_activation_bytes(candidate.forward, x, held) / 1e6
    except Exception:  # the timing's row already carries the error
        return None


@dataclass(frozen=True)
class _Results:
    """What was measured at one size, by candidate; a candidate missing from a mapping was
    not measured there (it failed to build, or the run was forward-only)."""

    build_errors: dict[_Key, str]
    fwd: dict[_Key, Timing]
    fwd_bwd: dict[_Key, Timing]
    saved: dict[_Key, float | None]

    def fwd_ms(self, key: _Key) -> float | None:
        return _ms(self.fwd.get(key))

    def fwd_bwd_ms(self, key: _Key) -> float | None:
        return _ms(self.fwd_bwd.get(key))

    def error(self, key: _Key) -> str | None:
        """The first thing that went wrong: building, then forward, then forward+backward."""
        timings = (self.fwd.get(key), self.fwd_bwd.get(key))
        errors = [self.build_errors.get(key), *(t.error for t in timings if t)]
        return next((e for e in errors if e), None)


def _rows(
    size: BenchSize, dtype: str, entries: Sequence[Entry], results: _Results
) -> list[BenchRow]:
    """One row per entry in ``dtype``, its times and memory as ratios to torch.nn.LSTM's in
    the same dtype too: a cell in bfloat16 is measured against torch in bfloat16."""
    base = _Key(dtype, next(k for k, entry in enumerate(entries) if entry.backend == TORCH_LSTM))
    rows = []
    for k, entry in enumerate(entries):
        key = _Key(dtype, k)
        fwd_ms, fwd_bwd_ms, saved_mb = (
            results.fwd_ms(key),
            results.fwd_bwd_ms(key),
            results.saved.get(key),
        )
        rows.append(
            BenchRow(
                size,
                entry.cell,
                entry.backend,
                entry.resolved[dtype].fwd,
                entry.matrix_entries,
                fwd_ms,
                fwd_bwd_ms,
                _ratio(fwd_ms, results.fwd_ms(base)),
                _ratio(fwd_bwd_ms, results.fwd_bwd_ms(base)),
                error=results.error(key),
                saved_mb=saved_mb,
                ratio_saved=_ratio(saved_mb, results.saved.get(base)),
                dtype=dtype,
                num_layers=entry.num_layers,
                resolved_fwd_bwd=entry.resolved[dtype].fwd_bwd,
            )
        )
    return rows


def _with_first_dtype_ratios(rows: Sequence[BenchRow], first_dtype: str) -> list[BenchRow]:
    """The rows of one size, those of every dtype but the first given their times as ratios
    to the same cell and backend's in ``first_dtype`` (what a dtype gains, against a
    counterpart timed in the same rounds). The first dtype's rows keep None."""
    counterparts = {(row.cell, row.backend): row for row in rows if row.dtype == first_dtype}

    def with_ratios(row: BenchRow) -> BenchRow:
        counterpart = counterparts.get((row.cell, row.backend))
        if row.dtype == first_dtype or counterpart is None:
            return row
        return replace(
            row,
            ratio_first_dtype_fwd=_ratio(row.fwd_ms, counterpart.fwd_ms),
            ratio_first_dtype_fwd_bwd=_ratio(row.fwd_bwd_ms, counterpart.fwd_bwd_ms),
        )

    return [with_ratios(row) for row in rows]


def _ms(timing: Timing | None) -> float | None:
    return None if timing is None or timing.seconds is None else timing.seconds * 1e3


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


__all__ = [
    "BACKEND_NAMES",
    "CELL_NAMES",
    "DEFAULT_CELLS",
    "DTYPES",
    "PEERS",
    "BenchConfig",
    "BenchRow",
    "Entry",
    "candidate_entries",
    "check_dtypes",
    "flops_per_step",
    "forward_backward",
    "run_bench",
    "supported_backends",
]
