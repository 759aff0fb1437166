"""Static checks of the Dockerfile (make image-test builds and runs it): what it copies, pins, runs as and
starts, and that it is right for a normal Docker host: no host paths, host settings only as build secrets."""
import fnmatch
import json
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from containers.requirements import requirements

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "containers" / "Dockerfile"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
IMAGE_REQUIREMENTS = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["train"],
                      *PROJECT["optional-dependencies"]["cluster"]]
PINS = {Requirement(item).name: str(Requirement(item).specifier) for item in IMAGE_REQUIREMENTS}
PIN = re.compile(r"(?<![\w.-])([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([A-Za-z0-9.+!-]+)")


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                         if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip()]


def arguments(path: Path, instruction: str) -> list[str]:
    return [args for name, args in instructions(path) if name == instruction]


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_every_copy_source_exists_and_is_in_the_build_context():
    dockerfile = DOCKERFILE
    copies = [args.split() for args in arguments(dockerfile, "COPY") if not args.startswith("--from")]
    assert copies
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source}: no such path"
            assert not any(fnmatch.fnmatch(source, pattern) or source.startswith(pattern + "/")
                           for pattern in dockerignore()), f"{source} is excluded by .dockerignore"


def test_pins_come_from_pyproject():
    runs = " ".join(arguments(DOCKERFILE, "RUN"))
    assert not PIN.findall(runs), "the Dockerfile pins a version of its own"
    assert re.search(r"requirements\.py --variant \$\{VARIANT\} \S*pyproject\.toml > (\S+)", runs)
    assert "pip install --no-cache-dir -r /tmp/dlx-build/requirements.txt" in runs
    assert "pip install --no-cache-dir --no-deps ." in runs


@pytest.mark.parametrize("variant, torch, tensorflow", [("cpu", "torch==2.13.0+cpu", "tensorflow-cpu==2.21.0"),
                                                        ("gpu", "torch==2.13.0+cu128", "tensorflow[and-cuda]==2.21.0")])
def test_requirements_are_pyprojects_pins_in_the_variants_builds(variant, torch, tensorflow):
    found = requirements(ROOT / "pyproject.toml", variant)
    assert torch in found and tensorflow in found
    names = {Requirement(item).name: str(Requirement(item).specifier).split("+")[0] for item in found}
    assert names == {("tensorflow-cpu" if name == "tensorflow" else name): pin for name, pin in names.items()} \
        or variant == "gpu"
    assert {name: pin for name, pin in names.items() if name not in ("tensorflow", "tensorflow-cpu")} == \
        {name: pin for name, pin in PINS.items() if name != "tensorflow-cpu"}


def test_torch_comes_from_pytorchs_index_for_the_variant():
    (torch,) = [args for args in arguments(DOCKERFILE, "RUN") if "torch==" in args]
    assert '--index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/${torch##*+}}"' in torch


def test_the_default_build_is_right_for_a_normal_docker_host():
    """The base is a build argument defaulting to python:3.11-slim; nothing of this host (its CA, wheel
    folders, pip settings) is named: those come only as build secrets and volumes from build.py."""
    (base_arg,) = [arg for arg in arguments(DOCKERFILE, "ARG") if arg.startswith("BASE")]
    assert base_arg == "BASE=python:3.11-slim" and arguments(DOCKERFILE, "FROM") == ["${BASE}"]
    text = "\n".join(args for _, args in instructions(DOCKERFILE))
    for host_specific in ("/opt/wheels", "/opt/pypi", "/etc/ssl", "/etc/xdg", "file://", "/mnt"):
        assert host_specific not in text, host_specific
    assert text.count("--mount=type=secret,id=pip.conf") == text.count("pip install")
    assert "ARG PIP_CONFIG_FILE=/run/secrets/pip.conf" in "\n".join(f"ARG {a}" for a in arguments(DOCKERFILE, "ARG"))


def test_python_is_the_version_pyproject_requires():
    (base_arg,) = [arg for arg in arguments(DOCKERFILE, "ARG") if arg.startswith("BASE")]
    version = re.fullmatch(r"BASE=python:(3\.\d+)-slim", base_arg)
    assert version and f"{version.group(1)}.0" in SpecifierSet(PROJECT["requires-python"])
    from containers.build import PACKAGES

    assert "python3.11" in PACKAGES.split(",")  # the Debian base too


