"""ELEVATER evaluation fan-out: the same work items run serially in one process and on Ray actors, in one run
of this script.

    python benchmarks/eval_parallel.py [--checkpoint DIR] [--mode zeroshot,linear_probe] [--shots 5]
        [--seeds 0,1,2,3,4] [--no-tuning] [--actor-per dataset|item] [--max-actors auto|N] [--cpus-per-actor 1]
        [--gpus-per-actor auto|F] [--train-size 512] [--serial-threads N] [--repeats N]

Data: four data sets in ELEVATER layout under a temporary data root -- the built-ins ``shapes`` and ``digits``
and a second copy of each (``shapes-b``, ``digits-b``: the same images under another id, read from their own
files), ``--train-size`` training images each. Without ``--checkpoint`` the quickstart recipe's model is saved
with random weights (the timing only needs the architecture). Work items are data set x mode x shots x seed.

Serial: a fresh Python process (``raykd eval elevater --serial`` would be the same) imports torch and raykd,
loads the model once and runs every item in turn, sharing image features (torch threads: its default, one
per core, or ``--serial-threads``). It runs at the niceness Ray gives its worker processes (15 by default,
``RAY_WORKER_NICENESS``), so that on a shared machine both compete for the CPUs on equal terms. Fan-out: the
evaluation engine's actor pool (``raykd.eval.engine.run_pool``) on a local Ray with one logical CPU per core; each
actor (``--cpus-per-actor`` CPUs and torch threads) imports, loads the model and runs a data set's items
at a time (``--actor-per``), as many actors as fit (``--max-actors``). Both wall times therefore include the
imports and loading the model; starting Ray is printed apart. With ``--repeats N`` the two alternate N times
and the best of each is compared (on a shared machine the load moves). Prints the wall times, the speed-up
and whether both runs got the same metrics; the last line is `ratio eval_fanout_per_core <speed-up / cores>`
(the goal is 0.9 and more).

Work is sized so that start-up does not dominate: each process (the serial one, every actor) pays its imports
and the model load once, about 6 s of CPU here, so the default is 24 items (5 linear-probe seeds per data
set) of roughly a minute of CPU in all. With CUDA both sides use the GPU: the serial process puts the model on
it, and ``--gpus-per-actor auto`` shares the GPUs among the actors (each gets GPUs / actors of a card, its CUDA
memory capped at that share); every item ends by copying its results to the host, so the wall times include
the GPU's work.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def save_random_checkpoint(recipe: Path, directory: Path) -> Path:
    import torch

    from raykd.config import config_to_dict, load_config
    from raykd.models.dual_encoder import build_dual_encoder
    from raykd.train.checkpoint import save_state

    cfg = load_config(recipe)
    torch.manual_seed(0)
    model = build_dual_encoder(cfg.model)
    opt = torch.optim.AdamW(model.parameters())
    directory.mkdir(parents=True, exist_ok=True)
    save_state(directory, model=model, loss=torch.nn.Identity(), optimizer=opt,
               scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), scaler=None, step=0, epoch=0,
               batches_done=0, config=config_to_dict(cfg))
    return directory


def make_items(data_root: Path, args: argparse.Namespace, cache_root: Path) -> list:
    from raykd.eval.elevater.builtin import write_builtin
    from raykd.eval.elevater.catalogue import builtin_spec
    from raykd.eval.elevater.run import parse_shots
    from raykd.eval.elevater.modes import EvalOptions
    from raykd.eval.elevater.search import SearchSpace, parse_grid
    from raykd.eval.elevater.work import WorkItem

    options = EvalOptions(tune=not args.no_tuning, num_threads=max(1, int(args.cpus_per_actor)),
                          space=SearchSpace(parse_grid(args.search_lrs)) if args.search_lrs else SearchSpace())
    specs = []
    copies = (("shapes", "shapes"), ("digits", "digits"), ("shapes", "shapes-b"), ("digits", "digits-b"))
    for name, dataset_id in copies:
        write_builtin(name, data_root, dataset_id=dataset_id, train_size=args.train_size, cache_root=cache_root)
        specs.append(builtin_spec(name, dataset_id))
    items = []
    for spec in specs:
        for mode in args.mode.split(","):
            for shots in ([0] if mode == "zeroshot" else parse_shots([args.shots])):
                for seed in ([0] if mode == "zeroshot" else [int(s) for s in args.seeds.split(",")]):
                    items.append(WorkItem(spec, mode, shots, seed, str(data_root), options))
    return items


def serial_child(items_file: str, out_file: str, checkpoint: str, threads: int | None, niceness: int) -> None:
    """The serial run, in its own process: import, load the model once, run every item, write the values."""
    os.nice(niceness)
    from dataclasses import replace

    import torch

    from raykd.eval.engine import load_model, run_serial
    from raykd.models.checkpoint import checkpoint_model

    if threads:
        torch.set_num_threads(threads)
    items = pickle.loads(Path(items_file).read_bytes())
    items = [replace(i, options=replace(i.options, num_threads=None)) for i in items]
    results = run_serial(load_model(functools.partial(checkpoint_model, checkpoint)), items)
    Path(out_file).write_text(json.dumps({"threads": torch.get_num_threads(),
                                          "results": [[r.value, r.error] for r in results],
                                          "item_cpu": sum(r.cpu_seconds for r in results)}))


def serial(tmp: Path, checkpoint: Path, items: list, threads: int | None, niceness: int) -> tuple[float, dict]:
    (tmp / "items.pkl").write_bytes(pickle.dumps(items))
    command = [sys.executable, __file__, "--serial-child", str(tmp / "items.pkl"), str(tmp / "serial.json"),
               "--checkpoint", str(checkpoint), "--niceness", str(niceness)]
    command += ["--serial-threads", str(threads)] if threads else []
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(command, check=True, cwd=REPO)
    out = json.loads((tmp / "serial.json").read_text())
    return time.perf_counter() - start, out | {"cpu": _children_cpu() - cpu}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parallel(checkpoint: Path, items: list, args: argparse.Namespace, max_actors: int | None) -> tuple[float, list]:
    from raykd.eval.engine import run_pool
    from raykd.models.checkpoint import checkpoint_model

    start = time.perf_counter()
    results = run_pool(functools.partial(checkpoint_model, str(checkpoint)), items, group=args.actor_per,
                       max_actors=max_actors, num_cpus_per_actor=args.cpus_per_actor,
                       num_gpus_per_actor=args.gpus_per_actor)
    return time.perf_counter() - start, results


def gpus_per_actor(args: argparse.Namespace, units: int) -> float:
    """`--gpus-per-actor`: a number, or 'auto': without CUDA 0; with it, the GPUs split evenly among the actors
    that run at once (the CPUs' worth, at most one per unit), so the actors use the GPU as the serial run does."""
    import torch

    if args.gpus_per_actor != "auto":
        return float(args.gpus_per_actor)
    if not torch.cuda.is_available():
        return 0.0
    actors = max(1, min(units, int((os.cpu_count() or 1) / args.cpus_per_actor)))
    return min(1.0, torch.cuda.device_count() / actors)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="raykd checkpoint (default: quickstart model, random weights)")
    p.add_argument("--recipe", default=str(REPO / "recipes/quickstart.yaml"))
    p.add_argument("--mode", default="zeroshot,linear_probe")
    p.add_argument("--shots", default="5")
    # 20 seeds (84 items): enough work that each actor's start-up (~6 s of CPU) does not dominate
    p.add_argument("--seeds", default=",".join(map(str, range(20))))
    p.add_argument("--no-tuning", action="store_true")
    p.add_argument("--search-lrs", default=None, help="learning-rate grid of the search (default: the toolkit's 6)")
    p.add_argument("--actor-per", choices=("dataset", "item"), default="dataset")
    p.add_argument("--max-actors", default="auto", help="'auto' (as many as fit) or N; 0 = a fresh actor per unit")
    p.add_argument("--cpus-per-actor", type=float, default=1.0)
    p.add_argument("--gpus-per-actor", default="auto",
                   help="'auto': with CUDA the GPUs shared among the actors (as the serial run has them), else 0")
    p.add_argument("--train-size", type=int, default=512, help="training images per built-in copy")
    p.add_argument("--serial-threads", type=int, default=None,
                   help="torch threads of the serial run (default: torch's own, one per core)")
    p.add_argument("--repeats", type=int, default=1,
                   help="alternate serial and fan-out runs this many times; the best of each is compared")
    p.add_argument("--serial-child", nargs=2, default=None, help=argparse.SUPPRESS)
    p.add_argument("--niceness", type=int, default=0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.serial_child:
        serial_child(*args.serial_child, args.checkpoint, args.serial_threads, args.niceness)
        return 0
    import ray
    import torch

    from raykd.eval.engine import cluster_capacity, group_items

    with tempfile.TemporaryDirectory(prefix="raykd-eval-bench-") as tmp:
        tmp = Path(tmp)
        checkpoint = (Path(args.checkpoint).resolve() if args.checkpoint
                      else save_random_checkpoint(Path(args.recipe), tmp / "ckpt"))
        items = make_items(tmp / "data", args, tmp / "cache")
        cores = os.cpu_count()
        print(f"{len(items)} work items: 4 data sets x {args.mode} (shots {args.shots}, seeds {args.seeds}, "
              f"search {'off' if args.no_tuning else 'on'}); {cores} cores, "
              f"{'GPU ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}", flush=True)
        start = time.perf_counter()
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
        niceness = ray.get(ray.remote(num_cpus=0)(lambda: os.nice(0)).remote())  # Ray's RAY_WORKER_NICENESS
        print(f"ray.init (not counted): {time.perf_counter() - start:.1f} s; Ray workers run at nice {niceness}, "
              f"so does the serial process", flush=True)
        units = len(group_items(items, args.actor_per))
        args.gpus_per_actor = gpus_per_actor(args, units)
        max_actors = (cluster_capacity(args.cpus_per_actor, args.gpus_per_actor) if args.max_actors == "auto"
                      else int(args.max_actors))
        serial_times, parallel_times = [], []
        for _ in range(args.repeats):
            seconds, serial_out = serial(tmp, checkpoint, items, args.serial_threads, niceness)
            serial_times.append(seconds)
            print(f"serial, one fresh process (torch threads {serial_out['threads']}): {seconds:8.1f} s "
                  f"(CPU: process {serial_out['cpu']:.1f} s, items {serial_out['item_cpu']:.1f} s)", flush=True)
            seconds, parallel_results = parallel(checkpoint, items, args, max_actors)
            parallel_times.append(seconds)
            print(f"Ray, {min(max_actors or units, units)} actors for {units} {args.actor_per} units "
                  f"({args.cpus_per_actor:g} CPU, {args.gpus_per_actor:g} GPU each): {seconds:8.1f} s "
                  f"(CPU: items {sum(r.cpu_seconds for r in parallel_results):.1f} s)", flush=True)
        ray.shutdown()

    failures = [f"{r.dataset} {r.setting}: {r.error}" for r in parallel_results if not r.ok]
    failures += [f"serial item {i}: {error}" for i, (_, error) in enumerate(serial_out["results"]) if error]
    for failure in failures:
        print(f"FAILED {failure}")
    diff = max((abs(a.value - value) for a, (value, error) in zip(parallel_results, serial_out["results"])
                if a.ok and not error), default=float("nan"))
    best = "best of each, " if args.repeats > 1 else ""
    print(f"speed-up ({best}serial / fan-out): {min(serial_times) / min(parallel_times):.2f}x (cores: {cores})")
    print(f"same metrics in both runs: max |difference| {diff:.4f} over {len(items)} items")
    print(f"ratio eval_fanout_per_core {min(serial_times) / min(parallel_times) / cores:.3f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
