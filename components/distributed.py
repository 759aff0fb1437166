"""Data-parallel training of the PyTorch topics: N processes started by torchrun, one model each.

Every rank walks the same global batches and takes a contiguous slice of each (its rows, its
text streams); the gradients are summed across ranks after the backward pass, each rank's loss
having been weighted by its share of the batch, so the update is the one a single process makes
on the whole batch (up to floating-point summation order). Parameters start equal (same seed)
and stay equal, so every rank scores the same model; rank 0 alone writes the checkpoint, the
epoch log, the model and the progress, and resumes work with any world size because the saved
state is the global one. The all-reduce is written out (one flattened buffer per step) rather
than wrapped in DistributedDataParallel because two topics train bare tensors with hand-written
optimisers, which DDP's module wrapper does not cover; for these models DDP's overlap of
communication with the backward pass would save little.

How many processes the train step runs is $DLX_NPROC (`dlx run --nproc`, Kubeflow's `--gpus`,
SageMaker's instances x GPUs): ``launch`` then starts ``python -m torch.distributed.run`` on
components.train_worker with the step's arguments, a standalone rendezvous on one machine or a
static one across hosts ($DLX_NODES, $DLX_NODE_RANK, $DLX_MASTER: the SageMaker entrypoint sets
them from resourceconfig.json).
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from components.errors import DlxError
from components.files import read_json

NPROC_ENV = "DLX_NPROC"
NODES_ENV, NODE_RANK_ENV, MASTER_ENV = "DLX_NODES", "DLX_NODE_RANK", "DLX_MASTER"
"""Machines, this machine's index and rank 0's host:port, for a launch across hosts (SageMaker)."""


def world() -> tuple[int, int]:
    """(rank, world size) of this process: torchrun's RANK and WORLD_SIZE, else (0, 1)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    """Whether this process writes: the only one, or rank 0 of several."""
    return world()[0] == 0


def requested_processes() -> int:
    """The processes the train step should run ($DLX_NPROC, default 1)."""
    value = os.environ.get(NPROC_ENV, "1")
    if not value.isdigit() or int(value) < 1:
        raise DlxError(f"{NPROC_ENV}={value!r}: the number of training processes must be a whole number >= 1")
    return int(value)


def nodes() -> int:
    """How many machines the train step spans ($DLX_NODES, default 1)."""
    return int(os.environ.get(NODES_ENV, "1"))


def check_parallel(topic: str, framework: str) -> None:
    """Several training processes are for the PyTorch topics; anything else is refused in one line."""
    if framework != "pytorch":
        raise DlxError(f"{topic} is a {framework} topic and trains in one process; data-parallel training "
                       "(--nproc, --instance-count > 1, Kubeflow's --gpus > 1 and --nodes) is for the PyTorch topics "
                       "(pytorch-gd, cf-gd, cf-regularized, rnn, text-gen)")


def start(device: str) -> None:
    """Join the process group (gloo on the CPU, NCCL on CUDA, one GPU per local rank); no-op alone."""
    import torch
    import torch.distributed as dist

    rank, size = world()
    if size == 1 or dist.is_initialized():
        return
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=rank, world_size=size)


def share(size: int) -> tuple[int, int]:
    """This rank's [start, stop) of a global batch of ``size`` examples."""
    rank, count = world()
    return size * rank // count, size * (rank + 1) // count


def shard(value: Any, size: int, lo: int, hi: int) -> Any:
    """``value``'s rows [lo, hi) when it is a per-example array of ``size`` rows (a tensor, an ndarray,
    or a dataclass of them, such as a ratings split); anything else is shared and kept whole."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: shard(getattr(value, f.name), size, lo, hi)
                                             for f in dataclasses.fields(value)})
    if hasattr(value, "shape") and len(value.shape) and value.shape[0] == size:
        return value[lo:hi]
    return value


def sum_gradients(parameters: list) -> None:
    """Add up the ranks' gradients in place (one all-reduce of a flattened buffer)."""
    import torch
    import torch.distributed as dist

    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def total(value: Any) -> Any:
    """A tensor summed over the ranks (a copy; the input is left as it is); alone, the tensor itself."""
    import torch.distributed as dist

    if world()[1] == 1:
        return value
    out = value.clone()
    dist.all_reduce(out)
    return out


def rank_zero_says(flag: bool, device: str) -> bool:
    """Rank 0's ``flag`` on every rank: decisions from clocks (a time budget) must be the same everywhere."""
    import torch
    import torch.distributed as dist

    if world()[1] == 1:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(value, 0)
    return bool(value.item())


def launch(topic: str, params_json: str, seed: int, dataset_dir: Path, model_dir: Path,
           checkpoint_dir: Path | None, processes: int) -> dict:
    """Train under torchrun with ``processes`` per machine; the summary rank 0 wrote."""
    machines = nodes()
    if machines > 1:
        address, _, port = os.environ[MASTER_ENV].partition(":")
        rendezvous = [f"--nnodes={machines}", f"--node-rank={os.environ[NODE_RANK_ENV]}",
                      f"--master-addr={address}", f"--master-port={port or 29500}"]
    else:
        rendezvous = ["--standalone"]
    command = [sys.executable, "-m", "torch.distributed.run", *rendezvous, f"--nproc-per-node={processes}",
               "-m", "components.train_worker", topic, params_json, str(seed), str(dataset_dir), str(model_dir),
               str(checkpoint_dir or "")]
    print(f"training with {processes * machines} processes ({machines} machine{'s' if machines > 1 else ''} x "
          f"{processes}), "
          "torchrun", flush=True)
    run = subprocess.run(command, stderr=subprocess.PIPE, text=True)
    if run.returncode != 0:
        reasons = [line.removeprefix("dlx: error: ") for line in run.stderr.splitlines() if line.startswith("dlx: error: ")]
        sys.stderr.write(run.stderr[-4000:] if not reasons else "")
        raise DlxError(reasons[0] if reasons else f"the {processes * machines} training processes failed "
                       f"(torchrun exit {run.returncode}); see the step's log above")
    if int(os.environ.get(NODE_RANK_ENV, "0")) != 0:
        return {}
    return read_json(model_dir / "train.json")
