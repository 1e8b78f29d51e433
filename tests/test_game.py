"""The gate game: the stream generator, the scorer, the model and the page in Chromium.

The Python scorer (``levels.play``) is the oracle for the page: the browser tests play a
level with the keyboard and with the mouse and check that the page shows the scorer's score
and cell states, and that the model's numbers on the page are the trace's.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch
from browser import chromium, open_page

from lstmkit.viz.game import levels as L
from lstmkit.viz.game import model as M
from lstmkit.viz.game.page import UNIT_STREAMS_PER_LEVEL, build_game

SEED = 1
TEST_STEPS = 120  # level 1 answered right on fresh streams for seeds 0-5 after 120 updates

# -- the generator ----------------------------------------------------------------------------


def test_streams_are_reproducible_per_seed():
    assert L.level_streams(3) == L.level_streams(3)
    assert L.level_streams(3) != L.level_streams(4)


def test_levels_grow_in_lag_noise_and_facts():
    assert len(L.LEVELS) >= 5
    lags = [spec.lag for spec in L.LEVELS]
    facts = [len(spec.facts) for spec in L.LEVELS]
    noise = [spec.noise for spec in L.LEVELS]
    for earlier, later in zip(L.LEVELS, L.LEVELS[1:], strict=False):
        assert later.lag[0] >= earlier.lag[0] and later.lag[1] >= earlier.lag[1]
        assert len(later.facts) >= len(earlier.facts)
    assert lags[0][0] <= 3 and lags[-1][1] >= 30
    assert (facts[0], facts[-1]) == (1, 3)
    assert noise[0] == 0 and min(noise[1:]) > 0


def _setting_step(stream: L.Stream, question: L.Question) -> int:
    """The last step before the question whose word writes into the asked fact's cell."""
    return max(
        s
        for s in range(question.step)
        if L.WORDS_BY_TEXT[stream.words[s]].kind == "fact"
        and question.fact in L.WORDS_BY_TEXT[stream.words[s]].writes
    )


@pytest.mark.parametrize("seed", range(6))
def test_streams_follow_their_level(seed):
    for spec, stream in zip(L.LEVELS, L.level_streams(seed), strict=True):
        stories = [s for s, w in enumerate(stream.words) if w == L.STORY]
        assert stream.words[0] == L.STORY and len(stories) == spec.stories
        assert len(stream.questions) == spec.stories * len(spec.facts)
        for q in stream.questions:
            assert stream.words[q.step] == L.FACTS_BY_NAME[q.fact].word
            lag = q.step - _setting_step(stream, q)
            assert spec.lag[0] <= lag <= spec.lag[1], (spec.name, q)
            # the answer is decided by the fact's words in its own story
            assert q.answer == L.answer_from_words(stream, q)
            assert _setting_step(stream, q) > max(s for s in stories if s < q.step)
        if spec.noise == 0:
            assert all(L.WORDS_BY_TEXT[w].kind != "noise" for w in stream.words)


def test_answers_follow_the_fact_words():
    stream = L.Stream(
        ("country", "bracket", "count"),
        ("¶", "Japan", "(", "star", ")", "star", "the", "speak?", "open?", "stars?"),
        (L.Question(7, "country", 1), L.Question(8, "bracket", 1), L.Question(9, "count", 1)),
    )
    assert [L.answer_from_words(stream, q) for q in stream.questions] == [1, 1, 1]
    assert L.play(stream, L.perfect_gates(stream)).right == (True, True, True)


# -- the scorer ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_perfect_gates_score_full_marks(seed):
    for stream in L.level_streams(seed):
        result = L.play(stream, L.perfect_gates(stream))
        assert result.passed and result.leaks == 0
        assert result.score == result.max_score == L.RIGHT_POINTS * len(stream.questions)


