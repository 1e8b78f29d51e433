"""The Triton kernels against the reference loop, run on the CPU by Triton's interpreter
(``TRITON_INTERPRET=1``): outputs, final states, every gradient under random upstream
gradients, and traces, for every family and option, with the hidden units held by one
program (one persistent launch) and split over two (one launch per step); bfloat16
against float32; a long sequence carried across calls; what is refused.

The interpreter runs the kernels' Python with NumPy, one program after another, so what
this cannot check is the grid barrier between programs of one persistent launch (and
speed): that needs a GPU. The layers are built with ``backend="fused"`` and the fixture
points the fused backend's CPU tensors at the Triton kernels instead of the C++ ones.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import LAYER_CASES, TOLERANCE, assert_close_all, random_loss
from triton_on_cpu import lay_out, triton_on_the_cpu  # noqa: F401 (a fixture)

import lstmkit
from lstmkit.layers.backends import fused_triton
from lstmkit.layers.backends.fused_triton import lstm as triton_lstm

I, T, B = 4, 6, 3
LENGTHS = [6, 2, 5]
# hidden size, layers, units per program (None: the plan's choice, all units in one program)
SHAPES = {"H5-L1-one-program": (5, 1, None), "H20-L2-split": (20, 2, 16)}
GRID = list(itertools.product(LAYER_CASES, SHAPES, ["full-uni", "lengths-bi"]))

# every test here runs the Triton kernels on the CPU, interpreted
pytestmark = pytest.mark.usefixtures("triton_on_the_cpu")


def _pair(family: str, shape: str, bidirectional: bool, monkeypatch):
    cls, options = LAYER_CASES[family]
    hidden, layers, block_h = SHAPES[shape]
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", block_h)
    make = lambda backend: cls(  # noqa: E731
        I, hidden, layers, bidirectional=bidirectional, backend=backend, **options
    )
    reference, triton = make("reference"), make("fused")
    triton.load_state_dict(reference.state_dict())
    return reference, triton


def _run(layer, x, lengths):
    output, state = layer(x, lengths=lengths)
    states = list(state) if isinstance(state, tuple) else [state]
    values = [output, *states]
    return [*values, *torch.autograd.grad(random_loss(values, seed=3), [x, *layer.parameters()])]


@pytest.mark.parametrize(("family", "shape", "mode"), GRID, ids=["-".join(case) for case in GRID])
def test_triton_matches_reference(family, shape, mode, monkeypatch):
    lengths, direction = mode.split("-")
    reference, triton = _pair(family, shape, direction == "bi", monkeypatch)
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    lens = torch.tensor(LENGTHS) if lengths == "lengths" else None
    ours, theirs = _run(triton, x, lens), _run(reference, x, lens)
    assert_close_all(ours, theirs, torch.float32, f"triton vs reference, {family}")


def test_the_split_runs_one_launch_per_step_and_one_program_one_launch(monkeypatch):
    """The two layouts the grid above covers, as the plan lays them out."""
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    split = fused_triton.plan(3, 20, 4, torch.float32, torch.device("cpu"))
    assert (split.grid, split.persistent, split.sync_programs) == ((1, 2), False, 1)
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", None)
    whole = fused_triton.plan(3, 20, 4, torch.float32, torch.device("cpu"))
    assert (whole.grid, whole.persistent, whole.block_h) == ((1, 1), True, 32)


def _gpu_plan(monkeypatch, limits=fused_triton.H100_LIMITS):
    """``plan`` as it lays a direction out on a GPU with these limits."""
    monkeypatch.setattr(fused_triton, "gpu_limits", lambda device: limits)
    return lambda *args, **options: fused_triton.plan(*args, torch.device("cuda"), **options)


def test_on_a_gpu_each_program_holds_its_weights_on_chip(monkeypatch):
    """FlashRNN's size in bfloat16 on an H100: 4 gates of 768 units padded to 1024 columns;
    a program takes 16 batch rows and as many units as fit the on-chip budget, 16 here, so
    48 programs split them, few enough for one launch with a barrier per step."""
    layout = _gpu_plan(monkeypatch)(16, 768, 4, torch.bfloat16)
    assert (layout.block_b, layout.block_k, layout.block_h) == (16, 1024, 16)
    assert (layout.grid, layout.persistent, layout.sync_programs) == ((1, 48), True, 48)
    assert 4 * layout.block_k * layout.block_h * 2 <= fused_triton.WEIGHT_BYTES_PER_PROGRAM


def test_on_a_gpu_a_large_batch_takes_more_batch_blocks_not_larger_ones(monkeypatch):
    """fastrnns' size: 64 rows in four blocks of 16 (larger ones made the compiler spill
    registers); 4 x 32 programs still fit an H100's 132 multiprocessors, 4 x 64 do not and
    run a launch per step, which streams W_hh: a launch reads it once either way."""
    gpu = _gpu_plan(monkeypatch)
    fits = gpu(64, 512, 4, torch.float32)
    assert (fits.grid, fits.persistent, fits.streamed_k) == ((4, 32), True, None)
    per_step = gpu(64, 1024, 4, torch.bfloat16)
    assert (per_step.grid, per_step.persistent, per_step.streamed_k) == ((4, 64), False, 256)
    assert per_step.shared == fused_triton.streamed_shared_bytes(16, 16, 256, 2)


def test_on_a_gpu_a_split_float32_layer_takes_fewer_units_a_program(monkeypatch):
    """float32 products run on the FMA units, whose operands sm_90's compiler held in
    registers whole: the RNN at H=512 in float32 gets 16 units a program, not the 64 its
    weight budget allows (a (512, 64) tile spilled 10 KB a thread), so 4 x 32 programs as
    the LSTM's; in bfloat16, on tensor cores, it keeps the 128 its budget allows. At H=128
    and batch 1 one program holds every unit in float32 too: no barrier is added for it."""
    gpu = _gpu_plan(monkeypatch)
    float32, bfloat16 = gpu(64, 512, 1, torch.float32), gpu(64, 512, 1, torch.bfloat16)
    assert (float32.block_h, float32.grid, float32.persistent) == (16, (4, 32), True)
    assert float32.block_k * float32.block_h <= fused_triton.FMA_PRODUCT_WEIGHTS
    assert bfloat16.block_h == 128
    whole = gpu(1, 128, 1, torch.float32)
    assert (whole.block_h, whole.grid, whole.sync_programs) == (128, (1, 1), 1)


def test_on_a_gpu_with_less_shared_memory_a_program_takes_fewer_units(monkeypatch):
    """The weight budget allows 32 units of a bfloat16 H=512 LSTM per program, whose tiles
    need up to 149,504 bytes of shared memory: an H100 has them, a GPU with 99 KiB per
    program (an RTX 4090's) does not, so there a program takes 16 units (82,944 bytes)."""
    h100 = _gpu_plan(monkeypatch)(16, 512, 4, torch.bfloat16)
    small = fused_triton.GPULimits(multiprocessors=128, shared_bytes=101376)
    smaller = _gpu_plan(monkeypatch, small)(16, 512, 4, torch.bfloat16)
    assert (h100.block_h, smaller.block_h) == (32, 16)
    assert fused_triton.shared_bytes(16, 32, 512, 4, 2) > small.shared_bytes
    assert fused_triton.shared_bytes(16, 16, 512, 4, 2) <= small.shared_bytes


def test_on_a_gpu_too_small_for_a_streamed_slice_the_size_is_refused_by_name(monkeypatch):
    """A made-up GPU with 4 KiB of shared memory per program: even W_hh streamed 16
    columns at a time needs 5,120 bytes (two stages of a 16-row tile of h and a 16-unit
    slice of W_hh in float32, and the layout change). The plan says so instead of handing
    Triton a launch that fails with OutOfResources."""
    tiny = fused_triton.GPULimits(multiprocessors=16, shared_bytes=4096)
    message = r"hidden size 768 in float32 .* needs 5120 bytes .* 16 columns at a time.* 4096"
    with pytest.raises(fused_triton.TritonUnavailable, match=message):
        _gpu_plan(monkeypatch, tiny)(16, 768, 4, torch.float32)


# the cells of this file's grid, with W_hh streamed: LSTM options lstm_forward/backward run,
# the GRU and the RNN (the other cells' files test theirs)
STREAMED = [
    "lstm-plain", "lstm-peephole-coupled", "lstm-peephole-no-forget-gate", "gru", "gru-nobias",
    "rnn-tanh", "rnn-relu",
]  # fmt: skip


# (hidden size, layers, units per program) with W_hh streamed in slices of 16 columns: two
# slices, the second partial, over two programs; three, the last partial, in one program
STREAMED_SHAPES = {"H20-L2-split": (20, 2, 16), "H40-L1-one-program": (40, 1, None)}


@pytest.mark.parametrize("shape", list(STREAMED_SHAPES))
@pytest.mark.parametrize("family", STREAMED)
def test_streamed_weights_match_the_reference(family, shape, monkeypatch):
    """W_hh read at every step in slices of 16 columns, as where a program's rows of it do
    not fit on chip; ragged lengths, both directions."""
    hidden, layers, block_h = STREAMED_SHAPES[shape]
    lay_out(monkeypatch, block_h, streamed=True)
    cls, options = LAYER_CASES[family]
    make = lambda backend: cls(I, hidden, layers, bidirectional=True, backend=backend, **options)  # noqa: E731
    reference, triton = make("reference"), make("fused")
    triton.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    lengths = torch.tensor(LENGTHS)
    ours, theirs = _run(triton, x, lengths), _run(reference, x, lengths)
    assert_close_all(ours, theirs, torch.float32, f"streamed triton vs reference, {family}")


def test_streaming_is_what_the_plan_asks_for_where_the_weights_do_not_fit(monkeypatch):
    """FlashRNN's size in float32 on an H100: 16 units' rows of W_hh (padded to 1024
    columns) with h's tile need more shared memory than a program has, so the LSTM's kernels
    stream them in slices of 256 columns (STREAMED_SLICE), which fit with the two stages of
    pipelining (on chip they would need 328,704 bytes); bfloat16 keeps them on chip."""
    gpu = _gpu_plan(monkeypatch)
    assert fused_triton.shared_bytes(16, 16, 1024, 4, 4) == 328704
    streamed = gpu(16, 768, 4, torch.float32)
    assert (streamed.block_h, streamed.streamed_k, streamed.block_kc) == (16, 256, 256)
    assert streamed.num_stages == fused_triton.STREAMED_STAGES
    assert streamed.shared <= fused_triton.H100_LIMITS.shared_bytes
    on_chip = gpu(16, 768, 4, torch.bfloat16)
    assert (on_chip.streamed_k, on_chip.block_kc) == (None, 1024)


def test_a_barrier_whose_programs_never_meet_gives_up_and_the_call_says_so(monkeypatch):
    """The interpreter runs a launch's programs one after another, so a persistent launch
    split over two programs is what the barrier's spin limit is for: the first program waits
    for a second that cannot start until the first ends. With the limit cut to a few polls
    it gives up, the launch ends instead of hanging, and the call raises."""
    monkeypatch.setattr(fused_triton._kernels(), "SPIN_LIMIT", 8)
    monkeypatch.setattr(fused_triton, "FORCE_BLOCK_H", 16)
    plan = fused_triton.plan
    persistent = lambda *a, **k: dataclasses.replace(plan(*a, **k), persistent=True)  # noqa: E731
    monkeypatch.setattr(triton_lstm, "plan", persistent)  # the LSTM's runner's plan
    layer = lstmkit.LSTM(I, 20, backend="fused")
    with pytest.raises(fused_triton.GridBarrierGaveUp, match="the 2 programs of a batch block"):
        layer(torch.randn(T, B, I))


@pytest.mark.parametrize("family", ["lstm-peephole-coupled", "lstm-proj", "gru", "rnn-tanh"])
def test_traces_match_the_reference(family, monkeypatch):
    reference, triton = _pair(family, "H5-L1-one-program", True, monkeypatch)
    x = torch.randn(T, B, I)
    lengths = torch.tensor(LENGTHS)
    ours = triton(x, lengths=lengths, return_trace=True)[2]
    theirs = reference(x, lengths=lengths, return_trace=True)[2]
    assert ours.names == theirs.names
    for name in theirs.names:
        torch.testing.assert_close(ours[name], theirs[name], **TOLERANCE[torch.float32])


@pytest.mark.parametrize("family", ["lstm-plain", "lstm-peephole-coupled", "gru", "rnn-tanh"])
def test_bfloat16_follows_float32(family, monkeypatch):
    """The kernels compute in float32 and round on store, so on the same (rounded) weights
    and inputs they follow the float32 reference within bfloat16's 8 bits."""
    reference, triton = _pair(family, "H20-L2-split", True, monkeypatch)
    triton = triton.to(torch.bfloat16)
    reference.load_state_dict({k: v.float() for k, v in triton.state_dict().items()})
    x = torch.randn(T, B, I, generator=torch.Generator().manual_seed(2)).bfloat16()
    ours = triton(x.requires_grad_(True))[0]
    theirs = reference(x.detach().float())[0]
    torch.testing.assert_close(ours.float(), theirs, rtol=3e-2, atol=3e-2)
    ours.float().pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.bfloat16 for p in triton.parameters())


