"""The image's Python dependencies, read from pyproject.toml so that no Dockerfile re-pins one.

The Dockerfiles run ``python requirements.py pyproject.toml [--gpu] > requirements.txt`` and
install that list before the project itself (``pip install --no-deps .``), which keeps the big
dependency layers cached across code changes. The list is the project's dependencies and its
``train`` extra (the image trains); ``--gpu`` swaps the CPU-only TensorFlow distribution for the
CUDA one of the same version, and every other pin passes through unchanged. Runs on the image's
bare Python at build time: standard library only.
"""
from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

GPU_SWAPS = {"tensorflow-cpu": "tensorflow[and-cuda]"}
"""Distribution name -> the CUDA build's name (with extras); the version specifier is kept."""
EXTRAS = ("train",)


def requirements(pyproject: Path, gpu: bool = False) -> list[str]:
    """pyproject's [project] dependencies and the image's extras, one requirement string each."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found = [*project["dependencies"], *(item for extra in EXTRAS for item in project["optional-dependencies"][extra])]
    return [_swap(item) for item in found] if gpu else found


def _swap(requirement: str) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
    return GPU_SWAPS.get(name, name) + requirement[len(name):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the image's pinned requirements, one a line.")
    parser.add_argument("pyproject", type=Path, help="the project's pyproject.toml")
    parser.add_argument("--gpu", action="store_true", help="CUDA builds in place of CPU-only ones")
    args = parser.parse_args(argv)
    print("\n".join(requirements(args.pyproject, args.gpu)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
