"""`dlx predict RUN TEXT...`: classify new texts with the model of a finished text run."""
from __future__ import annotations

import argparse
import os

from components.errors import DlxError
from dlx.arguments import add_runs_dir, require_train_extra, run_model_dir


def cmd_predict(args: argparse.Namespace) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    require_train_extra("predict")
    from components.topics.text.common import MODEL_FILE
    from components.topics.predict import predict

    texts = [t for t in args.texts if t.strip()]
    if not texts:
        raise DlxError("no text to classify; pass one or more non-empty texts in quotes")
    model = run_model_dir(args, command="predict", marker=MODEL_FILE,
                          takes=("text-vectors", "random-embeddings", "word-embeddings", "rnn"))
    labels, probabilities = predict(model, texts)
    width = max(len(name) for name in labels)
    for text, row in zip(texts, probabilities):
        best = int(row.argmax())
        print(f"{labels[best]:<{width}}  {row[best]:.3f}  {text}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `dlx predict` to the `dlx` parser."""
    predict = sub.add_parser("predict", help="classify texts with a finished text run's model")
    predict.add_argument("run", metavar="RUN", help="a run of a text topic: its id (or a unique prefix) or directory")
    add_runs_dir(predict, "where runs are")
    predict.add_argument("texts", metavar="TEXT", nargs="+", help="texts to classify (quote each one)")
    predict.set_defaults(func=cmd_predict)
