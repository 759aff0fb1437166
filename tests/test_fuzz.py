"""Property-based fuzzing (hypothesis) of what users hand dlx: the data loaders (IDX, ratings CSV and
Parquet, labelled text, a corpus) and the parameter parser get random and mutated inputs, and each
either works (a valid data set artifact, a checked job) or ends in a DlxError of one line; never
another exception. TRIED counts the inputs each property was given."""
import collections
import gzip
import io
import json
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.data import load_dataset, load_ratings, prepare_dataset
from components.data.corpus import load_corpus
from components.data.idx import read_images, read_labels
from components.data.text import load_texts
from components.errors import DlxError
from components.job import Job
from components.params import from_dict, parameter_types
from components.registry import topics

TRIED: collections.Counter = collections.Counter()
OUTCOMES: collections.Counter = collections.Counter()
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                derandomize=True)
"""Derandomized: the same inputs on every run, so a failure in CI is a failure here."""


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    print("\nfuzzed inputs: " + ", ".join(f"{name} {count} ({OUTCOMES[name, 'valid']} valid, "
                                         f"{OUTCOMES[name, 'refused']} refused in one line)"
                                         for name, count in sorted(TRIED.items())))


def _one_line_or(name: str, call, check=lambda result: None):
    """``call()`` either returns (then ``check`` its result) or raises a one-line DlxError."""
    TRIED[name] += 1
    try:
        result = call()
    except DlxError as exc:
        assert "\n" not in str(exc) and str(exc), repr(exc)
        OUTCOMES[name, "refused"] += 1
        return None
    check(result)
    OUTCOMES[name, "valid"] += 1
    return result


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    """``data`` with some bytes replaced (position, value) and optionally truncated."""
    out = bytearray(data)
    for position, value in edits:
        if out:
            out[position % len(out)] = value
    return bytes(out[:cut] if cut is not None else out)


def _idx(array: np.ndarray) -> bytes:
    return (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + \
        array.astype(np.uint8).tobytes()


EDITS = st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6)
CUTS = st.none() | st.integers(0, 2_000)


@settings(FUZZ, max_examples=300)
@given(st.sampled_from(["images", "labels"]), st.booleans(), EDITS, CUTS, st.binary(max_size=64), st.booleans())
def test_idx_files_read_or_refuse_in_one_line(kind, zipped, edits, cut, noise, use_noise):
    array = np.arange(3 * 4 * 4).reshape(3, 4, 4) if kind == "images" else np.arange(7) % 10
    content = noise if use_noise else _mutate(_idx(array), edits, cut)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("file.gz" if zipped else "file")
        path.write_bytes(gzip.compress(content) if zipped and not use_noise else content)
        reader = read_images if kind == "images" else read_labels
        _one_line_or("idx", lambda: reader(path), lambda found: found[0].dtype == np.uint8)


