"""Labelled text data sets: the generated `text-sample`, UCI `sentiment-sentences`, `text-file:PATH`.

Every loader returns the same artifact (kind "text"): table `texts` (text, label 0..C-1, fold) and
table `labels` (index, name). The fold column encodes the evaluation protocol once, at prepare
time, so every topic scores the same texts: cv gives stratified seeded folds 0..k-1; holdout
marks the stratified test rows 0 and the training rows -1. "For f in range(folds): train on
fold != f, score fold == f" therefore serves both (see `fold_indices`).

pandas and scikit-learn are imported inside functions: listing datasets must not pay for them.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from components.data.artifact import HINT, read_tables
from components.data.decode import ENCODING_HINT, decode
from components.data.fetch import local_file, locate
from components.data.idx import read_content
from components.data.splits import holdout
from components.errors import DlxError
from components.params import help_field

if TYPE_CHECKING:
    import pandas as pd

Tables = dict[str, "pd.DataFrame"]

AUTO_CV_LIMIT = 5000  # protocol=auto: cross-validate corpora up to this many texts, else hold out

SENTIMENT_URL = "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip"
SENTIMENT_FILES = {"amazon": "amazon_cells_labelled.txt", "imdb": "imdb_labelled.txt", "yelp": "yelp_labelled.txt"}
# sha256 of the files as released (each 500 positive + 500 negative sentences), taken from the
# staged UCI release; downloads are checked against them, a user's copy is checked by structure.
SENTIMENT_SHA256 = {
    "amazon_cells_labelled.txt": "47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3",
    "imdb_labelled.txt": "a5851cfed830b68d4b18fa11f7e9fa85debee7566be0933c9a679ce747c86d67",
    "yelp_labelled.txt": "c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea",
}
SENTIMENT_CLASSES = ["negative", "positive"]  # the files' scores 0 and 1


@dataclass(frozen=True)
class FoldOptions:
    """The evaluation protocol shared by every labelled text set."""

    folds: int = help_field(5, "number of stratified cross-validation folds (protocol cv)", at_least=2)
    protocol: Literal["auto", "cv", "holdout"] = help_field(
        "auto", f"cv: k folds; holdout: one stratified test split; auto: cv up to {AUTO_CV_LIMIT:,} texts")
    test_fraction: float = help_field(0.2, "share of texts held out for testing (protocol holdout)", above=0, below=1)


@dataclass(frozen=True)
class SampleOptions(FoldOptions):
    size: int = help_field(400, "number of generated sentences (half of each class)", at_least=20)
    data_seed: int = help_field(0, "seed of the sentence generator (the run's seed only draws the folds)",
                                at_least=0, below=2**32)


@dataclass(frozen=True)
class SentimentOptions(FoldOptions):
    source: Literal["all", "amazon", "imdb", "yelp"] = help_field(
        "all", "which review site's 1,000 sentences, or all 3,000")


@dataclass(frozen=True)
class TextFileOptions(FoldOptions):
    text_col: str = help_field("text", "column holding the text: a header name or a 0-based position")
    label_col: str = help_field("label", "column holding the label: a header name or a 0-based position")
    delimiter: str = help_field("auto", "field separator (tab: \\t); auto: tab for .tsv/.txt, comma for .csv")
    header: Literal["auto", "true", "false"] = help_field(
        "auto", "whether the first line names the columns; auto: yes unless both columns are positions")
    encoding: str = help_field("utf-8", "text encoding of a delimited file, e.g. latin-1")
    layout: Literal["labelled", "plain"] = help_field(
        "labelled", "labelled: one text and label per row; plain: the whole file is one text stream")

    def __post_init__(self) -> None:
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {self.encoding!r}; try utf-8 or latin-1") from None
        if len(_separator(self.delimiter)) != 1 and self.delimiter != "auto":
            raise ValueError(f"delimiter must be one character (or \\t, or auto), got {self.delimiter!r}")


# --- the loaders --------------------------------------------------------------------------------

def load_sample(data_dir: str | None, seed: int, val_fraction: float, options: SampleOptions) -> tuple[Tables, dict]:
    """`size` generated review sentences, deterministic from `data_seed` (see `sample_sentences`)."""
    texts, labels = sample_sentences(options.size, options.data_seed)
    return _prepare(texts, labels, ["negative", "positive"], seed, options, "generated", {})


def load_sentiment(data_dir: str | None, seed: int, val_fraction: float,
                   options: SentimentOptions) -> tuple[Tables, dict]:
    """The UCI files as released: `sentence<TAB>0|1` per line, UTF-8."""
    names = list(SENTIMENT_FILES.values()) if options.source == "all" else [SENTIMENT_FILES[options.source]]
    with locate("sentiment-sentences", names, data_dir=data_dir, base_url=SENTIMENT_URL,
                checksums=SENTIMENT_SHA256) as located:
        parsed = {name: _sentiment_file(located.files[name]) for name in names}
    texts = [t for name in names for t in parsed[name][0]]
    labels = np.concatenate([parsed[name][1] for name in names])
    inputs = {name: parsed[name][2] for name in names}
    tables, fields = _prepare(texts, labels, SENTIMENT_CLASSES, seed, options, located.source, inputs)
    return tables, {**fields, "sources": {name: len(parsed[name][0]) for name in names}}


def load_file(path: str, data_dir: str | None, seed: int, val_fraction: float,
              options: TextFileOptions) -> tuple[dict, dict]:
    """A delimited (csv/tsv/txt) or Parquet file of labelled text, local or s3://; with
    layout=plain, the whole file as one text stream (`components.data.corpus`)."""
    if options.layout == "plain":
        from components.data.corpus import load_text_file

        return load_text_file(path, seed, val_fraction, options.encoding)
    with local_file(path, "text-file") as local:
        content = read_content(local)
        if local.suffix.lower() in (".parquet", ".pq"):
            texts, raw = _parquet_columns(content, options, path)
        else:
            texts, raw = _delimited_columns(content, local.suffix.lower(), options, path)
    labels, names = _encode_labels(raw, path)
    return _prepare(texts, labels, names, seed, options, path, {Path(path).name: hashlib.sha256(content).hexdigest()})


# --- reading the artifact -----------------------------------------------------------------------

def load_texts(dataset_dir: str | Path) -> tuple["pd.DataFrame", list[str], dict]:
    """A prepared text artifact's (texts table, label names in index order, meta)."""
    tables, meta = read_tables(dataset_dir, ["texts", "labels"], kind="text")
    texts, labels = tables["texts"], tables["labels"]
    for name, columns in {"texts": ("text", "label", "fold"), "labels": ("index", "name")}.items():
        missing = [c for c in columns if c not in tables[name].columns]
        if missing:
            raise DlxError(f"{dataset_dir}/{name}.parquet: lacks column(s) {', '.join(missing)}; {HINT}")
    labels = labels.sort_values("index")
    names = [str(n) for n in labels["name"]]
    if labels["index"].tolist() != list(range(len(names))) or not texts["label"].between(0, len(names) - 1).all():
        raise DlxError(f"{dataset_dir}: labels disagree with labels.parquet's {len(names)} classes; {HINT}")
    return texts, names, meta


