"""The served blend's session indicators inside GRU training, so the GRU learns what they miss.

The worker scores a candidate as gru * q . track_out plus cheap session signals
(selector.blend): same artist as the last track, an artist of the session, a track of the
session. Training adds the same three indicators, with learned weights, to the sampled logits.
The GRU then spends its capacity on what those signals cannot see (the listener across
sessions, tastes beyond the current session) instead of relearning "the same artist again" one
artist at a time from sparse ids. The served blend's weights are tuned after training; the
learned ones are recorded in the manifest's metrics (session_weights).
"""

from __future__ import annotations

import torch

#: the indicators, in the order of ListenerModel.session_weights (names as in BlendWeights)
INDICATORS: tuple[str, ...] = ("last_artist", "session_artist", "in_session")


class SessionMemory:
    """The current session's tracks and artists of every training slot (the last `length`).

    Index 0 (track or artist) means "nothing": vocabulary indices start at 1.
    """

    def __init__(self, slots: int, length: int = 64) -> None:
        self.tracks = torch.zeros(slots, length, dtype=torch.int64)
        self.artists = torch.zeros(slots, length, dtype=torch.int64)
        self.count = torch.zeros(slots, dtype=torch.int64)
        self.last_artist = torch.zeros(slots, dtype=torch.int64)

    def observe(self, track: torch.Tensor, artist: torch.Tensor, new_session: torch.Tensor) -> None:
        """Add each slot's event; a slot whose event starts a session forgets the old one first."""
        self.tracks[new_session] = 0
        self.artists[new_session] = 0
        self.count[new_session] = 0
        at = self.count % self.tracks.shape[1]
        slot = torch.arange(track.shape[0])
        self.tracks[slot, at] = track
        self.artists[slot, at] = artist
        self.last_artist = artist.clone()
        self.count += 1

    def indicators(self, track: torch.Tensor, artist: torch.Tensor) -> torch.Tensor:
        """[slots, C, 3] float: last_artist, session_artist, in_session of the candidates, which
        are shared ([C]) or one list per slot ([slots, C])."""
        slots = self.tracks.shape[0]
        track = track.expand(slots, -1) if track.dim() == 1 else track
        artist = artist.expand(slots, -1) if artist.dim() == 1 else artist
        known_artist = artist > 0
        last = (self.last_artist.unsqueeze(1) == artist) & known_artist
        session_artist = (self.artists.unsqueeze(2) == artist.unsqueeze(1)).any(1) & known_artist
        in_session = (self.tracks.unsqueeze(2) == track.unsqueeze(1)).any(1) & (track > 0)
        return torch.stack([last, session_artist, in_session], dim=-1).float()
