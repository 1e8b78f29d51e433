"""Training a language model: truncated BPTT, AdamW, warmup and cosine decay, checkpoints
that resume exactly, one process or many.

The loop, step by step:

1. take batch (epoch, index) of :class:`~lstmkit.lm.batches.StreamBatches`, each row the
   continuation of the previous batch's row, and start from the hidden state the previous
   batch ended with, detached (truncated BPTT: values carried, gradients cut at T steps);
   a new epoch starts from a zero state;
2. cross-entropy of the next token at every step, backward, clip the gradient norm, AdamW
   step at the scheduled learning rate (:func:`learning_rate`);
3. every ``log_every`` steps a metrics line; every ``eval_every`` steps the validation loss,
   the loss plot and a checkpoint (:mod:`lstmkit.lm.checkpoint`); a last one at the end.

A time budget (``minutes``) becomes a step count after ``_CALIBRATION_STEPS`` steps at the
measured speed, and the schedule decays over that count; from then on the run is counted in
steps like any other, so a resumed run follows the same schedule. A deadline still stops
the run at the budget if the machine slows down.

A checkpoint holds the weights, AdamW's moments, the step, the data position (epoch and
batch), the hidden state carried into the next batch and every process's RNG state, so a
resumed run takes exactly the steps the uninterrupted run would have taken (the tests
compare the weights bit for bit).

Under ``torchrun`` each process reads its rows of every batch
(:mod:`lstmkit.lm.distributed`) and DistributedDataParallel averages the gradients, which
is the gradient of the whole batch; only rank 0 evaluates and writes.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lstmkit._dataclass_json import dataclass_from_json
from lstmkit.checkpoints import optimizer_tensors, restore_optimizer
from lstmkit.layers.named import MODERN_CELLS
from lstmkit.lm import distributed
from lstmkit.lm.batches import StreamBatches
from lstmkit.lm.checkpoint import (
    MODEL_FILE,
    CheckpointError,
    RunConfig,
    checkpoint_dir,
    load_config,
    load_trainer,
    load_weights,
    model_tensors,
    save_checkpoint,
    save_config,
    write_atomic,
)
from lstmkit.lm.corpus import CorpusError
from lstmkit.lm.evaluate import Evaluation, evaluate_ids
from lstmkit.lm.model import (
    LanguageModel,
    LMConfig,
    count_parameters,
    detach_state,
    state_from_tensors,
    state_tensors,
)
from lstmkit.lm.sources import default_level, open_corpus
from lstmkit.lm.vocab import LEVELS, Vocabulary
from lstmkit.plots.training import plot_losses
from lstmkit.progress import Progress

DEFAULT_MINUTES = 2.0
LEVEL_DEFAULTS: dict[str, dict[str, object]] = {
    # characters: char-rnn's shape, two layers over 128 steps (a sentence or two)
    "char": {"num_layers": 2, "seq_len": 128, "learning_rate": 3e-3},
    # words: one layer over 64 steps, a story or two, at a higher rate; 3,000 steps at these
    # settings learn the stories' facts (docs/language-models.md)
    "word": {"num_layers": 1, "seq_len": 64, "learning_rate": 5e-3},
}
_CALIBRATION_STEPS = 30  # steps timed (after the first few) to turn minutes into steps
_CALIBRATION_SKIP = 5  # the first steps are slow (allocation, thread start-up)
_BUDGET_SHARE = 0.9  # of a time budget, what the training steps may use; the rest: evals
_EVALS_PER_RUN = 10
METRICS = "metrics.jsonl"
PRECISIONS = ("32", "bf16-mixed")
PLOT = "loss.png"


@dataclass(frozen=True)
class TrainConfig:
    """A training run's settings; saved in the run's config.json, reused by --resume."""

    corpus: str = "stories"
    """A built-in corpus (stories, stdlib) or a UTF-8 text file or folder."""
    valid: str | None = None
    """A separate validation file or folder; None splits the corpus (files, or its tail)."""
    level: str | None = None
    """'char' or 'word'; None: words for the stories, characters otherwise."""
    max_vocab: int = 20_000
    """Word level: the most frequent words kept, the rest read as UNK."""
    cell: str = "lstm"
    hidden_size: int = 256
    num_layers: int | None = None
    """Recurrent layers; None: by level (LEVEL_DEFAULTS)."""
    embedding_size: int | None = None
    dropout: float = 0.0
    tie_weights: bool = False
    forget_bias: float | None = 1.0
    batch_size: int = 32
    """Streams read side by side (all processes together)."""
    seq_len: int | None = None
    """Steps of backpropagation through time per batch; None: by level."""
    learning_rate: float | None = None
    """Peak AdamW learning rate, reached after the warmup; None: by level."""
    min_lr_ratio: float = 0.1
    """The cosine decay ends at learning_rate * min_lr_ratio."""
    warmup_steps: int = 100
    weight_decay: float = 0.01
    """AdamW's decoupled decay, on the weight matrices only (not biases)."""
    grad_clip: float = 1.0
    """Largest gradient norm; 0 turns clipping off."""
    steps: int | None = None
    """Training steps; None: as many as ``minutes`` allow."""
    minutes: float | None = None
    """Time budget; None with steps None means DEFAULT_MINUTES."""
    eval_every: int | None = None
    """Steps between evaluations and checkpoints; None: about ten per run."""
    eval_tokens: int = 50_000
    """Validation tokens read at each interval (the whole text at the end)."""
    log_every: int = 10
    seed: int = 0
    device: str = "auto"
    """'auto' (CUDA when there is one), 'cpu' or 'cuda'."""
    precision: str = "32"
    """'32': float32 throughout. 'bf16-mixed' (Lightning's name): float32 weights and
    optimizer, the forward (and so the backward) under torch.autocast in bfloat16, the loss
    in float32; evaluation runs the same way."""

    def __post_init__(self) -> None:
        check_train_config(self)

    @property
    def budget_seconds(self) -> float | None:
        if self.steps is not None:
            return None if self.minutes is None else self.minutes * 60
        return (DEFAULT_MINUTES if self.minutes is None else self.minutes) * 60

    def resolved_level(self) -> str:
        return self.level or default_level(self.corpus)

    def resolved(self) -> TrainConfig:
        """These settings with every None that has a default by level filled in."""
        level = self.resolved_level()
        filled = {k: v for k, v in LEVEL_DEFAULTS[level].items() if getattr(self, k) is None}
        return replace(self, level=level, **filled)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> TrainConfig:
        return dataclass_from_json(cls, data, "training settings")