def fold_indices(texts: "pd.DataFrame", meta: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, test_idx) row positions per fold: k folds (cv) or one (holdout; fold -1 rows
    always train)."""
    folds = texts["fold"].to_numpy()
    return [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(int(meta["protocol"]["folds"]))]


# --- the generated sample -----------------------------------------------------------------------

_SUBJECTS = ["the film", "this movie", "the plot", "the acting", "the soundtrack", "the food", "the service",
             "the staff", "this phone", "the battery", "the screen", "the book", "the hotel room", "the café",
             "the ending", "the price", "the delivery", "this headset", "the waiter", "the dessert"]
_WORDS = {  # class index -> adjectives that carry it
    1: ["great", "excellent", "wonderful", "lovely", "superb", "fantastic", "good", "brilliant", "pleasant",
        "enjoyable", "amazing", "friendly"],
    0: ["terrible", "awful", "boring", "poor", "dreadful", "disappointing", "bad", "horrible", "dull",
        "mediocre", "annoying", "rude"],
}
_VERBS = {1: ["loved", "enjoyed", "recommend", "liked"], 0: ["hated", "regret", "disliked", "returned"]}
_INTENSIFIERS = ["", "", "really ", "very ", "quite ", "truly ", "rather ", "so "]
_OPENERS = ["", "", "", "honestly, ", "overall, ", "i think ", "to be fair, ", "in my opinion ", "well, ",
            "after two weeks, ", "for the money, "]
_TAILS = ["", "", "", " today", " this time", " again", " as expected", " for once", " at first"]
_TEMPLATES = [  # plain sentences: the class's own words
    "{o}{s} was {i}{a}{t}.",
    "{o}{s} is {i}{a}.",
    "{o}i found {s} {i}{a}{t}.",
    "{o}i {v} {s}{t}.",
    "{o}{s} was {a} and {s2} was {a2}.",
    "what {i}{a} {n}!",
]
_NEGATED = [  # harder: the other class's word, negated
    "{o}{s} was not {i}{b}{t}.",
    "{o}i did not think {s} was {b}.",
    "{o}{s} was never {b}.",
]
_CONTRAST = "{o}{s} looked {b} but {s2} was {i}{a}{t}."  # hardest: the clause after "but" decides
NEGATED_SHARE, CONTRAST_SHARE, FLIPPED_SHARE = 0.10, 0.06, 0.03


def sample_sentences(size: int, seed: int) -> tuple[list[str], np.ndarray]:
    """`size` short review sentences, half negative (0), half positive (1), in random order.

    Learnable but not trivially: neutral openers, subjects and tails appear in both classes; 10%
    are negations of the other class's words, 6% contrast two clauses ("... but ..."), and 3% of
    the labels are flipped, so a good bag-of-words model lands near 0.85-0.9, not 1.0.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(size) % 2)
    kinds = rng.random(size)
    texts = []
    for label, kind in zip(labels, kinds):
        own, other = _WORDS[int(label)], _WORDS[1 - int(label)]
        s, s2 = rng.choice(_SUBJECTS, 2, replace=False)
        slots = {"o": rng.choice(_OPENERS), "s": s, "s2": s2, "i": rng.choice(_INTENSIFIERS),
                 "a": rng.choice(own), "a2": rng.choice(own), "b": rng.choice(other), "t": rng.choice(_TAILS),
                 "v": rng.choice(_VERBS[int(label)]), "n": s.split()[-1]}
        if kind < NEGATED_SHARE:
            template = rng.choice(_NEGATED)
        elif kind < NEGATED_SHARE + CONTRAST_SHARE:
            template = _CONTRAST
        else:
            template = rng.choice(_TEMPLATES)
        text = str(template).format(**slots)
        texts.append(text[0].upper() + text[1:])
    flipped = rng.random(size) < FLIPPED_SHARE
    return texts, np.where(flipped, 1 - labels, labels).astype(np.int64)


