"""Character corpora for language models: built-in standard-library text, Tiny Shakespeare, any UTF-8 file.

Every loader returns the same artifact (kind "corpus"): the training and validation text, UTF-8
encoded, as the uint8 arrays ``train_utf8`` and ``val_utf8`` of data.npz (the artifact writer
stores arrays and tables), and in meta.json the vocabulary (the sorted characters of the whole
text), the split sizes in characters and the sha256 of the inputs. The split is nanoGPT's: the
first 90% of the text trains, the last 10% validates (``val_fraction``), so validation is text the
model has never seen, not a shuffled sample of its neighbours. Line ends are normalised to \\n.

`builtin-corpus` is assembled at prepare time from the docstrings of a fixed list of standard
library modules (about 500 KB of English prose about code), so it needs no download; docstrings
change a little between Python releases, which is why meta.json records the Python version and
the text's sha256.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from components.data.artifact import DATA_FILE, HINT, read_meta
from components.data.decode import ENCODING_HINT, decode
from components.data.fetch import local_file, locate
from components.data.idx import read_content
from components.errors import DlxError

KIND = "corpus"
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/"
SHAKESPEARE_FILE = "input.txt"
SHAKESPEARE_SHA256 = {SHAKESPEARE_FILE: "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"}
# char-rnn's folder name: a data dir such as ../shared/data finds the file in tinyshakespeare/
SHAKESPEARE_FOLDER = "tinyshakespeare"

BUILTIN_MODULES = (
    "abc argparse ast asyncio.events base64 bisect calendar collections configparser contextlib copy csv "
    "dataclasses datetime decimal difflib doctest email.message enum fractions functools gettext glob heapq "
    "http.client inspect io ipaddress itertools json logging math operator optparse os pathlib pickle pprint "
    "queue random re shlex shutil statistics string struct subprocess tarfile tempfile textwrap threading "
    "timeit tokenize traceback types typing unittest.case urllib.parse uuid warnings weakref zipfile"
).split()


# --- the loaders --------------------------------------------------------------------------------

def load_builtin(data_dir: str | None, seed: int, val_fraction: float) -> tuple[dict, dict]:
    """The docstrings of BUILTIN_MODULES, in a fixed order; `seed` is unused (the split is by position)."""
    text = builtin_text()
    source = f"docstrings of {len(BUILTIN_MODULES)} standard library modules, Python {sys.version.split()[0]}"
    return corpus_artifact(text, source, {"builtin-corpus.txt": _sha256(text.encode("utf-8"))}, val_fraction,
                           "builtin-corpus")


def load_tiny_shakespeare(data_dir: str | None, seed: int, val_fraction: float) -> tuple[dict, dict]:
    """karpathy's input.txt as released (1,115,394 bytes): data dir, s3://, cache or checked download."""
    with locate(SHAKESPEARE_FOLDER, [SHAKESPEARE_FILE], data_dir=data_dir, base_url=SHAKESPEARE_URL,
                checksums=SHAKESPEARE_SHA256) as located:
        path = located.files[SHAKESPEARE_FILE]
        content = read_content(path)
        text = decode(content, "utf-8", path, hint="replace it with the original input.txt")
    return corpus_artifact(text, located.source, {SHAKESPEARE_FILE: _sha256(content)}, val_fraction,
                           str(path))


def load_text_file(path: str, seed: int, val_fraction: float, encoding: str = "utf-8") -> tuple[dict, dict]:
    """Any text file (local or s3://) as one stream; `text-file:PATH` with layout=plain lands here."""
    with local_file(path, "text-file") as local:
        content = read_content(local)
    text = decode(content, encoding, path, ENCODING_HINT)
    return corpus_artifact(text, path, {Path(path).name: _sha256(content)}, val_fraction, path)


# --- building and reading the artifact ----------------------------------------------------------

def corpus_artifact(text: str, source: str, inputs: dict[str, str], val_fraction: float,
                    shown: str) -> tuple[dict, dict]:
    """(arrays, meta fields) of a corpus: first 1 - val_fraction of the text trains, the rest validates."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise DlxError(f"{shown}: the corpus is empty (no text to learn from); give it a file with text in it")
    cut = int(len(text) * (1 - val_fraction))
    train, val = text[:cut], text[cut:]
    if len(train) < 2 or len(val) < 2:
        raise DlxError(f"{shown}: {len(text)} characters are too few to split into training and validation "
                       f"text (val_fraction {val_fraction}); give it more text")
    data = {"train_utf8": _utf8(train), "val_utf8": _utf8(val)}
    fields = {"source": source, "inputs": inputs, "splits": {"train": len(train), "val": len(val)},
              "schema": {"kind": KIND, "vocabulary": "".join(sorted(set(text))), "encoding": "utf-8"}}
    return data, fields


def load_corpus(dataset_dir: str | Path) -> tuple[str, str, dict]:
    """A prepared corpus artifact's (training text, validation text, meta); anything else is a DlxError."""
    dataset_dir = Path(dataset_dir)
    meta, splits = read_meta(dataset_dir, kind=KIND)
    path = dataset_dir / DATA_FILE
    texts = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            for split in ("train", "val"):
                texts[split] = npz[f"{split}_utf8"].tobytes().decode("utf-8")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DlxError(f"{path}: missing or corrupt corpus text ({type(e).__name__}: {e}); {HINT}") from None
    for split, text in texts.items():
        if len(text) != splits.get(split):
            raise DlxError(f"{dataset_dir}: the {split} text has {len(text)} characters, meta.json says "
                           f"{splits.get(split)}; {HINT}")
    return texts["train"], texts["val"], meta


def builtin_text() -> str:
    """Module, class and function docstrings of BUILTIN_MODULES, each once, in a fixed order."""
    import importlib
    import inspect

    seen: set[str] = set()
    parts = []

    def add(title: str, obj: object) -> None:
        doc = inspect.getdoc(obj)
        if doc and doc not in seen:
            seen.add(doc)
            parts.append(f"{title}\n\n{doc}\n")

    with warnings.catch_warnings():  # typing.io and typing.re warn when their docstrings are read
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in BUILTIN_MODULES:
            _add_module(importlib.import_module(name), add)
    return "\n".join(parts)


def _add_module(module: Any, add: Callable[[str, object], None]) -> None:
    """The module's docstring, then those of its own public classes (with their methods) and functions."""
    import inspect

    name = module.__name__
    add(name, module)
    for key, value in sorted(vars(module).items()):
        if key.startswith("_") or inspect.ismodule(value) or getattr(value, "__module__", None) != name:
            continue
        add(f"{name}.{key}", value)
        if inspect.isclass(value):
            for member, attribute in sorted(vars(value).items()):
                documented = callable(attribute) or isinstance(attribute, (property, classmethod))
                if documented and not member.startswith("_"):
                    add(f"{name}.{key}.{member}", attribute)


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
