"""Dataset registry and the API that the prepare step and the trainers code against.

A dataset is prepared once into an artifact directory (see `artifact`); trainers only ever
read that artifact, so they never care where the data came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from components.data import images
from components.data.artifact import check_target, read_artifact, write_artifact
from components.errors import DlxError

# (data_dir, seed, val_fraction) -> (arrays, meta fields: source, inputs, splits, schema)
Loader = Callable[[str | None, int, float], tuple[dict[str, np.ndarray], dict]]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str  # one line, for `dlx list`
    kind: str  # "images": x uint8 (N, H, W), y int64 labels
    needs_location: bool  # True when the data comes from a directory, s3:// URI, cache or download
    load: Loader = field(repr=False, compare=False)


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in [
    DatasetSpec("digits", "scikit-learn's bundled 8x8 handwritten digits, 1,797 images (offline)",
                "images", needs_location=False, load=images.load_digits),
    DatasetSpec("mnist", "MNIST handwritten digits, 28x28, 60k train + 10k test (IDX files; dir, s3:// or download)",
                "images", needs_location=True, load=images.load_mnist),
]}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DlxError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def prepare_dataset(name: str, out_dir: str | Path, *, data_dir: str | None = None, seed: int = 0,
                    val_fraction: float = 0.1) -> dict:
    """Build the dataset artifact at `out_dir` (absent or empty) atomically; return its meta."""
    spec = get_dataset(name)
    out_dir = Path(out_dir)
    check_target(out_dir)
    if data_dir and not spec.needs_location:
        raise DlxError(f"dataset {name!r} is bundled and takes no data dir; drop --data-dir")
    if not 0 < val_fraction < 1:
        raise DlxError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    if not 0 <= seed < 2**32:
        raise DlxError(f"seed must be between 0 and 2**32 - 1, got {seed}")
    arrays, fields = spec.load(data_dir, seed, val_fraction)
    meta = {"dataset": name, **fields, "seed": seed, "val_fraction": val_fraction}
    write_artifact(out_dir, arrays, meta)
    return meta


def load_dataset(dataset_dir: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a prepared artifact back as (arrays, meta); a missing or corrupt one is a DlxError."""
    return read_artifact(dataset_dir)
