"""The generated `sine` data set: time-ordered splits, known noise, deterministic from the seed, checked options."""
import numpy as np
import pytest

from components.data import load_dataset, prepare_dataset
from components.data.sequences import PERIODS
from components.errors import DlxError


def _whole(arrays: dict, name: str) -> np.ndarray:
    return np.concatenate([arrays[f"{name}_{split}"] for split in ("train", "val", "test")])


def test_default_series_splits_in_time_with_the_known_noise(tmp_path):
    meta = prepare_dataset("sine", tmp_path / "sine", seed=0)
    arrays, read_meta = load_dataset(tmp_path / "sine")
    assert meta == read_meta
    assert meta["splits"] == {"train": 2800, "val": 400, "test": 800}
    assert all(a.dtype == np.float32 and a.ndim == 1 for a in arrays.values())
    noise = _whole(arrays, "series") - _whole(arrays, "clean")
    truth = meta["truth"]
    assert truth["signal"] == "composite" and truth["noise_sigma"] == 0.1 and len(truth["phases"]) == 3
    assert abs(noise.std() - 0.1) < 0.005 and abs(noise.mean()) < 0.01
    assert meta["options"] == {"length": 4000, "noise": 0.1, "signal": "composite"}


def test_same_seed_same_series_other_seed_other_series(tmp_path):
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        prepare_dataset("sine", tmp_path / name, seed=seed, options={"length": "500"})
    a, b, c = (_whole(load_dataset(tmp_path / name)[0], "series") for name in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_options_shape_the_signal(tmp_path):
    meta = prepare_dataset("sine", tmp_path / "sine", seed=1, val_fraction=0.2,
                           options={"length": "1000", "noise": "0", "signal": "sine"})
    arrays, _ = load_dataset(tmp_path / "sine")
    series, clean = _whole(arrays, "series"), _whole(arrays, "clean")
    assert meta["splits"] == {"train": 600, "val": 200, "test": 200}
    assert np.array_equal(series, clean)
    period = int(PERIODS["sine"][0])
    np.testing.assert_allclose(clean[period:], clean[:-period], atol=1e-5)
    assert abs(np.abs(clean).max() - 1) < 0.01


@pytest.mark.parametrize("options, val_fraction, message", [
    ({"length": "50"}, 0.1, r"bad value 50 for parameter length of dataset sine: must be \[100, 10000000\]"),
    ({"noise": "-1"}, 0.1, r"bad value -1.0 for parameter noise of dataset sine: must be \[0, 10\]"),
    ({"signal": "square"}, 0.1, "choose one of composite, sine"),
    ({"period": "3"}, 0.1, "unknown parameter 'period' for dataset sine"),
    ({}, 0.7, "val_fraction 0.7 leaves"),
])
def test_bad_options_are_one_clear_error(tmp_path, options, val_fraction, message):
    with pytest.raises(DlxError, match=message):
        prepare_dataset("sine", tmp_path / "sine", seed=0, val_fraction=val_fraction, options=options)
    assert not (tmp_path / "sine").exists()
