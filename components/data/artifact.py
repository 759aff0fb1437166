"""The dataset artifact: a directory holding `meta.json` and the data in an open format.

Image sets keep their arrays in `data.npz`; table sets (ratings) keep one `<name>.parquet` per
table. pandas is imported only where tables are read or written: listing datasets must stay fast.

Written through `files.atomic_dir` (a temp sibling renamed into place at the end), so a failed
or interrupted prepare step never leaves a half-written dataset for a later step to trust.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from components.errors import DlxError
from components.files import atomic_dir, read_json, write_json

DATA_FILE = "data.npz"
META_FILE = "meta.json"
TABLE_SUFFIX = ".parquet"
HINT = "re-run the prepare step to rebuild it"


def check_target(out_dir: Path) -> None:
    """Fail before any work if `out_dir` cannot receive the artifact."""
    if out_dir.exists() and not (out_dir.is_dir() and not any(out_dir.iterdir())):
        raise DlxError(f"{out_dir}: already exists and is not an empty directory; "
                       "choose a new output directory or remove it")


def write_artifact(out_dir: str | Path, data: Mapping[str, Any], meta: dict) -> None:
    """Write the artifact at `out_dir`, which must be absent or empty (see `check_target`).

    numpy arrays go into `data.npz`, pandas DataFrames each into `<name>.parquet`.
    """
    with atomic_dir(out_dir) as tmp:
        arrays = {name: value for name, value in data.items() if isinstance(value, np.ndarray)}
        if arrays:
            np.savez_compressed(tmp / DATA_FILE, **arrays)
        for name, value in data.items():
            if name not in arrays:
                value.to_parquet(tmp / f"{name}{TABLE_SUFFIX}", index=False)
        write_json(tmp / META_FILE, meta)


def read_artifact(dataset_dir: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """An array artifact's (arrays, meta); a missing, corrupt or table artifact is a DlxError."""
    dataset_dir = Path(dataset_dir)
    meta, splits = read_meta(dataset_dir, kind=None)
    if not (dataset_dir / DATA_FILE).is_file():
        raise DlxError(f"{dataset_dir}: not a dataset artifact (no {DATA_FILE}); {HINT}")
    try:
        with np.load(dataset_dir / DATA_FILE, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DlxError(f"{dataset_dir / DATA_FILE}: corrupt dataset arrays ({e}); {HINT}") from None
    for split, n in splits.items():
        sizes = {key: len(a) for key, a in arrays.items() if key.endswith(f"_{split}")}
        if not sizes or any(size != n for size in sizes.values()):
            raise DlxError(f"{dataset_dir}: arrays {sizes} disagree with meta.json's {split} size {n}; {HINT}")
    return arrays, meta


def read_tables(dataset_dir: str | Path, names: Sequence[str], kind: str) -> tuple[dict[str, Any], dict]:
    """A table artifact's ({name: DataFrame}, meta); split tables must match meta.json's sizes."""
    import pandas as pd
    import pyarrow

    dataset_dir = Path(dataset_dir)
    meta, splits = read_meta(dataset_dir, kind=kind)
    tables = {}
    for name in names:
        path = dataset_dir / f"{name}{TABLE_SUFFIX}"
        if not path.is_file():
            raise DlxError(f"{dataset_dir}: not a {kind} dataset artifact (no {path.name}); {HINT}")
        try:
            tables[name] = pd.read_parquet(path)
        except (OSError, ValueError, pyarrow.ArrowException) as e:
            raise DlxError(f"{path}: corrupt dataset table ({type(e).__name__}: {e}); {HINT}") from None
        if name in splits and len(tables[name]) != splits[name]:
            raise DlxError(f"{path}: {len(tables[name])} rows disagree with meta.json's {name} size "
                           f"{splits[name]}; {HINT}")
    return tables, meta


def read_meta(dataset_dir: Path, kind: str | None) -> tuple[dict, dict[str, int]]:
    """meta.json and its split sizes, checked to be of `kind` (array artifacts have no
    `schema.kind`: None)."""
    if not (dataset_dir / META_FILE).is_file():
        raise DlxError(f"{dataset_dir}: not a dataset artifact (no {META_FILE}); {HINT}")
    try:
        meta = read_json(dataset_dir / META_FILE)
        splits = {str(split): int(n) for split, n in dict(meta["splits"]).items()}
        found = dict(meta.get("schema") or {}).get("kind")
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DlxError(f"{dataset_dir / META_FILE}: corrupt dataset metadata ({type(e).__name__}: {e}); {HINT}") from None
    if found != kind:
        raise DlxError(f"{dataset_dir}: holds {found or 'array'} data, not {kind or 'array'} data; "
                       "prepare a dataset of the kind this step reads")
    return meta, splits


def fingerprint_test_split(dataset_dir: str | Path) -> str:
    """sha256 over what a model is scored on: the artifact's test arrays and tables (names,
    types, shapes, content), or all of them when it has no test split (cross-validated text
    scores every text; a corpus its validation text)."""
    dataset_dir = Path(dataset_dir)
    arrays = {}
    if (dataset_dir / DATA_FILE).is_file():
        with np.load(dataset_dir / DATA_FILE, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    tables = {path.stem: path for path in dataset_dir.glob(f"*{TABLE_SUFFIX}")}
    names = sorted([*arrays, *tables])
    scored = [name for name in names if name.endswith("test")] or names
    digest = hashlib.sha256()
    for name in scored:
        if name in arrays:
            array = np.ascontiguousarray(arrays[name])
            digest.update(f"{name}:{array.dtype.str}:{array.shape}\n".encode())
            digest.update(array.tobytes())
        else:
            import pandas as pd

            frame = pd.read_parquet(tables[name])
            digest.update(f"{name}:{list(frame.columns)}:{list(map(str, frame.dtypes))}\n".encode())
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"
