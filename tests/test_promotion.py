"""The promotion rule: who becomes champion, why, on which test split, and where the record lives."""
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from moto import mock_aws

from components import steps
from components.data.artifact import write_artifact
from components.errors import DlxError
from components.files import read_json, write_json
from components.data.artifact import fingerprint_test_split
from components.promotion import promote, read_record
from components.registry import Topic


@dataclass(frozen=True)
class NoParams:
    pass


def _score(dataset_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """A model is a score per test split: {fingerprint: accuracy}, with a default for unseen splits."""
    scores = read_json(model_dir / "scores.json")
    accuracy = scores.get(fingerprint_test_split(dataset_dir), scores["default"])
    return {"test": {"accuracy": accuracy, "loss": 1 - accuracy}, "baseline": {}}


def _topic(higher_is_better: bool = True, name: str = "stub") -> Topic:
    metric = "accuracy" if higher_is_better else "loss"
    return Topic(name=name, description="a stand-in", framework="none", datasets=("digits",), params=NoParams,
                 train=lambda *a: {}, evaluate=_score, main_metric=metric, higher_is_better=higher_is_better)


def _dataset(root: Path, test_labels: list[int]) -> Path:
    directory = root / f"dataset-{'-'.join(map(str, test_labels))}"
    if not directory.exists():
        arrays = {"x_train": np.zeros((2, 2, 2), np.uint8), "y_train": np.array([0, 1]),
                  "x_test": np.ones((len(test_labels), 2, 2), np.uint8), "y_test": np.array(test_labels)}
        meta = {"dataset": "digits", "source": "test", "splits": {"train": 2, "test": len(test_labels)}}
        write_artifact(directory, arrays, meta)
    return directory


def _model(root: Path, name: str, default: float, **by_split: float) -> Path:
    directory = root / name
    directory.mkdir()
    write_json(directory / "scores.json", {"default": default, **by_split})
    write_json(directory / "params.json", {})
    write_json(directory / "train.json", {"seed": 0, "train_seconds": 1.0})
    return directory


def _evaluate_and_promote(topic: Topic, dataset: Path, model: Path, champion: str, margin: float = 0.0) -> dict:
    metrics = {"dataset": "digits", **_score(dataset, model, model)}
    return promote(topic, metrics, dataset, model, champion=champion, margin=margin,
                   model_uri=f"file://{model}", run_id=f"run-{model.name}")


def test_first_run_becomes_champion_and_the_record_names_a_copy_of_its_model(tmp_path):
    dataset, record = _dataset(tmp_path, [0, 1, 1]), tmp_path / "champions" / "stub.json"
    model = _model(tmp_path, "a", 0.9)
    decision = _evaluate_and_promote(_topic(), dataset, model, str(record))
    assert (decision["promoted"], decision["reason"]) == (True, "no champion yet")
    assert (decision["champion"], decision["new"]) == (None, 0.9)

    saved = read_json(record)
    assert (saved["topic"], saved["metric"], saved["value"], saved["higher_is_better"]) == ("stub", "accuracy", 0.9, True)
    assert saved["test_fingerprint"] == fingerprint_test_split(dataset) and saved["test_fingerprint"].startswith("sha256:")
    assert (saved["run_id"], saved["source_model_uri"], saved["previous"]) == ("run-a", f"file://{model}", None)
    copy = Path(saved["model_uri"])
    assert copy.parent == tmp_path / "champions" / "stub-models"
    assert read_json(copy / "scores.json") == read_json(model / "scores.json")
    assert sorted(p.name for p in record.parent.iterdir()) == ["stub-models", "stub.json"]  # no temp files left


@pytest.mark.parametrize("higher_is_better, champion, new, margin, promoted", [
    (True, 0.90, 0.93, 0.02, True),
    (True, 0.90, 0.91, 0.02, False),  # better, but not by the margin
    (True, 0.90, 0.91, 0.01, False),  # exactly the margin, whatever float subtraction says
    (True, 0.90, 0.90, 0.0, False),  # a tie never replaces the champion
    (True, 0.90, 0.85, 0.0, False),
    (False, 0.30, 0.25, 0.02, True),  # loss: lower is better
    (False, 0.30, 0.35, 0.0, False),
])
def test_a_challenger_must_beat_the_champion_by_more_than_the_margin(
        tmp_path, higher_is_better, champion, new, margin, promoted):
    topic, dataset, record = _topic(higher_is_better), _dataset(tmp_path, [0, 1]), tmp_path / "stub.json"
    score = (lambda value: value) if higher_is_better else (lambda value: 1 - value)  # the stub's loss is 1 - accuracy
    _evaluate_and_promote(topic, dataset, _model(tmp_path, "old", score(champion)), str(record))
    before = record.read_text()

    decision = _evaluate_and_promote(topic, dataset, _model(tmp_path, "new", score(new)), str(record), margin)
    assert decision["promoted"] is promoted
    assert decision["same_test_split"] is True and decision["margin"] == margin
    assert decision["champion"] == pytest.approx(champion) and decision["new"] == pytest.approx(new)
    assert ("beats the champion's" if promoted else "does not beat the champion's") in decision["reason"]
    if promoted:
        saved = read_json(record)
        assert saved["value"] == pytest.approx(new) and saved["previous"]["value"] == pytest.approx(champion)
        assert saved["run_id"] == "run-new"
    else:
        assert record.read_text() == before


def test_a_changed_test_split_rescores_the_champion_instead_of_trusting_its_old_number(tmp_path):
    topic, record = _topic(), tmp_path / "stub.json"
    old_split, new_split = _dataset(tmp_path, [0, 1]), _dataset(tmp_path, [1, 1, 0])
    # The champion scored 0.99 on the old split but only 0.80 on the new one; the challenger 0.85.
    champion_model = _model(tmp_path, "champion", 0.80, **{fingerprint_test_split(old_split): 0.99})
    _evaluate_and_promote(topic, old_split, champion_model, str(record))

    decision = _evaluate_and_promote(topic, new_split, _model(tmp_path, "challenger", 0.85), str(record))
    assert (decision["promoted"], decision["same_test_split"], decision["champion"]) == (True, False, 0.80)
    assert "re-scored" in decision["reason"]
    assert read_json(record)["test_fingerprint"] == fingerprint_test_split(new_split)


def test_a_champion_that_cannot_be_rescored_blocks_promotion(tmp_path):
    topic, record = _topic(), tmp_path / "stub.json"
    _evaluate_and_promote(topic, _dataset(tmp_path, [0, 1]), _model(tmp_path, "champion", 0.5), str(record))
    saved = read_json(record)
    write_json(record, {**saved, "model_uri": "minio://mlpipeline/v2/artifacts/model"})
    before = record.read_text()

    decision = _evaluate_and_promote(topic, _dataset(tmp_path, [1, 0, 0]), _model(tmp_path, "challenger", 0.99), str(record))
    assert decision["promoted"] is False and decision["champion"] is None
    assert "could not be re-scored" in decision["reason"] and "minio://" in decision["reason"]
    assert record.read_text() == before


def test_a_champion_whose_model_was_damaged_is_not_rescored_and_blocks_promotion(tmp_path):
    from components.model_files import write_manifest

    topic, record = _topic(), tmp_path / "stub.json"
    champion_model = _model(tmp_path, "champion", 0.5)
    write_manifest(champion_model)  # as the train step does
    _evaluate_and_promote(topic, _dataset(tmp_path, [0, 1]), champion_model, str(record))
    stored = Path(read_json(record)["model_uri"])
    (stored / "scores.json").write_text('{"default": 0.01}')  # edited after it was promoted
    before = record.read_text()

    decision = _evaluate_and_promote(topic, _dataset(tmp_path, [1, 0, 0]), _model(tmp_path, "challenger", 0.6), str(record))
    assert decision["promoted"] is False and "scores.json is damaged or truncated" in decision["reason"]
    assert record.read_text() == before


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"topic": "stub"}), "lacks metric, value, test_fingerprint, model_uri"),
    (json.dumps({"topic": "mnist-cnn", "metric": "accuracy", "value": 1, "test_fingerprint": "x", "model_uri": "m"}),
     "is for mnist-cnn (accuracy), not stub (accuracy); give each topic its own champion"),
])
def test_a_foreign_or_broken_record_is_a_one_line_error(tmp_path, content, message):
    record = tmp_path / "stub.json"
    record.write_text(content)
    with pytest.raises(DlxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _evaluate_and_promote(_topic(), _dataset(tmp_path, [0]), _model(tmp_path, "m", 0.5), str(record))


@pytest.fixture
def s3(fake_aws):
    with mock_aws():
        import boto3

        client = boto3.client("s3")
        client.create_bucket(Bucket="models")
        yield client


def test_an_s3_record_keeps_its_model_in_s3_and_rescores_from_there(tmp_path, s3):
    topic, record = _topic(), "s3://models/champions/stub.json"
    assert read_record(record) is None
    old_split, new_split = _dataset(tmp_path, [0, 1]), _dataset(tmp_path, [1, 1])
    champion_model = _model(tmp_path, "champion", 0.70, **{fingerprint_test_split(old_split): 0.95})
    _evaluate_and_promote(topic, old_split, champion_model, record)
    saved = read_record(record)
    assert saved["model_uri"].startswith("s3://models/champions/stub-models/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="models")["Contents"]]
    assert sorted(k.rsplit("/", 1)[-1] for k in keys) == ["params.json", "scores.json", "stub.json", "train.json"]

    decision = _evaluate_and_promote(topic, new_split, _model(tmp_path, "challenger", 0.75), record, margin=0.01)
    assert (decision["promoted"], decision["champion"]) == (True, 0.70)  # re-scored from the S3 copy
    assert read_record(record)["previous"]["model_uri"] == saved["model_uri"]


def test_the_evaluate_step_writes_the_decision_next_to_the_metrics(tmp_path, monkeypatch):
    monkeypatch.setattr(steps, "get_topic", lambda name: _topic())
    dataset, model, record = _dataset(tmp_path, [0, 1]), _model(tmp_path, "m", 0.9), tmp_path / "stub.json"

    plain = steps.evaluate("stub", dataset, model, tmp_path / "plain")
    assert "promotion" not in plain and not (tmp_path / "plain" / "promotion.json").exists()

    result = steps.evaluate("stub", dataset, model, tmp_path / "eval", champion=str(record), margin=0.01, run_id="r1")
    decision = read_json(tmp_path / "eval" / "promotion.json")
    assert decision == result["promotion"] == read_json(tmp_path / "eval" / "metrics.json")["promotion"]
    assert (decision["promoted"], decision["margin"], decision["metric"]) == (True, 0.01, "accuracy")
    assert read_json(record)["run_id"] == "r1"


@pytest.mark.parametrize("dataset, same, other", [
    ("synthetic-ratings", {"users": "30", "items": "20", "density": "0.5"},
     {"users": "30", "items": "20", "density": "0.5", "data_seed": "1"}),
    ("text-sample", {"size": "60", "folds": "3"}, {"size": "60", "folds": "2"}),
])
def test_table_artifacts_are_fingerprinted_by_what_they_are_scored_on(tmp_path, dataset, same, other):
    fingerprints = []
    for n, options in enumerate([same, same, other]):
        steps.prepare(dataset, "", 0, tmp_path / str(n), json.dumps(options))
        fingerprints.append(fingerprint_test_split(tmp_path / str(n)))
    assert fingerprints[0] == fingerprints[1] != fingerprints[2]


def test_a_failing_model_upload_leaves_the_champion_record_as_it_was(tmp_path, s3, monkeypatch):
    """The record is the commit point: an upload that keeps failing (after botocore's retries) ends
    in one line and no record names the half-copied model."""
    from botocore.awsrequest import AWSResponse

    from components.data import storage

    topic, record = _topic(), "s3://models/champions/stub.json"
    dataset = _dataset(tmp_path, [0, 1])
    _evaluate_and_promote(topic, dataset, _model(tmp_path, "first", 0.70), record)
    before = read_record(record)

    client = storage._client()
    failing = []

    def broken(request, **kwargs):
        if request.url.endswith("/train.json"):  # the third file of the model's copy
            failing.append(request.url)
            return AWSResponse(request.url, 500, {}, _Body(b"<Error><Code>InternalError</Code></Error>"))
        return None

    client.meta.events.register("before-send.s3.PutObject", broken)
    monkeypatch.setattr(storage, "_client", lambda: client)
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)
    with pytest.raises(DlxError, match="S3 error InternalError") as error:
        _evaluate_and_promote(topic, dataset, _model(tmp_path, "better", 0.90), record)
    assert "\n" not in str(error.value) and len(failing) == storage.MAX_ATTEMPTS
    assert read_record(record) == before  # the champion is still the first model, whole


class _Body:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs):
        yield self.body
