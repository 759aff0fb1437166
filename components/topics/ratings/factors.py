"""The factor model both CF topics fit: its parameters, tensors, prediction, scores and evaluation.

rating ≈ lo + (hi - lo) * sigmoid(global bias [+ user bias + item bias] + <user factors, item factors>),
fitted to the observed training ratings only (no dense matrix, so missing cells never count as
zeros). cf-gd fits it full-batch without biases; cf-regularized adds biases, minibatches, L2 and
early stopping. The global bias starts at the logit of the training mean, so the first prediction
is already the mean rating.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components.data import load_ratings
from components.errors import DlxError
from components.files import read_json
from components.params import help_field
from components.topics.optimizers import HandAdagrad, HandSGD
from components.topics.ratings import evaluation
from components.topics.torch_loop import MODEL_FILE, TorchParams

DATASETS = ("synthetic-ratings", "movielens-100k", "movielens-latest-small", "ratings-file:PATH")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FactorParams(TorchParams):
    """The parameters both CF topics have, with their range checks; each topic sets its own defaults."""

    learning_rate: float = help_field(0.05, "step size", above=0)
    momentum: float = help_field(0.9, "momentum coefficient of the momentum (and sgd) updates", at_least=0, below=1)
    factors: int = help_field(3, "length of each user's and item's factor vector", at_least=1)
    init_std: float = help_field(0.01, "standard deviation of the random initial factors", above=0)
    epochs: int = help_field(12, "epochs, each followed by validation and a checkpoint", at_least=1)
    y_range: tuple[float, ...] = help_field((0.0, 5.5), "lo,hi of the sigmoid output, a little wider than the ratings",
                                            at_least=-1e7, at_most=1e7)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = help_field(
        "fp32", "autocast: these element-wise models gain little from it; auto is bf16 on CUDA")
    threads: int = help_field(1, "CPU threads for torch while training (0: one per core); small steps run best on one",
                              at_least=0)

    def __post_init__(self) -> None:
        if len(self.y_range) != 2 or not self.y_range[0] < self.y_range[1]:
            raise ValueError("y_range must be two numbers lo,hi with lo < hi, e.g. 0,5.5")


@dataclass(frozen=True)
class Split:
    """One split's ratings as tensors on the training device."""

    users: Any
    items: Any
    ratings: Any

    def __len__(self) -> int:
        return len(self.ratings)


def load_splits(dataset_dir: Path, y_range: tuple[float, ...], device: str) -> tuple[dict[str, Split], dict]:
    """The train/val/test splits as tensors, after checking the sigmoid range covers the data's ratings."""
    import torch

    tables, meta = load_ratings(dataset_dir)
    lo, hi = meta["schema"]["rating_range"]
    if not y_range[0] <= lo < hi <= y_range[1]:
        raise DlxError(f"y_range {y_range[0]:g},{y_range[1]:g} does not cover the data's ratings {lo:g}..{hi:g}; "
                       f"set --param y_range={lo - 0.5 * (hi - lo) / 8:g},{hi + 0.5 * (hi - lo) / 8:g} or similar")
    splits = {name: Split(*(torch.tensor(tables[name][column].to_numpy(dtype), device=device)
                            for column, dtype in (("user", np.int64), ("item", np.int64), ("rating", np.float32))))
              for name in SPLITS}
    if not len(splits["train"]):
        raise DlxError(f"{dataset_dir}: the training split holds no ratings")
    return splits, meta


def init_tensors(meta: dict, train: Split, factors: int, init_std: float, y_range: tuple[float, ...],
                 biases: bool, seed: int, device: str) -> dict[str, Any]:
    """Small random factors and a global bias at logit((mean - lo) / (hi - lo)).

    With factors near 0 and biases 0 the sigmoid's argument is the global bias alone, so the
    mean prediction starts at the training mean rating instead of the middle of the range.
    """
    import torch

    lo, hi = y_range
    share = (float(train.ratings.double().mean()) - lo) / (hi - lo)
    generator = torch.Generator().manual_seed(seed)
    schema = meta["schema"]
    tensors = {
        "user_factors": init_std * torch.randn(schema["n_users"], factors, generator=generator),
        "item_factors": init_std * torch.randn(schema["n_items"], factors, generator=generator),
        "global_bias": torch.tensor(math.log(share / (1 - share))),
    }
    if biases:
        tensors |= {"user_bias": torch.zeros(schema["n_users"]), "item_bias": torch.zeros(schema["n_items"])}
    return {name: t.to(device).requires_grad_() for name, t in tensors.items()}


