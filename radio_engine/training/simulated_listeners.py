"""SIMULATED listeners over the real game-music clips, and the audio cold-start check they allow.

No real data links the clips to any listener, so the audio pathway cannot be shown working on
real listening. These listeners are simulated, and labelled so everywhere (ids "sim-0001",
SIMULATED.md, printed summaries). Taste model: each listener has one or two favourite games;
a clip's appeal = 2 [its game is a favourite] + 1 [its composer wrote for a favourite game]
+ cosine(its z-scored MFCC statistics, the mean of the favourite games' clips). Sessions draw
clips among those not held out, 70 % by softmax(appeal / 0.5) and 30 % uniformly (the radio
trying something); feedback follows appeal within the listener's own range over the clips:
below the 40th percentile skipped (a tenth of those disliked), above the 90th liked one time in
three, above the 75th completed, the rest played.

`radio-engine simulate` writes the events, the held-out clips and the tastes. After
`radio-engine train --events SIM/events.csv --audio CLIPS`, `radio-engine evaluate-simulated`
asks whether the held-out clips, which no listener ever played and which the model therefore
knows only by their audio (and composer), reach the queues of the listeners whose taste fits.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from radio_engine.audio.decode import load_audio_file
from radio_engine.audio.features import track_features
from radio_engine.audio.files import track_metadata
from radio_engine.model.inputs import FEEDBACK_INDEX, feedback_indices
from radio_engine.settings import Settings
from radio_engine.training.data import Events, load_events, write_events_csv
from radio_engine.training.evaluate_audio import clip_file, mfcc_statistics
from radio_engine.training.listener_replay import replay_queries

START_TS = 1_767_225_600.0  # 2026-01-01T00:00:00Z
LABEL = "SIMULATED"
SPAN_DAYS = 10.0
#: share of plays drawn uniformly (the radio trying something), which taste then judges
EXPLORE = 0.3
#: how the check lets the model know a held-out clip; "shuffled audio" is the control: each
#: held-out clip gets another held-out clip's audio, which should fall to the base rate
VARIANTS = ("audio", "audio+artist", "shuffled audio")
#: the check's "new clips" shelf: a listener's best held-out clips, ranked among themselves
SHELF = 3
#: the clips no simulated listener plays, written beside events.csv
HOLDOUT_FILE = "holdout.csv"
#: the label written beside events.csv: training reports name such data SIMULATED
LABEL_FILE = "SIMULATED.md"
#: a clip at or below this quantile of the listener's appeal (over the playable clips) is skipped
SKIP_QUANTILE = 0.4


@dataclass(frozen=True)
class ClipTable:
    """The clips of a game-music metadata.csv: ids, game, artist id (composer, else the game,
    as produce-audio sends it), MFCC + delta frames and z-scored MFCC statistics."""

    clip_id: np.ndarray
    game: np.ndarray
    artist_id: np.ndarray
    features: list[np.ndarray]
    mfcc_stats: np.ndarray

    def __len__(self) -> int:
        return int(self.clip_id.shape[0])


def load_clip_table(audio_dir: Path, metadata_csv: Path) -> ClipTable:
    """Decode every clip of the metadata (progress bar) with the worker's feature code."""
    with open(metadata_csv, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda row: row["clip_id"])
    features = [
        track_features(*load_audio_file(clip_file(Path(audio_dir), row["clip_path"])))
        for row in tqdm(rows, desc="clips", unit="clip", disable=not sys.stderr.isatty())
    ]
    return ClipTable(
        clip_id=np.array([row["clip_id"] for row in rows]),
        game=np.array([row.get("game", "") for row in rows]),
        artist_id=np.array([track_metadata(row).get("artist_id", "") for row in rows]),
        features=features,
        mfcc_stats=mfcc_statistics(features).astype(np.float32),
    )


@dataclass(frozen=True)
class Simulation:
    """Simulated events, the clips no event plays, and each listener's favourite games."""

    events: Events
    holdout: np.ndarray
    tastes: dict[str, list[str]]


