"""The ratings datasets: synthetic, MovieLens (both layouts), ratings-file:PATH, and their artifact."""

import hashlib
import json
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from components.data import DATASETS, get_dataset, load_dataset, load_ratings, prepare_dataset
from components.data import ratings
from components.data.splits import holdout_within_groups
from components.errors import DlxError

REAL_ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "movielens-100k"
GENRES = ["unknown", "Action", "Comedy"]
# (user, item, rating): 4 users x 5 items, user 4 and item 50 rate/are rated once
RATINGS = [(1, 10, 5), (1, 20, 3), (1, 30, 4), (2, 10, 4), (2, 20, 2), (2, 40, 1), (3, 10, 3),
           (3, 30, 5), (3, 40, 4), (1, 40, 2), (2, 30, 3), (3, 20, 1), (4, 50, 5), (1, 50, 3)]


def _ml100k(directory: Path, rows=RATINGS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{u}\t{i}\t{r}\t88125{n:04d}\n" for n, (u, i, r) in enumerate(rows))
    (directory / "u.data").write_text(data)
    (directory / "u1.base").write_text("".join(data.splitlines(keepends=True)[:10]))
    (directory / "u1.test").write_text("".join(data.splitlines(keepends=True)[10:]))
    (directory / "u.genre").write_text("".join(f"{g}|{n}\n" for n, g in enumerate(GENRES)) + "\n")
    items = [f"{i}|Film {i} (1995)|01-Jan-1995||http://x|0|{int(i % 20 == 0)}|1\n" for i in (10, 20, 30, 40, 50)]
    (directory / "u.item").write_bytes("".join(items).replace("Film 10", "Café").encode("latin-1"))
    return directory


def _latest(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"] + [f"{u},{i},{r - 0.5},9641{n}" for n, (u, i, r) in enumerate(RATINGS)]
    (directory / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"] + [f'{i},"Film, {i} (1995)",Comedy|Drama' for i in (10, 20, 30, 40, 50)]
    (directory / "movies.csv").write_text("\n".join(movies) + "\n")
    return directory


def _decoded(tables: dict, split: str) -> set:
    """A split's rows with the original ids put back (unknown indices stay -1)."""
    users = dict(zip(tables["users"]["index"], tables["users"]["id"]))
    items = dict(zip(tables["items"]["index"], tables["items"]["id"]))
    return {(users.get(u, -1), items.get(i, -1), float(r)) for u, i, r in tables[split].itertuples(index=False)}


# --- registry ---------------------------------------------------------------------------------

def test_registry_and_ratings_file_prefix():
    assert {"synthetic-ratings", "movielens-100k", "movielens-latest-small", "ratings-file:PATH"} <= set(DATASETS)
    spec = get_dataset("ratings-file:/data/r.csv")
    assert (spec.name, spec.kind, spec.needs_location) == ("ratings-file:/data/r.csv", "ratings", False)
    with pytest.raises(DlxError, match="names no file"):
        get_dataset("ratings-file:")
    with pytest.raises(DlxError, match="unknown dataset 'movielens'.*ratings-file:PATH"):
        get_dataset("movielens")


@pytest.mark.parametrize("name, options, message", [
    ("synthetic-ratings", {"userz": "3"}, "unknown parameter 'userz' for dataset synthetic-ratings; valid parameters: users"),
    ("synthetic-ratings", {"users": "many"}, "bad value 'many' for parameter users"),
    ("synthetic-ratings", {"density": "0"}, "density"),
    ("movielens-100k", {"split": "u9"}, "choose one of random, u1"),
    ("movielens-latest-small", {"split": "u1"}, "takes no options"),
    ("digits", {"x": "1"}, "takes no options"),
])
def test_bad_options(tmp_path, name, options, message):
    with pytest.raises(DlxError, match=message):
        prepare_dataset(name, tmp_path / "out", options=options, data_dir=str(tmp_path) if "movielens" in name else None)
    assert not (tmp_path / "out").exists()


# --- synthetic --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """(tables, meta) for (data_seed, seed) = (0, 0), (0, 0), (0, 1), (1, 0); 100 users x 80 items."""
    root = tmp_path_factory.mktemp("synthetic")
    prepared = []
    for n, (data_seed, seed) in enumerate([(0, 0), (0, 0), (0, 1), (1, 0)]):
        prepare_dataset("synthetic-ratings", root / str(n), seed=seed,
                        options={"users": "100", "items": "80", "data_seed": str(data_seed), "noise": "0.25",
                                 "density": "0.05"})
        prepared.append(load_ratings(root / str(n)))
    return prepared


def test_synthetic_artifact(synthetic):
    tables, meta = synthetic[0]
    assert meta["splits"] == {"train": 288, "val": 32, "test": 80}  # 5% of 8,000 cells
    assert meta["schema"] == {"kind": "ratings", "n_users": len(tables["users"]), "n_items": len(tables["items"]),
                              "rating_range": [1.0, 5.0], "unknown_index": -1}
    assert (meta["noise_sigma"], meta["rank"]) == (0.25, 5) and 0.15 < meta["noise_rmse"] <= 0.25
    assert meta["options"] == {"users": 100, "items": 80, "rank": 5, "noise": 0.25, "density": 0.05, "data_seed": 0}
    every = pd.concat([tables[s] for s in ("train", "val", "test")])
    assert every["rating"].between(1, 5).all() and every["rating"].std() > 0.5
    assert all(tables[s].dtypes.tolist() == [np.int32, np.int32, np.float32] for s in ("train", "val", "test"))


def test_synthetic_is_deterministic_and_seeded(synthetic):
    (a, _), (again, _), (other_split, _), (other_data, _) = synthetic
    for name in a:
        pd.testing.assert_frame_equal(a[name], again[name])
    def ratings(tables, *splits):
        return sorted(pd.concat([tables[s]["rating"] for s in splits]))

    assert ratings(a, "test") == ratings(other_split, "test")  # the test split ignores the run seed
    assert ratings(a, "train", "val") == ratings(other_split, "train", "val")
    assert _decoded(a, "val") != _decoded(other_split, "val")
    assert ratings(a, "test") != ratings(other_data, "test")


def test_validation_from_half_the_groups():
    indices, groups = np.arange(100, 1100), np.repeat(np.arange(50), 20)
    kept, held = holdout_within_groups(indices, groups, 0.1, seed=3)
    assert len(held) == 100 and np.array_equal(np.sort(np.concatenate([kept, held])), indices)
    assert len(np.unique(groups[held - 100])) <= 25 < len(np.unique(groups[kept - 100]))
    again = holdout_within_groups(indices, groups, 0.1, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (kept, held)))
    assert not np.array_equal(holdout_within_groups(indices, groups, 0.1, seed=4)[1], held)
    with pytest.raises(DlxError, match="choose a smaller val_fraction"):
        holdout_within_groups(indices, groups, 0.6, seed=3)  # more than half the groups hold


def test_movielens_100k_validation_option(tmp_path):
    directory = _ml100k(tmp_path / "ml")
    for validation, want in [("users", "ratings of half the users"), ("ratings", "random ratings")]:
        meta = prepare_dataset("movielens-100k", tmp_path / validation, data_dir=str(directory),
                               options={"validation": validation})
        assert meta["validation"] == want and meta["splits"]["val"] >= 1
    with pytest.raises(DlxError, match="validation"):
        prepare_dataset("movielens-100k", tmp_path / "bad", data_dir=str(directory), options={"validation": "time"})


# --- movielens 100k and latest-small layouts --------------------------------------------------

def test_movielens_100k_random_split(tmp_path):
    directory = _ml100k(tmp_path / "ml")
    meta = prepare_dataset("movielens-100k", tmp_path / "out", data_dir=str(directory), seed=2)
    tables, meta_read = load_ratings(tmp_path / "out")
    assert meta_read == meta and meta["source"] == str(directory)
    assert sum(meta["splits"].values()) == 14 and meta["splits"]["test"] == 3
    assert meta["inputs"]["u.data"] == hashlib.sha256((directory / "u.data").read_bytes()).hexdigest()
    assert set(meta["inputs"]) == {"u.data", "u.item", "u.genre"}
    together = set().union(*(_decoded(tables, s) for s in ("train", "val", "test")))
    known = {(u, i, float(r)) for u, i, r in RATINGS}
    assert {row for row in together if -1 not in row[:2]} <= known
    assert _decoded(tables, "train") <= known
    items = tables["items"].set_index("id")
    assert list(tables["users"]["index"]) == list(range(len(tables["users"])))
    assert tables["users"]["id"].is_monotonic_increasing
    if 10 in items.index:
        assert (items.loc[10, "title"], items.loc[10, "genres"]) == ("Café (1995)", "Comedy")
    if 20 in items.index:
        assert items.loc[20, "genres"] == "Action|Comedy"


def test_movielens_100k_u1_split_and_unseen_ids(tmp_path):
    directory = _ml100k(tmp_path / "root" / "movielens-100k")
    meta = prepare_dataset("movielens-100k", tmp_path / "out", data_dir=str(tmp_path / "root"),
                           options={"split": "u1"})
    tables, _ = load_ratings(tmp_path / "out")
    assert meta["source"] == str(directory) and meta["options"] == {"split": "u1", "validation": "auto"}
    assert meta["validation"] == "ratings of half the users"
    assert meta["splits"]["test"] == 4 and meta["splits"]["train"] + meta["splits"]["val"] == 10
    assert set(meta["inputs"]) == {"u1.base", "u1.test", "u.item", "u.genre"}
    # user 4 and item 50 appear only in u1.test: index -1, absent from the mappings
    assert 4 not in set(tables["users"]["id"]) and 50 not in set(tables["items"]["id"])
    assert (4, -1, 5.0) not in _decoded(tables, "test")
    assert (-1, -1, 5.0) in _decoded(tables, "test") and (1, -1, 3.0) in _decoded(tables, "test")
    assert meta["unseen"]["test"] == 2 and meta["test_split"] == "official"
    assert meta["schema"]["n_users"] == 3 and (tables["test"]["user"] >= -1).all()


def test_movielens_latest_small_layout(tmp_path, monkeypatch):
    directory = _latest(tmp_path / "root" / "movielens-latest-small")
    monkeypatch.setenv("DLX_DATA_DIR", str(tmp_path / "root"))
    meta = prepare_dataset("movielens-latest-small", tmp_path / "out")
    tables, _ = load_ratings(tmp_path / "out")
    assert meta["source"] == str(directory) and meta["schema"]["rating_range"] == [0.5, 5.0]
    assert sum(meta["splits"].values()) == 14
    assert set(tables["train"]["rating"]) <= {0.5, 1.5, 2.5, 3.5, 4.5}
    row = tables["items"].iloc[0]
    assert row["title"] == f"Film, {row['id']} (1995)" and row["genres"] == "Comedy|Drama"


def test_movielens_latest_small_is_not_downloaded(tmp_path):
    with pytest.raises(DlxError, match=r"movielens-latest-small: not downloaded automatically; unzip .*ml-latest-small.zip and pass --data-dir"):
        prepare_dataset("movielens-latest-small", tmp_path / "out")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "u.data").write_text(""), r"u.data: empty file"),
    (lambda d: (d / "u.data").write_text("1\t10\tfive\t1\n"), r"u.data: rating 'five' on line 1 is not a number"),
    (lambda d: (d / "u.data").write_text("1\t10\t4\t1\n2\t10\t9\t1\n"), r"rating 9 \(user 2, item 10\) is outside the declared range 1..5"),
    (lambda d: (d / "u.data").write_text("1\t10\t4\t1\n1\t10\t3\t2\n"), "user 1 rated item 10 more than once"),
    (lambda d: (d / "u.data").write_bytes(b"1\t10\t4\t1\n\xff\t10\t3\t2\n"), r"u.data: line 2 is not UTF-8 text \(byte 0xff at offset 9\)"),
    (lambda d: (d / "u.data").write_text("1\t10\n"), "u.data: rating missing on line 1"),
    (lambda d: (d / "u.item").write_text("10|Film\n"), "u.item: line 1 is not id|title"),
    (lambda d: (d / "u.genre").write_text("Action\n"), "is this u.genre"),
    (lambda d: (d / "u.item").unlink(), "lacks u.item"),
], ids=["empty", "non-numeric", "out of range", "duplicate", "undecodable", "missing column", "bad u.item",
        "bad u.genre", "missing file"])
