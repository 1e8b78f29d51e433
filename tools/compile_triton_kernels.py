"""Compile every Triton kernel lstmkit launches for a Hopper GPU (sm_90), on a machine without
one: what the interpreter, which runs the kernels' Python, lets pass and the compiler would
refuse (a construct Triton cannot lower, a type it cannot unify, a constexpr used at run time).

    python tools/compile_triton_kernels.py               # every fused cell, a few minutes
    python tools/compile_triton_kernels.py --cells rnn   # one cell

How: it runs each fused cell forward and backward on tiny CPU tensors through the Triton
kernels under the interpreter (float32 and bfloat16, the units in one program and split over
two, sequences that end early), records every launch (the kernel, its arguments' types, its
constexprs and warps), and compiles each distinct one ahead of time for
``GPUTarget("cuda", 90, 32)`` with Triton's own compiler; a launch with a grid barrier
(``N_SPLIT``) is compiled with the barrier on as well, which the interpreter never runs.
Compiling is not running: the barrier's behaviour and the speed need a GPU
(``benchmarks/gpu_check.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def kernels_on_the_cpu() -> None:
    """Point the fused backend's CPU tensors (and the stacks') at the Triton kernels, with
    W_hh handed to them in its own dtype. On a GPU the weights go on chip in their own
    dtype; the interpreter gets bfloat16 ones in float32 (its NumPy has no bfloat16
    arithmetic): recording wants the GPU's types, and accepts that the interpreted bfloat16
    numbers are meaningless."""
    from lstmkit.layers import _memory_stack
    from lstmkit.layers.backends import fused, fused_triton
    from lstmkit.layers.backends.fused_triton import stacks

    fused.kernels_for = lambda device_type: fused_triton
    _memory_stack.stack_kernels = lambda device_type: stacks
    replace_in_family_modules("_on_chip", lambda w: w.contiguous())


def replace_in_family_modules(name: str, value) -> None:
    """Set ``name`` to ``value`` in every module of fused_triton.FAMILY_MODULES that has
    it: each imported plan() and the helpers by name, so replacing them in the package
    alone would not reach the code that calls them."""
    import importlib

    from lstmkit.layers.backends import fused_triton

    for module in fused_triton.FAMILY_MODULES:
        owner = importlib.import_module(f"{fused_triton.__name__}.{module}")
        if hasattr(owner, name):
            setattr(owner, name, value)


def describe_launch(kernel, args: tuple, kwargs: dict) -> dict:
    """One launch of an interpreted kernel: its module and name, its arguments' Triton
    types, its constexprs and its warps and pipelining stages (Triton's defaults if not
    given)."""
    names = list(kernel.arg_names)
    return dict(
        module=kernel.fn.__module__, name=kernel.fn.__name__,
        signature={name: _type_of(value) for name, value in zip(names, args, strict=False)},
        constexprs={n: kwargs[n] for n in names if n in kwargs},
        num_warps=kwargs.get("num_warps", 4), num_stages=kwargs.get("num_stages", 3),
    )  # fmt: skip


def compile_for_hopper(launch: dict, constexprs: dict | None = None, maxnreg: int | None = None):
    """A recorded launch compiled for sm_90 by Triton's own compiler (with ``constexprs``
    instead of the recorded ones, if given, and at most ``maxnreg`` registers a thread, if
    given: Triton's option of that name); the kernels must be defined compiled."""
    import importlib
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = getattr(importlib.import_module(launch["module"]), launch["name"])
    params = list(inspect.signature(fn.fn).parameters)
    consts = launch["constexprs"] if constexprs is None else constexprs
    source = ASTSource(
        fn=fn,
        signature={n: launch["signature"].get(n, "constexpr") for n in params},
        constexprs={(params.index(k),): v for k, v in consts.items()},
    )
    options = dict(num_warps=launch["num_warps"], num_stages=launch.get("num_stages", 3))
    if maxnreg is not None:
        options["maxnreg"] = maxnreg
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options)


