"""IDX parsing: round trips (gzip and plain) and every corruption a user's file can have."""

import gzip
import hashlib

import numpy as np
import pytest

from components.data.idx import content_sha256, read_images, read_labels
from components.errors import DlxError

IMAGES = np.arange(3 * 4 * 5).reshape(3, 4, 5).astype(np.uint8)
LABELS = np.array([7, 0, 9], dtype=np.uint8)


@pytest.mark.parametrize("name", ["images-idx3-ubyte.gz", "images-idx3-ubyte"])
def test_images_round_trip(tmp_path, idx_bytes, write_file, name):
    content = idx_bytes(IMAGES)
    array, sha = read_images(write_file(tmp_path / name, content))
    assert array.dtype == np.uint8 and array.shape == (3, 4, 5)
    np.testing.assert_array_equal(array, IMAGES)
    assert sha == hashlib.sha256(content).hexdigest()


def test_labels_round_trip_and_sha_ignores_the_gzip_wrapper(tmp_path, idx_bytes, write_file):
    content = idx_bytes(LABELS)
    gz = write_file(tmp_path / "labels.gz", content)
    plain = write_file(tmp_path / "labels", content)
    np.testing.assert_array_equal(read_labels(gz)[0], LABELS)
    assert content_sha256(gz) == content_sha256(plain) == hashlib.sha256(content).hexdigest()


def test_gzip_is_detected_by_content_not_name(tmp_path, idx_bytes):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(gzip.compress(idx_bytes(LABELS)))
    np.testing.assert_array_equal(read_labels(path)[0], LABELS)


def _cases():
    """(name, raw file bytes from the valid IDX content, reader, expected message part)."""
    return [
        ("not gzip", lambda c: c, "not a gzip file"),
        ("truncated gzip", lambda c: gzip.compress(c)[:-20], "corrupt gzip"),
        ("bad gzip crc", lambda c: gzip.compress(c)[:-8] + b"\0" * 8, "corrupt gzip"),
        ("labels magic", lambda c: gzip.compress((2049).to_bytes(4, "big") + c[4:]), "wrong magic number 2049"),
        ("float dtype", lambda c: gzip.compress(b"\0\0\x0d\x03" + c[4:]), "wrong magic number"),
        ("short header", lambda c: gzip.compress(c[:10]), "truncated IDX header"),
        ("truncated data", lambda c: gzip.compress(c[:-7]), "truncated data"),
        ("trailing data", lambda c: gzip.compress(c + b"xx"), "2 unexpected bytes"),
        ("zero images", lambda c: gzip.compress(c[:4] + b"\0\0\0\0" + c[8:16]), "empty array"),
    ]


@pytest.mark.parametrize("mangle, message", [c[1:] for c in _cases()], ids=[c[0] for c in _cases()])
def test_corrupt_image_file_is_a_one_line_error_naming_it(tmp_path, idx_bytes, mangle, message):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(mangle(idx_bytes(IMAGES)))
    with pytest.raises(DlxError, match=message) as err:
        read_images(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_images_file_given_as_labels_is_rejected(tmp_path, idx_bytes, write_file):
    path = write_file(tmp_path / "labels.gz", idx_bytes(IMAGES))
    with pytest.raises(DlxError, match="wrong magic number 2051 .expected 2049"):
        read_labels(path)


def test_missing_file(tmp_path):
    with pytest.raises(DlxError, match="cannot read"):
        read_images(tmp_path / "nope.gz")
