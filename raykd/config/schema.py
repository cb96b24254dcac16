"""Typed configuration of a raykd run.

Each section of a recipe YAML maps onto one dataclass below. Field types are enforced by
`raykd.config.typed.from_mapping` (unknown keys, wrong types and values outside a `Literal`'s
choices fail with the offending dotted key). Value ranges are checked by each section's `check()`
(ValueError naming the option), which `Config.__post_init__` runs when a recipe is loaded and
`raykd check` runs again. Defaults describe a small CPU run.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Optional, Union

from raykd.config.typed import ConfigError, from_mapping


@dataclass
class HeadConfig:
    """Projection head on top of a tower (see `raykd.models.heads`)."""

    # style mlp: hidden Linear-norm-activation blocks before the output Linear (0: a single linear projection);
    # style dino: every Linear layer, as DINO's head / the original codebase counted (0: identity, 2: Linear-act-Linear)
    n_layers: int = 0
    style: Literal["mlp", "dino"] = "mlp"
    hidden_dim: int = 2048
    activation: Literal["gelu", "relu"] = "gelu"
    norm: Literal["none", "batchnorm", "layernorm"] = "none"
    # With n_layers == 0 and the tower's width equal to embed_dim, skip the linear map entirely.
    identity_if_possible: bool = False


@dataclass
class TowerConfig:
    """One tower of the dual encoder, built by `raykd.models.towers.build_tower`."""

    builder: str = "openclip"  # a name in the tower registry (openclip, torchvision, timm, huggingface, sbert)
    name: str = ""  # model name inside the builder (e.g. RN50, resnet18, a HF hub id or local dir)
    # pretrained tag (open_clip), weight enum (torchvision), 'default' or a tag (timm), or '' for random init
    pretrained: str = ""
    weights: str = ""  # local weights file loaded after building
    model_config: dict = field(default_factory=dict)  # inline architecture (tiny test models)
    # huggingface text towers; PromptBERT: [MASK] of a prompt template, denoised; logits: a classifier's logits
    pooler: Literal["cls", "cls_before_pooler", "mean", "PromptBERT", "logits"] = "mean"
    prompt_template: str = ""  # PromptBERT: '{sentence}' and '{mask}' placeholders; '' -> the paper's template
    max_seq_length: int = 77  # text towers with their own tokenizer (huggingface, sbert); sbert: 0 keeps the model's own
    image_size: int = 0  # image towers: input resolution; 0 keeps the model's own
    # torchvision image towers: pre_logits, the input of the classifier's last Linear (mobilenet_v3_large: 1280-d);
    # pooled, the input of its first Linear: the backbone's pooled output, as the original codebase (960-d)
    features: Literal["pre_logits", "pooled"] = "pre_logits"
    cache_dir: str = ""
    lock: bool = False  # freeze the whole backbone: no gradients, eval mode, run under no_grad
    lock_patterns: list = field(default_factory=list)  # freeze parameters matching these globs (e.g. 'layer1.*')
    train_patterns: list = field(default_factory=list)  # freeze every parameter except those matching these globs
    # huggingface text towers: parameter-efficient tuning through `adapters` (only the adapter trains)
    adapter: Literal["", "bottleneck", "lang_adapter", "prefix_tuning", "compacter", "lora", "ia3", "mam",
                     "unipelt"] = ""
    adapter_config: dict = field(default_factory=dict)  # overrides of the adapter's settings (its adapters config fields)
    coop_n_ctx: int = 0  # openclip text tower: CoOp learnable context vectors after the start token (0: off)
    grad_checkpointing: bool = False  # activation checkpointing where the library supports it (HF, timm, open_clip ViT)
    # a locked tower's features computed once before training and looked up in every step (raykd.train.feature_cache);
    # images only with data.augment: none
    cache_features: bool = False
    feature_cache: str = ""  # a built feature cache folder to train from (`raykd data cache-features` prints it)
    head: HeadConfig = field(default_factory=HeadConfig)


@dataclass
class ModelConfig:
    image: TowerConfig = field(default_factory=lambda: TowerConfig(builder="openclip", name="RN50"))
    text: TowerConfig = field(default_factory=lambda: TowerConfig(builder="openclip", name="RN50"))
    embed_dim: int = 512  # joint embedding dimension after the heads
    # a float, or 'pretrained': the logit scale of a pretrained open_clip model (text tower first), e.g. 100
    init_logit_scale: Union[float, Literal["pretrained"]] = 1 / 0.07
    max_logit_scale: float = 100.0
    learn_logit_scale: bool = True
    compile: bool = False  # torch.compile each tower (nn.Module.compile: state-dict keys unchanged)

    def check(self) -> None:
        """Raise ValueError for a logit scale that is not positive."""
        if self.init_logit_scale != "pretrained" and not self.init_logit_scale > 0:
            raise ValueError(f"model.init_logit_scale must be > 0 or 'pretrained', got {self.init_logit_scale}")


@dataclass
class LossConfig:
    name: str = "InfoNCE"  # a name in the loss registry
    teacher: Literal["text", "image"] = "text"  # which tower's features are the target
    hparams: dict = field(default_factory=dict)  # forwarded to get_loss(name, **hparams)
    w_align: float = 1.0  # weight of the alignment loss above; 0 skips it (and the image forward)
    w_simcse: float = 0.0  # weight of SimCSE (two dropout views of each caption) on the text tower
    simcse_temperature: float = 0.05


SOURCE_KINDS = ("shards", "coco", "classification", "builtin")


@dataclass
class SourceConfig:
    """One entry of `data.sources`: exactly one of `shards`, `coco`, `classification`, `builtin`
    (see `raykd.data.sources`). A bare string entry is shorthand for `{shards: <string>}`."""

    shards: list = field(default_factory=list)  # paths, folders, globs, brace patterns, fsspec URLs (s3://, file://)
    coco: str = ""  # COCO captions JSON (e.g. captions_train2017.json): one sample per caption
    images: str = ""  # coco: the folder its `file_name`s are in
    # labelled data as prompted captions: a built-in name, a folder with classnames.txt + shards, or class sub-folders
    classification: str = ""
    builtin: str = ""  # a built-in data set's image-caption pairs
    # share of each sampled epoch / episode (weights are normalised); unset everywhere: in proportion to size
    weight: Optional[float] = None
    labels: Optional[bool] = None  # keep the shards' `cls` labels; unset: yes, unless classification data is mixed in
    templates: list = field(default_factory=list)  # classification prompts with '{}'; []: templates.txt, else a default
    split: str = "train"  # builtin / classification: the split folder to read


@dataclass
class DataConfig:
    """Training data. `sources` (a list of `SourceConfig`) replaces `train_shards` / `builtin`, which
    remain as one-source shorthands; `builtin` also names the evaluation data during training.

    An epoch is every sample of every source once (`samples_per_epoch` = `episode_size` = 0), or
    `samples_per_epoch` samples drawn with replacement (a fresh draw every epoch), or an episode of
    `episode_size` samples drawn without replacement (consecutive episodes cover the data set).
    """

    builtin: str = "shapes"  # '' or one of the built-in data sets (shapes, digits)
    train_shards: list = field(default_factory=list)  # shard paths / brace patterns / URLs; empty: builtin
    sources: list = field(default_factory=list)  # SourceConfig entries; empty: train_shards, else builtin
    samples_per_epoch: int = 0  # >0: virtual epochs of this many samples drawn with replacement
    episode_size: int = 0  # >0: each epoch is an episode of this many samples, drawn without replacement
    dataset_size: int = 0  # >0: keep only this many samples (each source's first ones, in proportion to size)
    builtin_root: str = ""  # where built-in data is generated; '' -> $RAYKD_CACHE or ~/.cache/raykd
    builtin_train_size: int = 0  # 0: the data set's default size (applies to every built-in source)
    augment: Literal["none", "light", "clip"] = "light"
    on_error: Literal["skip", "raise"] = "skip"
    shuffle_buffer: int = 1024  # rows held by Ray Data's local shuffle; 0 disables shuffling
    prefetch_batches: int = 2
    cpus_per_read_task: float = 0.5
    # Rows decoded + preprocessed + tokenized together inside a Ray Data task (not the training batch size).
    preprocess_batch_size: int = 128
    # Max concurrent read+preprocess tasks; 0 lets Ray Data decide from the CPUs it has.
    read_concurrency: int = 0

    def __post_init__(self):
        self.sources = [_source_config(entry, f"data.sources[{i}]") for i, entry in enumerate(self.sources)]
        _check_data_config(self)


def _source_config(entry, key: str) -> SourceConfig:
    if isinstance(entry, str):
        entry = {"shards": [entry]}
    elif isinstance(entry, SourceConfig):
        entry = dataclasses.asdict(entry)
    if not isinstance(entry, dict):
        raise ConfigError(f"'{key}' must be a mapping such as {{shards: DIR, weight: 0.5}}, got {entry!r}")
    if isinstance(entry.get("shards"), str):
        entry = {**entry, "shards": [entry["shards"]]}
    src = from_mapping(entry, SourceConfig, prefix=f"{key}.")
    kinds = [k for k in SOURCE_KINDS if getattr(src, k)]
    if len(kinds) != 1:
        raise ConfigError(f"'{key}' needs exactly one of {', '.join(SOURCE_KINDS)}; got {kinds or 'none'}")
    if bool(src.coco) != bool(src.images):
        raise ConfigError(f"'{key}.images' goes with '{key}.coco' (the folder of its file_names): set both or neither")
    if src.weight is not None and not src.weight > 0:
        raise ConfigError(f"'{key}.weight' must be > 0, got {src.weight}")
    if src.templates and (not src.classification or not all(isinstance(t, str) and "{}" in t for t in src.templates)):
        raise ConfigError(f"'{key}.templates' are prompts with a '{{}}' for a classification source, "
                          f"got {src.templates!r}")
    if src.labels is not None and not (src.shards or src.builtin):
        raise ConfigError(f"'{key}.labels' applies to shards/builtin sources only")
    return src


def _check_data_config(cfg: DataConfig) -> None:
    for key in ("samples_per_epoch", "episode_size", "dataset_size"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"'data.{key}' must be >= 0 (0: off), got {getattr(cfg, key)}")
    if cfg.samples_per_epoch and cfg.episode_size:
        raise ConfigError("'data.samples_per_epoch' (with replacement) and 'data.episode_size' (without) "
                          "both set an epoch's size: set one")
    if cfg.sources and cfg.train_shards:
        raise ConfigError("'data.train_shards' and 'data.sources' are both set: list the shards in data.sources")
    weighted = [i for i, s in enumerate(cfg.sources) if s.weight is not None]
    if weighted and len(weighted) != len(cfg.sources):
        missing = next(i for i in range(len(cfg.sources)) if i not in weighted)
        raise ConfigError(f"'data.sources[{missing}].weight' is missing: give every source a weight, or none")
    if weighted and not (cfg.samples_per_epoch or cfg.episode_size):
        raise ConfigError(f"'data.sources[{weighted[0]}].weight': weights set the mix of sampled epochs; set "
                          "data.samples_per_epoch (with replacement) or data.episode_size (without); "
                          "a full epoch reads every source once")


@dataclass
class OptimConfig:
    # any timm optimizer, as timm spells it (`timm.optim.list_optimizers()`): adamw, lamb, lars, lion, adabelief,
    # nadam, radam, sgd (Nesterov), momentum (plain momentum SGD), lookahead_adamw, ...
    name: str = "adamw"
    lr: float = 5e-4
    weight_decay: float = 0.2
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    momentum: float = 0.9  # optimizers with momentum (sgd, momentum, lars, ...)
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip_norm: float = 0.0  # 0 disables clipping
    # Layer-wise lr decay per tower: a backbone block at depth i of n gets lr * decay^(n + 1 - i) (1: off)
    image_layer_decay: float = 1.0
    text_layer_decay: float = 1.0
    # what one decay step is: block (every residual/transformer block) or stage (every list of blocks: ResNet
    # layer1..layer4, as the original codebase; a plain transformer has one)
    layer_decay_unit: Literal["block", "stage"] = "block"
    backbone_lr_ratio: float = 1.0  # tower backbones train at lr * ratio; heads, logit scale, adapters at lr
    ema_decay: float = 0.0  # EMA of the model weights after every step (e.g. 0.999); evaluated and saved; 0: off
    ema_on_cpu: bool = False  # keep the EMA copy in CPU memory (updated from the device every step)
    wise_ft_alpha: float = 1.0  # evaluate (1 - alpha) * initial + alpha * trained weights (WiSE-FT); 1: off

    def check(self) -> None:
        """Raise ValueError naming the first option outside its range."""
        for key in ("image_layer_decay", "text_layer_decay"):
            if not 0.0 < getattr(self, key) <= 1.0:
                raise ValueError(f"optim.{key} must be in (0, 1] (1: no layer-wise decay), got {getattr(self, key)}")
        if self.backbone_lr_ratio < 0:
            raise ValueError(f"optim.backbone_lr_ratio must be >= 0, got {self.backbone_lr_ratio}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"optim.ema_decay must be in [0, 1) (0: no EMA), got {self.ema_decay}")
        if not 0.0 <= self.wise_ft_alpha <= 1.0:
            raise ValueError(f"optim.wise_ft_alpha must be in [0, 1] (1: the trained weights), got {self.wise_ft_alpha}")


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 64  # per worker at num_workers workers: the global batch is batch_size x num_workers
    num_workers: int = 1  # Ray Train workers
    # elastic: 1 <= min_workers < num_workers lets Ray Train run with any worker count in between (fewer after a
    # node is lost, more when resources return), each of w workers taking global batch / w; 0: always num_workers
    min_workers: int = 0
    elastic_resize_interval_s: float = 60.0  # elastic: how often Ray Train looks for resources to grow back
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16 AMP on CUDA, fp32 on CPU
    max_steps: int = 0  # stop after this many optimizer steps (0: run all epochs)
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 0  # 0: checkpoint only at the end of each epoch
    num_checkpoints_to_keep: int = 2
    max_failures: int = 0
    torch_threads: int = 0  # intra-op threads per worker; 0 lets raykd pick from cpus_per_worker
    # a checkpoint (or run) directory whose weights a fresh run starts from: new optimiser, schedule and step 0
    # (`raykd train --init-from`; raykd.train.checkpoint.init_from); a run resumed from its own checkpoint ignores it
    init_from: str = ""

    def check(self) -> None:
        """Raise ValueError when there is no worker or no sample per batch, or an elastic range whose worker counts
        cannot share the global batch evenly."""
        if self.num_workers < 1 or self.batch_size < 1:
            raise ValueError("train.num_workers and train.batch_size must be >= 1")
        if not 0 <= self.min_workers <= self.num_workers:
            raise ValueError(f"train.min_workers must be in [0, train.num_workers = {self.num_workers}] (0: not "
                             f"elastic), got {self.min_workers}")
        if self.elastic_resize_interval_s <= 0:
            raise ValueError(f"train.elastic_resize_interval_s must be > 0, got {self.elastic_resize_interval_s}")
        uneven = [w for w in self.worker_counts() if self.global_batch % w]
        if uneven:
            raise ValueError(f"train.batch_size x train.num_workers = {self.global_batch} (the global batch, kept "
                             f"whatever the worker count) cannot be split evenly among {uneven} workers, which "
                             f"train.min_workers = {self.min_workers} allows: choose a batch size or min_workers "
                             "for which it can")

    @property
    def elastic(self) -> bool:
        return 0 < self.min_workers < self.num_workers

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.num_workers

    def worker_counts(self) -> range:
        """The worker counts the run may train with."""
        return range(self.min_workers if self.elastic else self.num_workers, self.num_workers + 1)

    def batch_per_worker(self, world_size: int) -> int:
        """Each worker's batch when `world_size` workers train: the global batch shared evenly."""
        return self.global_batch // world_size


