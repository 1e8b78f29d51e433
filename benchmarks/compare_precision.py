"""A language model trained twice, in float32 and in bf16-mixed precision, from the same
seed, data order and schedule: do the loss curves match, and how fast is each?

Both runs are ``lstmkit train`` runs (:func:`lstmkit.lm.train.train`) that differ only in
``precision``: "32", or "bf16-mixed" (float32 weights and AdamW, the forward and backward in
bfloat16 under torch.autocast, the loss in float32). They run one after the other on the
same machine. The script prints the validation loss of both at every evaluation, the final
loss on the whole validation text, the training speed in tokens per second and bf16's speed
as a ratio of float32's, and draws both runs' curves in one PNG.

    python benchmarks/compare_precision.py                    # stories, 600 steps each
    python benchmarks/compare_precision.py --corpus FILE --steps 2000 --out runs/precision
    python benchmarks/compare_precision.py --quick            # a smoke test, seconds
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure

from lstmkit.lm.train import METRICS, TrainConfig, read_metrics, train
from lstmkit.plots._figure import save

PRECISIONS = ("32", "bf16-mixed")


def run_both(config: TrainConfig, out: Path, progress: bool) -> dict:
    """Train ``config`` in each precision into ``out/<precision>``; the comparison's record."""
    runs = {}
    for precision in PRECISIONS:
        folder = out / precision
        start = time.perf_counter()
        result = train(
            TrainConfig(**{**config.to_json(), "precision": precision}), folder, progress=progress
        )
        seconds = time.perf_counter() - start
        records = read_metrics(folder / METRICS)
        runs[precision] = {
            "run": str(folder),
            "config_precision": json.loads((folder / "config.json").read_text())["training"][
                "precision"
            ],
            "seconds": seconds,
            "tokens": result.position.tokens,
            "tokens_per_second": result.position.tokens / seconds,
            "final_valid_loss": result.valid.loss,
            "valid": [(r["step"], r["valid_loss"]) for r in records if "valid_loss" in r],
            "train": [(r["step"], r["train_loss"]) for r in records if "train_loss" in r],
            "level": result.vocabulary.level,
        }
    full, mixed = runs["32"], runs["bf16-mixed"]
    return {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
        f"threads, torch {torch.__version__}",
        "config": config.to_json(),
        "runs": runs,
        "speed_ratio_bf16_over_32": mixed["tokens_per_second"] / full["tokens_per_second"],
        "final_loss_difference": mixed["final_valid_loss"] - full["final_valid_loss"],
    }


def report(comparison: dict) -> str:
    full, mixed = comparison["runs"]["32"], comparison["runs"]["bf16-mixed"]
    lines = [f"machine: {comparison['machine']}", "validation loss (nats per token):"]
    lines.append(f"  {'step':>6}  {'float32':>9}  {'bf16-mixed':>10}  {'difference':>10}")
    for (step, a), (_, b) in zip(full["valid"], mixed["valid"], strict=True):
        lines.append(f"  {step:>6}  {a:>9.4f}  {b:>10.4f}  {b - a:>+10.4f}")
    lines += [
        f"whole validation text: float32 {full['final_valid_loss']:.4f}, bf16-mixed "
        f"{mixed['final_valid_loss']:.4f} ({comparison['final_loss_difference']:+.4f})",
        f"speed: float32 {full['tokens_per_second']:,.0f} tokens/s, bf16-mixed "
        f"{mixed['tokens_per_second']:,.0f} tokens/s "
        f"({comparison['speed_ratio_bf16_over_32']:.2f}x float32's; wall time, evaluations "
        "included)",
    ]
    return "\n".join(lines)


def plot(comparison: dict, path: Path) -> None:
    """Both runs' training loss (smoothed over 10 logs) and validation loss against step."""
    fig = Figure(figsize=(7, 4), layout="tight")
    ax = fig.subplots()
    for precision, colour in zip(PRECISIONS, ("tab:blue", "tab:orange"), strict=True):
        run = comparison["runs"][precision]
        steps, losses = zip(*run["train"], strict=True)
        ax.plot(steps, _smooth(losses, 10), color=colour, lw=1, alpha=0.7,
                label=f"{precision}: training (mean of 10 logs)")  # fmt: skip
        steps, losses = zip(*run["valid"], strict=True)
        ax.plot(steps, losses, "o-", color=colour, lw=1.5, label=f"{precision}: validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title("The same run in float32 and in bf16-mixed precision")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)


def _smooth(values, width: int) -> list[float]:
    return [
        math.fsum(values[max(0, k - width + 1) : k + 1]) / (k + 1 - max(0, k - width + 1))
        for k in range(len(values))
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="stories", help="as lstmkit train's (stories)")
    parser.add_argument("--steps", type=int, default=600, help="training steps per run (600)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden units (256)")
    parser.add_argument("--out", type=Path, default=Path("runs/precision"), help="run folders")
    parser.add_argument("--json", type=Path, default=None, help="also write the record here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    steps, hidden = (12, 16) if args.quick else (args.steps, args.hidden)
    config = TrainConfig(
        corpus=args.corpus,
        hidden_size=hidden,
        steps=steps,
        eval_every=max(steps // 6, 1),
        eval_tokens=2_000 if args.quick else 50_000,
        seed=0,
    )
    comparison = run_both(config, args.out, progress=not args.quiet)
    plot(comparison, args.out / "loss-curves.png")
    print(report(comparison))
    print(f"plot: {args.out / 'loss-curves.png'}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(comparison, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
