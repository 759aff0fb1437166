"""The digits and MNIST loaders, the dataset artifact, and where MNIST's files come from."""

import functools
import gzip
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

import components.data.artifact as artifact
from components.data import DATASETS, get_dataset, load_dataset, prepare_dataset
from components.data import images
from components.errors import DlxError

REAL_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SPLITS = ("train", "val", "test")


def _rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each example as one row (pixels then label), sorted: a split-order-free multiset."""
    rows = np.column_stack([x.reshape(len(x), -1).astype(np.int64), y])
    return rows[np.lexsort(rows.T[::-1])]


# --- registry and arguments -------------------------------------------------------------------

def test_registry():
    assert {"digits", "mnist"} <= set(DATASETS)
    assert not get_dataset("digits").needs_location and get_dataset("mnist").needs_location
    assert all(get_dataset(name).kind == "images" for name in ("digits", "mnist"))
    assert all("\n" not in spec.description for spec in DATASETS.values())


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(DlxError, match="unknown dataset 'mnsit'.*digits, mnist"):
        get_dataset("mnsit")


@pytest.mark.parametrize("kwargs, message", [
    ({"val_fraction": 0.0}, "val_fraction"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"seed": -1}, "seed"),
    ({"data_dir": "/somewhere"}, "bundled"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(DlxError, match=message):
        prepare_dataset("digits", tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_non_empty_out_dir_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DlxError, match="not an empty directory"):
        prepare_dataset("digits", tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


# --- digits -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Prepared digits for seeds 0, 0 (again) and 1: (arrays, meta) each."""
    root = tmp_path_factory.mktemp("digits")
    prepared = []
    for i, seed in enumerate([0, 0, 1]):
        prepare_dataset("digits", root / str(i), seed=seed)
        prepared.append(load_dataset(root / str(i)))
    return prepared


def test_digits_artifact(digits):
    arrays, meta = digits[0]
    assert meta["splits"] == {s: len(arrays[f"y_{s}"]) for s in SPLITS}
    assert sum(meta["splits"].values()) == 1797 and meta["splits"]["test"] == 360
    assert meta["splits"]["val"] == pytest.approx(0.1 * 1437, abs=1)
    assert meta["source"] == "sklearn.datasets.load_digits" and list(meta["inputs"]) == ["digits.csv.gz"]
    assert meta["schema"] == {"x": {"dtype": "uint8", "shape": [8, 8]},
                              "y": {"dtype": "int64", "classes": list(range(10))}, "value_range": [0, 16]}
    assert (meta["seed"], meta["val_fraction"]) == (0, 0.1)
    assert all(arrays[f"x_{s}"].dtype == np.uint8 and arrays[f"y_{s}"].dtype == np.int64 for s in SPLITS)
    assert arrays["x_train"].max() == 16


def test_digits_splits_partition_the_data_set(digits):
    from sklearn.datasets import load_digits

    arrays, _ = digits[0]
    whole = load_digits()
    together = _rows(np.concatenate([arrays[f"x_{s}"] for s in SPLITS]),
                     np.concatenate([arrays[f"y_{s}"] for s in SPLITS]))
    np.testing.assert_array_equal(together, _rows(whole.images, whole.target))


def test_digits_test_split_is_fixed_and_validation_follows_the_seed(digits):
    (a0, _), (a0_again, _), (a1, _) = digits
    for key in ("x_test", "y_test"):
        np.testing.assert_array_equal(a0[key], a1[key])
    for key in a0:
        np.testing.assert_array_equal(a0[key], a0_again[key])
    assert not np.array_equal(a0["x_val"], a1["x_val"])


# --- mnist from a directory -------------------------------------------------------------------

