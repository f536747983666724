"""A text progress bar for the command line, fed by the run's events."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from .events import EvalPointEvent, Event, RoundFinished, RoundStarted, RunStarted


class ProgressPrinter:
    """Redraws one line on a terminal; prints one line per finished round elsewhere (logs, CI)."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.rounds = self.iterations = 0
        self.round = 0
        self.variants = ""
        self.started = time.perf_counter()

    def update(self, event: Event) -> None:
        if not self.enabled:
            return
        if isinstance(event, RunStarted):
            self.rounds, self.iterations = event.rounds, event.iterations
            print(f"training on {event.device}: {event.rounds} pruning rounds after the dense round, "
                  f"{event.iterations} iterations each, variants {', '.join(event.variants)}", file=self.stream)
        elif isinstance(event, RoundStarted):
            self.round = event.round
            self.variants = "+".join(sorted({v for _, v in event.models}, key=["ticket", "reinit", "random"].index))
            self._draw(0, event.weights_remaining)
        elif isinstance(event, EvalPointEvent) and self.tty:
            self._draw(event.iteration, None)
        elif isinstance(event, RoundFinished) and event.variant == "ticket" and event.trial == 0:
            line = (f"round {event.round}/{self.rounds}  {100 * event.weights_remaining:6.2f}% weights  "
                    f"ticket test acc {100 * event.test_accuracy:.2f}%  ({time.perf_counter() - self.started:.1f} s)")
            print(("\r" + line.ljust(100)) if self.tty else line, file=self.stream, flush=True)

    def _draw(self, iteration: int, remaining: float | None) -> None:
        if not self.tty:
            return
        width = 30
        done = int(width * iteration / max(1, self.iterations))
        bar = "█" * done + "░" * (width - done)
        print(f"\rround {self.round}/{self.rounds} [{self.variants}] {bar} it {iteration}/{self.iterations}"
              f"  {time.perf_counter() - self.started:.1f} s", end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=self.stream)
