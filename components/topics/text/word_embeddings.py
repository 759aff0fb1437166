"""word-embeddings: a Keras network that learns its word vectors for the task (fastText's shape).

Texts become index sequences through the word index (components.topics.text.tokenizer: 0 padding,
1 out-of-vocabulary), cut or padded to ``max_length``. An ``Embedding`` layer with
``mask_zero=True`` looks each index up; the mask tells the pooling layer to ignore the padding,
so a short sentence is the mean (or max) of its own words only. Dropout, an optional hidden
layer, and a softmax give the class. With ``ngrams=2`` word pairs are tokens too and get their
own vectors ("not good" is not "good").

Each fold trains a fresh network on a word index of its training texts only and is validated on
its held-out fold every epoch (the learning curves are the folds' mean). The final network learns
all texts (no rows are left to validate it on, so its own history's val_* figures are on its
training texts); its embedding matrix is saved (``embeddings.npy``, rows in word-index order) and
the evaluation lists nearest neighbours (cosine) of a few words and draws the most frequent words
on the matrix's first two principal components, as PNG and as interactive Bokeh HTML, coloured by
the class the word alone is given.

Checkpoint/resume: with a checkpoint dir every fold's finished model is kept there and a fold in
progress resumes from Keras's backup (``fit_and_save``), so an interrupted run carries on.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from components import evaluate as shared
from components.files import read_json, write_json
from components.params import help_field, to_dict
from components.registry import Topic
from components.topics.keras_fit import KerasParams, fit_and_save, import_keras, softmax_head
from components.topics.text.common import (DATASETS, Corpus, TextParams, cross_validate, evaluate_text,
                                           load_corpus, load_vocabulary, probabilities, save_model,
                                           save_vocabulary)
from components.topics.text.tokenizer import RESERVED, WordIndex

NEIGHBOURS = 8
LABELLED = 60
"""Words named in the PNG projection, half the most frequent and half the farthest out (the HTML
names every mapped word on hover)."""


@dataclass(frozen=True)
class Params(KerasParams, TextParams):
    """Defaults suit the 3,000 sentiment sentences; text-sample has its own preset."""

    epochs: int = help_field(6, "passes over each fold's training texts", at_least=1)
    batch_size: int = help_field(32, "texts per gradient step", at_least=1)
    learning_rate: float = help_field(5e-3, "initial learning rate", above=0)
    dropout: float = help_field(0.4, "dropout rate on the word vectors and after the hidden layer", at_least=0, below=1)
    embedding_dim: int = help_field(64, "width of each learned word vector", at_least=1)
    pooling: Literal["average", "max"] = help_field("average", "how the (unmasked) word vectors become one")
    hidden_units: int = help_field(0, "width of a dense ReLU layer after pooling (0: none)", at_least=0)
    max_length: int = help_field(100, "tokens per text kept (longer texts are cut, shorter ones padded)", at_least=1)
    probe_words: tuple[str, ...] = help_field(("good", "bad", "great", "terrible", "boring", "love"),
                                              "words whose nearest neighbours the evaluation lists")
    map_words: int = help_field(300, "most frequent words drawn on the 2-D projection", at_least=2)


def build(keras: Any, words: int, n_classes: int, params: Params) -> Any:
    """Embedding (masked) → dropout → pooling → [dense] → softmax."""
    layers = keras.layers
    inputs = keras.Input((params.max_length,), dtype="int32", name="tokens")
    x = layers.Embedding(words, params.embedding_dim, mask_zero=True, name="embedding")(inputs)
    x = layers.Dropout(params.dropout)(x)
    x = (layers.GlobalAveragePooling1D() if params.pooling == "average" else layers.GlobalMaxPooling1D())(x)
    if params.hidden_units:
        x = layers.Dropout(params.dropout)(layers.Dense(params.hidden_units, activation="relu")(x))
    return softmax_head(keras, inputs, x, n_classes, "word_embeddings")


def _fit(keras: Any, corpus: Corpus, tokens: list[list[str]], train: np.ndarray, val: np.ndarray, params: Params,
         seed: int, work: Path, checkpoint: bool, label: str) -> tuple[Any, WordIndex, np.ndarray]:
    """A network on the rows ``train`` (validated on ``val``) with its own word index; a model
    already finished in ``work`` is loaded instead. Returns (model, index, all rows' sequences)."""
    index = WordIndex.fit([tokens[i] for i in train], params.min_count, params.max_words)
    x = index.sequences(tokens, params.max_length)
    if (work / "model" / "model.keras").is_file():
        print(f"restored the finished model in {work}", flush=True)
        return keras.saving.load_model(work / "model" / "model.keras"), index, x
    keras.utils.set_random_seed(seed)
    model = build(keras, len(index), len(corpus.labels), params)
    fit_and_save(keras, model, (x[train], corpus.y[train]), (x[val], corpus.y[val]), params, seed, corpus.meta,
                 work / "model", work / "checkpoint" if checkpoint else None,
                 loss="sparse_categorical_crossentropy", metric="accuracy", label=label)
    return model, index, x


def _fresh(checkpoint_dir: Path, run: dict) -> None:
    """Drop a checkpoint left by another run (other parameters, seed or data)."""
    marker = checkpoint_dir / "run.json"
    if marker.is_file() and read_json(marker) != run:
        for stale in checkpoint_dir.iterdir():
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    write_json(marker, run)


def train(dataset_dir: Path, model_dir: Path, params: Params, seed: int, checkpoint_dir: Path | None = None) -> dict:
    started = time.perf_counter()
    keras = import_keras(params.backend, params.precision)
    corpus = load_corpus(dataset_dir)
    tokenize = params.tokenizer()
    tokens = [tokenize(t) for t in corpus.texts]
    with tempfile.TemporaryDirectory(prefix="dlx-word-embeddings-") as scratch:
        work = checkpoint_dir or Path(scratch)
        if checkpoint_dir is not None:
            _fresh(checkpoint_dir, {"params": to_dict(params), "seed": seed,
                                    **{k: corpus.meta.get(k) for k in ("dataset", "inputs", "splits", "protocol")}})
        histories = []

        def fit_predict(train_texts: list[str], train_y: np.ndarray, texts: list[str], fold: int) -> np.ndarray:
            train_rows, test_rows = corpus.splits[fold]
            print(f"fold {fold + 1}/{len(corpus.splits)}", flush=True)
            model, _, x = _fit(keras, corpus, tokens, train_rows, test_rows, params, seed + fold,
                               work / f"fold-{fold}", checkpoint_dir is not None, f"fold {fold + 1}/{len(corpus.splits)}")
            histories.append(read_json(work / f"fold-{fold}" / "model" / "history.json"))
            return probabilities(keras, model, x[test_rows])

        result = cross_validate(corpus, fit_predict, "word-embeddings", with_fold=True)
        everything = np.arange(len(corpus.y))
        print(f"final model on all {len(everything)} texts", flush=True)
        model, index, _ = _fit(keras, corpus, tokens, everything, everything, params, seed + len(corpus.splits),
                               work / "final", checkpoint_dir is not None, "final model")

        def write(tmp: Path) -> None:
            shutil.copyfile(work / "final" / "model" / "model.keras", tmp / "model.keras")
            shutil.copyfile(work / "final" / "model" / "history.json", tmp / "history.json")
            np.save(tmp / "embeddings.npy", model.get_layer("embedding").get_weights()[0])
            save_vocabulary(tmp / "vocabulary.json", tokenize, index, params.max_length)
            write_json(tmp / "cv_history.json", {k: np.mean([h[k] for h in histories], axis=0).round(4).tolist()
                                                  for k in histories[0]})

        folds = {"main": result["accuracy"], "vocabulary_size": len(index) - len(RESERVED)}
        return save_model(model_dir, topic="word-embeddings", fmt="keras", params=params, seed=seed, corpus=corpus,
                          oof=result["oof"], folds=folds, started=started, write=write)


def neighbours(vectors: np.ndarray, terms: tuple[str, ...], probes: tuple[str, ...], k: int = NEIGHBOURS) -> dict:
    """The ``k`` terms of highest cosine similarity to each probe word found in the index."""
    lookup = {t: i for i, t in enumerate(terms)}
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    unit[:len(RESERVED)] = 0.0
    found = {}
    for word in probes:
        if word in lookup:
            cosine = unit @ unit[lookup[word]]
            cosine[lookup[word]] = -np.inf
            best = np.argsort(-cosine, kind="stable")[:k]
            found[word] = [{"word": terms[i], "cosine": round(float(cosine[i]), 3)} for i in best]
    return found


def word_classes(model_dir: Path, words: list[str], labels: list[str]) -> tuple[list[str], np.ndarray]:
    """The class the network gives each word on its own, and that class's probability."""
    keras = import_keras(read_json(model_dir / "params.json")["backend"])
    _, index, length = load_vocabulary(model_dir / "vocabulary.json")
    model = keras.saving.load_model(model_dir / "model.keras")
    found = probabilities(keras, model, index.sequences([[w] for w in words], length))
    return [labels[i] for i in found.argmax(axis=1)], found.max(axis=1)


def projection_plots(xy: np.ndarray, words: list[str], classes: list[str], confidence: np.ndarray,
                     labels: list[str], out_dir: Path) -> tuple[str, str]:
    """The 2-D projection as PNG (the most frequent words named) and standalone Bokeh HTML."""
    from bokeh.embed import file_html
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.palettes import Category10
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    palette = Category10[10]
    colours = [palette[labels.index(c) % 10] for c in classes]
    plt = shared.pyplot()
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.scatter(xy[:, 0], xy[:, 1], c=colours, s=12, alpha=0.6)
    outer = np.argsort(-np.linalg.norm(xy - xy.mean(axis=0), axis=1), kind="stable")[:LABELLED // 2]
    for i in sorted({*range(min(LABELLED // 2, len(words))), *outer.tolist()}):
        ax.annotate(words[i], xy[i], fontsize=7, alpha=0.8)
    for name in labels:
        ax.scatter([], [], c=palette[labels.index(name) % 10], label=f"word alone → {name}")
    ax.legend(fontsize=8)
    ax.set(title=f"learned word vectors, {len(words)} most frequent words, PCA to 2-D", xlabel="PC 1", ylabel="PC 2")
    png = shared.save_figure(fig, out_dir / "word_embeddings.png")

    data = {"x": xy[:, 0], "y": xy[:, 1], "word": words, "class": classes, "colour": colours,
            "probability": np.round(confidence, 3)}
    plot = figure(title="learned word vectors, PCA to 2-D (hover for words)", width=800, height=600,
                  tools="pan,wheel_zoom,box_zoom,reset,save", x_axis_label="PC 1", y_axis_label="PC 2")
    plot.scatter("x", "y", source=ColumnDataSource(data), size=7, alpha=0.6, color="colour")
    plot.add_tools(HoverTool(tooltips=[("word", "@word"), ("alone", "@class (@probability)")]))
    html = out_dir / "word_embeddings.html"
    html.write_text(file_html(plot, INLINE, "word embeddings"), encoding="utf-8")
    return png, html.name


def evaluate(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """The shared text evaluation, the folds' learning curves, neighbours and the projection."""
    from sklearn.decomposition import PCA

    result = evaluate_text(dataset_dir, model_dir, out_dir)
    params = read_json(model_dir / "params.json")
    _, index, _ = load_vocabulary(model_dir / "vocabulary.json")
    vectors = np.load(model_dir / "embeddings.npy")
    result["neighbours"] = neighbours(vectors, index.terms, tuple(params["probe_words"]))
    for word, near in result["neighbours"].items():
        print(f"nearest to {word!r}: " + ", ".join(f"{n['word']} ({n['cosine']:.2f})" for n in near), flush=True)
    rows = np.arange(len(RESERVED), min(len(index), len(RESERVED) + params["map_words"]))
    words = [index.terms[i] for i in rows]
    xy = np.zeros((len(rows), 2))
    width = min(2, len(rows), vectors.shape[1])
    xy[:, :width] = PCA(width).fit_transform(vectors[rows])
    classes, confidence = word_classes(model_dir, words, result["confusion_matrix"]["labels"])
    png, html = projection_plots(xy, words, classes, confidence, result["confusion_matrix"]["labels"], out_dir)
    result["plots"] = [shared.plot_learning_curves(read_json(model_dir / "cv_history.json"),
                                                     out_dir / "learning_curves.png"), *result["plots"], png]
    result["interactive"] = [html]
    result["vocabulary_size"] = len(index) - len(RESERVED)
    return result


TOPIC = Topic(
    name="word-embeddings",
    description="Keras Embedding learned for the classes, pooled",
    framework="keras", datasets=DATASETS, params=Params, train=train, evaluate=evaluate,
    main_metric="accuracy",
    references={"tfidf_logreg": "a strong sparse classic"},
    presets={"text-sample": {"epochs": "12", "batch_size": "16", "embedding_dim": "16", "learning_rate": "1e-2"}},
)
