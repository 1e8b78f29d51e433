"""``build_game``: the gate game as one self-contained HTML file.

Python decides everything the page shows about the streams and the model: the levels'
streams (:func:`levels.level_streams` of the seed), the trained model's chosen units, their
gates and cell states on every level's stream, its answers, and its accuracy on fresh
streams of each level. The page's script only plays the player's side (the same equations
and scoring as :func:`levels.play`) and draws; it holds no number about the model.

Data layout (the JSON in ``<script id="data">``): ``facts``, ``words`` (text -> kind and
candidate values), ``scoring``, ``model`` (how it was trained, its units and their r) and
``levels``, each with its ``words``, ``questions`` and ``model``: per fact the unit's
``forget``, ``input``, ``output``, ``candidate``, ``cell`` and ``hidden`` per step as
base64 float32 (:func:`lstmkit.viz.html.float32_base64`), and its answers.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from pathlib import Path

from lstmkit.viz.game.levels import (
    FACTS,
    GATES,
    LEAK_COST,
    LEVELS,
    RIGHT_POINTS,
    STORY,
    WORDS,
    Stream,
    level_streams,
)
from lstmkit.viz.game.model import (
    DEFAULT_STEPS,
    GameModel,
    TrainConfig,
    Trained,
    UnitChoice,
    choose_units,
    fresh_accuracy,
    on_level,
    train,
    training_threads,
)
from lstmkit.viz.html import asset, float32_base64, render, write_page

FRESH_STREAMS = 200
"""Fresh streams per level on which the page reports the model's accuracy."""
UNIT_STREAMS_PER_LEVEL = 64
"""Fresh streams per level on which each fact's unit is chosen (``model.choose_units``)."""
PAGE_NAME = "game.html"
"""The file written when ``out`` is a folder."""
_ASSETS = "lstmkit.viz.game"


def build_game(
    out: Path,
    *,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    progress: bool = True,
    fresh_streams: int = FRESH_STREAMS,
) -> Path:
    """Train the model for ``steps`` updates and write the game to ``out``; its path.

    ``out`` is an .html file, or a folder (existing, or written with a trailing slash) that
    receives ``game.html``. ``seed`` decides the levels' streams, the training and the
    model's initialisation, so the same seed and steps give the same page. ``progress``
    shows the training's progress bar on stderr. ``fresh_streams`` is the number of fresh
    streams per level on which the page reports the model's accuracy.
    """
    path = _page_path(out)
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    steps = _check_int(steps, "steps", 1)
    fresh_streams = _check_int(fresh_streams, "fresh_streams", 1)
    if not isinstance(progress, bool):
        raise ValueError(f"progress must be True or False, got {progress!r}")
    data = game_data(seed=seed, steps=steps, progress=progress, fresh_streams=fresh_streams)
    page = render(
        asset(_ASSETS, "assets/game.html"),
        title="The gate game: you are an LSTM's gates",
        style=asset(_ASSETS, "assets/game.css"),
        script=asset(_ASSETS, "assets/game.js"),
        data=data,
    )
    return write_page(path, page)


def _page_path(out: Path) -> Path:
    if not isinstance(out, (str, Path)):
        raise ValueError(f"out must be a path to an .html file or a folder, got {out!r}")
    text = str(out)
    path = Path(out)
    if path.is_dir() or text.endswith(("/", "\\")):
        return path / PAGE_NAME
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(
            f"out must end in .html (or be a folder, which gets {PAGE_NAME}), got {text!r}"
        )
    return path


def _check_int(value, name: str, least: int, most: int | None = None) -> int:
    expected = f"an integer >= {least}" if most is None else f"an integer in [{least}, {most}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    if value < least or (most is not None and value > most):
        raise ValueError(f"{name} must be {expected}, got {value}")
    return int(value)


def game_data(*, seed: int, steps: int, progress: bool, fresh_streams: int) -> dict:
    """Everything the page shows, as JSON-ready values (see the module docstring)."""
    trained = train(TrainConfig(steps=steps, seed=seed), progress=progress)
    with training_threads():
        units = choose_units(trained.model, seed, UNIT_STREAMS_PER_LEVEL)
        levels = [
            level_data(trained.model, stream, units, seed, index, fresh_streams)
            for index, stream in enumerate(level_streams(seed))
        ]
    return {
        "seed": seed,
        "story": STORY,
        "gates": list(GATES),
        "facts": [dataclasses.asdict(fact) for fact in FACTS],
        "words": {w.text: {"kind": w.kind, "writes": dict(w.writes)} for w in WORDS},
        "scoring": {"right": RIGHT_POINTS, "leak": LEAK_COST},
        "model": model_data(trained, units),
        "levels": levels,
    }


def model_data(trained: Trained, units: dict[str, UnitChoice]) -> dict:
    """How the model was built and trained, and which unit carries each fact. (No timing:
    the same seed and steps give the same page, byte for byte.)"""
    config = trained.config
    return {
        "hidden": config.hidden,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "forget_bias": config.forget_bias,
        "final_loss": _finite(trained.final_loss),
        "units": {fact: {"unit": u.unit, "r": _finite(u.r)} for fact, u in units.items()},
        "unit_streams": UNIT_STREAMS_PER_LEVEL * len(LEVELS),
    }


def level_data(
    model: GameModel,
    stream: Stream,
    units: dict[str, UnitChoice],
    seed: int,
    index: int,
    fresh_streams: int,
) -> dict:
    """A level's spec, its exact stream and what the model did on it."""
    spec = LEVELS[index]
    ran = on_level(model, stream, units)
    return {
        "name": spec.name,
        "intro": spec.intro,
        "facts": list(stream.facts),
        "lag": list(spec.lag),
        "noise": spec.noise,
        "words": list(stream.words),
        "questions": [dataclasses.asdict(q) for q in stream.questions],
        "model": {
            "units": {
                fact: {name: float32_base64(values) for name, values in quantities.items()}
                for fact, quantities in ran.units.items()
            },
            "answers": list(ran.answers),
            "confidence": [_finite(c) for c in ran.confidence],
            "right": list(ran.right),
            "fresh_accuracy": fresh_accuracy(model, spec, seed, index, fresh_streams),
            "fresh_streams": fresh_streams,
        },
    }


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"the page's numbers must be finite, got {value}")
    return float(value)
