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


def holdout_within_groups(indices: np.ndarray, groups: np.ndarray, fraction: float, seed: int,
                          group_share: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Like `holdout`, but the held-out ``fraction`` of ``indices`` comes only from a random ``group_share``
    of the groups (``groups``: one per entry): many ratings of some users and none of the others, as
    MovieLens' u1.test holds about 40% of the ratings of users 1-462 and none of users 463-943."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    chosen = rng.permutation(names)[:max(1, round(group_share * len(names)))]
    pool = indices[np.isin(groups, chosen)]
    count = round(fraction * len(indices))
    if not 0 < count < len(pool):
        raise DlxError(f"cannot hold out a fraction {fraction} of {len(indices)} examples from {len(chosen)} of "
                       f"{len(names)} groups ({len(pool)} examples); choose a smaller val_fraction")
    held = np.sort(rng.choice(pool, count, replace=False))
    return np.setdiff1d(indices, held), held