@pytest.mark.parametrize("seed", range(4))
def test_an_always_open_input_gate_fails_the_noisy_levels_with_counts(seed):
    for spec, stream in zip(L.LEVELS, L.level_streams(seed), strict=True):
        if "count" in spec.facts:
            assert not L.play(stream, L.constant_gates(stream, forget=1, input_=1)).passed


def test_scorer_by_hand():
    # France +1, then wind -0.8 and fog -0.7: an open input gate ends at -0.5 (Japanese).
    stream = L.Stream(
        ("country",), ("¶", "France", "wind", "fog", "speak?"), (L.Question(4, "country", 0),)
    )
    perfect = L.play(stream, L.perfect_gates(stream))
    assert perfect.cell[:, 0].tolist() == [0.0, 1.0, 1.0, 1.0, 1.0]
    assert perfect.answers == ("French",) and perfect.score == L.RIGHT_POINTS

    leaky = L.constant_gates(stream, forget=1, input_=1)
    leaky[:, 0, 2] = 1  # output open everywhere: 4 leaks
    result = L.play(stream, leaky)
    np.testing.assert_allclose(result.cell[:, 0], [0.0, 1.0, 0.2, -0.5, -0.5])
    np.testing.assert_allclose(result.hidden[:, 0], np.tanh(result.cell[:, 0]))
    assert result.answers == ("Japanese",) and result.right == (False,)
    assert (result.leaks, result.score, result.passed) == (4, -4 * L.LEAK_COST, False)

    closed = L.play(stream, L.constant_gates(stream, forget=1, input_=0))
    assert closed.answers == (None,) and closed.score == 0  # C stays 0: no answer


def test_count_is_read_rounded():
    words = ("¶", "star", "sun", "star", "stars?")  # 1 + 0.6 + 1 = 2.6 reads as 3
    stream = L.Stream(("count",), words, (L.Question(4, "count", 1),))
    result = L.play(stream, L.constant_gates(stream, forget=1, input_=1))
    assert result.cell[-1, 0] == pytest.approx(2.6) and result.answers == ("3",)
    assert L.play(stream, L.perfect_gates(stream)).answers == ("2",)


def test_play_rejects_bad_gates():
    stream = L.level_streams(0)[0]
    with pytest.raises(ValueError, match=r"shape \(time, cells, 3\)"):
        L.play(stream, np.zeros((len(stream), 2, 3)))
    with pytest.raises(ValueError, match="0 or 1"):
        L.play(stream, np.full((len(stream), 1, 3), 0.5))


# -- the model ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained() -> M.Trained:
    return M.train(M.TrainConfig(steps=TEST_STEPS, seed=SEED), progress=False)


def test_training_is_deterministic_and_leaves_the_caller_rng():
    state = torch.random.get_rng_state()
    first = M.train(M.TrainConfig(steps=3, seed=5), progress=False)
    second = M.train(M.TrainConfig(steps=3, seed=5), progress=False)
    assert torch.equal(state, torch.random.get_rng_state())
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name


def test_model_beats_chance_on_level_1(trained):
    accuracy = M.fresh_accuracy(trained.model, L.LEVELS[0], SEED, 0, 200)
    assert accuracy >= 0.9  # chance is 0.5


def test_units_are_distinct_and_the_best_correlated(trained):
    units = M.choose_units(trained.model, SEED)
    assert set(units) == {fact.name for fact in L.FACTS}
    assert len({u.unit for u in units.values()}) == len(units)
    rng = L.stream_rng(SEED, L.UNIT_STREAMS)
    streams = [L.generate_stream(spec, rng) for spec in L.LEVELS for _ in range(64)]
    r = M.correlations(trained.model, streams)
    best = max(abs(r[f]).max() for f in r)
    assert max(abs(u.r) for u in units.values()) == pytest.approx(best)
    for fact, choice in units.items():
        assert choice.r == pytest.approx(r[fact][choice.unit])


