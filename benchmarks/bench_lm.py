"""Training speed of lstmkit's language model against the same model built from
torch.nn.LSTM, in tokens per second, measured in the same run.

Both models are embedding -> 2-layer LSTM -> linear head, with the same sizes, batch and
weights; one training step is forward, cross-entropy, backward, gradient clipping and an
AdamW step, on the same batch of random token ids. The two take turns within every
repeat, so a slow moment of the machine hits both, and the median of the repeats is
reported with lstmkit's speed as a ratio of torch's.

    python benchmarks/bench_lm.py               # lstmkit train's defaults (2 x 256, 32 x 128)
    python benchmarks/bench_lm.py --quick       # tiny sizes, a smoke test
    python benchmarks/bench_lm.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from lstmkit.lm.model import LanguageModel, LMConfig
from lstmkit.lm.train import TrainConfig

VOCAB = 65  # the characters of the Shakespeare text


class TorchLM(nn.Module):
    """The same model as LanguageModel(cell="lstm"), written with torch.nn.LSTM."""

    def __init__(self, vocab: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, hidden)
        self.rnn = nn.LSTM(hidden, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids, state=None):
        y, state = self.rnn(self.embedding(ids), state)
        return self.head(y), state


@dataclass
class Row:
    model: str
    tokens_per_second: float
    ratio: float  # tokens per second / torch.nn.LSTM's


def _step(model: nn.Module, optimizer, ids: torch.Tensor) -> float:
    start = time.perf_counter()
    logits, _ = model(ids[:, :-1])
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return time.perf_counter() - start


def run(hidden: int, layers: int, batch: int, seq_len: int, repeats: int, warmup: int) -> list[Row]:
    torch.manual_seed(0)
    ours = LanguageModel(LMConfig(vocab_size=VOCAB, hidden_size=hidden, num_layers=layers))
    theirs = TorchLM(VOCAB, hidden, layers)
    theirs.load_state_dict(ours.state_dict())  # same names, same weights
    models = {"torch.nn.LSTM": theirs, "lstmkit": ours}
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-3) for k, m in models.items()}
    ids = torch.randint(VOCAB, (batch, seq_len + 1))
    times: dict[str, list[float]] = {k: [] for k in models}
    for repeat in range(warmup + repeats):
        for name, model in models.items():
            seconds = _step(model, optimizers[name], ids)
            if repeat >= warmup:
                times[name].append(seconds)
    rate = {k: batch * seq_len / statistics.median(v) for k, v in times.items()}
    return [Row(k, rate[k], rate[k] / rate["torch.nn.LSTM"]) for k in models]


def main(argv: list[str] | None = None) -> int:
    d = TrainConfig(level="char").resolved()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke test")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.quick:
        sizes = dict(hidden=8, layers=2, batch=2, seq_len=8)
    else:
        sizes = dict(hidden=d.hidden_size, layers=d.num_layers, batch=d.batch_size)
        sizes["seq_len"] = d.seq_len
    rows = run(**sizes, repeats=args.repeats, warmup=args.warmup)
    print(
        f"# language-model training step, {sizes}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )
    print(f"{'model':<16} {'tokens/s':>10} {'vs torch':>9}")
    for row in rows:
        print(f"{row.model:<16} {row.tokens_per_second:>10,.0f} {row.ratio:>8.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
