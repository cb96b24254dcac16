"""Build and run Ray Train's `TorchTrainer` for a validated config.

The driver resolves the training shards, sizes a local Ray so a small machine never deadlocks,
builds the Ray Data pipeline (decode, augment and tokenise run in Ray Data, not in the workers),
and hands the loop in `raykd.train.loop` to the trainer.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import pyarrow.fs
import ray
import ray.data
import ray.train
from ray.train.torch import TorchTrainer

from raykd.config.loading import config_to_dict, save_config
from raykd.config.schema import Config
from raykd.data.node_paths import check_readable_on_nodes, local_data_paths
from raykd.data.pipeline import build_from_config
from raykd.data.run_state import DataRunState
from raykd.data.sampling import TrainPlan, plan_from_config
from raykd.losses.registry import loss_class, loss_hparams
from raykd.models.towers import describe_tower
from raykd.train import faults
from raykd.train.feature_cache_build import prepare_feature_caches
from raykd.train.ray_context import train_loop_per_worker
from raykd.train.run_logger import RunLogger
from raykd.train.trackers import train_callbacks


def resolve_run_dir(cfg: Config, run_dir: str | Path | None = None) -> Path:
    """The run directory: `run_dir` (--run-dir), else `run.run_dir`, else, under `run.resume: auto`, the newest
    `runs/<run.name>-<time>/` holding a run, else a new `runs/<run.name>-<time>/`.

    Raises ValueError when, without `run.resume: auto`, the directory or the run's checkpoint storage already
    holds a run: it is continued only when asked, never silently."""
    explicit = run_dir or cfg.run.run_dir
    if explicit:
        path = Path(explicit).resolve()
    else:
        previous = latest_run_dir(cfg.run.name) if cfg.run.resume == "auto" else None
        path = (previous or Path(f"runs/{cfg.run.name}-{time.strftime('%Y%m%d-%H%M%S')}")).resolve()
    if cfg.run.resume != "auto":
        if holds_run(path):
            raise ValueError(f"{path} already holds a run: pass --resume (run.resume: auto) to continue it from its "
                             "last checkpoint, or choose another --run-dir")
        if cfg.run.storage_path and _storage_has_run(cfg.run.storage_path, cfg.run.name):
            raise ValueError(f"run.storage_path {cfg.run.storage_path} already holds checkpoints of a run named "
                             f"{cfg.run.name!r}: pass --resume (run.resume: auto) to continue it, or change run.name")
    elif holds_run(path):
        print(f"[raykd] resuming the run in {path} from its last checkpoint", flush=True)
    return path


def latest_run_dir(name: str) -> Path | None:
    """The newest `runs/<name>-<time>/` that holds a run (not one of a longer name), or None."""
    stamped = re.compile(rf"{re.escape(name)}-\d{{8}}-\d{{6}}")
    runs = sorted(p.parent for p in Path("runs").glob("*/config.yaml")
                  if stamped.fullmatch(p.parent.name) and holds_run(p.parent))
    return runs[-1] if runs else None


def holds_run(run_dir: Path) -> bool:
    """Whether `run_dir` holds a run that got going: its config and anything it reported or saved (a run that
    failed before its first report can be rerun in place)."""
    progress = ("summary.json", "results.jsonl", "tensorboard", "checkpoints")
    return (run_dir / "config.yaml").is_file() and any((run_dir / name).exists() for name in progress)


def _storage_has_run(storage_path: str, name: str) -> bool:
    """Whether Ray Train's storage already has a directory for run `name` (local path or any URI pyarrow reads)."""
    fs, root = pyarrow.fs.FileSystem.from_uri(storage_path if "://" in storage_path
                                               else str(Path(storage_path).resolve()))
    return fs.get_file_info(f"{root.rstrip('/')}/{name}").type != pyarrow.fs.FileType.NotFound


def local_num_cpus(cfg: Config) -> int:
    """Logical CPUs for a local Ray: the workers' share plus room for Ray Data's tasks.

    On 2 cores, 2 workers of 1 CPU would leave no CPU for Ray Data and hang; Ray's CPU counts
    are logical, so we declare more than the machine has and let the OS share the cores.
    """
    workers = math.ceil(cfg.train.num_workers * cfg.train.cpus_per_worker)
    return cfg.run.ray_num_cpus or max(os.cpu_count() or 1, workers + 2)


def init_ray(cfg: Config) -> None:
    if ray.is_initialized():
        return
    if cfg.run.ray_address:
        ray.init(address=cfg.run.ray_address)
    elif os.environ.get("RAY_ADDRESS"):  # inside `ray job submit`
        ray.init()
    else:
        # with the dashboard, whose state API Ray Train's placement-group cleaner polls (without
        # it, the cleaner logs a warning every few seconds); it costs about 1 s of start-up
        ray.init(num_cpus=local_num_cpus(cfg), include_dashboard=True)


