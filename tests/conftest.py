"""Shared test setup: isolate the data layer from the user's home and data dirs; fake IDX files."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Before anything imports Keras or TensorFlow: quiet logs, nothing written under ~, and the
# default backend regardless of the developer's shell.
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="dlx-keras-home-")
os.environ["MPLBACKEND"] = "Agg"
os.environ.pop("DLX_RUNS_DIR", None)


@pytest.fixture(autouse=True)
def _isolated_data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DLX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DLX_DATA_DIR", raising=False)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)
    return path


@pytest.fixture
def idx_bytes():
    """array -> an IDX uint8 file's content (magic 0x0800|ndim, big-endian dims, data)."""
    return _idx_bytes


@pytest.fixture
def write_file():
    """(path, content) -> path; gzip-compressed when the name ends in .gz."""
    return _write_file


@pytest.fixture
def fake_mnist(tmp_path) -> Path:
    """A directory with the four MNIST .gz files: 50 train and 20 test 28x28 images, labels 0..9."""
    rng = np.random.default_rng(0)
    directory = tmp_path / "fake-mnist"
    for prefix, n in [("train", 50), ("t10k", 20)]:
        _write_file(directory / f"{prefix}-images-idx3-ubyte.gz", _idx_bytes(rng.integers(0, 256, (n, 28, 28))))
        _write_file(directory / f"{prefix}-labels-idx1-ubyte.gz", _idx_bytes(np.arange(n) % 10))
    return directory


@pytest.fixture
def fake_aws(monkeypatch):
    """Fake credentials and region for moto; nothing can reach real AWS."""
    for var, value in [("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")]:
        monkeypatch.setenv(var, value)
    for var in ["AWS_PROFILE", "AWS_SESSION_TOKEN"]:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def no_aws_credentials(tmp_path, monkeypatch):
    """No credentials anywhere botocore looks: environment, files, container and instance metadata."""
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE"]:
        monkeypatch.delenv(var, raising=False)
    for var, value in [("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none")), ("AWS_CONFIG_FILE", str(tmp_path / "none")),
                       ("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_DEFAULT_REGION", "us-east-1")]:
        monkeypatch.setenv(var, value)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module: the test machine's two cores are shared, and two OpenMP
    threads fighting other jobs ran these small models many times slower than one."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Interrupted(Exception):
    """Stands in for a kill (a spot interruption) in the middle of training."""


class EpochCounter:
    """The epochs a trainer really starts; interrupts before the next one once ``count`` is ``stop_after``."""

    def __init__(self) -> None:
        self.count, self.stop_after = 0, None


@pytest.fixture
def epochs_run(monkeypatch) -> EpochCounter:
    """Counts the epochs begun through the epoch log (every PyTorch topic's loop, and the Keras fit)."""
    from components.epoch_log import EpochLog

    counter, begin = EpochCounter(), EpochLog.on_epoch_begin

    def counting_begin(self, epoch, logs=None):
        begin(self, epoch, logs)
        if counter.count == counter.stop_after:
            raise Interrupted(f"interrupted after {counter.count} epochs")
        counter.count += 1

    monkeypatch.setattr(EpochLog, "on_epoch_begin", counting_begin)
    return counter


@pytest.fixture(scope="session")
def default_runs(tmp_path_factory) -> dict:
    """Every topic's default run (`dlx run TOPIC`, no other flags) in one runs directory, made once:
    topic -> (run directory, metrics). Slow: about as long as all the defaults together."""
    from components.files import read_json
    from components.registry import topics
    from dlx.cli import main

    runs = tmp_path_factory.mktemp("default-runs")
    found = {}
    for name in topics():
        before = set(runs.iterdir())
        assert main(["run", name, "--runs-dir", str(runs)]) == 0, name
        (run_dir,) = [path for path in set(runs.iterdir()) - before if path.is_dir()]
        found[name] = (run_dir, read_json(run_dir / "metrics.json"))
    return found
