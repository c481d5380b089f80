"""Progress of a long training loop: a tqdm bar on a terminal, plain lines everywhere else.

Logs and CI capture stdout without a terminal, where a bar is hidden; a line at most every
`every_s` seconds shows the run is alive and how far it got. Progress only reads the clock to
decide when to print: nothing here ever stops a loop.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


class Progress:
    """Counts the steps of one loop and reports them (bar on a TTY, else a line per `every_s`)."""

    def __init__(self, desc: str, total: int, enabled: bool = True, every_s: float = 60.0) -> None:
        self.desc, self.total, self.every_s = desc, total, every_s
        self.done = 0
        self.started = self.last_line = time.monotonic()
        tty = sys.stderr.isatty()
        self.bar = (
            tqdm(total=total, desc=desc, unit="step", leave=False) if enabled and tty else None
        )
        self.lines = enabled and not tty

    def update(self, **figures: float) -> None:
        """One step done; `figures` (such as the running loss) go on the bar or the next line."""
        self.done += 1
        shown = {k: f"{v:.4f}" for k, v in figures.items()}
        if self.bar is not None:
            self.bar.update(1)
            if shown:
                self.bar.set_postfix(shown, refresh=False)
        elif self.lines and time.monotonic() - self.last_line >= self.every_s:
            self.last_line = time.monotonic()
            extra = "".join(f", {k} {v}" for k, v in shown.items())
            print(
                f"  {self.desc}: step {self.done}/{self.total} "
                f"({100 * self.done / max(1, self.total):.0f} %){extra}, "
                f"{self.last_line - self.started:.0f} s",
                flush=True,
            )

    def close(self) -> None:
        """Remove the bar (lines need no closing)."""
        if self.bar is not None:
            self.bar.close()