def test_runs_as_a_numeric_non_root_user():
    defaults = dict(arg.split("=", 1) for arg in arguments(DOCKERFILE, "ARG") if "=" in arg)
    user = arguments(DOCKERFILE, "USER")[-1]
    resolved = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], user)
    assert resolved.isdigit() and int(resolved) != 0, f"USER {user} resolves to {resolved}"
    assert f"--uid {resolved} --gid 0" in " ".join(arguments(DOCKERFILE, "RUN"))


def test_entrypoint_command_and_environment():
    (entry,) = arguments(DOCKERFILE, "ENTRYPOINT")
    assert json.loads(entry) == ["python", "-m", "containers.entrypoint"]
    assert json.loads(arguments(DOCKERFILE, "CMD")[0]) == ["train"]  # SageMaker's local mode passes no command
    env = " ".join(arguments(DOCKERFILE, "ENV"))
    for setting in ("PYTHONUNBUFFERED=1", "TF_CPP_MIN_LOG_LEVEL=2", "KERAS_HOME=/home/dlx/", "PATH=/opt/venv/bin:"):
        assert setting in env


def test_dockerignore_keeps_local_state_out_of_the_context():
    assert {".git", ".venv", "runs", "benchmarks/results"} <= set(dockerignore())


@pytest.mark.parametrize("target, args, tag", [
    ("image", "image --tag registry.example/dlx:1.2", "registry.example/dlx:1.2"),
    ("image-gpu", "image --tag registry.example/dlx:1.2-gpu --variant gpu", "registry.example/dlx:1.2-gpu"),
])
def test_make_targets_build_the_images(target, args, tag):
    def dry_run(*extra: str) -> str:
        return " ".join(subprocess.run(["make", "-n", target, "IMAGE=registry.example/dlx:1.2", *extra], cwd=ROOT,
                                       capture_output=True, text=True, check=True).stdout.split())

    shown = dry_run()
    assert f"containers/build.py image --tag {tag}" in shown and args.split()[-1] in shown and "--host-pip" not in shown
    shown = dry_run("HOST_PIP=1", "DOCKER=podman")
    assert "--engine podman" in shown and "--host-pip" in shown


def test_build_command_and_host_pip_flags(tmp_path):
    from containers import build

    command = build.build_command("podman", "r.example/dlx:1", "python:3.11-slim", "cpu", ROOT, [])
    assert command == ["podman", "build", "-f", str(ROOT / "containers" / "Dockerfile"), "-t", "r.example/dlx:1",
                       "--build-arg", "BASE=python:3.11-slim", "--build-arg", "VARIANT=cpu", str(ROOT)]
    flags, index = build.host_pip({"cert": "/etc/ssl/certs/ca.crt", "find-links": "/opt/wheels",
                                   "extra-index-url": "file:///opt/pypi/simple https://mirror.example/simple"}, tmp_path)
    assert index == "https://pypi.org/simple"
    assert ["--secret", "id=ca.crt,src=/etc/ssl/certs/ca.crt"] == flags[:2] and "-v" in flags
    assert flags[flags.index("-v") + 1] == "/opt:/mnt/host-pip/0:ro"
    conf = (tmp_path / "pip.conf").read_text()
    assert "find-links = /mnt/host-pip/0/wheels" in conf and "cert = /run/secrets/ca.crt" in conf
    assert "extra-index-url = file:///mnt/host-pip/0/pypi/simple https://mirror.example/simple" in conf


def test_no_engine_is_one_line(monkeypatch, capsys):
    from containers import build

    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    assert build.main(["image", "--tag", "x:1"]) == 2
    assert capsys.readouterr().err == ("build: error: no container engine found; install Docker or Podman "
                                       "(`apt-get install podman`)\n")
    monkeypatch.setattr(build.shutil, "which", lambda name: "/usr/bin/docker" if name == "docker" else None)
    monkeypatch.setattr(build, "_answers", lambda *a, **k: False)
    assert build.main(["image", "--tag", "x:1"]) == 2
    assert "Docker is installed but its engine is not running" in capsys.readouterr().err


def test_docker_without_buildkit_falls_back_to_podman_or_says_what_to_install(monkeypatch, capsys):
    from containers import build

    answering = {("docker", "info")}
    monkeypatch.setattr(build, "_answers", lambda command, env=None: tuple(command) in answering)
    monkeypatch.setattr(build.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert build.engine() == "podman"
    monkeypatch.setattr(build.shutil, "which", lambda name: "/usr/bin/docker" if name == "docker" else None)
    assert build.main(["image", "--tag", "x:1"]) == 2
    assert "no BuildKit" in capsys.readouterr().err
    answering.add(("docker", "buildx", "version"))
    assert build.engine() == "docker"