def fewest_workers(cfg: Config) -> tuple[str, int]:
    """(the option that sets it, the fewest workers the run trains with): `train.min_workers` of an elastic run."""
    return ("train.min_workers" if cfg.train.elastic else "train.num_workers"), cfg.train.worker_counts()[0]


def check_cpus_left_for_data(cfg: Config) -> None:
    """Fail, instead of hanging, when a fixed-size Ray has no CPU left for Ray Data beside the workers.

    Only for a local Ray (no `run.ray_address`, not under `ray job submit`): a cluster may autoscale.
    """
    if cfg.run.ray_address or os.environ.get("RAY_ADDRESS"):
        return
    total = ray.cluster_resources().get("CPU", 0)
    option, fewest = fewest_workers(cfg)
    workers = fewest * cfg.train.cpus_per_worker
    if total < workers + 1:
        raise ValueError(
            f"the running Ray has {total:g} CPUs, but {option} x train.cpus_per_worker = {workers:g} "
            "leaves none for Ray Data, and the run would hang: start Ray with more logical CPUs "
            f"(run.ray_num_cpus, or ray.init(num_cpus={math.ceil(workers) + 2})) or use fewer workers")


def check_gpus_for_workers(cfg: Config) -> None:
    """Fail, instead of waiting forever, when the cluster has fewer GPUs than `train.use_gpu` asks for
    (one per worker): Ray Train V2 retries a worker group that cannot be placed without end."""
    if not cfg.train.use_gpu:
        return
    gpus = ray.cluster_resources().get("GPU", 0)
    option, fewest = fewest_workers(cfg)
    if gpus < fewest:
        raise ValueError(
            f"train.use_gpu asks one GPU for each of {option} = {fewest} workers, but the "
            f"Ray cluster has {gpus:g} GPU(s): set {option} to at most {int(gpus)}"
            + (" (and raise train.batch_size to keep the global batch)" if gpus >= 1 else
               ", or train.use_gpu=false to train on CPUs") + "; start the GPU nodes first on an autoscaling cluster")


def check_episode_covers_prototypes(cfg: Config, samples_per_epoch: int) -> None:
    """A loss that clusters each episode (ProtoCLIP) needs at least `n_prototypes` samples in one."""
    if not loss_class(cfg.loss.name).updates_prototypes:
        return
    k = cfg.loss.hparams.get("n_prototypes", loss_hparams(cfg.loss.name)["n_prototypes"])
    if samples_per_epoch < k:
        raise ValueError(
            f"loss.hparams.n_prototypes = {k} exceeds the {samples_per_epoch} samples trained per epoch "
            f"(data.episode_size / data.samples_per_epoch / the data set): {cfg.loss.name} could never "
            "cluster; lower n_prototypes or use larger episodes")


def train_plan(cfg: Config) -> tuple[TrainPlan, int]:
    """(plan, samples per epoch) for the configured training data; fails before Ray starts.

    The plan (`raykd.data.sampling.TrainPlan`) holds every source's shards and sizes and draws each
    epoch's samples: every sample once, a resampled virtual epoch (`data.samples_per_epoch`) or an
    episode (`data.episode_size`); samples per epoch is the sum of sizes or that number.
    Raises FileNotFoundError / ValueError naming the config key (missing shards, no sizes, ...).
    """
    plan = plan_from_config(cfg.data, seed=cfg.run.seed)
    return plan, plan.epoch_size


def build_dataset(cfg: Config, plan: TrainPlan, data_state: DataRunState):
    """The Ray Data training stream for `plan` (decode, augment and tokenise happen in Ray Data)."""
    # Our one-line progress report replaces Ray Data's per-operator bars (which flood job logs).
    ray.data.DataContext.get_current().enable_progress_bars = False
    # The image spec and the (picklable) tokenizer that Ray Data needs, without building the towers.
    image_spec = describe_tower(cfg.model.image, "image").image_spec
    tokenizer = describe_tower(cfg.model.text, "text").tokenizer
    return build_from_config(cfg.data, image_spec, tokenizer, seed=cfg.run.seed, state=data_state, plan=plan)


