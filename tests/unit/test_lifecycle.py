"""Stop signals: SIGTERM unwinds a command like Ctrl-C; a stuck stop ends at its deadline; a
command that owns processes finishes stopping them whatever else arrives. Real child processes
and real signals, no broker."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from radio_engine.lifecycle import StopRequested, exit_code

#: a command in miniature: waits to be stopped, then "cleans up" for argv[2] seconds
CHILD = """
import sys, time
from radio_engine.lifecycle import StopSignals, exit_code
grace = None if sys.argv[1] == "none" else float(sys.argv[1])
StopSignals("toy", grace).install()
try:
    print("ready", flush=True)
    while True:
        time.sleep(0.05)
except KeyboardInterrupt as exc:
    print("cleaning", flush=True)
    time.sleep(float(sys.argv[2]))
    print("cleaned", flush=True)
    sys.exit(exit_code(exc))
"""


def start(grace: str, cleanup_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, grace, str(cleanup_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out, err


def test_exit_codes_are_128_plus_the_signal() -> None:
    assert exit_code(KeyboardInterrupt()) == 130
    assert exit_code(StopRequested(signal.SIGTERM)) == 143
    assert exit_code(StopRequested(signal.SIGINT)) == 130


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_runs_the_cleanup_and_exits_128_plus_the_signal(signum: int) -> None:
    proc = start("10", 0.0)
    proc.send_signal(signum)
    code, out, err = finish(proc)
    assert (code, out, err) == (128 + signum, "cleaning\ncleaned\n", "")


def test_a_cleanup_that_hangs_is_ended_at_the_deadline() -> None:
    proc = start("1", 3600.0)  # a Kafka client flushing to a broker that is gone
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 143 and out == "cleaning\n"
    assert err.strip() == (
        "radio-engine toy: did not stop within 1 s of SIGTERM; exiting without a clean stop"
    )


def test_a_second_signal_ends_a_bounded_stop_at_once() -> None:
    proc = start("3600", 3600.0)
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline() == "cleaning\n"
    proc.send_signal(signal.SIGINT)
    code, _, _ = finish(proc)
    assert code == 130


def test_a_command_that_owns_processes_finishes_stopping_them_whatever_arrives() -> None:
    proc = start("none", 2.0)  # stopping its broker and worker takes a while
    proc.send_signal(signal.SIGINT)
    assert proc.stdout is not None and proc.stdout.readline() == "cleaning\n"
    proc.send_signal(signal.SIGINT)  # an impatient second Ctrl-C
    proc.send_signal(signal.SIGTERM)
    code, out, err = finish(proc)
    assert code == 130 and out == "cleaned\n"
    assert "already stopping" in err


def _cleanup_fails_after(stop: BaseException, failure: BaseException) -> BaseException:
    """`failure` raised while handling `stop`, as a client's cleanup can."""
    try:
        try:
            raise stop
        except BaseException:
            raise failure  # noqa: B904 -- the implicit context is what is tested
    except BaseException as exc:
        return exc


def test_an_exception_from_the_cleanup_a_stop_started_still_ends_as_that_stop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from radio_engine import cli
    from radio_engine.lifecycle import stop_behind

    # aiokafka's consumer.stop() re-raises its fetch task's CancelledError during the unwind
    raised = _cleanup_fails_after(StopRequested(signal.SIGINT), asyncio.CancelledError())
    found = stop_behind(raised)
    assert isinstance(found, StopRequested) and found.signum == signal.SIGINT
    assert stop_behind(asyncio.CancelledError()) is None

    def command(*_: object) -> int:
        raise raised

    monkeypatch.setattr(cli, "_resolve", lambda _: command)
    assert cli.main(["tail", "--listener", "x"]) == 130

    # without a stop behind it, an exception that is no user error is a bug: it propagates
    def broken(*_: object) -> int:
        raise ValueError("a bug")

    monkeypatch.setattr(cli, "_resolve", lambda _: broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["tail", "--listener", "x"])


#: a signal that lands inside soundfile's cffi callback (a real frame of a function named and
#: filed as soundfile's vio_tell): raised there, cffi would print and drop the StopRequested
IN_CALLBACK = """
import signal, sys, time
from radio_engine.lifecycle import StopSignals
StopSignals("toy", 5.0).install()
space = {}
source = "import sys\\ndef vio_tell(handler):\\n    handler(15, sys._getframe())\\n"
exec(compile(source, "/venv/site-packages/soundfile.py", "exec"), space)
space["vio_tell"](signal.getsignal(signal.SIGTERM))
print("returned from the callback", flush=True)
try:
    time.sleep(5)
    print("the stop was lost", flush=True)
except KeyboardInterrupt as exc:
    print(f"stopped by {exc.signum}", flush=True)
"""


def test_a_signal_inside_a_c_librarys_callback_is_delivered_again_once_it_returns() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IN_CALLBACK], capture_output=True, text=True, timeout=30
    )
    assert done.stdout == "returned from the callback\nstopped by 15\n", done.stderr
