"""The listener GRU (PyTorch, training only): track encoder, GRU cell, query head, learned h0.

Track representation (p-RNN style, content beside ids): track_in = id_in[id] + artist_in[artist]
+ has_audio * audio_in(audio); track_out likewise with its own tables. Index 0 of ids and artists
is the learned "unknown" vector, so a track never seen in training still gets a vector from its
artist and audio. Scores are dot products q . track_out: one matrix product scores a catalog.

Hidden-state policy (the classic GRU4Rec bug is resetting the wrong slot):
- a listener's state lives across sessions: it is never reset between sessions of one listener;
  the context carries log(gap) and a new-session flag so the GRU learns how much to forget;
- a new listener starts from the learned h0 (exported to vocab.npz);
- in session-parallel training, a slot's state is reset to h0 only when that slot switches to a
  different listener, and only that slot (`reset_slots`).
"""

from __future__ import annotations

import torch
from torch import nn

from radio_engine.model.inputs import CONTEXT_DIM


class TrackEncoder(nn.Module):
    """Input and output vectors of tracks from id, artist and audio parts."""

    def __init__(
        self,
        n_ids: int,
        n_artists: int,
        audio_dim: int,
        track_in: int,
        query: int,
        id_only: bool,
        tied: bool = False,
    ) -> None:
        super().__init__()
        self.id_only = id_only
        self.id_in = nn.Embedding(n_ids + 1, track_in)
        self.artist_in = nn.Embedding(n_artists + 1, track_in)
        self.audio_in = nn.Linear(audio_dim, track_in)
        for table in (self.id_in, self.artist_in):
            nn.init.normal_(table.weight, std=0.05)
        if tied:
            if track_in != query:
                raise ValueError(
                    f"tied input/output tables need track_in == query ({track_in} != {query})"
                )
            self.id_out, self.artist_out, self.audio_out = self.id_in, self.artist_in, self.audio_in
        else:
            self.id_out = nn.Embedding(n_ids + 1, query)
            self.artist_out = nn.Embedding(n_artists + 1, query)
            self.audio_out = nn.Linear(audio_dim, query)
            for table in (self.id_out, self.artist_out):
                nn.init.normal_(table.weight, std=0.05)

    def forward(
        self,
        id_index: torch.Tensor,
        artist_index: torch.Tensor,
        audio: torch.Tensor,
        has_audio: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        track_in = self.id_in(id_index)
        track_out = self.id_out(id_index)
        if not self.id_only:
            gate = has_audio.unsqueeze(-1)
            track_in = track_in + self.artist_in(artist_index) + gate * self.audio_in(audio)
            track_out = track_out + self.artist_out(artist_index) + gate * self.audio_out(audio)
        return track_in, track_out


class ListenerStep(nn.Module):
    """One GRU step: (x, h) -> (h_next, q). Exported to ONNX as listener_step.onnx.

    Dropout (on the step input and on what the head reads) regularises training only: the ids
    are sparse (most tracks are played a handful of times) and the GRU memorises them otherwise.
    """

    def __init__(self, step_input: int, hidden: int, query: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.input_dropout = nn.Dropout(dropout)
        self.cell = nn.GRUCell(step_input, hidden)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden, query), nn.Tanh(), nn.Linear(query, query)
        )

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h_next = self.cell(self.input_dropout(x), h)
        return h_next, self.head(h_next)


class ListenerModel(nn.Module):
    """Track encoder + GRU step + learned h0: everything the export writes."""

    def __init__(
        self,
        n_ids: int,
        n_artists: int,
        *,
        audio_dim: int = 32,
        track_in: int = 64,
        hidden: int = 128,
        query: int = 64,
        id_only: bool = False,
        dropout: float = 0.0,
        tied: bool = False,
    ) -> None:
        super().__init__()
        self.dims = {
            "track_in": track_in,
            "context": CONTEXT_DIM,
            "hidden": hidden,
            "query": query,
            "audio_embedding": audio_dim,
        }
        self.tracks = TrackEncoder(n_ids, n_artists, audio_dim, track_in, query, id_only, tied)
        self.step = ListenerStep(track_in + CONTEXT_DIM, hidden, query, dropout)
        self.h0 = nn.Parameter(torch.zeros(hidden))
        #: weights of the session indicators added to the training logits (session_memory)
        self.session_weights = nn.Parameter(torch.tensor([0.5, 0.25, 0.25]))

    def initial_state(self, batch: int) -> torch.Tensor:
        """h0 repeated for `batch` new listeners."""
        return self.h0.unsqueeze(0).expand(batch, -1).contiguous()

    def run_sequence(
        self, track_in: torch.Tensor, context: torch.Tensor, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step through [T, B, *] inputs; returns (queries [T, B, query], final h [B, hidden])."""
        steps, batch = track_in.shape[:2]
        h = self.initial_state(batch) if h is None else h
        queries = []
        for t in range(steps):
            h, q = self.step(torch.cat([track_in[t], context[t]], dim=-1), h)
            queries.append(q)
        return torch.stack(queries), h


def reset_slots(h: torch.Tensor, h0: torch.Tensor, new_listener: torch.Tensor) -> torch.Tensor:
    """Reset to h0 exactly the slots whose listener changed (bool [B]); others keep their state."""
    return torch.where(new_listener.unsqueeze(-1), h0.unsqueeze(0).expand_as(h), h)
