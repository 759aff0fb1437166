"""cf-regularized: matrix factorisation with biases, minibatch SGD, L2 and early stopping.

rating ≈ lo + (hi - lo) * sigmoid(global + user bias + item bias + <user factors, item factors>),
range 0..5.5 by default so 1 and 5 stars are reachable. With ``implicit`` (default) a user's factors
also get SVD++'s term for the items they rated (cf_implicit). Each epoch shuffles the training
ratings (order from (seed, epoch) alone, so a resumed run repeats the uninterrupted one) and steps
once per minibatch. The default decay=l2 adds ``weight_decay`` times the squared factors and
``bias_weight_decay`` times the squared biases of the batch's users and items to the squared
error: the classic per-rating L2 of Funk-SVD, written into the loss so every optimiser
(hand-written momentum/AdaGrad, torch.optim Adam/SGD) minimises the same objective.
decay=decoupled instead shrinks every factor and bias by step size x decay at every step, before
the update (AdamW, fastai).
``uniform_weight_decay`` adds an L2 on all factors that does not grow with a user's ratings, so
thinly rated users and items are pulled harder toward 0 than per-rating L2 alone pulls them.
The step size follows ``schedule``, a function of the step number alone, so it resumes exactly.
(MovieLens u1.base, validation RMSE on 40% of half the users' ratings, drawn as u1.test is: without
implicit feedback the settings tried stall at 0.932-0.935 (factors 20-80, uniform decay 4-8,
per-rating decay 0.01-0.05, Adam at 0.001-0.006, cosine schedules, batches of 128-512), worse with
more decay or factors, plain SGD (0.949-0.959) or AdaGrad (0.934-0.939); with it, implicit decay
32 and batches of 256: 0.925.)
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

from components.params import help_field
from components.registry import Topic
from components.topics import cf_gd
from components.topics.cf_gd import Split
from components.topics.cf_implicit import ImplicitFeedback
from components.topics.torch_common import open_log, pick_device, restore_state, save_state, write_model_dir

WARM_UP = 0.25  # share of the one-cycle schedule spent rising to the peak rate, as fastai's pct_start


@dataclass(frozen=True)
class Params(cf_gd.FactorParams):
    learning_rate: float = help_field(0.002, "peak step size (the step size throughout with schedule=constant)")
    factors: int = help_field(40, "length of each user's and item's factor vector")
    epochs: int = help_field(30, "most passes over the shuffled training ratings")
    optimizer: Literal["momentum", "adagrad", "adam", "sgd"] = help_field(
        "adam", "momentum/adagrad written by hand, or torch.optim's Adam or SGD (with `momentum`)")
    weight_decay: float = help_field(0.03, "weight decay of the factors (see decay)")
    bias_weight_decay: float = help_field(0.02, "weight decay of the user and item biases (see decay)")
    uniform_weight_decay: float = help_field(
        8.0, "L2 on all factors at every step, this times their squared sum / the training ratings, added to "
             "the loss: unlike decay=l2 it weighs a user or item with few ratings as much as one with many, "
             "so it pulls the thinly rated harder toward 0")
    decay: Literal["l2", "decoupled"] = help_field(
        "l2", "l2: the decay times the squared factors and biases of each batch's users and items, added to "
              "the loss (Funk-SVD); decoupled: every factor and bias shrinks by step size times the decay "
              "at each step (AdamW, fastai)")
    schedule: Literal["constant", "one-cycle", "cosine"] = help_field(
        "constant", "step size per minibatch over `epochs`: constant; one-cycle: cosine warm-up from "
                    "learning_rate/25 over the first quarter, then cosine down to ~0 (fastai's fit_one_cycle); "
                    "cosine: cosine down from learning_rate to 0")
    batch_size: int = help_field(256, "ratings per minibatch")
    patience: int = help_field(3, "stop after this many epochs without a better validation RMSE; 0 = never stop early")
    implicit: bool = help_field(
        True, "add SVD++'s implicit feedback: each user's factors plus 1/sqrt(n) times the sum of a learned "
              "vector per item they rated in training, so who rated what informs thinly rated users")
    implicit_weight_decay: float = help_field(
        32.0, "L2 on the implicit item vectors, as uniform_weight_decay: this times their squared sum / the "
              "training ratings")
    refit: bool = help_field(
        True, "then train afresh on the training and validation ratings together for the chosen number of "
        "epochs, so the kept model has seen every rating it may learn from")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1 or self.patience < 0 or min(
                self.weight_decay, self.bias_weight_decay, self.uniform_weight_decay, self.implicit_weight_decay) < 0:
            raise ValueError("batch_size must be at least 1; patience, weight_decay, bias_weight_decay, "
                             "uniform_weight_decay and implicit_weight_decay at least 0")


def make_optimizer(name: str, tensors: list[Any], params: Params) -> Any:
    import torch

    if name == "adam":
        return torch.optim.Adam(tensors, lr=params.learning_rate)
    if name == "sgd":
        return torch.optim.SGD(tensors, lr=params.learning_rate, momentum=params.momentum)
    return cf_gd.hand_optimizer(name, tensors, params)


def initial_tensors(meta: dict, split: Split, params: Params, seed: int,
                    device: str) -> tuple[dict[str, Any], ImplicitFeedback | None]:
    """The initial tensors for training on ``split`` (with params.implicit, the item table ``implicit``
    too) and the split's implicit feedback."""
    import torch

    tensors = cf_gd.init_tensors(meta, split, params.factors, params.init_std, params.y_range, True, seed, device)
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
    from torch.nn.functional import embedding  # not indexing: see cf_gd.predict

    error = (cf_gd.predict(tensors, users, items, params.y_range, user_terms) - ratings).square().mean()
    if params.uniform_weight_decay:
        every = tensors["user_factors"].square().sum() + tensors["item_factors"].square().sum()
        error = error + params.uniform_weight_decay * every / n_train
    if "implicit" in tensors and params.implicit_weight_decay:
        error = error + params.implicit_weight_decay * tensors["implicit"].square().sum() / n_train
    if params.decay != "l2":
        return error
    factors = (embedding(users, tensors["user_factors"]).square().sum(1)
               + embedding(items, tensors["item_factors"]).square().sum(1)).mean()
    biases = (embedding(users, tensors["user_bias"].unsqueeze(1)).square()
              + embedding(items, tensors["item_bias"].unsqueeze(1)).square()).mean()
    return error + params.weight_decay * factors + params.bias_weight_decay * biases


