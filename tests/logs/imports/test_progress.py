"""The progress of an import: a bar redrawn on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from logs.imports.progress import Progress


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_terminal_gets_one_redrawn_bar_with_rate_and_time_left():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(stream, 1_000_000, tty=True, clock=clock)

    clock.now += 5
    progress.advance(250_000)

    assert stream.getvalue() == (
        "\r[#######-----------------------]  250,000 / 1,000,000 records (25%)  "
        "50,000/s  0:00:15 left  0:00:05 elapsed\x1b[K"
    )
    clock.now += 15
    progress.advance(750_000)
    progress.finish()
    assert stream.getvalue().count("\r") == 3 and stream.getvalue().endswith("\n")
    assert "1,000,000 / 1,000,000 records (100%)  50,000/s  0:00:00 left" in stream.getvalue()


def test_a_log_file_gets_a_plain_line_every_ten_seconds():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(stream, None, tty=False, clock=clock)

    for _ in range(30):  # a batch a second
        clock.now += 1
        progress.advance(5_000)
    progress.finish()

    lines = stream.getvalue().splitlines()
    assert lines == [
        "50,000 records  5,000/s  0:00:10 elapsed",
        "100,000 records  5,000/s  0:00:20 elapsed",
        "150,000 records  5,000/s  0:00:30 elapsed",
        "150,000 records  5,000/s  0:00:30 elapsed",
    ]
    assert "\r" not in stream.getvalue()