def test_movielens_bad_input(tmp_path, damage, message):
    directory = _ml100k(tmp_path / "ml")
    damage(directory)
    with pytest.raises(DlxError, match=message) as err:
        prepare_dataset("movielens-100k", tmp_path / "out", data_dir=str(directory))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_u1_pair_in_both_files_is_refused(tmp_path):
    directory = _ml100k(tmp_path / "ml")
    (directory / "u1.test").write_text("1\t10\t5\t1\n")
    with pytest.raises(DlxError, match="in both the training and the test file"):
        prepare_dataset("movielens-100k", tmp_path / "out", data_dir=str(directory), options={"split": "u1"})


# --- ratings-file:PATH ------------------------------------------------------------------------

CUSTOM = {"user_col": "who", "item_col": "what", "rating_col": "stars", "min_rating": "0", "max_rating": "10"}


def _frame(rows=RATINGS) -> pd.DataFrame:
    return pd.DataFrame({"who": [f"u{u}" for u, _, _ in rows], "what": [i for _, i, _ in rows],
                         "stars": [2.0 * r for _, _, r in rows], "extra": 1})


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_ratings_file_with_custom_columns(tmp_path, suffix):
    path = tmp_path / f"mine{suffix}"
    _frame().to_csv(path, index=False) if suffix == ".csv" else _frame().to_parquet(path)
    meta = prepare_dataset(f"ratings-file:{path}", tmp_path / "out", options=CUSTOM)
    tables, _ = load_ratings(tmp_path / "out")
    assert meta["dataset"] == f"ratings-file:{path}" and meta["source"] == str(path)
    assert meta["schema"]["rating_range"] == [0.0, 10.0] and sum(meta["splits"].values()) == 14
    assert meta["inputs"] == {path.name: hashlib.sha256(path.read_bytes()).hexdigest()}
    assert set(tables["users"]["id"]) <= {"u1", "u2", "u3", "u4"}
    assert tables["items"]["title"].isna().all()
    assert _decoded(tables, "train") <= {(f"u{u}", i, 2.0 * r) for u, i, r in RATINGS}