def test_on_level_keeps_the_chosen_units_trace(trained):
    stream = L.level_streams(SEED)[2]
    units = M.choose_units(trained.model, SEED)
    ran = M.on_level(trained.model, stream, units)
    batch = M.encode([stream])
    with torch.no_grad():
        _, trace = trained.model(batch.x, return_trace=True)
    for fact in stream.facts:
        for name in M.TRACED:
            expected = trace[name][0, 0, 0, :, units[fact].unit].numpy()
            np.testing.assert_array_equal(ran.units[fact][name], expected)
    right = [int(a) == q.answer for a, q in zip(ran.answers, stream.questions, strict=True)]
    assert list(ran.right) == right
    assert all(0.0 < c <= 1.0 for c in ran.confidence)


# -- the page -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    path = tmp_path_factory.mktemp("game") / "game.html"
    return build_game(path, seed=SEED, steps=TEST_STEPS, progress=False, fresh_streams=20)


@pytest.fixture(scope="module")
def data(game) -> dict:
    text = game.read_text(encoding="utf-8")
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1))


def floats(base64_text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(base64_text), dtype="<f4")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(out="game.txt"), "out must end in .html"),
        (dict(steps=0), "steps must be an integer >= 1, got 0"),
        (dict(steps=2.5), "steps must be an integer >= 1, got 2.5"),
        (dict(seed=-1), r"seed must be an integer in \[0, 4294967295\], got -1"),
        (dict(seed=2**32), "seed must be an integer in"),
        (dict(progress="no"), "progress must be True or False"),
        (dict(fresh_streams=0), "fresh_streams must be an integer >= 1"),
    ],
    ids=["suffix", "steps-zero", "steps-float", "seed-negative", "seed-big", "progress", "fresh"],
)
def test_build_game_rejects_bad_arguments(tmp_path, kwargs, message):
    kwargs = {"out": tmp_path / "game.html", **kwargs}
    with pytest.raises(ValueError, match=message):
        build_game(**kwargs)
    assert not (tmp_path / "game.html").exists()


def test_build_game_into_a_folder_is_self_contained(tmp_path):
    path = build_game(tmp_path, steps=1, progress=False, fresh_streams=1)
    assert path == tmp_path / "game.html"
    text = path.read_text(encoding="utf-8")
    assert "{{" not in text
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    assert "fetch(" not in text and "import " not in text


def test_the_same_seed_gives_the_same_page(tmp_path):
    first = build_game(tmp_path / "a.html", seed=7, steps=3, progress=False, fresh_streams=2)
    second = build_game(tmp_path / "b.html", seed=7, steps=3, progress=False, fresh_streams=2)
    assert first.read_bytes() == second.read_bytes()


def test_page_data_is_the_models_own(data, trained):
    assert data["seed"] == SEED and data["model"]["steps"] == TEST_STEPS
    with M.training_threads():  # the page's numbers were computed on one thread too
        # the same seed and steps: the same model
        units = M.choose_units(trained.model, SEED, UNIT_STREAMS_PER_LEVEL)
    assert {f: u["unit"] for f, u in data["model"]["units"].items()} == {
        f: u.unit for f, u in units.items()
    }
    streams = L.level_streams(SEED)
    for index, (level, stream) in enumerate(zip(data["levels"], streams, strict=True)):
        assert level["words"] == list(stream.words)
        assert [(q["step"], q["fact"], q["answer"]) for q in level["questions"]] == [
            (q.step, q.fact, q.answer) for q in stream.questions
        ]
        with M.training_threads():
            ran = M.on_level(trained.model, stream, units)
            accuracy = M.fresh_accuracy(trained.model, L.LEVELS[index], SEED, index, 20)
        for fact in stream.facts:
            for name in M.TRACED:
                saved = floats(level["model"]["units"][fact][name])
                np.testing.assert_array_equal(saved, ran.units[fact][name])
        assert level["model"]["answers"] == list(ran.answers)
        assert level["model"]["fresh_accuracy"] == accuracy


