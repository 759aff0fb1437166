"""MNIST benchmark: both topics on the full 60k/10k MNIST with their defaults, plus the cost of
running a job through the local Kubeflow pipeline instead of one Python process.

    python -m benchmarks.mnist --data-dir ../shared/data/mnist

Prints a Markdown table (topic, test accuracy, train seconds, samples/second, random-forest
baseline) and the pipeline-overhead measurement, and merges what it measured into --out (JSON),
so `--topics mnist-cnn` or `--only overhead` re-measures one part and keeps the rest.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.common import merge_results, train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
_TASK_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (Executing task|Task) .*?'(\w+)'")


def quality(data_dir: str, topics: list[str], seed: int) -> list[dict]:
    def row(topic: str, summary: dict, metrics: dict) -> dict:
        return {
            "topic": topic,
            "test_accuracy": metrics["test"]["accuracy"],
            "train_seconds": summary["train_seconds"],
            "samples_per_second": summary["samples_per_second"],
            "random_forest_accuracy": metrics["baseline"]["random_forest"]["accuracy"],
            "parameters": summary["parameters"],
            "epochs": metrics["params"]["epochs"],
        }

    return train_and_evaluate("mnist", data_dir, topics, seed, row)


def _timed(command: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"benchmark command failed: {' '.join(command)}\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def _task_seconds(log: str) -> dict[str, float]:
    """Per-task wall time from kfp.local's 'Executing task' / 'Task ... finished' lines."""
    started, took = {}, {}
    for line in log.splitlines():
        match = _TASK_LINE.match(line)
        if not match:
            continue
        stamp = datetime.strptime(match.group(1), "%H:%M:%S.%f")
        if match.group(2) == "Executing task":
            started[match.group(3)] = stamp
        elif match.group(3) in started:
            took[match.group(3)] = round((stamp - started[match.group(3)]).total_seconds(), 1)
    return took


def overhead(topic: str, seed: int) -> dict:
    """`dlx run` wall time over the same three steps called in one fresh Python process."""
    direct_code = (
        "import json, tempfile; from pathlib import Path; from components import steps\n"
        "from components.params import to_dict; from components.registry import get_topic\n"
        "d = Path(tempfile.mkdtemp())\n"
        f"params = json.dumps(to_dict(get_topic('{topic}').params_for('digits')))\n"
        f"steps.prepare('digits', '', {seed}, d / 'ds')\n"
        f"steps.train('{topic}', params, {seed}, d / 'ds', d / 'model')\n"
        f"steps.evaluate('{topic}', d / 'ds', d / 'model', d / 'eval')\n"
    )
    direct, _ = _timed([sys.executable, "-c", direct_code], ROOT)
    with tempfile.TemporaryDirectory(prefix="dlx-bench-run-") as tmp:
        run_dir = Path(tmp) / "run"
        dlx = [sys.executable, "-m", "dlx.cli", "run", topic, "--seed", str(seed), "--out", str(run_dir)]
        piped, _ = _timed(dlx, ROOT)
        log = (run_dir / "pipeline.log").read_text()
        train_seconds = json.loads((run_dir / "metrics.json").read_text())["train_seconds"]
    return {
        "topic": topic, "dataset": "digits", "direct_seconds": round(direct, 1), "dlx_run_seconds": round(piped, 1),
        "ratio": round(piped / direct, 2), "train_seconds": train_seconds, "task_seconds": _task_seconds(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist", help="folder with the four MNIST IDX files")
    parser.add_argument("--topics", nargs="+", default=["mnist-mlp", "mnist-cnn"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=["quality", "overhead"], help="run one of the two measurements")
    parser.add_argument("--out", default="benchmarks/results/mnist.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    rows = [] if args.only == "overhead" else quality(args.data_dir, args.topics, args.seed)
    cost = None if args.only == "quality" else overhead("mnist-mlp", args.seed)

    if rows:
        print("\n| topic | test accuracy | train s | samples/s | epochs | random forest |")
        print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['topic']} | {r['test_accuracy']:.4f} | {r['train_seconds']:.0f} | "
              f"{r['samples_per_second']:.0f} | {r['epochs']} | {r['random_forest_accuracy']:.4f} |")
    if cost:
        print(f"\npipeline overhead ({cost['topic']} on digits): dlx run {cost['dlx_run_seconds']} s vs one process "
              f"{cost['direct_seconds']} s -> ratio {cost['ratio']}; training itself {cost['train_seconds']} s; "
              f"per task {cost['task_seconds']}")
    out = merge_results(args.out, "quality", rows, **({"overhead": cost} if cost else {}))
    print(f"merged into {out}")


if __name__ == "__main__":
    main()
