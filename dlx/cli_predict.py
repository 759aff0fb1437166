"""`dlx predict RUN_DIR TEXT...`: classify new texts with the model of a finished text run."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from components.errors import DlxError
from components.files import read_json

MODEL_SUBDIR = Path("train") / "model"
"""Where `dlx run` (pipelines.local) leaves the train step's model artifact in a run directory."""


def model_dir_of(run_dir: Path) -> Path:
    """The text model of ``run_dir`` (a `dlx run` directory, or a model directory itself)."""
    from components.topics.text_common import MODEL_FILE

    if not run_dir.is_dir():
        raise DlxError(f"{run_dir}: no such run directory; pass one that `dlx run` created (see `dlx runs`)")
    if (run_dir / MODEL_FILE).is_file():
        return run_dir
    model_dir = run_dir / MODEL_SUBDIR
    if not model_dir.is_dir():
        raise DlxError(f"{run_dir}: not a complete dlx run directory (no {MODEL_SUBDIR}/); pass the directory "
                       "`dlx run` printed, e.g. runs/text-vectors-<timestamp>")
    if not (model_dir / MODEL_FILE).is_file():
        topic = read_json(run_dir / "metrics.json").get("topic", "?") if (run_dir / "metrics.json").is_file() else "?"
        raise DlxError(f"{run_dir}: a run of topic {topic}, which has no text model; `dlx predict` takes runs of "
                       "text-vectors, random-embeddings, word-embeddings or rnn (on a text data set)")
    return model_dir


def cmd_predict(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from components.topics.text_common import predict

    texts = [t for t in args.texts if t.strip()]
    if not texts:
        raise DlxError("no text to classify; pass one or more non-empty texts in quotes")
    labels, probabilities = predict(model_dir_of(Path(args.run_dir)), texts)
    width = max(len(name) for name in labels)
    for text, row in zip(texts, probabilities):
        best = int(row.argmax())
        print(f"{labels[best]:<{width}}  {row[best]:.3f}  {text}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dlx predict` to the `dlx` parser."""
    predict = sub.add_parser("predict", help="classify texts with a finished text run's model")
    predict.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of a text topic (from `dlx run`)")
    predict.add_argument("texts", metavar="TEXT", nargs="+", help="texts to classify (quote each one)")
    predict.set_defaults(func=cmd_predict)
