"""cf-regularized: matrix factorisation with biases, minibatch SGD, L2 and early stopping.

The factor model (components.topics.ratings.factors) with user and item biases, range 0..5.5 by
default so 1 and 5 stars are reachable. With ``implicit`` (default) a user's factors also get
SVD++'s term for the items they rated (``implicit``). Each epoch shuffles the training ratings
(order from (seed, epoch) alone, so a resumed run repeats the uninterrupted one) and steps once
per minibatch. decay=l2 adds ``weight_decay`` times the squared factors and ``bias_weight_decay``
times the squared biases of the batch's users and items to the squared error: the classic
per-rating L2 of Funk-SVD, written into the loss so every optimiser (hand-written
momentum/AdaGrad, torch.optim Adam/SGD) minimises the same objective. decay=decoupled instead
shrinks every factor and bias by step size x decay at every step, before the update (AdamW,
fastai). ``uniform_weight_decay`` adds an L2 on all factors that does not grow with a user's
ratings, so thinly rated users and items are pulled harder toward 0 than per-rating L2 alone
pulls them. The step size follows ``schedule``, a function of the progress through training alone,
so it resumes exactly.

Validation RMSE/MAE is computed every epoch; training stops after ``patience`` epochs without
improvement and keeps the best epoch's weights, or with ``refit`` (default) trains afresh on the
training and validation ratings for that many epochs: early stopping picks the length of training,
and the kept model then learns from every rating it may see.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components import progress
from components.epoch_log import run_identity
from components.params import help_field
from components.registry import Topic
from components.topics.ratings import factors
from components.topics.ratings.cf_regularized.implicit import ImplicitFeedback
from components.topics.ratings.factors import Split
from components.topics.torch_loop import Batch, TrainLoop, cpu_threads, pick_device, train_val_words, write_model_dir

WARM_UP = 0.25  # share of the one-cycle schedule spent rising to the peak rate, as fastai's pct_start


@dataclass(frozen=True)
class Params(factors.FactorParams):
    learning_rate: float = help_field(0.01, "peak step size (the step size throughout with schedule=constant)",
                                      above=0)
    factors: int = help_field(40, "length of each user's and item's factor vector", at_least=1)
    epochs: int = help_field(30, "most passes over the shuffled training ratings", at_least=1)
    optimizer: Literal["momentum", "adagrad", "adam", "sgd"] = help_field(
        "adam", "momentum/adagrad written by hand, or torch.optim's Adam or SGD (with `momentum`)")
    weight_decay: float = help_field(0.05, "weight decay of the factors (see decay)", at_least=0)
    bias_weight_decay: float = help_field(0.02, "weight decay of the user and item biases (see decay)", at_least=0)
    uniform_weight_decay: float = help_field(8.0, "L2 on all factors per training rating, whatever a user's count",
                                             at_least=0)
    decay: Literal["l2", "decoupled"] = help_field(
        "l2", "l2: per-rating L2 in the loss (Funk-SVD); decoupled: shrink every step (AdamW)")
    schedule: Literal["constant", "one-cycle", "cosine"] = help_field(
        "constant", "step size over the run: constant, one-cycle (fastai) or cosine down to 0")
    batch_size: int = help_field(4096, "ratings per minibatch", at_least=1)
    threads: int = help_field(0, "CPU threads for torch while training (0: one per core)", at_least=0)
    patience: int = help_field(3, "stop after this many epochs without a better validation RMSE (0: never)", at_least=0)
    implicit: bool = help_field(True, "SVD++'s implicit feedback: a user's factors also learn from which items they rated")
    implicit_weight_decay: float = help_field(64.0, "L2 on the implicit item vectors, as uniform_weight_decay",
                                              at_least=0)
    refit: bool = help_field(True, "then retrain on training + validation ratings for the chosen number of epochs")


def make_optimizer(name: str, tensors: list[Any], params: Params) -> Any:
    import torch

    if name == "adam":
        return torch.optim.Adam(tensors, lr=params.learning_rate)
    if name == "sgd":
        return torch.optim.SGD(tensors, lr=params.learning_rate, momentum=params.momentum)
    return factors.hand_optimizer(name, tensors, params)


def initial_tensors(meta: dict, split: Split, params: Params, seed: int,
                    device: str) -> tuple[dict[str, Any], ImplicitFeedback | None]:
    """The initial tensors for training on ``split`` (with params.implicit, the item table ``implicit``
    too) and the split's implicit feedback."""
    import torch

    tensors = factors.init_tensors(meta, split, params.factors, params.init_std, params.y_range, True, seed, device)
    if not params.implicit:
        return tensors, None
    n_users, n_items = meta["schema"]["n_users"], meta["schema"]["n_items"]
    table = params.init_std * torch.randn(n_items, params.factors, generator=torch.Generator().manual_seed(seed + 1))
    tensors["implicit"] = table.to(device).requires_grad_()
    return tensors, ImplicitFeedback(split.users.cpu().numpy(), split.items.cpu().numpy(), n_users, n_items, device)