@dataclass
class TaskEvalConfig:
    """When one evaluation task runs during training (see `raykd.train.evaluation`)."""

    every_n_epochs: int = 0  # run after every n-th epoch and after the last one; 0: not during training
    options: dict = field(default_factory=dict)  # keyword arguments of the task function, e.g. {solver: torch}


@dataclass
class EvalConfig:
    """Evaluation during training, on rank 0 at epoch ends: one section per task of `raykd.eval.tasks`, under the
    task's name (`eval: {zeroshot: {every_n_epochs: 1}, linear_probe: {every_n_epochs: 2}}`), kept in `tasks`.
    A task without a section does not run during training, except `zeroshot`, which runs every epoch unless its
    section says otherwise. The config does not know the tasks: `raykd.eval` checks the section names against its
    registry (`raykd check` and training start). Metric keys are `<task>/<dataset>/<metric>`; `raykd eval`
    evaluates saved checkpoints with every task."""

    SECTIONS = "tasks"  # `raykd.config.loading`: the keys that are not fields are sections of this mapping

    during_training: bool = True  # false: no evaluation during training, whatever the tasks say
    before_training: bool = False  # true: also run every task enabled during training at step 0, before training
    data_root: str = ""  # '' -> the evaluation view of data.builtin (raykd.eval.builtin); else a data root
    datasets: list = field(default_factory=list)  # names under data_root; empty: data.builtin, or all present
    batch_size: int = 256  # feature-extraction batch
    tasks: dict[str, TaskEvalConfig] = field(default_factory=lambda: {"zeroshot": TaskEvalConfig(every_n_epochs=1)})

    def __post_init__(self):
        for name, section in self.tasks.items():  # raykd.eval checks names and options against its task registry
            if section.every_n_epochs < 0:
                raise ConfigError(f"'eval.{name}.every_n_epochs' must be >= 0 (0: not during training), "
                                  f"got {section.every_n_epochs}")

    def task(self, name: str) -> TaskEvalConfig:
        """Task `name`'s section (a default one, not run during training, when the recipe has none)."""
        return self.tasks.get(name, TaskEvalConfig())


