"""The explorer: the record a page is built from, and the page itself in a real browser.

The browser tests open generated pages from disk in headless Chromium and check that every
number the page shows (diagram, equations, tooltips over the text and the matrix, the unit
ranking for a selected span, gate saturation, predictions) equals the record's own value,
that nothing errs in the console and that no request leaves the page.
"""

from __future__ import annotations

import base64
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from browser import chromium, open_page
from run_folders import make_run

from lstmkit.lm.checkpoint import load_model
from lstmkit.lm.record import (
    MAX_TOKENS,
    TextError,
    gate_saturation,
    record_text,
    span_scores,
    text_excerpt,
)
from lstmkit.viz.explorer import build_explorer, explorer_data
from lstmkit.viz.html import render, write_page
from lstmkit.viz.serve import page_server

TEXT = 'She said "hello (and more)" to me.\nI grew up in France. I speak fluent French.'
QUOTE = (9, 27)  # the quoted words, quotes included


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    return {
        cell: make_run(base / cell, cell=cell, layers=2 if cell == "lstm" else 1)
        for cell in (
            "lstm",
            "gru",
            "rnn",
            "cifg",
            "lstm-noforget",
            "peephole",
            "mgu",
            "depth-gated",
            "grid-lstm",
        )
    }


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


# -- the record ------------------------------------------------------------------------------


def test_record_holds_the_models_own_numbers(runs):
    model, config = load_model(runs["lstm"])
    record = record_text(model, config.vocabulary, TEXT, top=3)
    ids = torch.tensor([config.vocabulary.encode(TEXT)])
    logits, _ = model(ids)
    probs = torch.softmax(logits[0], -1)
    assert record.tokens == tuple(TEXT) and record.family == "lstm"
    assert set(record.quantities) == {"input", "forget", "candidate", "output", "cell", "hidden"}
    assert record.quantities["cell"].shape == (2, len(TEXT), 12)
    # the top layer's hidden state is the recurrent stack's output
    output, _ = model.rnn(model.embedding(ids))
    np.testing.assert_allclose(record.quantities["hidden"][1], output[0].detach(), atol=1e-6)
    for t in (0, 10, len(TEXT) - 1):
        best = torch.topk(probs[t], 3)
        assert [tok for tok, _ in record.predictions[t]] == [
            config.vocabulary.tokens[i] for i in best.indices
        ]
        np.testing.assert_allclose(
            [p for _, p in record.predictions[t]], best.values.detach(), rtol=1e-6
        )
    following = probs[torch.arange(len(TEXT) - 1), ids[0, 1:]]
    np.testing.assert_allclose(record.next_probability, following.detach(), rtol=1e-6)


def test_gate_saturation_counts_steps_past_the_thresholds(runs):
    model, config = load_model(runs["lstm"])
    record = record_text(model, config.vocabulary, TEXT)
    saturation = gate_saturation(record)
    assert set(saturation) == {"input", "forget", "output"}
    forget = record.quantities["forget"]
    low, high = saturation["forget"]
    for layer, unit in ((0, 0), (1, 7)):
        column = forget[layer, :, unit]
        assert low[layer, unit] == sum(v < 0.1 for v in column) / len(column)
        assert high[layer, unit] == sum(v > 0.9 for v in column) / len(column)


def test_span_scores_find_a_planted_unit():
    rng = np.random.default_rng(0)
    values = rng.uniform(-0.2, 0.2, size=(50, 6)).astype(np.float32)
    values[10:20, 2] = 5.0  # on exactly over the span
    values[:, 3] = -1.0
    values[10:20, 3] = -3.0  # off exactly over it
    values[:, 4] = 0.7  # constant: tracks nothing
    scores = span_scores(values, 10, 20)
    assert scores[2] == pytest.approx(1.0, abs=0.05)
    assert scores[3] == pytest.approx(-1.0)
    assert scores[4] == 0
    assert np.argsort(-np.abs(scores))[:2].tolist() == [3, 2]
    with pytest.raises(ValueError, match="whole text"):
        span_scores(values, 0, 50)
    with pytest.raises(ValueError, match="0 <= start < stop"):
        span_scores(values, 5, 5)


