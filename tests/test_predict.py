"""`dlx predict` on a run that `dlx run` made, and its errors."""
import pytest

from components.files import write_json
from dlx.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A text-vectors run of the real local pipeline (kfp.local), on the generated sample."""
    root = tmp_path_factory.mktemp("runs")
    code = main(["run", "text-vectors", "--runs-dir", str(root), "--out", str(root / "run"),
                 "--param", "compare=false", "--dataset-option", "folds=3"])
    assert code == 0
    return root / "run"


def test_predict_prints_label_and_probability(run_dir, capsys):
    capsys.readouterr()
    assert main(["predict", str(run_dir), "The film was wonderful.", "The waiter was rude and the food awful."]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    (label, probability, *words), (label2, probability2, *_) = (line.split() for line in lines)
    assert (label, label2) == ("positive", "negative") and " ".join(words) == "The film was wonderful."
    assert 0.5 < float(probability) <= 1 and 0.5 < float(probability2) <= 1
    # the model directory itself is accepted too
    assert main(["predict", str(run_dir / "train" / "model"), "I loved it."]) == 0


def _error(capsys, *argv) -> str:
    capsys.readouterr()
    assert main(["predict", *argv]) == 2
    return capsys.readouterr().err


def test_bad_run_dirs_give_one_clear_error(tmp_path, capsys):
    assert "no such run directory" in _error(capsys, str(tmp_path / "missing"), "text")
    assert "not a complete dlx run directory" in _error(capsys, str(tmp_path), "text")
    other = tmp_path / "mnist-run"
    (other / "train" / "model").mkdir(parents=True)
    write_json(other / "metrics.json", {"topic": "mnist-mlp"})
    message = _error(capsys, str(other), "text")
    assert "run of topic mnist-mlp, which has no model for `dlx predict`" in message and "text-vectors" in message
    assert message.count("\n") == 1


def test_empty_text_is_refused(run_dir, capsys):
    assert "no text to classify" in _error(capsys, str(run_dir), "  ")


def test_a_text_model_file_naming_an_untrusted_type_is_refused_without_running_it(tmp_path):
    """model.skops is data: a file that would construct os.system (or anything not trusted) is not loaded."""
    import os

    import skops.io

    from components.errors import DlxError
    from components.topics.text.common import SKLEARN_MODEL, load_sklearn

    model_dir = tmp_path / "model"
    model_dir.mkdir()
    skops.io.dump({"payload": os.system}, model_dir / SKLEARN_MODEL)
    with pytest.raises(DlxError, match="holds types dlx does not trust") as error:
        load_sklearn(model_dir)
    assert "\n" not in str(error.value)
    (model_dir / SKLEARN_MODEL).write_bytes(b"not a zip")
    with pytest.raises(DlxError, match="is not a readable skops model"):
        load_sklearn(model_dir)