@pytest.mark.parametrize("policy, expected", [("last", 3.0), ("mean", 5.5)])
def test_ratings_file_duplicate_policies(tmp_path, policy, expected):
    path = tmp_path / "dup.csv"
    rows = [(1, 1, 8), *((u, i, r) for u in range(1, 9) for i, r in [(1, 3), (2, 4)])]  # (1, 1) twice: 8, 3
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for u, i, r in rows))
    prepare_dataset(f"ratings-file:{path}", tmp_path / "out", options={"duplicates": policy, "max_rating": "10"})
    tables, meta = load_ratings(tmp_path / "out")
    assert sum(meta["splits"].values()) == 16
    rows = set().union(*(_decoded(tables, s) for s in ("train", "val", "test")))
    assert {r for u, i, r in rows if (u, i) == (1, 1)} <= {expected}


@pytest.mark.parametrize("content, options, message", [
    ("user,item,rating\n", {}, "no rows"),
    ("", {}, "empty file"),
    ("user,item,score\n1,2,3\n", {}, r"missing column.s. rating; found: user, item, score; .*rating_col="),
    ("user,item,rating\n1,2,3\n1,3,x\n", {}, "rating 'x' on line 3 is not a number"),
    ("user,item,rating\n1,2,3\n1,3,6\n", {}, r"rating 6 .user 1, item 3. is outside the declared range 1..5; .*max_rating="),
    ("user,item,rating\n1,2,3\n1,2,4\n", {}, "user 1 rated item 2 more than once; .*duplicates=last"),
    ("user,item,rating\n1,2,3\n,2,4\n", {}, "user id missing on line 3"),
    ("user,item,rating\n1,2,3\n", {"min_rating": "5", "max_rating": "1"}, "must be below max_rating"),
], ids=["no rows", "empty", "missing column", "non-numeric", "out of range", "duplicate", "missing id", "bad range"])
def test_ratings_file_bad_input(tmp_path, content, options, message):
    path = tmp_path / "r.csv"
    path.write_text(content)
    with pytest.raises(DlxError, match=message) as err:
        prepare_dataset(f"ratings-file:{path}", tmp_path / "out", options=options)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, write, message", [
    ("r.parquet", lambda p: p.write_bytes(b"PAR1 nonsense"), "not a readable Parquet file"),
    ("r.parquet", lambda p: pd.DataFrame({"user": [1], "item": [2], "rating": ["good"]}).to_parquet(p),
     "rating 'good' on row 0 is not a number"),
    ("r.parquet", lambda p: pd.DataFrame({"user": [1, None], "item": [2, 3], "rating": [1, 2]}).to_parquet(p),
     "user id missing at row 1"),
    ("r.json", lambda p: p.write_text("{}"), "unknown file type .json"),
    ("absent.csv", lambda p: None, "no such file"),
])
def test_ratings_file_bad_files(tmp_path, name, write, message):
    write(tmp_path / name)
    with pytest.raises(DlxError, match=message):
        prepare_dataset(f"ratings-file:{tmp_path / name}", tmp_path / "out")