def check_train_config(c: TrainConfig) -> None:
    """Raise ValueError naming the first setting out of range (model fields: LMConfig)."""
    for name in ("batch_size", "seq_len", "warmup_steps", "log_every", "eval_tokens"):
        value = getattr(c, name)
        if value is None and name == "seq_len":
            continue  # filled in by level
        least = 0 if name == "warmup_steps" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            bound = "non-negative" if name == "warmup_steps" else "positive"
            raise ValueError(f"{name} must be a {bound} integer, got {value!r}")
    for name in ("steps", "eval_every"):
        value = getattr(c, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if c.minutes is not None and not (math.isfinite(c.minutes) and c.minutes > 0):
        raise ValueError(f"minutes must be a positive number, got {c.minutes!r}")
    if c.learning_rate is not None and not (math.isfinite(c.learning_rate) and c.learning_rate > 0):
        raise ValueError(f"learning_rate must be a positive number, got {c.learning_rate!r}")
    if not 0 <= c.min_lr_ratio <= 1:
        raise ValueError(f"min_lr_ratio must be in [0, 1], got {c.min_lr_ratio!r}")
    if not (math.isfinite(c.weight_decay) and c.weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {c.weight_decay!r}")
    if not (math.isfinite(c.grad_clip) and c.grad_clip >= 0):
        raise ValueError(f"grad_clip must be >= 0 (0: no clipping), got {c.grad_clip!r}")
    if c.level is not None and c.level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {c.level!r}")
    if c.max_vocab < 2:
        raise ValueError(f"max_vocab must be at least 2, got {c.max_vocab!r}")
    if c.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}")
    if c.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {c.device!r}")
    if c.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
    if c.num_layers is not None:
        model_config(c, vocab_size=2)  # the model's fields, checked by LMConfig
    else:
        model_config(replace(c, num_layers=1), vocab_size=2)


def model_config(c: TrainConfig, vocab_size: int) -> LMConfig:
    cell = MODERN_CELLS.get(c.cell)  # an unknown name is LMConfig's to refuse
    # the stacks joined through their memory build at least two layers: record what is built
    layers = c.num_layers if cell is None else max(c.num_layers, cell.min_layers)
    return LMConfig(
        vocab_size=vocab_size,
        cell=c.cell,
        hidden_size=c.hidden_size,
        num_layers=layers,
        embedding_size=c.embedding_size,
        dropout=c.dropout,
        tie_weights=c.tie_weights,
        forget_bias=c.forget_bias,
    )


def learning_rate(step: int, total: int | None, c: TrainConfig) -> float:
    """Linear warmup to the peak over warmup_steps, then a cosine down to the floor at
    ``total`` (nanoGPT's schedule). Before a time budget's step count is known the rate
    stays at the peak."""
    peak, floor = c.learning_rate, c.learning_rate * c.min_lr_ratio
    if step < c.warmup_steps:
        return peak * (step + 1) / (c.warmup_steps + 1)
    if total is None:
        return peak
    span = max(total - c.warmup_steps, 1)
    progress = min((step - c.warmup_steps) / span, 1.0)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


@dataclass
class Position:
    """Where a run is; saved as the checkpoint's trainer.json."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    tokens: int = 0
    seconds: float = 0.0
    """Training time so far, over all sessions of the run."""
    total_steps: int | None = None
    """The schedule's length; None until a time budget is calibrated."""
    world_size: int = 1
    last_valid: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainResult:
    run: Path
    position: Position
    valid: Evaluation
    """The final evaluation on the whole validation text."""
    vocabulary: Vocabulary
    model: LanguageModel


Callback = Callable[[dict], None]
"""Receives every metrics record (a dict as written to metrics.jsonl)."""


# -- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    vocabulary: Vocabulary
    train: Tensor
    valid: Tensor
    corpus: dict


def prepare_data(c: TrainConfig, vocabulary: Vocabulary | None = None) -> Data:
    """Read the corpus, build the vocabulary from its training part (unless resuming with
    the saved one) and encode both parts; validation tokens unseen in training become UNK."""
    corpus = open_corpus(c.corpus, valid=c.valid, seed=c.seed)
    level = c.resolved_level()
    if vocabulary is None:
        max_size = c.max_vocab if level == "word" else None
        vocabulary = Vocabulary.from_text(corpus.train, level, max_size=max_size)
    train = torch.tensor(vocabulary.encode(corpus.train, unknown="unk"), dtype=torch.long)
    valid = torch.tensor(vocabulary.encode(corpus.valid, unknown="unk"), dtype=torch.long)
    if valid.numel() < 2:
        raise CorpusError(f"the validation text of {corpus.name} has fewer than 2 {level}s")
    summary = {
        "name": corpus.name,
        "description": corpus.description,
        "train_tokens": train.numel(),
        "valid_tokens": valid.numel(),
        "skipped_files": list(corpus.skipped),
    }
    return Data(vocabulary, train, valid, summary)


# -- the trainer ----------------------------------------------------------------------------------


def cpu_has_bfloat16() -> bool:
    """Whether torch's oneDNN runs bfloat16 natively on this CPU (AVX-512 and up); without
    it every bfloat16 product is emulated."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _warn_if_bfloat16_is_emulated() -> None:
    if not cpu_has_bfloat16():
        warnings.warn(
            "precision='bf16-mixed' on a CPU without native bfloat16 (torch's oneDNN reports "
            "none: no AVX-512): every bfloat16 product is emulated, and such a machine ran "
            "40 to 56 times slower than in float32 (docs/performance.md); precision='32' is "
            "the fast choice here",
            RuntimeWarning,
            stacklevel=3,
        )


class Trainer:
    """One run: its model, optimizer, data and position; :meth:`run` trains to the end."""

    def __init__(
        self,
        config: TrainConfig,
        run: Path,
        *,
        resume: bool = False,
        progress: bool = True,
        callbacks: tuple[Callback, ...] = (),
    ) -> None:
        config = config.resolved()
        self.config = config
        self.run_dir = Path(run)
        self.world = distributed.setup(config.device)
        if config.precision == "bf16-mixed" and self.world.device.type == "cpu":
            _warn_if_bfloat16_is_emulated()
        self.callbacks = callbacks
        saved = load_config(self.run_dir) if resume else None
        self.data = prepare_data(config, saved.vocabulary if saved else None)
        self.model_config = model_config(config, len(self.data.vocabulary))
        torch.manual_seed(config.seed)  # the same initial weights on every process
        self.model = LanguageModel(self.model_config).to(self.world.device)
        self.wrapped: nn.Module = self.model
        if self.world.distributed:
            self.wrapped = nn.parallel.DistributedDataParallel(self.model)
        self.optimizer = _adamw(self.model, config)
        self.batches = StreamBatches(
            self.data.train,
            config.batch_size,
            config.seq_len,
            seed=config.seed,
            rank=self.world.rank,
            world_size=self.world.size,
        )
        self.position = Position(world_size=self.world.size)
        self.state: list | None = None
        # dropout draws differ per process, as they would for different rows of one batch
        torch.manual_seed(config.seed + 1 + self.world.rank)
        if resume:
            self._restore()
        elif self.world.is_main:
            save_config(self.run_dir, self.run_config())
            (self.run_dir / METRICS).write_text("")
        self.records = read_metrics(self.run_dir / METRICS) if self.world.is_main else []
        self.show_progress = progress and self.world.is_main
        if self.show_progress:
            self._announce()

    def _announce(self) -> None:
        """What is about to be trained, on stderr beside the progress bar."""
        vocab, m = self.data.vocabulary, self.model_config
        params = count_parameters(self.model)
        print(f"corpus: {self.data.corpus['description']}", file=sys.stderr)
        print(
            f"model: {m.num_layers} x {m.hidden_size} {m.cell}, {params:,} parameters, "
            f"{len(vocab):,} {vocab.level}s in the vocabulary; run folder: {self.run_dir}",
            file=sys.stderr,
        )
        if self.config.precision != "32":
            print(f"precision: {self.config.precision}", file=sys.stderr)

    def run_config(self) -> RunConfig:
        return RunConfig(
            self.model_config, self.data.vocabulary, self.config.to_json(), self.data.corpus
        )

    # -- the loop -----------------------------------------------------------------------------

    def run(self) -> TrainResult:
        c, p = self.config, self.position
        tokens_per_step = c.batch_size * c.seq_len
        budget = c.budget_seconds
        if p.total_steps is None and c.steps is not None:
            p.total_steps = c.steps
        first_step = p.step  # the bar counts this session's tokens, for a true rate
        bar = Progress(
            total=None if p.total_steps is None else (p.total_steps - first_step) * tokens_per_step,
            desc=f"train {self.model_config.cell}",
            unit="tok",
            disable=not self.show_progress,
        )
        session_start = time.perf_counter()
        seconds_before = p.seconds
        calibration_start: float | None = None
        eval_every = c.eval_every
        with bar:
            while p.total_steps is None or p.step < p.total_steps:
                loss = self.train_step()
                p.seconds = seconds_before + time.perf_counter() - session_start
                bar.update(tokens_per_step)
                if p.step == _CALIBRATION_SKIP:
                    calibration_start = p.seconds
                if p.total_steps is None and p.step == _CALIBRATION_SKIP + _CALIBRATION_STEPS:
                    p.total_steps = self._calibrate(budget, calibration_start)
                    bar.total = (p.total_steps - first_step) * tokens_per_step
                if eval_every is None and p.total_steps is not None:
                    eval_every = max(p.total_steps // _EVALS_PER_RUN, 1)
                if p.step % c.log_every == 0:
                    loss = distributed.mean(self.world, loss)
                    lr = self.optimizer.param_groups[0]["lr"]
                    self._record({"train_loss": loss, "lr": lr})
                    bar.set_postfix(loss=loss, lr=lr)
                out_of_time = budget is not None and bool(
                    distributed.broadcast_int(self.world, int(p.seconds >= budget))
                )  # rank 0's clock decides, so that every process stops at the same step
                finished = p.step == p.total_steps or out_of_time
                if finished or (eval_every and p.step % eval_every == 0):
                    self.checkpoint(max_tokens=None if finished else c.eval_tokens)
                    if p.last_valid:
                        bar.set_postfix(loss=loss, valid=p.last_valid["loss"])
                if finished:
                    break
        final = self.final_evaluation()
        self.wrapped = self.model  # DDP's reducer holds the process group: see teardown
        distributed.teardown(self.world)
        return TrainResult(self.run_dir, p, final, self.data.vocabulary, self.model)

    def train_step(self) -> float:
        """One optimizer step on the next batch; returns this process's mean loss."""
        c, p = self.config, self.position
        if p.batch >= self.batches.batches_per_epoch(p.epoch):
            p.epoch, p.batch, self.state = p.epoch + 1, 0, None
        x, y = self.batches.batch(p.epoch, p.batch)
        x, y = x.to(self.world.device), y.to(self.world.device)
        lr = learning_rate(p.step, p.total_steps, c)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        with self.compute_precision():
            logits, state = self.wrapped(x, self.state)  # (B/W, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if c.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip)
        self.optimizer.step()
        self.state = detach_state(state)
        p.step, p.batch, p.tokens = p.step + 1, p.batch + 1, p.tokens + c.batch_size * c.seq_len
        return loss.item()

    def _calibrate(self, budget: float | None, start: float | None) -> int:
        """The schedule's length for a time budget, from the speed of the last steps."""
        p = self.position
        per_step = (p.seconds - (start or 0.0)) / _CALIBRATION_STEPS
        remaining = (budget or 0.0) * _BUDGET_SHARE - p.seconds
        total = p.step + max(int(remaining / max(per_step, 1e-9)), 1)
        return distributed.broadcast_int(self.world, total)

    # -- evaluation, checkpoints, records -----------------------------------------------------

    def compute_precision(self) -> torch.autocast:
        """The context the model's forward runs in: autocast to bfloat16 for 'bf16-mixed',
        a disabled autocast (float32) otherwise."""
        mixed = self.config.precision == "bf16-mixed"
        return torch.autocast(self.world.device.type, dtype=torch.bfloat16, enabled=mixed)

    def evaluate(self, max_tokens: int | None) -> Evaluation:
        c = self.config
        with self.compute_precision():
            return evaluate_ids(
                self.model,
                self.data.valid,
                self.data.vocabulary.level,
                batch_size=c.batch_size,
                seq_len=c.seq_len,
                max_tokens=max_tokens,
            )

    def checkpoint(self, max_tokens: int | None) -> None:
        """Evaluate, record, plot and save (rank 0 writes; every rank gathers its state)."""
        trainer_tensors = self._trainer_tensors()  # a collective: every rank takes part
        if self.world.is_main:
            evaluation = self.evaluate(max_tokens)
            self.position.last_valid = evaluation.to_json()
            self._record({f"valid_{k}": v for k, v in evaluation.to_json().items()})
            save_checkpoint(
                self.run_dir,
                model_tensors(self.model),
                trainer_tensors,
                asdict(self.position),
            )
            self._plot()
        distributed.barrier(self.world)

    def final_evaluation(self) -> Evaluation:
        """The whole validation text's loss (rank 0's; the other ranks report NaN)."""
        if not self.world.is_main:
            return Evaluation(math.nan, 0, self.data.vocabulary.level)
        if self.position.last_valid.get("tokens") == self.data.valid.numel() - 1:
            v = self.position.last_valid
            return Evaluation(v["loss"], v["tokens"], self.data.vocabulary.level)
        return self.evaluate(None)

    def _trainer_tensors(self) -> dict[str, Tensor]:
        tensors = optimizer_tensors(self.optimizer)
        # the state carried into the next batch, every process's rows (batch is dim 1)
        for i, t in enumerate(state_tensors(self.state)):
            tensors[f"hidden.{i}"] = distributed.gather(self.world, t, dim=1).cpu()
        rng = torch.get_rng_state()
        tensors["rng.cpu"] = distributed.gather(self.world, rng[None], dim=0)
        if self.world.device.type == "cuda":
            cuda = torch.cuda.get_rng_state(self.world.device).to(self.world.device)
            tensors["rng.cuda"] = distributed.gather(self.world, cuda[None], dim=0).cpu()
        return tensors

    def _restore(self) -> None:
        folder = checkpoint_dir(self.run_dir)  # one choice of folder for every file
        tensors, data = load_trainer(folder)
        try:
            self.position = Position(**data)
        except TypeError as err:
            raise CheckpointError(f"{self.run_dir}: damaged trainer.json ({err})") from None
        if self.position.world_size != self.world.size:
            raise CheckpointError(
                f"{self.run_dir}: saved by {self.position.world_size} process(es), resumed by "
                f"{self.world.size}; resume with the same number of processes"
            )
        load_weights(self.model, folder / MODEL_FILE)
        self.model.to(self.world.device)
        restore_optimizer(self.optimizer, tensors, self.run_dir)
        rows = self.config.batch_size // self.world.size
        mine = slice(self.world.rank * rows, (self.world.rank + 1) * rows)
        hidden = [tensors[f"hidden.{i}"] for i in range(_count(tensors, "hidden."))]
        hidden = [t[:, mine].to(self.world.device) for t in hidden]
        self.state = state_from_tensors(self.model_config, hidden)
        torch.set_rng_state(tensors["rng.cpu"][self.world.rank].contiguous())
        if "rng.cuda" in tensors and self.world.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"][self.world.rank], self.world.device)
        if self.world.is_main:
            _truncate_metrics(self.run_dir / METRICS, self.position.step)

    def _record(self, values: dict) -> None:
        if not self.world.is_main:
            return
        p = self.position
        record = {"step": p.step, "tokens": p.tokens, "epoch": p.epoch, "seconds": p.seconds}
        record.update(values)
        self.records.append(record)
        with open(self.run_dir / METRICS, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        for callback in self.callbacks:
            callback(record)

    def _plot(self) -> None:
        title = f"{self.model_config.cell} on {self.data.corpus['name']}"
        plot_losses(self.records, self.run_dir / PLOT, self.data.vocabulary.level, title)


def _adamw(model: LanguageModel, c: TrainConfig) -> torch.optim.AdamW:
    """AdamW with decay on the matrices (embedding, recurrent and head weights) only:
    decaying biases and the peephole vectors pulls them to zero for no gain (nanoGPT's
    grouping). A tied matrix appears once."""
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": matrices, "weight_decay": c.weight_decay},
        {"params": vectors, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=c.learning_rate, betas=(0.9, 0.99))


def _count(tensors: dict[str, Tensor], prefix: str) -> int:
    return sum(1 for k in tensors if k.startswith(prefix))


def read_metrics(path: Path) -> list[dict]:
    """A run's metrics records; none when the file is missing, and a line that is not a
    whole record (a run killed while writing it) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "tokens" in record:
            records.append(record)
    return records


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop the records a killed run wrote after its last checkpoint: the resumed run
    writes them again."""
    kept = [r for r in read_metrics(path) if r["step"] <= step]
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def train(
    config: TrainConfig,
    run: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    callbacks: tuple[Callback, ...] = (),
) -> TrainResult:
    """Train (or resume) the run in folder ``run``; see the module doc."""
    trainer = Trainer(config, run, resume=resume, progress=progress, callbacks=callbacks)
    return trainer.run()


def resume_config(run: Path) -> TrainConfig:
    """The training settings a run was started with."""
    saved = load_config(run)
    try:
        return TrainConfig.from_json(saved.training)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{run}: damaged training settings in config.json ({err})") from None