# -- the page in Chromium -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def shown_gates(page) -> np.ndarray:
    """The gates as the page shows them, (cells, 3)."""
    pressed = page.eval_on_selector_all(
        "button.gate",
        "bs => bs.map(b => [+b.dataset.cell, b.dataset.gate, b.getAttribute('aria-pressed')])",
    )
    cells = max(c for c, _, _ in pressed) + 1
    gates = np.zeros((cells, 3))
    for cell, gate, state in pressed:
        gates[cell, L.GATES.index(gate)] = state == "true"
    return gates


def shown_word(page) -> tuple[str, list[float]]:
    """The current word and the candidate value C~ it offers each cell, as shown."""
    word = page.inner_text("#current-word")
    values = page.eval_on_selector_all(".candidate-value", "bs => bs.map(b => +b.textContent)")
    return word, values


def play_with_keys(page, gates: np.ndarray, stream: L.Stream | None = None) -> None:
    """Set each step's gates with 1/2/3 and F/I/O, then step with Space; with ``stream``,
    check first that the page shows each step's word and candidate values."""
    selected = int(page.get_attribute("#cells .cell.selected", "data-cell"))
    current = shown_gates(page)
    candidates = None if stream is None else stream.candidates()
    for t in range(len(gates)):
        if stream is not None:
            assert shown_word(page) == (stream.words[t], candidates[t].tolist())
        for cell, gate in zip(*np.nonzero(gates[t] != current), strict=True):
            if cell != selected:
                page.keyboard.press(str(cell + 1))
                selected = cell
            page.keyboard.press("FIO"[gate].lower())
        current = gates[t].copy()
        np.testing.assert_array_equal(shown_gates(page), current)
        page.keyboard.press("Space")


def play_with_mouse(page, gates: np.ndarray) -> None:
    """Toggle each gate by clicking it, then click Step."""
    for t in range(len(gates)):
        current = shown_gates(page)
        for cell, gate in zip(*np.nonzero(gates[t] != current), strict=True):
            page.click(f'button.gate[data-cell="{cell}"][data-gate="{L.GATES[gate]}"]')
        page.click("#step")


def text(page, selector: str) -> str:
    return page.inner_text(selector).strip()


def test_keyboard_perfect_play_scores_as_the_scorer(browser, game):
    stream = L.level_streams(SEED)[0]
    gates = L.perfect_gates(stream)
    expected = L.play(stream, gates)
    page, log = open_page(browser, game)
    assert text(page, "#level-number") == "1"
    play_with_keys(page, gates, stream)
    assert page.is_visible("#results")
    assert text(page, "#you-score") == str(expected.score) == text(page, "#level-score")
    assert text(page, "#total-score") == str(expected.score)
    assert text(page, "#you-right") == f"{sum(expected.right)} / {len(stream.questions)}"
    assert "passed" in text(page, "#results-title")
    assert page.is_enabled("#next-level")
    shown = page.eval_on_selector_all(
        'td[data-who="you"][data-q="cell"]', "ts => ts.map(t => [+t.dataset.step, +t.textContent])"
    )
    assert [value for _, value in shown] == pytest.approx(expected.cell[:, 0].tolist(), abs=5e-3)
    assert log.clean(), log