def test_ratings_file_takes_no_data_dir(tmp_path):
    with pytest.raises(DlxError, match="takes no data dir"):
        prepare_dataset(f"ratings-file:{tmp_path}/r.csv", tmp_path / "out", data_dir=str(tmp_path))


# --- artifact ---------------------------------------------------------------------------------

def test_failed_write_leaves_no_artifact(tmp_path, monkeypatch):
    def half_write(self, path, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", half_write)
    with pytest.raises(OSError, match="disk full"):
        prepare_dataset("synthetic-ratings", tmp_path / "out", options={"users": "20", "items": "20", "density": "0.5"})
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []


@pytest.fixture
def small_artifact(tmp_path) -> Path:
    prepare_dataset("synthetic-ratings", tmp_path / "ds", options={"users": "20", "items": "20", "density": "0.5"})
    return tmp_path / "ds"


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "test.parquet").unlink(), r"not a ratings dataset artifact \(no test.parquet\)"),
    (lambda d: (d / "users.parquet").write_bytes(b"junk"), "users.parquet: corrupt dataset table"),
    (lambda d: (d / "meta.json").write_text("["), "corrupt dataset metadata"),
    (lambda d: pd.DataFrame({"user": [0]}).to_parquet(d / "val.parquet"), "rows disagree with meta.json's val size"),
    (lambda d: pd.DataFrame({"id": [0]}).to_parquet(d / "users.parquet"), r"users.parquet: lacks column\(s\) index"),
], ids=["missing table", "corrupt table", "bad json", "wrong size", "missing column"])
def test_load_ratings_rejects_a_damaged_artifact(small_artifact, damage, message):
    damage(small_artifact)
    with pytest.raises(DlxError, match=message):
        load_ratings(small_artifact)