def choose_holdout(clips: ClipTable, share: float, rng: np.random.Generator) -> np.ndarray:
    """About `share` of the clips, never the last played clip of a game (stratified by game)."""
    held: list[str] = []
    for game in np.unique(clips.game):
        ids = clips.clip_id[clips.game == game]
        if ids.size < 2:
            continue
        n = min(ids.size - 1, round(share * ids.size))
        held += rng.choice(ids, size=n, replace=False).tolist()
    return np.array(sorted(held))


def appeal(clips: ClipTable, favourites: list[str]) -> np.ndarray:
    """A listener's appeal for every clip (see the module docstring)."""
    fav = np.isin(clips.game, favourites)
    fav_artists = set(clips.artist_id[fav].tolist()) - set(favourites) - {""}
    unit = clips.mfcc_stats / np.maximum(
        np.linalg.norm(clips.mfcc_stats, axis=1, keepdims=True), 1e-9
    )
    centroid = unit[fav].mean(0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-9)
    return 2.0 * fav + 1.0 * np.isin(clips.artist_id, list(fav_artists)) + unit @ centroid


def would_skip(clips: ClipTable, favourites: list[str], playable: np.ndarray) -> np.ndarray:
    """bool per clip: the listener skips (or dislikes) it whenever it is played, the rule that
    simulate_listeners applies: appeal at or below SKIP_QUANTILE of the playable clips'."""
    a = appeal(clips, favourites)
    return a <= np.quantile(a[playable], SKIP_QUANTILE)


def simulate_listeners(
    clips: ClipTable, *, listeners: int = 300, holdout_share: float = 0.2, seed: int = 0
) -> Simulation:
    """Seeded simulated listening (same seed, same events); see the module docstring."""
    rng = np.random.default_rng(seed)
    holdout = choose_holdout(clips, holdout_share, rng)
    playable = ~np.isin(clips.clip_id, holdout)
    games, sizes = np.unique(clips.game, return_counts=True)
    game_p = np.sqrt(sizes) / np.sqrt(sizes).sum()  # bigger games are favourites a bit more often
    rows: dict[str, list[Any]] = {
        k: [] for k in ("user", "session", "track", "artist", "ts", "event")
    }
    tastes: dict[str, list[str]] = {}
    for n in range(listeners):
        user = f"sim-{n + 1:04d}"
        favourites = rng.choice(
            games, size=int(rng.integers(1, 3)), replace=False, p=game_p
        ).tolist()
        tastes[user] = favourites
        a = appeal(clips, favourites)
        low, high, top = np.quantile(a[playable], [SKIP_QUANTILE, 0.75, 0.9])
        p = np.where(playable, np.exp((a - a.max()) / 0.5), 0.0)
        p = (1 - EXPLORE) * p / p.sum() + EXPLORE * playable / playable.sum()
        # sessions start at uniform times over SPAN_DAYS, so a last-day validation split
        # (train's default) holds about 1 / SPAN_DAYS of them
        starts = np.sort(START_TS + rng.uniform(0, SPAN_DAYS * 86400, size=int(rng.integers(3, 9))))
        for s, ts in enumerate(starts):
            for clip in rng.choice(len(clips), size=int(rng.integers(5, 16)), p=p):
                if a[clip] <= low:
                    event = "dislike" if rng.random() < 0.1 else "skip"
                elif a[clip] >= top and rng.random() < 1 / 3:
                    event = "like"
                elif a[clip] >= high:
                    event = "complete"
                else:
                    event = "play"
                rows["user"].append(user)
                rows["session"].append(f"{user}-s{s + 1:02d}")
                rows["track"].append(clips.clip_id[clip])
                rows["artist"].append(clips.artist_id[clip])
                rows["ts"].append(round(ts))
                rows["event"].append(event)
                ts += rng.uniform(20, 40) if event in ("skip", "dislike") else rng.uniform(30, 200)
    events = Events(
        fold=np.zeros(len(rows["ts"]), np.int64),
        user_id=np.array(rows["user"]),
        session_id=np.array(rows["session"]),
        track_id=np.array(rows["track"]),
        artist_id=np.array(rows["artist"]),
        ts=np.array(rows["ts"], np.float64),
        event=np.array(rows["event"]),
    )
    return Simulation(events, holdout, tastes)


