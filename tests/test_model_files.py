"""A trained model's manifest: a damaged, truncated or missing model file is one line for every
reader (evaluation, promotion's re-scoring, `dlx predict`, `dlx generate`), never a traceback."""
import json
from pathlib import Path

import pytest

from components import steps
from components.errors import DlxError
from components.files import read_json
from components.model_files import MANIFEST, verify, write_manifest
from components.data.corpus import builtin_text
from components.params import to_dict
from components.registry import get_topic
from dlx.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 2)])


def test_verify_accepts_what_was_written_and_names_what_changed(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"\x00" * 100)
    (tmp_path / "sub" / "params.json").write_text("{}")
    write_manifest(tmp_path)
    assert set(read_json(tmp_path / MANIFEST)["sha256"]) == {"weights.bin", "sub/params.json"}
    verify(tmp_path)

    _truncate(tmp_path / "weights.bin")
    with pytest.raises(DlxError, match=r"weights.bin is damaged or truncated") as error:
        verify(tmp_path)
    assert "\n" not in str(error.value)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(DlxError, match="weights.bin is missing"):
        verify(tmp_path)
    (tmp_path / MANIFEST).write_text('{"sha256": ')
    with pytest.raises(DlxError, match="manifest.json is damaged"):
        verify(tmp_path)
    (tmp_path / MANIFEST).unlink()
    verify(tmp_path)  # a model from before manifests is loaded unchecked


def _trained(root: Path, topic: str, dataset: str, params: list[str], options: str = "{}") -> tuple[Path, Path]:
    steps.prepare(dataset, "", 0, root / "dataset", options)
    values = get_topic(topic).params_for(dataset, params)
    steps.train(topic, json.dumps(to_dict(values)), 0, root / "dataset", root / "model")
    assert (root / "model" / MANIFEST).is_file()
    return root / "dataset", root / "model"


@pytest.mark.parametrize("topic, dataset, params, damaged", [
    ("pytorch-gd", "regression", [], "model.pt"),
    ("mnist-mlp", "digits", ["epochs=1"], "model.keras"),
    ("mnist-mlp", "digits", ["epochs=1"], "params.json"),
])
def test_evaluating_a_damaged_model_is_one_line(tmp_path, topic, dataset, params, damaged):
    dataset_dir, model_dir = _trained(tmp_path, topic, dataset, params)
    _truncate(model_dir / damaged)
    with pytest.raises(DlxError, match=f"{damaged} is damaged or truncated") as error:
        steps.evaluate(topic, dataset_dir, model_dir, tmp_path / "evaluation")
    assert "\n" not in str(error.value) and not (tmp_path / "evaluation" / "metrics.json").exists()


def test_predict_and_generate_refuse_a_damaged_model(tmp_path, capsys):
    _, text_model = _trained(tmp_path / "vectors", "text-vectors", "text-sample", ["compare=false"], '{"folds": "3"}')
    _truncate(text_model / "model.skops")
    assert main(["predict", str(text_model), "a fine film"]) == 2
    err = capsys.readouterr().err
    assert "model.skops is damaged or truncated" in err and err.count("\n") == 1

    (tmp_path / "docs.txt").write_text(builtin_text()[:20_000], encoding="utf-8")
    _, gen_model = _trained(tmp_path / "gen", "text-gen", f"text-file:{tmp_path / 'docs.txt'}", [
        "hidden_size=16", "layers=1", "embedding_dim=8", "batch_size=16", "seq_len=16", "epochs=1",
        "budget_minutes=0", "sample_length=10"], '{"layout": "plain"}')
    _truncate(gen_model / "train.json")
    assert main(["generate", str(gen_model), "--length", "5"]) == 2
    err = capsys.readouterr().err
    assert "train.json is damaged or truncated" in err and err.count("\n") == 1


@pytest.mark.parametrize("topic, dataset, params, hint", [
    ("mnist-mlp", "digits", ["learning_rate=1e12", "epochs=2", "optimizer=sgd"], "lower learning_rate (now 1e+12)"),
    ("pytorch-gd", "regression", ["learning_rate=1e6"], "lower learning_rate (or momentum)"),
])
def test_a_diverging_training_stops_in_one_line_naming_the_parameter(tmp_path, topic, dataset, params, hint):
    steps.prepare(dataset, "", 0, tmp_path / "dataset")
    values = get_topic(topic).params_for(dataset, params)
    with pytest.raises(DlxError, match="training diverged in epoch") as error:
        steps.train(topic, json.dumps(to_dict(values)), 0, tmp_path / "dataset", tmp_path / "model")
    assert hint in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "model" / MANIFEST).exists()
