"""Ratings datasets: synthetic low-rank ratings, MovieLens (100K and latest-small), any CSV/Parquet.

Every loader returns the same tables: train/val/test with columns user, item (int32 indices) and
rating (float32), plus users (id -> index) and items (id -> index, title, genres). Indices are
contiguous and come from the TRAINING split only; a user or item seen only in val/test gets
UNKNOWN (-1), for the trainers' bias/mean fallback, and is absent from users/items.

Splits: the test split is either official (MovieLens u1) or a random TEST_FRACTION drawn with
the fixed TEST_SEED, so runs with different seeds are scored on the same test set; validation
is a `val_fraction` of the training part drawn with the run's seed (MovieLens u1: from half the users).

pandas is imported inside functions: listing datasets must not pay for it.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from components.data.artifact import HINT, read_tables
from components.data.decode import decode
from components.data.fetch import DATA_DIR_ENV, cache_dir, local_file, locate
from components.data.idx import read_content
from components.data.splits import holdout, holdout_within_groups
from components.errors import DlxError
from components.params import help_field

if TYPE_CHECKING:
    import pandas as pd

Tables = dict[str, "pd.DataFrame"]

UNKNOWN = -1  # index of a user/item absent from the training split
TEST_FRACTION = 0.2
TEST_SEED = 0
COLUMNS = ("user", "item", "rating")

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k/"
# sha256 of the files as released: u.data's is the published one; the others were taken from the
# staged release whose u.data matches it. Only downloads are checked against these (as for MNIST):
# a user's directory is validated by structure and its hashes recorded in meta.json's inputs.
ML100K_SHA256 = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
}
ML_LATEST_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"


@dataclass(frozen=True)
class SyntheticOptions:
    """rating = 3.5 + user bias + item bias + <user factors, item factors> + N(0, noise²), clipped."""

    users: int = help_field(500, "number of users", at_least=2)
    items: int = help_field(300, "number of items", at_least=2)
    rank: int = help_field(5, "rank of the true user/item factor model", at_least=1)
    noise: float = help_field(0.3, "sigma of the Gaussian noise: the best achievable RMSE (0: none)", at_least=0)
    density: float = help_field(0.2, "fraction of user x item cells observed (0.2: ~48 training ratings per user)",
                                above=0, at_most=1)
    data_seed: int = help_field(0, "seed of the generator (the run's seed only picks validation)", at_least=0,
                                below=2**32)


@dataclass(frozen=True)
class MovieLens100kOptions:
    split: Literal["random", "u1"] = help_field("random", "u1: the official u1.base/u1.test; random: 80/20")
    validation: Literal["auto", "ratings", "users"] = help_field(
        "auto", "validation drawn from random ratings, or from half the users (as u1.test); auto: users with u1")


@dataclass(frozen=True)
class FileOptions:
    user_col: str = help_field("user", "column holding the user id")
    item_col: str = help_field("item", "column holding the item id")
    rating_col: str = help_field("rating", "column holding the rating")
    min_rating: float = help_field(1.0, "lowest allowed rating", at_least=-1e6, at_most=1e6)
    max_rating: float = help_field(5.0, "highest allowed rating", at_least=-1e6, at_most=1e6)
    duplicates: Literal["error", "last", "mean"] = help_field(
        "error", "a (user, item) pair rated twice: error, keep the last, or average")

    def __post_init__(self) -> None:
        if not self.min_rating < self.max_rating:
            raise ValueError(f"min_rating {self.min_rating} must be below max_rating {self.max_rating}")


def load_synthetic(data_dir: str | None, seed: int, val_fraction: float,
                   options: SyntheticOptions) -> tuple[Tables, dict]:
    """Deterministic from `options` (data_seed included); `seed` only draws validation."""
    import pandas as pd

    o = options
    rng = np.random.default_rng(o.data_seed)
    scale = (0.64 / o.rank) ** 0.25  # factor entries whose dot product has sd 0.8
    user_f, item_f = rng.normal(0, scale, (o.users, o.rank)), rng.normal(0, scale, (o.items, o.rank))
    user_b, item_b = rng.normal(0, 0.5, o.users), rng.normal(0, 0.5, o.items)
    cells = np.sort(rng.choice(o.users * o.items, max(2, round(o.density * o.users * o.items)), replace=False))
    users, items = cells // o.items, cells % o.items
    truth = 3.5 + user_b[users] + item_b[items] + np.einsum("nk,nk->n", user_f[users], item_f[items])
    ratings = np.clip(truth + rng.normal(0, o.noise, len(cells)), 1, 5)
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})
    tables, fields = _prepare(frame, None, seed, val_fraction, "synthetic", {}, (1.0, 5.0))
    # clipping pulls the observed noise a little below sigma: this is the floor actually present
    noise_rmse = float(np.sqrt(np.mean((ratings - np.clip(truth, 1, 5)) ** 2)))
    return tables, {**fields, "noise_sigma": o.noise, "rank": o.rank, "noise_rmse": noise_rmse}


def load_movielens_100k(data_dir: str | None, seed: int, val_fraction: float,
                        options: MovieLens100kOptions) -> tuple[Tables, dict]:
    """u.data with a random 80/20 split, or the official u1.base/u1.test; titles from u.item."""
    import pandas as pd

    rating_files = ["u1.base", "u1.test"] if options.split == "u1" else ["u.data"]
    names = [*rating_files, "u.item", "u.genre"]
    with locate("movielens-100k", names, data_dir=data_dir, base_url=ML100K_URL,
                checksums=ML100K_SHA256) as located:
        texts = {name: _text(located.files[name], "latin-1" if name == "u.item" else "utf-8") for name in names}
        parts = [_ratings_table(located.files[n], texts[n][0], "\t", ("user", "item", "rating", "timestamp"))
                 for n in rating_files]
        genres = _genres(located.files["u.genre"], texts["u.genre"][0])
        meta = _ml100k_items(located.files["u.item"], texts["u.item"][0], genres)
    inputs = {name: sha for name, (_, sha) in texts.items()}
    frame = pd.concat(parts, ignore_index=True)
    split_at = len(parts[0]) if len(parts) == 2 else None
    by_users = options.validation == "users" or (options.validation == "auto" and options.split == "u1")
    return _prepare(frame, meta, seed, val_fraction, located.source, inputs, (1.0, 5.0), split_at=split_at,
                    val_by_users=by_users)


def load_movielens_latest(data_dir: str | None, seed: int, val_fraction: float) -> tuple[Tables, dict]:
    """ratings.csv/movies.csv from a location only: GroupLens updates this release, so there is
    no fixed checksum to download against. Without --data-dir, $DLX_DATA_DIR or else the cache
    directory is searched (the files there or in a movielens-latest-small/ subfolder)."""
    names = ["ratings.csv", "movies.csv"]
    location = data_dir or os.environ.get(DATA_DIR_ENV) or str(cache_dir())
    if not (data_dir or os.environ.get(DATA_DIR_ENV) or cache_dir().is_dir()):
        raise DlxError(f"movielens-latest-small: not downloaded automatically; unzip {ML_LATEST_URL} and "
                       f"pass --data-dir DIR holding {', '.join(names)}")
    with locate("movielens-latest-small", names, data_dir=location, base_url=ML_LATEST_URL,
                checksums={}) as located:
        texts = {name: _text(located.files[name], "utf-8") for name in names}
        frame = _ratings_table(located.files["ratings.csv"], texts["ratings.csv"][0], ",", None,
                               columns={"userId": "user", "movieId": "item", "rating": "rating"})
        movies = _csv(located.files["movies.csv"], texts["movies.csv"][0], ",", None,
                      columns={"movieId": "id", "title": "title", "genres": "genres"})
    meta = movies.assign(id=_ids(movies["id"], located.files["movies.csv"], "movieId", header=True))
    inputs = {name: sha for name, (_, sha) in texts.items()}
    return _prepare(frame, meta, seed, val_fraction, located.source, inputs, (0.5, 5.0))


def load_file(path: str, data_dir: str | None, seed: int, val_fraction: float,
              options: FileOptions) -> tuple[Tables, dict]:
    """Any CSV (UTF-8, header row) or Parquet file with user, item and rating columns; local or s3://."""
    if data_dir:
        raise DlxError(f"ratings-file:{path} names its own file; drop --data-dir")
    o = options
    columns = {o.user_col: "user", o.item_col: "item", o.rating_col: "rating"}
    with local_file(path, "ratings-file") as local:
        if local.suffix.lower() == ".csv":
            text, sha = _text(local, "utf-8")
            frame = _ratings_table(local, text, ",", None, columns=columns, shown=path)
        elif local.suffix.lower() in (".parquet", ".pq"):
            frame, sha = _parquet(local, columns, shown=path)
        else:
            raise DlxError(f"{path}: unknown file type {local.suffix or '(none)'}; use a .csv or .parquet file")
    return _prepare(frame, None, seed, val_fraction, path, {Path(path).name: sha},
                    (o.min_rating, o.max_rating), duplicates=o.duplicates)