def ordered_ingest() -> ray.train.DataConfig:
    """Ray Train's ingest with Ray Data's deterministic execution (`preserve_order`), the driver's other options kept.

    Ray Data then hands the read tasks' batches to the equal split in unit order (not as tasks finish), and
    the split (locality off under `preserve_order`) gives each batch to the worker that has received the
    fewest rows so far: each worker's rows in an epoch, and with the seeded local shuffle its batches, are
    a function of (seed, epoch, rank, world size). That makes skipping a worker's first k batches on a
    mid-epoch resume exact. The cost: a slow read task holds back the ones after it.
    """
    options = ray.train.DataConfig.default_ingest_options()
    options.preserve_order = True
    return ray.train.DataConfig(execution_options=options)


def build_trainer(cfg: Config, run_dir: Path, resume_from: str = "", dataset=None, n_samples: int = 0,
                  callbacks: list | None = None):
    """A TorchTrainer for `cfg`; `dataset`/`n_samples` replace the configured data (benchmarks, tests);
    `callbacks` are Ray Train callbacks run after the run logger (e.g. a sweep's report to Tune)."""
    plan, n_from_shards = (None, 0) if dataset is not None else train_plan(cfg)
    n_samples = n_samples or n_from_shards
    global_batch = cfg.train.global_batch
    steps_per_epoch = n_samples // global_batch
    if steps_per_epoch < 1:
        raise ValueError(f"train.batch_size x train.num_workers = {global_batch} exceeds the {n_samples} training samples")
    check_episode_covers_prototypes(cfg, steps_per_epoch * global_batch)
    init_ray(cfg)
    check_cpus_left_for_data(cfg)
    check_gpus_for_workers(cfg)
    if plan is not None:
        check_readable_on_nodes(local_data_paths(plan))  # a driver-only path would vanish as skipped shards
    data_state = DataRunState.for_run(cfg.run.name, run_dir)
    data_state.reset()
    if plan is not None:
        data_state.add_skips(plan.skipped)  # shards left out before training (empty files) count as skipped
        prepare_feature_caches(cfg, plan)  # before the workers get the config: it names the cache folders
    if dataset is None:
        dataset = build_dataset(cfg, plan, data_state)
    storage = cfg.run.storage_path or str(run_dir / "checkpoints")
    loggers = [RunLogger(str(run_dir), tensorboard="tensorboard" in cfg.run.loggers),
               *train_callbacks(cfg.run.loggers, config_to_dict(cfg), run_dir, cfg.run.name)]
    run_config = ray.train.RunConfig(
        name=cfg.run.name, storage_path=storage, callbacks=[*loggers, *(callbacks or [])],
        failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
        checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.train.num_checkpoints_to_keep),
        logging_config=ray.train.LoggingConfig(log_level=cfg.run.train_log_level),
        # Ray Train's print patch both tees a worker's print to stdout and logs it: every line twice
        worker_runtime_env={"env_vars": {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0", **faults.worker_env()}})
    t = cfg.train  # elastic: a (min, max) range; Ray Train restarts the workers from the last checkpoint to resize
    scaling = ray.train.ScalingConfig(num_workers=(t.min_workers, t.num_workers) if t.elastic else t.num_workers,
                                      use_gpu=t.use_gpu, resources_per_worker={"CPU": t.cpus_per_worker},
                                      elastic_resize_monitor_interval_s=t.elastic_resize_interval_s)
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config_to_dict(cfg), "steps_per_epoch": steps_per_epoch,
                           "data_state": data_state},
        scaling_config=scaling, run_config=run_config, datasets={"train": dataset}, dataset_config=ordered_ingest(),
        resume_from_checkpoint=ray.train.Checkpoint(resume_from) if resume_from else None,
    )


def train(cfg: Config, run_dir: str | Path | None = None, resume_from: str = "") -> dict:
    """Run training; returns the summary also written to `<run_dir>/summary.json`."""
    run_dir = resolve_run_dir(cfg, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.run.run_dir = str(run_dir)
    save_config(cfg, run_dir / "config.yaml")
    start = time.time()
    try:
        result = build_trainer(cfg, run_dir, resume_from).fit()
    finally:  # the data state is a detached actor: don't leave one behind per run
        DataRunState.for_run(cfg.run.name, run_dir).close()
    summary = {
        "run_dir": str(run_dir),
        "wall_s": round(time.time() - start, 1),
        "metrics": result.metrics,
        "checkpoint": result.checkpoint.path if result.checkpoint else None,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(summary_text(summary), flush=True)
    return summary


def summary_text(summary: dict) -> str:
    metrics = summary["metrics"] or {}
    lines = [f"[raykd] finished in {summary['wall_s']} s: {summary['run_dir']}"]
    lines += [f"  {k}: {v:.4f}" if isinstance(v, float) else f"  {k}: {v}" for k, v in sorted(metrics.items())]
    lines.append(f"  checkpoint: {summary['checkpoint']}")
    return "\n".join(lines)