def step_size(params: Params, step: int, total: int) -> float:
    """The learning rate of minibatch ``step`` of ``total``: a function of the step alone, so a resumed
    run continues the schedule exactly."""
    peak, t = params.learning_rate, step / total
    if params.schedule == "cosine":
        return peak * (1 + math.cos(math.pi * t)) / 2
    if params.schedule == "one-cycle":
        low = peak / 25
        if t < WARM_UP:
            return low + (peak - low) * (1 - math.cos(math.pi * t / WARM_UP)) / 2
        end = low / 1e4
        return end + (peak - end) * (1 + math.cos(math.pi * (t - WARM_UP) / (1 - WARM_UP))) / 2
    return peak


def _set_step_size(optimizer: Any, lr: float) -> None:
    """torch.optim keeps the rate in its param groups, the hand-written optimisers in ``lr``."""
    groups = getattr(optimizer, "param_groups", None)
    if groups is None:
        optimizer.lr = lr
        return
    for group in groups:
        group["lr"] = lr


def _decay(tensors: dict[str, Any], params: Params, lr: float) -> None:
    """decay=decoupled: shrink every factor and bias by lr x its decay (before the step, as AdamW)."""
    import torch

    with torch.no_grad():
        for names, decay in ((("user_factors", "item_factors", "implicit"), params.weight_decay),
                             (("user_bias", "item_bias"), params.bias_weight_decay)):
            for name in set(names) & tensors.keys():
                tensors[name].mul_(1 - lr * decay)


