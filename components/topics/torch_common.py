"""What the PyTorch topics share: device choice, hand-written optimisers, per-epoch checkpoints, the model dir.

The hand-written optimisers keep torch.optim's step/zero_grad/state_dict interface, so a training
loop takes either kind and a test can compare them step for step. A topic's model is a dict of
plain tensors (name -> tensor with ``requires_grad``); the checkpoint holds those tensors, the
optimizer state and whatever extra the topic needs to continue exactly (e.g. the best epoch so
far), so a resumed run repeats the uninterrupted one bit for bit.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from components.epoch_log import EpochLog
from components.errors import DlxError
from components.files import atomic_dir, write_json
from components.params import to_dict

STATE_FILE = "state.pt"
MODEL_FILE = "model.pt"


def pick_device(requested: str) -> str:
    """``auto`` picks CUDA when torch sees it; asking for CUDA without it is a user error, not a crash."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise DlxError(f"device=cuda was asked for but CUDA is not available to torch {torch.__version__}; "
                       "use device=auto or device=cpu")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


class HandSGD:
    """SGD written out, with torch.optim's step/zero_grad/state_dict interface so the loop takes either.

    momentum 0: ``p -= lr * grad``. Otherwise ``v = mu * v + grad; p -= lr * v``, which is
    torch.optim.SGD with dampening 0 and no Nesterov (its first buffer is the gradient itself,
    and mu * 0 + grad is exactly that).
    """

    def __init__(self, params: list[Any], lr: float, momentum: float = 0.0) -> None:
        import torch

        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = [torch.zeros_like(p) for p in params] if momentum else []

    def step(self) -> None:
        import torch

        with torch.no_grad():
            if not self.momentum:
                for p in self.params:
                    p -= self.lr * p.grad
                return
            for p, v in zip(self.params, self.velocity):
                v.mul_(self.momentum).add_(p.grad)
                p -= self.lr * v

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"velocity": self.velocity}

    def load_state_dict(self, state: dict) -> None:
        for v, saved in zip(self.velocity, state["velocity"], strict=True):
            v.copy_(saved)


class HandAdagrad:
    """AdaGrad written out: ``s += grad²; p -= lr * grad / (sqrt(s) + eps)``.

    That is torch.optim.Adagrad with its defaults of no learning-rate decay, no weight decay and
    an initial accumulator of 0: each parameter's step shrinks with the gradients it has seen, so
    rarely rated items keep larger steps than popular ones.
    """

    def __init__(self, params: list[Any], lr: float, eps: float = 1e-10) -> None:
        import torch

        self.params, self.lr, self.eps = params, lr, eps
        self.sums = [torch.zeros_like(p) for p in params]

    def step(self) -> None:
        import torch

        with torch.no_grad():
            for p, s in zip(self.params, self.sums):
                s.addcmul_(p.grad, p.grad)
                p -= self.lr * p.grad / (s.sqrt() + self.eps)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"sums": self.sums}

    def load_state_dict(self, state: dict) -> None:
        for s, saved in zip(self.sums, state["sums"], strict=True):
            s.copy_(saved)


def open_log(checkpoint_dir: Path | None, run: dict) -> EpochLog:
    """The run's epoch log, kept in ``checkpoint_dir`` when there is one (created if missing)."""
    if checkpoint_dir is None:
        return EpochLog(None, run)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return EpochLog(checkpoint_dir / "epochs.json", run)


def save_state(checkpoint_dir: Path | None, epochs_done: int, tensors: dict[str, Any], optimizer: Any,
               **extra: Any) -> None:
    """Written to a temp file and renamed, so a kill mid-save leaves the previous epoch's state."""
    import torch

    if checkpoint_dir is None:
        return
    path = checkpoint_dir / STATE_FILE
    partial = path.with_name(path.name + ".partial")
    torch.save({"epoch": epochs_done, "tensors": {k: t.detach() for k, t in tensors.items()},
                "optimizer": optimizer.state_dict(), "extra": extra}, partial)
    partial.replace(path)


def restore_state(checkpoint_dir: Path | None, log: EpochLog, tensors: dict[str, Any], optimizer: Any,
                  device: str) -> tuple[int, dict]:
    """Load the saved state into ``tensors`` and ``optimizer``; return (epoch to start from, extra).

    (0, {}) when there is nothing to resume. The epoch log is written before the state each
    epoch, so an empty log (another run's, or none) means any state beside it is stale.
    """
    import torch

    path = checkpoint_dir / STATE_FILE if checkpoint_dir is not None else None
    if path is None or not log.epochs or not path.is_file():
        return 0, {}
    state = torch.load(path, map_location=device, weights_only=True)
    with torch.no_grad():
        for name, tensor in tensors.items():
            tensor.copy_(state["tensors"][name])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"], state["extra"]


def train_seconds(log: EpochLog) -> float:
    """Training time of the whole run, earlier (interrupted) attempts included."""
    return log.seconds_before() + time.perf_counter() - log.started


def write_model_dir(model_dir: Path, tensors: dict[str, Any], params: Any, history: dict, summary: dict) -> None:
    """model.pt (a state_dict of CPU tensors), params.json, history.json, train.json, all or nothing."""
    import torch

    with atomic_dir(model_dir) as tmp:
        torch.save({k: t.detach().cpu() for k, t in tensors.items()}, tmp / MODEL_FILE)
        write_json(tmp / "params.json", to_dict(params))
        write_json(tmp / "history.json", history)
        write_json(tmp / "train.json", summary)