def write_simulation(sim: Simulation, clips: ClipTable, out: Path, seed: int) -> None:
    """events.csv, holdout.csv, tastes.json and the SIMULATED.md label under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_events_csv(sim.events, out / "events.csv")
    held = np.isin(clips.clip_id, sim.holdout)
    with open(out / HOLDOUT_FILE, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["clip_id", "game", "artist_id"])
        writer.writerows(
            zip(clips.clip_id[held], clips.game[held], clips.artist_id[held], strict=True)
        )
    (out / "tastes.json").write_text(json.dumps(sim.tastes, indent=1))
    (out / LABEL_FILE).write_text(
        f"# {LABEL} listeners\n\n"
        "Every listener here is simulated (`radio_engine/training/simulated_listeners.py`, "
        f"seed {seed}): tastes follow game, composer and MFCC similarity of the real game-music "
        "clips. No real data links these clips to any listener; nothing here is a measurement "
        "of real listening.\n"
    )


def read_holdout(sim_dir: Path) -> np.ndarray:
    """The held-out clip ids that write_simulation listed."""
    with open(sim_dir / HOLDOUT_FILE, newline="") as f:
        return np.array([row["clip_id"] for row in csv.DictReader(f)])


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine simulate --audio DIR --metadata CSV --out DIR`: write simulated listening."""
    for flag in ("audio", "metadata"):
        if not Path(getattr(args, flag)).exists():
            print(
                f"radio-engine simulate: --{flag} {getattr(args, flag)}: not found", file=sys.stderr
            )
            return 2
    clips = load_clip_table(Path(args.audio), Path(args.metadata))
    sim = simulate_listeners(
        clips, listeners=args.listeners, holdout_share=args.holdout_share, seed=args.seed
    )
    write_simulation(sim, clips, Path(args.out), args.seed)
    kinds = {k: int((sim.events.event == k).sum()) for k in FEEDBACK_INDEX}
    print(
        f"{LABEL}: {len(sim.tastes)} listeners, {len(np.unique(sim.events.session_id))} sessions, "
        f"{len(sim.events)} events {kinds}; {len(np.unique(sim.events.track_id))} clips played, "
        f"{sim.holdout.size} held out (never played) -> {args.out}"
    )
    return 0


# --- the check: do clips known only by their audio reach the listeners they fit? ---------------


def listener_queries(
    model: Any, events: Events, clip_ids: np.ndarray, track_in: np.ndarray
) -> dict[str, np.ndarray]:
    """Each listener's query after their last event: their events stepped through the ONNX GRU
    in time order with their feedback (listener_replay); track_in has a row per clip id."""
    row_of = {c: i for i, c in enumerate(clip_ids.tolist())}
    rows = np.array([row_of[t] for t in events.track_id.tolist()], np.int64)
    feedback = feedback_indices(events.event)
    (q,) = replay_queries(
        model, track_in, [rows], [events.user_id], [events.ts], feedback=[feedback]
    )
    # the last event of each listener in replay order: time, then file order
    order = np.lexsort((np.arange(len(events)), events.ts, events.user_id))
    users = events.user_id[order]
    last = np.append(users[1:] != users[:-1], True)
    return {str(u): q[i] for u, i in zip(users[last], order[last], strict=True)}