def _epoch(tensors: dict[str, Any], optimizer: Any, train: Split, params: Params, order: np.ndarray,
           epoch: int, feedback: ImplicitFeedback | None) -> None:
    """One pass over the training ratings in ``order``, one step per minibatch."""
    import torch

    batches = math.ceil(len(order) / params.batch_size)
    for batch in range(batches):
        lr = step_size(params, epoch * batches + batch, params.epochs * batches)
        _set_step_size(optimizer, lr)
        rows = order[batch * params.batch_size:(batch + 1) * params.batch_size]
        index = torch.as_tensor(rows, device=train.ratings.device)
        terms = feedback.of_ratings(rows, tensors["implicit"]) if feedback else None
        optimizer.zero_grad()
        _loss(tensors, train.users[index], train.items[index], train.ratings[index], params, len(train),
              terms).backward()
        if params.decay == "decoupled":
            _decay(tensors, params, lr)
        optimizer.step()


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Fit by minibatch steps with early stopping; the model dir gets the best epoch's weights.

    Without a validation split the training RMSE is watched instead.
    The checkpoint also holds the best weights, their epoch and whether training has stopped,
    so a resumed run ends exactly where the uninterrupted one does.
    """
    with cf_gd.cpu_threads(params.threads):
        return _train(dataset_dir, model_dir, params, seed, checkpoint_dir)


def _train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None) -> dict:
    device = pick_device(params.device)
    splits, meta = cf_gd.load_splits(dataset_dir, params.y_range, device)
    train_split = splits["train"]
    tensors, feedback = initial_tensors(meta, train_split, params, seed, device)
    optimizer = make_optimizer(params.optimizer, list(tensors.values()), params)
    log = open_log(checkpoint_dir, cf_gd.run_record(params, meta, seed))
    start, kept = restore_state(checkpoint_dir, log, tensors, optimizer, device)
    best = kept.get("best", {k: t.detach().clone() for k, t in tensors.items()})
    best_epoch, stopped = kept.get("best_epoch", -1), kept.get("stopped", False)
    n_parameters = sum(t.numel() for t in tensors.values())
    print(f"training on {len(train_split)} ratings, validating on {len(splits['val'])}; {n_parameters} parameters; "
          f"optimizer {params.optimizer}; device {device}", flush=True)
    epoch = start
    while epoch < params.epochs and not stopped:
        log.on_epoch_begin(epoch)
        order = np.random.default_rng([seed, epoch]).permutation(len(train_split))
        _epoch(tensors, optimizer, train_split, params, order, epoch, feedback)
        scores = cf_gd.epoch_scores(plain(tensors, feedback), splits, params.y_range)
        log.on_epoch_end(epoch, scores)
        cf_gd.print_epoch(epoch, params.epochs, scores)
        watched = log.history.get("val_rmse", log.history["rmse"])
        if scores.get("val_rmse", scores["rmse"]) <= min(watched):
            best, best_epoch = {k: t.detach().clone() for k, t in tensors.items()}, epoch
        stopped = bool(params.patience) and epoch - best_epoch >= params.patience
        if stopped:
            print(f"stopping early: no better validation RMSE for {params.patience} epochs; "
                  f"keeping epoch {best_epoch + 1}", flush=True)
        epoch += 1
        save_state(checkpoint_dir, epoch, tensors, optimizer, best=best, best_epoch=best_epoch, stopped=stopped)
    if log.first_epoch is None:
        print(f"the checkpoint in {checkpoint_dir} holds the whole run; nothing left to train", flush=True)
    result = cf_gd.summary(log, log.epochs * len(train_split), n_parameters, device, seed)
    best_scores = {k: v[best_epoch] for k, v in log.history.items() if k.startswith("val_")}
    result |= {"best_epoch": best_epoch + 1, **best_scores}
    if params.refit and len(splits["val"]):
        started = time.perf_counter()
        best, result["refit_ratings"] = _refit(meta, splits, params, best_epoch + 1, seed, device)
        result["refit_seconds"] = round(time.perf_counter() - started, 2)
        result["train_seconds"] = round(result["train_seconds"] + result["refit_seconds"], 2)
    else:
        best = plain(best, feedback)
    write_model_dir(model_dir, best, params, log.history, result)
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
    fixed = dataclasses.replace(params, epochs=epochs)
    tensors, feedback = initial_tensors(meta, merged, params, seed, device)
    optimizer = make_optimizer(params.optimizer, list(tensors.values()), fixed)
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(merged))
        _epoch(tensors, optimizer, merged, fixed, order, epoch, feedback)
    return {k: t.detach().clone() for k, t in plain(tensors, feedback).items()}, len(merged)


TOPIC = Topic(
    name="cf-regularized",
    description="matrix factorisation with user/item biases, minibatch SGD, L2, sigmoid range 0..5.5, "
                "mean-rating initialisation and early stopping on validation RMSE",
    framework="pytorch",
    datasets=cf_gd.DATASETS,
    params=Params,
    train=train,
    evaluate=cf_gd.evaluate,
    main_metric="rmse",
    higher_is_better=False,
    # a rank-5 truth: 5 factors, little decay, and a cosine-annealed rate (at a constant one Adam's noise
    # stops it early, 0.313-0.329 val RMSE against 0.304 on the benchmark's 1000 x 1000 at 20%); which
    # cells are observed is random there, so implicit feedback has nothing to learn
    presets={"synthetic-ratings": {"factors": "5", "learning_rate": "0.02", "batch_size": "256",
                                   "weight_decay": "0.01", "bias_weight_decay": "0.01", "uniform_weight_decay": "0",
                                   "implicit": "false", "schedule": "cosine", "epochs": "15", "patience": "5"}},
)