def test_texts_a_model_cannot_read_are_named(runs):
    model, config = load_model(runs["lstm"])
    with pytest.raises(TextError, match="empty"):
        record_text(model, config.vocabulary, " \n ")
    with pytest.raises(TextError, match=r"not in the model's vocabulary.*'Z'"):
        record_text(model, config.vocabulary, "Zebra")
    with pytest.raises(TextError, match=f"at most {MAX_TOKENS:,}"):
        record_text(model, config.vocabulary, "a" * (MAX_TOKENS + 1))


def test_excerpts_cut_a_file_by_tokens(runs, tmp_path):
    _, config = load_model(runs["lstm"])
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    assert text_excerpt(str(path), config.vocabulary, start=4, tokens=10) == TEXT[4:14]
    with pytest.raises(TextError, match="past its end"):
        text_excerpt(str(path), config.vocabulary, start=len(TEXT))


def test_page_data_round_trips_the_record(runs):
    model, config = load_model(runs["lstm"])
    record = record_text(model, config.vocabulary, TEXT)
    data = explorer_data(record, title="t", selection=QUOTE)
    raw = base64.b64decode(data["quantities"]["cell"])
    cell = np.frombuffer(raw, dtype="<f4").reshape(record.quantities["cell"].shape)
    np.testing.assert_array_equal(cell, record.quantities["cell"])
    with pytest.raises(ValueError, match="not a span of this text"):
        explorer_data(record, title="t", selection=(5, len(TEXT) + 1))


# -- the page in a browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def lstm_page(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("pages") / "lstm.html"
    return build_explorer(runs["lstm"], TEXT, out)


def _shown(page, key: str) -> float:
    return float(page.locator(f"#dv-{key}").get_attribute("data-value"))


def _check_lstm_step(page, record, layer: int, t: int, unit: int) -> None:
    q = {name: record.quantities[name][layer, :, unit] for name in record.quantities}
    for name in ("input", "forget", "candidate", "output", "cell", "hidden"):
        assert _shown(page, name) == pytest.approx(float(q[name][t]), abs=1e-7), name
        assert page.locator(f"#dv-{name}").text_content() == _fmt(float(q[name][t]))
    previous = float(q["cell"][t - 1]) if t else 0.0
    assert _shown(page, "cellprev") == pytest.approx(previous, abs=1e-7)
    assert _shown(page, "kept") == pytest.approx(float(q["forget"][t]) * previous, abs=1e-6)
    assert page.locator("#dv-token").text_content() == f'"{record.tokens[t]}"'
    assert _fmt(float(q["cell"][t])) in page.locator("#eq-cell").text_content()


def _fmt(v: float) -> str:
    return ("−" if v < 0 else "") + f"{abs(v):.4f}"


def test_the_cell_diagram_shows_each_steps_numbers(browser, lstm_page):
    path, record = lstm_page
    page, log = open_page(browser, path)
    _check_lstm_step(page, record, 0, 0, 0)
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    _check_lstm_step(page, record, 0, 5, 0)
    page.click("#forward")
    page.keyboard.press("ArrowUp")  # next unit
    _check_lstm_step(page, record, 0, 6, 1)
    page.fill("#unit", "9")
    page.press("#unit", "Enter")
    page.select_option("#layer", "1")
    _check_lstm_step(page, record, 1, 6, 9)
    page.keyboard.press("End")
    _check_lstm_step(page, record, 1, len(TEXT) - 1, 9)
    assert "step 6" not in page.locator("#step-label").text_content()
    page.click("#first")
    _check_lstm_step(page, record, 1, 0, 9)
    assert log.clean(), log


def test_play_walks_through_the_text(browser, lstm_page):
    path, _ = lstm_page
    page, log = open_page(browser, path)
    page.select_option("#speed", "12")
    page.click("#play")
    page.wait_for_function("document.getElementById('step-label').textContent.includes('step 3 ')")
    page.click("#play")
    assert "play" in page.locator("#play").text_content()
    assert log.clean(), log