def test_mnist_from_a_directory(tmp_path, fake_mnist):
    meta = prepare_dataset("mnist", tmp_path / "out", data_dir=str(fake_mnist), seed=3)
    arrays, meta_read = load_dataset(tmp_path / "out")
    assert meta_read == meta
    assert meta["splits"] == {"train": 45, "val": 5, "test": 20}
    assert arrays["x_train"].shape == (45, 28, 28) and arrays["x_test"].shape == (20, 28, 28)
    assert meta["source"] == str(fake_mnist)
    assert meta["schema"]["x"]["shape"] == [28, 28] and meta["schema"]["value_range"] == [0, 255]
    content = gzip.decompress((fake_mnist / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert meta["inputs"]["t10k-labels-idx1-ubyte.gz"] == hashlib.sha256(content).hexdigest()
    np.testing.assert_array_equal(arrays["y_test"], np.arange(20) % 10)
    train_rows = _rows(np.concatenate([arrays["x_train"], arrays["x_val"]]),
                       np.concatenate([arrays["y_train"], arrays["y_val"]]))
    assert len(np.unique(train_rows, axis=0)) == 50  # train and val do not overlap


def test_mnist_accepts_uncompressed_files(tmp_path, fake_mnist):
    plain = fake_mnist / "t10k-images-idx3-ubyte"
    plain.write_bytes(gzip.decompress((fake_mnist / "t10k-images-idx3-ubyte.gz").read_bytes()))
    (fake_mnist / "t10k-images-idx3-ubyte.gz").unlink()
    meta = prepare_dataset("mnist", tmp_path / "out", data_dir=str(fake_mnist))
    assert "t10k-images-idx3-ubyte" in meta["inputs"]


def test_mnist_missing_file_lists_what_is_expected(tmp_path, fake_mnist):
    (fake_mnist / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DlxError, match=rf"{fake_mnist} .and {fake_mnist}/mnist/. lacks train-labels-idx1-ubyte.gz;"
                                       " pass --data-dir DIR holding .*t10k-labels-idx1-ubyte.gz"):
        prepare_dataset("mnist", tmp_path / "out", data_dir=str(fake_mnist))


def test_mnist_data_dir_must_exist(tmp_path):
    with pytest.raises(DlxError, match="is not a directory"):
        prepare_dataset("mnist", tmp_path / "out", data_dir=str(tmp_path / "nowhere"))


def test_mnist_image_label_count_mismatch(tmp_path, fake_mnist, idx_bytes, write_file):
    write_file(fake_mnist / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(49)))
    with pytest.raises(DlxError, match="50 images but .*train-labels-idx1-ubyte.gz holds 49 labels"):
        prepare_dataset("mnist", tmp_path / "out", data_dir=str(fake_mnist))


def test_mnist_train_and_test_image_sizes_must_agree(tmp_path, fake_mnist, idx_bytes, write_file):
    write_file(fake_mnist / "t10k-images-idx3-ubyte.gz", idx_bytes(np.zeros((20, 32, 32))))
    with pytest.raises(DlxError, match=r"train images are \(28, 28\) but test images are \(32, 32\)"):
        prepare_dataset("mnist", tmp_path / "out", data_dir=str(fake_mnist))


def test_corrupt_input_leaves_no_artifact(tmp_path, fake_mnist):
    labels = fake_mnist / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(labels.read_bytes()[:-12])
    with pytest.raises(DlxError, match="t10k-labels-idx1-ubyte.gz: corrupt gzip"):
        prepare_dataset("mnist", tmp_path / "out", data_dir=str(fake_mnist))
    assert not (tmp_path / "out").exists()


def test_failed_write_leaves_no_artifact_and_no_temp_dir(tmp_path, monkeypatch):
    def half_write(path, **arrays):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(artifact.np, "savez_compressed", half_write)
    with pytest.raises(OSError, match="disk full"):
        prepare_dataset("digits", tmp_path / "out")
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == []


def test_empty_existing_out_dir_is_filled(tmp_path):
    (tmp_path / "out").mkdir()
    prepare_dataset("digits", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["data.npz", "meta.json"]


def test_mnist_data_dir_may_be_a_root_with_a_mnist_subfolder(tmp_path, fake_mnist):
    fake_mnist.rename(tmp_path / "mnist")
    meta = prepare_dataset("mnist", tmp_path / "out", data_dir=str(tmp_path))
    assert meta["source"] == str(tmp_path / "mnist")


@pytest.mark.parametrize("where", ["mnist", "."])
def test_mnist_from_dlx_data_dir(tmp_path, fake_mnist, monkeypatch, where):
    root = tmp_path / "root"
    (root / where).parent.mkdir(parents=True, exist_ok=True)
    fake_mnist.rename(root / where if where != "." else root)
    monkeypatch.setenv("DLX_DATA_DIR", str(root))
    meta = prepare_dataset("mnist", tmp_path / "out")
    assert meta["source"] == str(root / "mnist" if where == "mnist" else root)


# --- reading a bad artifact -------------------------------------------------------------------

@pytest.fixture
def digits_artifact(tmp_path) -> Path:
    prepare_dataset("digits", tmp_path / "ds")
    return tmp_path / "ds"


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "data.npz").unlink(), "not a dataset artifact .no data.npz"),
    (lambda d: (d / "meta.json").write_text("{"), "corrupt dataset metadata"),
    (lambda d: (d / "data.npz").write_bytes(b"PK\3\4 not really"), "corrupt dataset arrays"),
    (lambda d: (d / "meta.json").write_text(json.dumps({"splits": {"train": 1}})), "disagree with meta.json"),
], ids=["no data.npz", "bad json", "bad npz", "wrong split size"])
def test_load_dataset_rejects_a_damaged_artifact(digits_artifact, damage, message):
    damage(digits_artifact)
    with pytest.raises(DlxError, match=message):
        load_dataset(digits_artifact)