def plain(tensors: dict[str, Any], feedback: ImplicitFeedback | None) -> dict[str, Any]:
    """The tensors as a plain factor model (the implicit term folded into user_factors)."""
    return feedback.folded(tensors) if feedback else tensors


def _loss(tensors: dict[str, Any], users: Any, items: Any, ratings: Any, params: Params, n_train: int,
          user_terms: Any = None) -> Any:
    """Mean squared error of the batch (``user_terms``: the batch's implicit feedback), plus
    uniform_weight_decay times all factors' squared sum and implicit_weight_decay times the implicit
    table's, each per training rating; with decay=l2 plus each decay times the mean squared size of
    the batch's users' and items' factors and biases."""
    from torch.nn.functional import embedding  # not indexing: see factors.predict

    error = (factors.predict(tensors, users, items, params.y_range, user_terms) - ratings).square().mean()
    if params.uniform_weight_decay:
        every = tensors["user_factors"].square().sum() + tensors["item_factors"].square().sum()
        error = error + params.uniform_weight_decay * every / n_train
    if "implicit" in tensors and params.implicit_weight_decay:
        error = error + params.implicit_weight_decay * tensors["implicit"].square().sum() / n_train
    if params.decay != "l2":
        return error
    sizes = (embedding(users, tensors["user_factors"]).square().sum(1)
             + embedding(items, tensors["item_factors"]).square().sum(1)).mean()
    biases = (embedding(users, tensors["user_bias"].unsqueeze(1)).square()
              + embedding(items, tensors["item_bias"].unsqueeze(1)).square()).mean()
    return error + params.weight_decay * sizes + params.bias_weight_decay * biases


def step_size(params: Params, progress: float) -> float:
    """The learning rate at ``progress`` (0..1, the share of the planned steps taken): a function of the
    step alone, so a resumed run continues the schedule exactly."""
    peak, t = params.learning_rate, progress
    if params.schedule == "cosine":
        return peak * (1 + math.cos(math.pi * t)) / 2
    if params.schedule == "one-cycle":
        low = peak / 25
        if t < WARM_UP:
            return low + (peak - low) * (1 - math.cos(math.pi * t / WARM_UP)) / 2
        end = low / 1e4
        return end + (peak - end) * (1 + math.cos(math.pi * (t - WARM_UP) / (1 - WARM_UP))) / 2
    return peak


def _decay(tensors: dict[str, Any], params: Params, lr: float) -> None:
    """decay=decoupled: shrink every factor and bias by lr x its decay (before the step, as AdamW)."""
    import torch

    with torch.no_grad():
        for names, decay in ((("user_factors", "item_factors", "implicit"), params.weight_decay),
                             (("user_bias", "item_bias"), params.bias_weight_decay)):
            for name in set(names) & tensors.keys():
                tensors[name].mul_(1 - lr * decay)


