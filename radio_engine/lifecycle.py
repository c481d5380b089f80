"""How a command stops: SIGTERM unwinds it like Ctrl-C, and the stop takes a bounded time.

Python ends a process on SIGTERM without running a single `finally`, so a command killed that
way leaves its Kafka clients unflushed and its child processes (a broker, a worker) running.
`StopSignals` turns the first SIGTERM or SIGINT into `StopRequested` (a KeyboardInterrupt, so
every `finally` and `except KeyboardInterrupt` runs) and then either

- bounds the stop (`grace_s`): if the command has not ended `grace_s` seconds later (a Kafka
  client flushing to a broker that is gone waits for its request timeout), the process ends
  anyway, exit code 128 + the signal; a second signal ends it at once; or
- protects it (`grace_s=None`, for commands that started processes of their own): further
  signals are noted and ignored, so a second Ctrl-C cannot cut short the code that stops those
  processes (that code bounds itself: SIGTERM, wait, SIGKILL).

A signal that arrives while a C library runs one of our Python callbacks (soundfile's virtual
I/O through cffi, while audio is encoded) would raise StopRequested where cffi prints and drops
it, and the stop would be lost; such a signal is delivered again to the main thread a moment
later, once the callback has returned.

The exit code of a command stopped this way is 128 + the signal (130 for SIGINT, 143 for
SIGTERM), as a shell reports a process the signal ended.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import sys
import threading
from types import FrameType

#: (module file name, function name prefix) of Python callbacks that C code calls and whose
#: exceptions it swallows: soundfile's virtual-I/O callbacks (cffi)
FOREIGN_CALLBACKS = (("soundfile.py", "vio_"),)
#: seconds before a signal that arrived inside such a callback is delivered again
REDELIVER_AFTER_S = 0.02

#: the signals that ask a command to stop
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(KeyboardInterrupt):
    """SIGTERM or SIGINT asked the command to stop; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


def exit_code(exc: BaseException) -> int:
    """The exit code of a command a stop signal ended: 128 + the signal (Ctrl-C: 130)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def stop_behind(exc: BaseException) -> StopRequested | None:
    """The StopRequested that `exc` was raised while handling, if any: a client's cleanup that
    a stop started can end in another exception (aiokafka's stop() re-raises the CancelledError
    of its fetch task), and that stop must still end the command as a stop."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, StopRequested):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def exit_after(seconds: float, code: int, message: str) -> threading.Timer:
    """Arm a daemon timer that, unless cancelled, writes `message` on stderr and ends the
    process with `code` after `seconds` (os._exit: no cleanup can hang it)."""

    def fire() -> None:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        os._exit(code)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    return timer


def in_foreign_callback(frame: FrameType | None) -> bool:
    """Whether `frame`, or a frame that called it, is a FOREIGN_CALLBACKS function."""
    while frame is not None:
        code = frame.f_code
        for file_name, prefix in FOREIGN_CALLBACKS:
            if code.co_filename.endswith(file_name) and code.co_name.startswith(prefix):
                return True
        frame = frame.f_back
    return False


class StopSignals:
    """The stop policy of one command (module docstring): install(), then let it run."""

    def __init__(self, command: str, grace_s: float | None) -> None:
        self.command = command
        self.grace_s = grace_s
        self.requested: int | None = None
        self.deadline: threading.Timer | None = None

    def install(self) -> None:
        """Handle SIGINT and SIGTERM in this (the main) thread from now on."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self.handle)

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The signal handler: the first signal raises StopRequested (see `begin`); inside a
        callback whose exceptions C code would swallow, the signal comes again a moment later."""
        if in_foreign_callback(frame):
            redeliver = threading.Timer(REDELIVER_AFTER_S, _thread.interrupt_main, (signum,))
            redeliver.daemon = True
            redeliver.start()
            return
        if self.begin(signum):
            raise StopRequested(signum)

    def begin(self, signum: int) -> bool:
        """True for the first stop signal (the deadline, if any, is armed now); a later one
        ends the process at once (grace_s set) or is reported and ignored (grace_s None)."""
        if self.requested is None:
            self.requested = signum
            if self.grace_s is not None:
                self.deadline = exit_after(
                    self.grace_s,
                    128 + signum,
                    f"radio-engine {self.command}: did not stop within {self.grace_s:g} s of "
                    f"{signal.Signals(signum).name}; exiting without a clean stop",
                )
            return True
        if self.grace_s is None:
            print(
                f"radio-engine {self.command}: already stopping; waiting for the processes it "
                "started to end",
                file=sys.stderr,
                flush=True,
            )
            return False
        os._exit(128 + signum)
