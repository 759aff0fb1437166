"""The labelled text data sets: text-sample, sentiment-sentences, text-file:PATH, folds and artifact."""

import hashlib
import json
import sys
import types
import zipfile
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from components.data import DATASETS, get_dataset, prepare_dataset
from components.data import text
from components.data.text import fold_indices, load_texts, sample_sentences
from components.errors import DlxError

REAL_SENTIMENT = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment-sentences"
# UCI layout: sentence<TAB>score, LF endings, trailing spaces (imdb), quotes, and imdb's U+0085
UCI = {
    "amazon_cells_labelled.txt": ["Good case, Excellent value.\t1", "Great for the jawbone.\t1",
                                  "Tied to charger for conversations lasting more than 45 minutes.MAJOR PROBLEMS!!\t0",
                                  "The mic is \"great\" they said.\t0"],
    "imdb_labelled.txt": ["A very, very, very slow-moving, aimless movie.  \t0", "Not sure who was more lost.  \t0",
                          "The best scene\u0085 ever.  \t1", "Loved it, \"truly\".  \t1"],
    "yelp_labelled.txt": ["Wow... Loved this place.\t1", "Crust is not good.\t0", "Not tasty at all.\t0",
                          "Great prices.\t1"],
}


def _uci(directory: Path, files=UCI) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (directory / name).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return directory


def _few_folds(**more) -> dict:
    return {"folds": "2", **more}


# --- registry ---------------------------------------------------------------------------------

def test_registry_and_the_file_families():
    assert {"text-sample", "sentiment-sentences", "text-file:PATH", "ratings-file:PATH"} <= set(DATASETS)
    assert get_dataset("sentiment-sentences").needs_location and not get_dataset("text-sample").needs_location
    spec = get_dataset("text-file:/data/t.csv")
    assert (spec.name, spec.kind, spec.needs_location, spec.options) == (
        "text-file:/data/t.csv", "text", False, text.TextFileOptions)
    assert get_dataset("ratings-file:s3://b/r.csv").kind == "ratings"
    with pytest.raises(DlxError, match="names no file; write it as text-file:PATH"):
        get_dataset("text-file:")
    with pytest.raises(DlxError, match="unknown dataset 'image-file:x.png'"):
        get_dataset("image-file:x.png")


# --- text-sample ------------------------------------------------------------------------------

def test_sample_is_deterministic_balanced_and_varied():
    texts, labels = sample_sentences(400, 0)
    again, same = sample_sentences(400, 0)
    assert texts == again and np.array_equal(labels, same)
    assert sample_sentences(400, 1)[0] != texts
    assert 180 <= labels.sum() <= 220 and set(labels) == {0, 1}
    assert len(set(texts)) > 350 and all(t[0].isupper() and t[-1] in ".!" for t in texts)
    assert sum(" not " in t or " never " in t for t in texts) > 20 and sum(" but " in t for t in texts) > 12


