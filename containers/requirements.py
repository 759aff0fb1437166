"""The image's Python dependencies, read from pyproject.toml so that no Dockerfile re-pins one.

The Dockerfile runs ``python requirements.py --variant cpu|gpu pyproject.toml > requirements.txt``
and installs that list before the project itself (``pip install --no-deps .``), which keeps the
big dependency layers cached across code changes. The list is the project's dependencies and its
``train`` and ``cluster`` extras (the image trains, and creates TrainJobs), with the variant's builds: torch's local version (+cpu, or
+cu128, PyTorch's CUDA 12.8 build) and, on the GPU, TensorFlow's CUDA build in place of the
CPU-only one, at the same versions. Runs on the image's bare Python at build time: standard
library only.
"""
from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

EXTRAS = ("train", "cluster")
VARIANTS = {
    "cpu": {"torch": "cpu", "swaps": {}},
    "gpu": {"torch": "cu128", "swaps": {"tensorflow-cpu": "tensorflow[and-cuda]"}},
}
"""Per variant: torch's local version label, and distribution name -> the name (with extras) to install instead."""


def requirements(pyproject: Path, variant: str = "cpu") -> list[str]:
    """pyproject's [project] dependencies and the image's extras, one requirement string each."""
    project = tomllib.loads(pyproject.read_text())["project"]
    found = [*project["dependencies"], *(item for extra in EXTRAS for item in project["optional-dependencies"][extra])]
    return [_for_variant(item, VARIANTS[variant]) for item in found]


def _for_variant(requirement: str, variant: dict) -> str:
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group()
    if name == "torch":
        return f"{requirement}+{variant['torch']}"
    return variant["swaps"].get(name, name) + requirement[len(name):]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the image's pinned requirements, one a line.")
    parser.add_argument("pyproject", type=Path, help="the project's pyproject.toml")
    parser.add_argument("--variant", choices=VARIANTS, default="cpu", help="cpu, or gpu (CUDA builds)")
    args = parser.parse_args(argv)
    print("\n".join(requirements(args.pyproject, args.variant)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
