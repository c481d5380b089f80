"""Sampled softmax with the log-q correction (GRU4Rec 2018; Yi et al. 2019).

Each step scores B in-batch targets plus S negatives drawn by popularity ** exponent. Both
kinds of candidate are over-represented by their sampling chance q, so log q is subtracted from
every logit: in-batch targets appear with about B * popularity / plays, sampled ones with
S * p_sample. A candidate equal to a row's own target elsewhere in the list is masked (it is no
negative), and only rows whose target may be learned count.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: logit given to a candidate that repeats the row's target (masked out of the softmax)
MASKED = -1e9


class SampledSoftmax:
    """Negatives by popularity and the loss over [in-batch targets | sampled negatives]."""

    def __init__(self, popularity: np.ndarray, batch: int, negatives: int, exponent: float) -> None:
        """popularity: plays of every vocabulary track (index - 1); index 0 is never drawn."""
        pop = popularity**exponent
        self.negatives = negatives
        self.sample_p = torch.from_numpy(
            np.concatenate([[0.0], pop / pop.sum()]).astype(np.float32)
        )
        self.in_batch_logq = torch.log(
            torch.from_numpy(np.concatenate([[1.0], popularity])) / popularity.sum() * batch
        )

    def draw(self, generator: torch.Generator) -> torch.Tensor:
        """Vocabulary indices [S] of this step's negatives."""
        return torch.multinomial(
            self.sample_p, self.negatives, replacement=True, generator=generator
        )

    def loss(
        self,
        logits: torch.Tensor,
        target_ids: torch.Tensor,
        sampled: torch.Tensor,
        learn: torch.Tensor,
    ) -> torch.Tensor | None:
        """Mean cross-entropy of the rows in `learn` (bool [B]); None when no row counts.

        logits [B, B + S] score [target_ids | sampled] for every row; row i's target is
        column i."""
        logq = torch.cat(
            [
                self.in_batch_logq[target_ids],
                torch.log(self.sample_p[sampled] * self.negatives + 1e-12),
            ]
        )
        logits = logits - logq
        cand = torch.cat([target_ids, sampled])
        rows = torch.arange(len(target_ids))
        repeats = cand.unsqueeze(0) == target_ids.unsqueeze(1)
        repeats[rows, rows] = False
        logits = logits.masked_fill(repeats, MASKED)
        if not learn.any():
            return None
        return nn.functional.cross_entropy(logits[learn], rows[learn])
