"""The language model, its batches, its evaluation and its schedule."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lstmkit.lm.batches import CorpusTooShortError, StreamBatches, evaluation_chunks
from lstmkit.lm.evaluate import evaluate_ids
from lstmkit.lm.model import (
    LM_CELLS,
    LanguageModel,
    LMConfig,
    detach_state,
    state_from_tensors,
    state_tensors,
)
from lstmkit.lm.train import TrainConfig, learning_rate


def _model(cell: str = "lstm", **kw) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(LMConfig(vocab_size=13, cell=cell, hidden_size=8, num_layers=2, **kw))


@pytest.mark.parametrize("cell", LM_CELLS)
def test_state_carried_across_chunks_equals_one_pass(cell):
    """Truncated BPTT's premise: feeding a text in chunks, carrying the state, gives the
    logits of one pass over the whole text."""
    model = _model(cell).eval()
    ids = torch.randint(13, (3, 20))
    whole, _ = model(ids)
    first, state = model(ids[:, :7])
    second, _ = model(ids[:, 7:], detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], 1), whole)


def test_tied_weights_share_one_matrix():
    model = _model(tie_weights=True)
    assert model.head.weight is model.embedding.weight
    with pytest.raises(ValueError, match="embedding_size == hidden_size"):
        LMConfig(vocab_size=5, hidden_size=8, embedding_size=4, tie_weights=True)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cell", "lstm1997", "unknown cell"),
        ("hidden_size", 0, "hidden_size"),
        ("dropout", 1.0, "dropout"),
        ("forget_bias", math.inf, "forget_bias"),
    ],
)
def test_bad_model_config_is_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        LMConfig(vocab_size=5, **{field: value})


def test_model_rejects_float_input():
    with pytest.raises(ValueError, match="int64 token ids"):
        _model()(torch.zeros(2, 3))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_state_round_trips_through_tensors(cell):
    model = _model(cell)
    _, state = model(torch.randint(13, (2, 4)))
    again = state_from_tensors(model.config, state_tensors(state))
    for a, b in zip(state_tensors(state), state_tensors(again), strict=True):
        assert a is b


def test_stream_rows_continue_and_targets_are_next_tokens():
    ids = torch.arange(100)
    batches = StreamBatches(ids, batch_size=3, seq_len=4)
    x0, y0 = batches.batch(0, 0)
    x1, _ = batches.batch(0, 1)
    assert torch.equal(y0, x0 + 1)  # ids are positions, so the next token is id + 1
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # each row goes on where it stopped
    assert batches.batches_per_epoch(0) == (99 // 3) // 4


def test_epochs_shift_their_cuts_deterministically():
    batches = StreamBatches(torch.arange(1000), batch_size=4, seq_len=16, seed=3)
    offsets = [batches.offset(e) for e in range(8)]
    assert offsets[0] == 0 and len(set(offsets)) > 1
    assert all(0 <= o < 16 for o in offsets)
    assert offsets == [StreamBatches(torch.arange(1000), 4, 16, seed=3).offset(e) for e in range(8)]


def test_ranks_split_the_rows_of_one_batch():
    ids = torch.arange(500)
    whole = StreamBatches(ids, batch_size=4, seq_len=5, seed=1).batch(2, 3)[0]
    parts = [StreamBatches(ids, 4, 5, seed=1, rank=r, world_size=2).batch(2, 3)[0] for r in (0, 1)]
    assert torch.equal(torch.cat(parts), whole)


def test_too_short_a_corpus_is_named():
    with pytest.raises(CorpusTooShortError, match="fewer than one batch"):
        StreamBatches(torch.arange(50), batch_size=8, seq_len=8)
    with pytest.raises(ValueError, match="divisible"):
        StreamBatches(torch.arange(500), batch_size=3, seq_len=8, world_size=2)


def test_evaluation_chunks_predict_every_token_once():
    ids = torch.arange(103)
    targets = torch.cat([t.reshape(-1) for _, t, _ in evaluation_chunks(ids, 5, 7)])
    assert sorted(targets.tolist()) == list(range(1, 103))


def test_evaluation_of_one_stream_is_plain_cross_entropy():
    """The oracle: torch's cross-entropy of one pass over the whole text."""
    model = _model().eval()
    ids = torch.randint(13, (200,))
    result = evaluate_ids(model, ids, "char", batch_size=1, seq_len=17)
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
    expected = F.cross_entropy(logits[0], ids[1:]).item()
    assert result.tokens == 199
    assert result.loss == pytest.approx(expected, rel=1e-5)
    assert result.bits_per_token == pytest.approx(expected / math.log(2), rel=1e-5)


def test_evaluation_with_many_streams_and_a_tail_carries_the_last_row():
    """With streams, the tail continues the last stream, so only the streams' fresh starts
    differ from one pass; a model that ignores its history sees no difference at all."""
    model = _model("rnn").eval()
    with torch.no_grad():
        model.rnn.weight_hh_l0.zero_()
        model.rnn.weight_hh_l1.zero_()
    ids = torch.randint(13, (103,))
    one = evaluate_ids(model, ids, "char", batch_size=1, seq_len=10)
    many = evaluate_ids(model, ids, "char", batch_size=5, seq_len=10)
    assert many.tokens == one.tokens == 102
    assert many.loss == pytest.approx(one.loss, rel=1e-5)


def test_schedule_warms_up_then_decays_to_the_floor():
    c = TrainConfig(learning_rate=1e-2, warmup_steps=10, min_lr_ratio=0.1, steps=110)
    rates = [learning_rate(s, 110, c) for s in range(111)]
    assert rates[0] < rates[5] < rates[9] < 1e-2 + 1e-12
    assert rates[10] == pytest.approx(1e-2)
    assert rates[60] == pytest.approx(0.55e-2)  # halfway down the cosine
    assert rates[110] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(rates[10:]))
    assert learning_rate(50, None, c) == pytest.approx(1e-2)  # steps not yet known


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch_size", 0), ("seq_len", -1), ("minutes", -2.0), ("level", "byte"), ("grad_clip", -1)],
)
def test_bad_training_setting_is_named(field, value):
    with pytest.raises(ValueError, match=field if field != "level" else "level"):
        TrainConfig(**{field: value})
