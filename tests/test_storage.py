"""S3 as a data location (moto, no network), and the storage module's one-line errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from moto import mock_aws

from components.data import load_dataset, prepare_dataset
from components.data.storage import download_prefix, upload_file
from components.errors import DlxError


@pytest.fixture
def s3(fake_aws):
    """A moto S3 with bucket `data`; yields a boto3 client."""
    with mock_aws():
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="data")
        yield client


@pytest.fixture
def staged(s3, fake_mnist):
    """The fake MNIST files uploaded under s3://data/sets/mnist/."""
    for path in fake_mnist.iterdir():
        upload_file(path, f"s3://data/sets/mnist/{path.name}")
    return "s3://data/sets/mnist"


def test_prepare_from_s3_matches_the_local_copy(tmp_path, staged, fake_mnist):
    meta = prepare_dataset("mnist", tmp_path / "s3", data_dir=staged, seed=5)
    local_meta = prepare_dataset("mnist", tmp_path / "local", data_dir=str(fake_mnist), seed=5)
    arrays, _ = load_dataset(tmp_path / "s3")
    local, _ = load_dataset(tmp_path / "local")
    assert meta["source"] == staged and meta["inputs"] == local_meta["inputs"]
    assert arrays.keys() == local.keys()
    for key in arrays:
        np.testing.assert_array_equal(arrays[key], local[key])


def test_dlx_data_dir_may_be_an_s3_root(tmp_path, staged, monkeypatch):
    monkeypatch.setenv("DLX_DATA_DIR", "s3://data/sets/")
    assert prepare_dataset("mnist", tmp_path / "out")["source"] == "s3://data/sets/mnist"


def test_data_dir_may_be_the_s3_prefix_itself(tmp_path, staged):
    assert prepare_dataset("mnist", tmp_path / "out", data_dir=staged + "/")["source"] == staged


def test_errors_in_s3_files_name_the_object(tmp_path, staged, s3):
    s3.put_object(Bucket="data", Key="sets/mnist/t10k-labels-idx1-ubyte.gz", Body=b"not gzip")
    with pytest.raises(DlxError, match="^s3://data/sets/mnist/t10k-labels-idx1-ubyte.gz: not a gzip file"):
        prepare_dataset("mnist", tmp_path / "out", data_dir=staged)


def test_missing_bucket(tmp_path, s3):
    with pytest.raises(DlxError, match="s3://nobucket/mnist: bucket nobucket does not exist"):
        prepare_dataset("mnist", tmp_path / "out", data_dir="s3://nobucket/mnist")
    assert not (tmp_path / "out").exists()


def test_missing_keys(tmp_path, staged):
    with pytest.raises(DlxError, match="s3://data/elsewhere .and s3://data/elsewhere/mnist/. lacks train-images"):
        prepare_dataset("mnist", tmp_path / "out", data_dir="s3://data/elsewhere")


def test_download_prefix_keeps_relative_paths_and_filters(tmp_path, s3):
    for key in ["p/a.txt", "p/sub/b.txt", "pq/c.txt"]:
        s3.put_object(Bucket="data", Key=key, Body=key.encode())
    written = download_prefix("s3://data/p", tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == ["a.txt", "sub/b.txt"]
    assert (tmp_path / "sub" / "b.txt").read_text() == "p/sub/b.txt"
    assert download_prefix("s3://data/p/", tmp_path / "only", only=["a.txt"]) == [tmp_path / "only" / "a.txt"]


def test_upload_needs_a_key(tmp_path, s3):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DlxError, match="needs an object key"):
        upload_file(tmp_path / "f", "s3://data")


def test_no_credentials(no_aws_credentials, tmp_path):
    with pytest.raises(DlxError, match="s3://data/mnist: no AWS credentials found"):
        prepare_dataset("mnist", tmp_path / "out", data_dir="s3://data/mnist")


def test_data_layer_imports_no_heavy_or_aws_modules():
    heavy = ["boto3", "botocore", "sklearn", "kfp", "keras", "tensorflow", "torch"]
    code = f"import sys, components.data; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("key", ["p//{outside}/evil.txt", "p/../{name}/evil.txt", "p/sub/../../{name}/evil.txt"])
def test_no_object_key_writes_outside_the_destination(tmp_path, s3, key):
    """An empty path part then an absolute path, or '..': every remote name must end inside its destination."""
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    s3.put_object(Bucket="data", Key=key.format(outside=str(outside).lstrip("/"), name="outside"), Body=b"x")
    with pytest.raises(DlxError, match="would land outside") as error:
        download_prefix("s3://data/p", dest)
    assert "\n" not in str(error.value)
    assert not outside.exists() and not list(tmp_path.rglob("evil.txt"))


def test_inside_resolves_before_it_checks(tmp_path):
    from components.files import inside

    assert inside(tmp_path, "a/b.txt", "name") == (tmp_path / "a" / "b.txt").resolve()
    (tmp_path / "link").symlink_to("/etc")
    for name in ("/etc/passwd", "../x", "link/passwd", ""):
        with pytest.raises(DlxError, match="would land outside"):
            inside(tmp_path, name, "name")


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs):
        yield self.body


def test_s3_calls_retry_in_standard_mode_a_bounded_number_of_times(s3, monkeypatch):
    """A throttled PUT is retried by botocore (standard mode, 5 attempts in all), then fails in one line."""
    from botocore.awsrequest import AWSResponse

    from components.data import storage

    attempts = []

    def throttled(request, **kwargs):
        if request.method == "PUT":
            attempts.append(request.url)
            return AWSResponse(request.url, 503, {}, _Raw(b"<Error><Code>SlowDown</Code></Error>"))
        return None

    client = storage._client()
    assert (client.meta.config.retries["mode"], client.meta.config.retries["total_max_attempts"]) == ("standard", 5)
    monkeypatch.setattr(storage, "_client", lambda: client)
    client.meta.events.register("before-send.s3.PutObject", throttled)
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)
    with pytest.raises(DlxError, match="s3://data/a.txt: S3 error") as error:
        storage.write_text("s3://data/a.txt", "x")
    assert "\n" not in str(error.value) and len(attempts) == 5
