"""What each Triton kernel lstmkit launches at a real size would ask of a Hopper GPU (sm_90),
measured on a machine without one: the shared memory a program needs, its registers and the
stack its registers spill to, compiled by Triton's own compiler with the plan an H100 gets.

    python tools/triton_resources.py                                  # the LSTM, GRU and RNN
    python tools/triton_resources.py --cells all --sizes fastrnns,flashrnn,deepbench
    python tools/triton_resources.py --cells lstm --sizes flashrnn --dtype bfloat16
    python tools/triton_resources.py --cells gru --sizes fastrnns --dtype float32 --maxnreg 128

How: each cell runs forward and backward on CPU tensors of the size (two steps: the plan
does not depend on the length) with the kernels defined for the interpreter but never run:
every launch is recorded (kernel, argument types, constexprs, warps) and skipped, while the
plan is made for ``fused_triton.H100_LIMITS``, not the interpreter. Each distinct launch is
then compiled for ``GPUTarget("cuda", 90, 32)``; the shared memory comes from Triton's
metadata (what its launcher checks against the GPU's limit) and the registers and stack from
``cuobjdump -res-usage`` on the cubin (Triton's wheel ships both).

A launch whose shared memory is above the limit would fail on the GPU (Triton's
OutOfResources); registers times threads above 65,536 would too; and one above the plan's
own count (the "plan" column, ``Plan.shared``) means the plan could lay out a launch that
fails. Those rows are marked WRONG and make the exit status 1. A stack above 0 bytes means
registers spilled to local memory: it runs, slower; the column shows it, it is not an
error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from compile_triton_kernels import (  # a sibling script, not a package
    compile_for_hopper,
    describe_launch,
    kernels_on_the_cpu,
    replace_in_family_modules,
)

REGISTERS_PER_MULTIPROCESSOR = 65536
DEFAULT_CELLS = "lstm,gru,rnn"
DEFAULT_SIZES = "fastrnns,flashrnn"


def _record(cells: list[str], sizes: list[str], dtypes: list[str]) -> list[dict]:
    """Every launch of each (cell, size, dtype), recorded without running (this process
    must have TRITON_INTERPRET=1 from its start)."""
    import torch
    from gpu_check import make_layer
    from triton.runtime import interpreter

    from lstmkit.bench.configs import preset_sizes
    from lstmkit.layers.backends import fused_triton

    kernels_on_the_cpu()
    fused_triton.gpu_limits = lambda device: fused_triton.H100_LIMITS
    launches: list[dict] = []
    context: dict = {}
    plan = fused_triton.plan

    def planning(batch, hidden, gates, dtype, device, **options):
        """The plan, and the shared memory it counted on for the launches that follow."""
        layout = plan(batch, hidden, gates, dtype, device, **options)
        context["model"] = layout.shared
        return layout

    replace_in_family_modules("plan", planning)

    def recording(self, *args, grid, warmup, **kwargs):  # records, and does not run
        grid = [int(g) for g in (grid(kwargs) if callable(grid) else grid)]
        launches.append(dict(**context, **describe_launch(self, args, kwargs), grid=grid))

    interpreter.InterpretedFunction.run = recording
    for size in preset_sizes(sizes):
        for name in cells:
            for dtype_name in dtypes:
                dtype = getattr(torch, dtype_name)
                context.update(cell=name, size=size.name, B=size.B, H=size.H, dtype=dtype_name,
                               model=None)  # fmt: skip
                layer = make_layer(name, size.I, size.H, "fused").to(dtype)
                x = torch.zeros(2, size.B, size.I, dtype=dtype, requires_grad=True)
                try:
                    layer(x)[0].float().sum().backward()
                except fused_triton.TritonUnavailable as error:  # the plan refused the size
                    launches.append(dict(**context, refused=str(error)))
    return launches


def _distinct(launches: list[dict]) -> list[dict]:
    """One launch per (context, kernel, constexprs): a loop's launches differ only in their
    arguments' values."""
    seen = {}
    for launch in launches:  # a refusal stays, as its own row
        key = json.dumps({k: v for k, v in launch.items() if k != "grid"}, sort_keys=True)
        seen.setdefault(key, launch)
    return list(seen.values())


