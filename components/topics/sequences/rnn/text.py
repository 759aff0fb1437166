"""The rnn topic's text task: classify labelled texts read as characters or words.

A text becomes token indices through components.topics.text.tokenizer (a word index of the training
texts: 0 padding, 1 out-of-vocabulary; ``tokens=char`` uses the same tokenizer with one token per
character), cut after ``max_length`` tokens. A batch is padded to its longest text and packed
(pack_padded_sequence), so the recurrent layer never steps through padding and the final hidden
state of each text is the one after its own last token; a linear head on it gives the class.

Folds, out-of-fold scoring, baselines and the model dir follow components.topics.text.common: a
fresh network per fold (its own word index, seed + fold), then a final one on all texts. With a
checkpoint dir each of them keeps its own per-epoch checkpoint there (``fold-<k>/``, ``final/``),
so an interrupted run redoes nothing it finished. The model dir adds ``history.json`` (the final
network's epochs) and ``cv_history.json`` (the folds' mean, validated on each held-out fold).

Imports torch at the top: the rnn topic module imports it only inside train/evaluate.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components import evaluate as shared
from components.files import read_json, write_json
from components.topics.sequences.rnn.network import build_model, fit, load_model, parameter_count
from components.topics.text.common import (Corpus, cross_validate, evaluate_text, load_corpus, load_vocabulary,
                                           read_model_info, save_model, save_vocabulary)
from components.topics.text.tokenizer import RESERVED, WORD, Tokenizer, WordIndex
from components.topics.torch_loop import MODEL_FILE, Batch

CHARACTER = r"(?s)."
"""The tokenizer pattern of ``tokens=char``: every character, spaces and punctuation included."""
PREDICT_BATCH = 512


def tokenizer(params: Any) -> Tokenizer:
    return Tokenizer(lowercase=params.lowercase, pattern=CHARACTER if params.tokens == "char" else WORD)


def encode(index: WordIndex, tokens: Sequence[Sequence[str]], length: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, length) int64 indices and each text's length (at least 1: an empty text reads one padding token)."""
    x = index.sequences(tokens, length).astype(np.int64)
    return x, np.clip([len(t) for t in tokens], 1, length).astype(np.int64)


def probabilities(model: Any, x: np.ndarray, lengths: np.ndarray, device: str) -> np.ndarray:
    """Class probabilities (float64) of every row, in batches trimmed to their longest text."""
    out = []
    with torch.no_grad():
        for start in range(0, len(x), PREDICT_BATCH):
            rows = slice(start, start + PREDICT_BATCH)
            longest = int(lengths[rows].max())
            logits = model(torch.as_tensor(x[rows, :longest], device=device), torch.as_tensor(lengths[rows]))
            out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, model.head.out_features))


def _fit(tokens: list[list[str]], y: np.ndarray, train: np.ndarray, held_out: np.ndarray, n_classes: int,
         params: Any, seed: int, device: str, checkpoint: Path | None, run: dict, tag: str) -> tuple[Any, WordIndex, dict]:
    """A network on the rows ``train`` with its own word index; ``held_out`` rows are scored every epoch.

    Returns (model, word index, per-epoch history)."""
    index = WordIndex.fit([tokens[i] for i in train], params.min_count, params.max_words)
    x, lengths = encode(index, tokens, params.max_length)
    model = build_model(params, seed, device, params.embedding_size, n_classes, vocabulary=len(index))
    targets = torch.tensor(y, device=device)

    def batches(epoch: int):
        order = np.random.default_rng([seed, epoch]).permutation(train)
        for start in range(0, len(order), params.batch_size):
            rows = order[start:start + params.batch_size]
            longest = int(lengths[rows].max())
            yield Batch((torch.as_tensor(x[rows, :longest], device=device), torch.as_tensor(lengths[rows]),
                         targets[rows]), len(rows), int(lengths[rows].sum()))

    def scores(rows: np.ndarray, prefix: str) -> dict[str, float]:
        p = probabilities(model, x[rows], lengths[rows], device)
        return {f"{prefix}loss": float(-np.log(np.maximum(p[np.arange(len(rows)), y[rows]], 1e-12)).mean()),
                f"{prefix}accuracy": float((p.argmax(axis=1) == y[rows]).mean())}

    def epoch_scores(loss: float) -> dict[str, float]:
        return {"loss": loss, "accuracy": scores(train, "")["accuracy"],
                **(scores(held_out, "val_") if len(held_out) else {})}

    unit = "characters" if params.tokens == "char" else "words"
    loop = fit(model, params, device, checkpoint, {**run, "part": tag}, batches, torch.nn.functional.cross_entropy,
               epoch_scores, unit, tag=f"{tag}: ")
    return model, index, loop.log.history


