"""The model directory's optional sequential-rules table (transitions.npz) for the served blend.

rules[a, b] says how strongly track b followed track a closely in training sessions (session-rec's
SR; built by training/rules.py). Rows and columns are track-table rows (tracks.npz order). The
file holds a CSR matrix as indptr, indices, data and shape; serving reads it with scipy alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

#: file name of the rules table inside a model directory (optional file)
TRANSITIONS_FILE = "transitions.npz"


def save_transitions(model_dir: Path | str, rules: sp.csr_matrix) -> Path:
    """Write the rules table into a model directory as transitions.npz."""
    rules = sp.csr_matrix(rules, dtype=np.float32)
    path = Path(model_dir) / TRANSITIONS_FILE
    np.savez_compressed(
        path,
        indptr=rules.indptr.astype(np.int64),
        indices=rules.indices.astype(np.int32),
        data=rules.data.astype(np.float32),
        shape=np.asarray(rules.shape, dtype=np.int64),
    )
    return path


def load_transitions(model_dir: Path | str, n_tracks: int | None = None) -> sp.csr_matrix | None:
    """The rules table of a model directory (CSR, sorted indices), None when it has none.

    n_tracks, when given, is checked against the table's shape (it must match tracks.npz).
    """
    path = Path(model_dir) / TRANSITIONS_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as f:
        indptr, indices, data = f["indptr"], f["indices"], f["data"]
        shape = tuple(int(x) for x in f["shape"]) if "shape" in f else (indptr.size - 1,) * 2
    if n_tracks is not None and shape != (n_tracks, n_tracks):
        raise ValueError(
            f"{path} holds rules for {shape[0]} tracks but the track table has {n_tracks}: "
            "rebuild it with the model (radio-engine train)"
        )
    rules = sp.csr_matrix((data, indices, indptr), shape=shape)
    rules.sort_indices()
    return rules
