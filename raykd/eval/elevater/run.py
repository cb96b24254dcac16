"""What ``raykd eval elevater`` runs (:mod:`raykd.cli.elevater` parses the arguments): a checkpoint on ELEVATER data
sets, on the evaluation engine's Ray actor pool or serially (:mod:`raykd.eval.engine`).

Work items are data set x mode x shots x seed (zero-shot: one per data set). An actor runs a data set's items
(``--actor-per dataset``, the default) or one item (``--actor-per item``) at a time; as many actors as the
cluster holds are kept busy, each taking the next one when done (``--max-actors 0``: a fresh actor each).
Built-in ``shapes`` / ``digits`` are written in ELEVATER layout under ``--data-root`` when asked for and
missing. User errors raise ValueError or FileNotFoundError (``raykd eval`` prints them and exits 2); a data
set that is incomplete or fails is reported in the table and the others keep their results (exit status 1).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time
from collections import Counter
from pathlib import Path

from raykd.eval.elevater import catalogue
from raykd.eval.elevater._registry import get_dataset
from raykd.eval.elevater.builtin import ensure_written
from raykd.eval.elevater.journal import Journal, item_key
from raykd.eval.elevater.knowledge import Knowledge
from raykd.eval.elevater.modes import MODES, EvalOptions
from raykd.eval.elevater.reader import check_files
from raykd.eval.elevater.search import SearchSpace, parse_grid
from raykd.eval.elevater.work import FULL, ItemResult, WorkItem
from raykd.eval.engine import cluster_capacity, group_items, load_model, run_pool, run_serial
from raykd.eval.results import format_elevater_table, summarise, write_elevater_outputs
from raykd.data.builtin import default_root
from raykd.models.checkpoint import find_checkpoint
from raykd.models.sources import ModelSource, source_from_args

FEW_SHOT_SEEDS = (0, 1, 2)


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def parse_shots(values: list[str]) -> list[int]:
    """``["5,20", "full"]`` -> ``[5, 20, -1]``. Raises ValueError for anything else."""
    out = []
    for v in _split(values):
        if v.lower() in ("full", "-1"):
            out.append(FULL)
        elif v.isdigit() and int(v) > 0:
            out.append(int(v))
        else:
            raise ValueError(f"--shots: {v!r} is not a positive number of images per class or 'full'")
    return out


def _ints(values: list[str] | None, flag: str) -> list[int] | None:
    if not values:
        return None
    try:
        return [int(v) for v in _split(values)]
    except ValueError:
        raise ValueError(f"{flag}: expected integers, got {values}") from None


def parse_gpus(value: str | float) -> float | None:
    """`--gpus-per-actor`: None for 'auto' (decided by the cluster), else a number >= 0."""
    if value == "auto":
        return None
    try:
        gpus = float(value)
    except ValueError:
        raise ValueError(f"--gpus-per-actor: expected 'auto' or a number >= 0, got {value!r}") from None
    if gpus < 0:
        raise ValueError(f"--gpus-per-actor must be >= 0, got {value}")
    return gpus


def actor_gpus(value: str | float, cluster_gpus: float) -> float:
    """GPUs per actor: the number given, or under 'auto' one GPU each when the cluster has any, else none."""
    gpus = parse_gpus(value)
    return (1.0 if cluster_gpus >= 1 else 0.0) if gpus is None else gpus


def make_options(args: argparse.Namespace) -> EvalOptions:
    """The evaluation options of the parsed arguments. Raises ValueError for out-of-range values."""
    for flag, value, least in (("--epochs", args.epochs, 1), ("--batch-size", args.batch_size, 2),
                               ("--feature-batch-size", args.feature_batch_size, 1),
                               ("--final-extra-epochs", args.final_extra_epochs, 0)):
        if value < least:
            raise ValueError(f"{flag} must be >= {least}, got {value}")
    if args.cpus_per_actor <= 0:
        raise ValueError("--cpus-per-actor must be > 0")
    if args.retries < 0:
        raise ValueError(f"--retries must be >= 0, got {args.retries}")
    parse_gpus(args.gpus_per_actor)
    if args.max_actors != "auto" and not (args.max_actors.isdigit()):
        raise ValueError(f"--max-actors: expected 'auto' or a number >= 0, got {args.max_actors!r}")
    space = SearchSpace(parse_grid(args.search_lrs)) if args.search_lrs else SearchSpace()
    return EvalOptions(tune=not args.no_tuning, lr=args.lr, weight_decay=args.wd, epochs=args.epochs,
                       final_extra_epochs=args.final_extra_epochs, batch_size=args.batch_size,
                       feature_batch_size=args.feature_batch_size, space=space,
                       num_threads=None if args.serial else max(1, int(args.cpus_per_actor)),
                       protocol=args.protocol, text_head=args.text_head,
                       knowledge=Knowledge(args.knowledge, args.gpt3_knowledge))


def _seeds(mode: str, shots: int, seeds: list[int] | None) -> list[int]:
    """Zero-shot: [0]; else the given seeds, or 0, 1, 2 for few-shot and 0 for full-shot (as ELEVATER)."""
    if mode == "zeroshot":
        return [0]
    if seeds is not None:
        return seeds
    return [0] if shots == FULL else list(FEW_SHOT_SEEDS)


def make_items(args: argparse.Namespace, specs: list, options: EvalOptions) -> list[WorkItem]:
    """Data set x mode x shots x seed work items of the parsed arguments. Raises ValueError for a bad mode."""
    modes = _split(args.mode)
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"--mode: unknown mode {mode!r}; choose from {sorted(MODES)}")
    shots, seeds = parse_shots(args.shots), _ints(args.seeds, "--seeds")
    return [WorkItem(spec, mode, k, seed, str(args.data_root), options)
            for spec in specs for mode in dict.fromkeys(modes)
            for k in ([0] if mode == "zeroshot" else dict.fromkeys(shots)) for seed in _seeds(mode, k, seeds)]


def _progress(total: int, items: list[WorkItem]):
    per_dataset = Counter(i.spec.name for i in items)
    done: Counter = Counter()

    def report(result: ItemResult) -> None:
        done[result.dataset] += 1
        n = sum(done.values())
        label = f"{result.dataset} {result.setting}" + ("" if result.mode == "zeroshot" else f" seed {result.seed}")
        status = (f"{result.metric} {result.value:.4f}" if result.ok else f"FAILED {result.error}")
        line = f"[{n}/{total}] {label}: {status} ({result.seconds:.1f}s)"
        if done[result.dataset] == per_dataset[result.dataset]:
            line += f" -- {result.dataset} done"
        print(line, flush=True)

    return report


def _run(args: argparse.Namespace, factory: ModelSource, items: list[WorkItem], report) -> list[ItemResult]:
    if args.serial:
        return run_serial(load_model(factory), items, report)
    import ray  # Ray loads only for the actor pool, not for --serial

    started = not ray.is_initialized()
    if started:
        ray.init(address=args.ray_address, include_dashboard=False, log_to_driver=False,
                 **({} if args.ray_address else {"num_cpus": os.cpu_count()}))
    try:
        units = len(group_items(items, args.actor_per))
        gpus = actor_gpus(args.gpus_per_actor, ray.cluster_resources().get("GPU", 0))
        max_actors = (cluster_capacity(args.cpus_per_actor, gpus) if args.max_actors == "auto"
                      else int(args.max_actors))
        print(f"running {len(items)} work items ({units} {args.actor_per} units) on "
              f"{min(max_actors or units, units)} Ray actors ({args.cpus_per_actor:g} CPU, "
              f"{gpus:g} GPU each)", flush=True)
        return run_pool(factory, items, group=args.actor_per, max_actors=max_actors,
                        num_cpus_per_actor=args.cpus_per_actor, num_gpus_per_actor=gpus, retries=args.retries,
                        on_result=report)
    finally:
        if started:
            ray.shutdown()


def elevater_source(args: argparse.Namespace, specs: list) -> ModelSource:
    """The model source of the arguments (a checkpoint resolved to an absolute path, for actors elsewhere); sets
    ``args.data_root`` to the built-in cache when it is unset and every data set is built-in. Prints the random-
    weights warning. Raises ValueError for a model without an image tower or a missing ``--data-root``."""
    source = source_from_args(args)
    if source.checkpoint:
        find_checkpoint(source.checkpoint)  # FileNotFoundError before anything starts
        source = dataclasses.replace(source, checkpoint=str(Path(source.checkpoint).resolve()))
    if "image" not in source.modalities:
        raise ValueError(f"ELEVATER classifies images: {source.label} has no image tower (text only)")
    if args.data_root is None:
        others = [s.name for s in specs if not s.builtin]
        if others:
            raise ValueError(f"--data-root is required for {others} (only the built-in shapes and digits have a "
                             "default)")
        args.data_root = default_root().parent / "elevater"
        args.data_root.mkdir(parents=True, exist_ok=True)
    if source.warning():
        print(source.warning(), flush=True)
    return source


def run_elevater(args: argparse.Namespace) -> int:
    """Run the parsed ``raykd eval elevater`` arguments: items, progress lines, the table and the output files.
    Returns the exit status: 0, or 1 when an item failed."""
    names = _split(args.datasets) or list(catalogue.ELEVATER_20)
    specs = list({s.name: s for s in (get_dataset(n) for n in names)}.values())
    source = elevater_source(args, specs)  # FileNotFoundError / ValueError before anything starts
    if not Path(args.data_root).is_dir():
        raise FileNotFoundError(f"--data-root: folder not found: {args.data_root}")
    args.data_root = Path(args.data_root).resolve()  # actors may run elsewhere (another working directory)
    items = make_items(args, specs, make_options(args))
    for spec in specs:
        if ensure_written(spec, args.data_root):
            print(f"wrote built-in {spec.builtin} in ELEVATER layout under {Path(args.data_root) / spec.root_folder}")
    if args.resume and not args.out:
        raise ValueError("--resume needs --out: the folder whose finished items to keep")
    out = Path(args.out) if args.out else Path("runs") / f"elevater-{time.strftime('%Y%m%d-%H%M%S')}"
    journal = Journal(out, {"checkpoint": source.label, "weights": args.weights,
                            "data_root": str(args.data_root), "protocol": args.protocol,
                            "text_head": args.text_head, "knowledge": args.knowledge,
                            "gpt3_knowledge": args.gpt3_knowledge}, resume=args.resume)
    order = {item_key(i.spec.name, i.setting, i.seed): n for n, i in enumerate(items)}
    items, results = journal.split(items)
    if results:
        print(f"--resume: kept {len(results)} finished item(s) from {out}; {len(items)} to run", flush=True)
    report = _progress(len(items), items)
    keep = report

    def report(result: ItemResult) -> None:
        journal.add(result)  # on disk as soon as it is in: a killed driver loses only the items in flight
        keep(result)

    runnable = []
    for item in items:  # an incomplete data set fails here, naming its missing files
        try:
            check_files(item.data_root, item.spec, ("test",) if item.mode == "zeroshot" else ("train", "test"))
            runnable.append(item)
        except FileNotFoundError as exc:
            results.append(item.failed(f"FileNotFoundError: {exc}"))
            report(results[-1])
    start = time.perf_counter()
    results += _run(args, source, runnable, report) if runnable else []
    results.sort(key=lambda r: order[item_key(r.dataset, r.setting, r.seed)])  # the items' order, resumed or not
    wall = time.perf_counter() - start
    model_name = args.model_name or (Path(source.checkpoint).name if source.checkpoint else source.label)
    paths = write_elevater_outputs(out, results, model_name, predictions=not args.no_predictions,
                                   extra={"checkpoint": source.checkpoint or None, "source": source.label,
                                          "random_weights": source.random_parts(), "data_root": str(args.data_root),
                                          "protocol": args.protocol,
                                          "wall_seconds": round(wall, 3), "serial": args.serial})
    print(format_elevater_table(summarise(results)))
    print(f"results: {paths['json']} and {paths['csv']}" + "".join(
        f"\nsubmission ({k.split('/', 1)[1]}): {v}" for k, v in paths.items() if k.startswith("submission/")))
    return 0 if all(r.ok for r in results) else 1
