"""The corpus data sets: built-in docstrings, Tiny Shakespeare as released, any text file as one stream."""
import hashlib
from pathlib import Path

import pytest

from components.data import prepare_dataset
from components.data.corpus import SHAKESPEARE_SHA256, builtin_text, load_corpus
from components.errors import DlxError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare"


def test_builtin_corpus_is_deterministic_and_split_by_position(tmp_path):
    meta = prepare_dataset("builtin-corpus", tmp_path / "a")
    train, val, loaded = load_corpus(tmp_path / "a")
    text = builtin_text()
    assert train + val == text and len(text) > 300_000
    assert len(train) == int(len(text) * 0.9)  # first 90% trains, the rest validates
    assert meta["inputs"]["builtin-corpus.txt"] == hashlib.sha256(text.encode()).hexdigest()
    assert loaded["schema"] == {"kind": "corpus", "vocabulary": "".join(sorted(set(text))), "encoding": "utf-8"}
    assert loaded["splits"] == {"train": len(train), "val": len(val)}
    prepare_dataset("builtin-corpus", tmp_path / "b", seed=7)
    assert load_corpus(tmp_path / "b")[:2] == (train, val)


def test_tiny_shakespeare_reads_input_txt_from_a_data_dir(tmp_path):
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\r\n" * 20
    (tmp_path / "data" / "tinyshakespeare").mkdir(parents=True)
    (tmp_path / "data" / "tinyshakespeare" / "input.txt").write_bytes(text.encode())
    meta = prepare_dataset("tiny-shakespeare", tmp_path / "ds", data_dir=str(tmp_path / "data"))
    train, val, _ = load_corpus(tmp_path / "ds")
    assert train + val == text.replace("\r\n", "\n") and "\r" not in meta["schema"]["vocabulary"]
    assert meta["inputs"] == {"input.txt": hashlib.sha256(text.encode()).hexdigest()}


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared Tiny Shakespeare copy (../shared/data/tinyshakespeare)")
def test_the_real_tiny_shakespeare_splits_as_nanogpt(tmp_path):
    meta = prepare_dataset("tiny-shakespeare", tmp_path / "ds", data_dir=str(SHARED))
    train, val, _ = load_corpus(tmp_path / "ds")
    assert (len(train), len(val)) == (1_003_854, 111_540)  # nanoGPT's shakespeare_char split
    assert len(meta["schema"]["vocabulary"]) == 65
    assert meta["inputs"] == SHAKESPEARE_SHA256
    assert val.startswith("?\n\nGREMIO:")


def test_a_text_file_is_one_stream(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("héllo wörld\n" * 50, encoding="utf-8")
    prepare_dataset(f"text-file:{path}", tmp_path / "ds", options={"layout": "plain"})
    train, val, meta = load_corpus(tmp_path / "ds")
    assert train + val == path.read_text(encoding="utf-8") and "ö" in meta["schema"]["vocabulary"]


@pytest.mark.parametrize("content, match", [
    (b"", "the corpus is empty"),
    (b"  \n\n ", "the corpus is empty"),
    (b"ab", "too few to split"),
    ("line one\nline two caf\xe9\n".encode("latin-1"), r"line 2 is not UTF-8 text \(byte 0xe9 at offset 21\); "
                                                       "name the file's encoding with encoding="),
])
def test_bad_text_files_are_one_line_errors(tmp_path, content, match):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DlxError, match=match) as error:
        prepare_dataset(f"text-file:{path}", tmp_path / "ds", options={"layout": "plain"})
    assert "\n" not in str(error.value) and not (tmp_path / "ds").exists()


def test_latin1_file_reads_with_its_encoding(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("café crème\n".encode("latin-1") * 30)
    prepare_dataset(f"text-file:{path}", tmp_path / "ds", options={"layout": "plain", "encoding": "latin-1"})
    assert "é" in load_corpus(tmp_path / "ds")[2]["schema"]["vocabulary"]


def test_load_corpus_refuses_other_artifacts(tmp_path):
    prepare_dataset("regression", tmp_path / "ds")
    with pytest.raises(DlxError, match="not corpus data"):
        load_corpus(tmp_path / "ds")
