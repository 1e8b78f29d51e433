"""The pages in Firefox and in WebKit (Safari's engine), opened from disk: they run without
errors, show the record's numbers, rank units as the library does, and score the game as
the scorer does. Chromium's fuller tests are tests/test_explorer.py and tests/test_game.py;
these check that nothing in the pages depends on Chromium."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from other_browsers import firefox, webkit
from run_folders import make_run

from lstmkit.lm.record import span_scores
from lstmkit.viz.explorer import build_explorer
from lstmkit.viz.game import build_game, level_streams, perfect_gates, play
from lstmkit.viz.game.levels import GATES
from lstmkit.viz.html import render, write_page

TEXT = 'She said "hello (and more)" to me.\nI grew up in France. I speak fluent French.'
QUOTE = (9, 27)
ENGINES = {"firefox": firefox, "webkit": webkit}
pytestmark = pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning")


@pytest.fixture(scope="module", params=list(ENGINES))
def browser(request):
    with ENGINES[request.param]() as page:
        yield page


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explorer")
    run = make_run(folder / "run", layers=2)
    return build_explorer(run, TEXT, folder / "page.html", selection=QUOTE)


@pytest.fixture(scope="module")
def game(tmp_path_factory):
    return build_game(tmp_path_factory.mktemp("game") / "game.html", steps=3, progress=False)


def _key(browser, key: str) -> None:
    browser.evaluate(f"document.dispatchEvent(new KeyboardEvent('keydown', {{key: '{key}'}}))")


def test_the_explorer_shows_the_records_numbers(browser, explorer):
    path, record = explorer
    browser.open(path)
    assert browser.evaluate("document.getElementById('page-error').hidden") is True
    ranked = browser.evaluate(
        "Array.from(document.querySelectorAll('#ranking li')).map(li => +li.dataset.unit)"
    )
    scores = span_scores(record.quantities["cell"][0], *QUOTE)
    assert ranked == sorted(range(len(scores)), key=lambda u: (-abs(scores[u]), u))[:10]
    # the page opens on the best unit for the selected span
    assert int(browser.evaluate("document.getElementById('unit').value")) == ranked[0]
    for _ in range(5):
        _key(browser, "ArrowRight")
    _key(browser, "ArrowDown")
    unit = int(browser.evaluate("document.getElementById('unit').value"))
    assert unit == max(ranked[0] - 1, 0)
    for name in ("forget", "input", "candidate", "output", "cell", "hidden"):
        shown = float(browser.evaluate(f"document.getElementById('dv-{name}').dataset.value"))
        expected = float(record.quantities[name][0, 5, unit])
        assert shown == pytest.approx(expected, abs=1e-7), name
    tokens = browser.evaluate(
        "Array.from(document.querySelectorAll('#predictions li')).map(li => li.dataset.token)"
    )
    assert tokens == [token for token, _ in record.predictions[5]]
    canvas = browser.evaluate("[document.getElementById('matrix').width, matrix.height]")
    assert canvas == [len(record.tokens), record.num_units]
    assert browser.errors() == []


def test_the_game_scores_as_the_scorer(browser, game):
    stream = level_streams(0)[0]
    gates = perfect_gates(stream).astype(int).tolist()
    browser.open(game)
    assert browser.evaluate("document.getElementById('page-error').hidden") is True
    # click every gate into place, then Step, for each word of level 1
    score = browser.evaluate(
        f"""((gates, names) => {{
          gates.forEach(step => {{
            step.forEach((cell, c) => cell.forEach((want, k) => {{
              const b = document.querySelector(
                `button.gate[data-cell="${{c}}"][data-gate="${{names[k]}}"]`);
              if ((b.getAttribute('aria-pressed') === 'true') !== (want === 1)) b.click();
            }}));
            document.getElementById('step').click();
          }});
          return document.getElementById('you-score').textContent;
        }})({json.dumps(gates)}, {json.dumps(list(GATES))})"""
    )
    expected = play(stream, np.array(gates))
    assert expected.passed and int(score) == expected.score
    assert browser.evaluate("document.getElementById('results').hidden") is False
    assert browser.errors() == []


def test_errors_are_seen(browser, tmp_path):
    """The checks above can fail: a page whose script throws shows its banner, and an
    error thrown later reaches ``errors()``."""
    template = "<html><head><title>{{title}}</title><style>{{style}}</style></head><body>"
    template += '<script id="data" type="application/json">{{data}}</script>'
    template += "<script>{{script}}</script></body></html>"
    path = write_page(
        tmp_path / "broken.html",
        render(template, title="t", style="", script="missing.call();", data={}),
    )
    browser.open(path)
    assert browser.evaluate("document.getElementById('page-error').hidden") is False
    browser.evaluate("setTimeout(function () { alsoMissing(); }, 0)")
    time.sleep(0.3)  # for the timer to fire
    # WebKit mutes the message of an error from a script the driver injected ("Script
    # error."), so only its arrival is checked
    assert browser.errors(), "an error thrown by the page went unseen"
