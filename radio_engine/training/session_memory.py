"""The served blend's session indicators inside GRU training (the `--indicators-in-loss` ablation).

The worker scores a candidate as gru * q . track_out plus cheap session signals
(selector.blend): same artist as the last accepted track, an artist of the session, a track of
the session. With TrainConfig.indicators_in_loss, training adds the same three indicators,
computed by the same function (model.session_indicators), with learned weights, to the sampled
logits, so that the GRU would learn only what they miss; the learned weights are recorded in the
manifest's metrics (session_weights). Measured on our split, that GRU reached HR@20 0.03 alone
and the blend could barely use it; the default trains the GRU alone (README, "Model").

Each slot remembers its listener's last `length` events the way the worker's listener state
remembers its recent ones: track and artist, whether accepted, and how many belong to the
current session.
"""

from __future__ import annotations

import numpy as np

from radio_engine.model.session_indicators import NONE, session_context, session_indicators


class SessionMemory:
    """The last `length` events of the listener in every training slot, oldest first.

    Tracks and artists are vocabulary indices, where 0 means unknown (the shared indicators'
    -1)."""

    def __init__(self, slots: int, length: int = 64) -> None:
        self.tracks = np.full((slots, length), NONE, dtype=np.int64)
        self.artists = np.full((slots, length), NONE, dtype=np.int64)
        self.accepted = np.zeros((slots, length), dtype=bool)
        self.session_len = np.zeros(slots, dtype=np.int64)

    def observe(
        self,
        track: np.ndarray,
        artist: np.ndarray,
        accepted: np.ndarray,
        new_session: np.ndarray,
        new_listener: np.ndarray,
    ) -> None:
        """Add each slot's event; a slot that moved to another listener forgets the last one's
        events first, and an event that starts a session starts the slot's session anew."""
        self.accepted[new_listener] = False
        for table, value in ((self.tracks, track - 1), (self.artists, artist - 1)):
            table[new_listener] = NONE
            table[:, :-1] = table[:, 1:]
            table[:, -1] = value
        self.accepted[:, :-1] = self.accepted[:, 1:]
        self.accepted[:, -1] = accepted
        length = self.tracks.shape[1]
        grown = np.minimum(self.session_len + 1, length)
        self.session_len = np.where(new_session | new_listener, 1, grown)

    def indicators(self, track: np.ndarray, artist: np.ndarray) -> np.ndarray:
        """float32 [slots, C, 3] in INDICATORS order (last_artist, session_artist, in_session)
        of the candidates (vocabulary indices), shared ([C]) or one list per slot ([slots, C])."""
        length = self.tracks.shape[1]
        in_session = np.arange(length)[None, :] >= length - self.session_len[:, None]
        context = session_context(self.tracks, self.artists, self.accepted, in_session)
        return session_indicators(context, track - 1, artist - 1).stacked()
