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


def _record_launches(cells: list[str]) -> list[dict]:
    """The kernel (module and name), signature, constexprs and warps of every launch the
    cells make, under the interpreter (this process must not have defined the kernels
    compiled before)."""
    os.environ["TRITON_INTERPRET"] = "1"
    import torch
    from gpu_check import make_layer  # main() put benchmarks/ on the path
    from triton.runtime import interpreter

    from lstmkit.layers import _memory_stack
    from lstmkit.layers.backends import fused, fused_triton
    from lstmkit.layers.backends.fused_triton import stacks

    fused.kernels_for = lambda device_type: fused_triton
    _memory_stack.stack_kernels = lambda device_type: stacks
    # on a GPU the weights go on chip in their own dtype; the interpreter gets bfloat16 ones
    # in float32 (its NumPy has no bfloat16 arithmetic): record the GPU's types, and accept
    # that the interpreted bfloat16 numbers are meaningless here
    import importlib

    for module in ("", ".clockwork", ".slstm", ".stacks"):
        owner = importlib.import_module(f"lstmkit.layers.backends.fused_triton{module}")
        owner._on_chip = lambda w: w.contiguous()
    launches: dict[tuple, tuple] = {}
    run = interpreter.InterpretedFunction.run

    def recording(self, *args, grid, warmup, **kwargs):
        names = list(self.arg_names)
        constexprs = {n: kwargs[n] for n in names if n in kwargs}
        signature = {}
        for name, value in zip(names, args, strict=False):
            signature[name] = _type_of(value)
        for name in names[len(args) :]:
            if name in constexprs:
                signature[name] = "constexpr"
        warps = kwargs.get("num_warps", 4)
        key = (self.fn.__module__, self.fn.__name__, tuple(sorted(signature.items())),
               tuple(sorted(constexprs.items())), warps)  # fmt: skip
        launches[key] = dict(
            module=self.fn.__module__, name=self.fn.__name__, signature=signature,
            constexprs=constexprs, num_warps=warps,
        )  # fmt: skip
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
    import importlib
    import inspect

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    target = GPUTarget("cuda", 90, 32)
    failures, done = [], 0
    for launch in launches:
        fn = getattr(importlib.import_module(launch["module"]), launch["name"])
        signature, constexprs, warps = (
            launch["signature"],
            launch["constexprs"],
            launch["num_warps"],
        )
        variants = [constexprs]
        if constexprs.get("N_SPLIT") == 1:
            variants.append({**constexprs, "N_SPLIT": 2})
        params = list(inspect.signature(fn.fn).parameters)
        for consts in variants:
            source = ASTSource(
                fn=fn,
                signature={n: signature.get(n, "constexpr") for n in params},
                constexprs={(params.index(k),): v for k, v in consts.items()},
            )
            try:
                triton.compile(source, target=target, options=dict(num_warps=warps))
            except Exception as error:  # every refusal is a finding, reported together
                first = str(error).strip().splitlines()
                failures.append(f"{fn.fn.__name__} {consts}: {first[-1] if first else error!r}")
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