def predict(tensors: dict[str, Any], users: Any, items: Any, y_range: tuple[float, ...],
            user_terms: Any = None) -> Any:
    """Ratings for (user, item) index pairs; index -1 (unseen in training) contributes no factors and no bias.
    ``user_terms``: one row per pair added to the user's factors (cf-regularized's implicit feedback).

    So an unseen user gets global bias + item bias, an unseen item global bias + user bias, and both
    unseen the global bias alone: the bias/mean fallback, never an index error.

    Rows are gathered with ``embedding`` rather than indexing: its CPU backward adds the gradients
    of repeated indices in a fixed order, where indexing's multithreaded scatter does not, and
    that order is what lets a resumed run repeat the uninterrupted one bit for bit.
    """
    import torch
    from torch.nn.functional import embedding

    known_users, known_items = (users >= 0).unsqueeze(1), (items >= 0).unsqueeze(1)
    users, items = users.clamp(min=0), items.clamp(min=0)
    user_f = embedding(users, tensors["user_factors"])
    user_f = (user_f if user_terms is None else user_f + user_terms) * known_users
    item_f = embedding(items, tensors["item_factors"]) * known_items
    logit = (user_f * item_f).sum(1) + tensors["global_bias"]
    if "user_bias" in tensors:
        logit = logit + (embedding(users, tensors["user_bias"].unsqueeze(1)) * known_users
                         + embedding(items, tensors["item_bias"].unsqueeze(1)) * known_items)[:, 0]
    lo, hi = y_range
    return lo + (hi - lo) * torch.sigmoid(logit)


def squared_error(tensors: dict[str, Any], split: Split, y_range: tuple[float, ...]) -> Any:
    return ((predict(tensors, split.users, split.items, y_range) - split.ratings) ** 2).mean()


def split_scores(tensors: dict[str, Any], split: Split, y_range: tuple[float, ...]) -> dict[str, float]:
    """RMSE and MAE of one split, without building a graph."""
    import torch

    with torch.no_grad():
        error = predict(tensors, split.users, split.items, y_range) - split.ratings
        return {"rmse": float(error.square().mean().sqrt()), "mae": float(error.abs().mean())}


def epoch_scores(tensors: dict[str, Any], splits: dict[str, Split], y_range: tuple[float, ...]) -> dict[str, float]:
    """The per-epoch history entry: train RMSE, validation RMSE and MAE (validation may be empty)."""
    scores = {"rmse": split_scores(tensors, splits["train"], y_range)["rmse"]}
    if len(splits["val"]):
        scores |= {f"val_{k}": v for k, v in split_scores(tensors, splits["val"], y_range).items()}
    return scores


def hand_optimizer(name: str, tensors: list[Any], params: Any) -> Any:
    if name == "adagrad":
        return HandAdagrad(tensors, params.learning_rate)
    return HandSGD(tensors, params.learning_rate, params.momentum)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared ratings evaluation (components.topics.ratings.evaluation) of the saved model."""
    import torch

    tensors = torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    y_range = tuple(read_json(model_dir / "params.json")["y_range"])

    def predict_numpy(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ratings = predict(tensors, torch.tensor(users, dtype=torch.int64),
                              torch.tensor(items, dtype=torch.int64), y_range)
        return ratings.double().numpy()

    item_bias = tensors.get("item_bias")
    learned = evaluation.Learned(predict=predict_numpy, user_factors=tensors["user_factors"].numpy(),
                                   item_factors=tensors["item_factors"].numpy(),
                                   item_bias=None if item_bias is None else item_bias.numpy())
    seed = read_json(model_dir / "train.json")["seed"]
    return evaluation.evaluate_ratings(dataset_dir, model_dir, out_dir, learned, seed)
