"""Make the screenshots of docs/explorer.md with the browser the tests use.

    python docs/make_screenshots.py runs/facts-lstm [--game]

RUN is a word-level LSTM trained on the built-in stories (docs/language-models.md trains
runs/facts-lstm with ``lstmkit train --cell lstm --steps 3000 --out runs/facts-lstm``).
The script writes the explorer page of the France story with the span from "France" to
"French" selected, screenshots each view into docs/explorer/, and prints, for the three
best-ranked units, their cell state at "fluent" when the story names each of the ten
countries: the table in docs/explorer.md. With --game it also builds the game (seed 0, the
default training), plays level 3 by the rules' perfect gates, and screenshots the play and
the comparison with the model after it.

Needs Debian's Chromium at /usr/bin/chromium and Playwright for Python (the dev extras).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from lstmkit.lm.checkpoint import load_model
from lstmkit.lm.record import record_text, span_scores
from lstmkit.tasks.fact import COUNTRIES, LANGUAGES
from lstmkit.viz.explorer import build_explorer

OUT = Path(__file__).parent / "explorer"
STORY = "I grew up in {}. My sister liked to play football. The train was late. I speak fluent {}."
FRANCE, FRENCH = 4, 21  # token positions of the country and the language in STORY
FLUENT = FRENCH - 1
VIEWS = ("cell-view", "text-view", "matrix-view", "finder", "predictions-view", "saturation-view")


def country_table(run: Path, units: list[int]) -> str:
    """Markdown: each unit's cell state at "fluent", one column per country."""
    model, config = load_model(run)
    rows = {u: [] for u in units}
    for country, language in zip(COUNTRIES, LANGUAGES, strict=True):
        record = record_text(model, config.vocabulary, STORY.format(country, language))
        for u in units:
            rows[u].append(float(record.quantities["cell"][0, FLUENT, u]))
    lines = ["| unit | " + " | ".join(COUNTRIES) + " |", "|---" * (len(COUNTRIES) + 1) + "|"]
    for u, values in rows.items():
        lines.append(f"| {u} | " + " | ".join(f"{v:+.2f}" for v in values) + " |")
    return "\n".join(lines)


def explorer_shots(browser, run: Path) -> list[int]:
    text = STORY.format("France", "French")
    page_path, record = build_explorer(
        run, text, OUT / "france.html", selection=(FRANCE, FRENCH + 1)
    )
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(page_path.resolve().as_uri())
    ranked = [int(li.get_attribute("data-unit")) for li in page.locator("#ranking li").all()]
    for _ in range(FLUENT):
        page.keyboard.press("ArrowRight")
    for view in VIEWS:
        page.locator(f"#{view}").screenshot(path=str(OUT / f"{view}.png"))
        print(f"wrote {OUT / f'{view}.png'}")
    scores = span_scores(record.quantities["cell"][0], FRANCE, FRENCH + 1)
    assert ranked[0] == int(np.argmax(np.abs(scores)))  # the page ranks as the library does
    page_path.unlink()  # 0.5 MB of trace; the command above remakes it
    return ranked[:3]


def game_shots(browser) -> None:
    from lstmkit.viz.game import build_game, level_streams, perfect_gates
    from lstmkit.viz.game.levels import GATES

    level = 2  # the third level: two facts, some noise, a lag worth carrying
    path = build_game(OUT / "game.html", seed=0)
    stream = level_streams(0)[level]
    gates = perfect_gates(stream)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(path.resolve().as_uri())
    for _ in range(level):  # unlock the level by passing the ones before it
        _play(page, perfect_gates(level_streams(0)[_]), GATES)
        page.click("#next-level")
    _play(page, gates[: len(stream) // 2], GATES)
    page.locator("main").screenshot(path=str(OUT / "game-play.png"))
    _play(page, gates[len(stream) // 2 :], GATES)
    page.locator("#results").screenshot(path=str(OUT / "game-results.png"))
    print(f"wrote {OUT / 'game-play.png'} and {OUT / 'game-results.png'}")
    path.unlink()


def _play(page, gates, names) -> None:
    """Click each step's gates into place, then Step."""
    for step in gates:
        for cell, row in enumerate(step):
            for gate, want in zip(names, row, strict=True):
                button = page.locator(f'button.gate[data-cell="{cell}"][data-gate="{gate}"]')
                if (button.get_attribute("aria-pressed") == "true") != bool(want):
                    button.click()
        page.click("#step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--game", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        best = explorer_shots(browser, args.run)
        if args.game:
            game_shots(browser)
        browser.close()
    print(country_table(args.run, best))


if __name__ == "__main__":
    main()
