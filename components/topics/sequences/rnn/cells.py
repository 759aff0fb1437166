"""The recurrent layers of the rnn topic: a cell written by hand, the library's LSTM/GRU, clipping.

``ManualRNN`` is the Elman recurrence written out, ``h_t = f(x_t W_ih' + b_ih + h_{t-1} W_hh' +
b_hh)``, with the parameter names, shapes and call convention of ``torch.nn.RNN(batch_first=True)``
so the two load each other's state_dict and a test can hold them equal. As the seed did (Le, Jaitly
and Hinton 2015, "IRNN"), its recurrent weights start as the identity and its biases at zero: the
hidden state is copied forward unchanged until learning says otherwise, which keeps gradients from
vanishing over long sequences. It takes a padded batch or a PackedSequence; packed, each time step
updates only the sequences still running, so a sequence's final state is the one after its last
real element, never after padding.

This module imports torch at the top: components.topics.rnn imports it only inside train/evaluate,
so `dlx list` stays fast.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.nn.utils.rnn import PackedSequence


class ManualRNN(torch.nn.Module):
    """``layers`` stacked Elman layers; ``forward(x) -> (output, h_n)`` like nn.RNN(batch_first=True)."""

    def __init__(self, input_size: int, hidden_size: int, layers: int = 1, nonlinearity: str = "tanh",
                 identity_init: bool = True) -> None:
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be tanh or relu, not {nonlinearity!r}")
        self.hidden_size, self.layers, self.nonlinearity = hidden_size, layers, nonlinearity
        self.activation = torch.tanh if nonlinearity == "tanh" else torch.relu
        bound = 1 / math.sqrt(hidden_size)  # nn.RNN's own initialisation
        for layer in range(layers):
            fan_in = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}",
                                    torch.nn.Parameter(torch.empty(hidden_size, fan_in).uniform_(-bound, bound)))
            recurrent = torch.eye(hidden_size) if identity_init else torch.empty(hidden_size, hidden_size).uniform_(-bound, bound)
            self.register_parameter(f"weight_hh_l{layer}", torch.nn.Parameter(recurrent))
            for name in ("bias_ih", "bias_hh"):
                bias = torch.zeros(hidden_size) if identity_init else torch.empty(hidden_size).uniform_(-bound, bound)
                self.register_parameter(f"{name}_l{layer}", torch.nn.Parameter(bias))

    def forward(self, x: Any) -> tuple[Any, Any]:
        """x: (batch, time, features) or a PackedSequence -> (outputs of the last layer, h_n of every layer)."""
        packed = isinstance(x, PackedSequence)
        steps = torch.split(x.data, x.batch_sizes.tolist()) if packed else x.unbind(1)
        batch = len(steps[0])
        hidden = [x.data.new_zeros(batch, self.hidden_size) for _ in range(self.layers)]
        weights = [[getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")]
                   for layer in range(self.layers)]
        outputs = []
        for step in steps:
            running = len(step)  # packed: the sequences still going (they come first)
            for layer, (w_ih, b_ih, w_hh, b_hh) in enumerate(weights):
                previous = hidden[layer]
                step = self.activation(step @ w_ih.T + b_ih + previous[:running] @ w_hh.T + b_hh)
                hidden[layer] = step if running == batch else torch.cat([step, previous[running:]])
            outputs.append(step)
        h_n = torch.stack(hidden)
        if not packed:
            return torch.stack(outputs, 1), h_n
        if x.unsorted_indices is not None:
            h_n = h_n[:, x.unsorted_indices]
        return PackedSequence(torch.cat(outputs), x.batch_sizes, x.sorted_indices, x.unsorted_indices), h_n


def recurrent_layer(cell: str, input_size: int, hidden_size: int, layers: int, nonlinearity: str,
                    identity_init: bool) -> Any:
    """The hand-written cell or torch's LSTM/GRU, all batch-first, all returning (output, state)."""
    if cell == "manual":
        return ManualRNN(input_size, hidden_size, layers, nonlinearity, identity_init)
    library = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    return library(input_size, hidden_size, num_layers=layers, batch_first=True)


def final_hidden(state: Any) -> Any:
    """The last layer's final hidden state (B, H) from (h_n) or an LSTM's (h_n, c_n)."""
    h_n = state[0] if isinstance(state, tuple) else state
    return h_n[-1]


def clip_grad_norm(parameters: Iterable[Any], max_norm: float) -> Any:
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping (a tensor: reading it would wait for the GPU). Written out (the norm of the vector of every gradient, one
    common factor) so the topic shows what torch.nn.utils.clip_grad_norm_ does; the tests hold the
    two equal.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.sqrt(sum(g.detach().float().square().sum() for g in grads))
    factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.mul_(factor.to(g.dtype))
    return total
