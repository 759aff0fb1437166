"""random-embeddings: every word a fixed random dense vector, a document the pool of its words'.

Nothing about the vectors is learned: word i of the (training) word index gets row i of a seeded
Gaussian table of width ``dimension``. The mean of a document's word vectors is then a random
linear projection of its normalised bag of words (the sum: of its counts), so by the
Johnson–Lindenstrauss argument it keeps the geometry of the sparse vectors better the wider it
is; max pooling is the non-linear variant. Words outside the index are skipped (a document with
none is the zero vector). A logistic regression on standardised pooled vectors classifies —
scikit-learn rather than a Keras head: it is convex, seconds to fit, and it is what text-vectors
uses on the sparse vectors, so the two compare like for like. The benchmark sweeps ``dimension``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components.params import help_field
from components.registry import Topic
from components.topics.text.common import (DATASETS, TextParams, cross_validate, evaluate_text, full_proba,
                                           load_corpus, save_model, save_sklearn, save_vocabulary)


@dataclass(frozen=True)
class Params(TextParams):
    dimension: int = help_field(1024, "width of each word's random vector", at_least=1)
    pooling: Literal["mean", "sum", "max"] = help_field("mean", "how word vectors combine into the document's")
    C: float = help_field(0.01, "inverse L2 strength of the logistic regression (larger: less regularised)", above=0)


def random_table(words: int, dimension: int, seed: int) -> np.ndarray:
    """(words, dimension) float32 N(0, 1/dimension) rows: the fixed word vectors."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((words, dimension)) / np.sqrt(dimension)).astype(np.float32)


def pool(counts: Any, table: np.ndarray, pooling: str) -> np.ndarray:
    """Document vectors from a (documents, words) sparse count matrix: mean, sum or max of the
    vectors of the words present (mean and sum weighted by count). Module-level, so the fitted
    pipeline pickles."""
    from scipy import sparse

    counts = sparse.csr_matrix(counts, dtype=np.float32)
    if pooling == "sum":
        return np.asarray(counts @ table)
    if pooling == "mean":
        total = np.maximum(np.asarray(counts.sum(axis=1)), 1.0)
        return np.asarray(counts @ table) / total
    out = np.zeros((counts.shape[0], table.shape[1]), np.float32)
    present = np.diff(counts.indptr) > 0
    if present.any():
        starts = counts.indptr[:-1][present]
        out[present] = np.maximum.reduceat(table[counts.indices], starts, axis=0)
    return out


def fit(texts: list[str], y: np.ndarray, params: Params, seed: int) -> tuple[Any, Any]:
    """Word index of ``texts`` → counts → pooled random vectors → scaler → logistic regression."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    index = params.word_index(texts)
    table = random_table(len(index) - 2, params.dimension, seed)
    model = make_pipeline(
        CountVectorizer(analyzer=params.tokenizer(), vocabulary=index.vocabulary()),
        FunctionTransformer(pool, kw_args={"table": table, "pooling": params.pooling}, accept_sparse=True),
        StandardScaler(),
        LogisticRegression(C=params.C, max_iter=2000, random_state=seed),
    )
    return model.fit(texts, y), index


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Cross-validate, then fit on all texts. No checkpoint: a fit takes seconds."""
    started = time.perf_counter()
    corpus = load_corpus(dataset_dir)
    n = len(corpus.labels)

    def fit_predict(train_texts: list[str], train_y: np.ndarray, texts: list[str]) -> np.ndarray:
        return full_proba(fit(train_texts, train_y, params, seed)[0], texts, n)

    result = cross_validate(corpus, fit_predict, f"random {params.pooling} d={params.dimension}")
    model, index = fit(corpus.texts, corpus.y, params, seed)

    def write(tmp: Path) -> None:
        save_sklearn(model, tmp)
        save_vocabulary(tmp / "vocabulary.json", params.tokenizer(), index)

    folds = {"main": result["accuracy"], "dimension": params.dimension, "pooling": params.pooling}
    return save_model(model_dir, topic="random-embeddings", fmt="sklearn", params=params, seed=seed, corpus=corpus,
                      oof=result["oof"], folds=folds, started=started, write=write)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared out-of-fold evaluation of text classifiers (components.topics.text.common)."""
    return evaluate_text(dataset_dir, model_dir, out_dir)


TOPIC = Topic(
    name="random-embeddings",
    description="fixed random word vectors pooled + logreg",
    framework="scikit-learn", datasets=DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="accuracy",
    references={"tfidf_logreg": "the sparse vectors random ones approximate"},
)