def test_mouse_play_with_open_gates(browser, game):
    stream = L.level_streams(SEED)[0]
    gates = L.constant_gates(stream, forget=1, input_=1)
    gates[len(stream) // 2 :, 0, 2] = 1  # output open for the second half: leaks
    expected = L.play(stream, gates)
    assert expected.leaks > 0
    page, log = open_page(browser, game)
    play_with_mouse(page, gates)
    assert text(page, "#you-score") == str(expected.score)
    assert text(page, "#you-leaks") == str(expected.leaks)
    log_items = page.eval_on_selector_all("#log li[data-step]", "ls => ls.map(l => l.className)")
    assert log_items == ["right" if r else "wrong" for r in expected.right]
    assert page.is_enabled("#next-level") == expected.passed
    page.click("#retry-level")
    assert page.is_hidden("#results")
    assert text(page, "#level-score") == "0" and text(page, "#step-counter").startswith("word 1 ")
    assert log.clean(), log


def test_results_show_the_models_trace(browser, game, data):
    stream = L.level_streams(SEED)[0]
    level = data["levels"][0]
    page, log = open_page(browser, game)
    play_with_keys(page, L.perfect_gates(stream))
    shown = page.eval_on_selector_all(
        'td[data-who="model"]',
        "ts => ts.map(t => [t.dataset.fact, t.dataset.q, +t.dataset.step, t.textContent])",
    )
    assert len(shown) == len(stream) * len(stream.facts) * len(M.TRACED)
    for fact, name, step, value in shown:
        saved = floats(level["model"]["units"][fact][name])[step]
        assert float(value) == pytest.approx(saved, abs=5e-4), (fact, name, step)
    model_right = sum(level["model"]["right"])
    assert text(page, "#model-right") == f"{model_right} / {len(stream.questions)}"
    assert text(page, "#model-score") == str(L.RIGHT_POINTS * model_right)
    answers = page.eval_on_selector_all(
        'td[data-who="model-answer"]', "ts => ts.map(t => t.innerText)"
    )
    for shown_answer, q, answer in zip(
        answers, stream.questions, level["model"]["answers"], strict=True
    ):
        assert shown_answer.startswith(L.FACTS_BY_NAME[q.fact].answers[answer] + " ")
    accuracy = f"{100 * level['model']['fresh_accuracy']:.1f}%"
    assert accuracy in text(page, "#model-verdict")
    assert log.clean(), log


def test_a_level_with_three_facts_scores_as_the_scorer(browser, game):
    streams = L.level_streams(SEED)
    index = next(k for k, spec in enumerate(L.LEVELS) if "count" in spec.facts)
    page, log = open_page(browser, game)
    for stream in streams[:index]:
        play_with_keys(page, L.perfect_gates(stream))
        page.keyboard.press("n")
    stream = streams[index]
    # never forgets, lets every word in, and shows the count cell all the time
    gates = L.constant_gates(stream, forget=1, input_=1)
    gates[:, stream.facts.index("count"), 2] = 1
    expected = L.play(stream, gates)
    play_with_keys(page, gates, stream)
    assert text(page, "#you-score") == str(expected.score)
    assert text(page, "#you-leaks") == str(expected.leaks)
    log_items = page.eval_on_selector_all("#log li[data-step]", "ls => ls.map(l => l.innerText)")
    for item, answer, right in zip(log_items, expected.answers, expected.right, strict=True):
        assert ("no answer" if answer is None else f"\u2192 {answer} ") in item
        assert ("right" if right else "wrong") in item
    for k, fact in enumerate(stream.facts):
        shown = page.eval_on_selector_all(
            f'td[data-who="you"][data-fact="{fact}"][data-q="cell"]',
            "ts => ts.map(t => +t.textContent)",
        )
        assert shown == pytest.approx(expected.cell[:, k].tolist(), abs=5e-3)
    assert log.clean(), log


def test_next_level_and_restart(browser, game):
    stream = L.level_streams(SEED)[0]
    page, log = open_page(browser, game)
    page.keyboard.press("n")  # nothing to go next to while playing
    assert text(page, "#level-number") == "1"
    play_with_keys(page, L.perfect_gates(stream))
    page.keyboard.press("n")
    assert text(page, "#level-number") == "2" and page.is_hidden("#results")
    assert page.locator("#cells .cell").count() == len(L.LEVELS[1].facts)
    page.keyboard.press("Space")
    page.click("#restart-game")
    assert text(page, "#level-number") == "1"
    assert text(page, "#total-score") == "0" and text(page, "#step-counter").startswith("word 1 ")
    assert log.clean(), log