def cold_start_report(
    model: Any,
    sim_events: Events,
    clips: ClipTable,
    holdout: np.ndarray,
    tastes: dict[str, list[str]],
    k: int = 10,
) -> dict[str, Any]:
    """For the held-out clips (never played): how often they enter a listener's top k among all
    clips and whether those listeners like the clip's game; and, ranked among themselves (a
    "new clips" shelf of SHELF), how many fit each listener. Both against the base rate.

    Ways to know a held-out clip: "audio" (its audio embedding alone: no id, no artist),
    "audio+artist" (its composer too, as produce-audio sends it) and the "shuffled audio"
    control. Played clips use the model's table.
    """
    table = {t: i for i, t in enumerate(model.tracks.track_ids)}
    audio = np.stack([model.embed_audio(f) for f in clips.features])
    held = np.isin(clips.clip_id, holdout)
    report: dict[str, Any] = {
        "label": LABEL,
        "k": k,
        "listeners": len(tastes),
        "held_out": int(held.sum()),
    }
    held_rows = np.flatnonzero(held)
    shuffled = audio.copy()
    shuffled[held_rows] = audio[np.random.default_rng(0).permutation(held_rows)]
    for variant in VARIANTS:
        artist = np.array(
            [
                model.artist_index.get(a, 0) if variant == "audio+artist" else 0
                for a in clips.artist_id
            ]
        )
        t_in, t_out = model.encode_tracks(
            np.zeros(len(clips), np.int64),
            artist,
            shuffled if variant == "shuffled audio" else audio,
            np.ones(len(clips), np.float32),
        )
        for i, c in enumerate(clips.clip_id):
            if c in table and not held[i]:
                t_in[i], t_out[i] = (
                    model.tracks.track_in[table[c]],
                    model.tracks.track_out[table[c]],
                )
        queries = listener_queries(model, sim_events, clips.clip_id, t_in)
        fits, hits, fit_hits, shelf_fit = 0, 0, 0, 0
        for user, q in queries.items():
            fit = np.isin(clips.game, tastes[user]) & held
            scores = t_out @ q
            in_top = np.zeros(len(clips), bool)
            in_top[np.argsort(-scores, kind="stable")[:k]] = True
            fits += int(fit.sum())
            hits += int((in_top & held).sum())
            fit_hits += int((in_top & fit).sum())
            shelf = held_rows[np.argsort(-scores[held_rows], kind="stable")[:SHELF]]
            shelf_fit += int(fit[shelf].sum())
        pairs = len(queries) * int(held.sum())
        report[variant] = {
            "held_out_in_top_k": hits,
            "precision": fit_hits / hits if hits else float("nan"),
            "recall": fit_hits / fits if fits else float("nan"),
            "shelf_precision": shelf_fit / (SHELF * len(queries)) if queries else float("nan"),
            "base_rate": fits / pairs if pairs else float("nan"),
        }
    return report


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    """`radio-engine evaluate-simulated --model DIR --simulation DIR --audio DIR --metadata CSV`
    (the cold-start check), or with --feedback-ablation and no --model (feedback_ablation)."""
    from radio_engine.model.runtime import ServingModel

    if args.feedback_ablation:
        from radio_engine.training.feedback_ablation import run as run_ablation

        return run_ablation(args)
    if not args.model:
        print("radio-engine evaluate-simulated: --model is required", file=sys.stderr)
        return 2
    # the inputs that fail fast first, the clips (decoding takes a while) last
    model = ServingModel(args.model)
    sim_dir = Path(args.simulation)
    events = load_events(sim_dir / "events.csv")
    holdout = read_holdout(sim_dir)
    tastes = json.loads((sim_dir / "tastes.json").read_text())
    clips = load_clip_table(Path(args.audio), Path(args.metadata))
    report = cold_start_report(model, events, clips, holdout, tastes, k=args.k or 10)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"{LABEL} listeners: {report['listeners']}; {report['held_out']} held-out clips that no "
        f"listener played; top {report['k']} among all {len(clips)} clips"
    )
    print(
        f"{'held-out clip known by':<24}{'in top-k':>10}{'fit taste':>11}{'recall':>9}"
        f"{'shelf fit':>11}{'base rate':>11}"
    )
    for variant in VARIANTS:
        r = report[variant]
        print(
            f"{variant:<24}{r['held_out_in_top_k']:>10}{r['precision']:>11.3f}{r['recall']:>9.3f}"
            f"{r['shelf_precision']:>11.3f}{r['base_rate']:>11.3f}"
        )
    print(
        f"fit taste: share of held-out clips in a top {report['k']} whose game the listener "
        f"likes; shelf fit: the same for each listener's best {SHELF} held-out clips ranked "
        "among themselves; base rate: the share of (listener, held-out clip) pairs that fit."
    )
    return 0