# --- parsing ------------------------------------------------------------------------------------

def _sentiment_file(path: Path) -> tuple[list[str], np.ndarray, str]:
    """(sentences, 0/1 labels, sha256) of one UCI file; lines split on \\n only (imdb's
    sentences contain U+0085, which str.splitlines would break on)."""
    content = read_content(path)
    text = decode(content, "utf-8", path, ENCODING_HINT)
    if not text.strip():
        raise DlxError(f"{path}: empty file; expected lines 'sentence<TAB>0|1'")
    sentences, labels = [], []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        sentence, tab, score = line.rpartition("\t")
        score = score.strip()
        if not tab or not score:
            raise DlxError(f"{path}: label missing on line {number}; expected 'sentence<TAB>0|1'")
        if score not in ("0", "1"):
            raise DlxError(f"{path}: label {score!r} on line {number} is not 0 or 1; is this a UCI sentiment file?")
        if not sentence.strip():
            raise DlxError(f"{path}: empty sentence on line {number}; fill or drop that line")
        sentences.append(sentence.strip())
        labels.append(int(score))
    return sentences, np.array(labels, dtype=np.int64), hashlib.sha256(content).hexdigest()


def _separator(delimiter: str) -> str:
    return {"\\t": "\t", "tab": "\t"}.get(delimiter, delimiter)


def _delimited_columns(content: bytes, suffix: str, o: TextFileOptions, shown: str) -> tuple[list[str], list[str]]:
    """Texts and raw labels of a delimited file; row i sits on line i + 1 (+1 with a header).

    Tab-separated files are read without quoting (review text is full of quote marks, as in the
    UCI files); other separators follow CSV quoting.
    """
    import csv

    import pandas as pd

    text = decode(content, o.encoding, shown, ENCODING_HINT).removeprefix("\ufeff")
    if not text.strip():
        raise DlxError(f"{shown}: empty file; it holds no texts")
    sep = _separator(o.delimiter) if o.delimiter != "auto" else ("," if suffix == ".csv" else "\t")
    positions = [_position(c) for c in (o.text_col, o.label_col)]
    header = o.header == "true" or (o.header == "auto" and None in positions)
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=0 if header else None, dtype=str,
                            keep_default_na=False, skip_blank_lines=True,
                            quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL)
    except (pd.errors.ParserError, ValueError) as e:
        raise DlxError(f"{shown}: malformed {'tab' if sep == chr(9) else repr(sep)}-separated text "
                       f"({str(e).strip()}); set delimiter= to the file's separator") from None
    return _columns(frame, o, shown, lambda row: f"line {row + 1 + int(header)}")


