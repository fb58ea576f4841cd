"""How far an import is: a bar on a terminal, a plain line now and then elsewhere."""

from __future__ import annotations

import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Records read so far, their rate and the time left (when the total is known).

    On a terminal one line is redrawn at most ``redraw`` times a second; into a
    file or pipe (cron, CI, ``| tee``) a full line is written every ``every``
    seconds, so a log shows the import moving without a line per batch.
    """

    WIDTH = 30

    def __init__(
        self,
        stream: TextIO,
        total: int | None,
        *,
        tty: bool | None = None,
        every: float = 10.0,
        redraw: float = 5.0,
        clock=time.monotonic,
    ):
        self.stream = stream
        self.total = total
        self.tty = stream.isatty() if tty is None else tty
        self.every = every if not self.tty else 1.0 / redraw
        self.clock = clock
        self.started = clock()
        self.last_shown = self.started
        self.done = 0

    def line(self) -> str:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.done / elapsed
        parts = [f"{self.done:,}"]
        if self.total:
            share = min(self.done / self.total, 1.0)
            if self.tty:
                filled = int(share * self.WIDTH)
                parts.insert(0, "[" + "#" * filled + "-" * (self.WIDTH - filled) + "]")
            parts[-1] += f" / {self.total:,} records ({share:.0%})"
        else:
            parts[-1] += " records"
        parts.append(f"{rate:,.0f}/s")
        if self.total and rate > 0:
            parts.append(f"{_duration(max(self.total - self.done, 0) / rate)} left")
        parts.append(f"{_duration(elapsed)} elapsed")
        return "  ".join(parts)

    def advance(self, records: int) -> None:
        self.done += records
        now = self.clock()
        if now - self.last_shown < self.every:
            return
        self.last_shown = now
        self._show()

    def _show(self) -> None:
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def finish(self) -> None:
        self._show()
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