@settings(FUZZ, max_examples=40)
@given(st.sampled_from(["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                        "t10k-labels-idx1-ubyte.gz"]), EDITS, CUTS)
def test_a_mutated_mnist_folder_prepares_or_refuses_in_one_line(name, edits, cut):
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for prefix, n in (("train", 50), ("t10k", 20)):
            files = {f"{prefix}-images-idx3-ubyte.gz": _idx(rng.integers(0, 256, (n, 28, 28))),
                     f"{prefix}-labels-idx1-ubyte.gz": _idx(np.arange(n) % 10)}
            for file, content in files.items():
                (root / file).write_bytes(gzip.compress(_mutate(content, edits, cut) if file == name else content))
        _one_line_or("mnist folder", lambda: prepare_dataset("mnist", root / "out", data_dir=str(root)),
                     lambda meta: load_dataset(root / "out"))


CELLS = st.one_of(st.integers(-3, 10).map(str), st.floats(allow_nan=True, allow_infinity=True).map(str),
                  st.text(alphabet=string.printable, max_size=6), st.just(""))


def _mostly(valid, broken, odds: int = 12):
    """Mostly ``valid``, one time in ``odds`` ``broken``."""
    return st.integers(0, odds - 1).flatmap(lambda k: broken if k == 0 else valid)


def _near(rows, cells):
    """Valid rows, then (half the time) a few cells replaced by ``cells``: files near the valid
    ones, where the bugs hide."""
    edits = _mostly(st.just([]), st.lists(st.tuples(st.integers(0, 999), st.integers(0, 2), cells), min_size=1,
                                          max_size=3), 2)

    def apply(found):
        table, changes = [list(row) for row in found[0]], found[1]
        for row, column, value in changes:
            if table:
                table[row % len(table)][column % len(table[0])] = value
        return table
    return st.tuples(rows, edits).map(apply)


RATING_ROWS = _near(st.lists(st.tuples(st.integers(1, 40).map(str), st.integers(1, 40).map(str),
                                       st.integers(1, 5).map(str)), min_size=10, max_size=80, unique_by=lambda r: r[:2]),
                    CELLS)


@settings(FUZZ, max_examples=150)
@given(RATING_ROWS, st.sampled_from(["csv", "parquet", "raw"]), st.text(max_size=40),
       _mostly(st.sampled_from([{}, {"duplicates": "mean"}]), st.just({"user_col": "u"}), 6))
def test_ratings_files_prepare_or_refuse_in_one_line(rows, form, raw, options):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"r.{'parquet' if form == 'parquet' else 'csv'}"
        frame = pd.DataFrame(rows, columns=["user", "item", "rating"])
        if form == "parquet":
            frame.to_parquet(path)
        elif form == "csv":
            frame.to_csv(path, index=False)
        else:
            path.write_text("user,item,rating\n" + raw, encoding="utf-8")
        _one_line_or(f"ratings {form}", lambda: prepare_dataset(f"ratings-file:{path}", Path(tmp) / "out", options=options),
                     lambda meta: load_ratings(Path(tmp) / "out"))


WORDS = st.lists(st.sampled_from(["good", "bad", "film", "food", "great", "awful", "the", "was", "not"]), min_size=1,
                 max_size=8).map(" ".join)
TEXT_ROWS = _near(st.lists(st.tuples(WORDS, st.sampled_from(["pos", "neg"])), min_size=10, max_size=60),
                  st.text(max_size=30) | st.sampled_from(["1", "0", "", "x"]))


@settings(FUZZ, max_examples=150)
@given(TEXT_ROWS, st.sampled_from(["csv", "tsv"]), st.binary(max_size=80), _mostly(st.just(False), st.just(True), 5),
       st.sampled_from([{}, {"protocol": "holdout"}, {"folds": "3"}, {"header": "false"}]))
def test_labelled_text_files_prepare_or_refuse_in_one_line(rows, suffix, noise, use_noise, options):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"texts.{suffix}"
        if use_noise:
            path.write_bytes(noise)
        else:
            buffer = io.StringIO()
            pd.DataFrame(rows, columns=["text", "label"]).to_csv(buffer, index=False, sep="\t" if suffix == "tsv" else ",")
            path.write_text(buffer.getvalue(), encoding="utf-8")
        _one_line_or("labelled text", lambda: prepare_dataset(f"text-file:{path}", Path(tmp) / "out", options=options),
                     lambda meta: load_texts(Path(tmp) / "out"))


@settings(FUZZ, max_examples=100)
@given(st.binary(max_size=3_000) | st.text(max_size=3_000).map(lambda t: t.encode("utf-8")),
       st.sampled_from(["utf-8", "latin-1"]))
def test_a_corpus_prepares_or_refuses_in_one_line(content, encoding):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.txt"
        path.write_bytes(content)
        _one_line_or("corpus", lambda: prepare_dataset(f"text-file:{path}", Path(tmp) / "out",
                                                       options={"layout": "plain", "encoding": encoding}),
                     lambda meta: load_corpus(Path(tmp) / "out"))


TOPICS = sorted(topics())
VALUES = st.one_of(st.integers(-10**12, 10**12).map(str), st.floats().map(str), st.text(max_size=12),
                   st.sampled_from(["nan", "inf", "-1", "0", "1e309", "true", "1,2,3", ",", "adam", " "]))


def _name(topic: str):
    return st.sampled_from([*parameter_types(topics()[topic].params), "epoch", "", "=x"])


@settings(FUZZ, max_examples=500)
@given(st.sampled_from(TOPICS).flatmap(lambda t: st.tuples(st.just(t), st.lists(st.tuples(_name(t), VALUES), max_size=4))),
       st.integers(-5, 2**33))
def test_parameters_from_the_command_line_parse_or_refuse_in_one_line(topic_and_pairs, seed):
    topic, pairs = topic_and_pairs
    _one_line_or("--param", lambda: Job.create(topic, params=[f"{name}={value}" for name, value in pairs], seed=seed),
                 lambda job: job.params)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=6)


@settings(FUZZ, max_examples=300)
@given(st.sampled_from(TOPICS).flatmap(lambda t: st.tuples(st.just(t), st.dictionaries(_name(t), JSON, max_size=4))))
def test_parameters_from_a_pipelines_json_parse_or_refuse_in_one_line(topic_and_values):
    topic, values = topic_and_values
    _one_line_or("params_json", lambda: from_dict(topics()[topic].params, json.loads(json.dumps(values)), topic))
