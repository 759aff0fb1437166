"""One rank of the train step under torchrun (started by components.distributed.launch).

Each rank runs steps.train (components.distributed does the splitting); rank 0 writes the model
where the step asked, the other ranks into a scratch folder that is dropped, their output silenced.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from components import distributed, progress
from components.errors import DlxError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one rank of the train step (started by torchrun)")
    for name in ("topic", "params_json", "seed", "dataset_dir", "model_dir", "checkpoint_dir"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    from components import steps

    main_rank = distributed.is_main()
    with tempfile.TemporaryDirectory(prefix="dlx-rank-") as scratch, open(os.devnull, "w") as quiet, \
            contextlib.redirect_stdout(sys.stdout if main_rank else quiet):
        if not main_rank:
            os.environ.pop(progress.PROGRESS_ENV, None)
        model_dir = Path(args.model_dir) if main_rank else Path(scratch) / "model"
        try:
            steps.train(args.topic, args.params_json, int(args.seed), args.dataset_dir, model_dir,
                        args.checkpoint_dir or None)
        except DlxError as exc:
            print(f"dlx: error: {exc}", file=sys.stderr)
            return 2
        finally:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
