"""The rnn topic's network and training loop, shared by its two tasks (signal regression, text classification).

The network is [embedding →] recurrent layer → final hidden state → linear head. One loop trains
it for either task: Adam, mixed precision on CUDA (bfloat16 autocast, or float16 with a gradient
scaler; see amp_dtype), gradient clipping by global norm, per-epoch progress with
throughput, and a checkpoint after every epoch from which a rerun continues exactly. Batch order
comes from (seed, epoch) alone and nothing else draws random numbers while training, so a resumed
run repeats the uninterrupted one bit for bit (on CPU; cuDNN kernels need not be deterministic).

Imports torch at the top: components.topics.rnn imports it only inside train/evaluate.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from components.epoch_log import EpochLog
from components.errors import DlxError
from components.topics.rnn_cells import clip_grad_norm, final_hidden, recurrent_layer
from components.topics.torch_common import MODEL_FILE, restore_state, save_state

Batch = tuple[tuple[Any, ...], Any, int]
"""(model inputs, target, items for the throughput count: sequences or tokens)."""


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


def amp_dtype(device: str, enabled: bool, cell: str) -> Any:
    """The autocast type on CUDA; None: full float32.

    bfloat16 (float32's range, so no loss scaling) where the GPU has it and, for LSTM/GRU, where
    cuDNN's RNN kernels take it (from cuDNN 9.13; pytorch/pytorch#164411); float16 otherwise.
    """
    if device != "cuda" or not enabled:
        return None
    library_bf16 = (torch.backends.cudnn.version() or 0) >= 91300
    if torch.cuda.is_bf16_supported() and (cell == "manual" or library_bf16):
        return torch.bfloat16
    return torch.float16


def autocast(device: str, dtype: Any) -> Any:
    return torch.autocast(device_type="cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit(model: SequenceModel, params: Any, device: str, log: EpochLog, checkpoint_dir: Path | None,
        batches: Callable[[int], Iterable[Batch]], loss_fn: Callable[[Any, Any], Any],
        end_epoch: Callable[[float], dict[str, float]], unit: str, tag: str = "") -> None:
    """Train ``model`` for params.epochs, continuing after the last epoch saved in ``checkpoint_dir``.

    ``batches(epoch)`` yields the epoch's batches; ``end_epoch(mean training loss)`` returns the
    epoch's scores (run in eval mode without gradients) for the log and the progress line.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    dtype = amp_dtype(device, params.amp, params.cell)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    tensors = model.state_dict(keep_vars=True)
    start, extra = restore_state(checkpoint_dir, log, tensors, optimizer, device)
    if extra.get("scaler"):
        scaler.load_state_dict(extra["scaler"])
    for epoch in range(start, params.epochs):
        log.on_epoch_begin(epoch)
        model.train()
        began = time.perf_counter()
        total, count, items = torch.zeros((), device=device), 0, 0
        for inputs, target, n in batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, dtype):
                loss = loss_fn(model(*inputs), target)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            if params.clip:
                clip_grad_norm(model.parameters(), params.clip)
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach().float() * len(target)
            count, items = count + len(target), items + n
        speed = items / (time.perf_counter() - began)
        loss = float(total) / count
        if not math.isfinite(loss):
            raise DlxError(f"{tag}training diverged in epoch {epoch + 1} (loss {loss}); lower learning_rate or clip, "
                           "shorten the sequences (window, max_length), or use nonlinearity=tanh or cell=lstm|gru")
        model.eval()
        with torch.no_grad():
            scores = end_epoch(loss)
        log.on_epoch_end(epoch, scores)
        shown = "  ".join(f"{name} {value:.4f}" for name, value in scores.items())
        print(f"{tag}epoch {epoch + 1}/{params.epochs}: {shown}  {speed:,.0f} {unit}/s", flush=True)
        save_state(checkpoint_dir, epoch + 1, tensors, optimizer, scaler=scaler.state_dict())
    if log.first_epoch is None:
        print(f"{tag}the checkpoint in {checkpoint_dir} holds all {params.epochs} epochs; nothing left to train",
              flush=True)