def load_ratings(dataset_dir: str | Path) -> tuple[Tables, dict]:
    """Read a prepared ratings artifact back as ({train, val, test, users, items}: DataFrame, meta)."""
    tables, meta = read_tables(dataset_dir, ["train", "val", "test", "users", "items"], kind="ratings")
    wanted = {"train": COLUMNS, "val": COLUMNS, "test": COLUMNS, "users": ("id", "index"),
              "items": ("id", "index", "title", "genres")}
    for name, columns in wanted.items():
        missing = [c for c in columns if c not in tables[name].columns]
        if missing:
            raise DlxError(f"{dataset_dir}/{name}.parquet: lacks column(s) {', '.join(missing)}; {HINT}")
    return tables, meta


# --- reading ------------------------------------------------------------------------------------

def _text(path: Path, encoding: str) -> tuple[str, str]:
    """The file's text (gzip read transparently) and the sha256 of its content."""
    content = read_content(path)
    return decode(content, encoding, path, f"save it as {encoding.upper()}"), hashlib.sha256(content).hexdigest()


def _csv(path: Path, text: str, sep: str, names: Sequence[str] | None, columns: dict[str, str],
         shown: str | Path | None = None) -> "pd.DataFrame":
    """All-text table with `columns` (file name -> our name) renamed; header row unless `names`."""
    import pandas as pd

    shown = shown or path
    if not text.strip():
        raise DlxError(f"{shown}: empty file; it holds no ratings")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, header=None if names else 0, names=names,
                            dtype=str, keep_default_na=False, skip_blank_lines=True)
    except (pd.errors.ParserError, ValueError) as e:
        raise DlxError(f"{shown}: malformed {'tab' if sep == chr(9) else 'comma'}-separated text "
                       f"({str(e).strip()}); is this the right file?") from None
    return _select(frame, columns, shown)


