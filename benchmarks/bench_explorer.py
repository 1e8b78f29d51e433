"""How responsive the explorer page is at the issue's size: 2,000 tokens, 512 units.

    python benchmarks/bench_explorer.py [--tokens 2000] [--units 512] [--layers 1] [--repeats 5]

Builds a page of an untrained character-level LSTM (the page's work depends on the sizes,
not on the weights) over a generated text, opens it from disk in headless Chromium
(/usr/bin/chromium, as the tests), and times in the page itself (performance.now around
each action, median of the repeats): opening the page, a step, a unit change, a change of
quantity, and the ranking of units for a selected span. Prints one line per action and
the page's size. These are wall-clock times of this machine's browser, not ratios: they
answer "is it responsive", nothing finer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from run_folders import make_run  # the tests' maker of run folders

from lstmkit.viz.explorer import build_explorer

# each action runs in the page; the page's handlers are synchronous, so timing the event
# dispatch times the whole redraw
ACTIONS = {
    "step (→)": "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}))",
    "unit (↑)": "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowUp'}))",
    "quantity": """(() => { const s = document.getElementById('quantity');
        s.value = s.value === 'forget' ? 'cell' : 'forget';
        s.dispatchEvent(new Event('change')); })()""",
    "span ranking": """(() => { const toks = document.querySelectorAll('#strip .tok');
        const at = (el, type) => el.dispatchEvent(new MouseEvent(type, {bubbles: true}));
        const a = toks[Math.floor(toks.length / 20)], b = toks[Math.floor(toks.length / 5)];
        at(a, 'mousedown'); at(b, 'mouseover'); at(b, 'mouseup'); })()""",
}


def text_of(tokens: int) -> str:
    letters = "abcdefghij klmnopqrst.\n"
    return "".join(letters[(7 * k + k // 5) % len(letters)] for k in range(tokens))


def timed(page, script: str) -> float:
    return page.evaluate(
        f"() => {{ const t = performance.now(); {script}; return performance.now() - t; }}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--units", type=int, default=512)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        text = text_of(args.tokens)
        run = make_run(Path(tmp) / "run", hidden=args.units, layers=args.layers, text=text)
        page_path, _ = build_explorer(run, text, Path(tmp) / "page.html")
        size = page_path.stat().st_size / 1e6
        print(f"page: {args.tokens} tokens, {args.layers} x {args.units} units, {size:.1f} MB")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(page_path.resolve().as_uri())
            print(f"{'open':<14} {time.perf_counter() - start:8.3f} s")
            for name, script in ACTIONS.items():
                times = [timed(page, script) for _ in range(args.repeats)]
                median = statistics.median(times) / 1000
                print(f"{name:<14} {median:8.3f} s (median of {args.repeats})")
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
