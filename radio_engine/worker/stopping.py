"""Faust's worker with a stop that always ends: SIGTERM or SIGINT starts Faust's clean stop
(commit, leave the group, flush) and arms a deadline of `stop_grace_s` seconds.

With its broker gone, Faust's clean stop waits on the consumer thread for 60 s and then on
each Kafka client in turn, each retrying a broker that does not answer. At the deadline the
process ends anyway, exit code 128 + the signal: a worker cut short is a crash, which loses
nothing (uncommitted records are read again; see README "Crashes lose and double nothing").
A clean stop ends with 0; a second signal ends the worker at once.
"""

from __future__ import annotations

import signal
from typing import Any

import faust

from radio_engine.lifecycle import StopSignals


class StoppingWorker(faust.Worker):
    """faust.Worker whose SIGTERM/SIGINT handling arms a deadline before the clean stop."""

    def __init__(self, app: faust.App, *, stop_grace_s: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.stop_signals = StopSignals("worker", stop_grace_s)

    def _on_sigterm(self) -> None:
        if self.stop_signals.begin(signal.SIGTERM):
            super()._on_sigterm()

    def _on_sigint(self) -> None:
        if self.stop_signals.begin(signal.SIGINT):
            super()._on_sigint()
