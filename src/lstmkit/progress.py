"""A small progress bar: count/total, rate and ETA, with no dependency beyond the standard library.

Basic use, like tqdm's::

    for batch in Progress(batches, desc="train"):
        ...

    with Progress(total=steps, desc="lstm") as bar:
        for step in range(steps):
            ...
            bar.update()
            bar.set_postfix(loss=loss.item())

On a terminal the line is redrawn in place with ``'\\r'`` (at most every ``redraw_s``
seconds). On anything else (CI logs, pipes, files) a carriage return would not erase
anything, so a plain line is printed only when another quarter of the total is done or
``log_every_s`` seconds have passed since the last line, whichever comes first, plus one
final line: a few lines per loop however many items it has. Output goes to stderr unless
``stream`` says otherwise, and ``disable=True`` prints nothing at all.

The rate is the mean over the whole run (items done / seconds since start), and the ETA is
what is left at that rate: steady for loops whose items all cost about the same.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TextIO, TypeVar

T = TypeVar("T")

_BAR_WIDTH = 20
_LOG_FRACTION = 0.25  # non-TTY: one line per quarter of the total ...
_LOG_EVERY_S = 10.0  # ... or per this many seconds, whichever comes first
_REDRAW_S = 0.1  # TTY: redraw at most this often


def format_seconds(seconds: float) -> str:
    """0:07, 3:25, 1:02:03: minutes and seconds, hours only when needed."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


class Progress(Generic[T]):
    """A progress bar over ``iterable`` (iterate it) or ``total`` items (call ``update``).

    Args:
        iterable: items to yield; ``total`` defaults to ``len(iterable)`` when it has one.
        total: the number of items expected, or None when unknown (no percentage, no ETA).
        desc: a label printed before the counts.
        unit: the name of an item in the rate, e.g. ``"it"`` gives ``"12.5 it/s"``.
        stream: where to write; None means ``sys.stderr`` at construction time.
        disable: print nothing (the counts are still kept).
        log_every_s: non-TTY only, the longest time between two lines.
        clock: a monotonic clock in seconds; tests pass a fake one.
    """

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        *,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        stream: TextIO | None = None,
        disable: bool = False,
        log_every_s: float = _LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        if total is not None and total < 0:
            raise ValueError(f"Progress: total must be >= 0 or None, got {total!r}")
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = sys.stderr if stream is None else stream
        self.disable = disable
        self.log_every_s = log_every_s
        self.clock = clock
        self.n = 0
        self.postfix = ""
        self.closed = False
        self.tty = not disable and _is_tty(self.stream)
        self.start = clock()
        self._last_print = self.start
        self._last_logged_n = 0
        self._drawn_width = 0  # TTY: length of the line on screen, to blank its leftovers
        if self.tty:
            self._draw()

    # -- counting ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("Progress: nothing to iterate; pass an iterable or call update()")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done, and print if it is time to."""
        self.n += n
        if self.disable or self.closed:
            return
        now = self.clock()
        if self.tty:
            if now - self._last_print >= _REDRAW_S:
                self._draw(now)
        elif self._log_due(now):
            self._log(now)

    def set_postfix(self, **values: object) -> None:
        """Show ``key=value`` pairs after the counts (floats with 4 significant digits);
        they appear at the next redraw or line."""
        self.postfix = ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
            for key, value in values.items()
        )

    def close(self) -> None:
        """Print the final state once: the full line, ending with a newline."""
        if self.closed:
            return
        self.closed = True
        if self.disable:
            return
        now = self.clock()
        if self.tty:
            self._draw(now)
            self.stream.write("\n")
            self.stream.flush()
        else:
            self._log(now)

    def __enter__(self) -> Progress[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- text --------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    def format(self, now: float | None = None) -> str:
        """The progress line, e.g. ``lstm [#####-----] 250/1000 25% | 80.0 it/s | ETA 0:09``."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 0.0)
        rate = self.n / elapsed if elapsed > 0 and self.n > 0 else None
        parts = [self.desc] if self.desc else []
        if self.total:
            frac = min(self.n / self.total, 1.0)
            filled = int(frac * _BAR_WIDTH)
            parts.append("[" + "#" * filled + "-" * (_BAR_WIDTH - filled) + "]")
            parts.append(f"{self.n}/{self.total} {frac:4.0%}")
        else:
            parts.append(f"{self.n}" if self.total is None else f"{self.n}/{self.total}")
        line = " ".join(parts)
        line += f" | {rate:.1f} {self.unit}/s" if rate else f" | ? {self.unit}/s"
        if self.closed or (self.total is not None and self.n >= self.total):
            line += f" | {format_seconds(elapsed)} elapsed"
        elif self.total is not None and rate:
            line += f" | ETA {format_seconds((self.total - self.n) / rate)}"
        else:
            line += " | ETA ?"
        if self.postfix:
            line += f" | {self.postfix}"
        return line

    def _draw(self, now: float | None = None) -> None:
        line = self.format(now)
        padding = " " * max(self._drawn_width - len(line), 0)
        self.stream.write("\r" + line + padding)
        self.stream.flush()
        self._drawn_width = len(line)
        self._last_print = self.clock() if now is None else now

    def _log_due(self, now: float) -> bool:
        if now - self._last_print >= self.log_every_s:
            return True
        if not self.total:
            return False
        return (self.n - self._last_logged_n) / self.total >= _LOG_FRACTION and (
            self.n < self.total  # the line at 100% is close()'s
        )

    def _log(self, now: float) -> None:
        self.stream.write(self.format(now) + "\n")
        self.stream.flush()
        self._last_print = now
        self._last_logged_n = self.n