def _loop(tensors: dict[str, Any], split: Split, params: Params, seed: int, device: str,
          checkpoint_dir: Path | None, run: dict, feedback: ImplicitFeedback | None, tag: str = "") -> tuple:
    """The training loop over ``split``'s ratings, reshuffled each epoch, and its fit's arguments."""
    import torch

    steps = math.ceil(len(split) / params.batch_size)
    loop = TrainLoop(tensors, make_optimizer(params.optimizer, list(tensors.values()), params), epochs=params.epochs,
                     device=device, checkpoint_dir=checkpoint_dir, run=run, precision=params.precision,
                     steps_per_epoch=steps, unit="ratings", tag=tag,
                     divergence_hint="lower learning_rate, or raise weight_decay")

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(len(split))
        for batch in range(steps):
            rows = order[batch * params.batch_size:(batch + 1) * params.batch_size]
            yield Batch((rows, torch.as_tensor(rows, device=device)), len(rows), len(rows))

    def loss(rows: np.ndarray, index: Any) -> Any:
        terms = feedback.of_ratings(rows, tensors["implicit"]) if feedback else None
        return _loss(tensors, split.users[index], split.items[index], split.ratings[index], params, len(split), terms)

    decay = (lambda rate: _decay(tensors, params, rate)) if params.decay == "decoupled" else None
    return loop, dict(batches=batches, loss=loss, learning_rate=lambda progress: step_size(params, progress),
                      before_step=decay)


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Fit by minibatch steps with early stopping; the model dir gets the best epoch's weights.

    Without a validation split the training RMSE is watched instead.
    The checkpoint also holds the best weights, their epoch and whether training has stopped,
    so a resumed run ends exactly where the uninterrupted one does.
    """
    with cpu_threads(params.threads):
        device = pick_device(params.device)
        splits, meta = factors.load_splits(dataset_dir, params.y_range, device)
        train_split = splits["train"]
        tensors, feedback = initial_tensors(meta, train_split, params, seed, device)
        loop, fit = _loop(tensors, train_split, params, seed, device, checkpoint_dir, run_identity(params, seed, meta),
                          feedback)
        loop.extra.setdefault("best", {k: t.detach().clone() for k, t in tensors.items()})
        loop.extra.setdefault("best_epoch", -1)
        print(f"training on {len(train_split)} ratings, validating on {len(splits['val'])}; "
              f"{sum(t.numel() for t in tensors.values())} parameters; optimizer {params.optimizer}; device {device}",
              flush=True)

        def end_epoch(epoch: int, figures: dict[str, float]) -> str | None:
            watched = loop.log.history.get("val_rmse", loop.log.history["rmse"])
            if figures.get("val_rmse", figures["rmse"]) <= min(watched):
                loop.extra["best"] = {k: t.detach().clone() for k, t in tensors.items()}
                loop.extra["best_epoch"] = epoch
            best = loop.extra["best_epoch"]
            if params.patience and epoch - best >= params.patience:
                return f"no better validation RMSE for {params.patience} epochs; keeping epoch {best + 1}"
            return None

        loop.fit(scores=lambda loss: factors.epoch_scores(plain(tensors, feedback), splits, params.y_range),
                 end_epoch=end_epoch, describe=train_val_words, **fit)
        best_epoch = loop.extra["best_epoch"]
        result = loop.summary(seed=seed, best_epoch=best_epoch + 1,
                              **{k: v[best_epoch] for k, v in loop.log.history.items() if k.startswith("val_")})
        if params.refit and len(splits["val"]):
            started = time.perf_counter()
            best, result["refit_ratings"] = _refit(meta, splits, params, best_epoch + 1, seed, device)
            result["refit_seconds"] = round(time.perf_counter() - started, 2)
            result["train_seconds"] = round(result["train_seconds"] + result["refit_seconds"], 2)
        else:
            best = plain(loop.extra["best"], feedback)
        write_model_dir(model_dir, best, params, loop.log.history, result)
        return result


def _refit(meta: dict, splits: dict[str, Split], params: Params, epochs: int, seed: int,
           device: str) -> tuple[dict[str, Any], int]:
    """Train afresh on train + val (rows whose user and item training knows) for ``epochs``.

    Not checkpointed: it is deterministic, so a resumed run that reaches it repeats it exactly."""
    import torch

    train, val = splits["train"], splits["val"]
    known = (val.users >= 0) & (val.items >= 0)
    merged = Split(*(torch.cat([getattr(train, f), getattr(val, f)[known]]) for f in ("users", "items", "ratings")))
    print(f"refitting on {len(merged)} training and validation ratings for {epochs} epochs", flush=True)
    progress.note(f"refitting on {len(merged)} training and validation ratings for {epochs} epochs")
    fixed = dataclasses.replace(params, epochs=epochs)
    tensors, feedback = initial_tensors(meta, merged, fixed, seed, device)
    loop, fit = _loop(tensors, merged, fixed, seed, device, None, {}, feedback, tag="refit ")
    loop.fit(**fit)
    return {k: t.detach().clone() for k, t in plain(tensors, feedback).items()}, len(merged)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared ratings evaluation of the saved factor model (the implicit term folded in)."""
    return factors.evaluate(dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="cf-regularized", description="factorisation with biases, L2, early stop, SVD++",
    framework="pytorch", datasets=factors.DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="rmse", higher_is_better=False,
    # a rank-5 truth: 5 factors, little decay and a cosine-annealed rate; which cells are observed is
    # random there, so implicit feedback has nothing to learn
    presets={"synthetic-ratings": {"factors": "5", "learning_rate": "0.02", "batch_size": "256",
                                   "weight_decay": "0.01", "bias_weight_decay": "0.01", "uniform_weight_decay": "0",
                                   "implicit": "false", "schedule": "cosine", "epochs": "15", "patience": "5",
                                   "threads": "1"}},
)
