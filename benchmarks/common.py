"""What every benchmark does: prepare a data set once, train and evaluate topics on it with their
defaults in this process, and merge the figures into a JSON results file."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def train_and_evaluate(dataset: str, data_dir: str, topics: list[str], seed: int, row: Callable[[str, dict, dict], dict],
                       options: dict[str, str] | None = None,
                       peer: Callable[[str, Path, int], dict] | None = None) -> list[dict]:
    """One ``row(topic, train summary, metrics)`` per topic, all on one prepared data set; with ``peer``,
    each row's "peer" is ``peer(topic, prepared data set, seed)``, trained right after the topic."""
    from components import steps
    from components.params import to_dict
    from components.registry import get_topic

    rows = []
    with tempfile.TemporaryDirectory(prefix="dlx-bench-") as tmp:
        prepared = Path(tmp) / "dataset"
        steps.prepare(dataset, data_dir, seed, prepared, json.dumps(options or {}))
        for topic in topics:
            print(f"== {topic} on {dataset}", flush=True)
            model, evaluation = Path(tmp) / topic / "model", Path(tmp) / topic / "eval"
            summary = steps.train(topic, json.dumps(to_dict(get_topic(topic).params_for(dataset))), seed, prepared, model)
            rows.append(row(topic, summary, steps.evaluate(topic, prepared, model, evaluation)))
            if peer is not None:
                print(f"== {topic}'s peer on {dataset}", flush=True)
                rows[-1]["peer"] = peer(topic, prepared, seed)
    return rows


def peak_memory_gib() -> float:
    """The largest resident set this process (or any finished child) reached, in GiB (Linux: ru_maxrss in KiB)."""
    import resource

    return round(max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
                 / 2**20, 2)


def seed_suffix(seed: int) -> str:
    """What a results section's name gets for a seed: nothing for seed 0 (the sections earlier runs
    wrote), ``_seed_N`` otherwise."""
    return "" if seed == 0 else f"_seed_{seed}"


def machine_speed() -> dict:
    """The machine as a benchmark ends: CPU model, cores, whether it has AMX matrix units, and its
    float32 matrix-product speed (numpy, 2048 x 2048, all cores, best of five), the figure to scale
    timings by when comparing machines, since the same benchmark's speed differs between them."""
    import platform
    import time

    import numpy as np

    model, flags = platform.processor() or platform.machine(), ""
    with contextlib.suppress(OSError, StopIteration):
        info = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
        flags = next(line.split(":", 1)[1] for line in info if line.startswith("flags"))
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return {"cpu": model, "cores": os.cpu_count(), "amx": "amx_bf16" in flags.split(),
            "matmul_fp32_gflops": round(2 * 2048**3 / best / 1e9, 1)}


def merge_results(path: str | Path, section: str, rows: list[dict], **extra: object) -> Path:
    """Merge ``rows`` (keyed by topic) into ``section`` of the JSON file, keeping earlier entries, and
    record the machine's measured speed (``machine_speed``) for the section under "machines"."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {}
    results.setdefault(section, {}).update({r["topic"]: r for r in rows})
    machine = machine_speed()
    print(f"machine: {machine['cpu']}, {machine['cores']} cores, AMX {'yes' if machine['amx'] else 'no'}, "
          f"float32 matrix products at {machine['matmul_fp32_gflops']} GFLOP/s", flush=True)
    results.setdefault("machines", {})[section] = machine
    results.update(extra, cpus=os.cpu_count())
    out.write_text(json.dumps(results, indent=2) + "\n")
    return out
