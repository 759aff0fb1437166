"""MNIST benchmark: both topics on the full 60k/10k MNIST with their defaults, each beside a
published Keras recipe trained in the same run, plus the cost of running a job through the local
Kubeflow pipeline instead of one Python process.

    python -m benchmarks.mnist --data-dir ../shared/data/mnist --seeds 0 1 2

The peers, written from their published descriptions and trained on the same 54k training images
(validated on the same 6k, tested on the same 10k): mnist-cnn's is the keras-io "simple MNIST
convnet" (two 3x3 convolutions 32/64 each with 2x2 max-pooling, dropout 0.5, Adam, batch 128, 15
epochs), mnist-mlp's the classic Keras MNIST MLP (512-512 ReLU, dropout 0.2, RMSprop, batch 128, 20
epochs). Prints a Markdown table per seed (test accuracy of topic and peer, their training seconds
and the ratio, random-forest baseline), the pipeline-overhead measurement and the peak resident
memory, and merges what it measured into --out (JSON), so `--topics mnist-cnn` or `--only overhead`
re-measures one part and keeps the rest.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.common import merge_results, peak_memory_gib, seed_suffix, train_and_evaluate

ROOT = Path(__file__).resolve().parents[1]
_TASK_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d+) - INFO - (Executing task|Task) .*?'(\w+)'")


def keras_peer(topic: str, prepared: Path, seed: int) -> dict:
    """The published Keras recipe the topic is measured against, trained and tested on its split."""
    from components.data import load_dataset
    from components.topics.images.classifier import model_inputs
    from components.topics.keras_fit import import_keras

    keras = import_keras("tensorflow", "fp32")
    keras.utils.set_random_seed(seed)
    arrays, meta = load_dataset(prepared)
    x = {split: model_inputs(arrays[f"x_{split}"], meta) for split in ("train", "val", "test")}
    layers = keras.layers
    if topic == "mnist-cnn":
        recipe, epochs, optimizer = "keras-io simple MNIST convnet", 15, keras.optimizers.Adam()
        stack = [layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
                 layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
                 layers.Flatten(), layers.Dropout(0.5)]
    else:
        recipe, epochs, optimizer = "Keras MNIST MLP", 20, keras.optimizers.RMSprop()
        stack = [layers.Flatten(), layers.Dense(512, activation="relu"), layers.Dropout(0.2),
                 layers.Dense(512, activation="relu"), layers.Dropout(0.2)]
    model = keras.Sequential([keras.Input(x["train"].shape[1:]), *stack, layers.Dense(10, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x["train"], arrays["y_train"], batch_size=128, epochs=epochs, validation_data=(x["val"], arrays["y_val"]),
              verbose=0)
    seconds = time.perf_counter() - start
    predicted = model.predict(x["test"], batch_size=1024, verbose=0).argmax(axis=1)
    return {"recipe": recipe, "test_accuracy": round(float((predicted == arrays["y_test"]).mean()), 4),
            "train_seconds": round(seconds, 2), "epochs": epochs, "parameters": int(model.count_params())}


def quality(data_dir: str, topics: list[str], seed: int) -> list[dict]:
    def row(topic: str, summary: dict, metrics: dict) -> dict:
        return {
            "topic": topic,
            "test_accuracy": metrics["test"]["accuracy"],
            "single_view_accuracy": metrics.get("single_view_accuracy", metrics["test"]["accuracy"]),
            "train_seconds": summary["train_seconds"],
            "samples_per_second": summary["samples_per_second"],
            "random_forest_accuracy": metrics["baseline"]["random_forest"]["accuracy"],
            "parameters": summary["parameters"],
            "epochs": metrics["params"]["epochs"],
        }

    return train_and_evaluate("mnist", data_dir, topics, seed, row, peer=keras_peer)


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


def overhead(topic: str, seed: int, repeats: int) -> dict:
    """`dlx run` wall time over the same three steps called in one fresh Python process, as the median
    ratio of ``repeats`` pairs run one after the other (the CPUs' speed drifts between minutes)."""
    direct_code = (
        "import json, tempfile; from pathlib import Path; from components import steps\n"
        "from components.params import to_dict; from components.registry import get_topic\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    d = Path(tmp)\n"
        f"    params = json.dumps(to_dict(get_topic('{topic}').params_for('digits')))\n"
        f"    steps.prepare('digits', '', {seed}, d / 'ds')\n"
        f"    steps.train('{topic}', params, {seed}, d / 'ds', d / 'model')\n"
        f"    steps.evaluate('{topic}', d / 'ds', d / 'model', d / 'eval')\n"
    )
    pairs = []
    for _ in range(repeats):
        direct, _ = _timed([sys.executable, "-c", direct_code], ROOT)
        with tempfile.TemporaryDirectory(prefix="dlx-bench-run-") as tmp:
            run_dir = Path(tmp) / "run"
            dlx = [sys.executable, "-m", "dlx.cli", "run", topic, "--seed", str(seed), "--out", str(run_dir)]
            piped, _ = _timed(dlx, ROOT)
            log = (run_dir / "pipeline.log").read_text()
        pairs.append((piped / direct, direct, piped))
    ratio, direct, piped = sorted(pairs)[len(pairs) // 2]
    return {
        "topic": topic, "dataset": "digits", "repeats": repeats, "direct_seconds": round(direct, 1),
        "dlx_run_seconds": round(piped, 1), "ratio": round(ratio, 2), "ratios": [round(r, 2) for r, _, _ in pairs],
        "task_seconds": _task_seconds(log),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/mnist", help="folder with the four MNIST IDX files")
    parser.add_argument("--topics", nargs="+", default=["mnist-mlp", "mnist-cnn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one quality run (topic and peer) per seed")
    parser.add_argument("--repeats", type=int, default=3, help="overhead: alternating pairs of runs, median ratio")
    parser.add_argument("--only", choices=["quality", "overhead"], help="run one of the two measurements")
    parser.add_argument("--out", default="benchmarks/results/mnist.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    for seed in [] if args.only == "overhead" else args.seeds:
        rows = quality(args.data_dir, args.topics, seed)
        print(f"\nseed {seed}\n\n| topic | test accuracy (one view) | peer | peer accuracy | train s | peer train s "
              "| time ratio | epochs | random forest |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            peer = r["peer"]
            print(f"| {r['topic']} | {r['test_accuracy']:.4f} ({r['single_view_accuracy']:.4f}) | {peer['recipe']} | "
                  f"{peer['test_accuracy']:.4f} | "
                  f"{r['train_seconds']:.0f} | {peer['train_seconds']:.0f} | {r['train_seconds'] / peer['train_seconds']:.2f} | "
                  f"{r['epochs']} | {r['random_forest_accuracy']:.4f} |")
        section = "quality" + seed_suffix(seed)
        print(f"merged into {merge_results(args.out, section, rows, quality_peak_memory_gib=peak_memory_gib())}")
    if args.only != "quality":
        cost = overhead("mnist-mlp", args.seeds[0], args.repeats)
        print(f"\npipeline overhead ({cost['topic']} on digits), {args.repeats} alternating pairs: dlx run "
              f"{cost['dlx_run_seconds']} s vs one process {cost['direct_seconds']} s -> ratios {cost['ratios']}, "
              f"median {cost['ratio']}; per task of the last run {cost['task_seconds']}")
        print(f"merged into {merge_results(args.out, 'quality', [], overhead=cost)}")


if __name__ == "__main__":
    main()
