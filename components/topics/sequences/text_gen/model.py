"""The character language model of text-gen: the network, its text streams and validation loss, sampling.

Kept apart from the topic module because it imports torch at the top: `dlx list` imports every
topic module and must stay fast, while training, evaluation and `dlx generate` load this.

Sampling: the model reads the prompt, then draws one character at a time from
softmax(logits / temperature), restricted to the top-p nucleus (the most probable characters
whose probabilities first add up to at least p). Temperature 0 is the greedy argmax; the draws come
from a torch.Generator seeded by the caller, so the same seed gives the same text.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from components.errors import DlxError

GREEDY_BELOW = 1e-6
"""Temperatures at or below this mean greedy decoding (dividing by them would overflow)."""


class CharLM(nn.Module):
    """embedding -> stacked LSTM or GRU layers -> linear logits, with variational dropout after each layer.

    Each layer is its own torch module, so the dropout between layers can keep one mask per sequence
    (torch's stacked LSTM draws a fresh one for every character between its layers)."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, layers: int, cell: str,
                 dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        recurrent = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = nn.ModuleList(recurrent(embedding_dim if k == 0 else hidden_size, hidden_size, batch_first=True)
                                 for k in range(layers))
        self.dropout = dropout
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """(B, T) character indices -> ((B, T, V) logits, the recurrent state after the last step)."""
        out, states = self.embedding(x), []
        for k, layer in enumerate(self.rnn):
            out, layer_state = layer(out, None if state is None else state[k])
            states.append(layer_state)
            out = self._drop(out)
        return self.head(out), tuple(states)

    def _drop(self, out: torch.Tensor) -> torch.Tensor:
        if not self.training or not self.dropout:
            return out
        keep = 1 - self.dropout
        mask = torch.empty(out.shape[0], 1, out.shape[2], device=out.device).bernoulli_(keep).div_(keep)
        return out * mask.to(out.dtype)


class Stream:
    """A text as ``streams`` contiguous rows of character indices, inputs and next-character targets."""

    def __init__(self, indices: Any, streams: int, seq_len: int, offset: int = 0) -> None:
        length = (len(indices) - 1 - offset) // streams
        self.x = indices[offset:offset + streams * length].view(streams, length)
        self.y = indices[offset + 1:offset + 1 + streams * length].view(streams, length)
        self.seq_len = seq_len

    def chunks(self, whole: bool = False) -> Any:
        """(x, y) chunks left to right; the last, shorter one only when ``whole``."""
        length = self.x.shape[1]
        stop = length if whole else length - length % self.seq_len
        for start in range(0, stop, self.seq_len):
            yield self.x[:, start:start + self.seq_len], self.y[:, start:start + self.seq_len]


def validation_loss(model: Any, indices: Any, streams: int, seq_len: int, dtype: Any) -> float:
    """Mean cross-entropy in nats per character over the text, read as ``streams`` carried streams."""
    streams = max(1, min(streams, (len(indices) - 1) // seq_len))
    was_training = model.training
    model.eval()
    total, count, state = torch.zeros((), dtype=torch.float64, device=indices.device), 0, None
    with torch.no_grad(), torch.autocast(indices.device.type, dtype=dtype, enabled=dtype is not None):
        for x, y in Stream(indices, streams, seq_len).chunks(whole=True):
            logits, state = model(x, state)
            total += torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
            count += y.numel()
    model.train(was_training)
    return float(total) / count


def build(vocab_size: int, params: Any) -> CharLM:
    return CharLM(vocab_size, params.embedding_dim, params.hidden_size, params.layers, params.cell, params.dropout)


def one_module_per_layer(state: dict[str, Any]) -> dict[str, Any]:
    """A saved state_dict in this network's layout: models saved before each layer became its own
    module held all layers in one (``rnn.weight_ih_l1`` is now ``rnn.1.weight_ih_l0``)."""
    def renamed(key: str) -> str:
        found = re.fullmatch(r"rnn\.(\w+_[ih]h)_l(\d+)", key)
        return f"rnn.{found.group(2)}.{found.group(1)}_l0" if found else key

    return {renamed(key): value for key, value in state.items()}


def detach(state: Any) -> Any:
    """Cut the graph behind the carried state (truncated backpropagation through time)."""
    if state is None:
        return None
    return tuple(detach(s) for s in state) if isinstance(state, tuple) else state.detach()


def top_p_filter(probabilities: torch.Tensor, top_p: float) -> torch.Tensor:
    """The distribution restricted to its nucleus: the most probable entries whose total first
    reaches ``top_p`` (at least the most probable one), renormalised; 1 keeps everything."""
    if top_p >= 1:
        return probabilities
    ordered, order = probabilities.sort(descending=True)
    before = ordered.cumsum(0) - ordered  # probability mass ranked above each entry
    kept = torch.zeros_like(probabilities).scatter(0, order, (before < top_p).to(probabilities.dtype))
    nucleus = probabilities * kept
    return nucleus / nucleus.sum()


def next_index(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> int:
    """One draw from the tempered, nucleus-filtered distribution of a (V,) logit vector."""
    if temperature <= GREEDY_BELOW:
        return int(logits.argmax())
    probabilities = torch.softmax(logits.double() / temperature, dim=0)
    return int(torch.multinomial(top_p_filter(probabilities, top_p), 1, generator=generator))


def encode(text: str, vocabulary: str, what: str = "prompt") -> list[int]:
    """Indices of ``text``'s characters; characters the model never saw are a DlxError naming them."""
    index = {c: i for i, c in enumerate(vocabulary)}
    unknown = sorted({c for c in text if c not in index})
    if unknown:
        raise DlxError(f"the {what} has characters outside the model's vocabulary: "
                       f"{' '.join(repr(c) for c in unknown)}; the model knows {len(vocabulary)} characters: "
                       f"{vocabulary!r}")
    return [index[c] for c in text]


def check_options(length: int, temperature: float, top_p: float) -> None:
    if length < 0 or not 0 <= temperature < math.inf or not 0 < top_p <= 1:
        raise DlxError(f"sampling needs length >= 0, a finite temperature >= 0 and 0 < top-p <= 1; "
                       f"got length {length}, temperature {temperature:g}, top-p {top_p:g}")


@torch.no_grad()
def generate(model: CharLM, vocabulary: str, prompt: str, length: int, temperature: float, top_p: float = 1.0,
             seed: int = 0, on_char: Callable[[str], None] | None = None) -> str:
    """``length`` characters following ``prompt`` (not included); ``on_char`` sees each as it is drawn.

    An empty prompt starts the model on a newline (or its first character if it has no newline),
    as if at the start of a line.
    """
    check_options(length, temperature, top_p)
    primer = encode(prompt, vocabulary) or [vocabulary.index("\n") if "\n" in vocabulary else 0]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    logits, state = model(torch.tensor([primer], device=device))
    drawn: list[str] = []
    for _ in range(length):
        index = next_index(logits[0, -1].float().cpu(), temperature, top_p, generator)
        drawn.append(vocabulary[index])
        if on_char is not None:
            on_char(vocabulary[index])
        logits, state = model(torch.tensor([[index]], device=device), state)
    model.train(was_training)
    return "".join(drawn)


def samples(model: CharLM, vocabulary: str, temperatures: Sequence[float], length: int, seed: int,
            prompt: str = "") -> list[dict]:
    """One seeded sample per temperature, as recorded with checkpoints and in the report."""
    return [{"temperature": t, "prompt": prompt, "text": generate(model, vocabulary, prompt, length, t, seed=seed)}
            for t in temperatures]
