"""The three text topics learn on the generated text-sample, through the steps a run uses."""
import json

import numpy as np
import pandas as pd
import pytest

from components import steps
from components.data.artifact import write_artifact
from components.errors import DlxError
from components.files import read_json
from components.params import to_dict
from components.registry import get_topic
from components.topics.text.random_embeddings import pool
from components.topics.predict import predict

MARGIN = 0.2
"""Majority class is ~0.5 on the balanced sample; the models reach ~0.85-0.9 (4% of labels are flipped)."""
PRAISE = ["The film was wonderful.", "I loved the food, it was excellent."]
BLAME = ["The service was awful and the waiter was rude.", "What a terrible, boring movie."]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "dataset"
    steps.prepare("text-sample", "", 0, path, json.dumps({"folds": "3"}))
    return path


def _params(topic: str, **changes) -> str:
    values = to_dict(get_topic(topic).params_for("text-sample"))
    return json.dumps({**values, **changes})


def _check_learned(metrics: dict, folds: int = 3) -> None:
    baseline = metrics["baseline"]
    assert metrics["test"]["accuracy"] > baseline["majority_class"]["accuracy"] + MARGIN
    assert metrics["test"]["accuracy"] > baseline["tfidf_logreg"]["accuracy"] - 0.06
    assert 0.4 < baseline["majority_class"]["accuracy"] < 0.6
    assert len(metrics["folds"]) == folds and metrics["protocol"] == {"kind": "cv", "folds": folds}
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 400


