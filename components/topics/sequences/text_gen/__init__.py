"""text-gen: a character-level language model (embedding -> stacked LSTM/GRU -> softmax).

Training is truncated backpropagation through time over a continuous stream: the training text
is cut into ``batch_size`` contiguous streams read side by side in chunks of ``seq_len``
characters; the recurrent state is carried from chunk to chunk (detached, so gradients stop at the
chunk's start) and reset at each epoch, whose streams start at a seeded random offset below
``seq_len`` so chunk boundaries move between epochs. AdamW, gradient-norm clipping, variational
dropout (one mask per stream and chunk, Gal & Ghahramani 2016: as regularising as a fresh mask per
character, at a hundredth of the random draws), and a learning rate that warms up and then follows
a cosine down to a tenth of its peak. On a CPU with AMX matrix units, precision=auto trains under
bfloat16 autocast, where oneDNN's LSTM kernels run far faster than in float32.

Two limits end training, whichever comes first: ``epochs`` and ``budget_minutes`` of wall-clock
training time (evaluation included, earlier interrupted attempts counted). The schedule is planned
over both: its progress is the larger of the step fraction and the time fraction, so a
budget-bound run still decays to the end of its budget. A time-bound run depends on the machine's
speed; a run bound by epochs alone (budget_minutes=0) repeats exactly, resumed or not.

Every epoch reports training and validation loss in nats per character (bits = nats / ln 2,
perplexity = e^nats) and characters per second, and draws seeded samples at several temperatures,
kept with the checkpoint and in train.json. It trains through the shared loop
(components.topics.torch_loop); ``model`` holds the network, its streams and sampling.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components import distributed
from components.data.corpus import load_corpus
from components.epoch_log import run_identity
from components.errors import DlxError
from components.files import read_json, write_json
from components.params import from_dict, help_field
from components.registry import Topic
from components.topics.torch_loop import MODEL_FILE, Batch, TorchParams, TrainLoop, pick_device, write_model_dir

DATASETS = ("builtin-corpus", "tiny-shakespeare", "text-file:PATH")
FINAL_LR_FRACTION = 0.1
SAMPLES_FILE = "samples.json"


@dataclass(frozen=True)
class Params(TorchParams):
    precision: Literal["auto", "fp32", "bf16", "fp16"] = help_field(
        "auto", "autocast: auto is bf16 on CUDA (fp16 with loss scaling without bf16) and on CPUs with AMX "
        "matrix units, fp32 on other CPUs")
    cell: Literal["lstm", "gru"] = help_field("lstm", "recurrent layer: torch.nn.LSTM or torch.nn.GRU")
    layers: int = help_field(2, "stacked recurrent layers", at_least=1)
    hidden_size: int = help_field(384, "units per recurrent layer", at_least=1)
    embedding_dim: int = help_field(64, "length of each character's embedding vector", at_least=1)
    dropout: float = help_field(0.3, "variational dropout after each recurrent layer: one mask per stream "
                                     "and chunk, the same at every step", at_least=0, below=1)
    seq_len: int = help_field(100, "characters per chunk: how far back gradients flow (truncated BPTT)", at_least=2)
    batch_size: int = help_field(64, "parallel streams of the training text, one chunk each per step", at_least=1)
    learning_rate: float = help_field(0.003, "peak AdamW step size", above=0)
    weight_decay: float = help_field(0.1, "AdamW's decoupled weight decay", at_least=0)
    clip_norm: float = help_field(1.0, "clip the gradient's global norm to this; 0 = no clipping", at_least=0)
    schedule: Literal["cosine", "constant"] = help_field(
        "cosine", f"learning rate after warmup: cosine down to {FINAL_LR_FRACTION:g} x the peak, or constant")
    warmup: float = help_field(0.02, "share of the planned training spent ramping the learning rate up",
                               at_least=0, below=1)
    epochs: int = help_field(13, "most passes over the training text", at_least=1)
    budget_minutes: float = help_field(10.0, "stop after this many minutes of training; 0 = no time limit", at_least=0)
    temperatures: tuple[float, ...] = help_field(
        (0.5, 0.8, 1.0), "temperatures of the samples drawn each epoch (0: greedy)", at_least=0)
    sample_length: int = help_field(
        200, "characters per sample drawn each epoch (0: empty ones; the final samples have at least 300)", at_least=0)


def learning_rate(params: Params, progress: float) -> float:
    """The scheduled step size at ``progress`` (0..1) through the planned training."""
    peak = params.learning_rate
    if progress < params.warmup:
        return peak * (progress + 1e-3) / (params.warmup + 1e-3)
    if params.schedule == "constant":
        return peak
    done = min(1.0, (progress - params.warmup) / (1 - params.warmup))
    return peak * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * done)))


def scores(nats: float) -> dict[str, float]:
    return {"nats_per_char": round(nats, 4), "bits_per_char": round(nats / math.log(2), 4),
            "perplexity": round(math.exp(nats), 4)}


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Fit the model; write model.pt, params.json, history.json and train.json (vocabulary, samples)."""
    import torch

    from components.topics.sequences.text_gen import model as char_lm

    device = pick_device(params.device)
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
    loop = TrainLoop(dict(model.named_parameters()), optimizer, module=model, epochs=params.epochs, device=device,
                     checkpoint_dir=checkpoint_dir, run=run_identity(params, seed, meta), precision=params.precision,
                     cudnn_rnn=True, cpu_bf16=True, clip=params.clip_norm, steps_per_epoch=steps_per_epoch,
                     budget_minutes=params.budget_minutes, unit="chars",
                     divergence_hint="lower learning_rate or clip_norm")
    loop.extra.setdefault("samples", [])
    print(f"training on {len(train_text):,} characters, validating on {len(val_text):,}; vocabulary "
          f"{len(vocabulary)}; {params.layers}-layer {params.cell.upper()} of {params.hidden_size}, "
          f"{sum(p.numel() for p in model.parameters()):,} parameters; {steps_per_epoch} steps of "
          f"{params.batch_size}x{params.seq_len} per epoch; device {device}"
          + (f" ({loop.precision} autocast)" if loop.dtype else "")
          + (f"; budget {params.budget_minutes:g} min" if params.budget_minutes else ""), flush=True)
    state = None

    def batches(epoch: int):
        nonlocal state
        state = None
        offset = int(np.random.default_rng([seed, epoch]).integers(params.seq_len))
        torch.manual_seed(int(np.random.default_rng([seed, epoch, 1]).integers(2**62)))  # dropout masks
        for x, y in char_lm.Stream(data["train"], params.batch_size, params.seq_len, offset).chunks():
            yield Batch((x, y), y.numel(), y.numel())

    def loss(x: Any, y: Any) -> Any:
        nonlocal state
        logits, state = model(x, char_lm.detach(state))
        return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), y.flatten())

    def scores(train_loss: float) -> dict[str, float]:
        val = char_lm.validation_loss(model, data["val"], params.batch_size, params.seq_len, loop.dtype)
        return {"loss": train_loss, "val_loss": val, "learning_rate": loop.rate}

    def end_epoch(epoch: int, figures: dict[str, float]) -> None:
        loop.extra["samples"].append({"epoch": epoch + 1, "samples": char_lm.samples(
            model, vocabulary, params.temperatures, params.sample_length, seed=seed + epoch)})
        if checkpoint_dir is not None and distributed.is_main():
            write_json(checkpoint_dir / SAMPLES_FILE, loop.extra["samples"])

    loop.fit(batches, loss, scores, learning_rate=lambda progress: learning_rate(params, progress),
             end_epoch=end_epoch, describe=_describe)
    summary = loop.summary(seed=seed, train_chars_per_second=round(loop.items / loop.step_seconds, 1),
                           characters_seen=loop.items, steps=loop.step, budget_spent=loop.stopped,
                           val_nats_per_char=round(loop.log.history["val_loss"][-1], 4), vocabulary=vocabulary,
                           samples=loop.extra["samples"], step_losses=loop.step_losses)
    write_model_dir(model_dir, model.state_dict(), params, loop.log.history, summary)
    return summary


