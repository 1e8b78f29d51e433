"""The gate game: a browser game in which the player is the gates of an LSTM.

A stream of words goes past; the player sets the forget, input and output gates of one to
three memory cells at each word to carry a fact (the country, the open bracket, the count
of stars) to the question that asks for it. After each level the page shows how a trained
lstmkit LSTM set its gates on the same words. ``build_game(out)`` writes the page as one
self-contained HTML file; :mod:`.levels` holds the rules and the scorer, :mod:`.model` the
model, :mod:`.page` the page.
"""

from lstmkit.viz.game.levels import (
    FACTS,
    LEVELS,
    WORDS,
    Fact,
    LevelSpec,
    Play,
    Question,
    Stream,
    Word,
    generate_stream,
    level_streams,
    perfect_gates,
    play,
)
from lstmkit.viz.game.model import DEFAULT_STEPS, GameModel, TrainConfig, choose_units, train
from lstmkit.viz.game.page import build_game

__all__ = [
    "DEFAULT_STEPS",
    "FACTS",
    "LEVELS",
    "WORDS",
    "Fact",
    "GameModel",
    "LevelSpec",
    "Play",
    "Question",
    "Stream",
    "TrainConfig",
    "Word",
    "build_game",
    "choose_units",
    "generate_stream",
    "level_streams",
    "perfect_gates",
    "play",
    "train",
]
