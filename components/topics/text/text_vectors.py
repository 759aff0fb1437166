"""text-vectors: sparse document vectors from a word index, and the hashing trick, each feeding a
logistic regression.

The tokenizer and word index are this project's (components.topics.text.tokenizer: the lesson); the
vectors are scikit-learn's, given that index as their vocabulary and the tokenizer as analyzer:

- ``binary``: 1 where the document has the term (set of words),
- ``counts``: how often it has it (bag of words),
- ``tfidf``: counts damped by 1 + log (``sublinear_tf``) and weighted by inverse document
  frequency, rows L2-normalised,
- ``hashing``: no vocabulary at all; each term's column is its MurmurHash3 modulo
  2**``hash_bits`` (scikit-learn's HashingVectorizer), then TF-IDF as above. Terms sharing a
  bucket collide; the collision table shows how often, by hand, for a range of bucket counts.
- ``nb``: the binary vectors with each term scaled by its naive-Bayes log-count ratio, how much
  likelier it is in one class's texts than in the other's (Wang and Manning's NBSVM features,
  "Baselines and Bigrams", 2012): the classifier starts from what each word says on its own. Two
  classes only.

Every vectoriser is cross-validated on the same folds (the table in metrics.json); the one named
by ``vectorizer`` is the model's own score and is refitted on all texts for `dlx predict`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components import evaluate as shared
from components.errors import DlxError
from components.files import read_json
from components.params import help_field
from components.registry import Topic
from components.topics.text.common import (DATASETS, TextParams, cross_validate, evaluate_text, full_proba,
                                           load_corpus, save_model, save_sklearn, save_vocabulary)
from components.topics.text.tokenizer import Tokenizer, WordIndex

VECTORIZERS = ("binary", "counts", "tfidf", "hashing", "nb")
COLLISION_BITS = (8, 10, 12, 14, 16, 18, 20)


@dataclass(frozen=True)
class Params(TextParams):
    """Defaults: naive-Bayes-scaled presence of every word and word pair, a lightly regularised
    logistic regression; chosen on validation texts only (`python -m benchmarks.text --choose`)."""

    ngrams: int = help_field(2, "longest word n-gram used as a token (2: single words and word pairs)", at_least=1)
    min_count: int = help_field(1, "keep terms found in at least this many training texts", at_least=1)
    vectorizer: Literal["binary", "counts", "tfidf", "hashing", "nb"] = help_field(
        "nb", "the document vectors of the model that is scored and saved for `dlx predict` (nb: two classes)")
    compare: bool = help_field(True, "also cross-validate the other vectorisers (the lesson's table)")
    hash_bits: int = help_field(18, "the hashing trick's 2**hash_bits buckets", at_least=1, at_most=30)
    C: float = help_field(3.0, "inverse L2 strength of the logistic regression (larger: less regularised)", above=0)
    nb_alpha: float = help_field(0.25, "the nb ratio's smoothing: a count added to every term in each class", above=0)


class LogCountRatio:
    """Scale each column of binary document vectors by log(P(term | positive) / P(term | negative)),
    the probabilities smoothed by ``alpha`` (a scikit-learn transformer: fitted on the training texts)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, x: Any, y: np.ndarray) -> LogCountRatio:
        classes = np.unique(y)
        if len(classes) != 2:
            raise DlxError(f"the nb vectors compare two classes and these texts have {len(classes)}; "
                           "choose another --param vectorizer (tfidf)")
        positive = np.asarray(y) == classes[1]
        p = self.alpha + np.asarray(x[positive].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(x[~positive].sum(axis=0)).ravel()
        self.ratio_ = np.log(p / p.sum()) - np.log(q / q.sum())
        return self

    def transform(self, x: Any) -> Any:
        return x.multiply(self.ratio_).tocsr()

    def fit_transform(self, x: Any, y: np.ndarray) -> Any:
        return self.fit(x, y).transform(x)

    def get_params(self, deep: bool = True) -> dict:
        return {"alpha": self.alpha}

    def set_params(self, **values: Any) -> LogCountRatio:
        self.alpha = values.get("alpha", self.alpha)
        return self


def pipeline(kind: str, tokenize: Tokenizer, index: WordIndex | None, params: Params, seed: int) -> Any:
    """Texts → ``kind`` vectors → logistic regression, as one scikit-learn pipeline."""
    from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if kind == "hashing":
        steps = [HashingVectorizer(analyzer=tokenize, n_features=2 ** params.hash_bits, alternate_sign=False,
                                   norm=None), TfidfTransformer(sublinear_tf=True)]
    else:
        steps = [CountVectorizer(analyzer=tokenize, vocabulary=index.vocabulary(), binary=kind in ("binary", "nb"))]
        if kind == "tfidf":
            steps.append(TfidfTransformer(sublinear_tf=True))
        if kind == "nb":
            steps.append(LogCountRatio(params.nb_alpha))
    return make_pipeline(*steps, LogisticRegression(C=params.C, max_iter=2000, random_state=seed))


def fit(kind: str, texts: list[str], y: np.ndarray, params: Params, seed: int) -> tuple[Any, WordIndex | None]:
    """The fitted pipeline and the word index it was built on (None for hashing: it needs none)."""
    index = None if kind == "hashing" else params.word_index(texts)
    return pipeline(kind, params.tokenizer(), index, params, seed).fit(texts, y), index


def buckets(terms: list[str], bits: int) -> np.ndarray:
    """Each term's column under the hashing trick: |MurmurHash3_32(term, seed 0)| mod 2**bits,
    exactly as scikit-learn's HashingVectorizer places it."""
    from sklearn.utils import murmurhash3_32

    return np.array([abs(murmurhash3_32(t, seed=0)) % 2 ** bits for t in terms], dtype=np.int64)


def colliding(bucket_of: np.ndarray) -> int:
    """How many terms share their bucket with at least one other term."""
    sizes = np.bincount(bucket_of)
    return int(sizes[sizes > 1].sum())


def collision_table(terms: list[str], bits: tuple[int, ...] = COLLISION_BITS) -> list[dict]:
    """Per bucket count: terms, buckets, % of terms colliding, and the % expected by chance,
    1 - (1 - 1/B)^(V - 1) (the chance that none of the other V - 1 terms lands in a term's bucket)."""
    rows = []
    for b in bits:
        n = 2 ** b
        hit = colliding(buckets(terms, b))
        rows.append({"words": len(terms), "buckets": n, "colliding_words": hit,
                     "pct_colliding": round(100 * hit / max(len(terms), 1), 2),
                     "pct_expected": round(100 * (1 - (1 - 1 / n) ** max(len(terms) - 1, 0)), 2)})
    return rows


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    """Cross-validate the vectorisers, then fit the chosen one on all texts.

    No checkpoint: each fit takes seconds, so a rerun simply starts over."""
    started = time.perf_counter()
    corpus = load_corpus(dataset_dir)
    n = len(corpus.labels)
    if n != 2 and params.vectorizer == "nb":
        raise DlxError(f"the nb vectors (the default) compare two classes and this data set has {n} "
                       f"({', '.join(corpus.labels)}); pass --param vectorizer=tfidf")
    kinds = [params.vectorizer] + [k for k in VECTORIZERS if k != params.vectorizer and params.compare
                                   and (k != "nb" or n == 2)]
    results = {}
    for kind in kinds:
        def fit_predict(train_texts: list[str], train_y: np.ndarray, texts: list[str], kind: str = kind) -> np.ndarray:
            model, _ = fit(kind, train_texts, train_y, params, seed)
            return full_proba(model, texts, n)

        results[kind] = cross_validate(corpus, fit_predict, kind)
    model, index = fit(params.vectorizer, corpus.texts, corpus.y, params, seed)
    vocabulary = params.word_index(corpus.texts) if index is None else index
    words = list(vocabulary.terms[2:])
    folds = {"main": results[params.vectorizer]["accuracy"],
             "vectorizers": {k: {**r["accuracy"], "train_seconds": r["seconds"]} for k, r in results.items()},
             "hashing_collisions": collision_table(words), "vocabulary_size": len(words)}

    def write(tmp: Path) -> None:
        save_sklearn(model, tmp)
        save_vocabulary(tmp / "vocabulary.json", params.tokenizer(), vocabulary)

    return save_model(model_dir, topic="text-vectors", fmt="sklearn", params=params, seed=seed, corpus=corpus,
                      oof=results[params.vectorizer]["oof"], folds=folds, started=started, write=write)


def plot_vectorizers(table: dict, path: Path) -> str:
    """Accuracy per vectoriser, mean with the fold spread as error bars."""
    plt = shared.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(table)
    ax.bar(names, [table[k]["accuracy"] for k in names], yerr=[table[k]["accuracy_std"] for k in names], capsize=4)
    low = min(table[k]["accuracy"] - table[k]["accuracy_std"] for k in names)
    ax.set(ylim=(max(0.0, low - 0.05), 1.0), ylabel="accuracy (out-of-fold)", title="document vectors + logistic regression")
    ax.grid(axis="y", alpha=0.3)
    return shared.save_figure(fig, path)


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared text evaluation plus the per-vectoriser table and the hashing-collision table."""
    result = evaluate_text(dataset_dir, model_dir, out_dir)
    folds = read_json(model_dir / "folds.json")
    result["vectorizers"] = folds["vectorizers"]
    result["hashing_collisions"] = folds["hashing_collisions"]
    result["vocabulary_size"] = folds["vocabulary_size"]
    result["plots"].append(plot_vectorizers(folds["vectorizers"], out_dir / "vectorizers.png"))
    for row in folds["hashing_collisions"]:
        print(f"hashing {row['words']} words into {row['buckets']:>8} buckets: {row['pct_colliding']:6.2f}% collide "
              f"(expected {row['pct_expected']:.2f}%)", flush=True)
    return result


TOPIC = Topic(
    name="text-vectors",
    description="word index, bag-of-words/TF-IDF/hashing/NB + logreg",
    framework="scikit-learn", datasets=DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="accuracy",
    references={"tfidf_logreg": "TF-IDF and logistic regression in scikit-learn"},
)
