"""What every benchmark does: prepare a data set once, train and evaluate topics on it with their
defaults in this process, and merge the figures into a JSON results file."""
from __future__ import annotations

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


def merge_results(path: str | Path, section: str, rows: list[dict], **extra: object) -> Path:
    """Merge ``rows`` (keyed by topic) into ``section`` of the JSON file, keeping earlier entries."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.exists() else {}
    results.setdefault(section, {}).update({r["topic"]: r for r in rows})
    results.update(extra, cpus=os.cpu_count())
    out.write_text(json.dumps(results, indent=2) + "\n")
    return out
