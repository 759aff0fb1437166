"""GPU check: the CUDA paths of the GPU image, proved on a machine with a GPU.

    make gpu-check                                   # or: python -m benchmarks.gpu_check
    docker run --gpus all IMAGE-gpu python -m benchmarks.gpu_check

For one Keras topic (mnist-mlp) and each PyTorch topic, on their default data sets: one epoch on
the GPU with mixed precision (precision=auto: bfloat16 where the GPU has it), and the same epoch
with the GPU hidden (CUDA_VISIBLE_DEVICES=""), for throughput against the CPU; then a two-epoch
run on the GPU straight through, and one killed after its first epoch and run again on the same
checkpoint folder, whose metrics must match the straight run's (to a tolerance: cuDNN's kernels
are not bitwise deterministic). Each run is its own process, as a job is. Without a GPU it says
so in one line and exits 0. Prints a Markdown table and merges it into --out (section gpu_check).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import merge_results

TOPICS = ("mnist-mlp", "pytorch-gd", "cf-gd", "cf-regularized", "rnn", "text-gen")
TOLERANCE = 0.02
"""Relative difference allowed between a resumed and a straight run's main metric on the GPU."""


def gpu() -> str | None:
    """The GPU torch sees, by name; None without one."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def worker(topic: str, prepared: str, params: str, out: str, checkpoints: str) -> None:
    """One job's train and evaluate steps in this process; prints the figures as the last line."""
    from components import steps
    from components.registry import get_topic

    summary = steps.train(topic, params, 0, Path(prepared), Path(out) / "model", Path(checkpoints) if checkpoints else None)
    metrics = steps.evaluate(topic, Path(prepared), Path(out) / "model", Path(out) / "evaluation")
    metric = get_topic(topic).main_metric
    print(json.dumps({"summary": summary, "metric": metric, "value": metrics["test"][metric]}))


def _run(topic: str, prepared: Path, params: dict, out: Path, *, cpu: bool = False, checkpoints: Path | None = None,
         stop_after: int | None = None) -> tuple[dict | None, str]:
    """A worker process; with ``stop_after`` killed once that many epochs are saved."""
    env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if cpu else {})}
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--worker", topic, "--prepared", str(prepared),
               "--params", json.dumps(params), "--run-out", str(out), "--checkpoints", str(checkpoints or "")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as process:
        if stop_after is not None:
            while process.poll() is None and not _saved(checkpoints, stop_after):
                time.sleep(0.05)
            process.kill()
        output = process.stdout.read()
    if process.returncode != 0:
        return None, output
    return json.loads(output.strip().splitlines()[-1]), output


def _saved(checkpoints: Path, epochs: int) -> bool:
    """The epoch log shows ``epochs`` done and the state saved after it is in place (not mid-write)."""
    try:
        done = len(json.loads((checkpoints / "epochs.json").read_text())["elapsed"])
    except (OSError, ValueError, KeyError):  # not there yet, or caught mid-write
        return False
    state = [p for p in checkpoints.iterdir() if p.name != "epochs.json" and "partial" not in p.name]
    return done >= epochs and bool(state)


def check(topic: str, work: Path) -> dict:
    """The four runs of one topic and what they show."""
    from components import steps
    from components.params import to_dict
    from components.registry import get_topic

    spec = get_topic(topic)
    dataset = spec.datasets[0]
    prepared = work / topic / "dataset"
    steps.prepare(dataset, "", 0, prepared)
    base = to_dict(spec.params_for(dataset)) | {"precision": "auto"}
    one, two = base | {"epochs": 1}, base | {"epochs": 2}
    print(f"== {topic} on {dataset}", flush=True)
    on_gpu, gpu_output = _run(topic, prepared, one, work / topic / "gpu")
    on_cpu, cpu_output = _run(topic, prepared, one, work / topic / "cpu", cpu=True)
    straight, _ = _run(topic, prepared, two, work / topic / "straight", checkpoints=work / topic / "ck-straight")
    _run(topic, prepared, two, work / topic / "stopped", checkpoints=work / topic / "ck", stop_after=1)
    resumed, resumed_output = _run(topic, prepared, two, work / topic / "resumed", checkpoints=work / topic / "ck")
    failed = [name for name, result in (("gpu", on_gpu), ("cpu", on_cpu), ("straight", straight), ("resumed", resumed))
              if result is None]
    if failed:
        tail = (gpu_output if on_gpu is None else cpu_output if on_cpu is None else resumed_output).strip()[-600:]
        return {"topic": topic, "ok": False, "problem": f"{', '.join(failed)} run failed: {tail}"}
    gap = abs(resumed["value"] - straight["value"]) / max(abs(straight["value"]), 1e-12)
    row = {"topic": topic, "device": on_gpu["summary"]["device"], "precision": on_gpu["summary"]["precision"],
           "gpu_per_second": on_gpu["summary"]["samples_per_second"],
           "cpu_per_second": on_cpu["summary"]["samples_per_second"],
           "metric": straight["metric"], "straight": straight["value"], "resumed": resumed["value"],
           "resumed_from_checkpoint": "resuming from the checkpoint" in resumed_output, "relative_gap": gap}
    problems = [text for bad, text in (
        (row["device"] != "cuda", "did not train on CUDA"), (row["precision"] == "fp32", "ran in fp32"),
        (not row["resumed_from_checkpoint"], "the rerun did not resume"), (gap > TOLERANCE, "resumed != straight"))
        if bad]
    return row | {"ok": not problems, "problem": "; ".join(problems)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--topics", nargs="+", default=list(TOPICS))
    parser.add_argument("--out", default="benchmarks/results/gpu_check.json")
    for hidden in ("--worker", "--prepared", "--params", "--run-out", "--checkpoints"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.prepared, args.params, args.run_out, args.checkpoints)
        return 0
    name = gpu()
    if name is None:
        import torch

        print(f"gpu-check: no GPU here (torch {torch.__version__} sees no CUDA device); run it where one is, "
              "e.g. docker run --gpus all IMAGE-gpu python -m benchmarks.gpu_check")
        return 0
    print(f"gpu-check on {name}", flush=True)
    with tempfile.TemporaryDirectory(prefix="dlx-gpu-check-") as work:
        rows = [check(topic, Path(work)) for topic in args.topics]
    print("| topic | precision | GPU /s | CPU /s | speed-up | 2 epochs | stopped after 1, resumed | ok |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        if "straight" not in row:
            print(f"| {row['topic']} | | | | | | | no: {row['problem']} |")
            continue
        print(f"| {row['topic']} | {row['precision']} | {row['gpu_per_second']:,.0f} | {row['cpu_per_second']:,.0f} | "
              f"{row['gpu_per_second'] / row['cpu_per_second']:.1f}x | {row['metric']} {row['straight']:.4f} | "
              f"{row['resumed']:.4f} | {'yes' if row['ok'] else 'no: ' + row['problem']} |")
    print(f"merged into {merge_results(args.out, 'gpu_check', rows, gpu=name)}")
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