def _parquet_columns(content: bytes, o: TextFileOptions, shown: str) -> tuple[list[str], list[str]]:
    import pandas as pd
    import pyarrow

    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except (OSError, ValueError, pyarrow.ArrowException) as e:
        raise DlxError(f"{shown}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    return _columns(frame, o, shown, lambda row: f"row {row}")


def _position(column: str) -> int | None:
    return int(column) if re.fullmatch(r"\d+", column.strip()) else None


def _columns(frame: "pd.DataFrame", o: TextFileOptions, shown: str, where) -> tuple[list[str], list[str]]:
    """The text and label columns (by name or position) as strings; missing ones are errors."""
    picked = []
    for what, column in (("text", o.text_col), ("label", o.label_col)):
        position = _position(column)
        if position is None and column in frame.columns:
            picked.append(frame[column])
        elif position is not None and position < frame.shape[1]:
            picked.append(frame.iloc[:, position])
        else:
            found = ", ".join(map(str, frame.columns)) if position is None else f"{frame.shape[1]} columns"
            raise DlxError(f"{shown}: no {what} column {column!r} (found: {found}); set {what}_col= to a column "
                           "name or 0-based position")
    if frame.empty:
        raise DlxError(f"{shown}: no rows; it holds no texts")
    text, label = (column.reset_index(drop=True) for column in picked)
    for what, column in (("text", text), ("label", label)):
        empty = column.isna() | (column.astype(str).str.strip() == "")
        if empty.any():
            raise DlxError(f"{shown}: {what} missing on {where(int(np.flatnonzero(empty.to_numpy())[0]))}; "
                           "fill or drop that row")
    return text.astype(str).str.strip().tolist(), label.astype(str).str.strip().tolist()


def _encode_labels(raw: list[str], shown: str) -> tuple[np.ndarray, list[str]]:
    """Label strings -> indices 0..C-1 in sorted order (numerically when every label is a number)."""
    distinct = set(raw)
    numeric = all(re.fullmatch(r"-?\d+(\.\d+)?", value) for value in distinct)
    names = sorted(distinct, key=float if numeric else str)
    if len(names) < 2:
        raise DlxError(f"{shown}: every text has the label {names[0]!r}; a classifier needs at least two "
                       "classes (check label_col=)")
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[value] for value in raw], dtype=np.int64), names


# --- folds and the artifact ---------------------------------------------------------------------

def _prepare(texts: list[str], labels: np.ndarray, names: list[str], seed: int, o: FoldOptions, source: str,
             inputs: dict[str, str]) -> tuple[Tables, dict]:
    """Assign folds and build the two tables and the meta fields."""
    import pandas as pd

    counts = np.bincount(labels, minlength=len(names))
    if (counts > 0).sum() < 2:
        raise DlxError(f"{source}: every text has the label {names[int(np.argmax(counts))]!r}; "
                       "a classifier needs at least two classes")
    kind = o.protocol if o.protocol != "auto" else ("cv" if len(texts) <= AUTO_CV_LIMIT else "holdout")
    fold = _folds(labels, counts, names, kind, o, seed, source)
    tables = {
        "texts": pd.DataFrame({"text": pd.Series(texts, dtype=str), "label": labels.astype(np.int64),
                               "fold": fold.astype(np.int64)}),
        "labels": pd.DataFrame({"index": np.arange(len(names), dtype=np.int64), "name": pd.Series(names, dtype=str)}),
    }
    n_folds = o.folds if kind == "cv" else 1
    fields = {
        "source": source,
        "inputs": inputs,
        "splits": {"texts": len(texts)},
        "schema": {"kind": "text", "n_classes": len(names), "columns": {"text": "str", "label": "int64", "fold": "int64"}},
        "protocol": {"kind": kind, "folds": n_folds, **({"test_fraction": o.test_fraction} if kind == "holdout" else {})},
        "classes": list(names),
        "class_counts": {name: int(c) for name, c in zip(names, counts)},
    }
    return tables, fields


def _folds(labels: np.ndarray, counts: np.ndarray, names: list[str], kind: str, o: FoldOptions, seed: int,
           source: str) -> np.ndarray:
    """Stratified seeded fold per text: 0..k-1 (cv) or 0 = test, -1 = train (holdout)."""
    from sklearn.model_selection import StratifiedKFold

    need = o.folds if kind == "cv" else 2
    rare = [(name, int(c)) for name, c in zip(names, counts) if 0 < c < need]
    if rare:
        name, count = rare[0]
        fix = "lower folds= or use protocol=holdout" if kind == "cv" else "add texts of that class or drop them"
        raise DlxError(f"{source}: class {name!r} has only {count} text(s), too few to stratify "
                       f"{f'{o.folds} folds' if kind == 'cv' else 'a test split'}; {fix}")
    fold = np.full(len(labels), -1, dtype=np.int64)
    if kind == "cv":
        splitter = StratifiedKFold(n_splits=o.folds, shuffle=True, random_state=seed)
        for f, (_, test) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
            fold[test] = f
    else:
        try:
            _, test = holdout(np.arange(len(labels)), o.test_fraction, seed, stratify_by=labels)
        except DlxError:
            raise DlxError(f"{source}: cannot hold out test_fraction={o.test_fraction} of {len(labels)} texts "
                           f"with every class on both sides; choose another test_fraction") from None
        fold[test] = 0
    return fold