def test_hovering_the_text_and_the_matrix_shows_exact_values(browser, lstm_page):
    path, record = lstm_page
    page, log = open_page(browser, path)
    page.select_option("#quantity", "forget")
    page.fill("#unit", "4")
    page.press("#unit", "Enter")
    token = page.locator("#strip .tok").nth(12)
    token.hover()
    shown = float(page.locator("#tooltip").get_attribute("data-value"))
    assert shown == pytest.approx(float(record.quantities["forget"][0, 12, 4]), abs=1e-7)
    assert "token 12" in page.locator("#tooltip").text_content()
    shown_text = page.locator("#tooltip").text_content().rsplit("= ", 1)[1].replace("−", "-")
    assert float(shown_text) == pytest.approx(shown, rel=1e-6)  # every digit float32 has
    # the matrix: rows are units, columns tokens; aim at the middle of cell (t=20, unit=7)
    box = page.locator("#matrix").bounding_box()
    steps, units = len(record.tokens), record.num_units
    x = box["x"] + (20.5 / steps) * box["width"]
    y = box["y"] + (7.5 / units) * box["height"]
    page.mouse.move(x, y)
    shown = float(page.locator("#tooltip").get_attribute("data-value"))
    assert shown == pytest.approx(float(record.quantities["forget"][0, 20, 7]), abs=1e-7)
    page.mouse.click(x, y)  # chooses that unit and step
    assert page.locator("#unit").input_value() == "7"
    assert "step 20 " in page.locator("#step-label").text_content()
    assert log.clean(), log


def test_selecting_a_span_ranks_units_as_the_library_does(browser, lstm_page):
    path, record = lstm_page
    page, log = open_page(browser, path)
    first, last = (
        page.locator("#strip .tok").nth(QUOTE[0]),
        page.locator("#strip .tok").nth(QUOTE[1] - 1),
    )
    first.hover()
    page.mouse.down()
    last.hover()
    page.mouse.up()
    items = page.locator("#ranking li")
    assert items.count() == 10
    scores = span_scores(record.quantities["cell"][0], *QUOTE)
    expected = sorted(range(len(scores)), key=lambda u: (-abs(scores[u]), u))[:10]
    shown = [int(items.nth(k).get_attribute("data-unit")) for k in range(10)]
    assert shown == expected
    for k, unit in enumerate(shown):
        value = float(items.nth(k).get_attribute("data-score"))
        assert value == pytest.approx(float(scores[unit]), abs=1e-5)
    items.nth(2).click()
    assert page.locator("#unit").input_value() == str(expected[2])
    assert page.locator("#strip .tok.selected").count() == QUOTE[1] - QUOTE[0]
    assert log.clean(), log


def test_saturation_and_predictions_are_the_records(browser, lstm_page):
    path, record = lstm_page
    page, log = open_page(browser, path)
    page.fill("#unit", "3")
    page.press("#unit", "Enter")
    saturation = gate_saturation(record)
    for gate, (low, high) in saturation.items():
        span = page.locator(f"#sat-{gate}")
        assert float(span.get_attribute("data-low")) == pytest.approx(low[0, 3])
        assert float(span.get_attribute("data-high")) == pytest.approx(high[0, 3])
    assert page.locator("#saturation svg").count() == 3
    assert page.locator("#saturation circle").count() == 3 * record.num_units
    for _ in range(7):
        page.keyboard.press("ArrowRight")
    items = page.locator("#predictions li")
    assert items.count() == len(record.predictions[7])
    for k, (token, p) in enumerate(record.predictions[7]):
        assert items.nth(k).get_attribute("data-token") == token
        assert float(items.nth(k).get_attribute("data-p")) == pytest.approx(p, rel=1e-6)
    nxt = float(page.locator("#actual-next").get_attribute("data-p"))
    assert nxt == pytest.approx(record.next_probability[7], rel=1e-6)
    assert log.clean(), log


def test_a_selection_given_on_the_command_line_opens_ranked(browser, runs, tmp_path):
    path, record = build_explorer(runs["lstm"], TEXT, tmp_path / "s.html", selection=QUOTE)
    page, log = open_page(browser, path)
    best = int(page.locator("#ranking li").first.get_attribute("data-unit"))
    scores = span_scores(record.quantities["cell"][0], *QUOTE)
    assert best == int(np.argmax(np.abs(scores)))
    assert page.locator("#unit").input_value() == str(best)
    assert log.clean(), log