@dataclass
class RunConfig:
    name: str = "raykd"
    run_dir: str = ""  # '' -> runs/<name>-<timestamp>
    storage_path: str = ""  # where Ray Train writes checkpoints ('' -> <run_dir>/checkpoints); any URI Ray accepts
    seed: int = 0
    ray_address: str = ""  # '' starts (or joins) a local Ray sized for this machine
    ray_num_cpus: int = 0  # logical CPUs for a local Ray; 0 -> sized automatically
    # Ray Train's own console logs (every report and checkpoint at INFO); raykd's progress lines stay
    train_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    # auto: continue the latest run of this name (run_dir, or the newest runs/<name>-*) from its last checkpoint,
    # else start one (`raykd train --resume`); never: an existing run is an error, never silently continued
    resume: Literal["never", "auto"] = "never"
    # where metrics go: tensorboard | wandb | mlflow (raykd/train/trackers.py; wandb/mlflow need their extra)
    loggers: list = field(default_factory=lambda: ["tensorboard"])


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    # The range checks run here, once every section is built, rather than in each section's
    # __post_init__: a section built on its own (e.g. OptimConfig handed to build_optimizer) is
    # checked by what consumes it.
    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """Every section's value ranges; raises ValueError naming the option."""
        self.model.check()
        self.optim.check()
        self.train.check()
        for name in ("image", "text"):
            _check_feature_cache(getattr(self.model, name), name, self.data.augment)


def _check_feature_cache(tower: TowerConfig, name: str, augment: str) -> None:
    """A tower's features can be cached only when they cannot change: the tower locked, its input fixed."""
    if not (tower.cache_features or tower.feature_cache):
        return
    option = f"model.{name}.{'cache_features' if tower.cache_features else 'feature_cache'}"
    if not tower.lock or tower.adapter or tower.coop_n_ctx:
        raise ValueError(f"{option}: only a locked tower's features can be cached (set model.{name}.lock: true, "
                         "without an adapter or CoOp context): a tower that trains changes its features every step")
    if name == "image" and augment != "none":
        raise ValueError(f"{option}: the image tower's features cannot be cached under data.augment: {augment}: "
                         "random crops and flips give the tower a different input every epoch, so its features "
                         "are not the same twice; set data.augment: none to cache them, or turn caching off")
