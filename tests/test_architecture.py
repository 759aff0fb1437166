"""The house rules, checked: one-way dependencies and no import cycles (import-linter's contracts in
pyproject.toml), a light client that never needs a deep-learning framework, and every topic's own
train and evaluate in its module."""
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from components.registry import topics
from dlx.arguments import TRAIN_EXTRA_MODULES

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ("torch", "tensorflow", "keras")

# Runs the dlx command as a light install would: the frameworks cannot be imported (or found), and
# every attempt to import one is reported. With DLX_TEST_MOTO set, AWS is moto with one bucket.
LIGHT = """
import importlib.abc, importlib.util, json, os, sys
BLOCKED, attempts = set(os.environ["DLX_TEST_BLOCK"].split(",")), []
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in BLOCKED else find_spec(name, *a)
from dlx.cli import main
if os.environ.get("DLX_TEST_MOTO"):
    import boto3
    from moto import mock_aws
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="dlx-test")
        code = main(sys.argv[1:])
else:
    code = main(sys.argv[1:])
sys.stdout.flush()
print("ATTEMPTS " + json.dumps(sorted(set(attempts))), file=sys.stderr)
sys.exit(code)
"""


def light(*argv: str, moto: bool = False, cwd: Path = ROOT) -> tuple[int, str, str, list[str]]:
    env = {**os.environ, "DLX_TEST_BLOCK": ",".join(FRAMEWORKS), "PYTHONPATH": str(ROOT)}
    if moto:
        env |= {"DLX_TEST_MOTO": "1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "SAGEMAKER_VALIDATE_ROLE": "false", "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "DLX_CONFIG": str(cwd / "none.toml")}
    done = subprocess.run([sys.executable, "-c", LIGHT, *argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)
    err, _, attempts = done.stderr.rpartition("ATTEMPTS ")
    return done.returncode, done.stdout, err, json.loads(attempts)


def test_import_linter_contracts_are_kept():
    from importlinter.cli import lint_imports

    assert lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0


@pytest.mark.parametrize("argv", [["list"], ["list", "cf-regularized"], ["list", "--json"]])
def test_listing_imports_no_framework(argv):
    code, out, err, attempts = light(*argv)
    assert code == 0 and out and not err, err
    assert attempts == []


def test_compile_all_and_a_sagemaker_dry_run_work_without_the_frameworks(tmp_path):
    code, out, err, attempts = light("compile", "all", "-o", str(tmp_path / "compiled"), "--image", "r.example/dlx:1")
    assert code == 0, err
    assert len(list((tmp_path / "compiled").glob("dlx-*.yaml"))) == len(topics()) and attempts == []
    code, out, err, attempts = light("sagemaker", "train", "mnist-mlp", "--dry-run", "--role",
                                     "arn:aws:iam::123456789012:role/dlx", "--bucket", "dlx-test", "--image",
                                     "123456789012.dkr.ecr.us-east-1.amazonaws.com/dlx:1", moto=True, cwd=tmp_path)
    assert code == 0, err
    assert "CreateTrainingJob request" in out and attempts == []


def test_run_without_the_train_extra_names_it_in_one_line(tmp_path):
    code, out, err, _ = light("run", "mnist-mlp", "--runs-dir", str(tmp_path))
    assert code == 2
    assert err.count("\n") == 1 and "needs the train extra" in err and "pip install 'dlx[train]'" in err
    assert not any(tmp_path.iterdir())


def test_the_train_extra_is_what_the_check_looks_for():
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"]
    names = {item.split("==")[0] for item in extra}
    assert {"tensorflow" if name == "tensorflow-cpu" else name for name in names} == set(TRAIN_EXTRA_MODULES)
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not {item.split("==")[0] for item in base} & {*names, "sagemaker", "tensorflow"}


@pytest.mark.parametrize("name", list(topics()))
def test_every_topic_shows_its_train_and_evaluate(name):
    topic = topics()[name]
    module = sys.modules[topic.train.__module__]
    assert (topic.train.__name__, topic.evaluate.__name__) == ("train", "evaluate")
    assert topic.train.__module__ == topic.evaluate.__module__ == module.__name__
    assert module.TOPIC is topic and module.Params is topic.params  # declared there, or shared by the family
