"""A text progress bar for the command line, fed by the run's events."""
from __future__ import annotations

import shutil
import sys
import time
from typing import TextIO

from lth_core.engine.events import EvalPointEvent, Event, RoundCommitted, RoundFinished, RoundStarted, RunStarted
from lth_core.engine.variants import TICKET, ordered


class ProgressPrinter:
    """Redraws one line on a terminal; prints one line per finished round elsewhere (logs, CI)."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.rounds = self.iterations = 0
        self.round = 0
        self.variants = ""
        self.tickets: list[RoundFinished] = []  # the round's tickets, one per trial, shown once all are in
        self.started = time.perf_counter()

    def update(self, event: Event) -> None:
        if not self.enabled:
            return
        if isinstance(event, RunStarted):
            self.rounds, self.iterations = event.rounds, event.iterations
            print(f"training on {event.device}: {event.rounds} pruning round{'' if event.rounds == 1 else 's'} "
                  f"after the dense round, "
                  f"{event.iterations} iterations each, variants {', '.join(event.variants)}", file=self.stream)
        elif isinstance(event, RoundStarted):
            self.round = event.round
            self.variants = "+".join(ordered({v for _, v in event.models}))
            self._draw(0, event.weights_remaining)
        elif isinstance(event, EvalPointEvent) and self.tty:
            self._draw(event.iteration, None)
        elif isinstance(event, RoundFinished) and event.variant == TICKET:
            self.tickets.append(event)
        elif isinstance(event, RoundCommitted) and self.tickets:
            tickets, self.tickets = self.tickets, []
            label, seconds = self._round_label(event.round), time.perf_counter() - self.started
            remaining = 100 * sum(t.weights_remaining for t in tickets) / len(tickets)
            accuracy = 100 * sum(t.test_accuracy for t in tickets) / len(tickets)
            mean = f" (mean of {len(tickets)} trials)" if len(tickets) > 1 else ""
            line = f"{label}  {remaining:6.2f}% weights  ticket test acc {accuracy:.2f}%{mean}  ({seconds:.1f} s)"
            if self.tty and len(line) > self._columns():  # a narrow terminal: the short form
                line = f"{label} {remaining:6.2f}% ticket {accuracy:.2f}% {seconds:.0f}s"
            # on a terminal: over the bar, padded to wipe it, never wider than the terminal (a wider line wraps)
            print(("\r" + line.ljust(self._columns())) if self.tty else line, file=self.stream, flush=True)

    def _round_label(self, rnd: int) -> str:
        """'round  3/10': the round number as wide as the last one, so the lines stay aligned."""
        return f"round {rnd:>{len(str(self.rounds))}}/{self.rounds}"

    @staticmethod
    def _columns() -> int:
        """Usable width of the terminal: one less than its columns, so the cursor never wraps."""
        return max(20, shutil.get_terminal_size((80, 24)).columns - 1)

    def _draw(self, iteration: int, remaining: float | None) -> None:
        if not self.tty:
            return
        columns = self._columns()
        head = f"{self._round_label(self.round)} [{self.variants}] "
        tail = f" it {iteration}/{self.iterations}  {time.perf_counter() - self.started:.1f} s"
        if len(head) + len(tail) + 10 > columns:  # narrow terminal: drop the variants before the bar
            head = f"{self._round_label(self.round)} "
        width = min(30, columns - len(head) - len(tail))
        bar = ""
        if width >= 5:
            done = int(width * iteration / max(1, self.iterations))
            bar = "█" * done + "░" * (width - done)
        line = (head + bar + tail)[:columns]
        print("\r" + line.ljust(columns), end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=self.stream)
