"""Text-generation benchmark: text-gen on Tiny Shakespeare (nanoGPT's 90/10 split) for a number of epochs or minutes.

    python -m benchmarks.textgen --data-dir ../shared/data/tinyshakespeare --epochs 13 --peer --seeds 0 1 2
    python -m benchmarks.textgen --budgets 2 --hidden 128 256 384

Each (length, hidden size) pair trains the defaults with ``hidden_size`` and the length set, then
evaluates: ``--epochs N`` trains N passes with no time limit, so the same characters on any machine
(13 epochs are 12,979,200 characters); ``--budgets M`` trains M minutes with epochs unbounded, so the
budget alone ends training and plans the schedule.
With ``--peer`` each run is followed by its peer, written from its published description: a plain
2-layer LSTM of 256 units with an embedding of 64, Adam 3e-3 at a constant rate, batches of 64
streams x 100 characters, no dropout, clipping or schedule, trained on the same number of
characters the run saw. Prints a Markdown table (validation nats/char, bits/char, characters/second,
and the peer's beside them) and a sample of the last model, and merges the figures into --out
(JSON), a section per seed. Run it on a quiet machine: speeds, and a budget's score, depend on what
else the CPUs do.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import merge_results, peak_memory_gib, seed_suffix

UNBOUNDED_EPOCHS = 1000


def lstm_peer(prepared: Path, characters: int, seed: int) -> dict:
    """The plain LSTM recipe, trained left to right over 64 carried streams until it has seen ``characters``."""
    import torch
    from torch import nn

    from components.data.corpus import load_corpus
    from components.topics.sequences.text_gen import model as char_lm

    class PlainLSTM(nn.Module):
        """embedding 64 -> torch's 2-layer LSTM of 256 -> linear, in float32, as the recipe describes it."""

        def __init__(self, vocab_size: int) -> None:
            super().__init__()
            self.embedding, self.rnn = nn.Embedding(vocab_size, 64), nn.LSTM(64, 256, 2, batch_first=True)
            self.head = nn.Linear(256, vocab_size)

        def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
            out, state = self.rnn(self.embedding(x), state)
            return self.head(out), state

    train_text, val_text, meta = load_corpus(prepared)
    vocabulary = meta["schema"]["vocabulary"]
    data = {name: torch.tensor(char_lm.encode(text, vocabulary)) for name, text in (("train", train_text), ("val", val_text))}
    torch.manual_seed(seed)
    model = PlainLSTM(len(vocabulary))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    seen, seconds, state = 0, 0.0, None
    while seen < characters:
        for x, y in char_lm.Stream(data["train"], 64, 100).chunks():
            start = time.perf_counter()
            logits, state = model(x, char_lm.detach(state))
            loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seconds += time.perf_counter() - start
            seen += y.numel()
            if seen >= characters:
                break
        state = None
    nats = char_lm.validation_loss(model, data["val"], 64, 100, None)
    return {"recipe": "2-layer LSTM 256, Adam 3e-3 constant", "val_nats_per_char": round(nats, 4),
            "characters_seen": seen, "train_seconds": round(seconds, 2), "chars_per_second": round(seen / seconds, 1)}


