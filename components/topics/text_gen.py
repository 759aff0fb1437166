"""text-gen: a character-level language model (embedding -> stacked LSTM/GRU -> softmax).

Training is truncated backpropagation through time over a continuous stream: the training text
is cut into ``batch_size`` contiguous streams read side by side in chunks of ``seq_len``
characters; the recurrent state is carried from chunk to chunk (detached, so gradients stop at the
chunk's start) and reset at each epoch, whose streams start at a seeded random offset below
``seq_len`` so chunk boundaries move between epochs. AdamW, gradient-norm clipping, dropout, and a
learning rate that warms up and then follows a cosine down to a tenth of its peak.

Two limits end training, whichever comes first: ``epochs`` and ``budget_minutes`` of wall-clock
training time (evaluation included, earlier interrupted attempts counted). The schedule is planned
over both: its progress is the larger of the step fraction and the time fraction, so a
budget-bound run still decays to the end of its budget. A time-bound run depends on the machine's
speed; a run bound by epochs alone (budget_minutes=0) repeats exactly, resumed or not.

Every epoch reports training and validation loss in nats per character (bits = nats / ln 2,
perplexity = e^nats) and characters per second, and draws seeded samples at several temperatures,
kept with the checkpoint and in train.json. On CUDA the forward pass runs under autocast (bf16
where supported, else fp16 with a gradient scaler).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components.data.corpus import load_corpus
from components.errors import DlxError
from components.files import write_json
from components.params import help_field, to_dict
from components.registry import Topic
from components.topics.torch_common import (open_log, pick_device, restore_state, save_state, train_seconds,
                                            write_model_dir)

DATASETS = ("builtin-corpus", "tiny-shakespeare", "text-file:PATH")
FINAL_LR_FRACTION = 0.1
SAMPLES_FILE = "samples.json"


@dataclass(frozen=True)
class Params:
    cell: Literal["lstm", "gru"] = help_field("lstm", "recurrent layer: torch.nn.LSTM or torch.nn.GRU")
    layers: int = help_field(2, "stacked recurrent layers")
    hidden_size: int = help_field(256, "units per recurrent layer")
    embedding_dim: int = help_field(64, "length of each character's embedding vector")
    dropout: float = help_field(0.1, "dropout between the recurrent layers and before the output layer")
    seq_len: int = help_field(100, "characters per chunk: how far back gradients flow (truncated BPTT)")
    batch_size: int = help_field(64, "parallel streams of the training text, one chunk each per step")
    learning_rate: float = help_field(0.003, "peak AdamW step size")
    weight_decay: float = help_field(0.01, "AdamW's decoupled weight decay")
    clip_norm: float = help_field(1.0, "clip the gradient's global norm to this; 0 = no clipping")
    schedule: Literal["cosine", "constant"] = help_field(
        "cosine", f"learning rate after warmup: cosine down to {FINAL_LR_FRACTION:g} x the peak, or constant")
    warmup: float = help_field(0.02, "share of the planned training spent ramping the learning rate up")
    epochs: int = help_field(50, "most passes over the training text")
    budget_minutes: float = help_field(10.0, "stop after this many minutes of training; 0 = no time limit")
    temperatures: tuple[float, ...] = help_field((0.5, 0.8, 1.0), "temperatures of the samples drawn each epoch")
    sample_length: int = help_field(200, "characters per sample")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = help_field(
        "auto", "auto: bf16 (else fp16) autocast on CUDA, fp32 on the CPU")
    device: Literal["auto", "cpu", "cuda"] = help_field("auto", "where to train: auto picks CUDA when present")

    def __post_init__(self) -> None:
        if min(self.layers, self.hidden_size, self.embedding_dim, self.batch_size, self.epochs) < 1 or self.seq_len < 2:
            raise ValueError("layers, hidden_size, embedding_dim, batch_size and epochs must be at least 1, seq_len 2")
        if not 0 <= self.dropout < 1 or not 0 <= self.warmup < 1:
            raise ValueError("dropout and warmup must be in [0, 1)")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.clip_norm < 0 or self.budget_minutes < 0:
            raise ValueError("learning_rate must be positive; weight_decay, clip_norm and budget_minutes at least 0")
        if self.sample_length < 0 or any(t < 0 for t in self.temperatures):
            raise ValueError("sample_length and temperatures must be at least 0")


def learning_rate(params: Params, progress: float) -> float:
    """The scheduled step size at ``progress`` (0..1) through the planned training."""
    peak = params.learning_rate
    if progress < params.warmup:
        return peak * (progress + 1e-3) / (params.warmup + 1e-3)
    if params.schedule == "constant":
        return peak
    done = min(1.0, (progress - params.warmup) / (1 - params.warmup))
    return peak * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * done)))


def autocast_dtype(precision: str, device: str) -> Any:
    """The autocast dtype for ``precision`` on ``device``; None runs in float32."""
    import torch

    if precision == "auto":
        if device != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device != "cuda":
        raise DlxError("precision=fp16 needs CUDA; use precision=bf16 or fp32 on the CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


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
    import torch

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


def scores(nats: float) -> dict[str, float]:
    return {"nats_per_char": round(nats, 4), "bits_per_char": round(nats / math.log(2), 4),
            "perplexity": round(math.exp(nats), 4)}


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Fit the model; write model.pt, params.json, history.json and train.json (vocabulary, samples)."""
    import torch

    from components.topics import char_lm

    device = pick_device(params.device)
    dtype = autocast_dtype(params.precision, device)
    train_text, val_text, meta = load_corpus(dataset_dir)
    vocabulary = meta["schema"]["vocabulary"]
    data = {name: torch.tensor(char_lm.encode(text, vocabulary, f"{name} text"), device=device)
            for name, text in (("train", train_text), ("val", val_text))}
    steps_per_epoch = ((len(train_text) - params.seq_len) // params.batch_size) // params.seq_len
    if steps_per_epoch < 1:
        raise DlxError(f"the training text has {len(train_text)} characters, too few for batch_size "
                       f"{params.batch_size} x seq_len {params.seq_len}; lower them or give it more text")
    torch.manual_seed(seed)
    model = char_lm.build(len(vocabulary), params).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)
    log = open_log(checkpoint_dir, {"params": to_dict(params), "seed": seed,
                                    **{k: meta[k] for k in ("dataset", "inputs", "splits")}})
    start, kept = restore_state(checkpoint_dir, log, dict(model.named_parameters()), optimizer, device)
    if "scaler" in kept:
        scaler.load_state_dict(kept["scaler"])
    step, drawn, stopped = kept.get("step", 0), kept.get("samples", []), kept.get("stopped", False)
    step_seconds = kept.get("step_seconds", 0.0)  # time in training steps alone, for the throughput
    planned = params.epochs * steps_per_epoch
    budget = params.budget_minutes * 60
    n_parameters = sum(p.numel() for p in model.parameters())
    print(f"training on {len(train_text):,} characters, validating on {len(val_text):,}; vocabulary "
          f"{len(vocabulary)}; {params.layers}-layer {params.cell.upper()} of {params.hidden_size}, "
          f"{n_parameters:,} parameters; {steps_per_epoch} steps of {params.batch_size}x{params.seq_len} per epoch; "
          f"device {device}" + (f" ({str(dtype).removeprefix('torch.')} autocast)" if dtype else "")
          + (f"; budget {params.budget_minutes:g} min" if budget else ""), flush=True)

    def progress() -> float:
        return max(step / planned, train_seconds(log) / budget if budget else 0.0)

    epoch = start
    while epoch < params.epochs and not stopped:
        log.on_epoch_begin(epoch)
        began = time.perf_counter()
        offset = int(np.random.default_rng([seed, epoch]).integers(params.seq_len))
        torch.manual_seed(int(np.random.default_rng([seed, epoch, 1]).integers(2**62)))  # dropout masks
        losses, state = [], None
        for x, y in Stream(data["train"], params.batch_size, params.seq_len, offset).chunks():
            if budget and train_seconds(log) >= budget:
                stopped = True
                break
            rate = learning_rate(params, progress())
            for group in optimizer.param_groups:
                group["lr"] = rate
            loss, state = _step(model, optimizer, scaler, x, y, char_lm.detach(state), params, dtype)
            losses.append(loss)
            step += 1
        if not losses:
            break
        seconds = time.perf_counter() - began
        step_seconds += seconds
        loss = float(torch.stack(losses).mean())
        val = validation_loss(model, data["val"], params.batch_size, params.seq_len, dtype)
        chars = len(losses) * params.batch_size * params.seq_len
        drawn.append({"epoch": epoch + 1, "samples": char_lm.samples(
            model, vocabulary, params.temperatures, params.sample_length, seed=seed + epoch)})
        log.on_epoch_end(epoch, {"loss": loss, "val_loss": val, "learning_rate": rate})
        # spent during the evaluation: record it now, so a resumed run knows it is done
        stopped = stopped or bool(budget) and train_seconds(log) >= budget
        _print_epoch(epoch, params, loss, val, rate, chars / seconds, train_seconds(log), stopped)
        epoch += 1
        save_state(checkpoint_dir, epoch, dict(model.named_parameters()), optimizer, step=step, samples=drawn,
                   stopped=stopped, scaler=scaler.state_dict(), step_seconds=step_seconds)
        if checkpoint_dir is not None:
            write_json(checkpoint_dir / SAMPLES_FILE, drawn)
    if log.first_epoch is None:
        print(f"the checkpoint in {checkpoint_dir} holds the whole run; nothing left to train", flush=True)
    if not log.epochs:
        raise DlxError(f"budget_minutes={params.budget_minutes:g} ended training before its first step; raise it")
    seen = step * params.batch_size * params.seq_len
    summary = {"train_seconds": round(train_seconds(log), 2),
               "samples_per_second": round(seen / train_seconds(log), 1),  # evaluation and sampling included
               "train_chars_per_second": round(seen / step_seconds, 1),  # the training steps alone
               "characters_seen": seen, "steps": step, "epochs_run": log.epochs,
               "budget_spent": stopped, "parameters": n_parameters, "device": device, "seed": seed,
               "precision": str(dtype).removeprefix("torch.") if dtype else "fp32",
               "val_nats_per_char": round(log.history["val_loss"][-1], 4), "vocabulary": vocabulary,
               "samples": drawn}
    write_model_dir(model_dir, model.state_dict(), params, log.history, summary)
    return summary