def _describe(figures: dict[str, float]) -> str:
    shown = scores(figures["val_loss"])
    return (f"loss {figures['loss']:.4f}  val {shown['nats_per_char']:.4f} nats/char "
            f"{shown['bits_per_char']:.3f} bits/char ppl {shown['perplexity']:.2f}  lr {figures['learning_rate']:.2e}")


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Validation loss of the saved model against unigram, bigram and uniform character baselines."""
    import torch

    from components.evaluate import plot_learning_curves
    from components.topics.sequences.text_gen import model as char_lm

    train_text, val_text, meta = load_corpus(dataset_dir)
    model, vocabulary = load_model(model_dir)
    if vocabulary != meta["schema"]["vocabulary"]:
        raise DlxError(f"{model_dir} was trained on another vocabulary than {dataset_dir}'s; "
                       "evaluate it on the data set it was trained on")
    params = model_params(model_dir)
    val = torch.tensor(char_lm.encode(val_text, vocabulary, "validation text"))
    nats = char_lm.validation_loss(model, val, params.batch_size, params.seq_len, None)
    train_ids = np.array(char_lm.encode(train_text, vocabulary, "training text"))
    val_ids = val.numpy()
    summary = read_json(model_dir / "train.json")
    seed, history = summary["seed"], read_json(model_dir / "history.json")
    records = summary.get("step_losses", [])
    steps = {"step": [step for step, _ in records], "loss": [loss for _, loss in records]}
    return {
        "protocol": {"kind": "validation"},
        "test": scores(nats),
        "baseline": {"bigram": scores(bigram_nats(train_ids, val_ids, len(vocabulary))),
                     "unigram": scores(unigram_nats(train_ids, val_ids, len(vocabulary))),
                     "uniform": scores(math.log(len(vocabulary)))},
        "samples": char_lm.samples(model, vocabulary, params.temperatures, max(params.sample_length, 300), seed),
        "plots": [plot_learning_curves(history, out_dir / "learning_curves.png", steps=steps)],
    }


def model_params(model_dir: Path) -> Params:
    return from_dict(Params, read_json(model_dir / "params.json"), "text-gen")


def load_model(model_dir: Path) -> tuple[Any, str]:
    """(the model in eval mode on the CPU, its vocabulary) of a text-gen model dir."""
    import torch

    from components.topics.sequences.text_gen import model as char_lm

    if not (model_dir / MODEL_FILE).is_file() or not (model_dir / "train.json").is_file():
        raise DlxError(f"{model_dir}: not a text-gen model dir (no {MODEL_FILE} and train.json)")
    summary = read_json(model_dir / "train.json")
    if "vocabulary" not in summary:
        raise DlxError(f"{model_dir}: not a text-gen model (train.json has no vocabulary)")
    vocabulary = summary["vocabulary"]
    model = char_lm.build(len(vocabulary), model_params(model_dir))
    state = torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(char_lm.one_module_per_layer(state))
    return model.eval(), vocabulary


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
    name="text-gen", description="character LSTM/GRU language model, `dlx generate`",
    framework="pytorch", datasets=DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="nats_per_char", higher_is_better=False,
    # the built-in corpus trains a small network for a fixed 10 epochs in float32, so its default run
    # repeats on any machine; lighter regularisation suits that network
    presets={"builtin-corpus": {"hidden_size": "128", "layers": "1", "batch_size": "32", "seq_len": "64",
                                "epochs": "10", "budget_minutes": "0", "precision": "fp32", "dropout": "0.1",
                                "weight_decay": "0.01"}},
    dataset_options={"text-file:PATH": {"layout": "plain"}},
)
