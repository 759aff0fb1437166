"""cf-gd: matrix factorisation by full-batch gradient descent, the optimiser written by hand.

rating ≈ lo + (hi - lo) * sigmoid(global bias + <user factors, item factors>), fitted to the
observed training ratings only (no dense matrix, so missing cells never count as zeros). Every step
uses all training ratings; the update is momentum or AdaGrad written out (torch_common), each
equal to its torch.optim counterpart. The global bias starts at the logit of the training mean,
so the first prediction is already the mean rating.

The factor model itself (tensors, prediction with the unseen-user fallback, scores, evaluation)
lives here and cf-regularized builds on it: that topic adds user/item biases, minibatches, L2
and early stopping to the same model.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components.data import load_ratings
from components.errors import DlxError
from components.files import read_json
from components.params import help_field, to_dict
from components.registry import Topic
from components.topics import ratings_eval
from components.topics.torch_common import (MODEL_FILE, HandAdagrad, HandSGD, open_log, pick_device, restore_state,
                                            save_state, train_seconds, write_model_dir)

DATASETS = ("synthetic-ratings", "movielens-100k", "movielens-latest-small", "ratings-file:PATH")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FactorParams:
    """The parameters both CF topics have, with their range checks; each topic sets its own defaults."""

    learning_rate: float = help_field(0.05, "step size")
    momentum: float = help_field(0.9, "momentum coefficient of the momentum (and sgd) updates")
    factors: int = help_field(3, "length of each user's and item's factor vector")
    init_std: float = help_field(0.01, "standard deviation of the random initial factors")
    epochs: int = help_field(12, "epochs; each is steps_per_epoch full-batch steps, then validation and a checkpoint")
    y_range: tuple[float, ...] = help_field(
        (0.0, 5.5), "lo,hi of the sigmoid output: a little wider than the ratings so the extremes are reachable")
    device: Literal["auto", "cpu", "cuda"] = help_field("auto", "where to train: auto picks CUDA when present")
    threads: int = help_field(
        1, "CPU threads for torch's operations while training, 0 = torch's default (one per core): these "
           "steps are too small to gain from splitting, and on a busy 2-core machine two threads made "
           "them 20x slower")

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.factors < 1 or self.threads < 0:
            raise ValueError("epochs and factors must be at least 1, threads at least 0")
        if self.learning_rate <= 0 or self.init_std < 0:
            raise ValueError("learning_rate must be positive and init_std at least 0")
        if not 0 <= self.momentum < 1:
            raise ValueError("momentum must be in [0, 1)")
        if len(self.y_range) != 2 or not self.y_range[0] < self.y_range[1]:
            raise ValueError("y_range must be two numbers lo,hi with lo < hi, e.g. 0,5.5")


@dataclass(frozen=True)
class Params(FactorParams):
    optimizer: Literal["momentum", "adagrad"] = help_field(
        "adagrad", "hand-written update: gradient descent with momentum, or AdaGrad")
    steps_per_epoch: int = help_field(10, "full-batch gradient steps per epoch")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps_per_epoch < 1:
            raise ValueError("steps_per_epoch must be at least 1")


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


def print_epoch(epoch: int, epochs: int, scores: dict[str, float]) -> None:
    shown = f"val rmse {scores['val_rmse']:.4f}  val mae {scores['val_mae']:.4f}" if "val_rmse" in scores else ""
    print(f"epoch {epoch + 1}/{epochs}: train rmse {scores['rmse']:.4f}  {shown}".rstrip(), flush=True)


def hand_optimizer(name: str, tensors: list[Any], params: Any) -> Any:
    if name == "adagrad":
        return HandAdagrad(tensors, params.learning_rate)
    return HandSGD(tensors, params.learning_rate, params.momentum)


def run_record(params: Any, meta: dict, seed: int) -> dict:
    """What identifies a run for the epoch log: a checkpoint of another run is never resumed."""
    return {"params": to_dict(params), "seed": seed, **{key: meta[key] for key in ("dataset", "inputs", "splits")}}


def summary(log: Any, samples: int, n_parameters: int, device: str, seed: int) -> dict:
    """train.json: ``samples`` is the number of ratings the steps went through, earlier attempts included."""
    seconds = train_seconds(log)
    return {"train_seconds": round(seconds, 2), "samples_per_second": round(samples / seconds, 1),
            "parameters": n_parameters, "device": device, "seed": seed, "epochs_run": log.epochs}


@contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``count`` (0: left alone) for the block, then restored."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Fit the factors by full-batch steps; write model.pt, params.json, history.json and train.json.

    With ``checkpoint_dir`` the factors, optimizer state and epoch log are saved there after
    every epoch; a rerun of the same run continues after the last saved epoch.
    """
    with cpu_threads(params.threads):
        return _train(dataset_dir, model_dir, params, seed, checkpoint_dir)


