"""Dataset registry and the API that the prepare step and the trainers code against.

A dataset is prepared once into an artifact directory (see `artifact`); trainers only ever
read that artifact, so they never care where the data came from. Array artifacts (images,
regression) are read with `load_dataset`, ratings artifacts with `load_ratings`; each refuses
the other kind.

Some datasets take options (`prepare_dataset(..., options={"users": "200"})`), declared as a
frozen dataclass per dataset and parsed like topic parameters. An entry named `FAMILY:PATH`
(`ratings-file:PATH`, `text-file:PATH`) is a family: any `FAMILY:<path>` is its loader bound to
<path>.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.data import corpus, images, ratings, regression, sequences, text
from components.data.artifact import check_target, read_artifact, write_artifact
from components.data.ratings import load_ratings
from components.errors import DlxError
from components.params import override, to_dict

# (data_dir, seed, val_fraction[, options]) -> (arrays or DataFrames, meta fields: source, inputs,
# splits, schema); the options instance is passed only to datasets that declare an options class
Loader = Callable[..., tuple[dict, dict]]
FAMILY_PATH = ":PATH"  # suffix of a family entry: `ratings-file:PATH` serves every `ratings-file:<path>`

__all__ = ["DATASETS", "DatasetSpec", "get_dataset", "load_dataset", "load_ratings", "parse_options", "prepare_dataset"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str  # one line, for `dlx list`
    kind: str  # "images": x uint8 (N, H, W), y int64 labels
    needs_location: bool  # True when the data comes from a directory, s3:// URI, cache or download
    load: Loader = field(repr=False, compare=False)
    options: type | None = None  # frozen dataclass of the options it takes (see components.params)


DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in [
    DatasetSpec("digits", "scikit-learn's 8x8 handwritten digits, 1,797 images (bundled)",
                "images", needs_location=False, load=images.load_digits),
    DatasetSpec("mnist", "MNIST digits, 28x28, 60k train + 10k test (dir, s3:// or download)",
                "images", needs_location=True, load=images.load_mnist),
    DatasetSpec("regression", "linear regression, 10 features, known coefficients and noise (generated)",
                "regression", needs_location=False, load=regression.load_regression),
    DatasetSpec("sine", "noisy sine or composite signal in time order, known noise (generated)",
                "sequences", needs_location=False, load=sequences.load_sine, options=sequences.SineOptions),
    DatasetSpec("synthetic-ratings", "low-rank users x items ratings with biases, known noise (generated)",
                "ratings", needs_location=False, load=ratings.load_synthetic, options=ratings.SyntheticOptions),
    DatasetSpec("movielens-100k", "MovieLens 100K, 943 users x 1,682 movies (dir, s3:// or download)",
                "ratings", needs_location=True, load=ratings.load_movielens_100k,
                options=ratings.MovieLens100kOptions),
    DatasetSpec("movielens-latest-small", "MovieLens latest-small, half stars (dir or s3://)",
                "ratings", needs_location=True, load=ratings.load_movielens_latest),
    DatasetSpec("ratings-file:PATH", "CSV/Parquet of user, item, rating (a path or s3://)",
                "ratings", needs_location=False, load=ratings.load_file, options=ratings.FileOptions),
    DatasetSpec("text-sample", "400 two-class review sentences (generated)",
                "text", needs_location=False, load=text.load_sample, options=text.SampleOptions),
    DatasetSpec("sentiment-sentences", "UCI sentiment sentences, 3 x 1,000 (dir, s3:// or download)", "text", needs_location=True, load=text.load_sentiment,
                options=text.SentimentOptions),
    DatasetSpec("text-file:PATH", "CSV/TSV/TXT/Parquet of labelled texts, or one stream (path or s3://)", "text", needs_location=False, load=text.load_file,
                options=text.TextFileOptions),
    DatasetSpec("builtin-corpus", "500 KB of standard-library docstrings, one stream (assembled)", "corpus", needs_location=False, load=corpus.load_builtin),
    DatasetSpec("tiny-shakespeare", "Tiny Shakespeare, 1.1M characters (dir, s3:// or download)", "corpus", needs_location=True,
                load=corpus.load_tiny_shakespeare),
]}


def get_dataset(name: str) -> DatasetSpec:
    """The spec for `name`; `FAMILY:<path>` (e.g. `ratings-file:r.csv`) gives the family's loader
    bound to <path>."""
    family, colon, path = name.partition(":")
    if colon and name not in DATASETS and f"{family}{FAMILY_PATH}" in DATASETS:
        if not path:
            raise DlxError(f"dataset {name!r} names no file; write it as {family}{FAMILY_PATH}")
        generic = DATASETS[f"{family}{FAMILY_PATH}"]
        return dataclasses.replace(generic, name=name, load=functools.partial(generic.load, path))
    try:
        return DATASETS[name]
    except KeyError:
        raise DlxError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}") from None


def parse_options(name: str, options: Mapping[str, str] | None) -> Any:
    """The data set's typed options (None when it declares none); bad or unknown ones are errors."""
    spec = get_dataset(name)
    if options and spec.options is None:
        raise DlxError(f"dataset {name!r} takes no options; drop {', '.join(options)}")
    return override(spec.options, options or {}, f"dataset {name}") if spec.options else None


def prepare_dataset(name: str, out_dir: str | Path, *, data_dir: str | None = None, seed: int = 0,
                    val_fraction: float = 0.1, options: Mapping[str, str] | None = None) -> dict:
    """Build the dataset artifact at `out_dir` (absent or empty) atomically; return its meta.

    `options` are the dataset's own NAME=VALUE settings (strings, parsed to their declared types).
    """
    spec = get_dataset(name)
    out_dir = Path(out_dir)
    check_target(out_dir)
    if data_dir and not spec.needs_location:
        raise DlxError(f"dataset {name!r} takes no data dir (it is bundled or names its file); drop --data-dir")
    chosen = parse_options(name, options)
    if not 0 < val_fraction < 1:
        raise DlxError(f"val_fraction must be strictly between 0 and 1, got {val_fraction}")
    if not 0 <= seed < 2**32:
        raise DlxError(f"seed must be between 0 and 2**32 - 1, got {seed}")
    data, fields = spec.load(data_dir, seed, val_fraction, *([chosen] if chosen else []))
    meta = {"dataset": name, **fields, "seed": seed, "val_fraction": val_fraction}
    if chosen:
        meta["options"] = to_dict(chosen)
    write_artifact(out_dir, data, meta)
    return meta


def load_dataset(dataset_dir: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a prepared array artifact back as (arrays, meta); a missing, corrupt or ratings one
    is a DlxError (ratings artifacts: `load_ratings`)."""
    return read_artifact(dataset_dir)