def run(data_dir: str, lengths: list[tuple[str, float]], hiddens: list[int | None], seed: int, prompt: str,
        length: int, extra: list[str], peer: bool = False) -> tuple[list[dict], str]:
    """One row per (training length, hidden size), all on one prepared data set; and the last model's
    sample. A length is ("min", budget): that many minutes, the schedule planned over them; or
    ("epochs", n): n passes over the training text, no time limit. A hidden size of None keeps the default."""
    from components import steps
    from components.params import split_pair
    from components.topics.sequences import text_gen
    from components.topics.sequences.text_gen import model as char_lm

    rows, sample = [], ""
    with tempfile.TemporaryDirectory(prefix="dlx-bench-") as tmp:
        prepared = Path(tmp) / "dataset"
        steps.prepare("tiny-shakespeare", data_dir, seed, prepared)
        for unit, amount in lengths:
            for hidden in hiddens:
                params = {"budget_minutes": amount, "epochs": UNBOUNDED_EPOCHS} if unit == "min" else \
                    {"budget_minutes": 0, "epochs": int(amount)}
                params = _typed({**params, **({"hidden_size": hidden} if hidden else {}),
                                 **dict(split_pair(item) for item in extra)})
                name = f"text-gen {amount:g} {'min' if unit == 'min' else 'epochs'} hidden {params['hidden_size']}"
                print(f"== {name}", flush=True)
                model, evaluation = Path(tmp) / name / "model", Path(tmp) / name / "eval"
                summary = steps.train("text-gen", json.dumps(params), seed, prepared, model)
                metrics = steps.evaluate("text-gen", prepared, model, evaluation)
                rows.append({"topic": name, "budget_minutes": params["budget_minutes"], "epochs": params["epochs"],
                             "hidden_size": params["hidden_size"], "precision": summary["precision"],
                             "val_nats_per_char": metrics["test"]["nats_per_char"],
                             "val_bits_per_char": metrics["test"]["bits_per_char"],
                             "chars_per_second": summary["train_chars_per_second"],
                             "train_seconds": summary["train_seconds"], "epochs_run": summary["epochs_run"],
                             "parameters": summary["parameters"], "device": summary["device"],
                             "unigram_nats_per_char": metrics["baseline"]["unigram"]["nats_per_char"],
                             "characters_seen": summary["characters_seen"]})
                if peer:
                    print(f"== its peer on {summary['characters_seen']:,} characters", flush=True)
                    rows[-1]["peer"] = lstm_peer(prepared, summary["characters_seen"], seed)
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
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--budgets", nargs="+", type=float, default=[10.0], help="training minutes per run")
    length.add_argument("--epochs", nargs="+", type=int,
                        help="passes over the training text per run, no time limit (13: 12,979,200 characters)")
    parser.add_argument("--hidden", nargs="+", type=int, default=[None], help="hidden sizes to try (default: the topic's)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="any other text-gen parameter for every run (repeatable)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="the runs once per seed")
    parser.add_argument("--prompt", default="ROMEO:")
    parser.add_argument("--length", type=int, default=500, help="characters of the printed sample")
    parser.add_argument("--peer", action="store_true", help="train the plain LSTM peer after each run")
    parser.add_argument("--out", default="benchmarks/results/textgen.json")
    args = parser.parse_args()

    lengths = [("epochs", float(n)) for n in args.epochs] if args.epochs else [("min", b) for b in args.budgets]
    for seed in args.seeds:
        rows, sample = run(args.data_dir, lengths, args.hidden, seed, args.prompt, args.length, args.param, args.peer)
        print(f"\nseed {seed}\n\n| run | val nats/char | bits/char | chars/s | characters | epochs | parameters |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            print(f"| {r['topic']} | {r['val_nats_per_char']:.4f} | {r['val_bits_per_char']:.4f} | "
                  f"{r['chars_per_second']:,.0f} | {r['characters_seen']:,} | {r['epochs_run']} | {r['parameters']:,} |")
        for r in rows:
            if "peer" in r:
                peer = r["peer"]
                print(f"\n{r['topic']}: {r['val_nats_per_char']:.4f} nats/char at {r['chars_per_second']:,.0f} chars/s; "
                      f"peer ({peer['recipe']}) on the same {peer['characters_seen']:,} characters: "
                      f"{peer['val_nats_per_char']:.4f} at {peer['chars_per_second']:,.0f} chars/s "
                      f"(speed ratio {r['chars_per_second'] / peer['chars_per_second']:.2f})")
        print(f"\nunigram baseline {rows[-1]['unigram_nats_per_char']:.4f} nats/char; chars/s: training steps "
              f"alone; sample of the last model (temperature 0.8):\n\n{sample}\n")
        section = "tiny-shakespeare" + seed_suffix(seed)
        print(f"merged into {merge_results(args.out, section, rows, sample=sample, peak_memory_gib=peak_memory_gib())}")


if __name__ == "__main__":
    main()