def _record_launches(cells: list[str]) -> list[dict]:
    """Every distinct launch the cells make (:func:`describe_launch`), under the interpreter
    (this process must not have defined the kernels compiled before)."""
    os.environ["TRITON_INTERPRET"] = "1"
    import torch
    from gpu_check import make_layer  # main() put benchmarks/ on the path
    from triton.runtime import interpreter

    from lstmkit.layers.backends import fused_triton

    kernels_on_the_cpu()
    launches: dict[str, dict] = {}
    run = interpreter.InterpretedFunction.run

    def recording(self, *args, grid, warmup, **kwargs):
        launch = describe_launch(self, args, kwargs)
        launches.setdefault(json.dumps(launch, sort_keys=True), launch)
        return run(self, *args, grid=grid, warmup=warmup, **kwargs)

    interpreter.InterpretedFunction.run = recording
    for name in cells:
        for dtype in (torch.float32, torch.bfloat16):
            for block_h, lengths in ((None, None), (16, [6, 3, 5])):
                fused_triton.FORCE_BLOCK_H = block_h
                torch.manual_seed(0)
                layer = make_layer(name, 3, 20, "fused").to(dtype)
                x = torch.randn(6, 3, 3, dtype=dtype, requires_grad=True)
                layer(x, lengths=lengths)[0].float().sum().backward()
    interpreter.InterpretedFunction.run = run
    return list(launches.values())


def _type_of(value) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        names = {
            torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16",
            torch.uint8: "u8", torch.int32: "i32", torch.int64: "i64", torch.bool: "u8",
        }  # fmt: skip
        return "*" + names[value.dtype]
    if isinstance(value, bool):
        return "i1"
    if isinstance(value, int):
        return "i32" if -(2**31) <= value < 2**31 else "i64"
    if isinstance(value, float):
        return "fp32"
    raise TypeError(f"no Triton type for {type(value).__name__}")


def _compile(launches: list[dict]) -> list[str]:
    """Compile each launch for sm_90 (twice where it has a barrier: off and on); returns
    the failures, one line each. The kernels are imported here compiled, not interpreted."""
    failures, done = [], 0
    for launch in launches:
        variants = [launch["constexprs"]]
        if launch["constexprs"].get("N_SPLIT") == 1:
            variants.append({**launch["constexprs"], "N_SPLIT": 2})
        for consts in variants:
            try:
                compile_for_hopper(launch, consts)
            except Exception as error:  # every refusal is a finding, reported together
                first = str(error).strip().splitlines()
                failures.append(f"{launch['name']} {consts}: {first[-1] if first else error!r}")
            done += 1
    print(f"compiled {done - len(failures)} of {done} kernel variants for sm_90", flush=True)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    from gpu_check import PROJECTED, fused_cells

    parser.add_argument(
        "--cells", default=None,
        help="comma list of registry cells and of " + ", ".join(PROJECTED)
        + " (default: every fused cell and all of those)",
    )  # fmt: skip

    parser.add_argument("--record", default=None, help=argparse.SUPPRESS)  # the child's job
    args = parser.parse_args(argv)
    if args.record:  # in a child process, interpreted: the launches, as JSON
        cells = args.cells.split(",")
        with open(args.record, "w") as out:
            json.dump(_record_launches(cells), out)
        return 0
    cells = args.cells.split(",") if args.cells else fused_cells()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        record = os.path.join(folder, "launches.json")
        env = {**os.environ, "TRITON_INTERPRET": "1"}
        child = [sys.executable, __file__, "--cells", ",".join(cells), "--record", record]
        subprocess.run(child, env=env, check=True)
        with open(record) as saved:
            launches = json.load(saved)
    print(f"{len(launches)} distinct launches recorded from {len(cells)} cells", flush=True)
    failures = _compile(launches)
    for line in failures:
        print("FAILED", line)
    print(f"{time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