@pytest.mark.parametrize(
    ("cell", "keys"),
    [
        ("gru", ("reset", "update", "candidate", "hidden")),
        ("rnn", ("hidden",)),
        ("cifg", ("input", "forget", "candidate", "output", "cell", "hidden")),
        ("lstm-noforget", ("input", "candidate", "output", "cell", "hidden")),
        ("peephole", ("input", "forget", "candidate", "output", "cell", "hidden")),
    ],
)
def test_each_family_has_its_own_diagram(browser, runs, tmp_path, cell, keys):
    path, record = build_explorer(runs[cell], TEXT, tmp_path / f"{cell}.html")
    page, log = open_page(browser, path)
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    for key in keys:
        assert _shown(page, key) == pytest.approx(float(record.quantities[key][0, 3, 0]), abs=1e-7)
    prev = float(record.quantities["hidden"][0, 2, 0])
    assert _shown(page, "hiddenprev") == pytest.approx(prev, abs=1e-7)
    if cell == "gru":  # torch's GRU: h = (1 - z) n + z h_prev
        z = float(record.quantities["update"][0, 3, 0])
        assert _shown(page, "kept") == pytest.approx(z * prev, abs=1e-6)
    assert page.locator("#dv-forget").count() == (1 if "forget" in keys else 0)
    assert page.locator("#diagram .peep").count() == (3 if cell == "peephole" else 0)
    coupled = page.locator("#box-forget text").all_text_contents() if "forget" in keys else []
    assert coupled == (["1−i"] if cell == "cifg" else ["σ"] if "forget" in keys else [])
    assert page.locator("#saturation svg").count() == len(record.gates)
    assert log.clean(), log


@pytest.mark.parametrize(
    ("cell", "keys", "gates"),
    [
        ("mgu", ("forget", "candidate", "hidden"), 1),
        ("depth-gated", ("depth", "cell", "hidden"), 4),
        ("grid-lstm", ("forget", "depth_cell", "depth_hidden"), 6),
    ],
)
def test_a_family_without_a_diagram_lists_its_numbers(browser, runs, tmp_path, cell, keys, gates):
    """A cell the explorer has no drawing for says so and still shows each of its quantities
    at the step, by name, with the record's numbers (in the top layer, for the stacks)."""
    path, record = build_explorer(runs[cell], TEXT, tmp_path / f"{cell}.html")
    page, log = open_page(browser, path)
    layer = record.quantities["hidden"].shape[0] - 1
    if layer:
        page.select_option("#layer", str(layer))
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    assert f"no diagram of the {cell} cell yet" in page.locator("#diagram").text_content()
    for key in keys:
        shown = page.locator(f"#eq-{key}").inner_text().split("=")[-1].replace("−", "-")
        expected = float(record.quantities[key][layer, 3, 0])
        assert float(shown) == pytest.approx(expected, abs=1e-3)
    assert page.locator("#saturation svg").count() == len(record.gates) == gates
    assert log.clean(), log


def test_a_large_page_opens_and_steps(browser, tmp_path):
    """The issue's size: 2,000 tokens and 512 units (a 33 MB page)."""
    letters = "abcdefghij klmnopqrst.\n"
    text = "".join(letters[(7 * k + k // 5) % len(letters)] for k in range(2000))
    run = make_run(tmp_path / "big", hidden=512, layers=1, text=text)
    path, record = build_explorer(run, text, tmp_path / "big.html")
    page, log = open_page(browser, path)
    page.keyboard.press("End")
    page.keyboard.press("ArrowUp")
    assert _shown(page, "cell") == pytest.approx(float(record.quantities["cell"][0, 1999, 1]))
    page.select_option("#quantity", "output")
    assert page.locator("#strip .tok").count() == 2000
    assert log.clean(), log


def test_the_server_answers_on_localhost_with_the_page_only(lstm_page):
    path, _ = lstm_page
    server, url = page_server(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(url) as reply:
            assert reply.read() == path.read_bytes()
        root = url.rsplit("/", 1)[0]
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(root + "/checkpoint/model.safetensors")
        assert caught.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_a_script_error_is_shown_on_the_page(browser, tmp_path):
    template = "<html><head><title>{{title}}</title><style>{{style}}</style></head><body>"
    template += '<script id="data" type="application/json">{{data}}</script>'
    template += "<script>{{script}}</script></body></html>"
    page_text = render(template, title="t", style="", script="missing.call();", data={})
    path = write_page(tmp_path / "broken.html", page_text)
    page, log = open_page(browser, path)
    assert page.is_visible("#page-error")
    assert "missing is not defined" in page.inner_text("#page-error")
    assert log.errors and not log.requests