def _step(model: Any, optimizer: Any, scaler: Any, x: Any, y: Any, state: Any, params: Params,
          dtype: Any) -> tuple[Any, Any]:
    """One AdamW step on a chunk; (its mean loss as a tensor, the state after it)."""
    import torch

    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
        logits, state = model(x, state)
        loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten())
    scaler.scale(loss).backward()
    if params.clip_norm:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), params.clip_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach(), state


def _print_epoch(epoch: int, params: Params, loss: float, val: float, rate: float, speed: float, elapsed: float,
                 stopped: bool) -> None:
    shown = scores(val)
    budget = f"  {elapsed / 60:.1f}/{params.budget_minutes:g} min" if params.budget_minutes else ""
    end = "  (budget spent)" if stopped else ""
    print(f"epoch {epoch + 1}/{params.epochs}: loss {loss:.4f}  val {shown['nats_per_char']:.4f} nats/char "
          f"{shown['bits_per_char']:.3f} bits/char ppl {shown['perplexity']:.2f}  lr {rate:.2e}  "
          f"{speed:,.0f} chars/s{budget}{end}", flush=True)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Validation loss of the saved model against unigram, bigram and uniform character baselines."""
    import torch

    from components.evaluate import plot_learning_curves
    from components.files import read_json
    from components.topics import char_lm

    train_text, val_text, meta = load_corpus(dataset_dir)
    model, vocabulary = char_lm.load(model_dir)
    if vocabulary != meta["schema"]["vocabulary"]:
        raise DlxError(f"{model_dir} was trained on another vocabulary than {dataset_dir}'s; "
                       "evaluate it on the data set it was trained on")
    params = model_params(model_dir)
    val = torch.tensor(char_lm.encode(val_text, vocabulary, "validation text"))
    nats = validation_loss(model, val, params.batch_size, params.seq_len, None)
    train_ids = np.array(char_lm.encode(train_text, vocabulary, "training text"))
    val_ids = val.numpy()
    seed = read_json(model_dir / "train.json")["seed"]
    history = read_json(model_dir / "history.json")
    return {
        "test": scores(nats),
        "baseline": {"bigram": scores(bigram_nats(train_ids, val_ids, len(vocabulary))),
                     "unigram": scores(unigram_nats(train_ids, val_ids, len(vocabulary))),
                     "uniform": scores(math.log(len(vocabulary)))},
        "samples": char_lm.samples(model, vocabulary, params.temperatures, max(params.sample_length, 300), seed),
        "plots": [plot_learning_curves(history, out_dir / "learning_curves.png")],
    }


def model_params(model_dir: Path) -> Params:
    from components.files import read_json
    from components.params import from_dict

    return from_dict(Params, read_json(model_dir / "params.json"), "text-gen")


def unigram_nats(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy of the training text's character frequencies (add-one smoothed) on ``val``."""
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    return float(-np.log(counts / counts.sum())[val].mean())


def bigram_nats(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy of P(next | previous character) from the training text (add-one smoothed) on ``val``."""
    counts = np.ones((vocab_size, vocab_size))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    log_p = np.log(counts / counts.sum(axis=1, keepdims=True))
    return float(-log_p[val[:-1], val[1:]].mean())


TOPIC = Topic(
    name="text-gen",
    description="character-level LSTM/GRU language model (truncated BPTT, AdamW, cosine schedule, time budget); "
                "sample with `dlx generate`",
    framework="pytorch",
    datasets=DATASETS,
    params=Params,
    train=train,
    evaluate=evaluate,
    main_metric="nats_per_char",
    higher_is_better=False,
    presets={"builtin-corpus": {"hidden_size": "128", "layers": "1", "batch_size": "32", "seq_len": "64",
                                "budget_minutes": "1"}},
    dataset_options={"text-file:PATH": {"layout": "plain"}},
)