def test_sample_is_learnable_but_not_trivially():
    """TF-IDF + logistic regression on the generated folds: clearly above chance, below perfect."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    frame, _ = text.load_sample(None, 0, 0.1, text.SampleOptions())
    texts, meta = frame["texts"], {"protocol": {"folds": 5}}
    scores = []
    for train, test in fold_indices(texts, meta):
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LogisticRegression(C=10, max_iter=1000))
        model.fit(texts["text"].iloc[train], texts["label"].iloc[train])
        scores.append(model.score(texts["text"].iloc[test], texts["label"].iloc[test]))
    assert 0.8 <= np.mean(scores) <= 0.97, scores


def test_prepare_text_sample_writes_the_artifact_load_texts_reads(tmp_path):
    meta = prepare_dataset("text-sample", tmp_path / "ds", seed=3)
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["labels.parquet", "meta.json", "texts.parquet"]
    texts, names, read_meta = load_texts(tmp_path / "ds")
    assert names == ["negative", "positive"] and read_meta == json.loads((tmp_path / "ds" / "meta.json").read_text())
    assert meta["protocol"] == {"kind": "cv", "folds": 5} and meta["classes"] == names
    assert meta["schema"]["kind"] == "text" and meta["splits"] == {"texts": 400} and meta["options"]["size"] == 400
    assert list(texts.columns) == ["text", "label", "fold"] and len(texts) == 400
    assert texts["label"].dtype == np.int64 and texts["fold"].dtype == np.int64
    assert texts["text"].tolist() == sample_sentences(400, 0)[0]  # the run's seed only draws the folds


def test_load_texts_refuses_other_artifacts(tmp_path):
    prepare_dataset("synthetic-ratings", tmp_path / "r", options={"users": "20", "items": "20", "density": "0.5"})
    with pytest.raises(DlxError, match="holds ratings data, not text data"):
        load_texts(tmp_path / "r")
    with pytest.raises(DlxError, match="no meta.json"):
        load_texts(tmp_path)


# --- folds ------------------------------------------------------------------------------------

def test_cv_folds_are_stratified_seeded_and_partition_the_texts(tmp_path):
    prepare_dataset("text-sample", tmp_path / "a", seed=7)
    prepare_dataset("text-sample", tmp_path / "b", seed=7)
    prepare_dataset("text-sample", tmp_path / "c", seed=8)
    (texts, _, meta), (same, _, _), (other, _, _) = (load_texts(tmp_path / x) for x in "abc")
    assert texts["fold"].equals(same["fold"]) and not texts["fold"].equals(other["fold"])
    assert sorted(texts["fold"].unique()) == [0, 1, 2, 3, 4]
    folds = fold_indices(texts, meta)
    assert len(folds) == 5
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(400))
    share = texts["label"].mean()
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 400
        assert abs(texts["label"].iloc[test].mean() - share) < 0.02  # stratified


def test_holdout_marks_test_rows_0_and_training_rows_minus_1(tmp_path, monkeypatch):
    meta = prepare_dataset("text-sample", tmp_path / "h", options={"protocol": "holdout", "test_fraction": "0.25"})
    texts, _, _ = load_texts(tmp_path / "h")
    assert meta["protocol"] == {"kind": "holdout", "folds": 1, "test_fraction": 0.25}
    assert set(texts["fold"]) == {-1, 0} and (texts["fold"] == 0).sum() == 100
    [(train, test)] = fold_indices(texts, meta)
    assert len(train) == 300 and len(test) == 100
    assert abs(texts["label"].iloc[test].mean() - texts["label"].mean()) < 0.02
    monkeypatch.setattr(text, "AUTO_CV_LIMIT", 399)  # auto: a corpus above the limit is held out
    assert prepare_dataset("text-sample", tmp_path / "auto")["protocol"]["kind"] == "holdout"


@pytest.mark.parametrize("options, message", [
    ({"folds": "1"}, "bad value 1 for parameter folds of dataset text-sample: must be >= 2"),
    ({"test_fraction": "1"}, r"bad value 1.0 for parameter test_fraction of dataset text-sample: must be \(0, 1\)"),
    ({"protocol": "bootstrap"}, "choose one of auto, cv, holdout"),
    ({"size": "5"}, "bad value 5 for parameter size of dataset text-sample: must be >= 20"),
    ({"folds": "300"}, "too few to stratify 300 folds; lower folds= or use protocol=holdout"),
])
def test_bad_fold_options(tmp_path, options, message):
    with pytest.raises(DlxError, match=message):
        prepare_dataset("text-sample", tmp_path / "out", options=options)
    assert not (tmp_path / "out").exists()


# --- sentiment-sentences ----------------------------------------------------------------------

def test_sentiment_reads_the_uci_layout(tmp_path):
    directory = _uci(tmp_path / "uci")
    meta = prepare_dataset("sentiment-sentences", tmp_path / "all", data_dir=str(directory), options=_few_folds())
    texts, names, _ = load_texts(tmp_path / "all")
    assert names == ["negative", "positive"] and len(texts) == 12 and texts["label"].sum() == 6
    assert meta["sources"] == {name: 4 for name in UCI} and meta["source"] == str(directory)
    assert meta["inputs"]["imdb_labelled.txt"] == hashlib.sha256((directory / "imdb_labelled.txt").read_bytes()).hexdigest()
    assert "The best scene\u0085 ever." in set(texts["text"]) and 'The mic is "great" they said.' in set(texts["text"])
    prepare_dataset("sentiment-sentences", tmp_path / "imdb", data_dir=str(directory),
                    options=_few_folds(source="imdb"))
    imdb, _, imdb_meta = load_texts(tmp_path / "imdb")
    assert list(imdb_meta["inputs"]) == ["imdb_labelled.txt"] and imdb["text"].tolist()[:2] == [
        "A very, very, very slow-moving, aimless movie.", "Not sure who was more lost."]


def test_sentiment_from_a_subfolder_of_dlx_data_dir(tmp_path, monkeypatch):
    _uci(tmp_path / "root" / "sentiment-sentences")
    monkeypatch.setenv("DLX_DATA_DIR", str(tmp_path / "root"))
    meta = prepare_dataset("sentiment-sentences", tmp_path / "out", options=_few_folds(source="yelp"))
    assert meta["source"] == f"{tmp_path / 'root'}/sentiment-sentences" and meta["splits"] == {"texts": 4}


def _zip(tmp_path: Path, files: dict) -> str:
    archive = tmp_path / "sentiment labelled sentences.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, content in files.items():
            zipped.writestr(f"sentiment labelled sentences/{name}", content)
            zipped.writestr(f"__MACOSX/sentiment labelled sentences/._{name}", b"junk")
    return archive.as_uri()


def test_sentiment_downloads_the_zip_verifies_and_caches(tmp_path, monkeypatch, capsys):
    contents = {name: (_uci(tmp_path / "src") / name).read_bytes() for name in UCI}
    monkeypatch.setattr(text, "SENTIMENT_URL", _zip(tmp_path, contents))
    monkeypatch.setattr(text, "SENTIMENT_SHA256", {n: hashlib.sha256(c).hexdigest() for n, c in contents.items()})
    meta = prepare_dataset("sentiment-sentences", tmp_path / "a", options=_few_folds())
    cache = tmp_path / "cache" / "sentiment-sentences"
    assert sorted(p.name for p in cache.iterdir()) == sorted(UCI) and meta["splits"] == {"texts": 12}
    assert "downloading sentiment-sentences" in capsys.readouterr().err
    for name in UCI:
        (cache / name).unlink()
    monkeypatch.setattr(text, "SENTIMENT_SHA256", {n: "0" * 64 for n in contents})
    with pytest.raises(DlxError, match="imdb_labelled.txt in the archive has sha256 .* expected 0{64}; it was discarded"):
        prepare_dataset("sentiment-sentences", tmp_path / "b", options=_few_folds(source="imdb"))
    assert list(cache.iterdir()) == [] and not (tmp_path / "b").exists()
    monkeypatch.setattr(text, "SENTIMENT_URL", (tmp_path / "none.zip").as_uri())
    with pytest.raises(DlxError, match="cannot download .*none.zip.*pass --data-dir DIR holding imdb_labelled.txt"):
        prepare_dataset("sentiment-sentences", tmp_path / "c", options=_few_folds(source="imdb"))


@pytest.mark.parametrize("lines, message", [
    (["Good.\t1", "Bad.", "Fine.\t1"], "label missing on line 2"),
    (["Good.\t1", "Bad.\t2"], "label '2' on line 2 is not 0 or 1"),
    (["Good.\t1", " \t0"], "empty sentence on line 2"),
    ([], "empty file"),
    (["Good.\t1", "Great.\t1"], "every text has the label 'positive'"),
], ids=["missing label", "bad label", "empty text", "empty file", "single class"])
def test_sentiment_bad_files(tmp_path, lines, message):
    directory = _uci(tmp_path / "uci", {"yelp_labelled.txt": lines})
    with pytest.raises(DlxError, match=message):
        prepare_dataset("sentiment-sentences", tmp_path / "out", data_dir=str(directory),
                        options=_few_folds(source="yelp", protocol="holdout"))
    assert not (tmp_path / "out").exists()


def test_sentiment_undecodable_bytes_and_missing_files(tmp_path):
    directory = _uci(tmp_path / "uci", {"yelp_labelled.txt": ["Good.\t1", "Bad.\t0"]})
    (directory / "yelp_labelled.txt").write_bytes(b"Good.\t1\nCaf\xe9 bad.\t0\n")
    with pytest.raises(DlxError, match=r"line 2 is not UTF-8 text \(byte 0xe9 at offset 11\); .*encoding="):
        prepare_dataset("sentiment-sentences", tmp_path / "out", data_dir=str(directory),
                        options={"source": "yelp"})
    with pytest.raises(DlxError, match="lacks amazon_cells_labelled.txt, imdb_labelled.txt"):
        prepare_dataset("sentiment-sentences", tmp_path / "out", data_dir=str(directory))


@pytest.mark.skipif(not REAL_SENTIMENT.is_dir(), reason=f"{REAL_SENTIMENT} absent (real data sets not staged)")
def test_the_real_uci_release(tmp_path):
    for name, sha in text.SENTIMENT_SHA256.items():
        assert hashlib.sha256((REAL_SENTIMENT / name).read_bytes()).hexdigest() == sha
    meta = prepare_dataset("sentiment-sentences", tmp_path / "all", data_dir=str(REAL_SENTIMENT), seed=0)
    texts, names, _ = load_texts(tmp_path / "all")
    assert len(texts) == 3000 and meta["class_counts"] == {"negative": 1500, "positive": 1500}
    assert meta["sources"] == {name: 1000 for name in text.SENTIMENT_SHA256} and meta["inputs"] == text.SENTIMENT_SHA256
    assert meta["protocol"] == {"kind": "cv", "folds": 5} and texts["fold"].value_counts().tolist() == [600] * 5
    assert texts["text"].str.strip().ne("").all() and not texts["text"].str.contains("\t").any()
    # the same file through text-file:, by position, as the UCI layout has no header
    prepare_dataset(f"text-file:{REAL_SENTIMENT / 'imdb_labelled.txt'}", tmp_path / "imdb",
                    options={"text_col": "0", "label_col": "1"})
    imdb, imdb_names, _ = load_texts(tmp_path / "imdb")
    assert imdb_names == ["0", "1"] and imdb["text"].tolist() == texts["text"].tolist()[1000:2000]


# --- text-file:PATH ---------------------------------------------------------------------------

def test_text_file_csv_with_header_and_string_labels(tmp_path):
    rows = [("I loved it, truly", "pos"), ("Meh", "neutral"), ('He said "awful"', "neg")] * 4
    path = tmp_path / "reviews.csv"
    pd.DataFrame(rows, columns=["review", "mood"]).to_csv(path, index=False)
    meta = prepare_dataset(f"text-file:{path}", tmp_path / "out",
                           options=_few_folds(text_col="review", label_col="mood"))
    texts, names, _ = load_texts(tmp_path / "out")
    assert names == ["neg", "neutral", "pos"] and meta["classes"] == names
    assert texts["text"].tolist()[:3] == ["I loved it, truly", "Meh", 'He said "awful"']
    assert texts["label"].tolist()[:3] == [2, 1, 0] and meta["source"] == str(path)
    assert meta["inputs"] == {"reviews.csv": hashlib.sha256(path.read_bytes()).hexdigest()}
    labels = pd.read_parquet(tmp_path / "out" / "labels.parquet")
    assert labels.to_dict("list") == {"index": [0, 1, 2], "name": ["neg", "neutral", "pos"]}


def test_text_file_tsv_by_position_numeric_labels_and_latin1(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_bytes("".join(f"{[9, 10, 100][n % 3]}\tcafé {'bon' if n % 2 else 'mauvais'} \"{n}\"\n"
                             for n in range(12)).encode("latin-1"))
    with pytest.raises(DlxError, match=r"t.tsv: line 1 is not UTF-8 text \(byte 0xe9 at offset 5\); name the file's encoding "
                                       "with encoding=, e.g. encoding=latin-1"):
        prepare_dataset(f"text-file:{path}", tmp_path / "out", options={"text_col": "1", "label_col": "0"})
    assert not (tmp_path / "out").exists()
    prepare_dataset(f"text-file:{path}", tmp_path / "out",
                    options={"text_col": "1", "label_col": "0", "encoding": "latin-1", "protocol": "holdout",
                             "test_fraction": "0.5"})
    texts, names, _ = load_texts(tmp_path / "out")
    assert names == ["9", "10", "100"]  # numbers sort as numbers
    assert texts["label"].tolist()[:4] == [0, 1, 2, 0] and texts["text"].iloc[0] == 'café mauvais "0"'
    assert sorted(texts["fold"].value_counts().tolist()) == [6, 6]


def test_text_file_parquet_and_delimiter(tmp_path):
    frame = pd.DataFrame({"id": range(8), "body": [f"text {n}" for n in range(8)], "y": [0, 1] * 4})
    frame.to_parquet(tmp_path / "t.parquet")
    prepare_dataset(f"text-file:{tmp_path / 't.parquet'}", tmp_path / "p",
                    options=_few_folds(text_col="body", label_col="2"))
    texts, names, _ = load_texts(tmp_path / "p")
    assert names == ["0", "1"] and texts["text"].tolist() == frame["body"].tolist()
    (tmp_path / "t.txt").write_text("text;label\n" + "".join(f"words {n};{'ab'[n % 2]}\n" for n in range(6)))
    prepare_dataset(f"text-file:{tmp_path / 't.txt'}", tmp_path / "s", options=_few_folds(delimiter=";"))
    assert load_texts(tmp_path / "s")[1] == ["a", "b"]


@pytest.mark.parametrize("content, options, message", [
    ("text,label\nfine,1\n,0\nok,1\nbad,0\n", {}, "text missing on line 3; fill or drop that row"),
    ("text,label\nfine,1\nbad,\nok,1\nno,0\n", {}, "label missing on line 3"),
    ("text,label\nfine,1\nbad\nok,1\nno,0\n", {}, "label missing on line 3"),
    ("text,label\nfine,1\nok,1\n", {}, "every text has the label '1'; a classifier needs at least two classes"),
    ("text,label\nfine,1\nok,0\n", {"text_col": "body"}, "no text column 'body' \\(found: text, label\\); set text_col="),
    ("text,label\nfine,1\nok,0\n", {"label_col": "5"}, "no label column '5' \\(found: 2 columns\\)"),
    ("", {}, "empty file; it holds no texts"),
    ("\n\n", {}, "empty file; it holds no texts"),
    ("text,label\n", {}, "no rows; it holds no texts"),
    ('text,label\n"open quote,1\n', {}, "malformed ',' -separated text|malformed ','-separated text"),
    ("text,label\nfine,1\n", {"delimiter": "ab"}, "delimiter must be one character"),
    ("text,label\nfine,1\n", {"encoding": "klingon"}, "unknown encoding 'klingon'"),
], ids=["empty text", "missing label", "short row", "single class", "missing column", "missing position",
        "empty file", "blank file", "header only", "malformed", "bad delimiter", "bad encoding"])
def test_text_file_bad_inputs(tmp_path, content, options, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(DlxError, match=message) as error:
        prepare_dataset(f"text-file:{path}", tmp_path / "out", options={"folds": "2", **options})
    assert "\n" not in str(error.value) and not (tmp_path / "out").exists()


def test_text_file_location_errors(tmp_path):
    with pytest.raises(DlxError, match="no such file; write the dataset as text-file:PATH"):
        prepare_dataset(f"text-file:{tmp_path / 'none.csv'}", tmp_path / "out")
    (tmp_path / "t.csv").write_text("text,label\na,0\nb,1\n")
    with pytest.raises(DlxError, match="takes no data dir .*; drop --data-dir"):
        prepare_dataset(f"text-file:{tmp_path / 't.csv'}", tmp_path / "out", data_dir=str(tmp_path))
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DlxError, match="not a readable Parquet file"):
        prepare_dataset(f"text-file:{tmp_path / 'bad.parquet'}", tmp_path / "out")


def test_text_file_from_s3(tmp_path, fake_aws):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"row {n},{n % 2}\n" for n in range(6)))
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        s3.upload_file(str(path), "data", "files/t.csv")
        meta = prepare_dataset("text-file:s3://data/files/t.csv", tmp_path / "out", options=_few_folds())
        with pytest.raises(DlxError, match="s3://data/files/none.csv: no such object"):
            prepare_dataset("text-file:s3://data/files/none.csv", tmp_path / "none")
    assert meta["source"] == "s3://data/files/t.csv" and meta["splits"] == {"texts": 6}


def test_plain_layout_dispatches_to_the_corpus_loader(tmp_path, monkeypatch):
    calls = []

    def load_text_file(path, seed, val_fraction, encoding):
        calls.append((path, seed, val_fraction, encoding))
        return {"train": "x"}, {"source": path}

    monkeypatch.setitem(sys.modules, "components.data.corpus", types.SimpleNamespace(load_text_file=load_text_file))
    spec = get_dataset("text-file:book.txt")
    options = text.TextFileOptions(layout="plain", encoding="latin-1")
    assert spec.load(None, 4, 0.2, options) == ({"train": "x"}, {"source": "book.txt"})
    assert calls == [("book.txt", 4, 0.2, "latin-1")]


def test_dlx_list_shows_the_text_sets(capsys):
    from dlx.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("text-sample", "sentiment-sentences", "text-file:PATH", "ratings-file:PATH"):
        assert f"  {name}  " in out
    shown = {}
    for name in ("sentiment-sentences", "text-file:PATH"):
        assert main(["list", name]) == 0
        shown[name] = capsys.readouterr().out
    assert "source=all" in shown["sentiment-sentences"]
    assert "layout=labelled" in shown["text-file:PATH"] and "protocol=auto" in shown["text-file:PATH"]
