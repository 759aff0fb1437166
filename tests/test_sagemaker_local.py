"""`dlx sagemaker train --local`: the SageMaker SDK's own local mode, with docker-compose replaced by
tests/fake_compose.py, which runs the image's entrypoint as a process on what the SDK laid out. The
container itself (and an interruption of it) is `make image-test`'s part."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from components.files import read_json
from components.job import Job
from dlx.cli import main
from infra import sagemaker_local
from infra.sagemaker import JobSpec

IMAGE = "localhost/dlx-test:1"
FAKE = Path(__file__).with_name("fake_compose.py")


@pytest.fixture
def compose(tmp_path, monkeypatch, no_aws_credentials) -> Path:
    """docker-compose on PATH is the fake; `docker compose` fails, as where only docker-compose exists.
    Returns the file the fake records each compose file in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker-compose").write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    (bin_dir / "docker").write_text("#!/bin/sh\necho \"docker: unknown command: docker $1\" >&2\nexit 1\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    record = tmp_path / "compose.jsonl"
    monkeypatch.setenv("FAKE_COMPOSE_RECORD", str(record))
    monkeypatch.setenv("DLX_CONFIG", str(tmp_path / "no-dlx.toml"))
    return record


def local(tmp_path: Path, *arguments: str) -> int:
    return main(["sagemaker", "train", *arguments, "--local", "--image", IMAGE, "--runs-dir", str(tmp_path / "runs")])


def test_local_mode_runs_the_entrypoint_in_the_sdk_layout_and_resumes(compose, tmp_path, capsys):
    checkpoints = tmp_path / "checkpoints"
    assert local(tmp_path, "cf-regularized", "--param", "epochs=3", "--checkpoint-dir", str(checkpoints)) in (0, None)
    (run_dir,) = (tmp_path / "runs").glob("sagemaker-dlx-local-cf-regularized-*")
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["topic"] == "cf-regularized" and metrics["test"]["rmse"] < metrics["baseline"]["bias"]["rmse"]
    out = capsys.readouterr().out
    assert f"verdict   test RMSE {metrics['test']['rmse']:.4f} beats" in out

    (service,) = [json.loads(line) for line in compose.read_text().splitlines()]
    assert service["image"] == IMAGE and "entrypoint" not in service and "command" not in service  # the image's CMD: train
    assert service["argv"][-3:] == ["up", "--build", "--abort-on-container-exit"]
    assert "DLX_CHECKPOINT_DIR=/opt/ml/input/data/checkpoints" in service["environment"]
    assert f"{checkpoints.resolve()}:/opt/ml/input/data/checkpoints" in [v.removesuffix(":z") for v in service["volumes"]]
    assert len(read_json(checkpoints / "epochs.json")["elapsed"]) == 3

    # The same job on the same checkpoint folder: all epochs are there, nothing is trained again.
    assert local(tmp_path, "cf-regularized", "--param", "epochs=3", "--checkpoint-dir", str(checkpoints)) in (0, None)
    assert "nothing left to train" in capsys.readouterr().out
    again = max((tmp_path / "runs").glob("sagemaker-dlx-local-cf-regularized-*"), key=lambda p: p.stat().st_mtime)
    assert read_json(again / "metrics.json")["test"] == metrics["test"]


def test_a_failing_job_ends_in_the_entrypoints_one_line(compose, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert local(tmp_path, "mnist-mlp", "--dataset", "mnist", "--data-dir", str(empty)) == 2
    err = capsys.readouterr().err
    assert err.startswith("dlx: error: ") and err.count("\n") == 1 and "lacks train-images-idx3-ubyte.gz" in err
    assert not list((tmp_path / "runs").glob("sagemaker-*"))


def test_local_mode_refuses_what_only_a_real_job_has(compose, tmp_path, capsys):
    assert local(tmp_path, "mnist-mlp", "--spot") == 2
    assert "drop --dry-run, --spot and --wait" in capsys.readouterr().err
    assert local(tmp_path, "mnist-mlp", "--dataset", "mnist", "--data-dir", "s3://bucket/mnist") == 2
    assert "local mode reads a folder on this machine" in capsys.readouterr().err


def test_without_compose_or_docker_the_error_says_what_to_install(compose, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert local(tmp_path, "mnist-mlp") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "docker compose (v2) or docker-compose" in err


def test_each_job_has_its_own_default_checkpoint_folder(tmp_path):
    def folder(**params: str) -> Path:
        job = Job.create("cf-regularized", params=[f"{k}={v}" for k, v in params.items()])
        return sagemaker_local.checkpoint_dir(tmp_path, JobSpec(job, role="", bucket="", image=IMAGE))

    assert folder(epochs="3") == folder(epochs="3") != folder(epochs="4")
    assert folder().parent.name.startswith("cf-regularized-") and folder().is_relative_to(tmp_path)