def train(dataset_dir: Path, model_dir: Path, params: Any, seed: int, checkpoint_dir: Path | None, device: str,
          run: dict) -> dict:
    started = time.perf_counter()
    corpus: Corpus = load_corpus(dataset_dir)
    tokenize = tokenizer(params)
    tokens = [tokenize(t) for t in corpus.texts]
    n_classes = len(corpus.labels)
    print(f"rnn: {len(tokens)} texts, {n_classes} classes, {len(corpus.splits)} fold(s); {params.tokens} tokens, "
          f"at most {params.max_length} per text; cell {params.cell}; device {device}", flush=True)

    def part_dir(tag: str) -> Path | None:
        return checkpoint_dir / tag if checkpoint_dir is not None else None

    histories = []

    def fit_predict(train_texts: list[str], train_y: np.ndarray, texts: list[str], fold: int) -> np.ndarray:
        train_rows, test_rows = corpus.splits[fold]
        tag = f"fold-{fold}"
        model, index, history = _fit(tokens, corpus.y, train_rows, test_rows, n_classes, params, seed + fold, device,
                            part_dir(tag), run, tag)
        histories.append(history)
        x, lengths = encode(index, [tokens[i] for i in test_rows], params.max_length)
        return probabilities(model, x, lengths, device)

    result = cross_validate(corpus, fit_predict, "rnn", with_fold=True)
    everything = np.arange(len(tokens))
    model, index, history = _fit(tokens, corpus.y, everything, everything[:0], n_classes, params,
                        seed + len(corpus.splits), device, part_dir("final"), run, "final")

    def write(tmp: Path) -> None:
        torch.save({k: t.detach().cpu() for k, t in model.state_dict().items()}, tmp / MODEL_FILE)
        save_vocabulary(tmp / "vocabulary.json", tokenize, index, params.max_length)
        write_json(tmp / "history.json", history)
        write_json(tmp / "cv_history.json", {k: np.mean([h[k] for h in histories], axis=0).round(4).tolist()
                                              for k in histories[0]})

    folds = {"main": result["accuracy"], "vocabulary_size": len(index) - len(RESERVED),
             "parameters": parameter_count(model), "device": device}
    return save_model(model_dir, topic="rnn", fmt="torch", params=params, seed=seed, corpus=corpus,
                      oof=result["oof"], folds=folds, started=started, write=write)


def predict_proba(model_dir: Path, params: Any, texts: Sequence[str]) -> np.ndarray:
    """(len(texts), n classes) probabilities of a trained rnn text model (``params`` its Params), on the CPU."""
    tokenize, index, length = load_vocabulary(model_dir / "vocabulary.json")
    model = load_model(model_dir, params, params.embedding_size, len(read_model_info(model_dir)["labels"]),
                       vocabulary=len(index))
    x, lengths = encode(index, [tokenize(str(t)) for t in texts], length)
    return probabilities(model, x, lengths, "cpu")


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path, params: Any) -> dict:
    """The shared out-of-fold evaluation (majority-class and TF-IDF baselines on the same folds)
    and the learning curves averaged over the folds (validation: each fold's held-out texts)."""
    report = evaluate_text(dataset_dir, model_dir, out_dir)
    report["plots"].append(shared.plot_learning_curves(read_json(model_dir / "cv_history.json"),
                                                       out_dir / "learning_curves.png"))
    return report