def test_a_long_sequence_in_pieces_equals_one_call():
    """T = 400 in one persistent launch, in four calls carrying the state, and on the
    reference loop. (The CPU kernels' test runs T = 10,000; the interpreter takes about
    20 ms a step, which would make that 7 minutes here.)"""
    torch.manual_seed(0)
    reference = lstmkit.LSTM(3, 8, peephole=True, backend="reference")
    triton = lstmkit.LSTM(3, 8, peephole=True, backend="fused")
    triton.load_state_dict(reference.state_dict())
    x = torch.randn(400, 2, 3)
    with torch.no_grad():
        whole, (h, c) = triton(x)
        state, pieces = None, []
        for part in x.split(100):
            out, state = triton(part, state)
            pieces.append(out)
        expected, (h_ref, c_ref) = reference(x)
    torch.testing.assert_close(torch.cat(pieces), whole, rtol=0, atol=0)
    torch.testing.assert_close(state, (h, c), rtol=0, atol=0)
    torch.testing.assert_close(whole, expected, **TOLERANCE[torch.float32])
    torch.testing.assert_close((h, c), (h_ref, c_ref), **TOLERANCE[torch.float32])


def test_float64_is_refused_with_the_dtypes_it_takes():
    layer = lstmkit.LSTM(3, 4, peephole=True, backend="fused").double()
    with pytest.raises(TypeError, match=r"take float16, bfloat16, float32, got torch.float64"):
        layer(torch.randn(2, 1, 3, dtype=torch.float64))


