"""The promotion rule of scheduled retraining: a new model replaces the champion only when it is
better on the same test split by more than a margin, and every decision says why.

The champion record is one small JSON file, a local path or an s3:// object (one per topic)::

    {"topic": "mnist-cnn", "dataset": "mnist", "metric": "accuracy", "higher_is_better": true,
     "value": 0.9912, "test_fingerprint": "sha256:…", "model_uri": "s3://…/mnist-cnn-models/…",
     "source_model_uri": "…", "run_id": "…", "promoted_at": "2026-11-28T03:00:41Z",
     "previous": {…the record it replaced, without its own "previous"…}}

On promotion the model directory is first copied next to the record (``mnist-cnn.json`` ->
``mnist-cnn-models/<UTC time>-<random>/``), then the record is replaced in one step (temp file +
rename locally; one PUT on S3). So the record always names a complete model, one that outlives
the run's own artifacts (kfp.local moves them when it assembles the run; dlx cannot read a
cluster's minio:// artifact store).

Numbers are only compared on the same test split: the record keeps a fingerprint of the test
data. When the current split differs (new data, another data set), the champion model is
re-scored on the current split; if that is impossible, nothing is promoted and the reason says so.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from components import model_files
from components.data import storage
from components.data.artifact import fingerprint_test_split
from components.errors import DlxError
from components.registry import Topic

_REQUIRED = ("topic", "metric", "value", "test_fingerprint", "model_uri")


def read_record(uri: str) -> dict | None:
    """The champion record at ``uri``, or None when there is none yet."""
    text = storage.read_text(uri) if storage.is_s3_uri(uri) else _read_local(Path(uri))
    if text is None:
        return None
    try:
        record = json.loads(text)
    except ValueError as exc:
        raise DlxError(f"champion record {uri} is not valid JSON ({exc}); fix it or delete it to start over") from None
    missing = [key for key in _REQUIRED if key not in record] if isinstance(record, dict) else list(_REQUIRED)
    if missing:
        raise DlxError(f"champion record {uri} lacks {', '.join(missing)}; fix it or delete it to start over")
    return record


def write_record(uri: str, record: dict) -> None:
    """Replace the record in one step, so a reader sees the old record or the new, never half."""
    text = json.dumps(record, indent=2) + "\n"
    if storage.is_s3_uri(uri):
        storage.write_text(uri, text)
        return
    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def promote(
    topic: Topic, metrics: dict, dataset_dir: str | Path, model_dir: str | Path, *,
    champion: str, margin: float, model_uri: str = "", run_id: str = "",
) -> dict:
    """Compare the evaluated model with the champion at ``champion``; replace it when better.

    Returns the decision: promoted, reason, metric, higher_is_better, new, champion, margin,
    same_test_split and record (the URI).
    A record for another topic or metric is a DlxError (give each topic its own record).
    """
    fingerprint = fingerprint_test_split(dataset_dir)
    record = read_record(champion)
    decision = decide(topic, metrics, dataset_dir, record, margin=margin, fingerprint=fingerprint, where=champion)
    if decision["promoted"]:
        _replace_champion(topic, metrics, model_dir, champion, record, new=decision["new"], fingerprint=fingerprint,
                          model_uri=model_uri, run_id=run_id)
    return decision


def decide(topic: Topic, metrics: dict, dataset_dir: str | Path, record: dict | None, *, margin: float,
           fingerprint: str, where: str, fetch: Callable[[str, Path], Path] | None = None) -> dict:
    """The rule, whatever keeps the champion: ``record`` is the champion's (topic, metric, value,
    test_fingerprint, model_uri) or None; ``fetch`` copies its model_uri into a directory (default:
    a local path or an s3:// prefix). The decision, with promoted and its reason."""
    if margin < 0:
        raise DlxError(f"promotion margin must be 0 or more, got {margin}")
    metric = topic.main_metric
    new = float(metrics["test"][metric])
    decision = {"metric": metric, "higher_is_better": topic.higher_is_better, "new": new, "champion": None,
                "margin": margin, "same_test_split": None, "record": where}
    if record is None:
        promoted, reason = True, "no champion yet"
    else:
        if (record["topic"], record["metric"]) != (topic.name, metric):
            raise DlxError(f"champion {where} is for {record['topic']} ({record['metric']}), not "
                           f"{topic.name} ({metric}); give each topic its own champion")
        old, why_not = _champion_score(topic, record, fingerprint, dataset_dir, fetch or _fetch_model)
        decision.update(champion=old, same_test_split=record["test_fingerprint"] == fingerprint)
        if old is None:
            promoted, reason = False, why_not
        else:
            promoted, reason = _compare(metric, new, old, margin, topic.higher_is_better)
            if not decision["same_test_split"]:
                reason += " (champion re-scored: the test split changed since it was promoted)"
    return {**decision, "promoted": promoted, "reason": reason}


def _compare(metric: str, new: float, old: float, margin: float, higher_is_better: bool) -> tuple[bool, str]:
    # Rounded so that float noise (0.91 - 0.90 = 0.010000000000000009) never beats a margin of 0.01.
    delta = round(new - old if higher_is_better else old - new, 9)
    direction = "higher" if higher_is_better else "lower"
    if delta > margin:
        return True, (f"{metric} {new:.4f} beats the champion's {old:.4f} by {delta:.4f} ({direction} is better), "
                      f"more than the margin {margin:g}")
    return False, (f"{metric} {new:.4f} does not beat the champion's {old:.4f} by more than the margin {margin:g} "
                   f"(gain {delta:+.4f}, {direction} is better)")


def _champion_score(topic: Topic, record: dict, fingerprint: str, dataset_dir: str | Path,
                    fetch: Callable[[str, Path], Path]) -> tuple[float | None, str]:
    """The champion's score on the current test split, or (None, why it cannot be had)."""
    if record["test_fingerprint"] == fingerprint:
        return float(record["value"]), ""
    with tempfile.TemporaryDirectory(prefix="dlx-champion-") as scratch:
        try:
            model_dir = fetch(record["model_uri"], Path(scratch) / "model")
            model_files.verify(model_dir)
            out_dir = Path(scratch) / "evaluation"
            out_dir.mkdir()
            return float(topic.evaluate(Path(dataset_dir), model_dir, out_dir)["test"][topic.main_metric]), ""
        except (DlxError, OSError, ValueError) as exc:
            return None, (f"the test split changed since the champion was promoted and its model "
                          f"{record['model_uri']} could not be re-scored on the current one ({exc}); not promoting: "
                          "fix access to that model, or delete the record to start over")


def _fetch_model(uri: str, dest: Path) -> Path:
    if storage.is_s3_uri(uri):
        if not storage.download_prefix(uri, dest):
            raise DlxError(f"no objects under {uri}")
        return dest
    if "://" in uri:
        raise DlxError("only local paths and s3:// URIs can be fetched")
    if not Path(uri).is_dir():
        raise DlxError(f"{uri} is not a directory")
    return Path(uri)


def _replace_champion(
    topic: Topic, metrics: dict, model_dir: str | Path, champion: str, old: dict | None, *,
    new: float, fingerprint: str, model_uri: str, run_id: str,
) -> None:
    now = time.gmtime()
    name = f"{time.strftime('%Y%m%dT%H%M%SZ', now)}-{uuid.uuid4().hex[:8]}"
    stored = _store_model(Path(model_dir), f"{champion.removesuffix('.json')}-models/{name}")
    previous = {k: v for k, v in old.items() if k != "previous"} if old else None
    write_record(champion, {
        "topic": topic.name, "dataset": metrics.get("dataset"), "metric": topic.main_metric,
        "higher_is_better": topic.higher_is_better, "value": new, "test_fingerprint": fingerprint,
        "model_uri": stored, "source_model_uri": model_uri, "run_id": run_id,
        "promoted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", now), "previous": previous,
    })


def _store_model(model_dir: Path, target: str) -> str:
    """Copy the model directory to ``target`` (local or s3://) before the record names it."""
    if storage.is_s3_uri(target):
        storage.upload_dir(model_dir, target)
        return target
    dest = Path(target)
    tmp = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(model_dir, tmp)
    tmp.rename(dest)
    return str(dest)


def _read_local(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
