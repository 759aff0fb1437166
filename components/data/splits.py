"""Seeded hold-out splits shared by every loader, so each data set splits the same way."""
from __future__ import annotations

import numpy as np

from components.errors import DlxError


def holdout(indices: np.ndarray, fraction: float, seed: int,
            stratify_by: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (kept, held-out) partition of ``indices``, each in ascending order.

    ``stratify_by``: a label per entry of ``indices`` whose proportions both parts keep.
    """
    from sklearn.model_selection import train_test_split

    try:
        kept, held = train_test_split(indices, test_size=fraction, random_state=seed, stratify=stratify_by)
    except ValueError as e:
        raise DlxError(f"cannot hold out a fraction {fraction} of {len(indices)} examples ({e}); "
                       "choose a val_fraction that leaves enough examples on both sides") from None
    return np.sort(kept), np.sort(held)