def test_load_dataset_missing_dir(tmp_path):
    with pytest.raises(DlxError, match="not a dataset artifact"):
        load_dataset(tmp_path / "nothing")


# --- mnist download ---------------------------------------------------------------------------

@pytest.fixture
def mirror(fake_mnist, monkeypatch):
    """Serve fake_mnist over loopback HTTP as the MNIST mirror; yields the list of paths requested."""
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=fake_mnist))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setattr(images, "MNIST_URL", f"http://127.0.0.1:{server.server_address[1]}/")
    monkeypatch.setattr(images, "MNIST_SHA256", {
        name: hashlib.sha256(gzip.decompress((fake_mnist / name).read_bytes())).hexdigest()
        for name in images.MNIST_SHA256})
    yield requested
    server.shutdown()
    server.server_close()


def test_download_lands_in_the_cache_once(tmp_path, mirror):
    meta = prepare_dataset("mnist", tmp_path / "a")
    cache = tmp_path / "cache" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(images.MNIST_SHA256)
    assert len(mirror) == 4 and meta["source"] == images.MNIST_URL
    assert meta["inputs"] == images.MNIST_SHA256
    prepare_dataset("mnist", tmp_path / "b")
    assert len(mirror) == 4


def test_a_cached_file_changed_after_download_is_downloaded_again(tmp_path, mirror, fake_mnist, idx_bytes, capsys):
    prepare_dataset("mnist", tmp_path / "a")
    cached = tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    original = cached.read_bytes()
    labels = np.frombuffer(gzip.decompress(original), dtype=np.uint8, offset=8)
    cached.write_bytes(gzip.compress(idx_bytes((labels + 1) % 10)))  # still a valid label file, other labels
    capsys.readouterr()
    prepare_dataset("mnist", tmp_path / "b")
    assert "no longer matches its known sha256" in capsys.readouterr().err
    assert mirror[-1] == "/t10k-labels-idx1-ubyte.gz" and len(mirror) == 5  # that file only, once more
    assert gzip.decompress(cached.read_bytes()) == gzip.decompress(original)
    assert np.array_equal(load_dataset(tmp_path / "b")[0]["y_test"], load_dataset(tmp_path / "a")[0]["y_test"])


def test_download_checksum_mismatch_keeps_nothing(tmp_path, mirror, monkeypatch):
    monkeypatch.setitem(images.MNIST_SHA256, "t10k-images-idx3-ubyte.gz", "0" * 64)
    with pytest.raises(DlxError, match="t10k-images-idx3-ubyte.gz: the download has sha256 .* expected 0000"):
        prepare_dataset("mnist", tmp_path / "out")
    cache = tmp_path / "cache" / "mnist"
    assert "t10k-images-idx3-ubyte.gz" not in {p.name for p in cache.iterdir()}
    assert not [p for p in cache.iterdir() if p.name.endswith(".part")]
    assert not (tmp_path / "out").exists()


def test_unreachable_mirror_points_to_data_dir(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(images, "MNIST_URL", f"http://127.0.0.1:{port}/")
    with pytest.raises(DlxError, match="cannot download .*--data-dir DIR holding train-images-idx3-ubyte.gz") as err:
        prepare_dataset("mnist", tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not [p for p in (tmp_path / "cache" / "mnist").iterdir()]


# --- the real MNIST (skipped where ../shared/data is absent) ------------------------------------

@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason=f"real MNIST not staged at {REAL_MNIST}")
def test_real_mnist_via_dlx_data_dir(tmp_path, monkeypatch):
    """Found through DLX_DATA_DIR=<shared data root>; about 3 s."""
    monkeypatch.setenv("DLX_DATA_DIR", str(REAL_MNIST.parent))
    meta = prepare_dataset("mnist", tmp_path / "out")
    arrays, _ = load_dataset(tmp_path / "out")
    assert meta["source"] == str(REAL_MNIST)
    assert meta["splits"] == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert meta["inputs"] == images.MNIST_SHA256
    assert arrays["x_train"].shape[1:] == (28, 28) and arrays["x_train"].dtype == np.uint8
    assert meta["schema"]["y"]["classes"] == list(range(10))
    assert np.bincount(arrays["y_test"]).tolist()[:2] == [980, 1135]
