"""What the text classifiers (the three text topics, and rnn on text) share: folds, the saved model,
evaluation and baselines.

Training is cross-validation on the artifact's folds (``fold_indices``: k stratified folds, or one
held-out test split for large corpora): for each fold a fresh model learns the other rows, and its
class probabilities for the fold's rows are kept (out-of-fold, "oof"). Evaluation scores those,
so every text is predicted by a model that never saw it, and the spread over folds is reported
(mean ± std). A final model is then fitted on all rows; that is the one `dlx predict` uses.

A model dir holds, beside ``params.json`` and ``train.json`` (what every run has):
``text_model.json`` (topic, label names, format), ``oof.npz`` (out-of-fold probabilities and the
folds and labels they belong to), ``folds.json`` (per-fold figures) and the model itself:
``model.skops`` (format "sklearn": a pipeline from raw texts to probabilities, with the word index
inside it; written with skops, which stores objects as data instead of pickle and loads only
the types it is told to trust, so a model from S3 or a champion cannot run code on load) or
``model.keras`` with ``vocabulary.json`` (format "keras": the tokenizer settings, word index and
sequence length the network reads), or the rnn topic's torch model (format "torch");
components.topics.predict reads them all.
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components import evaluate, progress
from components.errors import DlxError
from components.protocol import scored_on
from components.files import atomic_dir, read_json, write_json
from components.params import help_field, to_dict
from components.topics.text.tokenizer import Tokenizer, WordIndex

DATASETS = ("text-sample", "sentiment-sentences", "text-file:PATH")
MODEL_FILE = "text_model.json"
FitPredict = Callable[[list[str], np.ndarray, list[str]], np.ndarray]
"""(training texts, their labels, texts to score) -> (n scored, n classes) probabilities."""


@dataclass(frozen=True)
class TextParams:
    """Tokenizer and word-index settings every text topic has (see components.topics.text.tokenizer)."""

    lowercase: bool = help_field(True, "lower-case the text before tokenising")
    strip_accents: bool = help_field(False, "drop accents (café -> cafe) after Unicode normalisation")
    ngrams: int = help_field(1, "longest word n-gram used as a token (2: single words and word pairs)", at_least=1)
    min_count: int = help_field(1, "keep terms found in at least this many training texts", at_least=1)
    max_words: int = help_field(0, "keep only this many most frequent terms (0: all)", at_least=0)

    def tokenizer(self) -> Tokenizer:
        return Tokenizer(lowercase=self.lowercase, strip_accents=self.strip_accents, ngrams=self.ngrams)

    def word_index(self, texts: Sequence[str]) -> WordIndex:
        tokenize = self.tokenizer()
        return WordIndex.fit((tokenize(t) for t in texts), self.min_count, self.max_words)


@dataclass(frozen=True)
class Corpus:
    """A prepared text artifact in the form the topics use."""

    texts: list[str]
    y: np.ndarray
    fold: np.ndarray
    labels: list[str]
    splits: list[tuple[np.ndarray, np.ndarray]]
    meta: dict


def load_corpus(dataset_dir: Path) -> Corpus:
    from components.data.text import fold_indices, load_texts

    table, labels, meta = load_texts(dataset_dir)
    return Corpus(table["text"].astype(str).tolist(), table["label"].to_numpy(np.int64),
                  table["fold"].to_numpy(np.int64), labels, fold_indices(table, meta), meta)


def full_proba(model: Any, x: Any, n_classes: int) -> np.ndarray:
    """A scikit-learn classifier's probabilities with one column per class, also for classes
    absent from its training rows (their column is 0)."""
    out = np.zeros((x.shape[0] if hasattr(x, "shape") else len(x), n_classes))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def cross_validate(corpus: Corpus, fit_predict: FitPredict | Callable[..., np.ndarray], name: str,
                   with_fold: bool = False) -> dict:
    """Out-of-fold probabilities (NaN rows for texts never scored: holdout's training rows), the
    accuracy of each fold and the seconds taken; prints a line per fold.

    ``with_fold``: ``fit_predict`` also takes the fold number (for per-fold checkpoints)."""
    oof = np.full((len(corpus.y), len(corpus.labels)), np.nan)
    accuracies, started = [], time.perf_counter()
    for f, (train, test) in enumerate(corpus.splits):
        tick = time.perf_counter()
        progress.phase(f"{name}: fold {f + 1}/{len(corpus.splits)}")
        args = ([corpus.texts[i] for i in train], corpus.y[train], [corpus.texts[i] for i in test])
        oof[test] = fit_predict(*args, f) if with_fold else fit_predict(*args)
        accuracies.append(float((oof[test].argmax(axis=1) == corpus.y[test]).mean()))
        print(f"{name}: fold {f + 1}/{len(corpus.splits)}  accuracy {accuracies[-1]:.4f}  "
              f"({len(train)} train, {len(test)} test, {time.perf_counter() - tick:.1f} s)", flush=True)
    seconds = time.perf_counter() - started
    print(f"{name}: accuracy {np.mean(accuracies):.4f} ± {np.std(accuracies):.4f} over {len(accuracies)} fold(s)",
          flush=True)
    return {"oof": oof, "accuracy": summary(accuracies), "seconds": round(seconds, 2)}


def summary(accuracies: Sequence[float]) -> dict:
    """Mean ± std (population) of per-fold accuracies, and the folds' own figures."""
    return {"accuracy": round(float(np.mean(accuracies)), 4), "accuracy_std": round(float(np.std(accuracies)), 4),
            "folds": [round(float(a), 4) for a in accuracies]}


def save_model(model_dir: Path, *, topic: str, fmt: str, params: Any, seed: int, corpus: Corpus, oof: np.ndarray,
               folds: dict, started: float, write: Callable[[Path], None]) -> dict:
    """Write the model dir atomically: ``write(tmp)`` adds the model files; returns train.json."""
    seconds = time.perf_counter() - started
    record = {"train_seconds": round(seconds, 2), "seed": seed, "folds": len(corpus.splits),
                "oof_accuracy": folds["main"]["accuracy"]}
    with atomic_dir(model_dir) as tmp:
        write(tmp)
        np.savez_compressed(tmp / "oof.npz", probabilities=oof, fold=corpus.fold, y=corpus.y)
        write_json(tmp / "folds.json", folds)
        write_json(tmp / MODEL_FILE, {"topic": topic, "format": fmt, "labels": corpus.labels})
        write_json(tmp / "params.json", to_dict(params))
        write_json(tmp / "train.json", record)
    print(f"{topic}: final model fitted on all {len(corpus.y)} texts; {seconds:.1f} s in all", flush=True)
    return record


# --- baselines and evaluation -------------------------------------------------------------------

def majority_fit_predict(train_texts: list[str], train_y: np.ndarray, texts: list[str], n_classes: int) -> np.ndarray:
    """Always the most frequent training class, with the training class shares as probabilities."""
    shares = np.bincount(train_y, minlength=n_classes) / len(train_y)
    out = np.zeros((len(texts), n_classes))
    out[:, int(np.argmax(shares))] = 1.0
    return out


def tfidf_logreg(seed: int = 0) -> Any:
    """The reference model: scikit-learn's own word and word-pair TF-IDF, logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                         LogisticRegression(C=10.0, max_iter=2000, random_state=seed))


def baselines(corpus: Corpus, seed: int) -> dict[str, dict]:
    """Majority class and TF-IDF + logistic regression, on the same folds as the model."""
    n = len(corpus.labels)

    def majority(train_texts: list[str], train_y: np.ndarray, texts: list[str]) -> np.ndarray:
        return majority_fit_predict(train_texts, train_y, texts, n)

    def tfidf(train_texts: list[str], train_y: np.ndarray, texts: list[str]) -> np.ndarray:
        model = tfidf_logreg(seed).fit(train_texts, train_y)
        return full_proba(model, texts, n)

    found = {}
    progress.phase("cross-validating the baselines (majority class, TF-IDF + logistic regression)")
    for name, fit_predict in (("majority_class", majority), ("tfidf_logreg", tfidf)):
        result = cross_validate(corpus, fit_predict, f"baseline {name}")["accuracy"]
        found[name] = {"accuracy": result["accuracy"], "accuracy_std": result["accuracy_std"]}
    return found


def load_oof(corpus: Corpus, model_dir: Path, dataset_dir: Path) -> np.ndarray:
    """The model's out-of-fold probabilities, checked to belong to this data set's rows and folds."""
    with np.load(model_dir / "oof.npz") as saved:
        if not (np.array_equal(saved["fold"], corpus.fold) and np.array_equal(saved["y"], corpus.y)):
            raise DlxError(f"{model_dir} was cross-validated on other texts or folds than {dataset_dir}; "
                           "evaluate it with the dataset artifact it was trained on")
        return saved["probabilities"]


def evaluate_text(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Out-of-fold accuracy (mean ± std over folds), per-class figures and confusion matrix of all
    scored texts, the two baselines on the same folds, and the confusion-matrix plot."""
    corpus = load_corpus(dataset_dir)
    oof = load_oof(corpus, model_dir, dataset_dir)
    seed = read_json(model_dir / "train.json")["seed"]
    scored = ~np.isnan(oof).any(axis=1)
    normalised = oof[scored] / oof[scored].sum(axis=1, keepdims=True)
    report = evaluate.classification_report(corpus.y[scored], normalised, corpus.labels)
    per_fold = [float((oof[test].argmax(axis=1) == corpus.y[test]).mean()) for _, test in corpus.splits]
    figures = summary(per_fold)
    report["test"] = {"accuracy": figures["accuracy"], "accuracy_std": figures["accuracy_std"],
                      "loss": report["test"]["loss"]}
    report["folds"] = [{"fold": f, "texts": len(test), "accuracy": a}
                       for f, ((_, test), a) in enumerate(zip(corpus.splits, figures["folds"]))]
    report["protocol"] = corpus.meta["protocol"]
    report["baseline"] = baselines(corpus, seed)
    report["plots"] = [evaluate.plot_confusion_matrix(report["confusion_matrix"], out_dir / "confusion_matrix.png",
                                                      scored_on(report["protocol"]))]
    return report


# --- the saved model ------------------------------------------------------------------------------

def read_model_info(model_dir: Path) -> dict:
    path = model_dir / MODEL_FILE
    if not path.is_file():
        raise DlxError(f"{model_dir}: not a text model (no {MODEL_FILE}); train one with "
                       "`dlx run text-vectors|random-embeddings|word-embeddings|rnn`")
    return read_json(path)


def save_vocabulary(path: Path, tokenizer: Tokenizer, index: WordIndex, length: int = 0) -> None:
    """The tokenizer settings and word index (and the network's sequence length) as JSON."""
    write_json(path, {"tokenizer": dataclasses.asdict(tokenizer), "length": length, "terms": list(index.terms)})


def load_vocabulary(path: Path) -> tuple[Tokenizer, WordIndex, int]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Tokenizer(**data["tokenizer"]), WordIndex(tuple(data["terms"])), int(data["length"])


def probabilities(keras: Any, model: Any, sequences: np.ndarray, batch: int = 4096) -> np.ndarray:
    """A Keras classifier's class probabilities, called eagerly batch by batch: ``model.predict``
    would trace a new graph for every model of the fold loop (and TensorFlow warns of it)."""
    parts = [keras.ops.convert_to_numpy(model(sequences[i:i + batch], training=False))
             for i in range(0, len(sequences), batch)]
    return np.concatenate(parts).astype(np.float64)


SKLEARN_MODEL = "model.skops"
TRUSTED_TYPES = ("components.topics.text.tokenizer.Tokenizer", "components.topics.text.random_embeddings.pool",
                 "components.topics.text.text_vectors.LogCountRatio")
"""The project's own types a scikit-learn text pipeline holds; skops trusts its own list of
scikit-learn and NumPy types, and any other type in a file is refused."""


def save_sklearn(model: Any, model_dir: Path) -> None:
    import skops.io

    skops.io.dump(model, model_dir / SKLEARN_MODEL)


def load_sklearn(model_dir: Path) -> Any:
    """The pipeline in ``model_dir``, refused in one line when the file names a type nobody trusted."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    path = model_dir / SKLEARN_MODEL
    try:
        return skops.io.load(path, trusted=list(TRUSTED_TYPES))
    except UntrustedTypesFoundException as exc:
        raise DlxError(f"{path} holds types dlx does not trust ({exc}); it was not loaded: retrain the model "
                       "with this version of dlx") from None
    except FileNotFoundError:
        raise DlxError(f"{path} is missing; the run directory is incomplete (retrain it)") from None
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds for a damaged file
        raise DlxError(f"{path} is not a readable skops model ({type(exc).__name__}: {exc}); retrain it") from None

