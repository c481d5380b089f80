"""`radio-engine` and its subcommands: thin argument parsing that calls into the package.

Every subcommand takes --broker (or RADIO_BROKER) and reads the rest of its configuration from
Settings (RADIO_* environment variables); heavy imports happen only inside the chosen command.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from radio_engine.settings import SettingError, Settings
from radio_engine.training.config import (  # plain dataclass: the train defaults
    ARTIST_INITS,
    TrainConfig,
)

#: subcommand -> "module:function"; each function takes (args, settings) and returns an exit code
COMMANDS: dict[str, str] = {
    "broker": "radio_engine.broker.commands:run",
    "worker": "radio_engine.worker.main:run",
    "produce-audio": "radio_engine.player.produce_audio:run",
    "replay": "radio_engine.player.replay:run",
    "tail": "radio_engine.player.tail:run",
    "send": "radio_engine.player.commands:run_send",
    "dead-letters": "radio_engine.player.commands:run_dead_letters",
    "demo": "radio_engine.demo:run",
    "verify": "radio_engine.verify.run:run",
    "train": "radio_engine.training.train:run",
    "split": "radio_engine.training.data:run_split",
    "evaluate": "radio_engine.training.evaluate:run",
    "evaluate-audio": "radio_engine.training.evaluate_audio:run",
    "simulate": "radio_engine.training.simulated_listeners:run",
    "evaluate-simulated": "radio_engine.training.simulated_listeners:run_check",
    "settings": "radio_engine.cli:show_settings",
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help unless it has none (None, a required option or
    an off switch) or its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or action.required:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="radio-engine", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_text, description=help_text, formatter_class=_HelpFormatter
        )
        p.add_argument(
            "--broker",
            help=f"Kafka bootstrap servers (default: env RADIO_BROKER, else {Settings.broker})",
        )
        return p

    p = command("broker", "run the dev Apache Kafka broker (KRaft, jars from Maven Central)")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--foreground", action="store_true", help="start: stay attached, stop on Ctrl-C")

    p = command("worker", "run the Faust worker: listens -> GRU state -> queues; audio -> tracks")
    p.add_argument("--model", help="model directory (env RADIO_MODEL_DIR)")
    p.add_argument("--port", type=int, help="HTTP port for /metrics, /health, /queues/<id>")
    p.add_argument("--data-dir", help="Faust data directory (env RADIO_WORKER_DATA_DIR)")

    p = command("produce-audio", "send the audio of every track in DIR as chunks onto Kafka")
    p.add_argument("directory", help="folder of audio files (searched recursively)")
    p.add_argument("--metadata", help="CSV with clip_path/artist/title columns (game-music)")
    p.add_argument("--limit", type=int, help="send at most this many tracks")
    p.add_argument("--chunk-seconds", type=float, default=10.0, help="audio per chunk")
    p.add_argument("--format", default="flac", choices=["flac", "wav", "ogg", "pcm_s16le"])

    p = command("replay", "replay listening sessions from a CSV as live listen events")
    p.add_argument("events", help="CSV with the columns of 30Music events.csv")
    p.add_argument("--speed", type=float, help="speed-up over real time (0 = as fast as possible)")
    p.add_argument("--limit", type=int, help="send at most this many events")
    p.add_argument("--listeners", type=int, help="replay only the first N listeners")
    p.add_argument("--rate", type=float, help="cap on events per second")

    p = command("tail", "follow one listener's radio queue as it changes")
    p.add_argument("--listener", required=True)
    p.add_argument("--count", type=int, help="stop after this many queue versions")
    p.add_argument("--timeout", type=float, help="stop after this many seconds")

    p = command(
        "send", "send one listen event (checked against the schema) and print where it went"
    )
    p.add_argument("--listener", required=True, help="listener_id (also the message key)")
    p.add_argument("--track", required=True, help="track_id")
    p.add_argument(
        "--event",
        required=True,
        choices=["play", "skip", "complete", "like", "dislike"],
        help="what the listener did",
    )
    p.add_argument("--artist", help="the track's artist_id (default: none sent)")
    p.add_argument("--dwell", type=float, help="dwell_ratio, 0-1 (default: none sent)")
    p.add_argument("--ts", type=float, help="event time, unix seconds (default: now)")
    p.add_argument("--event-id", help="the event's id; reuse it to retry (default: a new uuid4)")

    p = command("dead-letters", "print the input the worker refused, with the reasons")
    p.add_argument("--follow", action="store_true", help="keep printing new dead letters")
    p.add_argument("--limit", type=int, help="stop after this many (default: no limit)")
    p.add_argument("--json", action="store_true", help="one JSON object per line, not a table")

    p = command("demo", "broker + worker + real audio + replayed real sessions, live queues")
    p.add_argument("--speed", type=float, default=3600.0, help="replay speed-up over real time")
    p.add_argument("--events", type=int, default=20000, help="listen events to replay")
    p.add_argument("--show", type=int, default=3, help="listeners whose queues are shown")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--model", help="model directory (default: train one if none exists)")

    p = command("train", "train the listener GRU and audio encoder, export a model directory")
    p.add_argument("--events", required=True, help="training events CSV (30Music columns)")
    p.add_argument("--audio", help="folder of audio clips for the audio encoder")
    p.add_argument("--metadata", help="clip metadata CSV (artist per clip)")
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--valid", help="validation events CSV (default: split off the last day)")
    p.add_argument(
        "--epochs",
        type=_at_least_one,
        default=TrainConfig.epochs,
        help="validated epochs; the refit runs as many as the best one",
    )
    p.add_argument(
        "--audio-steps", type=int, default=TrainConfig.audio_steps, help="audio encoder steps"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        help="opt-in guard: end a phase between epochs once past this; the report says what "
        "was skipped (default: none, training stops on epoch and step counts only)",
    )
    p.add_argument("--seed", type=int, default=TrainConfig.seed, help="seed of the GRU training")
    p.add_argument(
        "--threads", type=int, default=TrainConfig.threads, help="PyTorch threads of the training"
    )
    p.add_argument(
        "--artist-init",
        choices=ARTIST_INITS,
        default=TrainConfig.artist_init,
        help="artist vectors start from session co-occurrence (default) or at random",
    )
    p.add_argument(
        "--indicators-in-loss",
        action="store_true",
        help="ablation: the session indicators join the training logits (the earlier recipe)",
    )
    p.add_argument("--id-only", action="store_true", help="ablation: no artist, no audio")
    p.add_argument(
        "--no-feedback",
        action="store_true",
        help="ablation: every event read as a play, every next event a target",
    )

    p = command("split", "split events into train/validation by time (last day of each fold)")
    p.add_argument("--events", required=True)
    p.add_argument("--out", required=True, help="folder for train.csv and valid.csv")
    p.add_argument("--days", type=float, default=1.0, help="days held out at the end of a fold")

    p = command(
        "evaluate", "next-track HR@k / MRR@k for the model and baselines on one set of pairs"
    )
    p.add_argument("--model", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--id-only-model", help="model directory of the id-only GRU baseline")

    p = command("evaluate-audio", "leave-one-out audio neighbours: our embedding vs MFCC stats")
    p.add_argument("--audio", required=True)
    p.add_argument("--metadata", required=True)
    p.add_argument("--model", help="model directory (its audio encoder)")
    p.add_argument("--json", action="store_true")

    p = command("simulate", "SIMULATED listeners over the game-music clips (tastes by game/audio)")
    p.add_argument("--audio", required=True, help="the game-music folder")
    p.add_argument("--metadata", required=True, help="its metadata.csv")
    p.add_argument("--out", required=True, help="folder for events.csv, holdout.csv, tastes.json")
    p.add_argument("--listeners", type=int, default=300)
    p.add_argument("--holdout-share", type=float, default=0.2, help="clips no listener plays")
    p.add_argument("--seed", type=int, default=0)

    p = command(
        "evaluate-simulated",
        "do held-out clips (audio only) reach the SIMULATED listeners whose taste they fit?",
    )
    p.add_argument("--model", help="a model trained on the simulation's events")
    p.add_argument("--simulation", required=True, help="the folder `simulate` wrote")
    p.add_argument("--audio", required=True)
    p.add_argument("--metadata", required=True)
    p.add_argument("--k", type=int, help="queue length looked at (default 10; ablation 20)")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--feedback-ablation",
        action="store_true",
        help="instead: train GRUs with and without feedback on each listener's earlier "
        "sessions, compare them on the later ones (no --model)",
    )
    p.add_argument(
        "--epochs", type=_at_least_one, default=6, help="--feedback-ablation: epochs per GRU"
    )
    p.add_argument("--seed", type=int, default=7, help="--feedback-ablation: training seed")

    p = command("verify", "crash workers while events flow, then prove none was lost or doubled")
    p.add_argument("--model", help="model directory (default: RADIO_MODEL_DIR or the current)")
    p.add_argument("--listeners", type=int, default=200, help="listeners sending events")
    p.add_argument("--events-per-listener", type=int, default=1000, help="events per listener")
    p.add_argument("--workers", type=int, default=2, help="workers at the start")
    p.add_argument("--kills", type=int, default=5, help="worker SIGKILLs (each restarted)")
    p.add_argument("--rate", type=float, default=1500.0, help="events sent per second")
    p.add_argument("--seed", type=int, default=1, help="seed of the events and the kill times")
    p.add_argument(
        "--broker-restarts", type=int, default=1, help="broker SIGKILLs (none with --broker)"
    )

    command("settings", "print every setting with its env var, type, default and doc")
    return parser


def show_settings(args: argparse.Namespace, settings: Settings) -> int:
    """Print the settings table (env var, type, default, doc) and the values in force."""
    rows = Settings.describe()
    width = max(len(r[0]) for r in rows)
    for env, kind, default, doc in rows:
        current = repr(getattr(settings, env.removeprefix("RADIO_").lower()))
        marker = "" if current == default else f"  [now {current}]"
        print(f"{env:<{width}}  {kind:<5}  {default:<28}  {doc}{marker}")
    return 0


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse shows the message)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _resolve(target: str) -> Callable[[argparse.Namespace, Settings], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


#: commands that start processes of their own (broker, workers, training): a stop signal waits
#: for them to be stopped, however long that takes, and a second one cannot cut it short
OWN_PROCESSES = frozenset({"demo", "verify", "broker"})


def setup_process(command: str, settings: Settings) -> None:
    """What a command's process needs before it runs (not done for main(argv) from tests):
    SIGTERM/SIGINT unwind it like Ctrl-C (radio_engine/lifecycle.py), and log lines go to
    stderr, the Kafka clients' repeats rate-limited (the worker sets up its own logging)."""
    import logging

    from radio_engine.lifecycle import StopSignals
    from radio_engine.log_repeats import limit_repeats

    grace = None if command in OWN_PROCESSES else settings.stop_grace_s
    StopSignals(command, grace).install()
    if command != "worker":
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
        )
        limit_repeats()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `radio-engine` console script (argv None: this process is the
    command, see setup_process)."""
    from radio_engine.lifecycle import exit_code, stop_behind

    args = build_parser().parse_args(argv)
    settings = Settings.from_env().with_overrides(broker=args.broker)
    try:
        if argv is None:
            setup_process(args.command, settings)
        return int(_resolve(COMMANDS[args.command])(args, settings) or 0)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (lifecycle.StopRequested)
        return exit_code(exc)
    except BaseException as exc:
        # raised by the cleanup a stop started (e.g. a Kafka client's CancelledError): a stop
        stop = stop_behind(exc)
        if stop is not None:
            return exit_code(stop)
        line = failure_line(exc, settings)
        if line is None:
            raise
        print(f"radio-engine {args.command}: {line}", file=sys.stderr)
        return 2


def failure_line(exc: BaseException, settings: Settings) -> str | None:
    """One line for a failure that is the user's to fix (a path, a setting, a Kafka
    connection), None for anything else (a bug: its traceback is shown)."""
    if isinstance(exc, FileNotFoundError | IsADirectoryError | PermissionError):
        # an OSError raised with only a message, as our own checks do, has no strerror
        return f"{exc.strerror}: {exc.filename}" if exc.strerror else str(exc)
    if isinstance(exc, SettingError):  # e.g. a password file that cannot be read
        return str(exc)
    return kafka_failure_line(exc, settings)


def kafka_failure_line(exc: BaseException, settings: Settings) -> str | None:
    """One line for a Kafka client that could not connect (unreachable, untrusted certificate,
    SASL refused: see kafka_diagnosis), None for any other exception."""
    from aiokafka.errors import KafkaConnectionError

    from radio_engine.kafka_diagnosis import problem_sync
    from radio_engine.kafka_security import redact

    if not isinstance(exc, KafkaConnectionError):
        return None
    return problem_sync(settings) or redact(
        f"the Kafka connection to {settings.broker} failed: {exc}", settings
    )


if __name__ == "__main__":
    sys.exit(main())
