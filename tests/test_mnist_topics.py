"""The two MNIST topics learn on the bundled digits, through the same step functions a run uses."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components import steps
from components.files import read_json
from components.params import to_dict
from components.registry import get_topic

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("digits") / "dataset"
    steps.prepare("digits", "", 0, path)
    return path


@pytest.mark.parametrize("topic", ["mnist-mlp", "mnist-cnn"])
def test_topic_learns_digits_and_reports(topic, digits, tmp_path):
    """With the defaults `dlx run TOPIC` uses on digits (its preset), ~15 s of training each."""
    params = json.dumps(to_dict(get_topic(topic).params_for("digits")))
    summary = steps.train(topic, params, 0, digits, tmp_path / "model")
    assert {"model.keras", "params.json", "history.json", "train.json"} <= {p.name for p in (tmp_path / "model").iterdir()}
    history = read_json(tmp_path / "model" / "history.json")
    assert history["loss"][-1] < history["loss"][0] / 3
    assert summary["train_seconds"] > 0

    metrics = steps.evaluate(topic, digits, tmp_path / "model", tmp_path / "eval")
    # Chance is 0.10; the random forest on raw pixels gets ~0.96 on this split, the nets ~0.98-0.99.
    assert metrics["test"]["accuracy"] >= 0.95
    assert metrics["test"]["accuracy"] > metrics["baseline"]["random_forest"]["accuracy"] - 0.01
    assert metrics["baseline"]["random_forest"]["accuracy"] > 0.85
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == 360
    assert set(metrics["per_class"]) == {str(d) for d in range(10)}
    on_disk = read_json(tmp_path / "eval" / "metrics.json")
    for key in ("topic", "dataset", "params", "test", "baseline", "train_seconds", "dlx_version"):
        assert key in on_disk
    assert on_disk["params"]["epochs"] == read_json(tmp_path / "model" / "params.json")["epochs"]
    page = (tmp_path / "eval" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "http" not in page


def test_same_seed_same_validation_split_and_history(digits, tmp_path):
    runs = [steps.train("mnist-mlp", '{"epochs": 2}', 7, digits, tmp_path / f"m{i}") for i in range(2)]
    first, second = (read_json(tmp_path / f"m{i}" / "history.json") for i in range(2))
    assert first["val_accuracy"] == pytest.approx(second["val_accuracy"], abs=0.02)
    assert runs[0]["parameters"] == runs[1]["parameters"]


def test_torch_backend_trains_and_evaluates(digits, tmp_path):
    """Keras fixes its backend at import, so the torch run gets its own interpreter."""
    code = (
        "import sys; from components import steps\n"
        "s = steps.train('mnist-mlp', '{\"epochs\": 6, \"backend\": \"torch\"}', 0, sys.argv[1], sys.argv[2] + '/model')\n"
        "m = steps.evaluate('mnist-mlp', sys.argv[1], sys.argv[2] + '/model', sys.argv[2] + '/eval')\n"
        "print('RESULT', s['backend'], m['test']['accuracy'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(digits), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    _, backend, accuracy = done.stdout.strip().splitlines()[-1].split()
    assert backend == "torch" and float(accuracy) > 0.85
    assert read_json(tmp_path / "model" / "params.json")["backend"] == "torch"


def test_mixed_precision_trains_in_bfloat16_and_predicts_in_float32(digits, tmp_path):
    """precision=mixed_bf16 (what auto picks on a recent GPU) computes in bfloat16, keeps float32
    weights and a float32 softmax, still learns, and the saved model loads with its policy."""
    import keras

    params = to_dict(get_topic("mnist-mlp").params_for("digits")) | {"epochs": 5, "precision": "mixed_bf16"}
    try:
        summary = steps.train("mnist-mlp", json.dumps(params), 0, digits, tmp_path / "model")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert summary["precision"] == "mixed_bf16" and summary["device"] == "cpu"
    model = keras.saving.load_model(tmp_path / "model" / "model.keras")
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert dense[0].compute_dtype == "bfloat16" and dense[0].kernel.dtype == "float32"
    assert model.output.dtype == "float32"
    metrics = steps.evaluate("mnist-mlp", digits, tmp_path / "model", tmp_path / "eval")
    assert metrics["test"]["accuracy"] > 0.9


def test_auto_precision_is_fp32_without_a_gpu(digits, tmp_path):
    params = to_dict(get_topic("mnist-mlp").params_for("digits")) | {"epochs": 1}
    assert params["precision"] == "auto"
    assert steps.train("mnist-mlp", json.dumps(params), 0, digits, tmp_path / "model")["precision"] == "fp32"


def test_shift_moves_training_images_only():
    """The augmentation layer shifts images while training and passes them through unchanged at
    inference; shift=0 adds no layer."""
    import keras
    import numpy as np

    from components.topics.images import classifier, mnist_cnn

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, classifier.augmented(keras, inputs, mnist_cnn.Params(shift=0.25)))
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype("float32")
    assert np.array_equal(np.asarray(model(images, training=False)), images)
    moved = np.asarray(model(images, training=True))
    assert moved.shape == images.shape and not np.allclose(moved, images)
    assert classifier.augmented(keras, inputs, mnist_cnn.Params(shift=0)) is inputs


def test_moved_images_keep_their_pixels_and_get_a_blank_border():
    from components.topics.images.classifier import moved

    image = np.arange(1, 10, dtype=np.float32).reshape(1, 3, 3)
    assert moved(image, 1, 0)[0].tolist() == [[0, 1, 2], [0, 4, 5], [0, 7, 8]]  # one pixel right
    assert moved(image, 0, -1)[0].tolist() == [[4, 5, 6], [7, 8, 9], [0, 0, 0]]  # one pixel up
    assert np.array_equal(moved(image, 0, 0), image)


def test_test_time_augmentation_averages_the_moved_views(digits, tmp_path):
    """tta_pixels=1: the saved test probabilities are the mean over the 9 one-pixel moves of each image
    (the model predicts them again alike when re-scoring), and evaluation reports the plain view too."""
    from components.data import load_dataset
    from components.topics.images.classifier import model_inputs, moved, test_probabilities
    from components.topics.keras_fit import import_keras

    params = to_dict(get_topic("mnist-cnn").params_for("digits")) | {"epochs": 2, "tta_pixels": 1}
    steps.train("mnist-cnn", json.dumps(params), 0, digits, tmp_path / "model")
    metrics = steps.evaluate("mnist-cnn", digits, tmp_path / "model", tmp_path / "eval")
    arrays, meta = load_dataset(digits)
    model = import_keras("tensorflow").saving.load_model(tmp_path / "model" / "model.keras")
    views = [model.predict(model_inputs(moved(arrays["x_test"], dx, dy), meta), verbose=0)
             for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    with np.load(tmp_path / "model" / "predictions.npz") as saved:
        assert np.allclose(saved["probabilities"], np.mean(views, axis=0), atol=1e-5)
        assert np.allclose(saved["single_view"], views[4], atol=1e-5)
    assert metrics["single_view_accuracy"] == round(float((views[4].argmax(1) == arrays["y_test"]).mean()), 4)
    (tmp_path / "model" / "predictions.npz").unlink()  # as for a champion scored on another split
    rescored, single = test_probabilities(digits, tmp_path / "model", arrays, meta)
    assert np.allclose(rescored, np.mean(views, axis=0), atol=1e-5) and np.allclose(single, views[4], atol=1e-5)


def test_keras_reads_each_epochs_order_through_untuned_tf_data():
    """On TensorFlow, fit reads tf.data pipelines with autotuning off (its tuner stalls a core of a
    small machine for whole epochs), and the batches follow the order drawn for the epoch."""
    from components.topics.keras_fit import _EpochOrder, _feeds, import_keras

    keras = import_keras("tensorflow")
    x, y = np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10)
    order = _EpochOrder(x, y, batch_size=4, seed=3)
    batches, validation = _feeds(keras, order, (x[:5], y[:5]))
    assert not batches.options().autotune.enabled and not validation.options().autotune.enabled
    order.set_epoch(2)
    read = np.concatenate([labels.numpy() for _, labels in batches])
    assert read.tolist() == np.random.default_rng([3, 2]).permutation(10).tolist()
    assert [len(labels) for _, labels in batches] == [4, 4, 2] and len(batches) == 3
