"""SVD++'s implicit feedback for cf-regularized: a user is also the set of items they chose to rate.

user vector = p_u + |N(u)|^-1/2 * sum of y_j over N(u), the items u rated in training (Koren 2008).
Which films someone rated says something their stars do not, and it is most of what a thinly rated
user offers (the README's ratings benchmark measures the gain).

A training step needs the term only for its batch's users, so it sums just their items' rows
(embedding_bag, a fraction of a full sparse product); a score over a whole split takes every user
at once. The model directory stores p_u plus the term as user_factors, so prediction, evaluation
and the embedding pictures work on the saved model unchanged.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class ImplicitFeedback:
    """The items each user rated in one training split, weighted 1/sqrt(count)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, device: str) -> None:
        import torch

        order = np.lexsort((items, users))
        counts = np.bincount(users, minlength=n_users)
        self.rating_users = users
        self.starts = np.concatenate([[0], np.cumsum(counts)])
        weights = (1 / np.sqrt(np.maximum(counts, 1)))[users[order]].astype(np.float32)
        self.items = torch.as_tensor(items[order], device=device)
        self.weights = torch.as_tensor(weights, device=device)
        self.matrix = torch.sparse_coo_tensor(np.stack([users[order], items[order]]), weights, (n_users, n_items),
                                              device=device, check_invariants=False).coalesce()
        self.device = device

    def of_ratings(self, ratings: np.ndarray, table: Any) -> Any:
        """The term for the user of each training rating in ``ratings`` (indices into the split)."""
        import torch
        from torch.nn.functional import embedding_bag

        unique, inverse = np.unique(self.rating_users[ratings], return_inverse=True)
        starts, lengths = self.starts[unique], self.starts[unique + 1] - self.starts[unique]
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = torch.as_tensor(np.repeat(starts - offsets, lengths) + np.arange(lengths.sum()), device=self.device)
        sums = embedding_bag(self.items[rows], table, torch.as_tensor(offsets, device=self.device), mode="sum",
                             per_sample_weights=self.weights[rows])
        return sums[torch.as_tensor(inverse, device=self.device)]

    def folded(self, tensors: dict[str, Any]) -> dict[str, Any]:
        """``tensors`` with every user's term added into user_factors and the item table ``implicit`` dropped:
        the plain factor model that predicts exactly as this one does on every known user."""
        import torch

        kept = {name: tensor for name, tensor in tensors.items() if name != "implicit"}
        with torch.no_grad():
            kept["user_factors"] = tensors["user_factors"] + torch.sparse.mm(self.matrix, tensors["implicit"])
        return kept