def test_cpu_tensors_without_the_interpreter_are_refused(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET")
    layer = lstmkit.GRU(3, 4, backend="fused")
    with pytest.raises(fused_triton.TritonUnavailable, match="run CUDA tensors"):
        layer(torch.randn(2, 1, 3))


def _fresh_process(script: str, interpret: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    if interpret is not None:
        env["TRITON_INTERPRET"] = interpret
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_interpreter_works_when_triton_was_imported_before_it_was_asked_for():
    """CI found this: torch._dynamo imports triton when it is first loaded (training with
    an optimizer does that), so after any earlier test that trained, triton.language's own
    helpers were compiled-only by the time the fixture set TRITON_INTERPRET, and the
    interpreter could not call them. The kernels must not depend on that order."""
    result = _fresh_process(
        """
        import os, torch, triton.language
        os.environ["TRITON_INTERPRET"] = "1"
        import lstmkit
        from lstmkit.layers.backends import fused, fused_triton
        fused.kernels_for = lambda device_type: fused_triton
        reference = lstmkit.GRU(3, 5, backend="reference")
        ours = lstmkit.GRU(3, 5, backend="fused")
        ours.load_state_dict(reference.state_dict())
        x = torch.randn(4, 2, 3)
        torch.testing.assert_close(ours(x)[0], reference(x)[0])
        lstm = lstmkit.LSTM(3, 5, peephole=True, backend="fused")
        lstm(x)[0].sum().backward()
        print("ok")
        """,
        interpret=None,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_every_cells_triton_kernels_run_when_triton_was_imported_first():
    """The same order for every cell's Triton kernels, each module of them (a kernel that
    calls one of triton.language's own jit helpers, tl.max or tl.zeros say, fails only
    then): forward and backward through each, on the interpreter, and through the LSTM's
    norms and FGR with the projection, which no named cell has (their kernels' mode with
    torch's products between steps). Every cell runs: none is refused any more."""
    result = _fresh_process(
        """
        import os, torch, triton.language
        os.environ["TRITON_INTERPRET"] = "1"
        from lstmkit.layers import _memory_stack
        from lstmkit.layers.backends import fused, fused_triton
        from lstmkit.layers.backends.fused_triton import stacks
        from lstmkit.layers.lstm import LSTM
        from lstmkit.layers.named import MODERN_CELLS
        fused.kernels_for = lambda device_type: fused_triton
        _memory_stack.stack_kernels = lambda device_type: stacks
        x = torch.randn(4, 2, 3)
        for name, cell in MODERN_CELLS.items():
            layer = cell.layer(3, 8, None, batch_first=False, backend="fused")
            layer(x)[0].sum().backward()
        for options in ({"layer_norm": "ba2016"}, {"layer_norm": "per-gate"},
                        {"layer_norm": "cell", "gate_recurrence": True}):
            layer = LSTM(3, 8, proj_size=2, backend="fused", **options)
            layer(x, lengths=[4, 2])[0].sum().backward()
        print("ok")
        """,
        interpret=None,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_changing_the_interpreter_setting_after_the_first_call_is_refused_clearly():
    """Triton decides at definition whether a kernel is interpreted; a later change of
    TRITON_INTERPRET cannot take effect, so the call says so instead of failing inside."""
    result = _fresh_process(
        """
        import os, torch, lstmkit
        from lstmkit.layers.backends import fused, fused_triton
        fused_triton._kernels()  # defined compiled: TRITON_INTERPRET is off
        os.environ["TRITON_INTERPRET"] = "1"
        fused.kernels_for = lambda device_type: fused_triton
        try:
            lstmkit.LSTM(3, 5, backend="fused")(torch.randn(4, 2, 3))
        except fused_triton.TritonUnavailable as error:
            print(error)
        """,
        interpret="0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded with TRITON_INTERPRET off and it has changed since" in result.stdout


def _tool(script: str, *args: str) -> subprocess.CompletedProcess:
    """tools/``script`` with ``args``, in a process of its own without TRITON_INTERPRET (the
    tools record under the interpreter in a child, and compile in this one)."""
    tool = Path(__file__).resolve().parents[1] / "tools" / script
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    return subprocess.run(
        [sys.executable, str(tool), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_the_kernels_compile_for_a_hopper_gpu_without_one():
    """tools/compile_triton_kernels.py on two cells: the launches their layers make, compiled
    ahead of time for sm_90 by Triton's own compiler, which refuses what the interpreter
    lets pass. The whole registry takes minutes (its docstring); docs/performance.md has
    the result."""
    result = _tool("compile_triton_kernels.py", "--cells", "rnn,mingru")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    compiled = re.search(r"compiled (\d+) of (\d+) kernel variants for sm_90", result.stdout)
    assert compiled and compiled[1] == compiled[2] and int(compiled[1]) >= 4, result.stdout


def test_every_launch_at_the_benchmark_sizes_fits_an_h100_and_the_plans_count():
    """tools/triton_resources.py on the LSTM, the GRU and the sLSTM in float32 at fastrnns'
    and FlashRNN's sizes: each launch an H100's plan makes, compiled for sm_90, takes no
    more shared memory than the plan counted on nor than the GPU allows (every launch has
    that count: the tool sees the plan of each family's module). At H=768 each cell's kernels
    stream W_hh (the sLSTM's R) in slices of 256 columns."""
    result = _tool("triton_resources.py", "--cells", "lstm,gru,slstm", "--sizes",
                   "fastrnns,flashrnn", "--dtype", "float32")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "12 launches compiled for sm_90, 0 wrong; 0 (cell, size, dtype) refused" in result.stdout
    streamed = r"(lstm|gru|slstm) +flashrnn +float32 +\w+ +1x48 +16/16/1024/256 "  # b/h/k/slice
    assert len(re.findall(streamed, result.stdout)) == 6, result.stdout
    # every launch was checked against its plan's count: the tool saw each runner's plan
    rows = [line.split() for line in result.stdout.splitlines()]
    plans = [row[7] for row in rows if row and row[0] in ("lstm", "gru", "slstm")]
    assert len(plans) == 12 and all(plan.isdigit() for plan in plans), result.stdout


def test_the_resource_tool_compiles_under_a_register_cap_when_asked():
    """--maxnreg compiles every launch with Triton's option of that name, to ask what a cap
    would change (the kernels pass none): no launch uses more registers than the cap. A cap
    sm_90 cannot have is a one-line usage error."""
    command = ["--cells", "gru", "--sizes", "fastrnns", "--dtype", "float32", "--maxnreg", "64"]
    result = _tool("triton_resources.py", *command)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("gru ")]
    assert [row[3] for row in rows] == ["gru_forward", "gru_backward"], result.stdout
    assert all(int(row[-2]) <= 64 for row in rows), result.stdout
    bad = _tool("triton_resources.py", *command[:-1], "300")
    assert bad.returncode == 2 and "--maxnreg must be from 16 to 255" in bad.stderr, bad.stderr
    assert "Traceback" not in bad.stderr


def test_the_tools_reach_every_family_module():
    """FAMILY_MODULES, which the layout tools walk to replace plan() and _on_chip, names
    every module of the package that runs a family (each file but __init__ and the
    kernels' own)."""
    package = Path(fused_triton.__file__).parent
    files = {p.stem for p in package.glob("*.py")} - {"__init__"}
    assert set(fused_triton.FAMILY_MODULES) == {f for f in files if not f.endswith("kernels")}


def test_the_resource_tool_lays_out_bfloat16_weights_in_bfloat16():
    """The interpreter is handed bfloat16 weights in float32 (_on_chip); the tools hand the
    kernels the GPU's types instead, in every family's module, or the compiled tiles would
    be twice the plan's shared memory (each row WRONG)."""
    result = _tool("triton_resources.py", "--cells", "lstm", "--sizes", "fastrnns", "--dtype",
                   "bfloat16")  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 launches compiled for sm_90, 0 wrong" in result.stdout, result.stdout


def test_the_resource_tool_names_a_launch_the_plan_undercounted(monkeypatch):
    """The check behind the test above: a launch whose compiled shared memory is above the
    plan's count, or above the GPU's limit, or whose registers cannot all be resident, is
    reported, each in words."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "tools"))
    from triton_resources import _problems

    fine = dict(num_warps=8, shared=150_000, model=160_000, registers=200)
    assert _problems(fine, 232_448) == []
    worse = dict(fine, shared=240_000, num_warps=16)
    assert _problems(worse, 232_448) == [
        "shared 240000 > the limit 232448",
        "shared 240000 > the plan's 160000",
        "registers 200 x 512 threads > 65536",
    ]
