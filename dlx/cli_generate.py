"""`dlx generate RUN`: sample text from a trained text-gen model, streamed to the terminal.

RUN is a run of `dlx run text-gen`: its id (or a unique prefix of one, see `dlx runs`), its
directory (the model is in train/model/), or a model directory itself (model.pt, params.json, train.json).
"""
from __future__ import annotations

import argparse
import sys

from dlx.arguments import add_runs_dir, require_train_extra, run_model_dir


def register(sub: argparse._SubParsersAction) -> None:
    """Add `generate` to the `dlx` parser."""
    gen = sub.add_parser("generate", help="sample text from a trained text-gen model (streams to the terminal)")
    gen.add_argument("run", metavar="RUN", help="a `dlx run text-gen` run: its id (or a unique prefix), run or model directory")
    add_runs_dir(gen, "where runs are")
    gen.add_argument("--prompt", default="", help="text the sample continues (default: start of a line)")
    gen.add_argument("--length", type=int, default=500, help="characters to generate (default: 500)")
    gen.add_argument("--temperature", type=float, default=0.8,
                     help="below 1: safer, more repetitive; above 1: wilder; 0: always the likeliest (default: 0.8)")
    gen.add_argument("--top-p", type=float, default=1.0,
                     help="sample only from the likeliest characters holding this much probability (default: 1, all)")
    gen.add_argument("--seed", type=int, default=0, help="seed of the draws: the same seed gives the same text")
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> None:
    require_train_extra("generate")
    from components.topics.sequences import text_gen
    from components.topics.sequences.text_gen import model as char_lm

    model_dir = run_model_dir(args, command="generate", marker="train.json", takes=("text-gen",))
    model, vocabulary = text_gen.load_model(model_dir)
    char_lm.check_options(args.length, args.temperature, args.top_p)
    char_lm.encode(args.prompt, vocabulary)  # a bad prompt fails before anything is printed
    sys.stdout.write(args.prompt)
    char_lm.generate(model, vocabulary, args.prompt, args.length, args.temperature, args.top_p, args.seed,
                     on_char=lambda c: (sys.stdout.write(c), sys.stdout.flush()))
    sys.stdout.write("\n")
