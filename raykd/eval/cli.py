"""`raykd eval`: evaluate a checkpoint on every task and data set found, and write the results.

    raykd eval --checkpoint PATH | --run-dir DIR  [--tasks all|image|text|zeroshot,linear,...]
               [--data-root DIR] [--datasets a,b] [--out DIR] [--clip-benchmark [DIR]] [--model-name NAME]
               [--option TASK.KEY=VALUE ...] [--batch-size N] [--device auto|cpu|cuda[:i]] [--threads N] [--ray]

Data: ``--data-root`` (layout: :mod:`raykd.eval.datasets`); without it, the built-in cache (the checkpoint's
``data.builtin_root`` or ``$RAYKD_CACHE/builtin``) with the evaluation views of ``shapes`` and ``digits``
(:mod:`raykd.eval.builtin`), so every image task runs out of the box. Tasks with no data are reported as
skipped, with the reason.

Writes ``<out>/results.json`` (``{"checkpoint", "step", "epoch", "model", "data_root", "device", "tasks",
"datasets", "wall_s", "metrics", "skipped", "errors"}``); ``<out>`` defaults to ``<run-dir>/eval/step-<step>``
or ``<checkpoint>/eval``. With ``--run-dir`` it also appends ``{"step", "epoch", "metrics"}`` to the run's
``results.jsonl``, as training does. ``--clip-benchmark`` writes one CLIP_benchmark-style JSON per
(data set, task). Prints progress (stderr) and a table (stdout). Exit status 0, or 1 when a task failed;
user errors raise ValueError / FileNotFoundError (``raykd.cli`` prints them and exits 2).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from raykd.models.checkpoint import WEIGHTS, checkpoint_info

IMAGE_TASKS = ("zeroshot", "linear_probe", "knn", "clustering", "retrieval", "feature_analysis")
TEXT_TASKS = ("sts", "passage_retrieval", "wiki_sections", "word_similarity")
ALIASES = {"linear": "linear_probe", "zero-shot": "zeroshot", "k-nn": "knn", "msmarco": "passage_retrieval",
           "wiki": "wiki_sections", "word": "word_similarity", "features": "feature_analysis"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="raykd eval", description="Evaluate a raykd checkpoint.",
                                epilog="Text-only tasks run when their data is under --data-root.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint directory, its state.pt, or a run directory (last checkpoint)")
    src.add_argument("--run-dir", help="run directory: its last checkpoint; results also go to its results.jsonl")
    p.add_argument("--tasks", default="all", help="comma-separated task names, or all | image | text (default all)")
    p.add_argument("--data-root", default="", help="evaluation data root (default: the built-in cache)")
    p.add_argument("--datasets", default="", help="comma-separated data set names (default: all found)")
    p.add_argument("--out", default="", help="output folder (default <run-dir>/eval/step-<step> or <checkpoint>/eval)")
    p.add_argument("--clip-benchmark", nargs="?", const="", default=None, metavar="DIR",
                   help="also write CLIP_benchmark JSON per (data set, task) to DIR (default <out>/clip_benchmark)")
    p.add_argument("--model-name", default="",
                   help="model name in CLIP_benchmark files (default <run.name>-step<step>)")
    p.add_argument("--option", action="append", default=[], metavar="TASK.KEY=VALUE",
                   help="task keyword argument, YAML value, e.g. linear_probe.solver=torch (repeatable)")
    p.add_argument("--weights", choices=WEIGHTS, default="auto",
                   help="auto: the EMA weights when the checkpoint has them (what evaluation during training "
                        "saw), else the trained ones | ema | trained")
    p.add_argument("--batch-size", type=int, default=256, help="feature-extraction batch size")
    p.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda | cuda:1")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch and BLAS (scikit-learn); 0 keeps the libraries' defaults")
    p.add_argument("--ray", action="store_true",
                   help="one Ray actor per data set (a GPU each when the cluster has them)")
    return p


# ---------------------------------------------------------------------------------------------- inputs
def resolve_tasks(spec: str) -> list[str]:
    """``all`` | ``image`` | ``text`` | comma-separated names (aliases such as ``linear``) -> task names.
    Raises ValueError for an unknown name (with close matches)."""
    from raykd.eval.tasks import get_task, list_tasks

    groups = {"all": list_tasks(), "image": list(IMAGE_TASKS), "text": list(TEXT_TASKS)}
    names: list[str] = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        for name in groups.get(item, [ALIASES.get(item, item)]):
            get_task(name)
            if name not in names:
                names.append(name)
    if not names:
        raise ValueError("--tasks names no task")
    return names


def parse_options(items: list[str], tasks: list[str]) -> dict[str, dict[str, Any]]:
    """``["linear_probe.solver=torch", ...]`` -> ``{"linear_probe": {"solver": "torch"}}`` (values parsed as YAML).
    Raises ValueError for a malformed item, a task not selected, or an option the task does not take."""
    from raykd.config.loading import parse_override
    from raykd.eval.runner import validate_options

    options: dict[str, dict[str, Any]] = {}
    for item in items:
        path, value = parse_override(item)
        if len(path) != 2:
            raise ValueError(f"--option expects TASK.KEY=VALUE, got {item!r}")
        task, key = ALIASES.get(path[0], path[0]), path[1]
        if task not in tasks:
            raise ValueError(f"--option {item!r}: task {task!r} is not among --tasks {tasks}")
        options.setdefault(task, {})[key] = value
    for task, opts in options.items():
        validate_options(task, opts)
    return options


def pick_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {spec}: CUDA is not available on this machine")
    return device


def data_root(args, cfg, datasets: list[str] | None) -> Path:
    """``--data-root``, or the built-in cache; built-in views are written where they are wanted."""
    from raykd.data.builtin import list_builtin
    from raykd.eval.builtin import prepare_data_root

    names = [n for n in datasets if n in list_builtin()] if datasets else None  # None: every built-in set
    return prepare_data_root(args.data_root or None, builtin_root=cfg.data.builtin_root or None, names=names)


@contextlib.contextmanager
def cpu_threads(n: int):
    """At most ``n`` torch intra-op and BLAS/OpenMP threads inside the block (``n`` = 0: unchanged). On a
    busy machine fewer threads avoid spin-wait stalls (scikit-learn fits were seen 25x slower with 2)."""
    if n <= 0:
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------- running
def _progress(message: str) -> None:
    print(f"[raykd eval] {message}", file=sys.stderr, flush=True)


def run_local(model, groups: dict, root: Path, options: dict, batch_size: int) -> dict[str, Any]:
    """Each (data kind, data set) group in turn, one feature cache for all; a progress line per group."""
    from raykd.eval.features import FeatureCache
    from raykd.eval.runner import ERRORS, evaluate

    results: dict[str, Any] = {}
    cache = FeatureCache()
    for i, ((kind, name), tasks) in enumerate(groups.items(), start=1):
        start = time.perf_counter()
        _progress(f"({i}/{len(groups)}) {name} [{kind}]: {', '.join(tasks)} ...")
        part = evaluate(model, tasks, root, [name], batch_size=batch_size, task_options=options, cache=cache)
        results.setdefault(ERRORS, {}).update(part.pop(ERRORS, {}))
        results.update(part)
        failed = [k for k in results[ERRORS] if k.endswith(f"/{name}")]
        _progress(f"({i}/{len(groups)}) {name}: done in {time.perf_counter() - start:.1f} s"
                  + (f", failed: {', '.join(failed)}" if failed else ""))
    return results


def run_ray(checkpoint_dir: Path, groups: dict, root: Path, options: dict, batch_size: int,
            weights: str = "auto") -> dict[str, Any]:
    """One Ray actor per data set (all its tasks), the model loaded inside each actor."""
    import ray

    from raykd.eval.runner import WorkItem, evaluate_parallel
    from raykd.models.checkpoint import checkpoint_model

    if not ray.is_initialized():
        ray.init() if os.environ.get("RAY_ADDRESS") else ray.init(include_dashboard=False)
    by_name: dict[str, list[str]] = {}
    for (_, name), tasks in groups.items():
        by_name.setdefault(name, []).extend(t for t in tasks if t not in by_name.get(name, []))
    items = [WorkItem(name, tasks, str(root), batch_size, {t: options.get(t, {}) for t in tasks})
             for name, tasks in by_name.items()]
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    _progress(f"{len(items)} data sets on Ray actors ({'1 GPU' if gpus else 'CPU'} each): {', '.join(by_name)}")
    start = time.perf_counter()
    results = evaluate_parallel(functools.partial(checkpoint_model, str(checkpoint_dir), weights), items,
                                num_gpus_per_actor=gpus)
    _progress(f"Ray evaluation done in {time.perf_counter() - start:.1f} s")
    return results


# ---------------------------------------------------------------------------------------------- output
def _fmt(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def format_table(metrics: dict[str, float], skipped: dict[str, str], errors: dict[str, str]) -> str:
    """Metrics grouped by (task, data set), one metric a line; then the skipped tasks and the failures."""
    from raykd.eval.metrics import split_key

    rows = [split_key(k) + (_fmt(v),) for k, v in sorted(metrics.items())]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("task", "dataset", "metric"))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(("task", "dataset", "metric", "value"), widths + [0])).rstrip()]
    previous = None
    for task, dataset, metric, value in rows:
        head = (task, dataset) if (task, dataset) != previous else ("", "")
        lines.append("  ".join([head[0].ljust(widths[0]), head[1].ljust(widths[1]), metric.ljust(widths[2]), value]))
        previous = (task, dataset)
    lines += [f"skipped {task}: {reason}" for task, reason in sorted(skipped.items())]
    lines += [f"FAILED {key}: {message}" for key, message in sorted(errors.items())]
    return "\n".join(lines)


def write_outputs(record: dict, out: Path, run_dir: Path | None, clip_dir: Path | None, model_name: str) -> None:
    from raykd.eval.runner import write_clip_benchmark_json

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    _progress(f"wrote {out / 'results.json'}")
    if run_dir is not None and record["metrics"]:
        with open(run_dir / "results.jsonl", "a") as f:
            f.write(json.dumps({"step": record["step"], "epoch": record["epoch"], "metrics": record["metrics"]}) + "\n")
        _progress(f"appended to {run_dir / 'results.jsonl'}")
    if clip_dir is not None:
        paths = write_clip_benchmark_json(record["metrics"], clip_dir, model_name)
        _progress(f"wrote {len(paths)} CLIP_benchmark files to {clip_dir}")


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str]) -> int:
    from raykd.eval.runner import ERRORS, plan, skipped_tasks
    from raykd.models.checkpoint import checkpoint_model, find_checkpoint

    args = build_parser().parse_args(argv)
    tasks = resolve_tasks(args.tasks)
    options = parse_options(args.option, tasks)
    datasets = [s.strip() for s in args.datasets.split(",") if s.strip()] or None
    device = pick_device(args.device)
    checkpoint_dir = find_checkpoint(args.run_dir or args.checkpoint)
    step, epoch, cfg = checkpoint_info(checkpoint_dir)
    start = time.perf_counter()
    root = data_root(args, cfg, datasets)
    groups, _ = plan(tasks, root, datasets)
    unclaimed = [n for n in datasets or [] if not any(name == n for _, name in groups)]
    if unclaimed:
        raise ValueError(f"--datasets: no data set {unclaimed} under {root} for tasks {tasks}")
    skipped = skipped_tasks(tasks, groups, root, datasets)
    _progress(f"{checkpoint_dir} (step {step}, epoch {epoch}) on {device}; data root {root}")
    if args.ray:
        results = run_ray(checkpoint_dir, groups, root, options, args.batch_size, args.weights)
    else:
        with cpu_threads(args.threads):
            model = checkpoint_model(str(checkpoint_dir), args.weights).to(device)
            results = run_local(model, groups, root, options, args.batch_size)
    errors = results.pop(ERRORS, {})
    model_name = args.model_name or f"{cfg.run.name}-step{step}"
    record = {"checkpoint": str(checkpoint_dir), "weights": args.weights, "step": step, "epoch": epoch, "model": model_name,
              "data_root": str(root), "device": str(device) if not args.ray else "ray", "tasks": tasks,
              "datasets": datasets, "wall_s": round(time.perf_counter() - start, 1),
              "metrics": dict(sorted(results.items())), "skipped": skipped, "errors": errors}
    run_dir = Path(args.run_dir) if args.run_dir else None
    out = Path(args.out) if args.out else (run_dir / "eval" / f"step-{step}" if run_dir else checkpoint_dir / "eval")
    clip_dir = None if args.clip_benchmark is None else Path(args.clip_benchmark or out / "clip_benchmark")
    write_outputs(record, out, run_dir, clip_dir, model_name)
    print(format_table(record["metrics"], skipped, errors))
    return 1 if errors else 0
