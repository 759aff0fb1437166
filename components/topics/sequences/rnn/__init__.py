"""rnn: recurrent networks written two ways, a cell by hand and torch's LSTM/GRU, on two tasks.

``cell=manual`` is the Elman recurrence written out with matrix multiplies (tanh or relu,
identity-initialised recurrent weights as in the seed's IRNN; see ``cells``), ``cell=lstm|gru``
are torch.nn.LSTM/GRU. Gradients are clipped by their global norm. The task follows the data set:
a signal (``sine``) is next-value regression from windows of past values, judged by MSE against
predicting the last value; labelled text (``text-sample``, ``sentiment-sentences``,
``text-file:PATH``) is classification of characters or words in packed padded batches, judged by
accuracy over the artifact's folds against the majority class. The topic's main metric therefore
differs per data set (``dataset_metrics``).

The package: ``cells`` (the recurrent layers and clipping), ``network`` (the model and its
training), ``sine`` and ``text`` (the two tasks). torch loads inside train/evaluate only (the
task modules import it), so listing topics stays fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence
from typing import Literal

import numpy as np

from components.epoch_log import run_identity
from components.errors import DlxError
from components.files import read_json
from components.params import from_dict, help_field
from components.registry import Topic
from components.topics.torch_loop import TorchParams, pick_device

TEXT_DATASETS = ("text-sample", "sentiment-sentences", "text-file:PATH")


@dataclass(frozen=True)
class Params(TorchParams):
    cell: Literal["manual", "lstm", "gru"] = help_field(
        "manual", "recurrent layer: the cell written by hand, or torch.nn.LSTM / torch.nn.GRU")
    nonlinearity: Literal["relu", "tanh"] = help_field("relu", "activation of the hand-written cell (manual only)")
    identity_init: bool = help_field(
        True, "manual only: recurrent weights start as the identity, biases at zero (IRNN)")
    hidden_size: int = help_field(64, "units of the hidden state", at_least=1)
    layers: int = help_field(1, "stacked recurrent layers", at_least=1)
    epochs: int = help_field(20, "passes over the training data (per fold for text)", at_least=1)
    batch_size: int = help_field(64, "sequences per step", at_least=1)
    learning_rate: float = help_field(0.005, "Adam step size", above=0)
    clip: float = help_field(1.0, "largest global L2 norm of the gradients (rescaled above it); 0 = no clipping",
                             at_least=0)
    window: int = help_field(48, "signal task: past values the model sees to predict the next one", at_least=1)
    tokens: Literal["char", "word"] = help_field("word", "text task: read texts as characters or words")
    embedding_size: int = help_field(32, "text task: size of each token's embedding vector", at_least=1)
    max_length: int = help_field(200, "text task: tokens kept per text (the first ones); longer texts are cut",
                                 at_least=1)
    lowercase: bool = help_field(True, "text task: lower-case the text before tokenising")
    min_count: int = help_field(1, "text task: keep tokens found in at least this many training texts", at_least=1)
    max_words: int = help_field(20000, "text task: keep only this many most frequent tokens (0: all)", at_least=0)


def task_of(dataset_dir: Path) -> str:
    """"text" for a labelled-text artifact, "sequences" for anything else (the signal loader checks it)."""
    meta_path = Path(dataset_dir) / "meta.json"
    if not meta_path.is_file():
        raise DlxError(f"{dataset_dir}: not a dataset artifact (no meta.json); re-run the prepare step")
    kind = (read_json(meta_path).get("schema") or {}).get("kind")
    if kind not in (None, "text"):
        raise DlxError(f"{dataset_dir}: holds {kind} data; rnn reads a signal (sine) or labelled text "
                       f"({', '.join(TEXT_DATASETS)})")
    return kind or "sequences"


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Train on the data set's task and write the model dir (model.pt, params.json, history, train.json).

    With ``checkpoint_dir`` the weights, optimizer state and epoch log are saved there after every
    epoch; a rerun of the same run continues after the last saved epoch.
    """
    task = task_of(dataset_dir)
    device = pick_device(params.device)
    run = run_identity(params, seed, read_json(Path(dataset_dir) / "meta.json"))
    if task == "text":
        from components.topics.sequences.rnn import text

        return text.train(Path(dataset_dir), Path(model_dir), params, seed, checkpoint_dir, device, run)
    from components.topics.sequences.rnn import sine

    return sine.train(Path(dataset_dir), Path(model_dir), params, seed, checkpoint_dir, device, run)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Signal: test MSE vs persistence/mean and a rollout plot. Text: accuracy vs the majority class."""
    params = from_dict(Params, read_json(Path(model_dir) / "params.json"), "rnn")
    if task_of(dataset_dir) == "text":
        from components.topics.sequences.rnn import text

        return text.evaluate(Path(dataset_dir), Path(model_dir), Path(out_dir), params)
    from components.topics.sequences.rnn import sine

    return sine.evaluate(Path(dataset_dir), Path(model_dir), Path(out_dir), params)


def predict_proba(model_dir: Path, texts: Sequence[str]) -> np.ndarray:
    """Class probabilities of new texts from a model trained on text (components.topics.predict)."""
    from components.topics.sequences.rnn import text

    return text.predict_proba(model_dir, from_dict(Params, read_json(model_dir / "params.json"), "rnn"), texts)


TOPIC = Topic(
    name="rnn", description="recurrent cell by hand or LSTM/GRU; series, text",
    framework="pytorch", datasets=("sine", *TEXT_DATASETS), params=Params, train=train, evaluate=evaluate,
    main_metric="mse", higher_is_better=False,
    references={"tfidf_logreg": "a strong sparse classic"},
    dataset_metrics={name: ("accuracy", True) for name in TEXT_DATASETS},
    presets={"sentiment-sentences": {"epochs": "8"}},
)
