"""Text benchmark: the three text topics on the UCI Sentiment Labelled Sentences (all 3,000, 5-fold
stratified cross-validation, seeded): text-vectors per vectoriser, random-embeddings across word
vector widths, word-embeddings with single words and with word pairs, next to the majority-class
and TF-IDF + logistic-regression baselines on the same folds.

    python -m benchmarks.text --data-dir ../shared/data/sentiment-sentences

Prints a Markdown table (topic / vectoriser, accuracy mean ± std over folds, train seconds) and
merges the figures into --out (JSON). ``--smoke`` scores one held-out 20% split instead of five
folds and sweeps two widths: a quick check that everything runs.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.common import merge_results

DIMENSIONS = (16, 64, 256, 1024, 4096)
SMOKE_DIMENSIONS = (64, 1024)


def _row(name: str, accuracy: dict, seconds: float, params: dict) -> dict:
    return {"topic": name, "accuracy": accuracy["accuracy"], "accuracy_std": accuracy["accuracy_std"],
            "train_seconds": seconds, "params": params}


def run(data_dir: str, seed: int, dimensions: tuple[int, ...], options: dict[str, str]) -> list[dict]:
    """Prepare the data set once; train and evaluate every configuration on it; one row each."""
    from components import steps
    from components.params import to_dict
    from components.registry import get_topic

    configs = [("text-vectors", "", {})]
    configs += [("random-embeddings", f"mean d={d}", {"dimension": d}) for d in dimensions]
    configs += [("word-embeddings", "words", {}), ("word-embeddings", "words + pairs", {"ngrams": 2})]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dlx-bench-text-") as tmp:
        prepared = Path(tmp) / "dataset"
        steps.prepare("sentiment-sentences", data_dir, seed, prepared, json.dumps(options))
        for i, (topic, variant, params) in enumerate(configs):
            print(f"== {topic} {variant} {params or ''}", flush=True)
            model, evaluation = Path(tmp) / f"model-{i}", Path(tmp) / f"eval-{i}"
            chosen = get_topic(topic).params_for("sentiment-sentences", [f"{k}={v}" for k, v in params.items()])
            summary = steps.train(topic, json.dumps(to_dict(chosen)), seed, prepared, model)
            metrics = steps.evaluate(topic, prepared, model, evaluation)
            used = metrics["params"]
            if topic == "text-vectors":
                rows += [_row(f"text-vectors / {kind}", figures, figures["train_seconds"], used)
                         for kind, figures in metrics["vectorizers"].items()]
                rows += [_row(f"baseline / {name}", figures, 0.0, {}) for name, figures in metrics["baseline"].items()]
                collisions = metrics["hashing_collisions"]
            else:
                rows.append(_row(f"{topic} / {variant}", metrics["test"], summary["train_seconds"], used))
    for row in collisions:
        print(f"hashing {row['words']} words into {row['buckets']} buckets: {row['pct_colliding']:.2f}% collide "
              f"(expected {row['pct_expected']:.2f}%)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/sentiment-sentences",
                        help="folder with the three *_labelled.txt files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dimensions", type=int, nargs="+", help=f"random-embeddings widths (default {DIMENSIONS})")
    parser.add_argument("--smoke", action="store_true", help="one 20%% held-out split, two widths: a quick check")
    parser.add_argument("--out", default="benchmarks/results/text.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    options = {"protocol": "holdout"} if args.smoke else {"protocol": "cv", "folds": "5"}
    dimensions = tuple(args.dimensions or (SMOKE_DIMENSIONS if args.smoke else DIMENSIONS))
    rows = run(args.data_dir, args.seed, dimensions, options)
    protocol = "one 20% held-out split" if args.smoke else "5-fold stratified CV"
    print(f"\nsentiment-sentences, all sources, {protocol}, seed {args.seed}\n")
    print("| topic / vectoriser | accuracy | ± std | train s |\n| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['topic']} | {r['accuracy']:.4f} | {r['accuracy_std']:.4f} | {r['train_seconds']:.1f} |")
    section = "sentiment-sentences-smoke" if args.smoke else "sentiment-sentences"
    print(f"merged into {merge_results(args.out, section, rows, seed=args.seed)}")


if __name__ == "__main__":
    main()
