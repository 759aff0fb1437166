"""Image-classification datasets: scikit-learn's bundled digits and MNIST (IDX files).

Both yield x as uint8 (N, H, W) exactly as stored (digits 0..16, MNIST 0..255; meta.json's
value_range tells models what to scale by) and y as int64. sklearn is imported inside the
loaders: it costs seconds, and listing datasets must not.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from components.data.fetch import locate
from components.data.idx import content_sha256, read_images, read_labels
from components.data.splits import holdout
from components.errors import DlxError

Splits = dict[str, tuple[np.ndarray, np.ndarray]]

DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0  # fixed, so runs with different seeds are scored on the same test set

MNIST_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
# sha256 of the decompressed official files (their unzipped MD5s: 6bbc9ace898e44ae57da46a324031adb,
# a25bea736e30d166cdddb491f175f624, 2646ac647ad5339dbf082846283269ea, 27ae3e4e09519cfbb04c329615203637).
# Only downloads are checked against these: a user's directory may hold another data set in the
# same format (Fashion-MNIST), which is validated by structure instead.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_FILES = {  # split -> (images file, labels file)
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


def load_digits(data_dir: str | None, seed: int, val_fraction: float) -> tuple[dict[str, np.ndarray], dict]:
    """Stratified fixed 20% test split; stratified seeded validation split of the rest."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x, y = bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
    rest, test = holdout(np.arange(len(y)), DIGITS_TEST_FRACTION, DIGITS_TEST_SEED, stratify_by=y)
    train, val = holdout(rest, val_fraction, seed, stratify_by=y[rest])
    with resources.as_file(resources.files("sklearn.datasets.data") / "digits.csv.gz") as csv:
        inputs = {csv.name: content_sha256(csv)}
    splits = {name: (x[idx], y[idx]) for name, idx in [("train", train), ("val", val), ("test", test)]}
    return _images(splits, "sklearn.datasets.load_digits", inputs, value_max=16)


def load_mnist(data_dir: str | None, seed: int, val_fraction: float) -> tuple[dict[str, np.ndarray], dict]:
    """Official t10k as the test split; a seeded random `val_fraction` of the 60k as validation."""
    names = [name for pair in MNIST_FILES.values() for name in pair]
    parts: Splits = {}
    inputs = {}
    with locate("mnist", names, data_dir=data_dir, base_url=MNIST_URL, checksums=MNIST_SHA256) as located:
        for split, (images_name, labels_name) in MNIST_FILES.items():
            images_path, labels_path = located.files[images_name], located.files[labels_name]
            x, inputs[images_path.name] = read_images(images_path)
            y, inputs[labels_path.name] = read_labels(labels_path)
            if len(x) != len(y):
                raise DlxError(f"{images_path} holds {len(x)} images but {labels_path} holds {len(y)} labels; "
                               "use files from the same release")
            parts[split] = (x, y.astype(np.int64))
    (x_train, y_train), (x_test, y_test) = parts["train"], parts["test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DlxError(f"mnist: {located.source}: train images are {x_train.shape[1:]} but test images are "
                       f"{x_test.shape[1:]}; use files from the same release")
    train, val = holdout(np.arange(len(y_train)), val_fraction, seed)
    splits = {"train": (x_train[train], y_train[train]), "val": (x_train[val], y_train[val]),
              "test": (x_test, y_test)}
    return _images(splits, located.source, inputs, value_max=255)


def _images(splits: Splits, source: str, inputs: dict[str, str],
            value_max: int) -> tuple[dict[str, np.ndarray], dict]:
    arrays = {f"{xy}_{split}": a for split, pair in splits.items() for xy, a in zip("xy", pair)}
    top = max(int(y.max()) for _, y in splits.values())
    meta = {
        "source": source,
        "inputs": inputs,
        "splits": {split: len(y) for split, (_, y) in splits.items()},
        "schema": {
            "x": {"dtype": "uint8", "shape": list(splits["train"][0].shape[1:])},
            "y": {"dtype": "int64", "classes": list(range(top + 1))},  # len() = output size
            "value_range": [0, value_max],
        },
    }
    return arrays, meta
