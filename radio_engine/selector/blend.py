"""The served final score: the GRU score blended with cheap session signals.

`blend_scores` is the one function both the worker's selector and `radio-engine evaluate` call,
so what is measured is what is served. The weights live in the model manifest as
feature_spec["blend"]; they are tuned on a validation split only
(training.blend_tuning.tune_blend, called by training.evaluate.tune_blend_weights).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BlendWeights:
    """Weights of the final score; `rules` is the scale the others are measured against.

    Defaults: the blend tuned on a 30Music validation split (the last day of each fold's
    training part, warm pairs, ties as a random order); gru = 1 until a model's own tuning
    (stored in its manifest) replaces it.

    score = gru * gru_score + rules * log(1 + SR) + last_artist * [same artist as the last
    track] + session_artist * [artist already in the session] + in_session * [track already in
    the session] + popularity * log(1 + training plays)
    """

    gru: float = 1.0
    rules: float = 1.0
    last_artist: float = 0.5
    session_artist: float = 0.25
    in_session: float = 0.25
    popularity: float = 0.03

    def to_dict(self) -> dict[str, float]:
        """Plain dict for manifest.feature_spec["blend"]."""
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> BlendWeights:
        """Weights from a manifest dict; missing names keep their defaults, unknown names fail."""
        values = dict(values or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown blend weights {unknown}; known: {sorted(names)}")
        return cls(**{k: float(v) for k, v in values.items()})

    def replace(self, **changes: float) -> BlendWeights:
        """A copy with some weights changed."""
        return dataclasses.replace(self, **changes)


#: what a model whose manifest carries no tuned blend serves: the GRU score alone
GRU_ONLY = BlendWeights(
    gru=1.0, rules=0.0, last_artist=0.0, session_artist=0.0, in_session=0.0, popularity=0.0
)


def served_weights(feature_spec: Mapping[str, Any] | None) -> tuple[BlendWeights, str]:
    """The weights a model serves and where they come from: ("manifest" | "gru-only")."""
    blend = (feature_spec or {}).get("blend")
    return (BlendWeights.from_dict(blend), "manifest") if blend else (GRU_ONLY, "gru-only")


def blend_only(weights: BlendWeights) -> BlendWeights:
    """The weights with the GRU switched off (the blend baseline / the GRU ablation)."""
    return weights.replace(gru=0.0)


def blend_scores(
    gru_scores: np.ndarray | None,
    rule_scores: np.ndarray,
    last_artist: np.ndarray,
    session_artist: np.ndarray,
    in_session: np.ndarray,
    popularity: np.ndarray,
    weights: BlendWeights,
) -> np.ndarray:
    """Final scores [B, N] float32 from broadcastable arrays of candidate signals.

    gru_scores: q @ track_out (None or weight 0: blend without the GRU); rule_scores: SR
    weights from the last accepted track (>= 0); the three session indicators
    (model.session_indicators, named as the weights) are bool (or 0/1); popularity: plays in
    training. Larger is better.
    """
    w = weights
    signals = (last_artist, session_artist, in_session)
    shape = np.broadcast_shapes(
        *(np.shape(a) for a in (gru_scores, rule_scores, *signals, popularity) if a is not None)
    )
    out = np.empty(shape, dtype=np.float32)
    np.log1p(np.broadcast_to(np.asarray(rule_scores, dtype=np.float32), shape), out=out)
    if w.rules != 1.0:
        out *= np.float32(w.rules)
    for weight, signal in zip(
        (w.last_artist, w.session_artist, w.in_session), signals, strict=True
    ):
        if weight:
            np.add(out, np.float32(weight), out=out, where=np.asarray(signal, dtype=bool))
    if w.popularity:
        out += np.float32(w.popularity) * np.log1p(np.asarray(popularity, dtype=np.float32))
    if gru_scores is not None and w.gru:
        out += np.float32(w.gru) * np.asarray(gru_scores, dtype=np.float32)
    return out


#: the parts of the blended score a queue message shows, in order (the selector adds "feedback")
SCORE_PARTS: tuple[str, ...] = ("gru", "rules", "artist", "session", "popularity")


def blend_parts(
    gru_scores: np.ndarray | None,
    rule_scores: np.ndarray,
    last_artist: np.ndarray,
    session_artist: np.ndarray,
    in_session: np.ndarray,
    popularity: np.ndarray,
    weights: BlendWeights,
) -> dict[str, np.ndarray]:
    """`blend_scores` split into its parts (SCORE_PARTS), float32, summing to it: what a queue
    message shows as the reasons for a track. Meant for a queue's few rows, not a whole pool."""
    w = weights
    f32 = np.float32

    def on(signal: np.ndarray) -> np.ndarray:
        return np.asarray(signal, dtype=bool).astype(np.float32)

    gru = np.zeros(np.shape(rule_scores), dtype=f32) if gru_scores is None else gru_scores
    return {
        "gru": f32(w.gru) * np.asarray(gru, dtype=f32),
        "rules": f32(w.rules) * np.log1p(np.asarray(rule_scores, dtype=f32)),
        "artist": f32(w.last_artist) * on(last_artist) + f32(w.session_artist) * on(session_artist),
        "session": f32(w.in_session) * on(in_session),
        "popularity": f32(w.popularity) * np.log1p(np.asarray(popularity, dtype=f32)),
    }
