"""The rnn topic's network and how it trains, shared by its two tasks (signal regression, text classification).

The network is [embedding →] recurrent layer → final hidden state → linear head. It trains
through the shared loop (components.topics.torch_loop) with Adam and the hand-written global-norm
clipping of ``cells``. Batch order comes from (seed, epoch) alone and nothing else draws random
numbers while training, so a resumed run repeats the uninterrupted one bit for bit (on CPU; cuDNN
kernels need not be deterministic).

Imports torch at the top: the rnn topic module imports it only inside train/evaluate.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from components.topics.sequences.rnn.cells import clip_grad_norm, final_hidden, recurrent_layer
from components.topics.torch_loop import MODEL_FILE, Batch, TrainLoop


class SequenceModel(torch.nn.Module):
    """[Embedding →] recurrent layer → the last layer's final hidden state → Linear.

    ``scale`` (a buffer, saved with the weights) holds the (mean, std) the regression task
    standardises its signal with, so a saved model predicts in the signal's own units.
    """

    def __init__(self, params: Any, inputs: int, outputs: int, vocabulary: int = 0) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, inputs, padding_idx=0) if vocabulary else None
        self.rnn = recurrent_layer(params.cell, inputs, params.hidden_size, params.layers, params.nonlinearity,
                                   params.identity_init)
        self.head = torch.nn.Linear(params.hidden_size, outputs)
        self.register_buffer("scale", torch.tensor([0.0, 1.0]))

    def forward(self, x: Any, lengths: Any = None) -> Any:
        """x: (batch, time) values or token ids; ``lengths`` (on the CPU) packs a padded batch."""
        x = self.embedding(x) if self.embedding is not None else x.unsqueeze(-1)
        if lengths is not None:
            x = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(x)
        return self.head(final_hidden(state))


def build_model(params: Any, seed: int, device: str, inputs: int, outputs: int, vocabulary: int = 0) -> SequenceModel:
    """A freshly initialised model, the same for the same seed, without touching torch's global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SequenceModel(params, inputs, outputs, vocabulary)
    return model.to(device)


def load_model(model_dir: Path, params: Any, inputs: int, outputs: int, vocabulary: int = 0) -> SequenceModel:
    """The trained model of ``model_dir`` on the CPU, in eval mode."""
    model = SequenceModel(params, inputs, outputs, vocabulary)
    model.load_state_dict(torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True))
    return model.eval()


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit(model: SequenceModel, params: Any, device: str, checkpoint_dir: Path | None, run: dict,
        batches: Callable[[int], Iterable[Batch]], loss_fn: Callable[[Any, Any], Any],
        scores: Callable[[float], dict[str, float]], unit: str, tag: str = "") -> TrainLoop:
    """Train ``model`` for params.epochs with Adam, continuing after the last epoch saved in ``checkpoint_dir``.

    ``batches(epoch)`` yields Batches whose inputs are the model's inputs followed by the target;
    ``scores(mean training loss)`` gives the epoch's figures (run in eval mode without gradients).
    """
    loop = TrainLoop(model.state_dict(keep_vars=True), torch.optim.Adam(model.parameters(), lr=params.learning_rate),
                     module=model, epochs=params.epochs, device=device, checkpoint_dir=checkpoint_dir, run=run,
                     precision=params.precision, cudnn_rnn=params.cell != "manual", clip=params.clip,
                     clip_grad=clip_grad_norm, unit=unit, tag=tag,
                     divergence_hint="lower learning_rate or clip, shorten the sequences (window, max_length), "
                                     "or use nonlinearity=tanh or cell=lstm|gru")
    loop.fit(batches, lambda *inputs: loss_fn(model(*inputs[:-1]), inputs[-1]), scores)
    return loop
