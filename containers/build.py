"""Build the dlx image (`make image`, `make image-gpu`) and, where no registry is reachable, its base
from Debian's packages (`make base-image`), with Docker or Podman, whichever runs here.

    python containers/build.py image [--variant cpu|gpu] [--tag IMAGE] [--base BASE] [--host-pip]
    python containers/build.py base [--tag localhost/dlx-base:bookworm]

The engine is $DOCKER when set, else Docker when its engine answers, else Podman. Podman reads
containers/podman.conf (runc, cgroupfs, ulimits within a low hard limit; $PODMAN_CONF names another,
an empty one keeps the host's own configuration). The base is --base, else python:3.11-slim, or the
locally built Debian base when python:3.11-slim is not in the engine's store and that one is.
``--host-pip`` hands this host's pip settings to the build and nothing else: its CA bundle and a
pip.conf as build secrets, the local wheel folders and file:// indexes it names as read-only build
volumes, so the Dockerfile stays right for a normal Docker host. Prints the build time and the
image's size; every failure a user can fix ends in one line naming the fix. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BASE = "python:3.11-slim"
DEBIAN_BASE = "localhost/dlx-base:bookworm"
PODMAN_CONF = ROOT / "containers" / "podman.conf"
PACKAGES = "python3.11,python3.11-venv,python3-distutils,ca-certificates"
"""What debootstrap puts in the Debian base (python3.11-venv needs python3-distutils named too)."""
HOST_MOUNT = "/mnt/host-pip"
PULL_SIGNS = ("initializing source docker://", "failed to resolve source metadata", "pull access denied",
              "manifest unknown", "error pulling image")
"""What Podman or Docker print when they cannot fetch the base image."""
NETWORK_SIGNS = ("Could not find a version that satisfies", "CERTIFICATE_VERIFY_FAILED", "Failed to establish",
                 "Temporary failure in name resolution", "Max retries exceeded", "No matching distribution")
"""What pip prints when it cannot reach the package registry."""


NO_BUILDKIT = ("this Docker has no BuildKit (`docker buildx version` fails), which the Dockerfile's secret mounts "
               "need; install docker-buildx-plugin, or Podman and set DOCKER=podman")


class BuildError(Exception):
    """A failure the user can fix: the message says how, in one line."""


def engine(requested: str | None = None) -> str:
    """The container engine to build and run with: Docker when its engine answers and it has BuildKit
    (the Dockerfile's secret mounts need it), else Podman."""
    if requested:
        if not shutil.which(requested):
            raise BuildError(f"{requested} not found; install it or set DOCKER to docker or podman")
        if os.path.basename(requested) == "docker" and not _answers(["docker", "buildx", "version"]):
            raise BuildError(NO_BUILDKIT)
        return requested
    if shutil.which("docker") and _answers(["docker", "info"]):
        if _answers(["docker", "buildx", "version"]):
            return "docker"
        if not shutil.which("podman"):
            raise BuildError(NO_BUILDKIT)
    if shutil.which("podman"):
        return "podman"
    if shutil.which("docker"):
        raise BuildError("Docker is installed but its engine is not running (`docker info` fails); start it "
                         "(e.g. `sudo systemctl start docker`) or install Podman and set DOCKER=podman")
    raise BuildError("no container engine found; install Docker or Podman (`apt-get install podman`)")


def environment(tool: str) -> dict[str, str]:
    """The engine's environment: Podman reads podman.conf unless the caller chose its own configuration."""
    env = dict(os.environ)
    if os.path.basename(tool) == "podman" and "CONTAINERS_CONF" not in env:
        chosen = env.get("PODMAN_CONF", str(PODMAN_CONF))
        if chosen:
            env["CONTAINERS_CONF"] = chosen
    return env


def _answers(command: list[str], env: dict[str, str] | None = None) -> bool:
    try:
        return subprocess.run(command, capture_output=True, env=env, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def has_image(tool: str, image: str) -> bool:
    return _answers([tool, "image", "inspect", image], environment(tool))


def choose_base(tool: str, base: str | None) -> str:
    if base:
        return base
    if not has_image(tool, DEFAULT_BASE) and has_image(tool, DEBIAN_BASE):
        print(f"build: {DEFAULT_BASE} is not here; using the Debian base {DEBIAN_BASE} (make base-image)", flush=True)
        return DEBIAN_BASE
    return DEFAULT_BASE


def pip_settings() -> dict[str, str]:
    """This host's pip configuration, as `pip config list` shows it (key -> value, the last one wins)."""
    done = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    found = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        found[key.split(".")[-1]] = value.strip().strip("'\"")
    return found


def host_pip(settings: dict[str, str], work: Path) -> tuple[list[str], str]:
    """Build flags that give the build this host's pip settings without baking them in, and the index
    torch should come from: (flags, index URL)."""
    flags, volumes, lines = [], {}, ["[global]"]

    def inside(path: str) -> str:
        """The build's path for a local file or folder: its top-level directory mounted read-only."""
        local = Path(path.removeprefix("file://"))
        top = Path(*local.parts[:2])
        volumes.setdefault(str(top), f"{HOST_MOUNT}/{len(volumes)}")
        return str(Path(volumes[str(top)]) / local.relative_to(top))

    for key in ("find-links", "extra-index-url", "index-url"):
        if key in settings:
            values = [inside(v) if v.startswith(("/", "file://")) else v for v in settings[key].split()]
            values = [f"file://{v}" if key != "find-links" and v.startswith("/") else v for v in values]
            lines.append(f"{key} = {' '.join(values)}")
    for key in ("default-timeout", "timeout"):
        if key in settings:
            lines.append(f"default-timeout = {settings[key]}")
    if settings.get("cert"):
        flags += ["--secret", f"id=ca.crt,src={settings['cert']}"]
        lines.append("cert = /run/secrets/ca.crt")
    config = work / "pip.conf"
    config.write_text("\n".join(lines) + "\n")
    flags += ["--secret", f"id=pip.conf,src={config}"]
    for source, target in volumes.items():
        flags += ["-v", f"{source}:{target}:ro"]
    return flags, settings.get("index-url", "https://pypi.org/simple")


def build_command(tool: str, tag: str, base: str, variant: str, context: Path, extra: list[str]) -> list[str]:
    return [tool, "build", "-f", str(context / "containers" / "Dockerfile"), "-t", tag, "--build-arg",
            f"BASE={base}", "--build-arg", f"VARIANT={variant}", *extra, str(context)]


def run_build(command: list[str], env: dict[str, str], base: str) -> None:
    """Run the build, its output streamed; a failure ends in one line that says what to do."""
    tail: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as build:
        for line in build.stdout:
            sys.stdout.write(line)
            tail = (tail + [line])[-400:]
    if build.returncode:
        text = "".join(tail)
        if any(sign in text for sign in PULL_SIGNS):
            raise BuildError(f"cannot pull the base image {base}; where no registry is reachable build one from "
                             "Debian's packages with `make base-image` (then `make image` uses it)")
        if any(sign in text for sign in NETWORK_SIGNS):
            raise BuildError("the build could not reach the package registry; on a host with its own CA or a local "
                             "wheel mirror pass HOST_PIP=1 (make image HOST_PIP=1), see containers/README.md")
        raise BuildError(f"`{' '.join(command[:2])}` failed (exit {build.returncode}); see its output above")


def image_size(tool: str, tag: str) -> int:
    done = subprocess.run([tool, "image", "inspect", tag], capture_output=True, text=True, env=environment(tool))
    info = json.loads(done.stdout or "[{}]")
    return int((info[0] if isinstance(info, list) else info).get("Size", 0))


def build_image(args: argparse.Namespace) -> None:
    tool = engine(args.engine)
    base = choose_base(tool, args.base)
    with tempfile.TemporaryDirectory(prefix="dlx-build-") as work:
        extra = []
        if args.host_pip:
            flags, index = host_pip(pip_settings(), Path(work))
            extra = [*flags, "--build-arg", f"TORCH_INDEX_URL={index}"]
        command = build_command(tool, args.tag, base, args.variant, ROOT, extra)
        print(f"build: {' '.join(command)}", flush=True)
        started = time.perf_counter()
        run_build(command, environment(tool), base)
    seconds = time.perf_counter() - started
    print(f"built {args.tag} ({args.variant}, base {base}) with {tool} in {seconds:.0f} s; "
          f"{image_size(tool, args.tag) / 1e9:.2f} GB", flush=True)


def build_base(args: argparse.Namespace) -> None:
    """Debian bookworm with Python 3.11 from Debian's packages (debootstrap), imported as an image."""
    tool = engine(args.engine)
    if not shutil.which("debootstrap"):
        raise BuildError("debootstrap not found; install it (`apt-get install debootstrap`) to build the base")
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root; run `sudo make base-image`")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dlx-base-") as work:
        root = Path(work) / "root"
        done = subprocess.run(["debootstrap", "--variant=minbase", f"--include={PACKAGES}", args.suite, str(root)])
        if done.returncode:
            raise BuildError(f"debootstrap {args.suite} failed (exit {done.returncode}); check that Debian's "
                             "mirror (deb.debian.org) is reachable")
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (root / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([tool, "import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["/bin/bash"]',
                                   "-", args.tag], stdin=tar.stdout, env=environment(tool))
        tar.wait()
        if imported.returncode:
            raise BuildError(f"`{tool} import` failed (exit {imported.returncode}); see its output above")
    print(f"built {args.tag} (Debian {args.suite}, Python 3.11) in {time.perf_counter() - started:.0f} s; "
          f"{image_size(tool, args.tag) / 1e9:.2f} GB", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", default=os.environ.get("DOCKER") or None, help="docker or podman ($DOCKER)")
    sub = parser.add_subparsers(dest="what", required=True)
    image = sub.add_parser("image", help="the dlx image")
    image.add_argument("--tag", required=True, help="the image's name, e.g. ghcr.io/ORG/dlx:0.1.0")
    image.add_argument("--variant", choices=("cpu", "gpu"), default="cpu")
    image.add_argument("--base", help=f"base image (default {DEFAULT_BASE}, else {DEBIAN_BASE} when built)")
    image.add_argument("--host-pip", action="store_true", help="hand this host's pip settings to the build")
    image.set_defaults(func=build_image)
    base = sub.add_parser("base", help="a Debian base with Python 3.11 from Debian's packages")
    base.add_argument("--tag", default=DEBIAN_BASE)
    base.add_argument("--suite", default="bookworm")
    base.set_defaults(func=build_base)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except BuildError as exc:
        print(f"build: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