def _select(frame: "pd.DataFrame", columns: dict[str, str], shown: str | Path) -> "pd.DataFrame":
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DlxError(f"{shown}: missing column(s) {', '.join(missing)}; found: {', '.join(map(str, frame.columns))}; "
                       "use the released file (for ratings-file:, name the columns with user_col=, item_col=, rating_col=)")
    if frame.empty:
        raise DlxError(f"{shown}: no rows; it holds no ratings")
    return frame[list(columns)].rename(columns=columns).reset_index(drop=True)


def _ratings_table(path: Path, text: str, sep: str, names: Sequence[str] | None,
                   columns: dict[str, str] | None = None, shown: str | Path | None = None) -> "pd.DataFrame":
    """user, item (ids as given) and rating (float) from delimited text; row i is on line
    i + 1 (+1 with a header), which error messages cite."""
    columns = columns or {c: c for c in COLUMNS}
    frame = _csv(path, text, sep, names, columns, shown)
    where = shown or path
    header = names is None
    return frame.assign(user=_ids(frame["user"], where, "user", header), item=_ids(frame["item"], where, "item", header),
                        rating=_numbers(frame["rating"], where, header))


def _parquet(path: Path, columns: dict[str, str], shown: str) -> tuple["pd.DataFrame", str]:
    import pandas as pd
    import pyarrow

    content = path.read_bytes()
    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except (OSError, ValueError, pyarrow.ArrowException) as e:
        raise DlxError(f"{shown}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    frame = _select(frame, columns, shown)
    rating = frame["rating"]
    if not pd.api.types.is_numeric_dtype(rating) or pd.api.types.is_bool_dtype(rating):
        rating = _numbers(rating.astype(str), shown, header=None)
    for column in ("user", "item"):
        if frame[column].isna().any():
            raise DlxError(f"{shown}: {column} id missing at row {_first(frame[column].isna())}; fill or drop that row")
    return frame.assign(rating=rating.astype(float)), hashlib.sha256(content).hexdigest()


def _position(row: int, header: bool | None) -> str:
    return f"row {row}" if header is None else f"line {row + 1 + int(header)}"


def _first(mask: "pd.Series") -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def _numbers(column: "pd.Series", shown: str | Path, header: bool | None) -> "pd.Series":
    import pandas as pd

    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() | ~np.isfinite(values)
    if bad.any():
        row = _first(bad)
        text = str(column.iloc[row]).strip()
        problem = f"rating {text!r} on {_position(row, header)} is not a number" if text else \
            f"rating missing on {_position(row, header)}"
        raise DlxError(f"{shown}: {problem}; fix or drop that row")
    return values.astype(float)


def _ids(column: "pd.Series", shown: str | Path, what: str, header: bool) -> "pd.Series":
    """Ids as int64 when every one is a whole number (MovieLens), else kept as text."""
    import pandas as pd

    empty = column.str.strip() == ""
    if empty.any():
        raise DlxError(f"{shown}: {what} id missing on {_position(_first(empty), header)}; fill or drop that row")
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all() and (numbers == numbers.round()).all():
        return numbers.astype("int64")
    return column


def _genres(path: Path, text: str) -> list[str]:
    """u.genre: `name|index` lines, indices 0..n-1 in order."""
    rows = [line.split("|") for line in text.splitlines() if line.strip()]
    if not rows or any(len(r) != 2 or r[1] != str(i) for i, r in enumerate(rows)):
        raise DlxError(f"{path}: expected lines 'name|index' with indices 0, 1, 2, ...; is this u.genre?")
    return [name for name, _ in rows]


def _ml100k_items(path: Path, text: str, genres: list[str]) -> "pd.DataFrame":
    """u.item: id|title|release date|video release|IMDb URL|one 0/1 flag per genre."""
    import pandas as pd

    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        flags = fields[5:]
        if len(fields) != 5 + len(genres) or not fields[0].isdigit() or set(flags) - {"0", "1"}:
            raise DlxError(f"{path}: line {number} is not id|title|release date|video release|IMDb URL|"
                           f"{len(genres)} genre flags; is this u.item?")
        records.append((int(fields[0]), fields[1], "|".join(g for g, f in zip(genres, flags) if f == "1")))
    return pd.DataFrame(records, columns=["id", "title", "genres"])


# --- splitting and encoding ---------------------------------------------------------------------

def _prepare(frame: "pd.DataFrame", item_meta: "pd.DataFrame | None", seed: int, val_fraction: float,
             source: str, inputs: dict[str, str], rating_range: tuple[float, float], *,
             split_at: int | None = None, duplicates: str = "error", val_by_users: bool = False) -> tuple[Tables, dict]:
    """Validate, split and re-encode; with `split_at`, rows from there on are the official test split;
    with `val_by_users`, validation comes from half the users (`holdout_within_groups`)."""
    import pandas as pd

    lo, hi = rating_range
    outside = (frame["rating"] < lo) | (frame["rating"] > hi)
    if outside.any():
        row = {column: frame[column].iloc[_first(outside)] for column in COLUMNS}
        raise DlxError(f"{source}: rating {row['rating']:g} (user {row['user']}, item {row['item']}) is outside "
                       f"the declared range {lo:g}..{hi:g}; fix the file or set min_rating=/max_rating=")
    if split_at is None:
        frame = _deduplicated(frame, duplicates, source)
        rest, test = holdout(np.arange(len(frame)), TEST_FRACTION, TEST_SEED)
    else:
        train_part, test_part = (_deduplicated(part, "error", source)
                                 for part in (frame.iloc[:split_at], frame.iloc[split_at:]))
        if len(train_part[["user", "item"]].merge(test_part[["user", "item"]])):
            raise DlxError(f"{source}: a (user, item) pair is in both the training and the test file; "
                           "use files from the same split")
        rest, test = np.arange(split_at), np.arange(split_at, len(frame))
    if val_by_users:
        train, val = holdout_within_groups(rest, frame["user"].to_numpy()[rest], val_fraction, seed)
    else:
        train, val = holdout(rest, val_fraction, seed)
    users = pd.Index(np.sort(frame["user"].iloc[train].unique()))
    items = pd.Index(np.sort(frame["item"].iloc[train].unique()))

    def encoded(rows: np.ndarray) -> "pd.DataFrame":
        part = frame.iloc[rows]
        return pd.DataFrame({"user": users.get_indexer(part["user"]).astype(np.int32),
                             "item": items.get_indexer(part["item"]).astype(np.int32),
                             "rating": part["rating"].to_numpy(np.float32)})

    item_table = pd.DataFrame({"id": items, "index": np.arange(len(items), dtype=np.int32)})
    item_table = (item_table.assign(title=None, genres=None) if item_meta is None
                  else item_table.merge(item_meta.drop_duplicates("id"), on="id", how="left"))
    tables = {"train": encoded(train), "val": encoded(val), "test": encoded(test),
              "users": pd.DataFrame({"id": users, "index": np.arange(len(users), dtype=np.int32)}),
              "items": item_table.astype({"title": "string", "genres": "string"})}
    splits = ("train", "val", "test")
    fields = {
        "source": source,
        "inputs": inputs,
        "splits": {name: len(tables[name]) for name in splits},
        "schema": {"kind": "ratings", "n_users": len(users), "n_items": len(items),
                   "rating_range": [lo, hi], "unknown_index": UNKNOWN},
        "unseen": {name: int(((tables[name]["user"] == UNKNOWN) | (tables[name]["item"] == UNKNOWN)).sum())
                   for name in splits[1:]},  # rows whose user or item has no training rating
        "test_split": "official" if split_at is not None else f"random {TEST_FRACTION:g} (seed {TEST_SEED})",
        "validation": "ratings of half the users" if val_by_users else "random ratings",
    }
    return tables, fields


def _deduplicated(frame: "pd.DataFrame", policy: str, source: str) -> "pd.DataFrame":
    """`frame` with each (user, item) once: error, keep the last rating, or their mean."""
    repeated = frame.duplicated(["user", "item"])
    if not repeated.any():
        return frame.reset_index(drop=True)
    if policy == "error":
        row = {column: frame[column].iloc[_first(repeated)] for column in COLUMNS}
        raise DlxError(f"{source}: user {row['user']} rated item {row['item']} more than once; remove the "
                       "repeats, or set duplicates=last or duplicates=mean")
    if policy == "last":
        return frame.drop_duplicates(["user", "item"], keep="last").reset_index(drop=True)
    return frame.groupby(["user", "item"], sort=False, as_index=False)["rating"].mean()
