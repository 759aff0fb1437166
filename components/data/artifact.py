"""The dataset artifact: a directory holding `data.npz` (the arrays) and `meta.json`.

Written through `files.atomic_dir` (a temp sibling renamed into place at the end), so a failed
or interrupted prepare step never leaves a half-written dataset for a later step to trust.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from components.errors import DlxError
from components.files import atomic_dir, read_json, write_json

DATA_FILE = "data.npz"
META_FILE = "meta.json"


def check_target(out_dir: Path) -> None:
    """Fail before any work if `out_dir` cannot receive the artifact."""
    if out_dir.exists() and not (out_dir.is_dir() and not any(out_dir.iterdir())):
        raise DlxError(f"{out_dir}: already exists and is not an empty directory; "
                       "choose a new output directory or remove it")


def write_artifact(out_dir: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write the artifact at `out_dir`, which must be absent or empty (see `check_target`)."""
    with atomic_dir(out_dir) as tmp:
        np.savez_compressed(tmp / DATA_FILE, **arrays)
        write_json(tmp / META_FILE, meta)


def read_artifact(dataset_dir: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    dataset_dir = Path(dataset_dir)
    hint = "re-run the prepare step to rebuild it"
    for name in (DATA_FILE, META_FILE):
        if not (dataset_dir / name).is_file():
            raise DlxError(f"{dataset_dir}: not a dataset artifact (no {name}); {hint}")
    try:
        meta = read_json(dataset_dir / META_FILE)
        splits = dict(meta["splits"])
    except (ValueError, KeyError, TypeError) as e:
        raise DlxError(f"{dataset_dir / META_FILE}: corrupt dataset metadata ({type(e).__name__}: {e}); {hint}") from None
    try:
        with np.load(dataset_dir / DATA_FILE, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DlxError(f"{dataset_dir / DATA_FILE}: corrupt dataset arrays ({e}); {hint}") from None
    for split, n in splits.items():
        sizes = {key: len(a) for key, a in arrays.items() if key.endswith(f"_{split}")}
        if not sizes or any(size != n for size in sizes.values()):
            raise DlxError(f"{dataset_dir}: arrays {sizes} disagree with meta.json's {split} size {n}; {hint}")
    return arrays, meta
