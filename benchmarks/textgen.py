"""Text-generation benchmark: text-gen on Tiny Shakespeare (nanoGPT's 90/10 split) under wall-clock budgets.

    python -m benchmarks.textgen --data-dir ../shared/data/tinyshakespeare --budgets 10 --hidden 256
    python -m benchmarks.textgen --budgets 2 --hidden 128 256 384

Each (budget, hidden size) pair trains the defaults with ``budget_minutes`` and ``hidden_size`` set
(and epochs unbounded, so the budget alone ends training and plans the schedule), then evaluates.
Prints a Markdown table (validation nats/char, bits/char, characters/second) and a sample of the
last model, and merges the figures into --out (JSON). Run it on a quiet machine: the budget is
wall-clock time, so other jobs on the CPUs lower the score.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from benchmarks.common import merge_results

UNBOUNDED_EPOCHS = 1000


def run(data_dir: str, budgets: list[float], hiddens: list[int], seed: int, prompt: str, length: int,
        extra: list[str]) -> tuple[list[dict], str]:
    """One row per (budget, hidden size), all on one prepared data set; and the last model's sample."""
    from components import steps
    from components.params import split_pair
    from components.topics.sequences import text_gen
    from components.topics.sequences.text_gen import model as char_lm

    rows, sample = [], ""
    with tempfile.TemporaryDirectory(prefix="dlx-bench-") as tmp:
        prepared = Path(tmp) / "dataset"
        steps.prepare("tiny-shakespeare", data_dir, seed, prepared)
        for budget in budgets:
            for hidden in hiddens:
                name = f"text-gen {budget:g} min hidden {hidden}"
                print(f"== {name}", flush=True)
                params = {"budget_minutes": budget, "hidden_size": hidden, "epochs": UNBOUNDED_EPOCHS,
                          **dict(split_pair(item) for item in extra)}
                model, evaluation = Path(tmp) / name / "model", Path(tmp) / name / "eval"
                summary = steps.train("text-gen", json.dumps(_typed(params)), seed, prepared, model)
                metrics = steps.evaluate("text-gen", prepared, model, evaluation)
                rows.append({"topic": name, "budget_minutes": budget, "hidden_size": hidden,
                             "val_nats_per_char": metrics["test"]["nats_per_char"],
                             "val_bits_per_char": metrics["test"]["bits_per_char"],
                             "chars_per_second": summary["train_chars_per_second"],
                             "train_seconds": summary["train_seconds"], "epochs_run": summary["epochs_run"],
                             "parameters": summary["parameters"], "device": summary["device"],
                             "unigram_nats_per_char": metrics["baseline"]["unigram"]["nats_per_char"]})
                loaded, vocabulary = text_gen.load_model(model)
                sample = prompt + char_lm.generate(loaded, vocabulary, prompt, length, 0.8, seed=seed)
    return rows, sample


def _typed(params: dict) -> dict:
    """--param strings as the JSON values params.json holds (ints, floats, bools, strings)."""
    from components.params import override, to_dict
    from components.topics.sequences.text_gen import Params

    return to_dict(override(Params, {k: str(v) for k, v in params.items()}, "text-gen"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="../shared/data/tinyshakespeare", help="folder with input.txt")
    parser.add_argument("--budgets", nargs="+", type=float, default=[10.0], help="training minutes per run")
    parser.add_argument("--hidden", nargs="+", type=int, default=[256], help="hidden sizes to try")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="any other text-gen parameter for every run (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--length", type=int, default=500, help="characters of the printed sample")
    parser.add_argument("--out", default="benchmarks/results/textgen.json")
    args = parser.parse_args()

    rows, sample = run(args.data_dir, args.budgets, args.hidden, args.seed, args.prompt, args.length, args.param)
    print("\n| budget (min) | hidden | val nats/char | bits/char | chars/s | epochs | parameters |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['budget_minutes']:g} | {r['hidden_size']} | {r['val_nats_per_char']:.4f} | "
              f"{r['val_bits_per_char']:.4f} | {r['chars_per_second']:,.0f} | {r['epochs_run']} | "
              f"{r['parameters']:,} |")
    print(f"\nunigram baseline {rows[-1]['unigram_nats_per_char']:.4f} nats/char; chars/s: training steps "
          f"alone; sample of the last model (temperature 0.8):\n\n{sample}\n")
    print(f"merged into {merge_results(args.out, 'tiny-shakespeare', rows, sample=sample)}")


if __name__ == "__main__":
    main()
