"""Faults survived: a local run and a SageMaker-contract run killed (SIGKILL) mid-training, for a
Keras and a PyTorch topic, resume after their last saved epoch and end with exactly the metrics
of an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.data.corpus import builtin_text
from components.files import read_json
from containers import entrypoint
from dlx.cli import main

KILL_AFTER_EPOCHS = 2
TIMEOUT_SECONDS = 240


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "docs.txt"
    path.write_text(builtin_text()[:40_000], encoding="utf-8")
    return path


def _cases(corpus: Path) -> dict[str, dict]:
    """Each topic's job: a few epochs long enough to be killed between them."""
    return {
        "mnist-mlp": {"dataset": "digits", "options": {}, "params": {"epochs": "6"}},
        "text-gen": {"dataset": f"text-file:{corpus}", "options": {"layout": "plain"},
                     "params": {"hidden_size": "32", "layers": "1", "embedding_dim": "16", "seq_len": "32",
                                "batch_size": "16", "epochs": "6", "budget_minutes": "0", "sample_length": "10"}},
    }


def _kill_after_epochs(command: list[str], epochs_file: Path, env: dict | None = None) -> int:
    """Start ``command`` in its own process group and SIGKILL the whole group once its epoch log
    holds KILL_AFTER_EPOCHS epochs; returns how many epochs the log held at the kill."""
    process = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            done = _epochs(epochs_file)
            if done >= KILL_AFTER_EPOCHS:
                os.killpg(process.pid, signal.SIGKILL)
                assert process.wait() == -signal.SIGKILL
                return done
            if process.poll() is not None:
                pytest.fail(f"the job ended (code {process.returncode}) before it could be killed: "
                            f"{process.stderr.read().decode()[-2000:]}")
            time.sleep(0.02)
        pytest.fail(f"no {KILL_AFTER_EPOCHS} epochs in {epochs_file} within {TIMEOUT_SECONDS} s")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return 0


def _epochs(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["elapsed"])
    except (OSError, ValueError, KeyError):
        return 0


def _flags(case: dict) -> list[str]:
    return ["--dataset", case["dataset"], *(f for k, v in case["options"].items() for f in ("--dataset-option", f"{k}={v}")),
            *(f for k, v in case["params"].items() for f in ("--param", f"{k}={v}"))]


@pytest.mark.parametrize("topic", ["mnist-mlp", "text-gen"])
def test_a_killed_local_run_resumes_to_the_uninterrupted_metrics(topic, corpus, tmp_path, capsys):
    case, runs = _cases(corpus)[topic], tmp_path / "runs"
    assert main(["run", topic, *_flags(case), "--out", str(runs / "whole")]) == 0
    whole = read_json(runs / "whole" / "metrics.json")

    killed = runs / "killed"
    partial = runs / ".killed.partial"
    done = _kill_after_epochs([sys.executable, "-m", "dlx.cli", "run", topic, *_flags(case), "--out", str(killed)],
                              partial / "checkpoints" / "epochs.json")
    assert KILL_AFTER_EPOCHS <= done < int(case["params"]["epochs"]) and not killed.exists()
    capsys.readouterr()
    assert main(["runs", "--runs-dir", str(runs), "--json"]) == 0
    assert [run["id"] for run in json.loads(capsys.readouterr().out)] == ["whole"]  # not listed until it is whole

    assert main(["resume", "killed", "--runs-dir", str(runs)]) == 0
    resumed = read_json(killed / "metrics.json")
    assert resumed["test"] == whole["test"] and resumed["params"] == whole["params"]
    assert read_json(killed / "train" / "model" / "history.json") == read_json(runs / "whole" / "train" / "model" /
                                                                                "history.json")
    assert "resuming from the checkpoint after epoch" in (killed / "pipeline.log").read_text()
    assert not partial.exists() and not (killed / "checkpoints").exists() and not (killed / "job.json").exists()
    assert "nothing to resume" in _resume_error(runs, "killed", capsys)


def _resume_error(runs: Path, run: str, capsys) -> str:
    capsys.readouterr()
    assert main(["resume", run, "--runs-dir", str(runs)]) == 2
    return capsys.readouterr().err


def test_resume_refuses_what_it_cannot_continue(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert "no unfinished run nope" in _resume_error(runs, "nope", capsys)
    alive = runs / ".alive.partial"
    alive.mkdir(parents=True)
    (alive / "job.json").write_text(json.dumps({"topic": "mnist-mlp", "arguments": {}, "champion": "", "margin": 0,
                                                "processes": 1}))
    (alive / ".owner").write_text(str(os.getpid()))  # this process: still running
    assert "still running" in _resume_error(runs, "alive", capsys)
    (alive / "job.json").write_text("{")
    assert "job.json is damaged" in _resume_error(runs, "alive", capsys)


def _hyperparameters(root: Path, topic: str, case: dict) -> None:
    (root / "input" / "config").mkdir(parents=True)
    values = {"topic": topic, "dataset": case["dataset"], "dataset_options": json.dumps(case["options"]),
              **case["params"]}
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(values))


@pytest.mark.parametrize("topic", ["mnist-mlp", "text-gen"])
def test_a_killed_sagemaker_job_resumes_from_its_checkpoints_to_the_uninterrupted_metrics(topic, corpus, tmp_path,
                                                                                         monkeypatch):
    case = _cases(corpus)[topic]
    whole, spot = tmp_path / "whole", tmp_path / "spot"
    for root in (whole, spot):
        _hyperparameters(root, topic, case)
    monkeypatch.setenv(entrypoint.ROOT_ENV, str(whole))
    assert entrypoint.main(["train"]) == 0

    env = {**os.environ, entrypoint.ROOT_ENV: str(spot)}
    done = _kill_after_epochs([sys.executable, "-m", "containers.entrypoint", "train"],
                              spot / "checkpoints" / "epochs.json", env)
    assert KILL_AFTER_EPOCHS <= done < int(case["params"]["epochs"])
    monkeypatch.setenv(entrypoint.ROOT_ENV, str(spot))  # the job restarted on a new instance, its checkpoints synced
    assert entrypoint.main(["train"]) == 0
    assert read_json(spot / "model" / "metrics.json")["test"] == read_json(whole / "model" / "metrics.json")["test"]