def _train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None) -> dict:
    device = pick_device(params.device)
    splits, meta = load_splits(dataset_dir, params.y_range, device)
    tensors = init_tensors(meta, splits["train"], params.factors, params.init_std, params.y_range, False, seed, device)
    optimizer = hand_optimizer(params.optimizer, list(tensors.values()), params)
    log = open_log(checkpoint_dir, run_record(params, meta, seed))
    start, _ = restore_state(checkpoint_dir, log, tensors, optimizer, device)
    n_parameters = sum(t.numel() for t in tensors.values())
    print(f"training on {len(splits['train'])} ratings, validating on {len(splits['val'])}; {n_parameters} parameters; "
          f"optimizer {params.optimizer}; device {device}", flush=True)
    for epoch in range(start, params.epochs):
        log.on_epoch_begin(epoch)
        _epoch(tensors, optimizer, splits["train"], params)
        scores = epoch_scores(tensors, splits, params.y_range)
        log.on_epoch_end(epoch, scores)
        print_epoch(epoch, params.epochs, scores)
        save_state(checkpoint_dir, epoch + 1, tensors, optimizer)
    if log.first_epoch is None:
        print(f"the checkpoint in {checkpoint_dir} holds all {params.epochs} epochs; nothing left to train", flush=True)
    result = summary(log, log.epochs * params.steps_per_epoch * len(splits["train"]), n_parameters, device, seed)
    write_model_dir(model_dir, tensors, params, log.history, result)
    return result


def _epoch(tensors: dict[str, Any], optimizer: Any, train: Split, params: Params) -> None:
    """``steps_per_epoch`` full-batch steps: every step's loss is the mean over all training ratings."""
    for _ in range(params.steps_per_epoch):
        optimizer.zero_grad()
        squared_error(tensors, train, params.y_range).backward()
        optimizer.step()


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared ratings evaluation (ratings_eval) of the saved model."""
    import torch

    tensors = torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    y_range = tuple(read_json(model_dir / "params.json")["y_range"])

    def predict_numpy(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ratings = predict(tensors, torch.tensor(users, dtype=torch.int64),
                              torch.tensor(items, dtype=torch.int64), y_range)
        return ratings.double().numpy()

    item_bias = tensors.get("item_bias")
    learned = ratings_eval.Learned(predict=predict_numpy, user_factors=tensors["user_factors"].numpy(),
                                   item_factors=tensors["item_factors"].numpy(),
                                   item_bias=None if item_bias is None else item_bias.numpy())
    seed = read_json(model_dir / "train.json")["seed"]
    return ratings_eval.evaluate_ratings(dataset_dir, model_dir, out_dir, learned, seed)


TOPIC = Topic(
    name="cf-gd",
    description="matrix factorisation by full-batch gradient descent, momentum and AdaGrad written by hand",
    framework="pytorch",
    datasets=DATASETS,
    params=Params,
    train=train,
    evaluate=evaluate,
    main_metric="rmse",
    higher_is_better=False,
    # nothing here regularises, so the MovieLens defaults are few factors and few steps (more overfit:
    # 20 factors for 600 steps reached 1.43 test RMSE on u1). The synthetic truth is rank 5 plus biases,
    # which this bias-free model carries in 2 more factors, and its denser data bears more steps.
    presets={"synthetic-ratings": {"factors": "7", "init_std": "0.1", "learning_rate": "0.1", "epochs": "40"}},
)
