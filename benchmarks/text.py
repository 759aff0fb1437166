"""Text benchmark: the three text topics on the UCI Sentiment Labelled Sentences (all 3,000, 5-fold
stratified cross-validation, seeded): text-vectors per vectoriser, random-embeddings across word
vector widths, word-embeddings with single words and with word pairs, next to the majority-class
and TF-IDF + logistic-regression baselines on the same folds.

    python -m benchmarks.text --data-dir ../shared/data/sentiment-sentences

Prints a Markdown table (topic / vectoriser, accuracy mean ± std over folds, train seconds) and
merges the figures into --out (JSON). ``--smoke`` scores one held-out 20% split instead of five
folds and sweeps two widths: a quick check that everything runs. ``--seeds 0 1 2`` repeats the
whole table with each seed's folds.

``--choose`` is how text-vectors' defaults were picked, on validation data only: every candidate
(vectoriser and regularisation) is fitted on 80% of each outer fold's training texts and scored
on the other 20%; the test folds are never looked at. It prints each candidate's validation
accuracy, best first.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.common import merge_results, peak_memory_gib

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


CANDIDATES = [(kind, {"C": c, "nb_alpha": a, "min_count": m, "ngrams": n})
              for kind in ("tfidf", "nb") for c in (1.0, 3.0, 10.0, 30.0) for a in ((0.1, 0.25, 0.5, 1.0) if kind == "nb" else (0.5,))
              for m in (1, 2) for n in (2, 3)]
"""The defaults' candidates: vectoriser, regularisation, the nb ratio's smoothing, the word index."""


def choose(data_dir: str, seed: int) -> list[tuple[float, str, dict]]:
    """(mean validation accuracy, vectoriser, parameters) of each candidate, best first."""
    import numpy as np

    from components import steps
    from components.registry import get_topic
    from components.topics.text import text_vectors
    from components.topics.text.common import load_corpus

    with tempfile.TemporaryDirectory(prefix="dlx-bench-text-") as tmp:
        steps.prepare("sentiment-sentences", data_dir, seed, Path(tmp) / "dataset", json.dumps({"folds": "5"}))
        corpus = load_corpus(Path(tmp) / "dataset")
    texts, rng, found = np.array(corpus.texts, dtype=object), np.random.default_rng(seed), []
    splits = []
    for train_rows, _ in corpus.splits:  # the test rows of each fold stay unseen
        shuffled = rng.permutation(train_rows)
        cut = int(0.8 * len(shuffled))
        splits.append((shuffled[:cut], shuffled[cut:]))
    for kind, values in CANDIDATES:
        params = get_topic("text-vectors").params_for("sentiment-sentences", [f"{k}={v}" for k, v in values.items()])
        scores = []
        for fit_rows, val_rows in splits:
            model, _ = text_vectors.fit(kind, list(texts[fit_rows]), corpus.y[fit_rows], params, seed)
            scores.append(float((model.predict(list(texts[val_rows])) == corpus.y[val_rows]).mean()))
        found.append((round(float(np.mean(scores)), 4), kind, values))
        print(f"validation {found[-1][0]:.4f}  {kind} {values}", flush=True)
    return sorted(found, key=lambda row: -row[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/sentiment-sentences",
                        help="folder with the three *_labelled.txt files")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dimensions", type=int, nargs="+", help=f"random-embeddings widths (default {DIMENSIONS})")
    parser.add_argument("--smoke", action="store_true", help="one 20%% held-out split, two widths: a quick check")
    parser.add_argument("--seeds", type=int, nargs="+", help="repeat the table at each of these seeds (default: --seed)")
    parser.add_argument("--choose", action="store_true", help="score text-vectors' candidate defaults on validation only")
    parser.add_argument("--out", default="benchmarks/results/text.json")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.choose:
        ranked = choose(args.data_dir, args.seed)
        print("\n| validation accuracy | vectoriser | parameters |\n| --- | --- | --- |")
        for accuracy, kind, values in ranked:
            print(f"| {accuracy:.4f} | {kind} | {values} |")
        merge_results(args.out, "choose-text-vectors", [{"topic": f"{k} {v}", "validation_accuracy": a}
                                                         for a, k, v in ranked], seed=args.seed)
        return
    if args.seeds:
        for seed in args.seeds:
            _table(args, seed)
        return
    _table(args, args.seed)


def _table(args: argparse.Namespace, seed: int) -> None:
    options = {"protocol": "holdout"} if args.smoke else {"protocol": "cv", "folds": "5"}
    dimensions = tuple(args.dimensions or (SMOKE_DIMENSIONS if args.smoke else DIMENSIONS))
    rows = run(args.data_dir, seed, dimensions, options)
    protocol = "one 20% held-out split" if args.smoke else "5-fold stratified CV"
    print(f"\nsentiment-sentences, all sources, {protocol}, seed {seed}\n")
    print("| topic / vectoriser | accuracy | ± std | train s |\n| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['topic']} | {r['accuracy']:.4f} | {r['accuracy_std']:.4f} | {r['train_seconds']:.1f} |")
    section = "sentiment-sentences-smoke" if args.smoke else "sentiment-sentences"
    section += f"-seed{seed}" if args.seeds else ""
    print(f"peak resident memory so far: {peak_memory_gib()} GiB")
    print(f"merged into {merge_results(args.out, section, rows, seed=seed, peak_memory_gib=peak_memory_gib())}")


if __name__ == "__main__":
    main()