def test_artifact_kinds_are_not_confused(small_artifact, tmp_path):
    assert sorted(p.name for p in small_artifact.iterdir()) == [
        "items.parquet", "meta.json", "test.parquet", "train.parquet", "users.parquet", "val.parquet"]
    with pytest.raises(DlxError, match="holds ratings data, not array data"):
        load_dataset(small_artifact)
    prepare_dataset("digits", tmp_path / "digits")
    with pytest.raises(DlxError, match="holds array data, not ratings data"):
        load_ratings(tmp_path / "digits")
    assert json.loads((small_artifact / "meta.json").read_text())["schema"]["kind"] == "ratings"


# --- s3:// ------------------------------------------------------------------------------------

def test_s3_locations(tmp_path, fake_aws):
    directory = _ml100k(tmp_path / "ml")
    path = tmp_path / "mine.parquet"
    _frame().to_parquet(path)
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="data")
        for file in directory.iterdir():
            s3.upload_file(str(file), "data", f"sets/movielens-100k/{file.name}")
        s3.upload_file(str(path), "data", "files/mine.parquet")
        meta = prepare_dataset("movielens-100k", tmp_path / "a", data_dir="s3://data/sets", options={"split": "u1"})
        local = prepare_dataset("movielens-100k", tmp_path / "b", data_dir=str(directory), options={"split": "u1"})
        from_file = prepare_dataset("ratings-file:s3://data/files/mine.parquet", tmp_path / "c", options=CUSTOM)
        with pytest.raises(DlxError, match="s3://data/files/none.csv: no such object"):
            prepare_dataset("ratings-file:s3://data/files/none.csv", tmp_path / "d")
    assert meta["source"] == "s3://data/sets/movielens-100k" and meta["inputs"] == local["inputs"]
    assert meta["splits"] == local["splits"] and from_file["schema"]["n_users"] > 0
    pd.testing.assert_frame_equal(load_ratings(tmp_path / "a")[0]["train"], load_ratings(tmp_path / "b")[0]["train"])


# --- the real MovieLens 100K (skipped where ../shared/data is absent) ---------------------------

@pytest.mark.skipif(not REAL_ML100K.is_dir(), reason=f"real MovieLens 100K not staged at {REAL_ML100K}")
def test_real_movielens_100k(tmp_path):
    """Both splits from the staged release; about 4 s."""
    meta = prepare_dataset("movielens-100k", tmp_path / "u1", data_dir=str(REAL_ML100K), options={"split": "u1"})
    tables, _ = load_ratings(tmp_path / "u1")
    assert meta["splits"]["train"] + meta["splits"]["val"] == 80_000 and meta["splits"]["test"] == 20_000
    assert meta["inputs"] == {n: ratings.ML100K_SHA256[n] for n in ("u1.base", "u1.test", "u.item", "u.genre")}
    assert meta["schema"]["n_users"] == 943 and tables["items"]["title"].notna().all()
    # validation as u1.test is drawn: many ratings of some users (here half), none of the others
    assert tables["val"]["user"].nunique() <= 943 // 2 + 1 and meta["splits"]["val"] == 8_000
    meta = prepare_dataset("movielens-100k", tmp_path / "random", data_dir=str(REAL_ML100K))
    assert meta["validation"] == "random ratings"
    assert sum(meta["splits"].values()) == 100_000
    assert meta["inputs"]["u.data"] == "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490"
    data = pd.read_csv(REAL_ML100K / "u.data", sep="\t", header=None)
    assert (data[0].nunique(), data[1].nunique()) == (943, 1682)
    assert meta["schema"]["n_users"] <= 943 and meta["schema"]["n_items"] <= 1682
