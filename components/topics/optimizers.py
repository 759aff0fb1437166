"""Optimisers written by hand, the lessons of pytorch-gd (plain GD, momentum) and cf-gd (AdaGrad).

They keep torch.optim's step/zero_grad/state_dict interface and a learning rate in ``lr``, so the
training loop takes either kind and a test can compare them step for step with the library's.
"""
from __future__ import annotations

from typing import Any


class _HandOptimizer:
    """What both share: the parameters, one buffer per parameter (saved under ``buffer_name``), zero_grad."""

    buffer_name = ""

    def __init__(self, params: list[Any], lr: float, buffers: bool) -> None:
        import torch

        self.params, self.lr = params, lr
        self.buffers = [torch.zeros_like(p) for p in params] if buffers else []

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {self.buffer_name: self.buffers}

    def load_state_dict(self, state: dict) -> None:
        for buffer, saved in zip(self.buffers, state[self.buffer_name], strict=True):
            buffer.copy_(saved)


class HandSGD(_HandOptimizer):
    """SGD written out.

    momentum 0: ``p -= lr * grad``. Otherwise ``v = mu * v + grad; p -= lr * v``, which is
    torch.optim.SGD with dampening 0 and no Nesterov (its first buffer is the gradient itself,
    and mu * 0 + grad is exactly that).
    """

    buffer_name = "velocity"

    def __init__(self, params: list[Any], lr: float, momentum: float = 0.0) -> None:
        super().__init__(params, lr, buffers=bool(momentum))
        self.momentum = momentum

    def step(self) -> None:
        import torch

        with torch.no_grad():
            if not self.momentum:
                for p in self.params:
                    p -= self.lr * p.grad
                return
            for p, v in zip(self.params, self.buffers):
                v.mul_(self.momentum).add_(p.grad)
                p -= self.lr * v


class HandAdagrad(_HandOptimizer):
    """AdaGrad written out: ``s += grad²; p -= lr * grad / (sqrt(s) + eps)``.

    That is torch.optim.Adagrad with its defaults of no learning-rate decay, no weight decay and
    an initial accumulator of 0: each parameter's step shrinks with the gradients it has seen, so
    rarely rated items keep larger steps than popular ones.
    """

    buffer_name = "sums"

    def __init__(self, params: list[Any], lr: float, eps: float = 1e-10) -> None:
        super().__init__(params, lr, buffers=True)
        self.eps = eps

    def step(self) -> None:
        import torch

        with torch.no_grad():
            for p, s in zip(self.params, self.buffers):
                s.addcmul_(p.grad, p.grad)
                p -= self.lr * p.grad / (s.sqrt() + self.eps)