def _check_predicts(model_dir) -> None:
    labels, probabilities = predict(model_dir, PRAISE + BLAME)
    assert labels == ["negative", "positive"]
    assert probabilities.shape == (4, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert [labels[i] for i in probabilities.argmax(axis=1)] == ["positive"] * 2 + ["negative"] * 2


def test_text_vectors_learns_and_compares_vectorizers(sample, tmp_path):
    summary = steps.train("text-vectors", _params("text-vectors", hash_bits=12), 0, sample, tmp_path / "model")
    assert summary["folds"] == 3 and summary["train_seconds"] > 0
    metrics = steps.evaluate("text-vectors", sample, tmp_path / "model", tmp_path / "eval")
    _check_learned(metrics)
    table = metrics["vectorizers"]
    assert set(table) == {"binary", "counts", "tfidf", "hashing", "nb"}
    assert metrics["test"]["accuracy"] == table["nb"]["accuracy"]
    assert all(row["accuracy"] > 0.75 and len(row["folds"]) == 3 for row in table.values())
    collisions = metrics["hashing_collisions"]
    assert [row["buckets"] for row in collisions] == [2 ** b for b in (8, 10, 12, 14, 16, 18, 20)]
    assert collisions[0]["pct_colliding"] > collisions[-1]["pct_colliding"]
    assert all(row["words"] == metrics["vocabulary_size"] for row in collisions)
    on_disk = read_json(tmp_path / "eval" / "metrics.json")
    assert on_disk["test"]["accuracy_std"] >= 0 and set(on_disk["baseline"]) == {"majority_class", "tfidf_logreg"}
    assert {"confusion_matrix.png", "vectorizers.png"} <= {p.name for p in (tmp_path / "eval").iterdir()}
    page = (tmp_path / "eval" / "report.html").read_text()
    assert "Vectorisers (cross-validated)" in page and "Hashing-trick collisions" in page and "pct_colliding" in page
    _check_predicts(tmp_path / "model")


def test_the_nb_ratio_is_naive_bayes_own_log_probability_ratio():
    """LogCountRatio's column weights equal the difference of scikit-learn's MultinomialNB
    feature_log_prob_ rows for the same counts and smoothing."""
    from scipy import sparse
    from sklearn.naive_bayes import MultinomialNB

    from components.topics.text.text_vectors import LogCountRatio

    rng = np.random.default_rng(0)
    x = sparse.csr_matrix(rng.integers(0, 2, (40, 12)).astype(float))
    y = rng.integers(0, 2, 40)
    ratio = LogCountRatio(alpha=0.25).fit(x, y).ratio_
    library = MultinomialNB(alpha=0.25).fit(x, y).feature_log_prob_
    np.testing.assert_allclose(ratio, library[1] - library[0], rtol=1e-12)
    np.testing.assert_allclose(LogCountRatio(0.25).fit_transform(x, y).toarray(), x.toarray() * ratio)
    with pytest.raises(DlxError, match="compare two classes"):
        LogCountRatio().fit(x, np.arange(40) % 3)


def test_random_embeddings_learn(sample, tmp_path):
    steps.train("random-embeddings", _params("random-embeddings", dimension=256), 0, sample, tmp_path / "model")
    metrics = steps.evaluate("random-embeddings", sample, tmp_path / "model", tmp_path / "eval")
    _check_learned(metrics)
    _check_predicts(tmp_path / "model")


def test_pooling_of_word_vectors():
    from scipy import sparse

    table = np.array([[1.0, 0.0], [0.0, 2.0], [-1.0, 4.0]], np.float32)
    counts = sparse.csr_matrix(np.array([[2, 1, 0], [0, 0, 0], [0, 1, 1]]))
    assert pool(counts, table, "sum").tolist() == [[2.0, 2.0], [0.0, 0.0], [-1.0, 6.0]]
    assert np.allclose(pool(counts, table, "mean"), [[2 / 3, 2 / 3], [0.0, 0.0], [-0.5, 3.0]])
    assert pool(counts, table, "max").tolist() == [[1.0, 2.0], [0.0, 0.0], [0.0, 4.0]]


def test_word_embeddings_learn_and_show_neighbours(sample, tmp_path):
    steps.train("word-embeddings", _params("word-embeddings", epochs=5), 0, sample, tmp_path / "model")
    metrics = steps.evaluate("word-embeddings", sample, tmp_path / "model", tmp_path / "eval")
    _check_learned(metrics)
    vocabulary = read_json(tmp_path / "model" / "vocabulary.json")
    embeddings = np.load(tmp_path / "model" / "embeddings.npy")
    assert embeddings.shape == (len(vocabulary["terms"]), 16) and vocabulary["terms"][:2] == ["<pad>", "<oov>"]
    near = metrics["neighbours"]["good"]
    assert len(near) == 8 and all(n["word"] not in ("<pad>", "<oov>", "good") for n in near)
    assert {"learning_curves.png", "word_embeddings.png", "word_embeddings.html"} <= {
        p.name for p in (tmp_path / "eval").iterdir()}
    assert "bokeh" in (tmp_path / "eval" / "word_embeddings.html").read_text().lower()
    assert "Nearest neighbours" in (tmp_path / "eval" / "report.html").read_text()
    assert len(read_json(tmp_path / "model" / "cv_history.json")["val_accuracy"]) == 5
    _check_predicts(tmp_path / "model")


def test_word_embeddings_resume_from_checkpoint(tmp_path, capsys):
    """A rerun with the same checkpoint restores every finished fold and the final model; a run
    with other parameters starts afresh."""
    steps.prepare("text-sample", "", 0, tmp_path / "small", json.dumps({"folds": "2", "size": "60"}))

    def train(name: str, epochs: int) -> str:
        capsys.readouterr()
        steps.train("word-embeddings", _params("word-embeddings", epochs=epochs), 0, tmp_path / "small",
                    tmp_path / name, tmp_path / "checkpoint")
        return capsys.readouterr().out

    assert "restored" not in train("first", 1)
    assert train("again", 1).count("restored the finished model") == 3
    with np.load(tmp_path / "first" / "oof.npz") as first, np.load(tmp_path / "again" / "oof.npz") as second:
        assert np.allclose(first["probabilities"], second["probabilities"], atol=1e-5)
    assert "restored" not in train("other", 2)
    assert len(read_json(tmp_path / "other" / "history.json")["loss"]) == 2


def test_multiclass_artifact_written_to_the_contract(tmp_path):
    """Three classes in a hand-made artifact with the contract's tables (texts, labels)."""
    rng = np.random.default_rng(0)
    words = {0: ["goal", "match", "team", "score"], 1: ["recipe", "bread", "spicy", "dinner"],
             2: ["laptop", "battery", "software", "screen"]}
    labels = np.arange(150) % 3
    texts = [" ".join(rng.choice(words[int(c)], 3)) + " " + " ".join(rng.choice(["the", "a", "today", "news"], 2))
             for c in labels]
    texts_table = pd.DataFrame({"text": texts, "label": labels.astype(np.int64), "fold": (np.arange(150) // 3 % 3)})
    names = pd.DataFrame({"index": np.arange(3, dtype=np.int64), "name": ["sport", "food", "tech"]})
    meta = {"dataset": "handmade", "source": "test", "inputs": {}, "splits": {"texts": 150},
            "schema": {"kind": "text", "n_classes": 3}, "protocol": {"kind": "cv", "folds": 3},
            "classes": ["sport", "food", "tech"]}
    write_artifact(tmp_path / "dataset", {"texts": texts_table, "labels": names}, meta)
    with pytest.raises(DlxError, match=r"the nb vectors \(the default\) compare two classes and this data set has 3 "
                                       r"\(sport, food, tech\); pass --param vectorizer=tfidf"):
        steps.train("text-vectors", '{"compare": false}', 0, tmp_path / "dataset", tmp_path / "model")
    steps.train("text-vectors", '{"vectorizer": "tfidf"}', 0, tmp_path / "dataset", tmp_path / "model")
    metrics = steps.evaluate("text-vectors", tmp_path / "dataset", tmp_path / "model", tmp_path / "eval")
    assert metrics["test"]["accuracy"] > 0.9 > 0.4 > metrics["baseline"]["majority_class"]["accuracy"]
    assert set(metrics["vectorizers"]) == {"binary", "counts", "tfidf", "hashing"}  # nb needs two classes
    labels_, probabilities = predict(tmp_path / "model", ["spicy bread for dinner", "new laptop screen"])
    assert labels_ == ["sport", "food", "tech"] and probabilities.argmax(axis=1).tolist() == [1, 2]


def test_evaluating_against_other_folds_is_refused(sample, tmp_path):
    steps.prepare("text-sample", "", 1, tmp_path / "other", json.dumps({"folds": "3"}))
    steps.train("random-embeddings", '{"dimension": 16}', 0, sample, tmp_path / "model")
    with pytest.raises(DlxError, match="other texts or folds"):
        steps.evaluate("random-embeddings", tmp_path / "other", tmp_path / "model", tmp_path / "eval")


@pytest.mark.parametrize("topic,bad", [("text-vectors", "ngrams=0"), ("text-vectors", "hash_bits=40"),
                                       ("random-embeddings", "dimension=0"), ("word-embeddings", "max_length=0"),
                                       ("word-embeddings", "min_count=0")])
def test_bad_parameters_are_refused(topic, bad):
    name, value = bad.split("=")
    with pytest.raises(DlxError, match=f"bad value {value} for parameter {name} of {topic}: must be .*; see `dlx list`"):
        get_topic(topic).params_for("text-sample", [bad])