def _measure(launch: dict, folder: str, maxnreg: int | None = None) -> dict:
    """Compile one launch for sm_90 (with at most ``maxnreg`` registers a thread, if given):
    its shared memory, registers and stack."""
    import triton

    kernel = compile_for_hopper(launch, maxnreg=maxnreg)
    cubin = os.path.join(folder, "kernel.cubin")
    with open(cubin, "wb") as out:
        out.write(kernel.asm["cubin"])
    tools = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    usage = subprocess.run(
        [os.path.join(tools, "cuobjdump"), "-res-usage", cubin],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    registers = int(re.search(r"REG:(\d+)", usage)[1])
    stack = int(re.search(r"STACK:(\d+)", usage)[1])
    return dict(shared=kernel.metadata.shared, registers=registers, stack=stack)


def _problems(launch: dict, shared_limit: int) -> list[str]:
    """What is wrong with a compiled launch, in words: an H100 limit it exceeds (the launch
    would fail), or more shared memory than the plan counted on (the plan could lay out a
    launch that fails)."""
    threads = launch["num_warps"] * 32
    problems = []
    if launch["shared"] > shared_limit:
        problems.append(f"shared {launch['shared']} > the limit {shared_limit}")
    if launch["model"] is not None and launch["shared"] > launch["model"]:
        problems.append(f"shared {launch['shared']} > the plan's {launch['model']}")
    if launch["registers"] * threads > REGISTERS_PER_MULTIPROCESSOR:
        problems.append(f"registers {launch['registers']} x {threads} threads > 65536")
    return problems


HEADER = (
    f"{'cell':22} {'size':22} {'dtype':9} {'kernel':22} {'grid':>6} {'b/h/k':>12} "
    f"{'warps':>5} {'plan':>7} {'shared':>7} {'regs':>4} {'stack':>6}"
)


def _row(launch: dict) -> str:
    head = f"{launch['cell']:22} {launch['size']:22} {launch['dtype']:9} "
    if "refused" in launch:
        return head + "refused: " + launch["refused"].split(": ", 1)[-1]
    c = launch["constexprs"]
    tile = f"{c.get('BLOCK_B', '-')}/{c.get('BLOCK_H', '-')}/{c.get('BLOCK_K', '-')}"
    if c.get("BLOCK_KC", c.get("BLOCK_K")) != c.get("BLOCK_K"):  # W_hh streamed in slices
        tile += f"/{c['BLOCK_KC']}"
    grid = "x".join(str(g) for g in launch["grid"][:2])
    model = "-" if launch["model"] is None else launch["model"]
    return (
        head + f"{launch['name']:22} {grid:>6} {tile:>12} {launch['num_warps']:>5} {model:>7} "
        f"{launch['shared']:>7} {launch['registers']:>4} {launch['stack']:>6}"
    )


def _recorded(args) -> list[dict]:
    """The distinct launches, recorded by this script in a child process under the
    interpreter (the kernels are defined for it or for the compiler once per process)."""
    with tempfile.TemporaryDirectory() as folder:
        record = os.path.join(folder, "launches.json")
        env = {**os.environ, "TRITON_INTERPRET": "1"}
        child = [sys.executable, __file__, "--cells", args.cells, "--sizes", args.sizes,
                 "--dtype", args.dtype, "--record", record]  # fmt: skip
        subprocess.run(child, env=env, check=True)
        with open(record) as saved:
            return json.load(saved)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    parser.add_argument(
        "--cells", default=DEFAULT_CELLS, help=f"comma list of fused cells or all ({DEFAULT_CELLS})"
    )
    parser.add_argument(
        "--sizes", default=DEFAULT_SIZES, help=f"comma list of bench size presets ({DEFAULT_SIZES})"
    )
    parser.add_argument("--dtype", default="float32,bfloat16", help="comma list")
    parser.add_argument("--json", default=None, help="also write every row to this file")
    parser.add_argument(
        "--maxnreg", type=int, default=None,
        help="compile every launch with Triton's maxnreg option (registers a thread at most); "
        "the kernels do not pass it, this asks what it would change",
    )  # fmt: skip
    parser.add_argument("--record", default=None, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args(argv)
    if args.maxnreg is not None and not 16 <= args.maxnreg <= 255:
        parser.error(
            f"--maxnreg must be from 16 to 255 (sm_90's registers a thread), got {args.maxnreg}"
        )
    if args.cells == "all":
        from gpu_check import fused_cells

        args.cells = ",".join(fused_cells())
    if args.record:  # in the child, interpreted: the launches, as JSON
        launches = _record(args.cells.split(","), args.sizes.split(","), args.dtype.split(","))
        with open(args.record, "w") as out:
            json.dump(_distinct(launches), out)
        return 0
    launches = _recorded(args)
    os.environ.pop("TRITON_INTERPRET", None)  # this process compiles
    from lstmkit.layers.backends.fused_triton import H100_LIMITS

    print(HEADER, flush=True)
    failures = 0
    with tempfile.TemporaryDirectory() as folder:
        for launch in launches:
            if "refused" not in launch:
                launch.update(_measure(launch, folder, args.maxnreg))
                launch["problems"] = _problems(launch, H100_LIMITS.shared_bytes)
                failures += bool(launch["problems"])
            problems = launch.get("problems")
            print(_row(launch) + (f"  WRONG: {'; '.join(problems)}" if problems else ""),
                  flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as out:
            json.dump(launches, out, indent=1)
    refused = sum("refused" in launch for launch in launches)
    print(
        f"{len(launches) - refused} launches compiled for sm_90, {failures} wrong; "
        f"{refused} (cell, size, dtype) refused by the plan"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
