"""Static checks of the Dockerfiles (no Docker engine here): what they copy, pin, run as and start."""
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
DOCKERFILES = [ROOT / "containers" / "Dockerfile", ROOT / "containers" / "Dockerfile.gpu"]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
IMAGE_REQUIREMENTS = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["train"]]
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


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copy_source_exists_and_is_in_the_build_context(dockerfile):
    copies = [args.split() for args in arguments(dockerfile, "COPY") if not args.startswith("--from")]
    assert copies
    for *sources, _ in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source}: no such path"
            assert not any(fnmatch.fnmatch(source, pattern) or source.startswith(pattern + "/")
                           for pattern in dockerignore()), f"{source} is excluded by .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_pins_come_from_pyproject(dockerfile):
    runs = " ".join(arguments(dockerfile, "RUN"))
    for name, version in PIN.findall(runs):
        assert PINS.get(name) == f"=={version}", f"{dockerfile.name}: {name}=={version}, pyproject: {PINS.get(name)}"
    gpu = "--gpu" if dockerfile.suffix == ".gpu" else ""
    generated = rf"requirements\.py {gpu}\s*\S*pyproject\.toml > (\S+)\s+&& pip install --no-cache-dir -r \1"
    assert re.search(generated, runs), f"{dockerfile.name} does not install the pins requirements.py reads"
    assert "pip install --no-cache-dir --no-deps ." in runs


def test_requirements_are_pyprojects_pins_and_train_extra_with_the_cuda_tensorflow_on_gpu():
    pyproject = ROOT / "pyproject.toml"
    assert requirements(pyproject) == IMAGE_REQUIREMENTS
    gpu = {Requirement(item).name: Requirement(item) for item in requirements(pyproject, gpu=True)}
    assert "tensorflow-cpu" not in gpu
    assert gpu["tensorflow"].extras == {"and-cuda"}
    assert str(gpu["tensorflow"].specifier) == PINS["tensorflow-cpu"]
    assert {name: str(req.specifier) for name, req in gpu.items() if name != "tensorflow"} == \
        {name: pin for name, pin in PINS.items() if name != "tensorflow-cpu"}


def test_cpu_image_takes_torch_from_the_cpu_index():
    (torch,) = [args for args in arguments(DOCKERFILES[0], "RUN") if "torch==" in args]
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_python_is_the_version_pyproject_requires(dockerfile):
    (base,) = arguments(dockerfile, "FROM")
    runs = " ".join(arguments(dockerfile, "RUN"))
    version = re.fullmatch(r"python:(3\.\d+)-slim", base) or re.search(r"uv python install (3\.\d+)", runs)
    assert version, f"{dockerfile.name}: cannot tell which Python it installs"
    assert f"{version.group(1)}.0" in SpecifierSet(PROJECT["requires-python"])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_runs_as_a_numeric_non_root_user(dockerfile):
    defaults = dict(arg.split("=", 1) for arg in arguments(dockerfile, "ARG") if "=" in arg)
    user = arguments(dockerfile, "USER")[-1]
    resolved = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], user)
    assert resolved.isdigit() and int(resolved) != 0, f"{dockerfile.name}: USER {user} resolves to {resolved}"
    assert f"--uid {resolved} --gid 0" in " ".join(arguments(dockerfile, "RUN"))


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_entrypoint_and_environment(dockerfile):
    (entry,) = arguments(dockerfile, "ENTRYPOINT")
    assert json.loads(entry) == ["python", "-m", "containers.entrypoint"]
    env = " ".join(arguments(dockerfile, "ENV"))
    for setting in ("PYTHONUNBUFFERED=1", "TF_CPP_MIN_LOG_LEVEL=2", "KERAS_HOME=/home/dlx/"):
        assert setting in env


def test_gpu_image_is_an_official_cuda_base():
    (base,) = arguments(DOCKERFILES[1], "FROM")
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+\.\d+-[a-z-]+-ubuntu\d+\.\d+", base)


def test_dockerignore_keeps_local_state_out_of_the_context():
    assert {".git", ".venv", "runs", "benchmarks/results"} <= set(dockerignore())


@pytest.mark.parametrize("target, dockerfile, tag", [
    ("image", "containers/Dockerfile", "registry.example/dlx:1.2"),
    ("image-gpu", "containers/Dockerfile.gpu", "registry.example/dlx:1.2-gpu"),
])
def test_make_targets_build_the_images(target, dockerfile, tag):
    shown = subprocess.run(["make", "-n", target, "IMAGE=registry.example/dlx:1.2"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert f"docker build -f {dockerfile} -t {tag} ." in shown


def test_make_image_without_docker_says_so():
    done = subprocess.run(["make", "image", "DOCKER=dlx-test-no-docker"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.splitlines()[0] == ("make: dlx-test-no-docker not found; building the image needs Docker, "
                                           "or set DOCKER=podman")
