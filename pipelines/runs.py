"""Past local runs: read each run directory's metrics.json so runs can be compared."""
from __future__ import annotations

from pathlib import Path

from components.evaluate import best_baseline
from components.files import read_json
from components.params import differences
from components.registry import topics

COLUMNS = ("run", "topic", "dataset", "metric", "baseline", "train s", "changed parameters")


def run_rows(root: Path, topic: str | None = None) -> list[tuple[str, ...]]:
    """One row per complete run under ``root`` (oldest first), optionally for one topic."""
    registry = topics()
    rows = []
    for path in sorted(root.glob("*/metrics.json")):
        metrics = read_json(path)
        spec = registry.get(metrics.get("topic", ""))
        if spec is None or (topic and spec.name != topic):
            continue
        spec = spec.for_dataset(metrics["dataset"])
        value = metrics["test"].get(spec.main_metric)
        base = best_baseline(metrics, spec)
        changed = differences(spec.params_for(metrics["dataset"]), metrics["params"])
        rows.append((
            path.parent.name,
            spec.name,
            metrics["dataset"],
            f"{spec.main_metric} {value:.4f}" if value is not None else "-",
            f"{base[0]} {base[1]:.4f}" if base else "-",
            f"{metrics['train_seconds']:.1f}",
            " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}" for k, v in changed.items()) or "-",
        ))
    return rows


def format_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
