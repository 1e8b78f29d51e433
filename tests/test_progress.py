"""The progress bar: few lines off a terminal, in-place redraws on one, rate and ETA, silence
when disabled. A fake clock makes rates and ETAs exact."""

from __future__ import annotations

import io

import pytest

from lstmkit.progress import Progress, format_seconds


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TTYStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_non_tty_prints_a_few_lines_not_one_per_item():
    stream, clock = io.StringIO(), FakeClock()
    items = []
    for item in Progress(range(1000), desc="work", stream=stream, clock=clock):
        items.append(item)
        clock.now += 0.001
    lines = stream.getvalue().splitlines()
    assert items == list(range(1000))
    assert "\r" not in stream.getvalue()
    # one line per quarter (25%, 50%, 75%) and the final one
    assert len(lines) == 4, lines
    assert [line.split()[2] for line in lines] == ["250/1000", "500/1000", "750/1000", "1000/1000"]
    assert all(line.startswith("work [") for line in lines)


def test_rate_and_eta():
    stream, clock = io.StringIO(), FakeClock()
    with Progress(total=100, stream=stream, clock=clock, unit="step") as bar:
        for _ in range(25):
            clock.now += 0.2  # 5 steps/s
            bar.update()
        first = stream.getvalue().splitlines()[0]
        assert "25/100" in first
        assert "5.0 step/s" in first
        assert "ETA 0:15" in first  # 75 left at 5/s
        for _ in range(75):
            clock.now += 0.2
            bar.update()
    last = stream.getvalue().splitlines()[-1]
    assert "100/100 100%" in last
    assert "5.0 step/s" in last
    assert "0:20 elapsed" in last
    assert "ETA" not in last


def test_non_tty_prints_after_a_long_pause_even_below_a_quarter():
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(total=1000, stream=stream, clock=clock, log_every_s=10.0)
    bar.update()
    assert stream.getvalue() == ""
    clock.now = 11.0
    bar.update()
    assert stream.getvalue().splitlines() == [bar.format(11.0)]
    assert "2/1000" in stream.getvalue()


def test_unknown_total_prints_counts_without_eta():
    stream, clock = io.StringIO(), FakeClock()
    with Progress(iter(range(30)), stream=stream, clock=clock) as bar:
        for _ in bar:
            clock.now += 1.0
    lines = stream.getvalue().splitlines()
    assert 1 <= len(lines) <= 4  # every 10 s of the 30, then the final line
    assert lines[-1].startswith("30 | 1.0 it/s")
    assert "0:30 elapsed" in lines[-1]


def test_tty_redraws_in_place_and_ends_with_one_newline():
    stream, clock = TTYStream(), FakeClock()
    with Progress(total=50, desc="tty", stream=stream, clock=clock) as bar:
        for _ in range(50):
            clock.now += 0.05  # a redraw every other item at most (every 0.1 s)
            bar.update()
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert 10 <= text.count("\r") <= 27
    assert text.rstrip().rsplit("\r", 1)[-1].startswith("tty [####################] 50/50")


def test_tty_blanks_leftovers_of_a_longer_line():
    stream, clock = TTYStream(), FakeClock()
    bar = Progress(total=10, stream=stream, clock=clock)
    bar.set_postfix(loss=1.23456789)
    clock.now = 1.0
    bar.update()
    long_line = stream.getvalue().rsplit("\r", 1)[-1]
    assert "loss=1.235" in long_line
    bar.set_postfix()
    clock.now = 2.0
    bar.update()
    last = stream.getvalue().rsplit("\r", 1)[-1]
    assert len(last) == len(long_line)  # padded with spaces over the old text
    assert "loss" not in last


def test_disabled_prints_nothing():
    stream, clock = TTYStream(), FakeClock()
    bar = Progress(range(100), stream=stream, clock=clock, disable=True)
    for _ in bar:
        clock.now += 1.0
    assert stream.getvalue() == ""
    assert bar.n == 100


def test_writes_to_stderr_by_default(capsys):
    for _ in Progress(range(3), desc="default"):
        pass
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "default" in captured.err and "3/3" in captured.err


def test_close_is_idempotent():
    stream = io.StringIO()
    bar = Progress(total=2, stream=stream, clock=FakeClock())
    bar.update(2)
    bar.close()
    bar.close()
    assert len(stream.getvalue().splitlines()) == 1


def test_bad_use_is_refused():
    with pytest.raises(ValueError, match="total must be >= 0"):
        Progress(total=-1)
    with pytest.raises(TypeError, match="nothing to iterate"):
        list(Progress(total=3, stream=io.StringIO()))


@pytest.mark.parametrize(
    "seconds, text", [(0, "0:00"), (7.4, "0:07"), (205, "3:25"), (3723, "1:02:03")]
)
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
